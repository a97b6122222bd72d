//! Storage: migrations and account queries on SQLite and, when configured, PostgreSQL.

use crate::support::{TestDb, start_time};
use amphi::db::{self, Db, NewUser, ProxyIdentity};
use chrono::Duration;

const TABLES: &[&str] = &[
    "access_groups",
    "api_tokens",
    "callback_receipts",
    "chat_messages",
    "login_failures",
    "meeting_groups",
    "meeting_owners",
    "meeting_participants",
    "meeting_session_counts",
    "meeting_sessions",
    "meetings",
    "permission_group_members",
    "permission_group_permissions",
    "permission_groups",
    "permissions",
    "sessions",
    "settings",
    "user_access_groups",
    "user_permissions",
    "users",
];

#[tokio::test]
async fn migrations_create_the_schema_and_are_idempotent() {
    for test_db in TestDb::all().await {
        let tables = test_db.db.table_names().await.unwrap();
        for table in TABLES {
            assert!(
                tables.iter().any(|t| t == table),
                "{}: missing {table} in {tables:?}",
                test_db.label
            );
        }
        let count = test_db.db.migrate().await.unwrap();
        assert!(count >= 1);
        assert_eq!(
            test_db.db.table_names().await.unwrap(),
            tables,
            "{}",
            test_db.label
        );
        test_db.cleanup().await;
    }
}

#[tokio::test]
async fn users_groups_and_permissions() {
    for test_db in TestDb::all().await {
        let db = &test_db.db;
        let label = test_db.label;
        let new = NewUser {
            username: "ann".into(),
            display_name: "Ann Martin".into(),
            email: "ann@univ.example".into(),
            password_hash: Some("$argon2id$placeholder".into()),
            is_staff: true,
            affiliation: "faculty".into(),
            ..NewUser::default()
        };
        let ann = db.create_user(&new, start_time()).await.unwrap();
        assert_eq!(ann.username, "ann");
        assert!(
            ann.is_staff && !ann.is_superuser && ann.is_active,
            "{label}"
        );
        assert_eq!(ann.created_at, start_time(), "{label}");

        let duplicate = db.create_user(&new, start_time()).await.unwrap_err();
        assert!(
            matches!(duplicate, db::Error::Conflict(_)),
            "{label}: {duplicate}"
        );
        assert!(
            duplicate.to_string().contains("ann"),
            "{label}: {duplicate}"
        );

        db.set_user_access_groups(ann.id, &["faculty".into(), "staff".into()])
            .await
            .unwrap();
        let groups: Vec<String> = db
            .user_access_groups(ann.id)
            .await
            .unwrap()
            .into_iter()
            .map(|g| g.code_name)
            .collect();
        assert_eq!(groups, ["faculty", "staff"], "{label}");
        db.set_user_access_groups(ann.id, &["staff".into()])
            .await
            .unwrap();
        assert_eq!(
            db.user_access_groups(ann.id).await.unwrap().len(),
            1,
            "{label}"
        );

        assert!(db.user_permissions(ann.id).await.unwrap().is_empty());
        db.add_to_permission_group(ann.id, "meeting webinar admin")
            .await
            .unwrap();
        assert!(
            db.grant_permission("meeting.end_meeting", None, Some("meeting webinar admin"))
                .await
                .unwrap()
        );
        assert!(
            db.grant_permission("meeting.view_meeting", Some(ann.id), None)
                .await
                .unwrap()
        );
        assert!(
            !db.grant_permission("meeting.fly_to_the_moon", Some(ann.id), None)
                .await
                .unwrap()
        );
        assert_eq!(
            db.user_permissions(ann.id).await.unwrap(),
            ["meeting.end_meeting", "meeting.view_meeting"],
            "{label}"
        );
        assert_eq!(
            db.user_permission_groups(ann.id).await.unwrap(),
            ["meeting webinar admin"]
        );

        let listed = db.list_users().await.unwrap();
        assert_eq!(listed.len(), 1);
        test_db.cleanup().await;
    }
}

#[tokio::test]
async fn sessions_expire_and_failures_are_counted() {
    for test_db in TestDb::all().await {
        let db: &Db = &test_db.db;
        let now = start_time();
        let user = db
            .create_user(
                &NewUser {
                    username: "bob".into(),
                    ..NewUser::default()
                },
                now,
            )
            .await
            .unwrap();
        db.insert_session("hash-1", user.id, now, now + Duration::hours(1))
            .await
            .unwrap();
        assert!(
            db.session_user("hash-1", now + Duration::minutes(59))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            db.session_user("hash-1", now + Duration::hours(1))
                .await
                .unwrap()
                .is_none()
        );
        assert!(db.session_user("other", now).await.unwrap().is_none());
        assert_eq!(
            db.purge_expired(now + Duration::hours(2), now)
                .await
                .unwrap(),
            1
        );

        for minute in 0..3 {
            db.record_login_failure("bob", "192.0.2.1", now + Duration::minutes(minute))
                .await
                .unwrap();
        }
        let (count, oldest) = db
            .login_failures(
                amphi::db::FailuresOf::Account("bob"),
                now + Duration::minutes(1),
            )
            .await
            .unwrap();
        assert_eq!(
            (count, oldest),
            (2, Some(now + Duration::minutes(1))),
            "{}",
            test_db.label
        );
        assert_eq!(
            db.login_failures(amphi::db::FailuresOf::Address("192.0.2.1"), now)
                .await
                .unwrap()
                .0,
            3
        );
        db.clear_login_failures("bob").await.unwrap();
        assert_eq!(
            db.login_failures(amphi::db::FailuresOf::Account("bob"), now)
                .await
                .unwrap()
                .0,
            0
        );
        test_db.cleanup().await;
    }
}

#[tokio::test]
async fn proxy_users_are_created_then_refreshed() {
    for test_db in TestDb::all().await {
        let db = &test_db.db;
        let identity = ProxyIdentity {
            username: "carla".into(),
            email: "carla@univ.example".into(),
            display_name: "Carla Diaz".into(),
            affiliation: "student".into(),
            groups: Some(vec!["l3-info".into()]),
        };
        let first = db.upsert_proxy_user(&identity, start_time()).await.unwrap();
        assert_eq!(first.display_name, "Carla Diaz");
        let changed = ProxyIdentity {
            affiliation: "employee".into(),
            email: String::new(),
            groups: Some(vec!["staff".into(), "l3-info".into()]),
            ..identity
        };
        let second = db.upsert_proxy_user(&changed, start_time()).await.unwrap();
        assert_eq!(second.id, first.id);
        assert_eq!(second.affiliation, "employee");
        assert_eq!(
            second.email, "carla@univ.example",
            "an empty header keeps the stored mail"
        );
        let groups: Vec<String> = db
            .user_access_groups(first.id)
            .await
            .unwrap()
            .into_iter()
            .map(|g| g.code_name)
            .collect();
        assert_eq!(groups, ["l3-info", "staff"], "{}", test_db.label);
        test_db.cleanup().await;
    }
}

#[tokio::test]
async fn generated_secret_key_is_kept() {
    for test_db in TestDb::all().await {
        let first = test_db
            .db
            .setting_or_insert("secret_key", "aaa")
            .await
            .unwrap();
        let second = test_db
            .db
            .setting_or_insert("secret_key", "bbb")
            .await
            .unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("aaa", "aaa"));
        test_db.cleanup().await;
    }
}

#[tokio::test]
async fn unreachable_database_fails_with_one_clear_line() {
    let options = db::Options {
        connect_timeout: std::time::Duration::from_secs(2),
        ..db::Options::default()
    };
    // Port 1 on loopback: nothing listens there.
    let err = Db::connect("postgres://amphi:hunter2@127.0.0.1:1/amphi", &options)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(
            "cannot connect to the database at postgres://amphi:***@127.0.0.1:1/amphi"
        ),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");

    let err = Db::connect("mysql://x@127.0.0.1/db", &options)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("unsupported database URL"),
        "{err}"
    );
}

#[tokio::test]
async fn callback_receipts_are_counted_once_and_kept_until_handled() {
    for test_db in TestDb::all().await {
        let db = &test_db.db;
        let label = test_db.label;
        let kind = "recording-ready";
        assert!(
            db.first_receipt(kind, "r-1", "{\"a\":1}", 1).await.unwrap(),
            "{label}"
        );
        assert!(
            !db.first_receipt(kind, "r-1", "{}", 2).await.unwrap(),
            "{label}"
        );
        assert!(
            db.first_receipt(kind, "r-2", "{\"b\":2}", 3).await.unwrap(),
            "{label}"
        );
        assert!(
            db.first_receipt("other", "r-1", "", 4).await.unwrap(),
            "{label}"
        );
        let pending = db.unhandled_receipts(kind).await.unwrap();
        let keys: Vec<(&str, &str)> = pending
            .iter()
            .map(|r| (r.key.as_str(), r.payload.as_str()))
            .collect();
        assert_eq!(
            keys,
            [("r-1", "{\"a\":1}"), ("r-2", "{\"b\":2}")],
            "{label}"
        );
        assert!(
            db.mark_receipt_handled(kind, "r-1", 5).await.unwrap(),
            "{label}"
        );
        assert!(
            !db.mark_receipt_handled(kind, "r-1", 6).await.unwrap(),
            "{label}"
        );
        let left: Vec<String> = db
            .unhandled_receipts(kind)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(left, ["r-2"], "{label}");
        test_db.cleanup().await;
    }
}

#[tokio::test]
async fn chat_messages_are_kept_once_and_delivered_until_bbb_takes_them() {
    use amphi::chat::protocol::{Message, Origin};
    for test_db in TestDb::all().await {
        let db = &test_db.db;
        let label = test_db.label;
        let live = "chimie-2";
        assert_eq!(db.chat_next_id(live).await.unwrap(), 1, "{label}");
        let audience = |id: u64, text: &str| Message {
            id,
            text: text.to_owned(),
            author: "Ann".to_owned(),
            author_key: "user:7".to_owned(),
            origin: Origin::Audience,
            at: 1_000 + id as i64,
            question: id == 2,
            votes: 0,
            answered: false,
        };
        assert!(
            db.chat_keep(live, &audience(1, "Bonjour"), Some("Ann (live)"))
                .await
                .unwrap()
        );
        assert!(
            !db.chat_keep(live, &audience(1, "again"), Some("Ann (live)"))
                .await
                .unwrap(),
            "{label}: never kept twice"
        );
        assert!(
            db.chat_keep(live, &audience(2, "Exam?"), Some("Ann (live)"))
                .await
                .unwrap()
        );
        let answer = Message {
            id: 3,
            text: "In June".to_owned(),
            author: "Prof. Curie".to_owned(),
            author_key: "meeting:w_1".to_owned(),
            origin: Origin::Meeting,
            at: 1_010,
            question: false,
            votes: 0,
            answered: false,
        };
        assert!(db.chat_keep(live, &answer, None).await.unwrap());
        assert!(
            db.chat_keep("other", &audience(1, "elsewhere"), None)
                .await
                .unwrap()
        );
        assert_eq!(db.chat_next_id(live).await.unwrap(), 4, "{label}");

        db.chat_question(live, 2, 5, true).await.unwrap();
        db.chat_hide(live, 1).await.unwrap();
        let history = db.chat_history(live, 50).await.unwrap();
        let seen: Vec<(u64, &str, Origin, u32, bool)> = history
            .iter()
            .map(|m| (m.id, m.text.as_str(), m.origin, m.votes, m.answered))
            .collect();
        assert_eq!(
            seen,
            [
                (2, "Exam?", Origin::Audience, 5, true),
                (3, "In June", Origin::Meeting, 0, false)
            ],
            "{label}"
        );
        assert_eq!(db.chat_history(live, 1).await.unwrap()[0].id, 3, "{label}");

        // Delivery: both audience messages wait, in order (a hidden one was still said in the
        // room); a failed attempt is counted and dated, a delivered one is done.
        let pending = db.chat_pending(live, 10).await.unwrap();
        let ids: Vec<(u64, i64)> = pending.iter().map(|d| (d.id, d.next_attempt_ms)).collect();
        assert_eq!(ids, [(1, 1_001), (2, 1_002)], "{label}");
        assert_eq!(pending[0].sender, "Ann (live)", "{label}");
        db.chat_retry_at(live, 1, 5_000).await.unwrap();
        db.chat_delivered(live, 2).await.unwrap();
        let again = db.chat_pending(live, 10).await.unwrap();
        assert_eq!(again.len(), 1, "{label}");
        assert_eq!(
            (again[0].id, again[0].attempts, again[0].next_attempt_ms),
            (1, 1, 5_000),
            "{label}"
        );
        db.chat_delivered(live, 1).await.unwrap();
        assert!(
            db.chat_pending(live, 10).await.unwrap().is_empty(),
            "{label}"
        );
    }
}

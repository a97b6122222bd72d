//! The meetings administration: staff only, search and filters, session journals with
//! participants and durations, and the CSV export.

use crate::support::{TestApp, start_time};
use amphi::accounts::UserSpec;
use amphi::config::Config;
use amphi::db::MeetingFields;
use amphi::meetings::LockSettings;
use amphi::redact::Redacted;
use axum::http::StatusCode;
use chrono::Duration;

fn fields(owner: i64, name: &str, days: i64) -> MeetingFields {
    MeetingFields {
        name: name.into(),
        owner_id: owner,
        additional_owners: vec![],
        attendee_password: "pw".into(),
        is_restricted: false,
        groups: vec![],
        start_at: start_time() + Duration::days(days),
        expected_duration_minutes: 60,
        repetition: None,
        max_participants: 150,
        welcome_text: String::new(),
        webcam_only_for_moderators: false,
        record: false,
        auto_start_recording: false,
        allow_start_stop_recording: true,
        guest_policy: None,
        lock: LockSettings::default(),
        parent_meeting_id: None,
        voice_bridge: None,
        is_webinar: false,
        enable_chat: false,
        webinar_layout: "presentation-pip".to_owned(),
        webinar_anonymous_chat: false,
        webinar_keep_video: false,
    }
}

#[tokio::test]
async fn staff_search_meetings_read_journals_and_export_them() {
    let mut admin = TestApp::new(Config::default()).await;
    admin
        .state
        .accounts
        .create_user(&UserSpec {
            username: "root".into(),
            password: Some(Redacted::new("correct horse battery".into())),
            staff: true,
            ..UserSpec::default()
        })
        .await
        .unwrap();
    let ann = admin.add_user("ann", "correct horse battery").await;
    let db = admin.state.db.clone();
    let past = db
        .create_meeting(
            &fields(ann.id, "Chimie organique", -10),
            false,
            "",
            start_time(),
        )
        .await
        .unwrap();
    let future = db
        .create_meeting(
            &fields(ann.id, "Physique quantique", 10),
            false,
            "",
            start_time(),
        )
        .await
        .unwrap();

    // A session with two people, one of them with a name a spreadsheet would run.
    let t0 = start_time() - Duration::days(10);
    let session = db
        .open_session(past.id, Some(ann.id), "abc-1", t0)
        .await
        .unwrap();
    db.add_participant(session, Some(ann.id), "Ann", "MODERATOR", t0)
        .await
        .unwrap();
    db.add_participant(
        session,
        None,
        "=HYPERLINK(\"x\"), Eve",
        "VIEWER",
        t0 + Duration::minutes(5),
    )
    .await
    .unwrap();
    db.record_participant_count(session, 2, t0 + Duration::minutes(6))
        .await
        .unwrap();
    db.close_sessions(past.id, t0 + Duration::minutes(65))
        .await
        .unwrap();

    // Not for ordinary users, nor for visitors.
    let mut user = admin.another_browser();
    user.login("ann", "correct horse battery").await;
    assert_eq!(
        user.get("/admin/meetings").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        user.get("/admin/journal.csv").await.status,
        StatusCode::FORBIDDEN
    );
    let mut visitor = admin.another_browser();
    assert_eq!(
        visitor.get("/admin/meetings").await.status,
        StatusCode::SEE_OTHER
    );

    admin.login("root", "correct horse battery").await;
    let all = admin.get("/admin/meetings").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert!(all.body.contains("Chimie organique") && all.body.contains("Physique quantique"));
    let searched = admin.get("/admin/meetings?q=chim").await;
    assert!(
        searched.body.contains("Chimie organique") && !searched.body.contains("Physique quantique")
    );
    // "Active": the future meeting only (the clock is the tests' fixed start time).
    let active = admin.get("/admin/meetings?active=yes").await;
    assert!(
        active.body.contains("Physique quantique") && !active.body.contains("Chimie organique"),
        "{}",
        active.body
    );
    let dated = admin
        .get(&format!(
            "/admin/meetings?from={}",
            (start_time() + Duration::days(5)).date_naive()
        ))
        .await;
    assert!(dated.body.contains("Physique quantique") && !dated.body.contains("Chimie organique"));
    assert_eq!(
        admin
            .get("/admin/meetings?running=yes")
            .await
            .body
            .matches("<tr>")
            .count(),
        1,
        "only the header row"
    );

    let journal = admin
        .get(&format!("/admin/meetings/{}/journal", past.id))
        .await;
    assert_eq!(journal.status, StatusCode::OK);
    assert!(journal.body.contains("65 min"), "{}", journal.body);
    assert!(journal.body.contains("=HYPERLINK"), "shown as text");
    assert_eq!(
        admin
            .get(&format!("/admin/meetings/{}/journal", future.id))
            .await
            .status,
        StatusCode::OK
    );

    let csv = admin
        .get(&format!("/admin/journal.csv?meeting={}", past.id))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 3, "{}", csv.body);
    assert!(lines[0].starts_with("meeting_id,meeting_name,session_id"));
    assert!(
        lines[1].contains(",Ann,MODERATOR,") && lines[1].ends_with(",65"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("\"'=HYPERLINK(\"\"x\"\"), Eve\",VIEWER"),
        "{}",
        lines[2]
    );
}

//! Meeting storage on SQLite and, when configured, PostgreSQL: every field round-trips, the
//! BBB meeting id is fixed at creation, the constraints hold, and the session journal records.

use crate::support::{TestDb, start_time};
use amphi::db::{Db, MeetingFields, MeetingSearch, NewUser};
use amphi::meetings::recurrence::{End, Frequency, MonthlyType, Weekdays};
use amphi::meetings::{GuestPolicy, LockSettings, repetition};
use chrono::{Datelike, Duration, Weekday};

async fn user(db: &Db, name: &str) -> i64 {
    db.create_user(
        &NewUser {
            username: name.into(),
            display_name: name.into(),
            ..NewUser::default()
        },
        start_time(),
    )
    .await
    .unwrap()
    .id
}

fn fields(owner: i64) -> MeetingFields {
    MeetingFields {
        name: "Physique quantique".into(),
        owner_id: owner,
        additional_owners: vec![],
        attendee_password: "abcdefgh".into(),
        is_restricted: false,
        groups: vec![],
        start_at: start_time(),
        expected_duration_minutes: 120,
        repetition: None,
        max_participants: 150,
        welcome_text: "Bienvenue !".into(),
        webcam_only_for_moderators: false,
        record: false,
        auto_start_recording: false,
        allow_start_stop_recording: true,
        guest_policy: None,
        lock: LockSettings::default(),
        parent_meeting_id: None,
        voice_bridge: Some(71234),
        is_webinar: false,
        enable_chat: false,
        webinar_layout: "presentation-pip".to_owned(),
        webinar_anonymous_chat: false,
        webinar_keep_video: false,
    }
}

#[tokio::test]
async fn meetings_round_trip_and_keep_their_bbb_id() {
    for test_db in TestDb::all().await {
        let db = &test_db.db;
        let label = test_db.label;
        let ann = user(db, "ann").await;
        let bob = user(db, "bob").await;
        let group = db
            .ensure_access_group("l3-physique", "L3 physique")
            .await
            .unwrap();
        let start = start_time();
        let mut f = fields(ann);
        f.additional_owners = vec![bob];
        f.groups = vec![group.id];
        f.is_restricted = true;
        f.record = true;
        f.guest_policy = Some(GuestPolicy::AskModerator);
        f.lock = LockSettings {
            disable_cam: true,
            disable_note: true,
            ..LockSettings::default()
        };
        f.parent_meeting_id = Some("parent-1".into());
        f.repetition = repetition(
            start.date_naive(),
            Some(Frequency::Weekly),
            2,
            Weekdays::of(&[start.weekday(), Weekday::Mon]),
            MonthlyType::DateDay,
            Some(End::Count(5)),
        )
        .unwrap();
        assert!(f.repetition.is_some());
        let created = db.create_meeting(&f, false, "", start).await.unwrap();
        assert_eq!(
            created.meeting_id,
            format!("{:04}-physique-quantique", created.id),
            "{label}"
        );
        assert_eq!(created.fields, f, "{label}: every field round-trips");
        assert!(!created.is_personal && !created.is_running);

        // Renaming keeps the BBB meeting id.
        let mut renamed = f.clone();
        renamed.name = "Mécanique".into();
        renamed.additional_owners = vec![];
        renamed.groups = vec![];
        renamed.repetition = None;
        assert!(
            db.update_meeting(created.id, &renamed, start + Duration::hours(1))
                .await
                .unwrap()
        );
        let again = db.meeting(created.id).await.unwrap().unwrap();
        assert_eq!(again.meeting_id, created.meeting_id, "{label}");
        assert_eq!(again.fields, renamed, "{label}");
        assert_eq!(
            db.meeting_by_bbb_id(&created.meeting_id)
                .await
                .unwrap()
                .map(|m| m.id),
            Some(created.id)
        );

        // Lists: owners and co-owners, personal room first.
        let mut shared = fields(bob);
        shared.name = "Chimie".into();
        shared.additional_owners = vec![ann];
        shared.start_at = start - Duration::days(3);
        let chem = db.create_meeting(&shared, false, "", start).await.unwrap();
        let mut room = fields(ann);
        room.name = "Salle personnelle".into();
        room.start_at = start - Duration::days(30);
        let personal = db
            .create_meeting(&room, true, "modpass1", start)
            .await
            .unwrap();
        assert_eq!(personal.moderator_password, "modpass1");
        let mine: Vec<i64> = db
            .meetings_of(ann)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(mine, [personal.id, created.id, chem.id], "{label}");
        assert_eq!(
            db.personal_room(ann).await.unwrap().map(|m| m.id),
            Some(personal.id)
        );
        let second_room = db.create_meeting(&room, true, "", start).await;
        assert!(second_room.is_err(), "{label}: one personal room per user");

        // Constraints the form also checks.
        let mut bad = fields(ann);
        bad.voice_bridge = Some(123);
        assert!(
            db.create_meeting(&bad, false, "", start).await.is_err(),
            "{label}"
        );
        let mut bad = fields(ann);
        bad.name = "x".into();
        assert!(
            db.create_meeting(&bad, false, "", start).await.is_err(),
            "{label}"
        );

        // Search for the admin list.
        let (found, total) = db
            .search_meetings(&MeetingSearch {
                text: "CHIM".into(),
                limit: 30,
                ..MeetingSearch::default()
            })
            .await
            .unwrap();
        assert_eq!((found.len(), total), (1, 1), "{label}");
        assert_eq!(found[0].fields.additional_owners, vec![ann]);
        let (all, total) = db
            .search_meetings(&MeetingSearch {
                limit: 2,
                ..MeetingSearch::default()
            })
            .await
            .unwrap();
        assert_eq!((all.len(), total), (2, 3), "{label}");
        let (not_running, _) = db
            .search_meetings(&MeetingSearch {
                running: Some(true),
                limit: 30,
                ..MeetingSearch::default()
            })
            .await
            .unwrap();
        assert!(not_running.is_empty());

        // BBB state and deletion.
        db.set_meeting_created(created.id, "abc-1", 1_764_234_000_000, "mp")
            .await
            .unwrap();
        let running = db.meeting(created.id).await.unwrap().unwrap();
        assert!(running.is_running);
        assert_eq!(running.moderator_password, "mp");
        assert!(
            db.set_meeting_running(&created.meeting_id, false)
                .await
                .unwrap()
        );
        assert!(
            !db.set_meeting_running(&created.meeting_id, false)
                .await
                .unwrap()
        );
        assert!(db.delete_meeting(chem.id).await.unwrap());
        assert!(db.meeting(chem.id).await.unwrap().is_none());
        test_db.cleanup().await;
    }
}

#[tokio::test]
async fn the_session_journal_records_who_joined_and_left() {
    for test_db in TestDb::all().await {
        let db = &test_db.db;
        let label = test_db.label;
        let ann = user(db, "ann").await;
        let meeting = db
            .create_meeting(&fields(ann), false, "", start_time())
            .await
            .unwrap();
        let t0 = start_time();
        let session = db
            .open_session(meeting.id, Some(ann), "abc-1", t0)
            .await
            .unwrap();
        db.add_participant(session, Some(ann), "Ann", "MODERATOR", t0)
            .await
            .unwrap();
        db.add_participant(
            session,
            None,
            "Visiteur",
            "VIEWER",
            t0 + Duration::minutes(5),
        )
        .await
        .unwrap();
        db.record_participant_count(session, 2, t0 + Duration::minutes(6))
            .await
            .unwrap();
        db.record_participant_count(session, 1, t0 + Duration::minutes(30))
            .await
            .unwrap();
        assert_eq!(
            db.close_sessions(meeting.id, t0 + Duration::hours(1))
                .await
                .unwrap(),
            1
        );

        let current = db.current_session(meeting.id).await.unwrap().unwrap();
        assert_eq!(current.id, session);
        assert_eq!(current.peak_participants, 2, "{label}");
        assert_eq!(current.ended_at, Some(t0 + Duration::hours(1)));
        let people = db.participants(session).await.unwrap();
        let shown: Vec<(&str, &str)> = people
            .iter()
            .map(|p| (p.full_name.as_str(), p.role.as_str()))
            .collect();
        assert_eq!(
            shown,
            [("Ann", "MODERATOR"), ("Visiteur", "VIEWER")],
            "{label}"
        );
        assert!(
            people
                .iter()
                .all(|p| p.left_at == Some(t0 + Duration::hours(1)))
        );
        let counts = db.participant_counts(session).await.unwrap();
        assert_eq!(counts.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(db.sessions_of(meeting.id).await.unwrap().len(), 1);
        test_db.cleanup().await;
    }
}

/// The library's jobs on every engine: queued with their video, claimed by one holder, renewed,
/// taken over once the lease ran out, finished; listings join the job and the owner's name.
#[tokio::test]
async fn video_jobs_are_claimed_once_renewed_taken_over_and_finished() {
    for test_db in TestDb::all().await {
        let db = &test_db.db;
        let owner = user(db, "ada").await;
        let video = amphi::db::Video {
            id: 0,
            owner_id: owner,
            title: "Cours".into(),
            description: String::new(),
            origin: "url".into(),
            origin_ref: "https://tube.example/w/a".into(),
            state: "processing".into(),
            duration_ms: 0,
            path: String::new(),
            thumbnail: String::new(),
            draft: true,
            source_url: "https://tube.example/w/a".into(),
            meeting_id: None,
            created_at: start_time(),
            updated_at: start_time(),
        };
        let id = db
            .queue_video(&video, r#"{"url":{"url":"x"}}"#)
            .await
            .unwrap();
        let listing = db.video(id).await.unwrap().unwrap();
        assert_eq!(listing.video.path, format!("videos/{id}"));
        assert_eq!(listing.owner_name, "ada");
        assert_eq!(listing.job.as_ref().unwrap().state, "queued");

        let now = 1_000_000;
        let first = db
            .claim_video_job("a", now, now + 3000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((first.job.video_id, first.job.attempts), (id, 1));
        assert!(
            db.claim_video_job("b", now + 1, now + 3001)
                .await
                .unwrap()
                .is_none(),
            "held"
        );
        assert!(
            db.job_progress(first.job.id, "a", "transcode", 40, now + 1000, now + 4000)
                .await
                .unwrap()
        );
        assert!(
            !db.job_progress(first.job.id, "b", "transcode", 40, now + 1000, now + 4000)
                .await
                .unwrap()
        );
        assert!(
            db.claim_video_job("b", now + 3500, now + 6500)
                .await
                .unwrap()
                .is_none(),
            "renewed"
        );
        let taken = db
            .claim_video_job("b", now + 4001, now + 7001)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.job.attempts, 2);
        assert!(
            !db.job_progress(first.job.id, "a", "transcode", 50, now + 4100, now + 7100)
                .await
                .unwrap(),
            "a lost it"
        );
        assert!(
            !db.finish_video_job(first.job.id, "a", Ok((1000, "")), now)
                .await
                .unwrap()
        );
        assert!(
            db.finish_video_job(taken.job.id, "b", Ok((5000, "thumbnail.jpg")), now + 5000)
                .await
                .unwrap()
        );
        let done = db.video(id).await.unwrap().unwrap();
        assert_eq!(
            (done.video.state.as_str(), done.video.duration_ms),
            ("ready", 5000)
        );
        assert_eq!(done.video.thumbnail, "thumbnail.jpg");
        assert_eq!(
            done.job.as_ref().map(|j| (j.state.as_str(), j.progress)),
            Some(("done", 100))
        );

        let failed = db.queue_video(&video, "{}").await.unwrap();
        let job = db
            .claim_video_job("a", now, now + 3000)
            .await
            .unwrap()
            .unwrap();
        assert!(
            db.finish_video_job(job.job.id, "a", Err("the server answered 404"), now)
                .await
                .unwrap()
        );
        let failed = db.video(failed).await.unwrap().unwrap();
        assert_eq!(failed.video.state, "failed");
        assert_eq!(failed.job.unwrap().error, "the server answered 404");
        assert_eq!(db.videos_of(owner).await.unwrap().len(), 2);
        assert_eq!(db.all_videos().await.unwrap().len(), 2);
        assert!(
            db.edit_video(id, "Cours 1", "Premier", false, start_time())
                .await
                .unwrap()
        );
        assert!(!db.video(id).await.unwrap().unwrap().video.draft);
        assert!(db.delete_video(id).await.unwrap());
        assert!(db.video(id).await.unwrap().is_none());
        test_db.cleanup().await;
    }
}

//! BBB's reference answers (the PHP client's fixtures, read in place from `../shared`) parse into
//! amphi's types; the tests skip with a message where that folder is absent.

use amphi::bbb::client::parse_answer;
use amphi::bbb::xml;
use amphi::bbb::{Error, MessageKey};

fn fixture(name: &str) -> Option<String> {
    let dir = crate::support::reference_fixtures("bbb-api")?;
    Some(std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn failure_key<T: for<'de> serde::Deserialize<'de> + std::fmt::Debug>(
    name: &str,
) -> Option<MessageKey> {
    let body = fixture(name)?;
    match parse_answer::<T>(&body) {
        Err(Error::Api { key, .. }) => Some(key),
        other => panic!("{name}: expected a FAILED answer, got {other:?}"),
    }
}

#[test]
fn api_version() {
    let Some(body) = fixture("api_version.xml") else {
        return;
    };
    let (_, version) = parse_answer::<xml::ApiVersion>(&body).unwrap();
    assert_eq!(version.bbb_version, "3.0.19");
    assert!(version.graphql_websocket_url.unwrap().starts_with("wss://"));
    assert!(version.graphql_api_url.unwrap().starts_with("https://"));
}

#[test]
fn create_duplicate_join_end_running() {
    let Some(body) = fixture("create_meeting.xml") else {
        return;
    };
    let (envelope, created) = parse_answer::<xml::CreateMeeting>(&body).unwrap();
    assert_eq!(envelope.message_key.as_deref(), Some("duplicateWarning"));
    assert!(!created.internal_meeting_id.is_empty() && created.create_time > 0);

    let body = fixture("join_meeting.xml").unwrap();
    let (envelope, join) = parse_answer::<xml::JoinMeeting>(&body).unwrap();
    assert_eq!(envelope.message_key.as_deref(), Some("successfullyJoined"));
    assert!(
        !join.session_token.is_empty() && !join.auth_token.is_empty() && !join.user_id.is_empty()
    );

    let body = fixture("is_meeting_running.xml").unwrap();
    assert!(
        parse_answer::<xml::IsMeetingRunning>(&body)
            .unwrap()
            .1
            .running
    );

    let body = fixture("end_meeting.xml").unwrap();
    let (envelope, _) = parse_answer::<serde::de::IgnoredAny>(&body).unwrap();
    assert_eq!(
        envelope.message_key.as_deref(),
        Some("sentEndMeetingRequest")
    );
}

#[test]
fn meeting_info_and_meetings() {
    let Some(body) = fixture("get_meeting_info.xml") else {
        return;
    };
    let (_, info) = parse_answer::<xml::MeetingInfo>(&body).unwrap();
    assert!(info.running);
    assert_eq!(info.attendees.items.len(), 4);
    let barrett = &info.attendees.items[1];
    assert_eq!(barrett.full_name, "Barrett Kutch");
    assert_eq!(barrett.role, "MODERATOR");
    assert_eq!(
        barrett.customdata.get("skipCheck").map(String::as_str),
        Some("true")
    );
    assert!(info.attendees.items[0].is_presenter);
    assert!(!info.metadata.is_empty());

    let body = fixture("get_meeting_info_with_breakout_rooms.xml").unwrap();
    let (_, parent) = parse_answer::<xml::MeetingInfo>(&body).unwrap();
    assert_eq!(parent.breakout_rooms.unwrap().items.len(), 3);
    let body = fixture("get_meeting_info_breakout_room.xml").unwrap();
    let (_, breakout) = parse_answer::<xml::MeetingInfo>(&body).unwrap();
    assert!(breakout.is_breakout && breakout.parent_meeting_id.is_some());

    let body = fixture("get_meetings.xml").unwrap();
    let (_, meetings) = parse_answer::<xml::Meetings>(&body).unwrap();
    assert_eq!(meetings.meetings.items.len(), 3);
    assert!(
        meetings
            .meetings
            .items
            .iter()
            .all(|m| !m.metadata.is_empty())
    );
}

#[test]
fn recordings() {
    let Some(body) = fixture("get_recordings.xml") else {
        return;
    };
    let (_, recordings) = parse_answer::<xml::Recordings>(&body).unwrap();
    let items = &recordings.recordings.items;
    assert_eq!(items.len(), 6);
    let first = &items[0];
    assert_eq!(first.name, "SAT- Writing-Humanities (All participants)");
    assert_eq!(first.playback.formats.len(), 2);
    let presentation = first
        .playback
        .formats
        .iter()
        .find(|f| f.kind == "presentation")
        .unwrap();
    assert_eq!(presentation.size, Some(168019));
    let images = &presentation.preview.as_ref().unwrap().images.items;
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].alt.as_deref(), Some("Welcome"));
    assert_eq!(images[0].width, Some(176));
    assert!(images[0].url.ends_with("thumb-1.png"));
    assert_eq!(
        first.metadata.get("bn-origin").map(String::as_str),
        Some("Moodle")
    );

    let body = fixture("get_recordings_no_recordings.xml").unwrap();
    let (envelope, none) = parse_answer::<xml::Recordings>(&body).unwrap();
    assert_eq!(envelope.message_key.as_deref(), Some("noRecordings"));
    assert!(none.recordings.items.is_empty());

    let body = fixture("publish_recordings.xml").unwrap();
    assert!(parse_answer::<xml::Published>(&body).unwrap().1.published);
    let body = fixture("delete_recordings.xml").unwrap();
    assert!(parse_answer::<xml::Deleted>(&body).unwrap().1.deleted);
    let body = fixture("update_recordings.xml").unwrap();
    assert!(parse_answer::<xml::Updated>(&body).unwrap().1.updated);
    for name in [
        "publish_recordings_not_found.xml",
        "delete_recordings_not_found.xml",
        "update_recordings_not_found.xml",
    ] {
        assert_eq!(
            failure_key::<xml::Published>(name),
            Some(MessageKey::NotFound),
            "{name}"
        );
    }
}

#[test]
fn chat_documents_and_hooks() {
    let Some(body) = fixture("send_chat_message.xml") else {
        return;
    };
    parse_answer::<serde::de::IgnoredAny>(&body).unwrap();
    assert_eq!(
        failure_key::<serde::de::IgnoredAny>("send_chat_message_failed.xml"),
        Some(MessageKey::MeetingNotFound)
    );
    let body = fixture("insert_document.xml").unwrap();
    parse_answer::<serde::de::IgnoredAny>(&body).unwrap();

    let body = fixture("hooks_create.xml").unwrap();
    let (_, hook) = parse_answer::<xml::HookCreated>(&body).unwrap();
    assert!(!hook.hook_id.is_empty());
    let body = fixture("hooks_create_existing.xml").unwrap();
    let (envelope, _) = parse_answer::<xml::HookCreated>(&body).unwrap();
    assert_eq!(envelope.message_key.as_deref(), Some("duplicateWarning"));
    assert_eq!(
        failure_key::<xml::HookCreated>("hooks_create_failed_error.xml"),
        Some(MessageKey::CreateHookError)
    );

    let body = fixture("hooks_list.xml").unwrap();
    let (_, hooks) = parse_answer::<xml::Hooks>(&body).unwrap();
    assert_eq!(hooks.hooks.items.len(), 2);
    assert!(hooks.hooks.items.iter().any(|h| h.meeting_id.is_some()));
    assert!(
        hooks
            .hooks
            .items
            .iter()
            .all(|h| h.callback_url.starts_with("http"))
    );

    let body = fixture("hooks_destroy.xml").unwrap();
    assert!(parse_answer::<xml::HookRemoved>(&body).unwrap().1.removed);
    assert_eq!(
        failure_key::<xml::HookRemoved>("hooks_destroy_failed_not_found.xml"),
        Some(MessageKey::DestroyMissingHook)
    );
    assert_eq!(
        failure_key::<xml::HookRemoved>("hooks_destroy_failed_error.xml"),
        Some(MessageKey::DestroyHookError)
    );
    assert_eq!(
        failure_key::<xml::HookRemoved>("hooks_destroy_failed_no_id.xml"),
        Some(MessageKey::MissingParamHookId)
    );
}

#[test]
fn malformed_answers_are_typed_errors() {
    for body in [
        "",
        "<response>",
        "not xml at all",
        "<response><returncode>SUCCESS</returncode></response>",
        "\u{0}\u{1}<<<>>>",
    ] {
        let result = parse_answer::<xml::CreateMeeting>(body);
        assert!(
            matches!(result, Err(Error::Parse(_))),
            "{body:?}: {result:?}"
        );
    }
    let multi = "<response><returncode>FAILED</returncode><errors><error><key>missingParamMeetingID</key><message>You must specify a meeting ID.</message></error><error><key>checksumError</key><message>bad</message></error></errors></response>";
    match parse_answer::<xml::CreateMeeting>(multi) {
        Err(Error::Validation { errors }) => {
            assert_eq!(errors.len(), 2);
            assert_eq!(errors[0].0, "missingParamMeetingID");
        }
        other => panic!("{other:?}"),
    }
    let unknown = "<response><returncode>FAILED</returncode><messageKey>brandNewKey</messageKey><message>?</message></response>";
    assert!(
        matches!(parse_answer::<xml::CreateMeeting>(unknown), Err(Error::Api { key: MessageKey::Other(k), .. }) if k == "brandNewKey")
    );
}

/// amphi's own fixtures (`tests/fixtures/bbb-api`), written from the reference's descriptions;
/// they ship with amphi, so these run everywhere.
fn own_fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bbb-api")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn own_recordings_merge_formats_with_sizes_and_pagination() {
    let (_, list) =
        parse_answer::<xml::Recordings>(&own_fixture("get_recordings_merged.xml")).unwrap();
    let pagination = list.pagination.expect("pagination");
    assert_eq!(pagination.total_elements, 31);
    assert!(!pagination.empty);
    let [recording] = list.recordings.items.as_slice() else {
        panic!("one recording: {:?}", list.recordings.items);
    };
    assert_eq!(recording.name, "Physique quantique & relativité — CM 3");
    assert_eq!(recording.participants, Some(87));
    assert_eq!(recording.raw_size, Some(412_345_678));
    let kinds: Vec<&str> = recording
        .playback
        .formats
        .iter()
        .map(|f| f.kind.as_str())
        .collect();
    assert_eq!(kinds, ["presentation", "video"]);
    let sizes: Vec<Option<u64>> = recording.playback.formats.iter().map(|f| f.size).collect();
    assert_eq!(sizes, [Some(1_234_567), Some(97_530_865)]);
    assert_eq!(
        recording.size,
        Some(98_765_432),
        "the recording-level size, not a format's"
    );
    let previews = &recording.playback.formats[0]
        .preview
        .as_ref()
        .expect("preview")
        .images
        .items;
    assert_eq!(previews.len(), 2);
    assert_eq!(previews[1].alt.as_deref(), Some("Plan du cours"));
    assert!(previews[1].url.ends_with("thumb-2.png"));
    assert_eq!(recording.playback.formats[1].length, Some(90));
    assert_eq!(
        recording.metadata.get("bbb-origin").map(String::as_str),
        Some("amphi")
    );
}

#[test]
fn own_empty_recording_answers_are_empty_lists() {
    for name in [
        "get_recordings_no_match.xml",
        "get_recordings_fetch_all_refused.xml",
    ] {
        let (envelope, list) = parse_answer::<xml::Recordings>(&own_fixture(name)).unwrap();
        assert_eq!(
            envelope.message_key.as_deref(),
            Some("noRecordings"),
            "{name}"
        );
        assert!(list.recordings.items.is_empty(), "{name}");
    }
}

#[test]
fn own_failures_become_typed_errors() {
    match parse_answer::<xml::CreateMeeting>(&own_fixture("create_validation_errors.xml")) {
        Err(Error::Validation { errors }) => {
            let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(keys, ["missingParamMeetingID", "checksumError"]);
        }
        other => panic!("multi-error form: {other:?}"),
    }
    match parse_answer::<serde::de::IgnoredAny>(&own_fixture("send_chat_message_not_running.xml")) {
        Err(Error::Api { key, .. }) => assert_eq!(key, MessageKey::MeetingNotFound),
        other => panic!("meetingNotFound: {other:?}"),
    }
    let (_, published) =
        parse_answer::<xml::Published>(&own_fixture("publish_recordings_unpublished.xml")).unwrap();
    assert!(!published.published);
}

/// Every reference answer, XML or JSON, reads as a success or a typed refusal: none is
/// unreadable. (The feedback answer is not a BBB API envelope and must say so.)
#[test]
fn every_reference_answer_reads() {
    let Some(dir) = crate::support::reference_fixtures("bbb-api") else {
        return;
    };
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(body) = std::fs::read_to_string(&path) else {
            continue;
        };
        seen += 1;
        if name.ends_with(".xml") {
            match parse_answer::<serde::de::IgnoredAny>(&body) {
                Ok(_) | Err(Error::Api { .. } | Error::Validation { .. }) => {}
                Err(other) => panic!("{name}: {other:?}"),
            }
        } else if name.ends_with(".json") {
            match amphi::bbb::client::parse_json_answer(&body) {
                Ok(response) => assert!(response.get("returncode").is_some(), "{name}"),
                Err(Error::Api { message, .. }) => assert!(!message.is_empty(), "{name}"),
                Err(Error::Parse(reason)) => {
                    assert_eq!(name, "feedback_response.json", "{reason}");
                    assert!(reason.contains("no response object"));
                }
                Err(other) => panic!("{name}: {other:?}"),
            }
        }
    }
    assert!(seen >= 30, "read {seen} answers");
}

//! Every graphql-transport-ws frame type, from `tests/fixtures/graphql/`, parses into amphi's
//! types and survives a round trip; broken frames are errors, never panics.

use amphi::client::protocol::{ClientFrame, ParseError, ServerFrame};
use std::path::Path;

fn fixtures(prefix: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graphql");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(".json")
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn client_frames_round_trip() {
    let files = fixtures("client-");
    assert_eq!(files.len(), 6);
    let mut kinds = Vec::new();
    for (name, text) in files {
        let frame = ClientFrame::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            ClientFrame::parse(&frame.to_text()).unwrap(),
            frame,
            "{name}"
        );
        let original: serde_json::Value = serde_json::from_str(&text).unwrap();
        let again: serde_json::Value = serde_json::from_str(&frame.to_text()).unwrap();
        assert_eq!(again, original, "{name}: the same JSON");
        kinds.push(original["type"].as_str().unwrap().to_owned());
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        ["complete", "connection_init", "ping", "pong", "subscribe"]
    );
}

#[test]
fn server_frames_round_trip() {
    let files = fixtures("server-");
    assert_eq!(files.len(), 9);
    let mut kinds = Vec::new();
    for (name, text) in files {
        let frame = ServerFrame::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let written = serde_json::to_string(&frame).unwrap();
        assert_eq!(ServerFrame::parse(&written).unwrap(), frame, "{name}");
        let original: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&written).unwrap(),
            original,
            "{name}"
        );
        kinds.push(original["type"].as_str().unwrap().to_owned());
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "complete",
            "connection_ack",
            "connection_error",
            "error",
            "next",
            "ping",
            "pong"
        ]
    );
}

#[test]
fn broken_frames_are_errors() {
    for bad in [
        "",
        "{",
        "[]",
        "{\"type\":\"surprise\"}",
        "{\"type\":\"next\"}",
        "{\"type\":\"next\",\"id\":5,\"payload\":{}}",
    ] {
        assert!(
            matches!(ServerFrame::parse(bad), Err(ParseError::Malformed(_))),
            "{bad}"
        );
    }
    let huge = format!(
        "{{\"type\":\"ping\",\"payload\":\"{}\"}}",
        "x".repeat(5 * 1024 * 1024)
    );
    assert!(matches!(
        ServerFrame::parse(&huge),
        Err(ParseError::TooLarge(_))
    ));
}

//! Any text from the GraphQL socket is a frame or a typed error, and any `next` payload folds
//! into the meeting state without panicking.
#![no_main]

use amphi::client::operations::Feed;
use amphi::client::protocol::{ClientFrame, ServerFrame};
use amphi::client::state::MeetingState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ClientFrame::parse(text);
        if let Ok(ServerFrame::Next { payload, .. }) = ServerFrame::parse(text) {
            let mut state = MeetingState::default();
            for feed in Feed::ALL {
                let _ = state.apply(feed, &payload);
            }
        }
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            let mut state = MeetingState::default();
            for feed in Feed::ALL {
                let _ = state.apply(feed, &value);
            }
        }
    }
});

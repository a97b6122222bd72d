//! The audience chat's frame parser and room on arbitrary input: no panic, a frame that
//! parses is handled by a room without panicking either, and what a relaying instance sends
//! on (the frame written again) parses to the same frame. The frames instances exchange
//! through Redis are parsed too.
#![no_main]

use amphi::chat::cluster::{Down, Up};
use amphi::chat::protocol;
use amphi::chat::room::{Member, Room, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Down::decode(text);
    let _ = serde_json::from_str::<Up>(text);
    if let Ok(frame) = protocol::parse(text) {
        let relayed = serde_json::to_string(&frame).expect("a frame is written");
        assert_eq!(protocol::parse(&relayed), Ok(frame.clone()), "{relayed}");
        let mut room = Room::new(
            Settings {
                anonymous: true,
                ..Settings::default()
            },
            1,
        );
        for moderator in [false, true] {
            let member = Member {
                key: "guest:fuzz".to_owned(),
                name: None,
                moderator,
            };
            let _ = room.handle(0, 1, &member, frame.clone());
        }
        let _ = room.from_meeting(0, "x", "y", text, true, false);
    }
});

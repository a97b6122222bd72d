//! Any text from the SFU socket is a message or a typed error, and feeding it to viewer
//! sessions of every media type in every phase never panics.
#![no_main]

use amphi::bridge::Media;
use amphi::bridge::sfu::protocol::{ClientMessage, ServerMessage};
use amphi::bridge::sfu::{Identity, Input, Session, Timing};
use libfuzzer_sys::fuzz_target;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ServerMessage::parse(text);
    let _ = ClientMessage::parse(text);
    let medias = [
        Media::Audio,
        Media::Camera {
            stream_id: "w_a_b_c".into(),
        },
        Media::Screenshare {
            voice_conf: "70000-SCREENSHARE".into(),
            has_audio: true,
        },
    ];
    for media in medias {
        let identity = Identity {
            user_name: "Live stream".into(),
            user_id: "w_bot".into(),
        };
        let mut session = Session::new(media, identity, Timing::default());
        let now = Instant::now();
        session.handle(now, Input::Connected);
        session.handle(now, Input::Frame(text.to_owned()));
        session.handle(now, Input::Answer("v=0".into()));
        session.handle(now, Input::Frame(text.to_owned()));
        session.handle(now, Input::Tick);
        while session.poll_output().is_some() {}
    }
});

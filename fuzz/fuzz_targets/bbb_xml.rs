//! Any body a BBB server (or something pretending to be one) sends parses into a typed answer
//! or a typed error, never a panic.
#![no_main]

use amphi::bbb::client::parse_answer;
use amphi::bbb::xml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_answer::<xml::ApiVersion>(text);
        let _ = parse_answer::<xml::CreateMeeting>(text);
        let _ = parse_answer::<xml::JoinMeeting>(text);
        let _ = parse_answer::<xml::MeetingInfo>(text);
        let _ = parse_answer::<xml::Meetings>(text);
        let _ = parse_answer::<xml::Recordings>(text);
        let _ = parse_answer::<xml::Hooks>(text);
        let _ = parse_answer::<xml::HookCreated>(text);
        let _ = parse_answer::<xml::HookRemoved>(text);
        let _ = parse_answer::<xml::Published>(text);
        let _ = parse_answer::<xml::Deleted>(text);
        let _ = parse_answer::<xml::Updated>(text);
        let _ = amphi::bbb::client::parse_json_answer(text);
        if let Err(error) = parse_answer::<xml::IsMeetingRunning>(text) {
            let _ = error.to_string();
        }
    }
});

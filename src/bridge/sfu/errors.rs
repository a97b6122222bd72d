//! bbb-webrtc-sfu's error codes (2000-2303) as a type a user can read, and what amphi does
//! about each: try again later, or stop and say why.

use std::fmt;

/// An SFU error code, known or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SfuCode(pub u16);

/// Every code the SFU defines: (code, name, what it means for a viewer).
const CODES: [(u16, &str, &str); 20] = [
    (
        2000,
        "MEDIA_SERVER_CONNECTION_ERROR",
        "the SFU lost its media server",
    ),
    (2001, "MEDIA_SERVER_OFFLINE", "the media server is offline"),
    (
        2002,
        "MEDIA_SERVER_NO_RESOURCES",
        "the media server has no resources left",
    ),
    (
        2003,
        "MEDIA_SERVER_REQUEST_TIMEOUT",
        "the media server did not answer in time",
    ),
    (
        2019,
        "MEDIA_SERVER_GENERIC_ERROR",
        "the media server failed",
    ),
    (
        2020,
        "ICE_ADD_CANDIDATE_FAILED",
        "the SFU could not use a network candidate",
    ),
    (
        2021,
        "ICE_GATHERING_FAILED",
        "the SFU could not gather network candidates",
    ),
    (2022, "ICE_STATE_FAILED", "the network connection failed"),
    (2200, "MEDIA_GENERIC_ERROR", "the media failed"),
    (
        2201,
        "MEDIA_NOT_FOUND",
        "the stream is not (yet) published on the SFU",
    ),
    (2202, "MEDIA_INVALID_SDP", "the SFU refused amphi's SDP"),
    (
        2203,
        "MEDIA_NO_AVAILABLE_CODEC",
        "no codec in common with the SFU",
    ),
    (
        2208,
        "MEDIA_GENERIC_PROCESS_ERROR",
        "the SFU failed while processing the media",
    ),
    (
        2209,
        "MEDIA_ADAPTER_OBJECT_NOT_FOUND",
        "the SFU lost the media session",
    ),
    (
        2210,
        "MEDIA_CONNECT_ERROR",
        "the SFU could not connect the media",
    ),
    (2211, "MEDIA_NOT_FLOWING", "the media stopped flowing"),
    (
        2300,
        "SFU_INVALID_REQUEST",
        "the SFU refused the request as invalid",
    ),
    (
        2301,
        "SFU_UNAUTHORIZED",
        "the SFU refused access to this media",
    ),
    (
        2302,
        "SFU_GLOBAL_AUDIO_FAILED",
        "the meeting's listen-only audio failed",
    ),
    (2303, "SFU_AUDIO_FAILED", "the audio session failed"),
];

impl SfuCode {
    pub const MEDIA_NOT_FOUND: Self = Self(2201);
    pub const MEDIA_INVALID_SDP: Self = Self(2202);
    pub const MEDIA_NOT_FLOWING: Self = Self(2211);
    pub const SFU_INVALID_REQUEST: Self = Self(2300);
    pub const SFU_UNAUTHORIZED: Self = Self(2301);

    fn entry(self) -> Option<&'static (u16, &'static str, &'static str)> {
        CODES.iter().find(|(code, ..)| *code == self.0)
    }

    /// The SFU's own name (`MEDIA_NOT_FOUND`), or `UNKNOWN` for a code it does not define.
    pub fn name(self) -> &'static str {
        self.entry().map_or("UNKNOWN", |(_, name, _)| name)
    }

    /// Whether asking again later can work. Refusals (bad SDP, no codec, invalid request,
    /// unauthorized) cannot; everything else is a state of the server or the stream that
    /// passes.
    pub fn is_retryable(self) -> bool {
        !matches!(self.0, 2202 | 2203 | 2300 | 2301)
    }
}

impl fmt::Display for SfuCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.entry() {
            Some((code, name, meaning)) => write!(f, "{meaning} ({name}, {code})"),
            None => write!(f, "unknown SFU error {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_name_and_a_meaning() {
        for (code, name, meaning) in CODES {
            let shown = SfuCode(code).to_string();
            assert!(shown.contains(name) && shown.contains(meaning), "{shown}");
        }
        assert_eq!(SfuCode(2201).name(), "MEDIA_NOT_FOUND");
        assert_eq!(SfuCode(4999).name(), "UNKNOWN");
        assert_eq!(SfuCode(0).to_string(), "unknown SFU error 0");
    }

    #[test]
    fn refusals_are_final_and_states_pass() {
        assert!(SfuCode::MEDIA_NOT_FOUND.is_retryable());
        assert!(SfuCode::MEDIA_NOT_FLOWING.is_retryable());
        assert!(SfuCode(2000).is_retryable());
        assert!(!SfuCode::SFU_UNAUTHORIZED.is_retryable());
        assert!(!SfuCode::MEDIA_INVALID_SDP.is_retryable());
        assert!(!SfuCode(2203).is_retryable());
        assert!(!SfuCode::SFU_INVALID_REQUEST.is_retryable());
    }
}

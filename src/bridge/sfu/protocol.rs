//! bbb-webrtc-sfu's JSON messages for viewers, as serde types. Field names differ per media
//! type (the audio answer travels in `sdpOffer`, the video and screenshare ones in `answer`;
//! video trickles with `onIceCandidate`, the others with `iceCandidate`): each shape is its own
//! variant, so nothing is left to a runtime switch.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest frame the SFU accepts (`maxPayload`).
pub const MAX_FRAME_BYTES: usize = 51_200;

/// What amphi sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClientMessage {
    /// Listen-only audio: `start`, type `audio`, role `recv`.
    StartAudio(StartAudio),
    /// A camera: `start`, type `video`, role `viewer`.
    StartCamera(StartCamera),
    /// The screenshare: `start`, type `screenshare`, role `recv`.
    StartScreenshare(StartScreenshare),
    /// The audio answer (in the field `sdpOffer`).
    AudioAnswer(AudioAnswer),
    /// A camera answer (in the field `answer`).
    CameraAnswer(CameraAnswer),
    /// The screenshare answer (in the field `answer`).
    ScreenshareAnswer(ScreenshareAnswer),
    /// A local ICE candidate for a camera (`onIceCandidate`).
    CameraCandidate(CameraCandidate),
    /// A local ICE candidate for audio or the screenshare (`iceCandidate`).
    Candidate(Candidate),
    /// Stops a camera subscription (audio and screenshare stop by closing their socket).
    StopCamera(StopCamera),
    /// Keepalive.
    Ping(Ping),
}

macro_rules! fixed {
    ($name:ident, $value:literal) => {
        /// A field whose only value is the string in its name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($value)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                if text == $value {
                    Ok($name)
                } else {
                    Err(serde::de::Error::custom(concat!("expected ", $value)))
                }
            }
        }
    };
}

fixed!(IdStart, "start");
fixed!(IdSubscriberAnswer, "subscriberAnswer");
fixed!(IdOnIceCandidate, "onIceCandidate");
fixed!(IdIceCandidate, "iceCandidate");
fixed!(IdStop, "stop");
fixed!(IdPing, "ping");
fixed!(TypeAudio, "audio");
fixed!(TypeVideo, "video");
fixed!(TypeScreenshare, "screenshare");
fixed!(RoleRecv, "recv");
fixed!(RoleViewer, "viewer");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartAudio {
    pub id: IdStart,
    #[serde(rename = "type")]
    pub kind: TypeAudio,
    pub role: RoleRecv,
    /// A number ≥ 0, required since SFU 2.9.
    pub client_session_number: u32,
    pub transparent_listen_only: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartCamera {
    pub id: IdStart,
    #[serde(rename = "type")]
    pub kind: TypeVideo,
    pub role: RoleViewer,
    pub camera_id: String,
    pub media_server: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartScreenshare {
    pub id: IdStart,
    #[serde(rename = "type")]
    pub kind: TypeScreenshare,
    pub role: RoleRecv,
    /// `screenshare.voiceConf`.
    pub voice_bridge: String,
    pub user_name: String,
    pub caller_name: String,
    pub has_audio: bool,
    pub content_type: String,
    pub media_server: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AudioAnswer {
    pub id: IdSubscriberAnswer,
    #[serde(rename = "type")]
    pub kind: TypeAudio,
    pub role: RoleRecv,
    /// The client's ANSWER, in a field named `sdpOffer` (sic).
    pub sdp_offer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CameraAnswer {
    pub id: IdSubscriberAnswer,
    #[serde(rename = "type")]
    pub kind: TypeVideo,
    pub role: RoleViewer,
    pub camera_id: String,
    pub answer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScreenshareAnswer {
    pub id: IdSubscriberAnswer,
    #[serde(rename = "type")]
    pub kind: TypeScreenshare,
    pub role: RoleRecv,
    pub answer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CameraCandidate {
    pub id: IdOnIceCandidate,
    #[serde(rename = "type")]
    pub kind: TypeVideo,
    pub role: RoleViewer,
    pub camera_id: String,
    pub candidate: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Candidate {
    pub id: IdIceCandidate,
    /// `audio` or `screenshare`.
    #[serde(rename = "type")]
    pub kind: String,
    pub role: RoleRecv,
    pub candidate: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopCamera {
    pub id: IdStop,
    #[serde(rename = "type")]
    pub kind: TypeVideo,
    pub role: RoleViewer,
    pub camera_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ping {
    pub id: IdPing,
}

/// What the SFU sends. Unknown ids are kept as [`ServerMessage::Unknown`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "id", rename_all = "camelCase")]
pub enum ServerMessage {
    /// The start was accepted: `sdpAnswer` holds the SERVER'S OFFER.
    StartResponse {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        #[serde(rename = "cameraId", default, skip_serializing_if = "Option::is_none")]
        camera_id: Option<String>,
        /// `accepted` for audio and screenshare; absent for video.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response: Option<String>,
        #[serde(rename = "sdpAnswer")]
        sdp_answer: String,
    },
    /// A remote ICE candidate.
    IceCandidate {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        #[serde(rename = "cameraId", default, skip_serializing_if = "Option::is_none")]
        camera_id: Option<String>,
        candidate: Value,
    },
    /// Video or screenshare media flows.
    PlayStart {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        #[serde(rename = "cameraId", default, skip_serializing_if = "Option::is_none")]
        camera_id: Option<String>,
    },
    /// The camera's publisher stopped (or its media stopped flowing).
    PlayStop {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        #[serde(rename = "cameraId", default, skip_serializing_if = "Option::is_none")]
        camera_id: Option<String>,
    },
    /// The presenter stopped sharing.
    StopSharing {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
    },
    /// Listen-only audio flows.
    #[serde(rename = "webRTCAudioSuccess")]
    WebRtcAudioSuccess {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        success: Option<String>,
    },
    /// Listen-only audio failed.
    #[serde(rename = "webRTCAudioError")]
    WebRtcAudioError {
        #[serde(rename = "type")]
        kind: String,
        code: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A refusal or failure, with a code of 2000 to 2303.
    Error {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        #[serde(rename = "streamId", default, skip_serializing_if = "Option::is_none")]
        stream_id: Option<String>,
        #[serde(rename = "cameraId", default, skip_serializing_if = "Option::is_none")]
        camera_id: Option<String>,
        code: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Pong {},
    /// Answer to an ICE restart.
    RestartIceResponse {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp: Option<String>,
    },
    #[serde(other)]
    Unknown,
}

/// Why a frame was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("SFU frame of {0} bytes is over the 51,200-byte limit")]
    TooLarge(usize),
    #[error("SFU frame is not JSON of a known shape: {0}")]
    Malformed(String),
}

fn parse<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, ParseError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(ParseError::TooLarge(text.len()));
    }
    serde_json::from_str(text).map_err(|e| {
        let mut reason = e.to_string();
        reason.truncate(160);
        ParseError::Malformed(reason)
    })
}

impl ServerMessage {
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        parse(text)
    }
}

impl ClientMessage {
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        parse(text)
    }

    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

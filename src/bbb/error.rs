//! What can go wrong talking to BBB, with BBB's own `messageKey`s as a typed enum. Messages are
//! sentences a meeting owner can read; none of them carries the secret, a checksum or a URL
//! with its query string.

/// BBB's failure and warning keys (bbb-web 3.0 templates, bbb-webhooks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageKey {
    ChecksumError,
    MissingParamMeetingId,
    MissingParamFullName,
    MissingToken,
    InvalidMeetingIdentifier,
    NotFound,
    ValidationError,
    SizeError,
    EmptyError,
    NullError,
    IdNotUnique,
    DuplicateWarning,
    InvalidPassword,
    GuestDeny,
    MeetingForciblyEnded,
    MismatchCreateTimeParam,
    MaxParticipantsReached,
    MissingSession,
    InvalidSession,
    MeetingNotFound,
    ParentMeetingIdMissing,
    ParentMeetingDoesNotExist,
    UnsupportedContentType,
    MissingParamRecordId,
    MissingParamPublish,
    NoRecordings,
    SentEndMeetingRequest,
    SuccessfullyJoined,
    MissingParamCallbackUrl,
    CreateHookError,
    MissingParamHookId,
    DestroyMissingHook,
    DestroyHookError,
    NoSessions,
    /// A key this version of amphi does not know.
    Other(String),
}

impl MessageKey {
    /// A refusal of the request itself (its checksum, a missing or invalid parameter): sending
    /// it again, or ending the meeting first, cannot help.
    pub fn is_about_the_request(&self) -> bool {
        matches!(
            self,
            Self::ChecksumError
                | Self::MissingParamMeetingId
                | Self::MissingParamFullName
                | Self::ValidationError
                | Self::SizeError
                | Self::EmptyError
                | Self::NullError
                | Self::UnsupportedContentType
                | Self::ParentMeetingIdMissing
                | Self::ParentMeetingDoesNotExist
                | Self::MissingParamRecordId
                | Self::MissingParamPublish
                | Self::MissingParamCallbackUrl
                | Self::MissingParamHookId
        )
    }

    pub fn parse(key: &str) -> Self {
        match key {
            "checksumError" => Self::ChecksumError,
            "missingParamMeetingID" => Self::MissingParamMeetingId,
            "missingParamFullName" => Self::MissingParamFullName,
            "missingToken" => Self::MissingToken,
            "invalidMeetingIdentifier" => Self::InvalidMeetingIdentifier,
            "notFound" => Self::NotFound,
            "validationError" => Self::ValidationError,
            "sizeError" => Self::SizeError,
            "emptyError" => Self::EmptyError,
            "nullError" => Self::NullError,
            "idNotUnique" => Self::IdNotUnique,
            "duplicateWarning" => Self::DuplicateWarning,
            "invalidPassword" => Self::InvalidPassword,
            "guestDeny" | "guestDeniedAccess" => Self::GuestDeny,
            "meetingForciblyEnded" => Self::MeetingForciblyEnded,
            "mismatchCreateTimeParam" => Self::MismatchCreateTimeParam,
            "maxParticipantsReached" => Self::MaxParticipantsReached,
            "missingSession" => Self::MissingSession,
            "invalidSession" => Self::InvalidSession,
            "meetingNotFound" => Self::MeetingNotFound,
            "parentMeetingIDMissing" => Self::ParentMeetingIdMissing,
            "parentMeetingDoesNotExist" => Self::ParentMeetingDoesNotExist,
            "unsupportedContentType" => Self::UnsupportedContentType,
            "missingParamRecordID" => Self::MissingParamRecordId,
            "missingParamPublish" => Self::MissingParamPublish,
            "noRecordings" => Self::NoRecordings,
            "sentEndMeetingRequest" => Self::SentEndMeetingRequest,
            "successfullyJoined" => Self::SuccessfullyJoined,
            "missingParamCallbackURL" => Self::MissingParamCallbackUrl,
            "createHookError" => Self::CreateHookError,
            "missingParamHookID" => Self::MissingParamHookId,
            "destroyMissingHook" => Self::DestroyMissingHook,
            "destroyHookError" => Self::DestroyHookError,
            "noSessions" => Self::NoSessions,
            other => Self::Other(other.to_owned()),
        }
    }

    /// BBB's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::ChecksumError => "checksumError",
            Self::MissingParamMeetingId => "missingParamMeetingID",
            Self::MissingParamFullName => "missingParamFullName",
            Self::MissingToken => "missingToken",
            Self::InvalidMeetingIdentifier => "invalidMeetingIdentifier",
            Self::NotFound => "notFound",
            Self::ValidationError => "validationError",
            Self::SizeError => "sizeError",
            Self::EmptyError => "emptyError",
            Self::NullError => "nullError",
            Self::IdNotUnique => "idNotUnique",
            Self::DuplicateWarning => "duplicateWarning",
            Self::InvalidPassword => "invalidPassword",
            Self::GuestDeny => "guestDeny",
            Self::MeetingForciblyEnded => "meetingForciblyEnded",
            Self::MismatchCreateTimeParam => "mismatchCreateTimeParam",
            Self::MaxParticipantsReached => "maxParticipantsReached",
            Self::MissingSession => "missingSession",
            Self::InvalidSession => "invalidSession",
            Self::MeetingNotFound => "meetingNotFound",
            Self::ParentMeetingIdMissing => "parentMeetingIDMissing",
            Self::ParentMeetingDoesNotExist => "parentMeetingDoesNotExist",
            Self::UnsupportedContentType => "unsupportedContentType",
            Self::MissingParamRecordId => "missingParamRecordID",
            Self::MissingParamPublish => "missingParamPublish",
            Self::NoRecordings => "noRecordings",
            Self::SentEndMeetingRequest => "sentEndMeetingRequest",
            Self::SuccessfullyJoined => "successfullyJoined",
            Self::MissingParamCallbackUrl => "missingParamCallbackURL",
            Self::CreateHookError => "createHookError",
            Self::MissingParamHookId => "missingParamHookID",
            Self::DestroyMissingHook => "destroyMissingHook",
            Self::DestroyHookError => "destroyHookError",
            Self::NoSessions => "noSessions",
            Self::Other(key) => key,
        }
    }

    /// A sentence for the person who triggered the call.
    pub fn explain(&self) -> &'static str {
        match self {
            Self::ChecksumError => {
                "The BBB server refused amphi's signature: the shared secret or the checksum algorithm in amphi's configuration does not match the server."
            }
            Self::MissingParamMeetingId
            | Self::MissingParamFullName
            | Self::MissingToken
            | Self::MissingParamRecordId
            | Self::MissingParamPublish
            | Self::MissingParamCallbackUrl
            | Self::MissingParamHookId => "The BBB server says a required parameter is missing.",
            Self::InvalidMeetingIdentifier | Self::NotFound | Self::MeetingNotFound => {
                "The meeting or recording does not exist on the BBB server, or the meeting has ended."
            }
            Self::ValidationError | Self::SizeError | Self::EmptyError | Self::NullError => {
                "The BBB server refused a value (too long, empty, or with forbidden characters)."
            }
            Self::IdNotUnique => {
                "A different meeting with the same identifier already exists on the BBB server."
            }
            Self::DuplicateWarning => "The meeting already exists on the BBB server.",
            Self::InvalidPassword => "The BBB server refused the meeting password.",
            Self::GuestDeny => "A moderator refused access to the meeting.",
            Self::MeetingForciblyEnded => {
                "The meeting was ended by a moderator; it must be started again."
            }
            Self::MismatchCreateTimeParam => {
                "The meeting was restarted in the meantime; try again."
            }
            Self::MaxParticipantsReached => "The meeting is full.",
            Self::MissingSession | Self::InvalidSession => {
                "The BBB session has expired; join again."
            }
            Self::ParentMeetingIdMissing | Self::ParentMeetingDoesNotExist => {
                "The parent meeting of this breakout room does not exist."
            }
            Self::UnsupportedContentType => "The BBB server refused the request format.",
            Self::NoRecordings => "There are no recordings.",
            Self::SentEndMeetingRequest => "The meeting is ending.",
            Self::SuccessfullyJoined => "Joined the meeting.",
            Self::CreateHookError | Self::DestroyHookError => {
                "The BBB server could not change its webhooks."
            }
            Self::DestroyMissingHook => "This webhook does not exist on the BBB server.",
            Self::NoSessions => "There are no sessions.",
            Self::Other(_) => "The BBB server refused the request.",
        }
    }
}

/// A failed BBB call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// BBB answered `FAILED`.
    #[error("{} ({})", .key.explain(), .key.as_str())]
    Api { key: MessageKey, message: String },
    /// BBB answered `FAILED` with several validation errors.
    #[error("the BBB server refused the request: {}", .errors.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; "))]
    Validation { errors: Vec<(String, String)> },
    #[error("the BBB server did not answer in time")]
    Timeout,
    #[error("cannot reach the BBB server: {0}")]
    Transport(String),
    #[error("the BBB server answered HTTP {0}")]
    Http(u16),
    #[error("the BBB server's answer could not be read: {0}")]
    Parse(String),
    #[error("no BBB server is configured (bbb.api_url)")]
    NotConfigured,
    /// amphi refused to send the request (it would be refused).
    #[error("{0}")]
    Request(String),
}

impl Error {
    /// The BBB messageKey, when BBB answered FAILED.
    pub fn key(&self) -> Option<&MessageKey> {
        match self {
            Error::Api { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Whether trying again later may help (network trouble, overload).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Timeout | Error::Transport(_) => true,
            Error::Http(status) => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_round_trips() {
        let keys = [
            "checksumError",
            "missingParamMeetingID",
            "missingParamFullName",
            "missingToken",
            "invalidMeetingIdentifier",
            "notFound",
            "validationError",
            "sizeError",
            "emptyError",
            "nullError",
            "idNotUnique",
            "duplicateWarning",
            "invalidPassword",
            "guestDeny",
            "meetingForciblyEnded",
            "mismatchCreateTimeParam",
            "maxParticipantsReached",
            "missingSession",
            "invalidSession",
            "meetingNotFound",
            "parentMeetingIDMissing",
            "parentMeetingDoesNotExist",
            "unsupportedContentType",
            "missingParamRecordID",
            "missingParamPublish",
            "noRecordings",
            "sentEndMeetingRequest",
            "successfullyJoined",
            "missingParamCallbackURL",
            "createHookError",
            "missingParamHookID",
            "destroyMissingHook",
            "destroyHookError",
            "noSessions",
        ];
        for key in keys {
            let parsed = MessageKey::parse(key);
            assert!(!matches!(parsed, MessageKey::Other(_)), "{key}");
            assert_eq!(parsed.as_str(), key);
            assert!(parsed.explain().ends_with('.'));
        }
        assert_eq!(
            MessageKey::parse("guestDeniedAccess"),
            MessageKey::GuestDeny
        );
        let unknown = MessageKey::parse("somethingNew");
        assert_eq!(unknown.as_str(), "somethingNew");
        let error = Error::Api {
            key: unknown,
            message: "x".into(),
        };
        assert_eq!(
            error.to_string(),
            "The BBB server refused the request. (somethingNew)"
        );
    }
}

//! The GraphQL operations the bot sends, written once. Columns are those BBB 3.0.15's Hasura
//! permissions grant to `bbb_client` (Hasura refuses a whole operation naming one column too
//! many). Names never start with `Patched_` (that would turn full results into JSON patches),
//! and every mutation's text starts with `mutation` and holds one field, as the middleware's
//! routing requires.

use super::protocol::Operation;
use serde_json::json;

/// The public chat's id.
pub const PUBLIC_CHAT: &str = "MAIN-PUBLIC-GROUP-CHAT";

/// The subscriptions that make up [`super::state::MeetingState`], by the id the session gives
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feed {
    UserCurrent,
    Meeting,
    /// The meeting's media bridges, asked apart: servers that do not grant these columns
    /// refuse only this subscription (then the bridges are bbb-webrtc-sfu's).
    Bridges,
    Users,
    Cameras,
    Screenshare,
    CurrentPage,
    Chat,
}

impl Feed {
    pub const ALL: [Feed; 8] = [
        Feed::UserCurrent,
        Feed::Meeting,
        Feed::Bridges,
        Feed::Users,
        Feed::Cameras,
        Feed::Screenshare,
        Feed::CurrentPage,
        Feed::Chat,
    ];

    /// The operation id on the wire.
    pub fn id(self) -> &'static str {
        match self {
            Feed::UserCurrent => "user_current",
            Feed::Meeting => "meeting",
            Feed::Bridges => "bridges",
            Feed::Users => "users",
            Feed::Cameras => "cameras",
            Feed::Screenshare => "screenshare",
            Feed::CurrentPage => "current_page",
            Feed::Chat => "chat",
        }
    }

    pub fn from_id(id: &str) -> Option<Feed> {
        Feed::ALL.into_iter().find(|f| f.id() == id)
    }

    /// The subscription; `chat_since` is the `timestamptz` the chat stream starts at (the
    /// bot's join time, so history is not replayed).
    pub fn operation(self, chat_since: &str) -> Operation {
        let (name, query) = match self {
            Feed::UserCurrent => (
                "UserCurrent",
                "subscription UserCurrent { user_current { userId authToken joined joinErrorCode \
                 joinErrorMessage ejected ejectReasonCode loggedOut guestStatus isModerator \
                 presenter currentlyInMeeting meeting { ended endedReasonCode endedByUserName } } }",
            ),
            Feed::Meeting => (
                "Meeting",
                "subscription Meeting { meeting { ended endedAt endedReasonCode endedByUserName } }",
            ),
            Feed::Bridges => (
                "MeetingBridges",
                "subscription MeetingBridges { meeting { cameraBridge screenShareBridge audioBridge } }",
            ),
            Feed::Users => (
                "Users",
                "subscription Users { user { userId extId name role presenter bot } }",
            ),
            Feed::Cameras => (
                "Cameras",
                "subscription Cameras { user_camera { streamId userId user { name presenter role } } }",
            ),
            Feed::Screenshare => (
                "Screenshare",
                "subscription Screenshare { screenshare { screenshareId stream voiceConf \
                 screenshareConf contentType hasAudio vidWidth vidHeight startedAt stoppedAt } }",
            ),
            Feed::CurrentPage => (
                "CurrentPage",
                "subscription CurrentPage { pres_page_curr { presentationId pageId num totalPages \
                 width height svgUrl: urlsJson(path: \"$.svg\") pngUrl: urlsJson(path: \"$.png\") } }",
            ),
            Feed::Chat => (
                "ChatStream",
                "subscription ChatStream($createdAt: timestamptz!) { chat_message_public_stream(\
                 cursor: {initial_value: {createdAt: $createdAt}, ordering: ASC}, batch_size: 10) \
                 { messageId createdAt message messageType senderId senderName senderRole } }",
            ),
        };
        let variables = if self == Feed::Chat {
            json!({ "createdAt": chat_since })
        } else {
            json!({})
        };
        Operation {
            operation_name: name.to_owned(),
            query: query.to_owned(),
            variables,
        }
    }
}

/// `userJoinMeeting`: turns the authenticated session into a participant.
pub fn join_meeting(auth_token: &str) -> Operation {
    Operation {
        operation_name: "UserJoinMeeting".to_owned(),
        query: "mutation UserJoinMeeting($authToken: String!, $clientType: String!) { \
                userJoinMeeting(authToken: $authToken, clientType: $clientType) }"
            .to_owned(),
        variables: json!({ "authToken": auth_token, "clientType": "HTML5" }),
    }
}

/// `chatSendMessage` to the public chat.
pub fn send_chat(message: &str) -> Operation {
    Operation {
        operation_name: "ChatSendMessage".to_owned(),
        query: "mutation ChatSendMessage($chatId: String!, $chatMessageInMarkdownFormat: String!) { \
                chatSendMessage(chatId: $chatId, chatMessageInMarkdownFormat: $chatMessageInMarkdownFormat) }"
            .to_owned(),
        variables: json!({ "chatId": PUBLIC_CHAT, "chatMessageInMarkdownFormat": message }),
    }
}

/// `userLeaveMeeting`.
pub fn leave_meeting() -> Operation {
    Operation {
        operation_name: "UserLeaveMeeting".to_owned(),
        query: "mutation UserLeaveMeeting { userLeaveMeeting }".to_owned(),
        variables: json!({}),
    }
}

/// The name of the single top-level field of a mutation, as bbb-graphql-middleware finds it
/// (the first `{ word`); `None` when the text is not a mutation it would route.
pub fn mutation_name(query: &str) -> Option<&str> {
    if !query.starts_with("mutation") {
        return None;
    }
    let after = &query[query.find('{')? + 1..];
    let name = after
        .trim_start()
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_follow_the_middleware_rules() {
        for feed in Feed::ALL {
            let op = feed.operation("2026-11-27T10:00:00Z");
            assert!(op.query.starts_with("subscription "), "{feed:?}");
            assert!(!op.operation_name.starts_with("Patched_"));
            assert_eq!(Feed::from_id(feed.id()), Some(feed));
        }
        for (op, name) in [
            (join_meeting("tok"), "userJoinMeeting"),
            (send_chat("hello"), "chatSendMessage"),
            (leave_meeting(), "userLeaveMeeting"),
        ] {
            assert_eq!(mutation_name(&op.query), Some(name));
            assert_eq!(
                op.query.matches('{').count(),
                1,
                "one top-level field: {}",
                op.query
            );
        }
        assert_eq!(
            mutation_name(" mutation X { y }"),
            None,
            "leading space is not routed"
        );
        assert_eq!(mutation_name("subscription X { y }"), None);
    }
}

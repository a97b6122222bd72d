//! The OpenAPI 3.1 description of amphi's JSON API, served at `/api/v1/openapi.json`.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

/// The meeting form's fields as JSON Schema properties.
fn input_properties() -> Value {
    json!({
        "name": { "type": "string", "minLength": 2, "maxLength": 250 },
        "owner": { "type": "string", "description": "Username; only for users who may choose the owner" },
        "additional_owners": { "type": "array", "items": { "type": "string" } },
        "attendee_password": { "type": "string", "maxLength": 50 },
        "is_restricted": { "type": "boolean" },
        "restrict_access_to_groups": { "type": "array", "items": { "type": "string" } },
        "start": { "type": "string", "format": "date" },
        "start_time": { "type": "string", "pattern": "^[0-2][0-9]:[03]0$" },
        "expected_duration": { "type": "integer", "minimum": 1 },
        "recurrence": { "enum": ["daily", "weekly", "monthly", "yearly"] },
        "frequency": { "type": "integer", "minimum": 1, "maximum": 100 },
        "recurring_until": { "type": "string", "format": "date" },
        "nb_occurrences": { "type": "integer", "minimum": 1 },
        "weekdays": { "type": "array", "items": { "type": "integer", "minimum": 0, "maximum": 6 }, "description": "Monday = 0" },
        "monthly_type": { "enum": ["date_day", "nth_day"] },
        "max_participants": { "type": "integer", "minimum": 0 },
        "welcome_text": { "type": "string" },
        "record": { "type": "boolean" },
        "auto_start_recording": { "type": "boolean" },
        "allow_start_stop_recording": { "type": "boolean" },
        "webcam_only_for_moderators": { "type": "boolean" },
        "guest_policy": { "enum": ["ALWAYS_ACCEPT", "ALWAYS_DENY", "ASK_MODERATOR"] },
        "lock_settings_disable_cam": { "type": "boolean" },
        "lock_settings_disable_mic": { "type": "boolean" },
        "lock_settings_disable_private_chat": { "type": "boolean" },
        "lock_settings_disable_public_chat": { "type": "boolean" },
        "lock_settings_disable_note": { "type": "boolean" },
        "lock_settings_locked_layout": { "type": "boolean" },
        "parent_meeting_id": { "type": "string", "maxLength": 100 },
        "voice_bridge": { "type": "integer", "minimum": 10000, "maximum": 99998 },
        "is_webinar": { "type": "boolean" },
        "enable_chat": { "type": "boolean" },
        "webinar_layout": { "type": "string", "enum": ["presentation-pip", "presentation-strip", "presentation", "cameras"] },
        "webinar_anonymous_chat": { "type": "boolean" },
        "webinar_keep_video": { "type": "boolean" }
    })
}

/// The document; `public_url` becomes the server URL.
pub fn document(public_url: &str) -> Value {
    let id =
        json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } });
    let meeting = json!({ "$ref": "#/components/schemas/Meeting" });
    let input = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/MeetingInput" } } } });
    let ok = |schema: Value| json!({ "description": "OK", "content": { "application/json": { "schema": schema } } });
    let invalid = json!({ "description": "Invalid fields, with a message per field", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/FieldErrors" } } } });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "amphi API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Meetings of amphi, the BigBlueButton webinar gateway. Authenticate with an API token (`amphi token create USER`) sent as `Authorization: Token <token>` or `Authorization: Bearer <token>`. Fields are those of the meeting form; the same rules apply as in the pages."
        },
        "servers": [{ "url": format!("{}/api/v1", public_url.trim_end_matches('/')) }],
        "security": [{ "token": [] }],
        "paths": {
            "/me": { "get": { "summary": "The calling user", "responses": { "200": ok(json!({ "type": "object" })), "401": error_response("No valid token") } } },
            "/meetings": {
                "get": { "summary": "The caller's meetings (owned or co-owned), personal room first", "responses": { "200": ok(json!({ "type": "object", "properties": { "results": { "type": "array", "items": meeting }, "count": { "type": "integer" } } })), "401": error_response("No valid token") } },
                "post": { "summary": "Create a meeting", "requestBody": input, "responses": { "201": ok(meeting.clone()), "401": error_response("No valid token"), "403": error_response("Not allowed"), "422": invalid } }
            },
            "/meetings/{id}": {
                "parameters": [id],
                "get": { "summary": "A meeting (the attendee password only for its managers)", "responses": { "200": ok(meeting.clone()), "403": error_response("Not allowed"), "404": error_response("No such meeting") } },
                "put": { "summary": "Replace a meeting's fields (the BBB meeting id never changes)", "requestBody": input, "responses": { "200": ok(meeting.clone()), "403": error_response("Not allowed"), "404": error_response("No such meeting"), "422": invalid } },
                "delete": { "summary": "Delete a meeting (never a personal room)", "responses": { "204": { "description": "Deleted" }, "403": error_response("Not allowed"), "404": error_response("No such meeting") } }
            },
            "/meetings/{id}/status": {
                "parameters": [id],
                "get": { "summary": "Whether the meeting runs on BBB", "responses": { "200": ok(json!({ "type": "object", "properties": { "running": { "type": "boolean" } } })), "503": error_response("BBB unreachable") } }
            },
            "/meetings/{id}/join": {
                "parameters": [id],
                "post": {
                    "summary": "A BBB join URL for the caller: owners start the meeting and moderate; others give the attendee password or the direct key",
                    "requestBody": { "required": false, "content": { "application/json": { "schema": { "type": "object", "properties": { "password": { "type": "string" }, "direct_key": { "type": "string" } } } } } },
                    "responses": { "200": ok(json!({ "type": "object", "properties": { "url": { "type": "string", "format": "uri" }, "role": { "enum": ["MODERATOR", "VIEWER"] } } })), "403": error_response("Not allowed or wrong password"), "409": error_response("The meeting has not started"), "429": error_response("Too many wrong passwords") }
                }
            },
            "/meetings/{id}/end": {
                "parameters": [id],
                "post": { "summary": "End the meeting on BBB", "responses": { "200": ok(json!({ "type": "object", "properties": { "ended": { "type": "boolean" } } })), "403": error_response("Not allowed") } }
            },
            "/meetings/{id}/invite": {
                "parameters": [id],
                "post": {
                    "summary": "Mail invitations with a calendar file",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["emails"], "properties": { "emails": { "type": "array", "items": { "type": "string", "format": "email" } }, "owner_copy": { "type": "boolean" } } } } } },
                    "responses": { "200": ok(json!({ "type": "object", "properties": { "sent": { "type": "integer" }, "failed": { "type": "array", "items": { "type": "string" } } } })), "422": invalid, "503": error_response("Mail is not configured") }
                }
            }
        },
        "components": {
            "securitySchemes": { "token": { "type": "apiKey", "in": "header", "name": "Authorization", "description": "`Token <token>` or `Bearer <token>`" } },
            "schemas": {
                "Error": { "type": "object", "properties": { "error": { "type": "string" } } },
                "FieldErrors": { "type": "object", "properties": { "errors": { "type": "object", "additionalProperties": { "type": "string" } } } },
                "MeetingInput": {
                    "type": "object",
                    "description": "The meeting form's fields. Booleans are true or absent; `start` is a local date (YYYY-MM-DD) and `start_time` a local time on the half hour (HH:MM) in the site's time zone; `expected_duration` is in hours.",
                    "required": ["name", "attendee_password", "start", "start_time", "expected_duration"],
                    "properties": input_properties()
                },
                "Meeting": {
                    "type": "object",
                    "properties": {
                        "id": { "type": "integer" },
                        "meeting_id": { "type": "string", "description": "BBB meetingID, fixed at creation" },
                        "name": { "type": "string" },
                        "owner": { "type": "string" },
                        "additional_owners": { "type": "array", "items": { "type": "string" } },
                        "attendee_password": { "type": ["string", "null"] },
                        "is_restricted": { "type": "boolean" },
                        "restrict_access_to_groups": { "type": "array", "items": { "type": "string" } },
                        "start_at": { "type": "string", "format": "date-time" },
                        "expected_duration_minutes": { "type": "integer" },
                        "recurrence": { "type": ["object", "null"] },
                        "is_personal": { "type": "boolean" },
                        "is_running": { "type": "boolean" },
                        "join_url": { "type": "string", "format": "uri" }
                    }
                }
            }
        }
    })
}

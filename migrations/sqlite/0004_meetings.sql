-- Meetings (Esup-Pod's meeting module), their co-owners and access groups, and the session
-- journal. Timestamps are milliseconds since the Unix epoch (UTC); dates are ISO text.

CREATE TABLE meetings (
    id                          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- BBB meetingID, "%04d-" + slug(name), fixed at creation.
    meeting_id                  TEXT    NOT NULL UNIQUE CHECK (length(meeting_id) BETWEEN 2 AND 256),
    name                        TEXT    NOT NULL CHECK (length(name) BETWEEN 2 AND 250),
    owner_id                    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    attendee_password           TEXT    NOT NULL CHECK (length(attendee_password) BETWEEN 1 AND 50),
    moderator_password          TEXT    NOT NULL DEFAULT '' CHECK (length(moderator_password) <= 50),
    is_restricted               BOOLEAN NOT NULL DEFAULT FALSE,
    start_at                    BIGINT  NOT NULL,
    expected_duration_minutes   BIGINT  NOT NULL DEFAULT 120 CHECK (expected_duration_minutes > 0),
    recurrence                  TEXT    CHECK (recurrence IN ('daily', 'weekly', 'monthly', 'yearly')),
    frequency                   BIGINT  NOT NULL DEFAULT 1 CHECK (frequency BETWEEN 1 AND 100),
    recurring_until             TEXT,
    nb_occurrences              BIGINT  CHECK (nb_occurrences >= 1),
    weekdays                    TEXT    CHECK (weekdays IS NULL OR length(weekdays) <= 7),
    monthly_type                TEXT    NOT NULL DEFAULT 'date_day' CHECK (monthly_type IN ('date_day', 'nth_day')),
    max_participants            BIGINT  NOT NULL DEFAULT 150 CHECK (max_participants >= 0),
    welcome_text                TEXT    NOT NULL DEFAULT '',
    webcam_only_for_moderators  BOOLEAN NOT NULL DEFAULT FALSE,
    record                      BOOLEAN NOT NULL DEFAULT FALSE,
    auto_start_recording        BOOLEAN NOT NULL DEFAULT FALSE,
    allow_start_stop_recording  BOOLEAN NOT NULL DEFAULT TRUE,
    guest_policy                TEXT    CHECK (guest_policy IN ('ALWAYS_ACCEPT', 'ALWAYS_DENY', 'ASK_MODERATOR')),
    lock_settings_disable_cam           BOOLEAN NOT NULL DEFAULT FALSE,
    lock_settings_disable_mic           BOOLEAN NOT NULL DEFAULT FALSE,
    lock_settings_disable_private_chat  BOOLEAN NOT NULL DEFAULT FALSE,
    lock_settings_disable_public_chat   BOOLEAN NOT NULL DEFAULT FALSE,
    lock_settings_disable_note          BOOLEAN NOT NULL DEFAULT FALSE,
    lock_settings_locked_layout         BOOLEAN NOT NULL DEFAULT FALSE,
    parent_meeting_id           TEXT    CHECK (parent_meeting_id IS NULL OR length(parent_meeting_id) <= 100),
    voice_bridge                BIGINT  CHECK (voice_bridge IS NULL OR voice_bridge BETWEEN 10000 AND 99999),
    -- Slides: file name under data_dir/slides/<id>/, or NULL.
    slides                      TEXT,
    is_personal                 BOOLEAN NOT NULL DEFAULT FALSE,
    is_webinar                  BOOLEAN NOT NULL DEFAULT FALSE,
    enable_chat                 BOOLEAN NOT NULL DEFAULT FALSE,
    internal_meeting_id         TEXT,
    bbb_create_time             BIGINT,
    is_running                  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at                  BIGINT  NOT NULL,
    updated_at                  BIGINT  NOT NULL,
    CHECK ((recurring_until IS NULL) = (nb_occurrences IS NULL)),
    CHECK (recurrence IS NULL OR recurring_until IS NOT NULL)
);

CREATE INDEX meetings_owner ON meetings (owner_id);
CREATE INDEX meetings_start ON meetings (start_at);
-- One personal room per user.
CREATE UNIQUE INDEX meetings_one_personal_room ON meetings (owner_id) WHERE is_personal;

CREATE TABLE meeting_owners (
    meeting_id BIGINT NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (meeting_id, user_id)
);

CREATE TABLE meeting_groups (
    meeting_id BIGINT NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    group_id   BIGINT NOT NULL REFERENCES access_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (meeting_id, group_id)
);

-- One row per BBB session amphi started (Pod's MeetingSessionLog).
CREATE TABLE meeting_sessions (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    meeting_id          BIGINT NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    creator_id          BIGINT REFERENCES users (id) ON DELETE SET NULL,
    internal_meeting_id TEXT   NOT NULL DEFAULT '',
    created_at          BIGINT NOT NULL,
    ended_at            BIGINT,
    peak_participants   BIGINT  NOT NULL DEFAULT 0
);

CREATE INDEX meeting_sessions_meeting ON meeting_sessions (meeting_id, created_at);

-- Who joined a session, with what role, when, and when they left if known.
CREATE TABLE meeting_participants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  BIGINT NOT NULL REFERENCES meeting_sessions (id) ON DELETE CASCADE,
    user_id     BIGINT REFERENCES users (id) ON DELETE SET NULL,
    full_name   TEXT   NOT NULL,
    role        TEXT   NOT NULL CHECK (role IN ('MODERATOR', 'VIEWER')),
    -- BBB's internal user id once known (webhooks, getMeetingInfo), to record leaving.
    bbb_user_id TEXT,
    joined_at   BIGINT NOT NULL,
    left_at     BIGINT
);

CREATE INDEX meeting_participants_session ON meeting_participants (session_id, joined_at);

-- Participant counts sampled while a session runs.
CREATE TABLE meeting_session_counts (
    session_id   BIGINT  NOT NULL REFERENCES meeting_sessions (id) ON DELETE CASCADE,
    at           BIGINT  NOT NULL,
    participants BIGINT  NOT NULL,
    PRIMARY KEY (session_id, at)
);

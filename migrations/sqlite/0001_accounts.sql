-- Accounts, groups, permissions, sessions, API tokens, login throttling, settings.
-- Timestamps are milliseconds since the Unix epoch (UTC).

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 150),
    display_name  TEXT    NOT NULL DEFAULT '',
    email         TEXT    NOT NULL DEFAULT '',
    password_hash TEXT,
    is_staff      BOOLEAN NOT NULL DEFAULT FALSE,
    is_superuser  BOOLEAN NOT NULL DEFAULT FALSE,
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    affiliation   TEXT    NOT NULL DEFAULT '',
    language      TEXT    NOT NULL DEFAULT '',
    created_at    BIGINT  NOT NULL,
    last_login_at BIGINT
);

CREATE TABLE access_groups (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    code_name    TEXT NOT NULL UNIQUE CHECK (length(code_name) BETWEEN 1 AND 250),
    display_name TEXT NOT NULL DEFAULT ''
);

CREATE TABLE user_access_groups (
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id BIGINT NOT NULL REFERENCES access_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);

CREATE TABLE permissions (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    codename TEXT NOT NULL UNIQUE,
    name     TEXT NOT NULL
);

CREATE TABLE permission_groups (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE permission_group_members (
    group_id BIGINT NOT NULL REFERENCES permission_groups (id) ON DELETE CASCADE,
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);

CREATE TABLE permission_group_permissions (
    group_id      BIGINT NOT NULL REFERENCES permission_groups (id) ON DELETE CASCADE,
    permission_id BIGINT NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, permission_id)
);

CREATE TABLE user_permissions (
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    permission_id BIGINT NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, permission_id)
);

CREATE TABLE sessions (
    token_hash   TEXT   PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   TEXT   NOT NULL UNIQUE,
    label        TEXT   NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);

CREATE TABLE login_failures (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT   NOT NULL,
    ip       TEXT   NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX login_failures_username ON login_failures (username, at);
CREATE INDEX login_failures_ip ON login_failures (ip, at);

-- The permissions Pod's meeting module checks (see docs/ref/pod-differences.md).
INSERT INTO permissions (codename, name) VALUES
    ('meeting.add_meeting', 'Can add meeting'),
    ('meeting.change_meeting', 'Can change meeting'),
    ('meeting.delete_meeting', 'Can delete meeting'),
    ('meeting.view_meeting', 'Can view meeting'),
    ('meeting.end_meeting', 'Can end meeting');

-- The audience chat of each live: every message kept once (the room numbers them), and for
-- audience messages their delivery into the meeting's public chat, retried until it succeeds.
CREATE TABLE chat_messages (
    live TEXT NOT NULL,
    id BIGINT NOT NULL,
    -- 'audience' or 'meeting'
    origin TEXT NOT NULL,
    author TEXT NOT NULL,
    author_key TEXT NOT NULL,
    text TEXT NOT NULL,
    at BIGINT NOT NULL,
    question BOOLEAN NOT NULL DEFAULT FALSE,
    votes INTEGER NOT NULL DEFAULT 0,
    answered BOOLEAN NOT NULL DEFAULT FALSE,
    hidden BOOLEAN NOT NULL DEFAULT FALSE,
    -- Audience messages: the name shown in the meeting, and 'pending' until BBB took it
    -- ('delivered'); NULL for messages that came from the meeting.
    sender TEXT,
    delivery TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    PRIMARY KEY (live, id)
);
CREATE INDEX chat_messages_pending ON chat_messages (live, id) WHERE delivery = 'pending';

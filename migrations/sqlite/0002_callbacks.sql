-- BBB callbacks already acted upon, so a callback BBB repeats (once per playback format for
-- recording-ready, retries after a timeout) produces one event, across restarts and instances.
CREATE TABLE callback_receipts (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);

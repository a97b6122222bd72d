-- The live of each webinar (Pod's Livestream): its public slug and state as Pod numbers it
-- (0 not started, 1 in progress, 2 stopped), what the owner asked for, and which instance
-- captures it under a lease. Timestamps are milliseconds since the Unix epoch (UTC).
CREATE TABLE lives (
    meeting_id      BIGINT  PRIMARY KEY REFERENCES meetings (id) ON DELETE CASCADE,
    slug            TEXT    NOT NULL UNIQUE,
    status          BIGINT  NOT NULL DEFAULT 0 CHECK (status IN (0, 1, 2)),
    -- The owner started it and it has not ended: some instance should capture it.
    wanted          BOOLEAN NOT NULL DEFAULT FALSE,
    started_at      BIGINT,
    ended_at        BIGINT,
    viewer_peak     BIGINT  NOT NULL DEFAULT 0,
    -- The owner's "show / hide the chat" while live.
    show_chat       BOOLEAN NOT NULL DEFAULT TRUE,
    -- The instance capturing it, until when, unless it renews.
    lease_holder    TEXT,
    lease_until     BIGINT,
    -- Where the HLS numbering goes on when the capture starts again in a new process.
    next_sequence   BIGINT  NOT NULL DEFAULT 0,
    discontinuities BIGINT  NOT NULL DEFAULT 0,
    init_generation BIGINT  NOT NULL DEFAULT 0,
    restarts        BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE INDEX lives_wanted ON lives (wanted);

-- The webinar options beyond Pod's is_webinar and enable_chat.
ALTER TABLE meetings ADD COLUMN webinar_layout TEXT NOT NULL DEFAULT 'presentation-pip';
ALTER TABLE meetings ADD COLUMN webinar_anonymous_chat BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE meetings ADD COLUMN webinar_keep_video BOOLEAN NOT NULL DEFAULT FALSE;

-- Videos kept by amphi (the library; for now the lives kept when they end): files under
-- data_dir/videos/, an HLS VOD with the live's renditions.
CREATE TABLE videos (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       TEXT    NOT NULL,
    -- 'live' (a webinar's live), later 'recording' and 'url'
    origin      TEXT    NOT NULL,
    -- The live's slug, the recording id, the URL
    origin_ref  TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    duration_ms BIGINT  NOT NULL DEFAULT 0,
    -- Folder of the files, relative to data_dir
    path        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- The instances that capture lives, as they last announced themselves: the cluster's capacity
-- is the sum of the lives each one can capture.
CREATE TABLE capture_instances (
    name      TEXT    PRIMARY KEY,
    max_lives BIGINT  NOT NULL,
    seen_at   BIGINT  NOT NULL
);

-- The video library: what Pod's Video holds that amphi needs (description, draft, where it
-- came from, a thumbnail), and the jobs that fill it (a recording uploaded as a video, a video
-- imported from a URL): queued in the database, run by one worker of some instance under a
-- lease, with the step and percentage shown to the owner. Times in ms since the epoch (UTC).
ALTER TABLE videos ADD COLUMN description TEXT NOT NULL DEFAULT '';
-- Drafts are seen by their owner (and admins) only; Pod creates imported videos as drafts.
ALTER TABLE videos ADD COLUMN draft BOOLEAN NOT NULL DEFAULT TRUE;
-- The page or file the video came from (no one-time token kept).
ALTER TABLE videos ADD COLUMN source_url TEXT NOT NULL DEFAULT '';
-- File name of the thumbnail inside the video's folder; empty: none.
ALTER TABLE videos ADD COLUMN thumbnail TEXT NOT NULL DEFAULT '';
-- The meeting a BBB recording came from (Pod's InternalRecording).
ALTER TABLE videos ADD COLUMN meeting_id BIGINT REFERENCES meetings (id) ON DELETE SET NULL;
ALTER TABLE videos ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX videos_owner ON videos (owner_id);
CREATE INDEX videos_origin ON videos (origin, origin_ref);

CREATE TABLE video_jobs (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    video_id    BIGINT  NOT NULL UNIQUE REFERENCES videos (id) ON DELETE CASCADE,
    -- What to fetch, as JSON ({"recording": …} or {"url": …}).
    source      TEXT    NOT NULL,
    -- 'queued', 'running', 'done', 'failed'
    state       TEXT    NOT NULL DEFAULT 'queued',
    -- 'download', 'transcode', 'thumbnail' while running
    step        TEXT    NOT NULL DEFAULT '',
    progress    BIGINT  NOT NULL DEFAULT 0,
    -- Why it failed, in the user's words
    error       TEXT    NOT NULL DEFAULT '',
    attempts    BIGINT  NOT NULL DEFAULT 0,
    lease_holder TEXT,
    lease_until BIGINT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX video_jobs_state ON video_jobs (state);

-- Recording-ready callbacks received before the mail existed are not mailed now.
UPDATE callback_receipts SET handled_at = received_at
    WHERE kind = 'recording-ready' AND handled_at IS NULL;

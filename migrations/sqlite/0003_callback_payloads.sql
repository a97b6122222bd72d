-- What a callback said, kept until a consumer has acted on it, so an event is never lost to a
-- restart or to a subscriber that fell behind.
ALTER TABLE callback_receipts ADD COLUMN payload TEXT NOT NULL DEFAULT '';
ALTER TABLE callback_receipts ADD COLUMN handled_at BIGINT;

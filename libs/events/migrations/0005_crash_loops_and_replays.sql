-- Runs of a handler begun and finished on redelivered messages: a run that begins and never
-- finishes is one whose process died under it (killed, out of memory, a crash in a library).
-- An event that keeps killing its process is parked after as many such runs as attempts.
ALTER TABLE eventstore.consumer_attempts
    ADD COLUMN starts integer NOT NULL DEFAULT 0,
    ADD COLUMN finishes integer NOT NULL DEFAULT 0;
ALTER TABLE eventstore.consumer_attempts ALTER COLUMN attempts SET DEFAULT 0;
ALTER TABLE eventstore.consumer_attempts ALTER COLUMN last_error SET DEFAULT '';

-- A replay in progress, or one that was interrupted (finished_at NULL): a live consumer that
-- finds one unfinished, and no replay holding the lock, runs it again to the end.
CREATE TABLE eventstore.replays (
    consumer     text PRIMARY KEY,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz
);

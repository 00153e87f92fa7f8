-- Failure paths (see libs/events/checkpoints.py, parking.py, timers.py):
-- * a consumer's checkpoint also lists the versions above it that were parked, so the checkpoint
--   only ever passes an event that was handled or parked itself;
-- * attempts are counted by us, per (consumer, event), not by the bus's delivery count (which
--   also counts ack-wait redeliveries);
-- * a timer stores the schema version of its payload, so an old payload is upcast when it fires,
--   and a timer that cannot fire is parked alone with its error.
ALTER TABLE eventstore.consumer_streams
    ADD COLUMN parked integer[] NOT NULL DEFAULT '{}';

CREATE TABLE eventstore.consumer_attempts (
    consumer    text        NOT NULL,
    event_id    uuid        NOT NULL,
    attempts    integer     NOT NULL,
    last_error  text        NOT NULL,
    last_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

ALTER TABLE eventstore.timers ADD COLUMN schema_version smallint;
ALTER TABLE eventstore.timers ADD COLUMN error text;
ALTER TABLE eventstore.timers DROP CONSTRAINT timers_state_check;
ALTER TABLE eventstore.timers ADD CONSTRAINT timers_state_check
    CHECK (state IN ('pending', 'fired', 'cancelled', 'parked'));

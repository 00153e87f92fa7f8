-- The append-only event log, the relay's checkpoint, consumer checkpoints and parked events.
CREATE SCHEMA IF NOT EXISTS eventstore;

CREATE TABLE eventstore.events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              uuid        NOT NULL,
    stream_id       text        NOT NULL,
    version         integer     NOT NULL CHECK (version >= 1),
    type            text        NOT NULL,
    schema_version  smallint    NOT NULL CHECK (schema_version >= 1),
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- The writing transaction: readers take only rows below the oldest running transaction,
    -- so an event that commits late is never skipped (see libs/events/store.py).
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT events_id_unique UNIQUE (id),
    CONSTRAINT events_stream_version_unique UNIQUE (stream_id, version)
);
CREATE INDEX events_commit_order ON eventstore.events (tx_id, position);

CREATE FUNCTION eventstore.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'eventstore.events is append-only: % is refused', TG_OP
        USING ERRCODE = 'OL001';
END $$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON eventstore.events
    FOR EACH ROW EXECUTE FUNCTION eventstore.refuse_change();
CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON eventstore.events
    FOR EACH STATEMENT EXECUTE FUNCTION eventstore.refuse_change();

-- A wake-up for the relay; never a carrier of data.
CREATE FUNCTION eventstore.notify_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eventstore_appended', '');
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify
    AFTER INSERT ON eventstore.events
    FOR EACH STATEMENT EXECUTE FUNCTION eventstore.notify_appended();

CREATE TABLE eventstore.relay_checkpoint (
    name      text PRIMARY KEY,
    tx_id     xid8   NOT NULL,
    position  bigint NOT NULL
);

-- Last stream version each consumer has processed: the "processed" mark that commits in the
-- same transaction as the consumer's projection update.
CREATE TABLE eventstore.consumer_streams (
    consumer   text    NOT NULL,
    stream_id  text    NOT NULL,
    version    integer NOT NULL,
    PRIMARY KEY (consumer, stream_id)
);

-- Events a consumer failed on after its last attempt, for an operator to see and retry.
CREATE TABLE eventstore.parked_events (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    stream_id    text        NOT NULL,
    version      integer     NOT NULL,
    type         text        NOT NULL,
    error        text        NOT NULL,
    attempts     integer     NOT NULL,
    parked_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    PRIMARY KEY (consumer, event_id)
);

-- Durable timers: an inline projection of the timer.* events, written in the same transaction.
CREATE TABLE eventstore.timers (
    timer_id       uuid PRIMARY KEY,
    due_at         timestamptz NOT NULL,
    target_stream  text        NOT NULL,
    event_type     text        NOT NULL,
    event_data     jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    state          text        NOT NULL CHECK (state IN ('pending', 'fired', 'cancelled'))
);
CREATE INDEX timers_pending_due ON eventstore.timers (due_at) WHERE state = 'pending';

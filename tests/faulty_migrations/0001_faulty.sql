CREATE SCHEMA faulty;
-- no unique constraint: a committed duplicate must be visible, not refused
CREATE TABLE faulty.handled (
    seq bigserial PRIMARY KEY, event_id uuid NOT NULL, stream_id text NOT NULL,
    version integer NOT NULL, consumer text NOT NULL
);
CREATE TABLE faulty.attempts (event_id uuid PRIMARY KEY, attempts integer NOT NULL);

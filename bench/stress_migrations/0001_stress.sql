-- The stress service's record of every event its handler ran for (bench/stress.py).
-- Deliberately NO unique constraint on event_id: the handler inserts in its own transaction,
-- which the runtime commits together with the consumer checkpoint, so a second committed row
-- for one event is a duplicate the runtime let through.
CREATE SCHEMA bench_stress;
CREATE TABLE bench_stress.handled (
    id          bigserial   PRIMARY KEY,
    event_id    uuid        NOT NULL,
    stream_id   text        NOT NULL,
    version     integer     NOT NULL,
    replica     text        NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX handled_event_id ON bench_stress.handled (event_id);

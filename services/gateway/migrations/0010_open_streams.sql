-- Open live streams (GET /api/v1/stream), so the per-user cap holds across gateway replicas.
-- Each row is kept alive by its gateway's heartbeat; a row whose heartbeat stopped (its gateway
-- was killed) no longer counts and is deleted by the next opening. Operational state, not a
-- projection: a replay keeps it.
CREATE SCHEMA IF NOT EXISTS gateway;
CREATE TABLE gateway.open_streams (
    stream_id     uuid PRIMARY KEY,
    user_id       text NOT NULL,
    opened_at     timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX open_streams_by_user ON gateway.open_streams (user_id);
CREATE INDEX open_streams_by_heartbeat ON gateway.open_streams (heartbeat_at);

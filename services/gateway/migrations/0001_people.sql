-- People, sessions and API tokens (projections of user.* events), session activity and
-- rate-limit counters (operational state, not rebuilt by replay).
CREATE SCHEMA IF NOT EXISTS gateway;

CREATE TABLE gateway.users (
    user_id        text PRIMARY KEY,
    email          text NOT NULL UNIQUE,
    name           text NOT NULL,
    role           text NOT NULL CHECK (role IN ('requester', 'operator', 'admin')),
    password_hash  text NOT NULL DEFAULT '',
    registered_at  timestamptz NOT NULL
);

CREATE TABLE gateway.sessions (
    session_id   text PRIMARY KEY,
    user_id      text NOT NULL,
    secret_hash  text NOT NULL,
    started_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    end_reason   text
);
CREATE INDEX sessions_by_user ON gateway.sessions (user_id);

-- Sliding idle expiry: touched at most once a minute per session. Not an event (it would flood
-- the log) and not a projection table, so a replay keeps it.
CREATE TABLE gateway.session_activity (
    session_id  text PRIMARY KEY,
    last_seen   timestamptz NOT NULL
);

CREATE TABLE gateway.tokens (
    token_id    text PRIMARY KEY,
    user_id     text NOT NULL,
    name        text NOT NULL,
    scopes      text[] NOT NULL,
    token_hash  text NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX tokens_by_user ON gateway.tokens (user_id, token_id);

-- Fixed-window counters shared by every gateway replica.
CREATE TABLE gateway.rate_limits (
    key           text NOT NULL,
    window_start  timestamptz NOT NULL,
    hits          integer NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_limits_by_window ON gateway.rate_limits (window_start);

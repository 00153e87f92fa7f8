-- The people service's read model (rebuilt from the log by `opsledger replay people`): users
-- with their password hashes, sessions and API tokens, projected from user.* events.
CREATE SCHEMA IF NOT EXISTS people;

CREATE TABLE people.users (
    user_id        text PRIMARY KEY,
    email          text NOT NULL UNIQUE,
    name           text NOT NULL,
    role           text NOT NULL CHECK (role IN ('requester', 'operator', 'admin')),
    password_hash  text NOT NULL DEFAULT '',
    registered_at  timestamptz NOT NULL
);

CREATE TABLE people.sessions (
    session_id   text PRIMARY KEY,
    user_id      text NOT NULL,
    started_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    end_reason   text
);
CREATE INDEX sessions_by_user ON people.sessions (user_id);

CREATE TABLE people.tokens (
    token_id    text PRIMARY KEY,
    user_id     text NOT NULL,
    name        text NOT NULL,
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX tokens_by_user ON people.tokens (user_id, token_id);

-- Upgrading a deployment where the gateway owned people: its tables already hold this model
-- (it projected the same events). Copy them, with that consumer's checkpoints, so the new
-- projection starts where the old one was instead of rebuilding from the log. Only while the
-- gateway's users still carry password hashes (its migration 0003 drops them): otherwise
-- nothing is copied, and the new projection builds itself from the log on its first start.
-- The tables are locked first, so rows and checkpoints are copied as of one moment (events
-- the old consumer had parked are tried again, not taken as passed).
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'gateway' AND table_name = 'users' AND column_name = 'password_hash'
    ) THEN
        LOCK TABLE gateway.users, gateway.sessions, gateway.tokens IN SHARE MODE;
        INSERT INTO people.users (user_id, email, name, role, password_hash, registered_at)
            SELECT user_id, email, name, role, password_hash, registered_at FROM gateway.users;
        INSERT INTO people.sessions (session_id, user_id, started_at, expires_at, ended_at,
                                     end_reason)
            SELECT session_id, user_id, started_at, expires_at, ended_at, end_reason
            FROM gateway.sessions;
        INSERT INTO people.tokens (token_id, user_id, name, scopes, created_at, revoked_at)
            SELECT token_id, user_id, name, scopes, created_at, revoked_at FROM gateway.tokens;
        INSERT INTO eventstore.consumer_streams (consumer, stream_id, version, parked)
            SELECT 'people', stream_id, version, '{}' FROM eventstore.consumer_streams
            WHERE consumer = 'gateway-people';
    END IF;
END
$$;

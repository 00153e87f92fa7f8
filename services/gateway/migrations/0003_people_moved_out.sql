-- People moved to the people service (its schema `people`). The gateway keeps what it needs to
-- authenticate a request: users (id, email, name, role), sessions, tokens (a read model of the
-- user.* events), session activity and rate limits. Password hashes are no longer among them.
ALTER TABLE gateway.users DROP COLUMN IF EXISTS password_hash;

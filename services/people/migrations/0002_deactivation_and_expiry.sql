-- Deactivated users (user.deactivated / user.reactivated) and API tokens that expire
-- (user.token_created v2). Existing users are active; existing tokens never expire.
ALTER TABLE people.users ADD COLUMN active boolean NOT NULL DEFAULT true;
ALTER TABLE people.tokens ADD COLUMN expires_at timestamptz;

-- The authentication read model learns deactivated users (user.deactivated / user.reactivated)
-- and API tokens that expire (user.token_created v2). Existing users are active; existing
-- tokens never expire. (Numbered 0006: 0004 and 0005 belong to changes landing alongside.)
ALTER TABLE gateway.users ADD COLUMN active boolean NOT NULL DEFAULT true;
ALTER TABLE gateway.tokens ADD COLUMN expires_at timestamptz;

-- In-app notifications and the people they are for (rebuilt from the log by
-- `opsledger replay executor`: both are projections).

-- Who holds which role, and who is deactivated (user.* events): whom `role:<role>` and an
-- approval's roles reach (services/executor/people.py).
CREATE TABLE executor.people (
    user_id  text PRIMARY KEY,
    role     text    NOT NULL,
    active   boolean NOT NULL DEFAULT true
);
CREATE INDEX people_by_role ON executor.people (role) WHERE active;

-- One row per notification, as its notification.* events leave it; a user's list is keyset
-- paged newest first by the position of its notification.created.
CREATE TABLE executor.notifications (
    notification_id  text PRIMARY KEY,
    position         bigint      NOT NULL,
    user_id          text        NOT NULL,
    kind             text        NOT NULL,
    message          text        NOT NULL,
    ticket           text,
    approval_id      text,
    job_id           text,
    created_at       timestamptz NOT NULL,
    read_at          timestamptz
);
CREATE INDEX notifications_by_user ON executor.notifications (user_id, position DESC);
CREATE INDEX notifications_unread ON executor.notifications (user_id, position DESC)
    WHERE read_at IS NULL;

-- The approvals service's read model: each request as its stream leaves it, and who is who.
CREATE SCHEMA IF NOT EXISTS approvals;

CREATE TABLE approvals.requests (
    approval_id  text PRIMARY KEY,
    status       text        NOT NULL,
    ticket       text,
    version      integer     NOT NULL,
    body         jsonb       NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX requests_status ON approvals.requests (status, created_at DESC, approval_id DESC);
CREATE INDEX requests_ticket ON approvals.requests (ticket);

CREATE TABLE approvals.people (
    user_id  text PRIMARY KEY,
    role     text    NOT NULL,
    active   boolean NOT NULL DEFAULT true
);

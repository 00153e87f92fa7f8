-- The tickets service's read model (rebuilt from the log by `opsledger replay`).
CREATE SCHEMA IF NOT EXISTS tickets;

-- Ticket types: the latest version, and every version's schema (tickets pin the one they used).
CREATE TABLE tickets.types (
    key         text PRIMARY KEY,
    name        text        NOT NULL,
    version     integer     NOT NULL,
    builtin     boolean     NOT NULL,
    fields      jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE TABLE tickets.type_versions (
    key         text        NOT NULL,
    version     integer     NOT NULL,
    name        text        NOT NULL,
    fields      jsonb       NOT NULL,
    defined_at  timestamptz NOT NULL,
    PRIMARY KEY (key, version)
);

-- One row per ticket: filterable columns plus `state`, the folded TicketState the API shows.
CREATE TABLE tickets.tickets (
    key           text PRIMARY KEY,
    number        bigint      NOT NULL UNIQUE,
    type          text        NOT NULL,
    type_version  integer     NOT NULL,
    title         text        NOT NULL,
    description   text,
    status        text        NOT NULL,
    priority      text        NOT NULL,
    requester_id  text        NOT NULL,
    assignee_id   text,
    tags          text[]      NOT NULL DEFAULT '{}',
    locked        boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       integer     NOT NULL,
    state         jsonb       NOT NULL
);
CREATE INDEX tickets_by_requester ON tickets.tickets (requester_id, number DESC);
CREATE INDEX tickets_by_status ON tickets.tickets (status, number DESC);
CREATE INDEX tickets_by_assignee ON tickets.tickets (assignee_id, number DESC);
CREATE INDEX tickets_by_tag ON tickets.tickets USING gin (tags);

CREATE TABLE tickets.comments (
    id          text PRIMARY KEY,
    key         text        NOT NULL,
    position    bigint      NOT NULL,
    author_id   text        NOT NULL,
    body        text        NOT NULL,
    internal    boolean     NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX comments_by_ticket ON tickets.comments (key, position);

-- Who is staff (from user.* events), so assignment can check the assignee; and which user an
-- API token acts for, so a token caller is the same requester as their browser session.
CREATE TABLE tickets.people (
    user_id  text PRIMARY KEY,
    role     text NOT NULL
);


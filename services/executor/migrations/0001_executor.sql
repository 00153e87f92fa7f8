-- The executor's read model (rebuilt from the log by `opsledger replay executor`).
CREATE SCHEMA IF NOT EXISTS executor;

-- One row per job: filterable columns, whether a worker may claim it now, and the JobOut shown.
CREATE TABLE executor.jobs (
    job_id      text PRIMARY KEY,
    position    bigint      NOT NULL,  -- of its job.queued: the list's order, stable on replay
    rule_id     text        NOT NULL,
    ticket      text,
    state       text        NOT NULL,
    claimable   boolean     NOT NULL,
    version     integer     NOT NULL,
    job         jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX jobs_claimable ON executor.jobs (position) WHERE claimable;
CREATE INDEX jobs_by_position ON executor.jobs (position DESC);
CREATE INDEX jobs_by_state ON executor.jobs (state, position DESC);
CREATE INDEX jobs_by_ticket ON executor.jobs (ticket, position DESC);
CREATE INDEX jobs_by_rule ON executor.jobs (rule_id, position DESC);

-- Registered outgoing endpoints, as their webhook.* events leave them (secret included: only
-- the executor reads this table, to sign what it sends).
CREATE TABLE executor.webhooks (
    webhook_id  text PRIMARY KEY,
    position    bigint      NOT NULL,
    name        text        NOT NULL,
    kind        text        NOT NULL,
    url         text        NOT NULL,
    secret      text,
    events      jsonb,
    removed     boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX webhooks_by_position ON executor.webhooks (position) WHERE NOT removed;

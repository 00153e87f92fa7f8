-- The rules service's read model (rebuilt from the log by `opsledger replay rules`): rules, every
-- version of each, the state each rule event left it in (which versions were live when), and
-- its own copy of tickets, as each ticket event left them. Never another service's tables.
CREATE SCHEMA IF NOT EXISTS rules;

-- One row per rule, as its latest event left it.
CREATE TABLE rules.rules (
    id          text PRIMARY KEY,
    version     integer     NOT NULL,
    enabled     boolean     NOT NULL,
    archived    boolean     NOT NULL DEFAULT false,
    definition  jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- Every definition version (a job names the version that fired; diff compares two).
CREATE TABLE rules.rule_versions (
    rule_id     text        NOT NULL,
    version     integer     NOT NULL,
    definition  jsonb       NOT NULL,
    trigger     text        NOT NULL,
    created_at  timestamptz NOT NULL,
    created_by  text        NOT NULL,
    PRIMARY KEY (rule_id, version)
);

-- The rule right after each of its events (`seq`: the event's version in the rule's stream):
-- an event fires the versions that were live when it was recorded, live or in a replay alike.
CREATE TABLE rules.rule_states (
    rule_id     text        NOT NULL,
    seq         integer     NOT NULL,
    at          timestamptz NOT NULL,
    version     integer     NOT NULL,
    live        boolean     NOT NULL,
    PRIMARY KEY (rule_id, seq)
);
CREATE INDEX rule_states_at ON rules.rule_states (at);

-- The ticket right after each of its events (conditions read it), and its latest state.
CREATE TABLE rules.ticket_versions (
    key          text        NOT NULL,
    version      integer     NOT NULL,
    event_id     uuid        NOT NULL,
    state        jsonb       NOT NULL,
    PRIMARY KEY (key, version)
);
CREATE TABLE rules.tickets (
    key          text PRIMARY KEY,
    version      integer     NOT NULL,
    state        jsonb       NOT NULL
);

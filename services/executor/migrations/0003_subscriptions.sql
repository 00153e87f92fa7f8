-- Event subscriptions (services/executor/subscriptions/): which endpoints want internal
-- comments, where each subscription has got to in the log, and every delivery with its attempts.
-- Not a projection: `opsledger replay executor` rebuilds executor.webhooks, never these.

-- webhook.registered/changed v2 carry it; the webhooks projection keeps it.
ALTER TABLE executor.webhooks ADD COLUMN include_internal boolean NOT NULL DEFAULT false;

-- One row per endpoint that is (or was) an event subscription: the commit-order place in the
-- log after which its events are still to be matched (the fan-out moves it on in the
-- transaction that inserts the deliveries; a replay moves it back), and the generation, bumped
-- by every replay, that keeps a replayed event's new delivery apart from its first one.
CREATE TABLE executor.subscriptions (
    webhook_id  text PRIMARY KEY,
    tx_id       xid8        NOT NULL,
    position    bigint      NOT NULL,
    generation  integer     NOT NULL DEFAULT 0,
    active      boolean     NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Endpoints that had `events` before deliveries existed subscribe from the end of the log now.
INSERT INTO executor.subscriptions (webhook_id, tx_id, position)
SELECT w.webhook_id, coalesce(e.tx_id, '0'::xid8), coalesce(e.position, 0)
FROM executor.webhooks w
LEFT JOIN LATERAL (
    SELECT tx_id, position FROM eventstore.events ORDER BY tx_id DESC, position DESC LIMIT 1
) e ON true
WHERE w.events IS NOT NULL AND NOT w.removed AND w.kind = 'webhook';

-- One row per delivery of one event to one endpoint. A lane is (webhook_id, stream_id): only
-- its oldest open delivery (pending or dead_lettered, by seq) may be sent, so a stream's events
-- arrive in order and a dead letter holds its lane until a replay. `next_at` is when a pending
-- delivery may be claimed: a claim sets it to the end of its lease (a sender that died is
-- taken over then), a failure to the backoff's end.
CREATE TABLE executor.deliveries (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id   uuid        NOT NULL UNIQUE,
    webhook_id    text        NOT NULL,
    generation    integer     NOT NULL,
    event_id      uuid        NOT NULL,
    stream_id     text        NOT NULL,
    version       integer     NOT NULL,
    position      bigint      NOT NULL,
    type          text        NOT NULL,
    state         text        NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivered', 'dead_lettered', 'superseded', 'cancelled')),
    attempts      integer     NOT NULL DEFAULT 0,
    next_at       timestamptz NOT NULL DEFAULT now(),
    sender        text,
    last_status   integer,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    delivered_at  timestamptz,
    CONSTRAINT deliveries_once_per_generation UNIQUE (webhook_id, event_id, generation)
);
CREATE INDEX deliveries_open_lanes ON executor.deliveries (webhook_id, stream_id, seq)
    WHERE state IN ('pending', 'dead_lettered');
CREATE INDEX deliveries_due ON executor.deliveries (next_at) WHERE state = 'pending';
CREATE INDEX deliveries_by_endpoint ON executor.deliveries (webhook_id, seq DESC);

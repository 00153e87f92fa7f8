"""Event subscriptions: every event matching a `webhook` endpoint's `events` patterns is POSTed
to it, at least once, in order per stream, signed, retried with backoff and dead-lettered.

How (all state in Postgres, so any replica may die at any point):
- `cursors.py`: an endpoint becomes a subscription in the transaction that registers or changes
  it: its row in `executor.subscriptions` holds the place in the log (commit order) after which
  its events are still to be matched, starting at that very event.
- `fanout.py`: every replica's fan-out claims each subscription row (FOR UPDATE SKIP LOCKED),
  reads the next events from the store (never the bus), keeps those `matching.py` lets through
  and inserts one delivery each, moving the row on in the same transaction.
- `lanes.py` + `sender.py`: a delivery is claimed only when it is the oldest open one of its
  (endpoint, stream) lane, with a lease; the POST goes through libs/outbound; the outcome is
  recorded only by the claim that made it. A dead letter holds its lane until a replay.
- `replay.py`: moves a subscription's row back to a position; its open deliveries are superseded.
- `reads.py`: the delivery log (`GET /webhooks/{id}/deliveries`).
"""

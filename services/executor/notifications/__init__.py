"""In-app notifications, owned by the executor: written by the `notify` action
(services/executor/actions/notify.py) and for approvals waiting or escalated (`approvals.py`),
projected into `executor.notifications` (`projection.py`), read and marked read by their own
user over the executor's RPC methods (`api.py`), pushed on the gateway's live stream."""

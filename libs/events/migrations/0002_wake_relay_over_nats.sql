-- The per-statement NOTIFY made every appending transaction take Postgres's cluster-wide notify
-- lock through its WAL flush, which serialised commits (no group commit) and halved append
-- throughput (bench/results/ablations.md). The relay is now woken over NATS after commit.
DROP TRIGGER events_notify ON eventstore.events;
DROP FUNCTION eventstore.notify_appended();

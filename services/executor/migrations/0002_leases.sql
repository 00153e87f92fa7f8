-- When a running job's lease ends: the executor's lease watch expires the leases of executors
-- that went away by this column (it replaces a durable timer per attempt, two events and a
-- dozen statements on every job's hot path). NULL unless the job is running.
ALTER TABLE executor.jobs ADD COLUMN lease_until timestamptz;
CREATE INDEX jobs_by_lease ON executor.jobs (lease_until) WHERE lease_until IS NOT NULL;

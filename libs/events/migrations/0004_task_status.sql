-- What each process's supervisor reports of its long-running tasks (libs/events/task_report.py),
-- so /readyz on any gateway replica sees the tasks of every process, not only its own.
CREATE TABLE eventstore.task_status (
    process      text        NOT NULL,
    task         text        NOT NULL,
    state        text        NOT NULL,
    since        timestamptz NOT NULL,
    restarts     integer     NOT NULL,
    last_error   text,
    reported_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (process, task)
);

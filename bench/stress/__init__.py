"""Stress run: the runtime must never lose, duplicate or reorder an event under failure.

Concurrent writers append `stress.appended` events to many streams with `EventStore.append`:
some plain, some inside explicit transactions that sleep before committing (holding the read
horizon), some that roll back (leaving position holes). Several worker processes each run a
`System` with the relay on and the stress service, whose consumer records every event it handles
in bench_stress.handled inside the handler's transaction (no unique constraint: a committed
duplicate is a real one). Meanwhile the harness SIGKILLs workers at random and restarts them,
restarts Postgres and NATS on the same data dirs and addresses, handlers fail at random, and
`poison` events always fail, so events are retried and parked. Worker 1 is never killed at random,
so it has to ride out both server restarts in place; after the drain each worker is left alone
in turn (the others killed) and must publish and handle a few new events by itself, which a
worker whose relay or consumer task died cannot.

Then the writers stop, the workers drain, and eventstore.events (the truth) is compared with what
was handled and parked:

    written       events of the stress type in eventstore.events
    handled       distinct event ids in bench_stress.handled
    duplicated    event ids handled more than once
    out of order  within a stream, a first handling of a version below one handled before it
    lost          written - handled - parked (and not handled)

    .venv/bin/python -m bench.stress [--seconds 120] [--quick]

Prints a table, writes it to bench/results/stress.md, and exits 1 unless nothing was lost,
duplicated or reordered, every poison event was parked, the writers' acknowledged commits are all
in the log (and nothing they rolled back is), both servers were restarted and every worker passed
its solo probe. Workers are this package too:
`python -m bench.stress worker --database-url ...`.
"""

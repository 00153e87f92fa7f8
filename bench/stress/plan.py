"""The plan of a stress run: how long, how many writers and workers, how much chaos."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    seconds: float
    workers: int = 3
    writers: int = 8
    streams: int = 200
    rate: float = 150.0
    """Events per second the writers aim for, all together."""
    failure_rate: float = 0.2
    poison_rate: float = 0.004
    max_attempts: int = 3
    kill_every: tuple[float, float] = (4.0, 12.0)
    downtime_s: float = 2.0
    drain_timeout_s: float = 180.0
    seed: int | None = None

    @property
    def label(self) -> str:
        return (
            f"{self.seconds:.0f} s of writes, {self.writers} writers at ~{self.rate:.0f} ev/s "
            f"over {self.streams} streams, {self.workers} worker processes, handler failure "
            f"p={self.failure_rate}, poison rate {self.poison_rate}, "
            f"handler_max_attempts={self.max_attempts}, a worker SIGKILLed every "
            f"{self.kill_every[0]:.0f}-{self.kill_every[1]:.0f} s, Postgres and NATS each "
            f"restarted once ({self.downtime_s:.0f} s down)"
        )

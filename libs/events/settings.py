"""Settings: the one place that reads the environment (OPSLEDGER_*), built once by the CLI."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

RATE_LIMIT_DEFAULTS: dict[str, tuple[int, int]] = {
    # name: (hits, per window seconds); OPSLEDGER_RATE_LIMITS overrides any of them
    "register-ip": (10, 60),
    "register-email": (5, 3600),
    "login-ip": (10, 60),  # every login attempt from one address
    "login-failed": (5, 900),  # failed logins on one account from one address
    "login-failed-ip": (20, 900),  # failed logins from one address, on any account
    "login-failed-account": (100, 3600),  # on one account from anywhere: a soft slowdown
    "tokens-user": (10, 3600),  # API tokens one user creates
    "tickets-user": (60, 60),  # tickets one user opens
    "comments-user": (120, 60),  # comments one user writes
    "ticket-writes-user": (300, 60),  # every other ticket write (status, tags, relations...)
}
"""Every named rate limit and its default: the one list OPSLEDGER_RATE_LIMITS is checked against."""


def parse_rate_limits(value: object) -> dict[str, tuple[int, int]]:
    """The defaults overridden by `name=hits/seconds,...` (or a mapping already parsed); an
    unknown name or a malformed value is a ValueError saying which."""
    if isinstance(value, Mapping):
        return {**RATE_LIMIT_DEFAULTS, **value}  # from code: tests and the defaults themselves
    if not isinstance(value, str):
        raise ValueError("rate limits must be text like 'login-ip=30/60,register-ip=10/60'")
    limits = dict(RATE_LIMIT_DEFAULTS)
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, _, spec = (s.strip() for s in part.partition("="))
        if name not in RATE_LIMIT_DEFAULTS:
            known = ", ".join(sorted(RATE_LIMIT_DEFAULTS))
            raise ValueError(f"unknown rate limit {name!r} (known: {known})")
        hits, _, window = spec.partition("/")
        if not (hits.isdigit() and window.isdigit() and int(hits) > 0 and int(window) > 0):
            raise ValueError(f"rate limit {name!r}: {spec!r} is not HITS/SECONDS, e.g. 30/60")
        limits[name] = (int(hits), int(window))
    return limits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPSLEDGER_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    database_url: str | None = None
    """Postgres URL; unset means `opsledger dev` starts an embedded Postgres under data_dir."""
    nats_url: str | None = None
    """NATS URL; unset means `opsledger dev` starts an embedded nats-server under data_dir."""
    data_dir: Path = Path(".opsledger")
    namespace: str = "opsledger"
    """Prefix of every NATS subject and JetStream stream name, so deployments can share a server."""
    secret: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    stream_replicas: int = Field(default=1, ge=1, le=5)
    """JetStream replicas of the events stream (3 on a 3-node cluster)."""
    handler_max_attempts: int = Field(default=5, ge=1)
    handler_timeout_s: float = Field(default=30.0, gt=0)
    rpc_timeout_s: float = Field(default=10.0, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """HTTP request bodies over this many bytes are refused with 413 before they are read."""
    pg_idle_in_transaction_timeout_s: float = Field(default=60.0, gt=0)
    """Postgres ends our sessions left idle inside a transaction this long (the read horizon is
    server-wide: one forgotten transaction would hold back every reader of the log)."""
    horizon_unready_s: float = Field(default=30.0, gt=0)
    """/readyz answers 503 while the read horizon has been held this long."""
    log_level: str = "INFO"
    outbound_allow: str = ""
    """Hosts and CIDRs that outgoing HTTP (libs/outbound.py) may reach although they are
    private, loopback or link-local, comma-separated: `10.0.0.0/8,hooks.internal`."""
    public_url: str | None = None
    """The URL people reach the gateway at (default: the listen address); https turns on HSTS,
    and its origin is one the CSRF check accepts."""
    trusted_proxies: str = ""
    """Comma-separated CIDRs whose X-Forwarded-For / X-Forwarded-Proto are believed (none)."""
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Set: /metrics is served only on its own listener at metrics_host:metrics_port. Unset:
    on the main app in development, nowhere in production (not public by default)."""
    streams_per_user: int = Field(default=5, ge=1)
    """Open GET /api/v1/stream connections one user may hold, across every gateway replica."""
    stream_recheck_s: float = Field(default=5.0, gt=0)
    """An idle live stream re-checks its caller's session or token and role this often."""
    rate_limits: Annotated[dict[str, tuple[int, int]], NoDecode] = Field(
        default_factory=lambda: dict(RATE_LIMIT_DEFAULTS)
    )
    """Every named limit as (hits, window seconds): RATE_LIMIT_DEFAULTS overridden by
    OPSLEDGER_RATE_LIMITS, e.g. `login-ip=30/60,register-ip=10/60` (a team behind one NAT)."""
    live_tokens_per_user: int = Field(default=50, ge=1)
    """API tokens one user may hold at once (neither revoked nor expired)."""
    executor_max_attempts: int = Field(default=3, ge=1, le=100)
    """Attempts of a job before it is dead-lettered (a retry of a dead letter gets as many)."""
    executor_retry_base_s: float = Field(default=2.0, gt=0)
    """Backoff before retry n is uniform in [0, min(cap, base * 2**(n-1))] (full jitter)."""
    executor_retry_cap_s: float = Field(default=300.0, gt=0)
    executor_action_timeout_s: float = Field(default=30.0, gt=0)
    """Time limit of one action of a job (a webhook call, a ticket command)."""
    executor_lease_grace_s: float = Field(default=10.0, gt=0)
    """A claim's lease: its steps' time limits plus this; then another replica may take it."""
    executor_concurrency: int = Field(default=16, ge=1, le=1000)
    """Jobs one executor replica runs at once."""
    delivery_timeout_s: float = Field(default=10.0, gt=0)
    """Time limit of one event delivery's POST: a timeout, like any non-2xx, is a failed attempt."""
    delivery_max_attempts: int = Field(default=12, ge=1, le=100)
    """Attempts of an event delivery before it is dead-lettered (and holds its stream's lane)."""
    delivery_retry_base_s: float = Field(default=1.0, gt=0)
    """Backoff before attempt n+1 is uniform in [c/2, c], c = min(cap, base * 2**(n-1))."""
    delivery_retry_cap_s: float = Field(default=300.0, gt=0)
    delivery_concurrency: int = Field(default=8, ge=1, le=1000)
    """Event deliveries one executor replica sends at once (one per stream lane at most)."""
    smtp_url: SecretStr | None = None
    """`smtp://user:pass@host:port` (`smtps://` for TLS from the start, `?starttls=1` to upgrade);
    unset, email actions fail their job with an error that says so."""
    mail_from: str = "OpsLedger <opsledger@localhost>"
    """The sender of OpsLedger's email."""
    rules_max_causation_depth: int = Field(default=3, ge=0, le=100)
    """An event caused by automation fires opted-in rules only up to this causation depth."""

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _rate_limits_are_known(cls, value: object) -> dict[str, tuple[int, int]]:
        return parse_rate_limits(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies_are_cidrs(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)  # ValueError names the bad one
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in self.trusted_proxies.split(",")
            if part.strip()
        )

    @property
    def metrics_on_main_app(self) -> bool:
        """Whether the gateway's own app serves /metrics (see metrics_port)."""
        return self.metrics_port is None and self.env != "production"

    @field_validator("namespace")
    @classmethod
    def _namespace_is_a_token(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,40}", value):
            raise ValueError("namespace must be letters, digits and '_' (a NATS token)")
        return value

    @property
    def stream_name(self) -> str:
        """The JetStream stream that carries every event."""
        return f"{self.namespace.upper()}_EVENTS"

    def event_subject(self, event_type: str) -> str:
        return f"{self.namespace}.ev.{event_type}"

    def event_subject_filter(self, prefix: str = "") -> str:
        """`ns.ev.>` for everything, `ns.ev.ticket.>` for one category."""
        return f"{self.namespace}.ev.{prefix + '.' if prefix else ''}>"

    @property
    def relay_wake_subject(self) -> str:
        """Core NATS subject the store publishes on after a commit that appended events."""
        return f"{self.namespace}.relay.wake"

    def rpc_subject(self, service: str, method: str) -> str:
        return f"{self.namespace}.rpc.{service}.{method}"

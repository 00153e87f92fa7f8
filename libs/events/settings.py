"""Settings: the one place that reads the environment (OPSLEDGER_*), built once by the CLI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    pg_idle_in_transaction_timeout_s: float = Field(default=60.0, gt=0)
    """Postgres ends our sessions left idle inside a transaction this long (the read horizon is
    server-wide: one forgotten transaction would hold back every reader of the log)."""
    horizon_unready_s: float = Field(default=30.0, gt=0)
    """/readyz answers 503 while the read horizon has been held this long."""
    log_level: str = "INFO"

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

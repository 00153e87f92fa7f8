"""The registry of event types: explicit, versioned type names mapped to pydantic payload models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from libs.events.envelope import Envelope


class _SecretMarker:
    """Marks an event field as secret: `Annotated[str, SECRET]`. A secret field never leaves
    the system: every way out (the events API, the live stream, webhooks) shows it redacted."""

    def __repr__(self) -> str:
        return "SECRET"


SECRET = _SecretMarker()
REDACTED = "[redacted]"


class DomainEvent(BaseModel):
    """Base class of every event payload. Subclasses are registered with `@event(type, version)`;
    `event_type` and `schema_version` are reserved for the registry and cannot be field names."""

    # a payload that fails to validate is reported without its values: they may be secrets,
    # and the report ends up in logs and in eventstore.parked_events
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1


class EventError(Exception):
    """Base of the errors raised when an event cannot be understood."""


class UnknownEventType(EventError):
    def __init__(self, type_name: str) -> None:
        super().__init__(f"unknown event type {type_name!r}: no class is registered for it")
        self.type_name = type_name


class InvalidEventPayload(EventError):
    def __init__(self, type_name: str, version: int, error: ValidationError | str) -> None:
        super().__init__(f"payload of {type_name!r} v{version} does not validate: {error}")
        self.type_name = type_name
        self.version = version


E = TypeVar("E", bound=type[DomainEvent])
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class EventRegistry:
    """Maps type names to classes; upcasts stored payloads of older schema versions on read."""

    def __init__(self) -> None:
        self._classes: dict[str, type[DomainEvent]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._secrets: dict[str, frozenset[str]] = {}

    def register(self, type_name: str, version: int = 1) -> Callable[[E], E]:
        def decorate(cls: E) -> E:
            reserved = {"event_type", "schema_version"} & set(cls.__pydantic_fields__)
            if reserved:
                raise TypeError(f"{cls.__name__}: field names {sorted(reserved)} are reserved")
            existing = self._classes.get(type_name)
            if existing is not None and existing is not cls:
                raise ValueError(f"event type {type_name!r} is already registered to {existing}")
            cls.event_type = type_name
            cls.schema_version = version
            self._classes[type_name] = cls
            self._secrets[type_name] = frozenset(
                name for name, info in cls.__pydantic_fields__.items() if SECRET in info.metadata
            )
            return cls

        return decorate

    def upcaster(self, type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function turning a v`from_version` payload into a v`from_version + 1` one."""

        def decorate(fn: Upcaster) -> Upcaster:
            self._upcasters[(type_name, from_version)] = fn
            return fn

        return decorate

    def class_for(self, type_name: str) -> type[DomainEvent]:
        try:
            return self._classes[type_name]
        except KeyError:
            raise UnknownEventType(type_name) from None

    def knows(self, type_name: str) -> bool:
        return type_name in self._classes

    def types(self) -> list[str]:
        return sorted(self._classes)

    def secret_fields(self, type_name: str) -> frozenset[str]:
        """The fields of `type_name` marked SECRET (none for a type this code does not know)."""
        return self._secrets.get(type_name, frozenset())

    def redact(self, envelope: Envelope) -> Envelope:
        """The envelope as it may leave the system: every secret field's value redacted."""
        secret = self.secret_fields(envelope.type) & envelope.data.keys()
        if not secret:
            return envelope
        data = {k: (REDACTED if k in secret else v) for k, v in envelope.data.items()}
        return envelope.model_copy(update={"data": data})

    def decode(self, type_name: str, version: int, data: dict[str, Any]) -> DomainEvent:
        """Validate a stored payload, upcasting it first when it was written by an older schema."""
        cls = self.class_for(type_name)
        if version > cls.schema_version:
            raise InvalidEventPayload(
                type_name, version, f"newer than this code knows (v{cls.schema_version})"
            )
        payload = data
        for step in range(version, cls.schema_version):
            upcast = self._upcasters.get((type_name, step))
            if upcast is None:
                raise InvalidEventPayload(type_name, version, f"no upcaster from v{step}")
            payload = upcast(payload)
        try:
            return cls.model_validate(payload)
        except ValidationError as exc:
            raise InvalidEventPayload(type_name, version, exc) from exc

    def load(self, envelope: Envelope) -> DomainEvent:
        return self.decode(envelope.type, envelope.schema_version, envelope.data)


REGISTRY = EventRegistry()
event = REGISTRY.register
upcaster = REGISTRY.upcaster

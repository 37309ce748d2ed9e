"""Typed event contracts: one pydantic model per (type, version), routed by its type string."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from diaspora_events.topics import Topic

PERSONAL_DATA_MARK = "x-personal-data"


def personal(**kwargs: Any) -> Any:
    """A pydantic ``Field`` marked as personal data.

    The mark shows in the JSON schema (and so in the AsyncAPI document and the
    event catalogue) and lets the plumbing keep such fields out of logs and traces.
    """
    extra = dict(kwargs.pop("json_schema_extra", None) or {})
    extra[PERSONAL_DATA_MARK] = True
    return Field(json_schema_extra=extra, **kwargs)


class Event(BaseModel):
    """Base of every event contract.

    Subclasses are registered with :func:`contract`; consumers route on
    ``event_type`` and ``event_version``, never on the class name.
    """

    # Consumers must tolerate fields added by a newer minor revision of the same version.
    # Rejected input never appears in error messages (they reach logs and dead letters).
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    event_type: ClassVar[str]
    event_version: ClassVar[int]
    topic: ClassVar[Topic]
    key_field: ClassVar[str]
    description: ClassVar[str]
    # The person the personal fields are about, whose data key seals them (shredding.py).
    subject_field: ClassVar[str | None] = None

    def aggregate_id(self) -> str:
        """The Kafka key: the id of the aggregate this event is about."""
        return str(getattr(self, self.key_field))

    @classmethod
    def personal_fields(cls) -> frozenset[str]:
        return _personal_fields(cls)

    def redacted(self) -> dict[str, Any]:
        """The event's data with personal fields masked, fit for logs."""
        hidden = self.personal_fields()
        return {
            name: ("***" if name in hidden else value)
            for name, value in self.model_dump(mode="json").items()
        }


@dataclass(frozen=True)
class ContractKey:
    event_type: str
    version: int


_CONTRACTS: dict[ContractKey, type[Event]] = {}

E = TypeVar("E", bound=Event)


@functools.cache
def _personal_fields(cls: type[Event]) -> frozenset[str]:
    """Worked out once per model: asked for every event written (sealing) and read."""
    return frozenset(
        name
        for name, field in cls.model_fields.items()
        if isinstance(field.json_schema_extra, dict)
        and field.json_schema_extra.get(PERSONAL_DATA_MARK) is True
    )


def contract(
    *,
    event_type: str,
    version: int,
    topic: Topic,
    key: str,
    description: str,
    subject: str | None = None,
) -> Callable[[type[E]], type[E]]:
    """Register an event model under its type string and version.

    ``subject``: the field holding the id of the person its ``personal()`` fields are
    about (required when it has any): their data key seals those fields on the wire.
    """

    def register(cls: type[E]) -> type[E]:
        found = ContractKey(event_type, version)
        if found in _CONTRACTS and _CONTRACTS[found] is not cls:
            raise ValueError(f"event contract {event_type} v{version} is registered twice")
        if key not in cls.model_fields:
            raise ValueError(f"{cls.__name__}: key field {key!r} is not a field")
        if cls.personal_fields() and (subject is None or subject not in cls.model_fields):
            raise ValueError(f"{cls.__name__}: personal fields need a subject field")
        cls.subject_field = subject
        cls.event_type = event_type
        cls.event_version = version
        cls.topic = topic
        cls.key_field = key
        cls.description = description
        _CONTRACTS[found] = cls
        return cls

    return register


class UnknownEventType(LookupError):
    """No contract is registered for this type and version."""


def contract_for(event_type: str, version: int) -> type[Event]:
    try:
        return _CONTRACTS[ContractKey(event_type, version)]
    except KeyError:
        raise UnknownEventType(f"no contract for {event_type} v{version}") from None


def all_contracts() -> list[type[Event]]:
    return sorted(_CONTRACTS.values(), key=lambda c: (c.event_type, c.event_version))

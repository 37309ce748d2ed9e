"""Idempotent consumers: inbox in the handler's transaction, retries, dead letters.

For each record: the CloudEvent is decoded and routed on (type, version); the
handler runs in a database transaction that also records ``(consumer, event id)``
in the inbox, so a redelivered event is a no-op. The offset is committed (by
FastStream's ``NACK_ON_ERROR`` policy) only after that transaction commits.
A failing handler is retried with backoff; after the last attempt the record
goes to the consumer's dead-letter topic with the error in its headers, and the
partition moves on.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

import structlog
from opentelemetry import trace
from pydantic import ValidationError
from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    Uuid,
    bindparam,
    event,
    func,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from diaspora_events.cloudevents import (
    Envelope,
    MalformedEvent,
    decode,
    headers_from_kafka,
)
from diaspora_events.contracts.base import Event, UnknownEventType, contract_for
from diaspora_events.metrics import CONSUMER_DEAD_LETTERS, CONSUMER_RECORDS
from diaspora_events.observability import context_from_headers, describe_error
from diaspora_events.shredding import (
    KeyResolver,
    KeyServiceUnavailable,
    SealBroken,
    is_sealed,
    personal_texts,
    scrub,
    sealed_subject,
    unseal_envelope,
)
from diaspora_events.topics import dead_letter_topic

log = structlog.get_logger(__name__)
_tracer = trace.get_tracer("diaspora_events.consumer")

EventT = TypeVar("EventT", bound=Event)
ERASED_TYPE = "registry.member.erased"
Handler = Callable[[Any, AsyncSession, Envelope], Awaitable[None]]


def inbox_table(metadata: MetaData, name: str = "inbox") -> Table:
    """The inbox table, added to a service's own metadata (and so its migrations)."""
    return Table(
        name,
        metadata,
        Column("consumer", Text, nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id", name=f"{name}_pkey"),
    )


class Outcome(enum.Enum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"
    # About an erased person: their key is gone, nothing personal can be read; the
    # event is skipped as the handlers would treat any event about an erased person.
    SHREDDED = "shredded"


class DeadLetterSink(Protocol):
    async def __call__(
        self, *, topic: str, key: bytes | None, value: bytes | None, headers: dict[str, str]
    ) -> None: ...


@dataclass(frozen=True)
class Record:
    """What the consumer needs of a Kafka record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]


class _Permanent(Exception):
    """A failure that no retry can cure (undecodable or invalid event)."""


def _retryable(error: BaseException) -> bool:
    """A handler failure worth another try: any error but a permanent one (a cancellation
    is no failure: it goes through)."""
    return isinstance(error, Exception) and not isinstance(error, _Permanent)


class EventConsumer:
    """A named consumer (its Kafka group id) with handlers per event contract."""

    def __init__(
        self,
        *,
        name: str,
        session_factory: async_sessionmaker[AsyncSession],
        inbox: Table,
        dead_letters: DeadLetterSink,
        max_attempts: int = 5,
        first_backoff: float = 0.2,
        max_backoff: float = 5.0,
        topic_prefix: str = "",
        keys: KeyResolver | None = None,
        max_key_backoff: float = 30.0,
    ) -> None:
        self.name = name
        # Opens sealed personal fields (crypto-shredding); see _open_sealed.
        self.keys = keys
        self._max_key_backoff = max_key_backoff
        # Environments sharing one cluster (and tests) keep apart by a topic prefix.
        self.topic_prefix = topic_prefix
        self.group_id = topic_prefix + name
        self._sessions = session_factory
        self._inbox = inbox
        self._dead_letters = dead_letters
        self._max_attempts = max_attempts
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._handlers: dict[tuple[str, int], Handler] = {}
        # Built once (building and keying a statement per record costs CPU).
        self._record_in_inbox = (
            insert(inbox)
            .values(
                consumer=bindparam("p_consumer", type_=inbox.c.consumer.type),
                event_id=bindparam("p_event_id", type_=inbox.c.event_id.type),
                event_type=bindparam("p_type", type_=inbox.c.event_type.type),
            )
            .on_conflict_do_nothing()
            .returning(inbox.c.event_id)
        )
        self.dead_letter_topic = dead_letter_topic(name, prefix=topic_prefix)
        self.dead_lettered_total = 0

    def on(
        self, contract: type[EventT]
    ) -> Callable[
        [Callable[[EventT, AsyncSession, Envelope], Awaitable[None]]],
        Callable[[EventT, AsyncSession, Envelope], Awaitable[None]],
    ]:
        """Register the handler of one contract (type and version)."""

        def register(
            handler: Callable[[EventT, AsyncSession, Envelope], Awaitable[None]],
        ) -> Callable[[EventT, AsyncSession, Envelope], Awaitable[None]]:
            self._handlers[(contract.event_type, contract.event_version)] = handler
            return handler

        return register

    @property
    def topics(self) -> list[str]:
        return sorted(
            {self.topic_prefix + contract_for(t, v).topic.name for (t, v) in self._handlers}
        )

    @property
    def handled_contracts(self) -> list[type[Event]]:
        return [contract_for(t, v) for (t, v) in sorted(self._handlers)]

    async def handle_record(self, record: Record) -> Outcome:
        """Handle one record; returns once its effects are committed or dead-lettered."""
        outcome = await self._handle_record(record)
        CONSUMER_RECORDS.labels(self.name, outcome.value).inc()
        return outcome

    async def _handle_record(self, record: Record) -> Outcome:
        try:
            envelope = decode(record.headers, record.value)
        except MalformedEvent as error:
            await self._dead_letter(record, error, attempts=1)
            return Outcome.DEAD_LETTERED
        if self.keys is not None and envelope.type == ERASED_TYPE:
            # The erased person's key leaves this process's cache (reads as gone from now
            # on), whether or not this consumer handles erasures itself.
            with contextlib.suppress(KeyError, ValueError):
                self.keys.forget(UUID(str(envelope.data["member_id"])))
        if (envelope.type, envelope.version) not in self._handlers:
            # Another type, or a version of a handled type this consumer does not read
            # (versions are published side by side while consumers move).
            if any(t == envelope.type for (t, _v) in self._handlers):
                log.info(
                    "event_version_ignored",
                    consumer=self.name,
                    event_type=envelope.type,
                    version=envelope.version,
                )
            return Outcome.IGNORED
        if is_sealed(envelope.data):
            opened = await self._open_sealed(envelope)
            if opened is None:
                return Outcome.SHREDDED
            if isinstance(opened, SealBroken):
                await self._dead_letter(record, opened, attempts=1)
                return Outcome.DEAD_LETTERED
            envelope = opened
        with _tracer.start_as_current_span(
            f"{record.topic} process",
            context=context_from_headers(record.headers),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.consumer.group.name": self.name,
                "messaging.message.id": str(envelope.id),
                "messaging.kafka.offset": record.offset,
                "cloudevents.event_type": envelope.type,
            },
        ):
            # first_backoff, doubling up to max_backoff, at most max_attempts tries; a
            # _Permanent error (retrying cannot help) is not retried.
            attempts = 0

            def retry_later(state: RetryCallState) -> None:
                # Called after a failed attempt only: there is an error.
                error = state.outcome.exception() if state.outcome else None
                assert error is not None
                log.warning(
                    "event_handler_failed",
                    consumer=self.name,
                    event_id=str(envelope.id),
                    event_type=envelope.type,
                    attempt=state.attempt_number,
                    retry_in=state.next_action.sleep if state.next_action else None,
                    error=scrub(describe_error(error), _personal_texts_of(envelope)),
                )

            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception(_retryable),
                    stop=stop_after_attempt(self._max_attempts),
                    wait=wait_exponential(multiplier=self._first_backoff, max=self._max_backoff),
                    before_sleep=retry_later,
                    reraise=True,
                ):
                    with attempt:
                        attempts = attempt.retry_state.attempt_number
                        return await self._process(envelope)
            except _Permanent as error:
                await self._dead_letter(
                    record,
                    error.__cause__ or error,
                    attempts=attempts,
                    secrets=_personal_texts_of(envelope),
                )
                return Outcome.DEAD_LETTERED
            except Exception as error:
                await self._dead_letter(
                    record, error, attempts=attempts, secrets=_personal_texts_of(envelope)
                )
                return Outcome.DEAD_LETTERED
            raise AssertionError("unreachable: the last attempt returns or raises")

    async def _open_sealed(self, envelope: Envelope) -> Envelope | SealBroken | None:
        """The envelope with its personal fields opened; None when its subject's key is
        gone (erased person) or it has no subject; SealBroken when it does not open.

        The key service down: retried with backoff, without end and without dead
        letters (the record is fine; the partition waits, readiness says "keys")."""
        subject = sealed_subject(envelope.data)
        if subject is None:
            return None

        def keys_unavailable(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "event_keys_unavailable",
                consumer=self.name,
                event_id=str(envelope.id),
                retry_in=state.next_action.sleep if state.next_action else None,
                error=str(error),
            )

        async def data_key() -> bytes | None:
            if self.keys is None:
                raise KeyServiceUnavailable("no key resolver configured")
            return (await self.keys.data_keys([subject]))[subject]

        # first_backoff, doubling up to max_key_backoff, for as long as it takes.
        key: bytes | None = await AsyncRetrying(
            retry=retry_if_exception_type(KeyServiceUnavailable),
            wait=wait_exponential(multiplier=self._first_backoff, max=self._max_key_backoff),
            before_sleep=keys_unavailable,
            reraise=True,
        )(data_key)
        if key is None:
            log.info(
                "event_about_erased_person",
                consumer=self.name,
                event_id=str(envelope.id),
                event_type=envelope.type,
            )
            return None
        try:
            return unseal_envelope(envelope, key)
        except SealBroken as error:
            return error

    async def _process(self, envelope: Envelope) -> Outcome:
        handler = self._handlers[(envelope.type, envelope.version)]
        try:
            event = envelope.to_event()
        except (UnknownEventType, ValidationError) as error:
            raise _Permanent(str(error)) from error
        async with self._sessions() as session, session.begin():
            first_time = (
                await session.execute(
                    self._record_in_inbox,
                    {"p_consumer": self.name, "p_event_id": envelope.id, "p_type": envelope.type},
                )
            ).first()
            if first_time is None:
                log.info("event_duplicate_skipped", consumer=self.name, event_id=str(envelope.id))
                return Outcome.DUPLICATE
            await handler(event, session, envelope)
        log.info(
            "event_handled", consumer=self.name, event_id=str(envelope.id), event_type=envelope.type
        )
        return Outcome.HANDLED

    async def _dead_letter(
        self,
        record: Record,
        error: BaseException,
        *,
        attempts: int,
        secrets: Collection[str] = (),
    ) -> None:
        # The record as it came (sealed personal fields stay sealed); the reason never
        # carries a personal value (scrubbed of every text of the opened fields).
        reason = scrub(describe_error(error), secrets)
        headers = {
            **record.headers,
            "dlq_consumer": self.name,
            "dlq_original_topic": record.topic,
            "dlq_original_partition": str(record.partition),
            "dlq_original_offset": str(record.offset),
            "dlq_error_type": type(error).__name__,
            "dlq_error": reason[:2000],
            "dlq_attempts": str(attempts),
            "dlq_failed_at": datetime.now(UTC).isoformat(),
        }
        # If this publish fails the exception propagates: the offset is not
        # committed and the record comes back, so nothing is lost.
        await self._dead_letters(
            topic=self.dead_letter_topic.name, key=record.key, value=record.value, headers=headers
        )
        self.dead_lettered_total += 1
        CONSUMER_DEAD_LETTERS.labels(self.name).inc()
        log.error(
            "event_dead_lettered",
            consumer=self.name,
            topic=record.topic,
            offset=record.offset,
            error_type=type(error).__name__,
            error=reason[:500],
        )


def _personal_texts_of(envelope: Envelope) -> set[str]:
    """The texts of the event's (opened) personal fields, to scrub from a failure's
    reason: looked for only when a handler fails, not for every event."""
    try:
        names = contract_for(envelope.type, envelope.version).personal_fields()
    except UnknownEventType:
        return set()
    return personal_texts({k: v for k, v in envelope.data.items() if k in names})


def after_commit(session: AsyncSession, callback: Callable[[], object]) -> None:
    """Call ``callback`` once the session's transaction has committed (never on rollback).

    For handlers that hand work to another task: rows the transaction inserted are
    invisible to other connections until the commit, so a wake-up sent earlier finds
    nothing and the work waits for the next poll.
    """
    event.listen(session.sync_session, "after_commit", lambda _session: callback(), once=True)


def record_from_kafka(raw: Any) -> Record:
    """Our view of an aiokafka ``ConsumerRecord``."""
    return Record(
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=raw.key,
        value=raw.value,
        headers=headers_from_kafka(raw.headers),
    )


def headers_as_str(headers: Mapping[str, Any]) -> dict[str, str]:
    return {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in headers.items()}

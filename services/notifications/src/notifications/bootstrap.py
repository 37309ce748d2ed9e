"""Composition root of the notifications service.

Builds the handles (``resources.Notifications``), then what runs on them, handing each
its dependencies: the one event consumer with every feature's handlers and the
erasure steps, the channel senders and the campaign runner (the worker's jobs).
Nothing registers itself at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.outbox import OutboxWriter
from diaspora_events.runtime import Task
from diaspora_events.shredding import KeyResolver, event_key_settings
from diaspora_identity.http import Identity
from diaspora_service.db import make_engine, make_session_factory
from notifications import SERVICE_NAME
from notifications.advisories import consumer as advisories_consumer
from notifications.campaigns import service as campaigns_service
from notifications.campaigns.runner import CampaignRunner
from notifications.contacts import consumer as contacts_consumer
from notifications.contacts import service as contacts_service
from notifications.contacts import verification
from notifications.contacts.consumer import EraseStep, MergeStep, Signal
from notifications.deliveries import consular as consular_consumer
from notifications.deliveries import consumer as deliveries_consumer
from notifications.deliveries import service as deliveries_service
from notifications.deliveries.domain import Clock, utc_now
from notifications.deliveries.sender import DeliverySender, WorkSignal
from notifications.deliveries.sms import HttpSmsProvider, SmsProvider, SmsSender
from notifications.deliveries.smtp import EmailSender
from notifications.preferences import service as preferences_service
from notifications.resources import Notifications
from notifications.settings import NotificationsSettings
from notifications.tables import inbox
from notifications.tables import outbox as outbox_table
from notifications.templates.service import seed_missing

CONSUMER_NAME = "notifications"
DEFAULT_CHANNELS = frozenset({"email", "inbox"})

# What every feature forgets of an erased (or merged away) member, in this order: the
# rows referring to the recipient first, the recipient last.
ERASE_STEPS: Sequence[EraseStep] = (
    deliveries_service.erase_member,
    campaigns_service.erase_member,
    verification.erase_member,
    preferences_service.erase_member,
    contacts_service.erase_member,
)
# What every feature moves of a record merged into another, in this order, once contacts
# has made the survivor's recipient row ready (the rows refer to it).
MERGE_STEPS: Sequence[MergeStep] = (
    preferences_service.merge_member,
    deliveries_service.merge_member,
    campaigns_service.merge_member,
)


def bootstrap(settings: NotificationsSettings | None = None) -> Notifications:
    settings = settings or NotificationsSettings()
    engine = make_engine(
        settings.async_database_url, pool_size=settings.email_senders + settings.sms_senders + 8
    )
    key_settings = event_key_settings("NOTIFICATIONS")
    return Notifications(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        outbox=OutboxWriter(
            outbox_table,
            source=settings.event_source,
            keys=key_settings.resolver(SERVICE_NAME, ttl=0.0),
        ),
        identity=Identity.from_settings(settings),
        key_settings=key_settings,
    )


async def seed_templates(service: Notifications) -> int:
    """Add the shipped templates that have no version yet (at every start)."""
    async with service.sessions() as session, session.begin():
        return await seed_missing(session)


def build_consumer(
    *,
    sessions: async_sessionmaker[AsyncSession],
    dead_letters: DeadLetterSink,
    work_available: Signal | None = None,
    topic_prefix: str = "",
    outbox: OutboxWriter | None = None,
    available_channels: frozenset[str] = DEFAULT_CHANNELS,
    on_erased: Callable[[UUID], None] | None = None,
    settings: NotificationsSettings | None = None,
    keys: KeyResolver | None = None,
) -> EventConsumer:
    """The service's one consumer (group ``notifications``) with every feature's handlers."""
    consumer = EventConsumer(
        name=CONSUMER_NAME,
        session_factory=sessions,
        inbox=inbox,
        dead_letters=dead_letters,
        topic_prefix=topic_prefix,
        keys=keys,  # opens sealed personal fields (crypto-shredding)
    )
    writer = outbox or OutboxWriter(outbox_table, source="/tg/diaspora/notifications")
    # (The defaults when none are given: the AsyncAPI document builds a consumer.)
    config = settings or NotificationsSettings.model_construct()
    contacts_consumer.register(
        consumer,
        outbox=writer,
        settings=config,
        available_channels=available_channels,
        erase_steps=ERASE_STEPS,
        merge_steps=MERGE_STEPS,
        work_available=work_available,
        on_erased=on_erased,
    )
    deliveries_consumer.register(
        consumer,
        outbox=writer,
        available=available_channels,
        wake=lambda _session: work_available.set() if work_available is not None else None,
    )
    consular_consumer.register(
        consumer,
        outbox=writer,
        available=available_channels,
        wake=lambda _session: work_available.set() if work_available is not None else None,
    )
    advisories_consumer.register(
        consumer,
        outbox=writer,
        available=available_channels,
        wake=lambda _session: work_available.set() if work_available is not None else None,
    )
    return consumer


class Fanout:
    """Wakes every channel's senders when new deliveries are queued."""

    def __init__(self, *events: WorkSignal) -> None:
        self._events = events

    def set(self) -> None:
        for event in self._events:
            event.set()


@dataclass
class WorkerJobs:
    """What the worker runs on the service's handles, besides broker, relay and monitors:
    its consumer (built once the broker's dead-letter sink exists) and its tasks (the
    email and, with a provider, SMS senders and the campaign runner)."""

    consumers: Callable[[DeadLetterSink], list[EventConsumer]]
    tasks: list[Task]


def build_worker_jobs(
    service: Notifications,
    *,
    clock: Clock = utc_now,
    sms_provider: SmsProvider | None = None,
) -> WorkerJobs:
    """The consumer, the senders and the campaign runner, sharing the signals that wake
    the senders when deliveries are queued."""
    settings = service.settings
    email_work, sms_work = WorkSignal(), WorkSignal()
    work = Fanout(email_work, sms_work)

    def consumers(dead_letters: DeadLetterSink) -> list[EventConsumer]:
        return [
            build_consumer(
                sessions=service.sessions,
                dead_letters=dead_letters,
                work_available=work,
                topic_prefix=settings.topic_prefix,
                outbox=service.outbox,
                available_channels=settings.available_channels,
                settings=settings,
                # Persons' data keys from the registry's key service (crypto-shredding).
                keys=service.key_settings.resolver(SERVICE_NAME) if service.key_settings else None,
            )
        ]

    senders: list[DeliverySender] = [
        EmailSender(
            settings=settings,
            sessions=service.sessions,
            outbox=service.outbox,
            work_available=email_work,
            clock=clock,
        )
    ]
    campaigns = CampaignRunner(
        settings=settings,
        sessions=service.sessions,
        outbox=service.outbox,
        work_available=work,
        clock=clock,
    )
    if sms_provider is None and settings.sms_provider_url:
        sms_provider = HttpSmsProvider.from_settings(settings)
    if sms_provider is not None:
        senders.append(
            SmsSender(
                provider=sms_provider,
                settings=settings,
                sessions=service.sessions,
                outbox=service.outbox,
                work_available=sms_work,
                clock=clock,
            )
        )
    return WorkerJobs(consumers=consumers, tasks=[campaigns.run, *(s.run for s in senders)])

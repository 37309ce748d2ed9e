"""Composition root: settings, database, outbox, identity and audit, then what the
features hand each other (erasure and merge steps), wired once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.outbox import OutboxWriter
from diaspora_events.shredding import KeyResolver, event_key_settings
from diaspora_identity.audit import AuditTrail
from diaspora_identity.http import Identity
from diaspora_service.db import make_engine, make_session_factory
from registry.access_log.consumer import build_consumer as access_log_consumer
from registry.associations import hooks as associations
from registry.associations.service import reconcile_association_embassies
from registry.crypto import DocumentCipher
from registry.duplicates.detection import forget_member as forget_duplicates
from registry.freshness.service import StaleCampaign, forget_stale_marks
from registry.identity import service as identity
from registry.members import email_syntax
from registry.members.embassies import reconcile_embassies
from registry.members.events import audit_event
from registry.person_keys import PersonKeys, destroy_key
from registry.resources import ErasureStep, MergeStep, Registry
from registry.settings import RegistrySettings
from registry.statistics.consumer import build_consumer as read_models_consumer
from registry.tables import audit_log, outbox

__all__ = ["Registry", "bootstrap", "reconcile_job", "stale_campaign", "worker_consumers"]


def erasure_steps(writer: OutboxWriter) -> list[ErasureStep]:
    """What an erasure (and the absorbed record of a merge) removes beyond the member row,
    in this order: the person's data key, duplicate cases, association links, campaign
    marks, identity checks."""
    return [
        destroy_key,
        forget_duplicates,
        associations.erasure_step(writer),
        forget_stale_marks,
        identity.forget_verifications,
    ]


def merge_steps(writer: OutboxWriter, cipher: DocumentCipher) -> list[MergeStep]:
    """What a merge of duplicates moves to the survivor beyond the member row: association
    links, identity checks (the survivor's level is the strongest of both records')."""
    return [associations.merge_step(writer), identity.merge_step(cipher)]


def reconcile_job(registry: Registry) -> Callable[[], Awaitable[None]]:
    """Re-derive every member's and association's embassy: the jurisdictions file may
    have changed since the last start (run by the HTTP process at start)."""

    async def job() -> None:
        jurisdictions = registry.identity.jurisdictions
        await reconcile_embassies(registry.sessions, jurisdictions)
        await reconcile_association_embassies(registry.sessions, jurisdictions)

    return job


def bootstrap(settings: RegistrySettings | None = None) -> Registry:
    settings = settings or RegistrySettings()
    # Registrations and imports check each email domain once (same decisions, cached).
    email_syntax.cache_domain_checks()
    engine = make_engine(settings.async_database_url)
    sessions = make_session_factory(engine)
    key_settings = event_key_settings("REGISTRY")
    keys = (
        PersonKeys(
            key_settings.kek(),
            sessions,
            cache_size=key_settings.event_keys_cache_size,
            cache_ttl=key_settings.event_keys_cache_ttl_seconds,
        )
        if key_settings.event_encryption
        else None
    )
    writer = OutboxWriter(outbox, source=settings.event_source, keys=keys)
    cipher = DocumentCipher.from_settings(settings.document_keys, settings.document_key_id)
    return Registry(
        settings=settings,
        engine=engine,
        sessions=sessions,
        outbox=writer,
        identity=Identity.from_settings(settings),
        audit=AuditTrail(audit_log, writer, audit_event),
        cipher=cipher,
        keys=keys,
        erasure_steps=erasure_steps(writer),
        merge_steps=merge_steps(writer, cipher),
    )


def worker_consumers(
    registry: Registry, dead_letters: DeadLetterSink, keys: KeyResolver | None
) -> list[EventConsumer]:
    """The worker's consumers, each handed what it needs: the read models (statistics,
    search) of the registry's own member events and the access log of the other
    services' audit events, sharing one cache of data keys (an erasure seen by either
    drops the key for both)."""
    settings = registry.settings
    return [
        read_models_consumer(
            sessions=registry.sessions,
            dead_letters=dead_letters,
            topic_prefix=settings.topic_prefix,
            require_consent=settings.statistics_require_consent,
            jurisdictions=registry.identity.jurisdictions,
            keys=keys,
        ),
        access_log_consumer(
            sessions=registry.sessions,
            dead_letters=dead_letters,
            topic_prefix=settings.topic_prefix,
            keys=keys,
        ),
    ]


def stale_campaign(registry: Registry) -> StaleCampaign:
    """The worker's periodic job: the update campaign marking stale profiles."""
    settings = registry.settings
    return StaleCampaign(
        sessions=registry.sessions,
        outbox=registry.outbox,
        after_months=settings.stale_after_months,
        interval=settings.stale_check_interval_seconds,
        batch_size=settings.stale_batch_size,
    )

"""Reactions to the consular service's events: the applicant is told where their
application stands (issue 17, item 10).

Registered on the service's one consumer by ``bootstrap.build_consumer``. From
``consular.applications``:

- ``consular.application.submitted``: received, with the embassy and the due date;
- ``consular.application.status-changed`` to ``information_requested`` (with the
  officer's reason), ``approved`` (with the reference), ``rejected`` (with the reason)
  and ``issued`` (also when the documentation authority's ``produced`` issues it); the
  authority's ``handover_accepted`` and ``handover_rejected`` (the status stays
  ``approved``); other transitions (review started, resubmitted by the person
  themselves, collected, withdrawn, expired) send nothing;
- ``consular.application.escalated`` is for the ministry's staff: never mailed.

Each message goes by email (or the person's first reachable channel) and into the
in-app inbox, in the ``consular`` category, in the language and to the contact kept
from the registry's events. A foreign visitor's e-visa (no ``applicant_id``, no registry
record) carries the visitor's own contact instead (``visitor_email``, verified by the
identity provider, and ``visitor_name``, sealed; ``visitor_language``): the same messages
go to that address by email only (no inbox, no preferences: the visitor has neither
here); the delivery's recipient id is the application's id (the subject of the consular
events), its reason ``visitor``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
import uuid_utils.compat as uuid_compat
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import EventConsumer
from diaspora_events.contracts import ApplicationStatusChangedV1, ApplicationSubmittedV1
from diaspora_events.observability import current_traceparent
from diaspora_events.outbox import OutboxWriter
from notifications.deliveries.dispatch import enqueue, notify
from notifications.deliveries.domain import VISITOR_REASON
from notifications.preferences.domain import category
from notifications.templates.domain import locale_of, render_version
from notifications.templates.service import resolve

log = structlog.get_logger(__name__)

Wake = Callable[[AsyncSession], None]

# The status an application moved to -> the template that tells the applicant.
STATUS_TEMPLATES = {
    "information_requested": "consular_information_requested",
    "approved": "consular_application_approved",
    "rejected": "consular_application_rejected",
    "issued": "consular_application_issued",
}
# Steps that leave the status as it is but are the person's news: the national
# documentation authority's answer to a hand-over package (consular.handover).
ACTION_TEMPLATES = {
    "handover_accepted": "consular_handover_accepted",
    "handover_rejected": "consular_handover_rejected",
}


@dataclass(frozen=True)
class Visitor:
    """A foreign visitor's contact as the event carries it."""

    application_id: UUID
    email: str
    name: str
    language: str

    @classmethod
    def of(cls, event: ApplicationSubmittedV1 | ApplicationStatusChangedV1) -> Visitor | None:
        if event.applicant_id is not None or not event.visitor_email:
            return None
        return cls(
            application_id=event.application_id,
            email=event.visitor_email,
            name=event.visitor_name or "",
            language=event.visitor_language or "fr",
        )


async def visitor_delivery(
    session: AsyncSession,
    visitor: Visitor,
    template: str,
    variables: dict[str, Any],
    cause_event_id: UUID,
) -> dict[str, Any]:
    """The email delivery of one message to a visitor (no registry record: the address is
    the one the event carries)."""
    version = await resolve(session, template, visitor.language)
    message = render_version(
        version,
        {**variables, "given_name": visitor.name, "family_name": ""},
        locale=locale_of(version.language, None),
    )
    return {
        "id": uuid_compat.uuid7(),
        "cause_event_id": cause_event_id,
        # The subject consular's events use for a visitor (the application): one
        # delivery per event and channel (deliveries_once), and an id for the delivery
        # events; ``reason`` "visitor" tells the sender there is no recipient row.
        "recipient_id": visitor.application_id,
        "channel": "email",
        "template": template,
        "template_version": message.version,
        "category": version.category,
        "mandatory": category(version.category).mandatory,
        "language": message.language,
        "address": visitor.email,
        "subject": message.subject,
        "body": message.body,
        "sms_text": message.sms,
        "traceparent": current_traceparent().get("traceparent"),
        "campaign_id": None,
        "previous_id": None,
        "reason": VISITOR_REASON,
    }


def register(
    consumer: EventConsumer,
    *,
    outbox: OutboxWriter,
    available: frozenset[str],
    wake: Wake,
) -> None:
    """Add the consular handlers to the notifications consumer."""

    async def tell(
        session: AsyncSession,
        envelope: Envelope,
        member_id: UUID | None,
        template: str,
        variables: dict[str, Any],
        visitor: Visitor | None = None,
    ) -> None:
        if member_id is None:
            if visitor is None or "email" not in available:
                log.info("consular_visitor_not_notified", template=template)
                return
            await enqueue(
                session,
                outbox,
                [await visitor_delivery(session, visitor, template, variables, envelope.id)],
            )
            wake(session)
            return
        created = await notify(
            session,
            outbox,
            member_id=member_id,
            template=template,
            variables=variables,
            cause_event_id=envelope.id,
            available=available,
            with_inbox=True,
        )
        if created is not None:
            wake(session)

    @consumer.on(ApplicationSubmittedV1)
    async def submitted(
        event: ApplicationSubmittedV1, session: AsyncSession, envelope: Envelope
    ) -> None:
        await tell(
            session,
            envelope,
            event.applicant_id,
            "consular_application_submitted",
            {
                "application_id": str(event.application_id),
                "service_type": event.service_type,
                "embassy_id": event.embassy_id,
                "due_on": event.due_at.date().isoformat(),
            },
            Visitor.of(event),
        )

    @consumer.on(ApplicationStatusChangedV1)
    async def status_changed(
        event: ApplicationStatusChangedV1, session: AsyncSession, envelope: Envelope
    ) -> None:
        template = ACTION_TEMPLATES.get(event.action)
        if template is None and event.from_status != event.to_status:
            template = STATUS_TEMPLATES.get(event.to_status)
        if template is None:
            return
        await tell(
            session,
            envelope,
            event.applicant_id,
            template,
            {
                "application_id": str(event.application_id),
                "service_type": event.service_type,
                "embassy_id": event.embassy_id,
                "reason": event.reason or "",
                "reference": event.reference or "",
            },
            Visitor.of(event),
        )

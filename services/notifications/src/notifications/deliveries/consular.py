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
from the registry's events. A foreign visitor's e-visa (no ``applicant_id``) reaches
nobody: the events carry no contact of theirs (docs/consular.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import EventConsumer
from diaspora_events.contracts import ApplicationStatusChangedV1, ApplicationSubmittedV1
from diaspora_events.outbox import OutboxWriter
from notifications.deliveries.dispatch import notify

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
    ) -> None:
        if member_id is None:
            log.info("consular_visitor_not_notified", template=template)
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
        )

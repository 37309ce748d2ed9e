"""Consular's application events reach the applicant (issue 17, item 10): submitted,
information requested, approved, rejected and issued, by email and in the inbox, in the
person's language; other transitions and the staff-only escalation send nothing, and a
foreign visitor's e-visa (no registry record, no contact) reaches nobody (real database,
broker and SMTP server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from notifications_testing import (
    confirm_email,
    deliveries_settled,
    publish,
    registered,
    wait_worker_consumed,
)
from sqlalchemy import select
from uuid_utils.compat import uuid7

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import wait_until
from diaspora_events.contracts import (
    ApplicationEscalatedV1,
    ApplicationStatusChangedV1,
    ApplicationSubmittedV1,
)
from diaspora_events.topics import CONSULAR_APPLICATIONS, REGISTRY_MEMBERS
from notifications.deliveries.tables import deliveries
from notifications.entrypoints.worker import run
from notifications.preferences.tables import inbox_messages
from notifications.resources import Notifications
from notifications.tables import recipients

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
async def worker(notifications: Notifications) -> AsyncIterator[Notifications]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(notifications, stop))
    yield notifications
    stop.set()
    await asyncio.wait_for(task, timeout=30)


async def known(service: Notifications, *member_ids: object) -> bool:
    async with service.sessions() as session:
        found = set(
            (
                await session.execute(
                    select(recipients.c.member_id).where(recipients.c.member_id.in_(member_ids))
                )
            ).scalars()
        )
    return found == set(member_ids)


def submitted(application_id: UUID, applicant_id: UUID | None, service_type: str) -> Any:
    return ApplicationSubmittedV1(
        application_id=application_id,
        applicant_id=applicant_id,
        subject_id=applicant_id or application_id,
        service_type=service_type,
        catalogue_version=1,
        embassy_id="tg-lome" if applicant_id is None else "de-berlin",
        submitted_at=AT,
        due_at=datetime(2026, 12, 22, 9, 0, tzinfo=UTC),
        fee_amount="10000.00",
        fee_currency="XOF",
        answers={},
    )


def changed(
    application_id: UUID,
    applicant_id: UUID,
    action: str,
    from_status: Any,
    to_status: Any,
    *,
    actor_role: str = "embassy_officer",
    reason: str | None = None,
    reference: str | None = None,
) -> ApplicationStatusChangedV1:
    return ApplicationStatusChangedV1(
        application_id=application_id,
        applicant_id=applicant_id,
        subject_id=applicant_id,
        service_type="consular_card",
        embassy_id="de-berlin",
        action=action,
        from_status=from_status,
        to_status=to_status,
        actor_role=actor_role,
        changed_at=AT,
        reason=reason,
        reference=reference,
    )


async def test_the_applicant_is_told_each_step_by_email_and_inbox_in_their_language(
    worker: Notifications, kafka_bootstrap: str, topic_prefix: str, mailbox: Mailbox
) -> None:
    kossi = registered("Kossi", "kossi@example.org", "fr")
    ama = registered("Ama", "ama@example.org", "en")
    await publish(kafka_bootstrap, topic_prefix + REGISTRY_MEMBERS.name, kossi, ama)
    await wait_until(lambda: known(worker, kossi.member_id, ama.member_id), timeout=30)
    await wait_until(lambda: len(mailbox.messages) >= 2, timeout=30, message="verifications")
    for mail in list(mailbox.messages):
        await confirm_email(worker, mail.text())
    await wait_until(lambda: len(mailbox.messages) >= 4, timeout=30, message="welcome emails")
    welcomes = len(mailbox.messages)

    card, refused, visa = uuid7(), uuid7(), uuid7()
    reference = "CC-2026-3F9A1C07B2"
    events = [
        submitted(card, kossi.member_id, "consular_card"),
        changed(card, kossi.member_id, "start_review", "submitted", "under_review"),
        changed(
            card,
            kossi.member_id,
            "request_information",
            "under_review",
            "information_requested",
            reason="Photo illisible, merci d'en envoyer une autre.",
        ),
        changed(
            card,
            kossi.member_id,
            "resubmit",
            "information_requested",
            "resubmitted",
            actor_role="applicant",
        ),
        changed(card, kossi.member_id, "start_review", "resubmitted", "under_review"),
        changed(card, kossi.member_id, "approve", "under_review", "approved", reference=reference),
        changed(card, kossi.member_id, "issue", "approved", "issued", reference=reference),
        ApplicationEscalatedV1(
            application_id=card,
            applicant_id=kossi.member_id,
            service_type="consular_card",
            embassy_id="de-berlin",
            status="under_review",
            due_at=AT,
            escalated_at=AT,
        ),
        submitted(refused, ama.member_id, "consular_card"),
        changed(
            refused,
            ama.member_id,
            "reject",
            "under_review",
            "rejected",
            reason="Address outside the embassy's jurisdiction.",
        ),
        submitted(visa, None, "e_visa"),
    ]
    # Delivered twice each, as after a relay crash: one message each.
    await publish(kafka_bootstrap, topic_prefix + CONSULAR_APPLICATIONS.name, *events, times=2)
    await wait_until(
        lambda: len(mailbox.messages) >= welcomes + 6, timeout=30, message="six emails"
    )
    await wait_worker_consumed(worker, CONSULAR_APPLICATIONS)
    await wait_until(lambda: deliveries_settled(worker), timeout=30, message="deliveries sent")

    mails = mailbox.messages[welcomes:]
    assert len(mails) == 6, [(m.recipients, m.subject) for m in mails]
    to_kossi = [m.subject for m in mails if m.recipients == ("kossi@example.org",)]
    assert to_kossi == [
        "Demande de carte consulaire reçue",
        "Votre demande de carte consulaire : informations demandées",
        "Votre demande de carte consulaire est acceptée",
        "Votre carte consulaire est délivré(e)",
    ]
    texts = {m.subject: " ".join(m.text().split()) for m in mails}
    received = texts["Demande de carte consulaire reçue"]
    assert "Bonjour Kossi Agbeko" in received
    assert "au plus tard le 22 décembre 2026" in received
    assert str(card) in received
    asked = texts["Votre demande de carte consulaire : informations demandées"]
    assert "Photo illisible, merci d'en envoyer une autre." in asked
    assert reference in texts["Votre demande de carte consulaire est acceptée"]
    to_ama = [m for m in mails if m.recipients == ("ama@example.org",)]
    assert [m.subject for m in to_ama] == [
        "Your consular card application is received",
        "Your consular card application is rejected",
    ]
    rejected = " ".join(to_ama[1].text().split())
    assert "Hello Ama Agbeko" in rejected
    assert "Reason: Address outside the embassy's jurisdiction." in rejected

    # The same messages are in each person's in-app inbox.
    async with worker.sessions() as session:
        inbox = (
            await session.execute(
                select(
                    inbox_messages.c.member_id, inbox_messages.c.title, inbox_messages.c.category
                )
            )
        ).all()
    consular_inbox = [(m, t) for m, t, c in inbox if c == "consular"]
    assert sorted(t for m, t in consular_inbox if m == kossi.member_id) == sorted(to_kossi)
    assert sorted(t for m, t in consular_inbox if m == ama.member_id) == sorted(
        m.subject for m in to_ama
    )


async def test_a_foreign_visitor_gets_their_e_visa_mails_at_the_contact_the_event_carries(
    worker: Notifications, kafka_bootstrap: str, topic_prefix: str, mailbox: Mailbox
) -> None:
    visa, silent = uuid7(), uuid7()
    reference = "EV-2026-7C1D0E55A9"
    before = len(mailbox.messages)

    def visitor(event: Any, email: str | None) -> Any:
        if email is None:
            return event
        return event.model_copy(
            update={
                "visitor_email": email,
                "visitor_name": "John Smith",
                "visitor_language": "en",
            }
        )

    def visa_changed(application: UUID, action: str, from_status: Any, to_status: Any) -> Any:
        return ApplicationStatusChangedV1(
            application_id=application,
            applicant_id=None,
            subject_id=application,
            service_type="e_visa",
            embassy_id="tg-lome",
            action=action,
            from_status=from_status,
            to_status=to_status,
            actor_role="embassy_officer",
            changed_at=AT,
            reference=reference if to_status == "approved" else None,
        )

    events = [
        visitor(submitted(visa, None, "e_visa"), "john.smith@example.com"),
        visitor(
            visa_changed(visa, "start_review", "submitted", "under_review"),
            "john.smith@example.com",
        ),
        visitor(
            visa_changed(visa, "approve", "under_review", "approved"), "john.smith@example.com"
        ),
        # A visitor whose account has no verified email: nobody to tell.
        visitor(submitted(silent, None, "e_visa"), None),
    ]
    # Delivered twice each: one message each.
    await publish(kafka_bootstrap, topic_prefix + CONSULAR_APPLICATIONS.name, *events, times=2)
    await wait_until(lambda: len(mailbox.messages) >= before + 2, timeout=30, message="two emails")
    await wait_worker_consumed(worker, CONSULAR_APPLICATIONS)
    await wait_until(lambda: deliveries_settled(worker), timeout=30, message="deliveries sent")

    mails = mailbox.messages[before:]
    assert [(m.recipients, m.subject) for m in mails] == [
        (("john.smith@example.com",), "Your e-visa application is received"),
        (("john.smith@example.com",), "Your e-visa application is approved"),
    ]
    approved = " ".join(mails[1].text().split())
    assert "Hello John Smith" in approved
    assert reference in approved
    # No registry record: nothing in any in-app inbox; one delivery per message, under
    # the application's id, sent.
    async with worker.sessions() as session:
        inbox = (await session.execute(select(inbox_messages.c.id))).all()
        sent = (
            await session.execute(
                select(deliveries.c.recipient_id, deliveries.c.status, deliveries.c.reason)
            )
        ).all()
    assert inbox == []
    assert sorted(sent) == [(visa, "sent", "visitor")] * 2


async def test_the_documentation_authoritys_answers_reach_the_applicant(
    worker: Notifications, kafka_bootstrap: str, topic_prefix: str, mailbox: Mailbox
) -> None:
    """A hand-over package's answers (consular.handover): accepted and rejected keep the
    application approved but are the person's news; produced issues it (the issued mail)."""
    afi = registered("Afi", "afi@example.org", "fr")
    await publish(kafka_bootstrap, topic_prefix + REGISTRY_MEMBERS.name, afi)
    await wait_until(lambda: known(worker, afi.member_id), timeout=30)
    await wait_until(lambda: len(mailbox.messages) >= 1, timeout=30, message="verification")
    await confirm_email(worker, mailbox.messages[0].text())
    await wait_until(lambda: len(mailbox.messages) >= 2, timeout=30, message="welcome email")
    welcomes = len(mailbox.messages)
    passport, card = uuid7(), uuid7()

    def by_authority(application: UUID, action: str, to: str, **kw: Any) -> Any:
        event = changed(application, afi.member_id, action, "approved", to, **kw)
        return event.model_copy(
            update={"service_type": "passport_preparation", "actor_role": "authority"}
        )

    events = [
        by_authority(passport, "handover_accepted", "approved"),
        by_authority(card, "handover_rejected", "approved", reason="Photo floue."),
        by_authority(passport, "record_production", "issued", reason="produced: P-1"),
    ]
    await publish(kafka_bootstrap, topic_prefix + CONSULAR_APPLICATIONS.name, *events)
    await wait_until(
        lambda: len(mailbox.messages) >= welcomes + 3, timeout=30, message="three emails"
    )
    await wait_worker_consumed(worker, CONSULAR_APPLICATIONS)
    mails = mailbox.messages[welcomes:]
    assert sorted(m.subject for m in mails) == sorted(
        [
            "Votre dossier de passeport est accepté par l'autorité nationale",
            "Votre dossier de passeport est refusé par l'autorité nationale",
            "Votre préparation de passeport est délivré(e)",
        ]
    ), [m.subject for m in mails]
    refused = next(m for m in mails if "refusé" in m.subject)
    assert "Motif : Photo floue." in " ".join(refused.text().split())

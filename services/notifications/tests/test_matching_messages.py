"""Matching's events reach the people concerned: a proposed mission to the expert, an
agreed mission to the expert, interest in a project to its holder (real database,
broker and SMTP server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

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
    InterestExpressedV1,
    MatchProposedV1,
    MissionAgreedV1,
    MissionFacts,
)
from diaspora_events.topics import (
    MATCHING_MATCHES,
    MATCHING_MISSIONS,
    MATCHING_PROJECTS,
    REGISTRY_MEMBERS,
)
from notifications.entrypoints.worker import run
from notifications.resources import Notifications
from notifications.tables import recipients

pytestmark = pytest.mark.integration


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


async def test_expert_and_holder_are_told_in_their_language_once(
    worker: Notifications, kafka_bootstrap: str, topic_prefix: str, mailbox: Mailbox
) -> None:
    expert = registered("Kossi", "kossi@example.org", "fr")
    holder = registered("Ama", "ama@example.org", "en")
    await publish(kafka_bootstrap, topic_prefix + REGISTRY_MEMBERS.name, expert, holder)
    # Contacts come from the registry's events; matching's arrive on other topics.
    await wait_until(lambda: known(worker, expert.member_id, holder.member_id), timeout=30)
    # Each address is verified first (its link confirmed), then welcomed.
    await wait_until(lambda: len(mailbox.messages) >= 2, timeout=30, message="verifications")
    for mail in list(mailbox.messages):
        await confirm_email(worker, mail.text())
    await wait_until(lambda: len(mailbox.messages) >= 4, timeout=30, message="welcome emails")
    welcomes = len(mailbox.messages)

    proposal = MatchProposedV1(
        proposal_id=uuid7(),
        need_id=uuid7(),
        member_id=expert.member_id,
        proposed_at=datetime(2026, 5, 2, 9, 0, tzinfo=UTC),
        respond_by=date(2026, 6, 15),
        need_title="Cours de santé publique",
        need_type="teaching",
        institution="Université de Kara",
        region="TG-K",
        starts_on=date(2026, 9, 1),
        ends_on=date(2026, 9, 30),
        score=0.82,
        reasons=["ISCO 2212 exact"],
    )
    agreed = MissionAgreedV1(
        mission_id=uuid7(),
        proposal_id=proposal.proposal_id,
        need_id=proposal.need_id,
        member_id=expert.member_id,
        agreed_at=datetime(2026, 6, 20, tzinfo=UTC),
        starts_on=date(2026, 9, 2),
        ends_on=date(2026, 9, 29),
        facts=MissionFacts(type="teaching", region="TG-K", country_of_residence="DE"),
    )
    interest = InterestExpressedV1(
        interest_id=uuid7(),
        project_id=uuid7(),
        holder_id=holder.member_id,
        project_title="Solar kits for health centres",
        organisation="giz-togo",
        actor_role="partner_caseworker",
        message="Let us talk about co-financing.",
        expressed_at=datetime(2026, 5, 3, tzinfo=UTC),
    )
    # Delivered twice each, as after a relay crash: one message each.
    await publish(kafka_bootstrap, topic_prefix + MATCHING_MATCHES.name, proposal, times=2)
    await publish(kafka_bootstrap, topic_prefix + MATCHING_MISSIONS.name, agreed, times=2)
    await publish(kafka_bootstrap, topic_prefix + MATCHING_PROJECTS.name, interest, times=2)
    await wait_until(
        lambda: len(mailbox.messages) >= welcomes + 3, timeout=30, message="three emails"
    )
    # Both copies of each handled (the group committed the end of the three topics) and
    # every delivery they queued sent: a duplicate would be in the mailbox by now.
    await wait_worker_consumed(worker, MATCHING_MATCHES, MATCHING_MISSIONS, MATCHING_PROJECTS)
    await wait_until(lambda: deliveries_settled(worker), timeout=30, message="deliveries sent")

    mails = mailbox.messages[welcomes:]
    assert len(mails) == 3, [(m.recipients, m.subject) for m in mailbox.messages]
    to_expert = [m for m in mails if m.recipients == ("kossi@example.org",)]
    to_holder = [m for m in mails if m.recipients == ("ama@example.org",)]
    proposed = next(m for m in to_expert if m.subject.startswith("Une mission vous est proposée"))
    assert "Cours de santé publique" in proposed.subject
    body = " ".join(proposed.text().split())
    assert "Bonjour Kossi Agbeko" in body
    assert "vous propose une mission d'enseignement : Cours de santé publique" in body
    assert "Université de Kara, région de la Kara" in body
    assert "du 1 septembre 2026 au 30 septembre 2026" in body
    assert "avant le 15 juin 2026" in body
    assert str(proposal.proposal_id) in body
    confirmed = next(m for m in to_expert if m not in (proposed,))
    assert (
        confirmed.subject == "Votre mission est confirmée du 2 septembre 2026 au 29 septembre 2026"
    )
    assert str(agreed.mission_id) in confirmed.text()
    (told,) = to_holder
    assert told.subject == 'A partner is interested in your project "Solar kits for health centres"'
    told_text = " ".join(told.text().split())
    assert "Hello Ama Agbeko" in told_text
    assert "giz-togo is interested in your project" in told_text
    assert "Their message: Let us talk about co-financing." in told_text

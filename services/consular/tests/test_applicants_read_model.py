"""The applicants read model, fed by registry.members on the real broker through the
worker: every member event type, newer snapshots only, identity verification,
idempotence (inbox), erasure and merge (with their steps on applications)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from consular_testing import (
    answers_for,
    new_member_id,
    profile,
    publish,
    store_required_documents,
)
from sqlalchemy import func, select

from consular.applications import service as applications_service
from consular.applications.tables import applications
from consular.entrypoints.worker import run
from consular.members.consumer import CONSUMER_NAME
from consular.members.tables import applicants, removed_applicants
from consular.resources import Consular
from consular.tables import inbox
from diaspora_devstack.testing import wait_consumed
from diaspora_events.contracts.registry import (
    MemberConfirmedV1,
    MemberErasedV1,
    MemberIdentityVerifiedV1,
    MemberMarkedStaleV1,
    MemberMergedV1,
    MemberRegisteredV1,
    MemberUpdatedV1,
)
from diaspora_events.topics import REGISTRY_MEMBERS

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def running_worker(service: Consular) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(service, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def row(service: Consular, member_id: UUID) -> dict[str, Any] | None:
    async with service.sessions() as session:
        found = (
            (await session.execute(select(applicants).where(applicants.c.member_id == member_id)))
            .mappings()
            .first()
        )
    return dict(found) if found else None


async def application_ids(service: Consular, member_id: UUID) -> dict[UUID, str]:
    async with service.sessions() as session:
        rows = await session.execute(
            select(applications.c.id, applications.c.status).where(
                applications.c.applicant_id == member_id
            )
        )
    return {r.id: r.status for r in rows}


async def make_application(
    service: Consular, member_id: UUID, service_type: str, *, submit: bool
) -> UUID:
    async with service.sessions() as session, session.begin():
        created, _new = await applications_service.create_draft(
            session,
            applicant_id=member_id,
            subject=f"citizen-{member_id}",
            service_type=service_type,
            answers=answers_for(service_type),
            now=datetime.now(UTC),
        )
        if submit:
            await store_required_documents(service, session, created)
            await applications_service.apply_transition(
                session,
                service.outbox,
                created,
                action="submit",
                actor=applications_service.Actor(subject="citizen", side="applicant"),
                reason=None,
                answers=None,
                now=datetime.now(UTC),
            )
    application_id: UUID = created["id"]
    return application_id


async def test_every_member_event_type_keeps_the_applicant_as_the_registry_has_them(
    consular: Consular, topic_prefix: str, kafka_bootstrap: str
) -> None:
    topic = topic_prefix + REGISTRY_MEMBERS.name
    group = topic_prefix + CONSUMER_NAME
    kofi, ama = new_member_id(), new_member_id()
    t0 = datetime.now(UTC) - timedelta(hours=1)
    registered = MemberRegisteredV1(
        member_id=kofi,
        given_name="Kofi",
        family_name="Agbeko",
        date_of_birth=profile().date_of_birth,
        email="kofi@example.org",
        phone="+33612345678",
        country_of_residence="FR",
        registered_at=t0,
        profile=profile(given_name="Kofi", family_name="Agbeko"),
    )
    # An early registration without a profile: the embassy follows from the country.
    early = MemberRegisteredV1(
        member_id=ama,
        given_name="Ama",
        family_name="Dossou",
        date_of_birth=profile().date_of_birth,
        email="ama@example.org",
        phone="+4915112345678",
        country_of_residence="de",
        preferred_language="en",
        registered_at=t0,
    )
    async with running_worker(consular):
        await publish(kafka_bootstrap, topic, registered, early)
        await wait_consumed(kafka_bootstrap, group, [topic], timeout=60)
        kept = await row(consular, kofi)
        assert kept is not None
        assert (kept["given_name"], kept["embassy_id"], kept["identity_level"]) == (
            "Kofi",
            "fr-paris",
            None,
        )
        ama_row = await row(consular, ama)
        assert ama_row is not None
        assert (ama_row["embassy_id"], ama_row["country_of_residence"]) == ("de-berlin", "DE")
        assert ama_row["preferred_language"] == "en"

        verified = MemberIdentityVerifiedV1(
            member_id=kofi,
            verified_at=t0 + timedelta(minutes=10),
            level="in_person",
            profile=profile(given_name="Kofi", family_name="Agbeko", verified=True),
        )
        # Older than the verification: ignored (the registry's order is the events' times).
        stale_update = MemberUpdatedV1(
            member_id=kofi,
            updated_at=t0 + timedelta(minutes=5),
            changed_fields=["given_name"],
            profile=profile(given_name="Kodjo", family_name="Agbeko"),
        )
        moved = MemberUpdatedV1(
            member_id=ama,
            updated_at=t0 + timedelta(minutes=20),
            changed_fields=["country_of_residence"],
            profile=profile(
                given_name="Ama", family_name="Dossou", country="BE", embassy_id="be-brussels"
            ),
        )
        confirmed = MemberConfirmedV1(
            member_id=ama,
            confirmed_at=t0 + timedelta(minutes=30),
            profile=profile(
                given_name="Ama",
                family_name="Dossou-Lawson",
                country="BE",
                embassy_id="be-brussels",
            ),
        )
        marked = MemberMarkedStaleV1(
            member_id=kofi,
            marked_at=t0 + timedelta(minutes=40),
            last_confirmed_at=t0,
            profile=profile(
                given_name="Kofi", family_name="Agbeko", verified=True, preferred_language="en"
            ),
        )
        # The verification delivered twice (same event id, a redelivery): handled once.
        await publish(kafka_bootstrap, topic, verified, times=2)
        # Then an update older than it (arriving late): ignored.
        await publish(kafka_bootstrap, topic, stale_update, moved, confirmed, marked)
        await wait_consumed(kafka_bootstrap, group, [topic], timeout=60)

    kept = await row(consular, kofi)
    assert kept is not None
    assert kept["given_name"] == "Kofi"  # the stale update did not win
    assert kept["identity_level"] == "in_person"
    assert kept["identity_embassy_id"] == "fr-paris"
    assert kept["preferred_language"] == "en"
    ama_row = await row(consular, ama)
    assert ama_row is not None
    assert (ama_row["family_name"], ama_row["embassy_id"]) == ("Dossou-Lawson", "be-brussels")
    async with consular.sessions() as session:
        handled = (
            await session.execute(
                select(func.count()).select_from(inbox).where(inbox.c.consumer == CONSUMER_NAME)
            )
        ).scalar_one()
    assert handled == 7  # 8 records, one of them a duplicate


async def test_erasure_and_merge(
    consular: Consular, topic_prefix: str, kafka_bootstrap: str
) -> None:
    topic = topic_prefix + REGISTRY_MEMBERS.name
    group = topic_prefix + CONSUMER_NAME
    erased_id, absorbed, survivor = new_member_id(), new_member_id(), new_member_id()
    t0 = datetime.now(UTC) - timedelta(hours=1)

    def snapshot(member_id: UUID, name: str) -> MemberUpdatedV1:
        return MemberUpdatedV1(
            member_id=member_id,
            updated_at=t0,
            changed_fields=["profile"],
            profile=profile(given_name=name, family_name="Test"),
        )

    async with running_worker(consular):
        await publish(
            kafka_bootstrap,
            topic,
            snapshot(erased_id, "Erased"),
            snapshot(absorbed, "Absorbed"),
            snapshot(survivor, "Survivor"),
        )
        await wait_consumed(kafka_bootstrap, group, [topic], timeout=60)
        draft = await make_application(consular, erased_id, "passport_preparation", submit=False)
        undecided = await make_application(consular, erased_id, "passport_preparation", submit=True)
        moved = await make_application(
            consular, absorbed, "civil_status_transcription", submit=True
        )

        await publish(
            kafka_bootstrap,
            topic,
            MemberErasedV1(member_id=erased_id, erased_at=t0 + timedelta(minutes=1)),
            MemberMergedV1(
                member_id=absorbed,
                survivor_id=survivor,
                merged_at=t0 + timedelta(minutes=1),
                case_id=new_member_id(),
            ),
            # A late snapshot of the erased person (a replay): they do not come back.
            snapshot(erased_id, "Erased"),
        )
        await wait_consumed(kafka_bootstrap, group, [topic], timeout=60)

    assert await row(consular, erased_id) is None
    assert await row(consular, absorbed) is None
    assert await row(consular, survivor) is not None
    # The erased person's draft and their submitted application without a decision are
    # gone (a decided one would stay: tests/test_erasure.py).
    assert await application_ids(consular, erased_id) == {}
    assert {draft, undecided}.isdisjoint(await application_ids(consular, erased_id))
    # The absorbed record's application follows the survivor.
    assert await application_ids(consular, absorbed) == {}
    assert (await application_ids(consular, survivor)) == {moved: "submitted"}
    async with consular.sessions() as session:
        removed = dict(
            (
                await session.execute(
                    select(removed_applicants.c.member_id, removed_applicants.c.reason)
                )
            ).all()
        )
    assert removed == {erased_id: "erased", absorbed: "merged"}

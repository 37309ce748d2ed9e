"""Erasure, retention and seats given back, on the real PostgreSQL and Kafka.

- A withdrawn or expired application gives its appointment's seat back: the last seat
  of a slot is booked, the application closes, and another applicant books that seat.
- ``registry.member.erased`` through the worker on the real broker (delivered twice: the
  inbox makes the second a no-op): the read model row, the drafts and the applications
  without a decision go (a booked seat comes back), a decided application and its
  credential stay pseudonymised, a difficulty report stays for the counts without the
  person's words; no text or JSON column of the database holds the person's names, email,
  or form answers afterwards; the uploads hook is called with the member id.
- The retention job deletes what was kept once its period is over, and nothing before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from consular_testing import (
    answers_for,
    known_applicant,
    new_member_id,
    pay_fee,
    profile,
    publish,
    upload_required_documents,
)
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from consular.applications.tables import application_history, applications
from consular.appointments.tables import appointments, slot_seats
from consular.bootstrap import (
    Clock,
    bootstrap,
    consumers,
    document_eraser,
    periodic_tasks,
    run_retention_once,
    run_sla_once,
    utc_now,
)
from consular.credentials.tables import credentials
from consular.documents.tables import documents
from consular.erasure.service import DocumentEraser, erase_member
from consular.members.consumer import CONSUMER_NAME
from consular.members.tables import applicants
from consular.reports.tables import report_messages, reports
from consular.resources import Consular
from consular.tables import inbox, outbox
from diaspora_devstack.testing import wait_consumed, wait_until
from diaspora_events.contracts.registry import MemberErasedV1
from diaspora_events.topics import REGISTRY_MEMBERS
from diaspora_identity.testing import LocalIssuer, Persona, citizen, officer
from diaspora_service.worker import run_worker

pytestmark = pytest.mark.integration

PARIS = "fr-paris"
# The erased person's own answer (nobody else's): searched for in every column after.
ADDRESS = "3 impasse des Baobabs, 69007 Lyon"


@pytest.fixture
async def consular(make_settings: Any, tmp_path: Path) -> AsyncIterator[Consular]:
    service = bootstrap(make_settings(credential_signing_key_file=tmp_path / "signing.pem"))
    yield service
    await service.close()


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


class Caller:
    def __init__(self, http: httpx.AsyncClient, issuer: LocalIssuer, persona: Persona) -> None:
        self.http = http
        self.persona = persona
        self.headers = issuer.headers(persona)

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.headers)

    async def act(self, application_id: str, action: str, **body: Any) -> dict[str, Any]:
        return ok(  # type: ignore[no-any-return]
            await self.post(
                f"/applications/{application_id}/transitions", {"action": action, **body}
            )
        )


async def applicant(
    consular: Consular, http: httpx.AsyncClient, issuer: LocalIssuer, **names: str
) -> Caller:
    member_id = new_member_id()
    await known_applicant(consular, member_id, profile(verified=True, **names))
    return Caller(http, issuer, citizen(member_id=member_id))


async def submitted(person: Caller, service_type: str = "consular_card", **answers: Any) -> str:
    created = ok(await person.post("/applications", {"service_type": service_type}), 201)
    await upload_required_documents(person.http, person.headers, created["id"], service_type)
    await person.act(created["id"], "submit", answers={**answers_for(service_type), **answers})
    return str(created["id"])


async def consular_documents(service: Consular, member_id: UUID) -> list[str]:
    """The storage keys of a member's documents that are still in the store."""
    async with service.sessions() as session:
        keys = (
            await session.execute(
                select(documents.c.storage_key).where(documents.c.member_id == member_id)
            )
        ).scalars()
        assert service.documents is not None
        store = await service.documents.get()
        return [key for key in keys if await store.exists(key)]


async def publish_template(http: httpx.AsyncClient, issuer: LocalIssuer) -> None:
    body = {
        "timezone": "Europe/Paris",
        "slot_minutes": 30,
        "capacity": 1,
        "weekly_hours": {d: [{"start": "09:00", "end": "12:00"}] for d in ("mon", "tue")},
        "closures": [],
        "valid_from": "2026-12-01",
        "valid_to": "2028-12-31",
        "horizon_days": 180,
    }
    ok(
        await http.put(
            f"/embassies/{PARIS}/slot-template", json=body, headers=issuer.headers(officer(PARIS))
        )
    )


def a_monday(hour_local: int = 9) -> str:
    from zoneinfo import ZoneInfo

    day = datetime.now(UTC).date() + timedelta(days=21)
    day += timedelta(days=(7 - day.weekday()) % 7)
    local = datetime(day.year, day.month, day.day, hour_local, tzinfo=ZoneInfo("Europe/Paris"))
    return local.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def book(person: Caller, application: str, start: str) -> httpx.Response:
    return await person.post("/appointments", {"application_id": application, "slot_start": start})


async def seats_booked(consular: Consular, start: str) -> int:
    async with consular.sessions() as session:
        booked = (
            await session.execute(
                select(slot_seats.c.booked).where(
                    slot_seats.c.embassy_id == PARIS,
                    slot_seats.c.slot_start == datetime.fromisoformat(start),
                )
            )
        ).scalar_one()
    return int(booked)


# --- seats given back --------------------------------------------------------------------


async def test_a_withdrawn_application_gives_its_seat_to_the_next_applicant(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    await publish_template(http, identity_provider)
    slot = a_monday(9)
    first = await applicant(consular, http, identity_provider)
    second = await applicant(consular, http, identity_provider)
    first_app, second_app = await submitted(first), await submitted(second)

    booked = ok(await book(first, first_app, slot), 201)
    assert (await book(second, second_app, slot)).status_code == 409  # the last seat is taken
    assert await seats_booked(consular, slot) == 1

    await first.act(first_app, "withdraw")

    assert await seats_booked(consular, slot) == 0
    mine = ok(await http.get(f"/appointments/{booked['id']}", headers=first.headers))
    assert mine["status"] == "cancelled"
    ok(await book(second, second_app, slot), 201)
    assert await seats_booked(consular, slot) == 1


async def test_an_expired_application_gives_its_seat_back(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    await publish_template(http, identity_provider)
    slot = a_monday(10)
    first = await applicant(consular, http, identity_provider)
    second = await applicant(consular, http, identity_provider)
    first_app, second_app = await submitted(first), await submitted(second)
    staff = Caller(http, identity_provider, officer(PARIS))
    ok(await book(first, first_app, slot), 201)
    await staff.act(first_app, "request_information", reason="Photo illisible")

    # The SLA job, 61 days on: the request for information went unanswered.
    outcome = await run_sla_once(consular, datetime.now(UTC) + timedelta(days=61))

    assert UUID(first_app) in outcome.expired
    assert await seats_booked(consular, slot) == 0
    ok(await book(second, second_app, slot), 201)


# --- erasure through the worker ------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_worker(
    service: Consular,
    *,
    forget_documents: DocumentEraser | None = None,
    clock: Clock = utc_now,
) -> AsyncIterator[None]:
    """The worker as ``consular-worker`` runs it (its consumers and periodic jobs, as
    bootstrap composes them), with the uploads hook given here."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(
            service="consular",
            settings=service.settings,
            consumers=lambda dead_letters: consumers(
                sessions=service.sessions,
                dead_letters=dead_letters,
                topic_prefix=service.settings.topic_prefix,
                forget_documents=forget_documents,
            ),
            jobs=periodic_tasks(service, clock),
            readiness={"database": service.database_ready},
            stop=stop,
        )
    )
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def text_columns_holding(session: AsyncSession, needles: list[str]) -> list[str]:
    """Every (table.column) of the database whose text or JSON holds one of ``needles``."""
    columns = (
        await session.execute(
            text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND data_type IN "
                "('text', 'character varying', 'jsonb', 'json', 'ARRAY', 'bytea')"
            )
        )
    ).all()
    found = []
    for table, column, data_type in columns:
        # Identifiers from the catalogue itself, quoted; the needle is a bound parameter.
        value = f"encode(\"{column}\", 'escape')" if data_type == "bytea" else f'"{column}"::text'
        query = text(
            f'SELECT 1 FROM "{table}" '  # noqa: S608
            f"WHERE position(lower(:needle) in lower({value})) > 0 LIMIT 1"
        )
        for needle in needles:
            if (await session.execute(query, {"needle": needle})).first() is not None:
                found.append(f"{table}.{column}: {needle}")
    return found


async def test_erasure_deletes_what_it_may_and_keeps_the_legal_record_pseudonymised(
    consular: Consular,
    http: httpx.AsyncClient,
    identity_provider: LocalIssuer,
    topic_prefix: str,
    kafka_bootstrap: str,
) -> None:
    await publish_template(http, identity_provider)
    slot = a_monday(11)
    person = await applicant(
        consular, http, identity_provider, given_name="Yawavi", family_name="Adjoviqua"
    )
    other = await applicant(consular, http, identity_provider)
    member_id = person.persona.member_id
    assert member_id is not None
    staff = Caller(http, identity_provider, officer(PARIS))

    draft = ok(
        await person.post(
            "/applications",
            {"service_type": "consular_card", "answers": {"address_abroad": ADDRESS}},
        ),
        201,
    )["id"]
    in_progress = await submitted(person, address_abroad=ADDRESS)
    ok(await book(person, in_progress, slot), 201)
    decided = await submitted(person, address_abroad=ADDRESS)
    await staff.act(decided, "start_review")
    await pay_fee(http, staff.headers, decided)
    for action in ("approve", "issue"):
        await staff.act(decided, action)
    report = ok(
        await person.post(
            "/reports",
            {"category": "documents", "country": "FR", "description": "Mon dossier Zorglub"},
        ),
        201,
    )["id"]
    ok(await person.post(f"/reports/{report}/messages", {"body": "Relance Zorglub"}), 201)
    other_app = await submitted(other)
    assert (await book(other, other_app, slot)).status_code == 409

    forgotten: list[UUID] = []
    # The eraser bootstrap composes (rows and stored objects), watched.
    eraser = document_eraser(consular)
    assert eraser is not None
    stored = await consular_documents(consular, member_id)
    assert stored  # the documents of their two submitted applications

    async def forget_documents(session: AsyncSession, erased: UUID) -> None:
        forgotten.append(erased)
        await eraser(session, erased)

    topic = topic_prefix + REGISTRY_MEMBERS.name
    erased = MemberErasedV1(member_id=member_id, erased_at=datetime.now(UTC))
    async with running_worker(consular, forget_documents=forget_documents):
        # Delivered twice, as it is (same event id): the second is a no-op (inbox).
        await publish(kafka_bootstrap, topic, erased, times=2)
        await wait_consumed(kafka_bootstrap, topic_prefix + CONSUMER_NAME, [topic], timeout=60)

    assert forgotten == [member_id]
    # Their documents' bytes are gone from the store too, not only the rows.
    assert consular.documents is not None
    store = await consular.documents.get()
    assert [key for key in stored if await store.exists(key)] == []
    async with consular.sessions() as session:
        assert (
            await session.execute(select(applicants).where(applicants.c.member_id == member_id))
        ).first() is None
        left = {
            str(r.id): r
            for r in (
                await session.execute(
                    select(applications).where(applications.c.applicant_id == member_id)
                )
            ).all()
        }
        assert set(left) == {decided}  # the draft and the one in progress are gone
        kept = left[decided]
        assert kept.status == "issued"
        assert kept.answers == {}
        assert kept.applicant_subject == "erased"
        assert kept.erased_at is not None
        assert kept.reference  # the decision's reference stays
        history = (
            await session.execute(
                select(application_history.c.actor_role, application_history.c.actor_subject)
                .where(application_history.c.application_id == kept.id)
                .order_by(application_history.c.id)
            )
        ).all()
        assert [r.actor_role for r in history][-3:] == ["embassy_officer"] * 3
        assert all(r.actor_subject == "erased" for r in history if r.actor_role == "applicant")
        credential = (
            await session.execute(
                select(credentials).where(credentials.c.application_id == kept.id)
            )
        ).one()
        assert credential.holder_subject == "erased"
        assert credential.revoked_at is None
        assert (
            await session.execute(
                select(func.count())
                .select_from(appointments)
                .where(appointments.c.applicant_id == member_id)
            )
        ).scalar_one() == 0
        kept_report = (
            await session.execute(select(reports).where(reports.c.id == UUID(report)))
        ).one()
        assert kept_report.reporter_id is None
        assert kept_report.reporter_subject is None
        assert kept_report.description == ""
        assert kept_report.status == "closed"
        assert (kept_report.category, kept_report.country) == ("documents", "FR")
        assert (
            await session.execute(
                select(func.count())
                .select_from(report_messages)
                .where(report_messages.c.report_id == UUID(report))
            )
        ).scalar_one() == 0
        assert (
            await session.execute(
                select(func.count())
                .select_from(inbox)
                .where(inbox.c.event_type == "registry.member.erased")
            )
        ).scalar_one() == 1  # handled once though delivered twice
        assert (
            await session.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.key.in_([draft, in_progress, decided, report]))
            )
        ).scalar_one() == 0
        leaks = await text_columns_holding(
            session,
            [
                "Yawavi",
                "Adjoviqua",
                "yawavi.adjoviqua@example.org",
                "Zorglub",
                ADDRESS,
                person.persona.subject,
            ],
        )
    assert leaks == []
    # The seat of the erased person's appointment came back: the other applicant has it.
    assert await seats_booked(consular, slot) == 0
    ok(await book(other, other_app, slot), 201)


# --- retention -------------------------------------------------------------------------------


async def test_the_retention_job_deletes_kept_records_past_their_period_only(
    consular: Consular,
    http: httpx.AsyncClient,
    identity_provider: LocalIssuer,
) -> None:
    person = await applicant(consular, http, identity_provider)
    member_id = person.persona.member_id
    assert member_id is not None
    staff = Caller(http, identity_provider, officer(PARIS))
    rejected = await submitted(person, "passport_preparation")
    await staff.act(rejected, "start_review")
    await staff.act(rejected, "reject", reason="Pièces manquantes")
    issued = await submitted(person)
    await staff.act(issued, "start_review")
    await pay_fee(http, staff.headers, issued)
    for action in ("approve", "issue"):
        await staff.act(issued, action)
    report = ok(
        await person.post(
            "/reports",
            {"category": "residence", "country": "FR", "description": "Titre de séjour refusé"},
        ),
        201,
    )["id"]
    now = datetime.now(UTC)
    async with consular.sessions() as session, session.begin():
        await erase_member(session, member_id, now)
        # A second run (a redelivery past the inbox) changes nothing more.
        again = await erase_member(session, member_id, now)
    assert (again.deleted_applications, again.kept_applications) == (0, 0)

    settings = consular.settings
    decision_days, report_days = settings.retention_decision_days, settings.retention_report_days

    async def remaining() -> tuple[set[str], int, int]:
        async with consular.sessions() as session:
            apps = {
                str(i)
                for i in (
                    await session.execute(
                        select(applications.c.id).where(applications.c.applicant_id == member_id)
                    )
                ).scalars()
            }
            creds = (
                await session.execute(
                    select(func.count())
                    .select_from(credentials)
                    .where(credentials.c.holder_id == member_id)
                )
            ).scalar_one()
            reps = (
                await session.execute(
                    select(func.count()).select_from(reports).where(reports.c.id == UUID(report))
                )
            ).scalar_one()
        return apps, int(creds), int(reps)

    # Within the period: nothing goes.
    await run_retention_once(consular, now + timedelta(days=min(decision_days, report_days) - 1))
    assert await remaining() == ({rejected, issued}, 1, 1)
    # Past the report's period (shorter): the report goes; decisions stay.
    await run_retention_once(consular, now + timedelta(days=report_days + 1))
    assert await remaining() == ({rejected, issued}, 1, 0)
    # Past the decisions' period: both go, with the (by then expired) credential.
    later = now + timedelta(days=decision_days + 1)
    async with consular.sessions() as session:
        expires = (
            await session.execute(
                select(credentials.c.expires_at).where(credentials.c.holder_id == member_id)
            )
        ).scalar_one()
    assert expires < later
    await run_retention_once(consular, later)
    assert await remaining() == (set(), 0, 0)


async def test_the_worker_runs_the_retention_job(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person = await applicant(consular, http, identity_provider)
    member_id = person.persona.member_id
    assert member_id is not None
    staff = Caller(http, identity_provider, officer(PARIS))
    rejected = await submitted(person, "passport_preparation")
    await staff.act(rejected, "start_review")
    await staff.act(rejected, "reject", reason="Pièces manquantes")
    async with consular.sessions() as session, session.begin():
        await erase_member(session, member_id, datetime.now(UTC))

    async def gone() -> bool:
        async with consular.sessions() as session:
            found = await session.execute(
                select(applications.c.id).where(applications.c.id == UUID(rejected))
            )
            return found.first() is None

    assert not await gone()
    days = consular.settings.retention_decision_days + 1
    async with running_worker(consular, clock=lambda: datetime.now(UTC) + timedelta(days=days)):
        await wait_until(gone, timeout=30, message="the retention job deleted the record")

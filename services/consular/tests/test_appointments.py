"""Appointments end to end on the real PostgreSQL and Kafka: an embassy's template gives its
slots (across a DST change and a closure) with no batch job; book, reschedule, cancel;
50 concurrent bookings for the last seat of a slot give exactly one winner; another
embassy's officer gets 404; the events read back from the topic; the reminder job
publishes once per booking even when run twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
import uvicorn
from consular_testing import (
    answers_for,
    known_applicant,
    new_member_id,
    profile,
    upload_required_documents,
)
from sqlalchemy import func, select, true
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from consular.appointments import service
from consular.appointments.tables import appointments, slot_seats
from consular.bootstrap import periodic_tasks, run_reminders_once
from consular.entrypoints.http import build_app
from consular.resources import Consular
from consular.tables import audit_log, outbox
from diaspora_devstack.testing import free_port, publish_outbox, read_topic, wait_until
from diaspora_events.topics import CONSULAR_APPLICATIONS
from diaspora_identity.testing import LocalIssuer, Persona, admin, citizen, officer

pytestmark = pytest.mark.integration

PARIS = "fr-paris"


def template_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "timezone": "Europe/Paris",
        "slot_minutes": 30,
        "capacity": 2,
        "weekly_hours": {
            "mon": [{"start": "09:00", "end": "12:00"}, {"start": "14:00", "end": "16:00"}],
            "thu": [{"start": "09:00", "end": "10:00"}],
            "fri": [{"start": "09:00", "end": "10:00"}],
            "sun": [{"start": "01:00", "end": "04:00"}],
        },
        "closures": [{"start": "2027-03-25", "label": "Journée de l'ambassade"}],
        "valid_from": "2026-12-01",
        "valid_to": "2027-12-31",
        "horizon_days": 180,
    }
    body.update(overrides)
    return body


def ok(answer: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def publish_template(
    http: httpx.AsyncClient, issuer: LocalIssuer, embassy: str = PARIS, **overrides: Any
) -> dict[str, Any]:
    answer = await http.put(
        f"/embassies/{embassy}/slot-template",
        json=template_body(**overrides),
        headers=issuer.headers(officer(embassy)),
    )
    return ok(answer)


async def submitted_application(
    consular: Consular, http: httpx.AsyncClient, issuer: LocalIssuer
) -> tuple[Persona, str]:
    """A verified member of the Paris jurisdiction with a submitted consular card
    application (its id)."""
    member_id = new_member_id()
    await known_applicant(consular, member_id, profile(verified=True, embassy_id=PARIS))
    person = citizen(member_id=member_id)
    headers = issuer.headers(person)
    draft = ok(
        await http.post(
            "/applications",
            json={"service_type": "consular_card", "answers": answers_for("consular_card")},
            headers=headers,
        ),
        201,
    )
    await upload_required_documents(http, headers, draft["id"], "consular_card")
    ok(
        await http.post(
            f"/applications/{draft['id']}/transitions", json={"action": "submit"}, headers=headers
        )
    )
    return person, str(draft["id"])


async def book(
    http: httpx.AsyncClient, issuer: LocalIssuer, persona: Persona, application: str, start: str
) -> httpx.Response:
    return await http.post(
        "/appointments",
        json={"application_id": application, "slot_start": start},
        headers=issuer.headers(persona),
    )


def next_monday_utc(hour_local: int = 9) -> str:
    """A Monday 3 to 4 weeks ahead at ``hour_local`` Paris time, as UTC ISO 8601 (within
    the template's validity and horizon whenever the suite runs in 2026-2027)."""
    from zoneinfo import ZoneInfo

    day = datetime.now(UTC).date() + timedelta(days=21)
    day += timedelta(days=(7 - day.weekday()) % 7)
    local = datetime(day.year, day.month, day.day, hour_local, tzinfo=ZoneInfo("Europe/Paris"))
    return local.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def events_of(consular: Consular, topic_prefix: str, expect: int) -> list[tuple[str, Any]]:
    await publish_outbox(
        consular.engine,
        outbox,
        kafka_bootstrap=consular.settings.kafka_bootstrap,
        topic_prefix=topic_prefix,
        client_id="consular-test-relay",
    )
    records = await read_topic(
        consular.settings.kafka_bootstrap, topic_prefix + CONSULAR_APPLICATIONS.name, expect=expect
    )
    # In partition order: one application's events are on one partition, in order.
    records.sort(key=lambda r: (r.partition, r.offset))
    return [
        (dict((k, v.decode()) for k, v in r.headers)["ce_type"], json.loads(r.value))
        for r in records
    ]


async def test_a_template_gives_its_slots_across_a_dst_change_and_a_closure(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    assert (await http.get(f"/embassies/{PARIS}/slots")).status_code == 404
    published = await publish_template(http, identity_provider)
    assert published["version"] == 1
    # No token needed to read the template and the slots; no batch job ran.
    template = ok(await http.get(f"/embassies/{PARIS}/slot-template"))
    assert template["timezone"] == "Europe/Paris"
    assert template["created_by"] is None

    answer = ok(await http.get(f"/embassies/{PARIS}/slots?from=2027-03-25&to=2027-03-29"))
    assert answer["timezone"] == "Europe/Paris"
    by_day: dict[str, list[dict[str, Any]]] = {}
    for slot in answer["items"]:
        by_day.setdefault(slot["local_start"][:10], []).append(slot)
    # Thursday 25 March: closed (public holiday of the embassy); Saturday: no hours.
    assert sorted(by_day) == ["2027-03-26", "2027-03-28", "2027-03-29"]
    friday, sunday, monday = by_day["2027-03-26"], by_day["2027-03-28"], by_day["2027-03-29"]
    # 09:00 in Paris is 08:00 UTC before the change, 07:00 UTC after it.
    assert [s["start"] for s in friday] == ["2027-03-26T08:00:00Z", "2027-03-26T08:30:00Z"]
    assert monday[0]["start"] == "2027-03-29T07:00:00Z"
    assert monday[0]["local_start"] == "2027-03-29T09:00:00+02:00"
    assert len(monday) == 10
    # The night of the change: 02:00-03:00 does not exist in Paris.
    assert [s["local_start"][11:] for s in sunday] == [
        "01:00:00+01:00",
        "01:30:00+01:00",
        "03:00:00+02:00",
        "03:30:00+02:00",
    ]
    assert [s["start"][11:16] for s in sunday] == ["00:00", "00:30", "01:00", "01:30"]
    assert all(s["capacity"] == 2 and s["available"] == 2 for s in answer["items"])

    # A new version (audited) changes the slots at once; the first stays on record.
    second = await publish_template(http, identity_provider, capacity=5, closures=[])
    assert second["version"] == 2
    assert second["created_by"] is not None
    answer = ok(await http.get(f"/embassies/{PARIS}/slots?from=2027-03-25&to=2027-03-25"))
    assert len(answer["items"]) == 2
    assert answer["items"][0]["available"] == 5
    async with consular.sessions() as session:
        audited = (
            await session.execute(
                select(func.count())
                .select_from(audit_log)
                .where(audit_log.c.resource == "consular_slot_template")
            )
        ).scalar_one()
    assert audited == 2


async def test_templates_are_checked_and_only_the_embassy_s_officers_publish_them(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    url = f"/embassies/{PARIS}/slot-template"
    for bad in (
        {"timezone": "Europe/Atlantis"},
        {
            "weekly_hours": {
                "mon": [{"start": "09:00", "end": "11:00"}, {"start": "10:30", "end": "12:00"}]
            }
        },
        {"weekly_hours": {"mon": [{"start": "12:00", "end": "09:00"}]}},
        {"valid_to": "2026-01-01"},
        {"capacity": 0},
        {"closures": [{"start": "2027-05-02", "end": "2027-05-01"}]},
    ):
        answer = await http.put(
            url, json=template_body(**bad), headers=identity_provider.headers(officer(PARIS))
        )
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    berlin = await http.put(
        url, json=template_body(), headers=identity_provider.headers(officer("de-berlin"))
    )
    assert berlin.status_code == 403, berlin.text
    mine = await http.put(url, json=template_body(), headers=identity_provider.headers(citizen()))
    assert mine.status_code == 403
    assert (await http.put(url, json=template_body())).status_code == 401
    ok(await http.put(url, json=template_body(), headers=identity_provider.headers(admin())))
    bad_range = await http.get(f"/embassies/{PARIS}/slots?from=2027-03-01&to=2027-06-01")
    assert bad_range.status_code == 422


async def test_book_reschedule_cancel_with_their_events_on_the_topic(
    consular: Consular,
    http: httpx.AsyncClient,
    identity_provider: LocalIssuer,
    topic_prefix: str,
) -> None:
    await publish_template(http, identity_provider, capacity=1)
    person, application = await submitted_application(consular, http, identity_provider)
    first = next_monday_utc(9)

    booked = ok(await book(http, identity_provider, person, application, first), 201)
    assert booked["status"] == "booked"
    assert booked["slot_start"] == first
    assert booked["timezone"] == "Europe/Paris"
    assert booked["local_start"].startswith(first[:10] + "T09:00:00+0")
    appointment = booked["id"]

    # One active appointment per application.
    again = await book(http, identity_provider, person, application, next_monday_utc(10))
    assert again.status_code == 409
    assert again.json()["appointment_id"] == appointment

    # The slot (capacity 1) is full for anyone else: 409 problem details.
    other, other_application = await submitted_application(consular, http, identity_provider)
    full = await book(http, identity_provider, other, other_application, first)
    assert full.status_code == 409, full.text
    assert full.json()["type"].endswith("slot-full")
    seats = ok(await http.get(f"/embassies/{PARIS}/slots?from={first[:10]}&to={first[:10]}"))
    assert first not in [s["start"] for s in seats["items"]]

    # Refused starts: 422 naming why.
    past = (datetime.now(UTC) - timedelta(days=7)).replace(microsecond=0).isoformat()
    for start, code in (
        (past, "in_the_past"),
        ("2027-03-25T08:00:00Z", "closed"),
        (first.replace(":00:00Z", ":10:00Z"), "not_a_slot"),
        ("2027-11-29T08:00:00Z", "beyond_horizon"),
    ):
        refused = await book(http, identity_provider, other, other_application, start)
        assert refused.status_code == 422, (start, refused.text)
        assert refused.json()["errors"][0]["code"] == code
    naive = await book(http, identity_provider, other, other_application, "2027-03-29T09:00:00")
    assert naive.status_code == 422

    # Reschedule: the new seat is taken, the old one given back (the other person books it).
    later = next_monday_utc(14)
    moved = ok(
        await http.put(
            f"/appointments/{appointment}/slot",
            json={"slot_start": later},
            headers=identity_provider.headers(person),
        )
    )
    assert moved["slot_start"] == later
    assert moved["version"] == 2
    ok(await book(http, identity_provider, other, other_application, first), 201)

    # Cancel: the seat is free again; a second cancel is 409.
    cancelled = ok(
        await http.post(
            f"/appointments/{appointment}/cancel",
            json={"reason": "Je serai en voyage"},
            headers=identity_provider.headers(person),
        )
    )
    assert cancelled["status"] == "cancelled"
    twice = await http.post(
        f"/appointments/{appointment}/cancel", json={}, headers=identity_provider.headers(person)
    )
    assert twice.status_code == 409
    async with consular.sessions() as session:
        seats_taken = dict(
            (r.slot_start.isoformat(), r.booked)
            for r in await session.execute(select(slot_seats.c.slot_start, slot_seats.c.booked))
        )
    assert sorted(seats_taken.values()) == [0, 1]
    # The cancelled appointment freed its application: it may book again.
    ok(await book(http, identity_provider, person, application, later), 201)
    mine = ok(
        await http.get(
            "/appointments",
            params={"application_id": application},
            headers=identity_provider.headers(person),
        )
    )
    assert sorted(a["status"] for a in mine) == ["booked", "cancelled"]

    # Two submissions, then booked, rescheduled, booked (the other), cancelled, booked.
    events = await events_of(consular, topic_prefix, expect=2 + 5)
    mine_events = [
        (t, e)
        for t, e in events
        if t.startswith("consular.appointment.") and e["application_id"] == application
    ]
    assert [t for t, _ in mine_events] == [
        "consular.appointment.booked",
        "consular.appointment.rescheduled",
        "consular.appointment.cancelled",
        "consular.appointment.booked",
    ]
    booked_event = mine_events[0][1]
    assert booked_event["appointment_id"] == appointment
    assert booked_event["slot_start"].startswith(first[:19])
    assert booked_event["timezone"] == "Europe/Paris"
    assert booked_event["booked_by_role"] == "applicant"
    rescheduled = mine_events[1][1]
    assert rescheduled["previous_start"].startswith(first[:19])
    assert rescheduled["slot_start"].startswith(later[:19])
    cancelled_event = mine_events[2][1]
    assert cancelled_event["appointment_id"] == appointment
    assert cancelled_event["reason"] == "Je serai en voyage"
    theirs = [t for t, e in events if e.get("application_id") == other_application]
    assert theirs == ["consular.application.submitted", "consular.appointment.booked"]


@contextlib.asynccontextmanager
async def serve_keeping_connections(app: Any) -> AsyncIterator[str]:
    """The API on its own uvicorn whose idle connections stay open for a minute (the
    default 5 s can close a warmed connection under a client about to reuse it, on a
    busy machine: a ReadError that says nothing about bookings)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_keep_alive=60)
    )
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started, timeout=20, message="uvicorn to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_fifty_concurrent_bookings_for_the_last_seat_give_exactly_one_winner(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    await publish_template(http, identity_provider, capacity=3)
    start = next_monday_utc(10)
    people = [await submitted_application(consular, http, identity_provider) for _ in range(52)]
    for persona, application in people[:2]:
        ok(await book(http, identity_provider, persona, application, start), 201)

    limits = httpx.Limits(max_connections=60, max_keepalive_connections=60)
    async with (
        serve_keeping_connections(build_app(consular)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as fresh,
    ):
        # Open the 50 connections first, so that the bookings arrive together.
        await asyncio.gather(
            *(fresh.get(f"/embassies/{PARIS}/slot-template") for _ in range(len(people)))
        )
        answers = await asyncio.gather(
            *(book(fresh, identity_provider, p, a, start) for p, a in people[2:])
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == 49, statuses
    assert all(a.json()["type"].endswith("slot-full") for a in answers if a.status_code == 409)

    when = datetime.fromisoformat(start.replace("Z", "+00:00"))
    async with consular.sessions() as session:
        rows = (
            await session.execute(
                select(func.count())
                .select_from(appointments)
                .where(appointments.c.slot_start == when, appointments.c.status == "booked")
            )
        ).scalar_one()
        booked = (
            await session.execute(
                select(slot_seats.c.booked).where(slot_seats.c.slot_start == when)
            )
        ).scalar_one()
    assert rows == 3
    assert booked == 3


async def test_fifty_transactions_racing_for_the_last_seat_at_the_same_instant(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    """The same through the use case, each of 50 transactions held at a barrier until all
    are open, so that they ask for the seat together (the HTTP test cannot line them up)."""
    await publish_template(http, identity_provider, capacity=1)
    start = datetime.fromisoformat(next_monday_utc(14).replace("Z", "+00:00"))
    people = [await submitted_application(consular, http, identity_provider) for _ in range(50)]
    engine = create_async_engine(consular.settings.async_database_url, poolclass=NullPool)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    barrier = asyncio.Barrier(len(people))

    async def attempt(application: str) -> str:
        try:
            async with sessions() as session, session.begin():
                row = await service.load_application(session, UUID(application), true())
                assert row is not None
                await barrier.wait()
                await service.book(
                    session,
                    consular.outbox,
                    row,
                    start=start,
                    actor="test",
                    actor_role="applicant",
                    now=datetime.now(UTC),
                )
            return "booked"
        except service.SlotFull:
            return "full"

    try:
        outcomes = await asyncio.gather(*(attempt(a) for _, a in people))
    finally:
        await engine.dispose()
    assert sorted(outcomes).count("booked") == 1, outcomes
    assert outcomes.count("full") == 49
    async with consular.sessions() as session:
        rows = (
            await session.execute(
                select(func.count())
                .select_from(appointments)
                .where(appointments.c.slot_start == start)
            )
        ).scalar_one()
    assert rows == 1


async def test_an_officer_books_for_their_embassy_and_another_embassy_s_gets_404(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    await publish_template(http, identity_provider)
    person, application = await submitted_application(consular, http, identity_provider)
    berlin = officer("de-berlin")
    start = next_monday_utc(11)
    refused = await book(http, identity_provider, berlin, application, start)
    assert refused.status_code == 404, refused.text

    paris = officer(PARIS)
    booked = ok(await book(http, identity_provider, paris, application, start), 201)
    for path in (f"/appointments/{booked['id']}",):
        assert (await http.get(path, headers=identity_provider.headers(berlin))).status_code == 404
    moved = await http.put(
        f"/appointments/{booked['id']}/slot",
        json={"slot_start": next_monday_utc(9)},
        headers=identity_provider.headers(berlin),
    )
    assert moved.status_code == 404
    cancelled = await http.post(
        f"/appointments/{booked['id']}/cancel", json={}, headers=identity_provider.headers(berlin)
    )
    assert cancelled.status_code == 404
    assert ok(await http.get("/appointments", headers=identity_provider.headers(berlin))) == []
    # Someone else's citizen token does not reach it either.
    stranger = citizen(member_id=new_member_id())
    assert (
        await http.get(f"/appointments/{booked['id']}", headers=identity_provider.headers(stranger))
    ).status_code == 404
    # The applicant sees the booking the officer made for them; the officer's is audited.
    seen = ok(
        await http.get(f"/appointments/{booked['id']}", headers=identity_provider.headers(person))
    )
    assert seen["application_id"] == application
    async with consular.sessions() as session:
        actions = (
            (
                await session.execute(
                    select(audit_log.c.action).where(audit_log.c.resource == "consular_appointment")
                )
            )
            .scalars()
            .all()
        )
    assert list(actions) == ["book"]
    # A draft (or closed) application takes no appointment.
    member_id = new_member_id()
    await known_applicant(consular, member_id, profile(verified=True, embassy_id=PARIS))
    drafter = citizen(member_id=member_id)
    draft = ok(
        await http.post(
            "/applications",
            json={"service_type": "consular_card", "answers": {}},
            headers=identity_provider.headers(drafter),
        ),
        201,
    )
    not_yet = await book(http, identity_provider, drafter, draft["id"], start)
    assert not_yet.status_code == 409
    assert not_yet.json()["status_now"] == "draft"


async def test_the_reminder_job_publishes_once_per_booking_even_when_run_twice(
    consular: Consular,
    http: httpx.AsyncClient,
    identity_provider: LocalIssuer,
    topic_prefix: str,
) -> None:
    await publish_template(http, identity_provider)
    person, application = await submitted_application(consular, http, identity_provider)
    other, other_application = await submitted_application(consular, http, identity_provider)
    soon = ok(await book(http, identity_provider, person, application, next_monday_utc(9)), 201)
    # The other one is the same afternoon: not due yet when the morning's is.
    ok(await book(http, identity_provider, other, other_application, next_monday_utc(15)), 201)
    at = datetime.fromisoformat(soon["slot_start"].replace("Z", "+00:00")) - timedelta(hours=23)

    assert await run_reminders_once(consular, at) == [UUID(soon["id"])]
    assert await run_reminders_once(consular, at) == []
    assert await run_reminders_once(consular, at + timedelta(minutes=30)) == []

    async with consular.sessions() as session:
        staged = (
            await session.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.event_type == "consular.appointment.reminder-due")
            )
        ).scalar_one()
    assert staged == 1
    events = await events_of(consular, topic_prefix, expect=2 + 2 + 1)
    reminders = [e for t, e in events if t == "consular.appointment.reminder-due"]
    assert len(reminders) == 1
    assert reminders[0]["appointment_id"] == soon["id"]
    assert reminders[0]["local_start"] == soon["local_start"]
    assert reminders[0]["timezone"] == "Europe/Paris"

    # A reschedule gives the new slot its own reminder, once.
    later = next_monday_utc(11)
    ok(
        await http.put(
            f"/appointments/{soon['id']}/slot",
            json={"slot_start": later},
            headers=identity_provider.headers(person),
        )
    )
    at = datetime.fromisoformat(later.replace("Z", "+00:00")) - timedelta(hours=23)
    assert await run_reminders_once(consular, at) == [UUID(soon["id"])]
    assert await run_reminders_once(consular, at) == []


def test_date_helper_is_a_monday() -> None:
    start = datetime.fromisoformat(next_monday_utc(9).replace("Z", "+00:00"))
    assert start.astimezone(UTC).date() >= date.today()
    from zoneinfo import ZoneInfo

    assert start.astimezone(ZoneInfo("Europe/Paris")).weekday() == 0


async def test_the_worker_s_jobs_include_the_reminder_job(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    """The jobs the worker runs (bootstrap.periodic_tasks) send the reminder on their own."""
    await publish_template(http, identity_provider)
    person, application = await submitted_application(consular, http, identity_provider)
    booked = ok(await book(http, identity_provider, person, application, next_monday_utc(9)), 201)
    due = datetime.fromisoformat(booked["slot_start"].replace("Z", "+00:00")) - timedelta(hours=2)

    async def reminded() -> bool:
        async with consular.sessions() as session:
            sent = (
                await session.execute(
                    select(appointments.c.reminder_sent_at).where(
                        appointments.c.id == UUID(booked["id"])
                    )
                )
            ).scalar_one()
        return sent is not None

    stop = asyncio.Event()
    jobs = [asyncio.create_task(job(stop)) for job in periodic_tasks(consular, lambda: due)]
    try:
        await wait_until(reminded, timeout=30, message="the reminder job ran")
    finally:
        stop.set()
        await asyncio.gather(*jobs)
    async with consular.sessions() as session:
        staged = (
            await session.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.event_type == "consular.appointment.reminder-due")
            )
        ).scalar_one()
    assert staged == 1

"""Use cases of appointments: one transaction each, SQL and outbox writes.

Capacity lives in the database: a seat is taken by ``UPDATE slot_seats SET booked =
booked + 1 WHERE ... AND booked < capacity``. Concurrent bookers of one slot queue on its
row lock, and PostgreSQL re-checks the condition on the row as the previous holder
committed it, so the last seat goes to exactly one of them (no read-then-write race); the
CHECK ``booked <= capacity`` backs it. An application holds one active appointment: its
row is locked while booking, and a partial unique index backs that too.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from consular.applications.tables import applications
from consular.appointments import domain
from consular.appointments.tables import appointments, slot_seats, slot_templates
from diaspora_events.contracts.consular import (
    AppointmentBookedV1,
    AppointmentCancelledV1,
    AppointmentReminderDueV1,
    AppointmentRescheduledV1,
)
from diaspora_events.outbox import OutboxWriter

# The columns the policy's scopes compare (policy.yaml, consular_appointment); the
# application's, when booking for it.
SCOPE_COLUMNS: dict[str, Any] = {
    "applicant_id": appointments.c.applicant_id,
    "applicant_subject": appointments.c.applicant_subject,
    "embassy_id": appointments.c.embassy_id,
}
APPLICATION_SCOPE_COLUMNS: dict[str, Any] = {
    "applicant_id": applications.c.applicant_id,
    "applicant_subject": applications.c.applicant_subject,
    "embassy_id": applications.c.embassy_id,
}


class NoTemplate(Exception):
    """The embassy has published no slot template (nothing can be booked there)."""


class SlotFull(Exception):
    """Every seat of the slot is taken."""


class NotBookable(Exception):
    """The application's status admits no appointment."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class AlreadyBooked(Exception):
    """The application already holds an active appointment."""

    def __init__(self, appointment_id: UUID) -> None:
        super().__init__(str(appointment_id))
        self.appointment_id = appointment_id


class NotActive(Exception):
    """The appointment was cancelled."""


# --- templates ---------------------------------------------------------------------------


def template_of(row: dict[str, Any]) -> domain.Template:
    return domain.Template(
        embassy_id=row["embassy_id"],
        timezone=row["timezone"],
        slot_minutes=row["slot_minutes"],
        capacity=row["capacity"],
        weekly_hours={
            day: tuple(
                domain.Opening(time.fromisoformat(h["start"]), time.fromisoformat(h["end"]))
                for h in hours
            )
            for day, hours in row["weekly_hours"].items()
        },
        closures=tuple(
            domain.Closure(
                date.fromisoformat(c["start"]),
                date.fromisoformat(c.get("end") or c["start"]),
                c.get("label") or "",
            )
            for c in row["closures"]
        ),
        valid_from=row["valid_from"],
        valid_to=row["valid_to"],
        horizon_days=row["horizon_days"],
    )


async def current_template(session: AsyncSession, embassy_id: str) -> dict[str, Any] | None:
    row = (
        (
            await session.execute(
                select(slot_templates)
                .where(slot_templates.c.embassy_id == embassy_id)
                .order_by(slot_templates.c.version.desc())
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def publish_template(
    session: AsyncSession, embassy_id: str, definition: dict[str, Any], *, actor: str
) -> dict[str, Any]:
    """A new version of the embassy's template (earlier versions are kept)."""
    # One publisher per embassy at a time: versions are numbered without gaps or races.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('consular.slot_template'), hashtext(:e))"),
        {"e": embassy_id},
    )
    latest = (
        await session.execute(
            select(func.max(slot_templates.c.version)).where(
                slot_templates.c.embassy_id == embassy_id
            )
        )
    ).scalar_one()
    values = {
        "id": uuid.uuid4(),
        "embassy_id": embassy_id,
        "version": (latest or 0) + 1,
        "created_by": actor,
        **definition,
    }
    row = (
        (await session.execute(slot_templates.insert().values(**values).returning(slot_templates)))
        .mappings()
        .one()
    )
    return dict(row)


@dataclass(frozen=True)
class Available:
    slot: domain.Slot
    capacity: int
    available: int


async def available_slots(
    session: AsyncSession,
    template: domain.Template,
    first: date,
    last: date,
    *,
    now: datetime,
    include_full: bool = False,
) -> list[Available]:
    """The slots from ``first`` to ``last`` (local dates) that can be booked now, with
    the seats left (full ones left out unless ``include_full``)."""
    last = min(last, domain.horizon_end(template, now))
    slots = [s for s in domain.slots_between(template, first, last) if s.start > now]
    if not slots:
        return []
    taken = {
        r.slot_start: r.booked
        for r in await session.execute(
            select(slot_seats.c.slot_start, slot_seats.c.booked).where(
                slot_seats.c.embassy_id == template.embassy_id,
                slot_seats.c.slot_start >= slots[0].start,
                slot_seats.c.slot_start <= slots[-1].start,
            )
        )
    }
    result = []
    for slot in slots:
        left = max(template.capacity - taken.get(slot.start, 0), 0)
        if left or include_full:
            result.append(Available(slot, template.capacity, left))
    return result


# --- seats -----------------------------------------------------------------------------


async def _ensure_seat_row(
    session: AsyncSession, embassy_id: str, start: datetime, capacity: int
) -> None:
    await session.execute(
        insert(slot_seats)
        .values(embassy_id=embassy_id, slot_start=start, capacity=capacity, booked=0)
        .on_conflict_do_nothing(index_elements=["embassy_id", "slot_start"])
    )


async def take_seat(session: AsyncSession, embassy_id: str, start: datetime, capacity: int) -> bool:
    """Take one seat of the slot if one is left (the template's capacity now in force)."""
    await _ensure_seat_row(session, embassy_id, start, capacity)
    taken = (
        await session.execute(
            update(slot_seats)
            .where(
                slot_seats.c.embassy_id == embassy_id,
                slot_seats.c.slot_start == start,
                slot_seats.c.booked < capacity,
            )
            .values(booked=slot_seats.c.booked + 1, capacity=capacity)
            .returning(slot_seats.c.booked)
        )
    ).first()
    return taken is not None


async def release_seat(session: AsyncSession, embassy_id: str, start: datetime) -> None:
    await session.execute(
        update(slot_seats)
        .where(
            slot_seats.c.embassy_id == embassy_id,
            slot_seats.c.slot_start == start,
            slot_seats.c.booked > 0,
        )
        .values(booked=slot_seats.c.booked - 1)
    )


# --- appointments ------------------------------------------------------------------------


def subject_of(row: dict[str, Any]) -> UUID:
    subject: UUID = row["applicant_id"] or row["application_id"]
    return subject


async def load_application(
    session: AsyncSession, application_id: UUID, where: ColumnElement[bool]
) -> dict[str, Any] | None:
    """The application (locked: one booking at a time per application), if in scope."""
    row = (
        (
            await session.execute(
                select(applications)
                .where(applications.c.id == application_id, where)
                .with_for_update()
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def load(
    session: AsyncSession, appointment_id: UUID, where: ColumnElement[bool], *, lock: bool = False
) -> dict[str, Any] | None:
    statement = select(appointments).where(appointments.c.id == appointment_id, where)
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def search(
    session: AsyncSession, where: ColumnElement[bool], *, application_id: UUID | None
) -> list[dict[str, Any]]:
    condition = where
    if application_id is not None:
        condition = and_(condition, appointments.c.application_id == application_id)
    rows = await session.execute(
        select(appointments).where(condition).order_by(appointments.c.slot_start).limit(200)
    )
    return [dict(r) for r in rows.mappings()]


async def _bookable(
    session: AsyncSession, embassy_id: str, start: datetime, now: datetime
) -> tuple[domain.Template, domain.Slot]:
    row = await current_template(session, embassy_id)
    if row is None:
        raise NoTemplate(embassy_id)
    template = template_of(row)
    return template, domain.bookable_slot(template, start, now)


async def book(
    session: AsyncSession,
    outbox: OutboxWriter,
    application: dict[str, Any],
    *,
    start: datetime,
    actor: str,
    actor_role: str,
    now: datetime,
) -> dict[str, Any]:
    """Book the slot beginning at ``start`` for the (locked) application."""
    if application["status"] not in domain.BOOKABLE_STATUSES or not application["embassy_id"]:
        raise NotBookable(application["status"])
    active = (
        await session.execute(
            select(appointments.c.id).where(
                appointments.c.application_id == application["id"],
                appointments.c.status == "booked",
            )
        )
    ).scalar_one_or_none()
    if active is not None:
        raise AlreadyBooked(active)
    embassy_id: str = application["embassy_id"]
    template, slot = await _bookable(session, embassy_id, start, now)
    if not await take_seat(session, embassy_id, slot.start, template.capacity):
        raise SlotFull()
    values = {
        "id": uuid.uuid4(),
        "application_id": application["id"],
        "applicant_id": application["applicant_id"],
        "applicant_subject": application["applicant_subject"],
        "embassy_id": embassy_id,
        "slot_start": slot.start,
        "slot_end": slot.end,
        "timezone": template.timezone,
        "status": "booked",
        "booked_by": actor,
        "created_at": now,
        "updated_at": now,
    }
    row = dict(
        (await session.execute(appointments.insert().values(**values).returning(appointments)))
        .mappings()
        .one()
    )
    await outbox.add(
        session,
        AppointmentBookedV1(
            appointment_id=row["id"],
            application_id=row["application_id"],
            applicant_id=row["applicant_id"],
            subject_id=subject_of(row),
            embassy_id=embassy_id,
            slot_start=slot.start,
            slot_end=slot.end,
            timezone=template.timezone,
            booked_by_role=actor_role,
            booked_at=now,
        ),
    )
    return row


async def reschedule(
    session: AsyncSession,
    outbox: OutboxWriter,
    appointment: dict[str, Any],
    *,
    start: datetime,
    actor_role: str,
    now: datetime,
) -> dict[str, Any]:
    """Move the (locked) appointment to another slot of its embassy: the new seat is
    taken before the old one is given back, in one transaction."""
    if appointment["status"] != "booked":
        raise NotActive()
    embassy_id: str = appointment["embassy_id"]
    template, slot = await _bookable(session, embassy_id, start, now)
    previous: datetime = appointment["slot_start"]
    if slot.start == previous:
        return appointment
    # Both seat rows locked in one order, so two people swapping slots cannot deadlock.
    await _ensure_seat_row(session, embassy_id, slot.start, template.capacity)
    await session.execute(
        select(slot_seats.c.slot_start)
        .where(
            slot_seats.c.embassy_id == embassy_id,
            slot_seats.c.slot_start.in_([previous, slot.start]),
        )
        .order_by(slot_seats.c.slot_start)
        .with_for_update()
    )
    if not await take_seat(session, embassy_id, slot.start, template.capacity):
        raise SlotFull()
    await release_seat(session, embassy_id, previous)
    values = {
        "slot_start": slot.start,
        "slot_end": slot.end,
        "timezone": template.timezone,
        "reminder_sent_at": None,
        "version": appointment["version"] + 1,
        "updated_at": now,
    }
    await session.execute(
        update(appointments).where(appointments.c.id == appointment["id"]).values(**values)
    )
    changed = {**appointment, **values}
    await outbox.add(
        session,
        AppointmentRescheduledV1(
            appointment_id=changed["id"],
            application_id=changed["application_id"],
            applicant_id=changed["applicant_id"],
            subject_id=subject_of(changed),
            embassy_id=embassy_id,
            previous_start=previous,
            slot_start=slot.start,
            slot_end=slot.end,
            timezone=template.timezone,
            actor_role=actor_role,
            rescheduled_at=now,
        ),
    )
    return changed


async def cancel(
    session: AsyncSession,
    outbox: OutboxWriter,
    appointment: dict[str, Any],
    *,
    reason: str | None,
    actor_role: str,
    now: datetime,
) -> dict[str, Any]:
    """Cancel the (locked) appointment and give its seat back."""
    if appointment["status"] != "booked":
        raise NotActive()
    await release_seat(session, appointment["embassy_id"], appointment["slot_start"])
    values = {
        "status": "cancelled",
        "cancelled_at": now,
        "cancel_reason": reason,
        "version": appointment["version"] + 1,
        "updated_at": now,
    }
    await session.execute(
        update(appointments).where(appointments.c.id == appointment["id"]).values(**values)
    )
    changed = {**appointment, **values}
    await outbox.add(
        session,
        AppointmentCancelledV1(
            appointment_id=changed["id"],
            application_id=changed["application_id"],
            applicant_id=changed["applicant_id"],
            subject_id=subject_of(changed),
            embassy_id=changed["embassy_id"],
            slot_start=changed["slot_start"],
            timezone=changed["timezone"],
            actor_role=actor_role,
            cancelled_at=now,
            reason=reason,
        ),
    )
    return changed


# --- seats given back when the application closes or its applicant is erased -------------


async def release_for_application(
    session: AsyncSession,
    outbox: OutboxWriter,
    application_id: UUID,
    *,
    reason: str,
    now: datetime,
) -> list[UUID]:
    """Cancel the application's active appointment (if any) and give its seat back: the
    application was withdrawn or expired (called in that transition's transaction).
    Published as ``consular.appointment.cancelled`` by ``system``."""
    rows = (
        (
            await session.execute(
                select(appointments)
                .where(
                    appointments.c.application_id == application_id,
                    appointments.c.status == "booked",
                )
                .with_for_update()
            )
        )
        .mappings()
        .all()
    )
    for row in rows:
        await cancel(session, outbox, dict(row), reason=reason, actor_role="system", now=now)
    return [r["id"] for r in rows]


async def forget_applicant(session: AsyncSession, member_id: UUID) -> int:
    """Erasure step: every appointment of the erased member goes, and each one still
    booked gives its seat back first. No event: the person's data key is destroyed and
    the appointment is no legal record (docs/consular.md, "Erasure and retention")."""
    rows = (
        (
            await session.execute(
                select(appointments.c.id, appointments.c.embassy_id, appointments.c.slot_start)
                .where(appointments.c.applicant_id == member_id, appointments.c.status == "booked")
                .order_by(appointments.c.embassy_id, appointments.c.slot_start)
                .with_for_update()
            )
        )
        .mappings()
        .all()
    )
    for row in rows:
        await release_seat(session, row["embassy_id"], row["slot_start"])
    deleted = await session.execute(
        delete(appointments).where(appointments.c.applicant_id == member_id)
    )
    return int(getattr(deleted, "rowcount", 0) or 0)


async def send_reminders(
    session: AsyncSession,
    outbox: OutboxWriter,
    *,
    now: datetime,
    lead: timedelta = domain.REMINDER_LEAD,
    batch: int = 500,
) -> list[UUID]:
    """``consular.appointment.reminder-due`` for every booked appointment starting within
    ``lead`` that has not had one: marked in the same transaction, so a second pass (or
    a second worker: rows locked, SKIP LOCKED) publishes nothing again."""
    rows = (
        (
            await session.execute(
                select(appointments)
                .where(
                    appointments.c.status == "booked",
                    appointments.c.reminder_sent_at.is_(None),
                    appointments.c.slot_start > now,
                    appointments.c.slot_start <= now + lead,
                )
                .order_by(appointments.c.slot_start)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        )
        .mappings()
        .all()
    )
    ids: Sequence[UUID] = [r["id"] for r in rows]
    if not ids:
        return []
    await session.execute(
        update(appointments).where(appointments.c.id.in_(ids)).values(reminder_sent_at=now)
    )
    for row in rows:
        await outbox.add(
            session,
            AppointmentReminderDueV1(
                appointment_id=row["id"],
                application_id=row["application_id"],
                applicant_id=row["applicant_id"],
                subject_id=subject_of(dict(row)),
                embassy_id=row["embassy_id"],
                slot_start=row["slot_start"],
                slot_end=row["slot_end"],
                timezone=row["timezone"],
                local_start=local(row["slot_start"], row["timezone"]).isoformat(),
            ),
        )
    return list(ids)


def local(instant: datetime, zone: str) -> datetime:
    """The instant in the embassy's zone."""
    return instant.astimezone(UTC).astimezone(ZoneInfo(zone))

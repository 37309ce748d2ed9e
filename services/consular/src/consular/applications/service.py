"""Use cases of applications: one transaction each, SQL and outbox writes.

The caller (``http.py``, the SLA job) has already decided who may act: these functions
check the state machine, the form, eligibility and the SLA, and write the change, its
history row and its event together.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, func, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from consular.applications import domain
from consular.applications.tables import application_history, applications, officers
from consular.catalogue import service as catalogue
from consular.catalogue.domain import (
    ApplicantFacts,
    FieldError,
    Refusal,
    eligibility_refusal,
    processing_embassy,
    validate_answers,
)
from consular.documents import service as documents
from consular.members import service as members
from consular.members.tables import applicants
from consular.resources import ClosedHook, IssuedHook, TransitionHook
from consular.sla import flag_overdue
from diaspora_events.contracts import (
    ApplicationEscalatedV1,
    ApplicationStatusChangedV1,
    ApplicationSubmittedV1,
    LaissezPasserIssuedV1,
)
from diaspora_events.outbox import OutboxWriter

# The columns the policy's scopes compare (diaspora_identity policy.yaml,
# resource consular_application).
SCOPE_COLUMNS: dict[str, Any] = {
    "applicant_id": applications.c.applicant_id,
    "applicant_subject": applications.c.applicant_subject,
    "embassy_id": applications.c.embassy_id,
}


@dataclass(frozen=True)
class Actor:
    subject: str
    side: domain.Actor


SYSTEM = Actor(subject="system:consular-sla", side="system")


class UnknownServiceType(Exception):
    pass


class InvalidAnswers(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


NOT_REGISTERED = Refusal(
    "not_registered",
    "This service is for members of the diaspora registry: register first, then sign in "
    "again so that your token names your registry record.",
)


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before by this account for a different request."""


class DocumentsMissing(Exception):
    """Submit or resubmit without a document of each kind the catalogue requires."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__("missing documents: " + ", ".join(missing))
        self.missing = missing


class NotEligible(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def visible(
    where: ColumnElement[bool], member_id: UUID | None, subject: str
) -> ColumnElement[bool]:
    """The rows a decision reaches, less other people's drafts (a draft is its author's)."""
    own = applications.c.applicant_subject == subject
    if member_id is not None:
        own = or_(own, applications.c.applicant_id == member_id)
    return and_(where, or_(own, applications.c.status != "draft"))


def subject_of(row: dict[str, Any]) -> UUID:
    """Whose data key seals the application's events: the applicant (member id), or the
    application itself for a visitor without a registry record."""
    subject: UUID = row["applicant_id"] or row["id"]
    return subject


async def create_draft(
    session: AsyncSession,
    *,
    applicant_id: UUID | None,
    subject: str,
    service_type: str,
    answers: dict[str, Any],
    now: datetime,
    idempotency_key: str | None = None,
    contact: VisitorContact | None = None,
) -> tuple[dict[str, Any], bool]:
    """A new draft (and True), or with an Idempotency-Key already used by this account for
    the same request, the first one (and False). ``contact``: a visitor's (kept only for
    an applicant without a registry record)."""
    digest = hashlib.sha256(
        json.dumps({"service_type": service_type, "answers": answers}, sort_keys=True).encode()
    ).hexdigest()
    if idempotency_key is not None:
        existing = (
            (
                await session.execute(
                    select(applications).where(
                        applications.c.applicant_subject == subject,
                        applications.c.idempotency_key == idempotency_key,
                    )
                )
            )
            .mappings()
            .first()
        )
        if existing is not None:
            if existing["request_digest"] != digest:
                raise IdempotencyConflict(idempotency_key)
            return dict(existing), False
    found = await catalogue.get(session, service_type)
    if found is None:
        raise UnknownServiceType(service_type)
    if applicant_id is None and found.definition.eligibility != "none":
        raise NotEligible(NOT_REGISTERED)
    errors = validate_answers(found.definition.form_fields, answers, complete=False)
    if errors:
        raise InvalidAnswers(errors)
    applicant = await members.applicant(session, applicant_id) if applicant_id else None
    embassy = processing_embassy(
        found.definition.processing, applicant.embassy_id if applicant else None
    )
    application_id = uuid.uuid4()
    inserted = await session.execute(
        insert(applications)
        .values(
            id=application_id,
            applicant_id=applicant_id,
            applicant_subject=subject,
            service_type=service_type,
            service_version_id=found.id,
            catalogue_version=found.version,
            embassy_id=embassy,
            status="draft",
            answers=answers,
            created_at=now,
            updated_at=now,
            idempotency_key=idempotency_key,
            request_digest=digest,
            contact_email=contact.email if contact and applicant_id is None else None,
            contact_language=contact.language if contact and applicant_id is None else None,
        )
        .on_conflict_do_nothing(constraint="applications_idempotency_key")
        .returning(applications.c.id)
    )
    if inserted.first() is None:
        # The same key raced with this request and won.
        raise IdempotencyConflict(idempotency_key or "")
    await _history(
        session, application_id, "create", None, "draft", None, subject, "applicant", now
    )
    row = await load(session, application_id, true())
    assert row is not None
    return row, True


@dataclass(frozen=True)
class VisitorContact:
    """Where a foreign visitor is told where their application stands."""

    email: str | None
    language: str


def visitor_contact(claims: Mapping[str, Any]) -> VisitorContact:
    """A visitor's contact from their token: the email only if the identity provider
    verified it (nothing is ever sent to an unproven address), the language from the
    OIDC ``locale`` (French unless it says English)."""
    email = claims.get("email")
    verified = claims.get("email_verified") is True
    locale = str(claims.get("locale") or "fr").lower()
    return VisitorContact(
        email=email if isinstance(email, str) and email and verified else None,
        language="en" if locale.startswith("en") else "fr",
    )


def visitor_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The visitor's contact for a status event (none for a registry member)."""
    if row["applicant_id"] is not None or not row.get("contact_email"):
        return {}
    answers: dict[str, Any] = row["answers"] or {}
    name = " ".join(
        str(answers[f]) for f in ("given_name", "family_name") if isinstance(answers.get(f), str)
    )
    return {
        "visitor_email": row["contact_email"],
        "visitor_name": name or None,
        "visitor_language": row.get("contact_language") or "fr",
    }


async def load(
    session: AsyncSession, application_id: UUID, where: ColumnElement[bool], *, lock: bool = False
) -> dict[str, Any] | None:
    statement = select(applications).where(applications.c.id == application_id, where)
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def history(session: AsyncSession, application_id: UUID) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(application_history)
        .where(application_history.c.application_id == application_id)
        .order_by(application_history.c.id)
    )
    return [dict(r) for r in rows.mappings()]


async def applicant_views(
    session: AsyncSession, applicant_ids: Sequence[UUID | None]
) -> dict[UUID, dict[str, Any]]:
    """The read model's applicants (for the officers' view), by member id, in one query."""
    wanted = sorted({a for a in applicant_ids if a is not None})
    if not wanted:
        return {}
    rows = await session.execute(
        select(
            applicants.c.member_id,
            applicants.c.given_name,
            applicants.c.family_name,
            applicants.c.email,
            applicants.c.preferred_language,
            applicants.c.identity_level,
        ).where(applicants.c.member_id.in_(wanted))
    )
    return {r["member_id"]: dict(r) for r in rows.mappings()}


async def _history(
    session: AsyncSession,
    application_id: UUID,
    action: str,
    from_status: str | None,
    to_status: str,
    reason: str | None,
    actor_subject: str,
    actor_role: str,
    at: datetime,
) -> None:
    await session.execute(
        application_history.insert().values(
            application_id=application_id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            actor_subject=actor_subject,
            actor_role=actor_role,
            at=at,
        )
    )


async def apply_transition(
    session: AsyncSession,
    outbox: OutboxWriter,
    row: dict[str, Any],
    *,
    action: str,
    actor: Actor,
    reason: str | None,
    answers: dict[str, Any] | None,
    now: datetime,
    on_issued: IssuedHook | None = None,
    on_closed: ClosedHook | None = None,
    on_transition: TransitionHook | None = None,
) -> dict[str, Any]:
    """Move a (locked) application along the state machine, with its history and event
    (and, when it is issued, whatever ``on_issued`` does: the signed credential; after
    every transition, ``on_transition``: payments' guard, the hand-over package)."""
    status: domain.Status = row["status"]
    step = domain.transition(status, action, actor.side, reason)
    values: dict[str, Any] = {
        "status": step.target,
        "version": row["version"] + 1,
        "updated_at": now,
    }
    if step.action in ("submit", "resubmit"):
        version = await catalogue.by_id(session, row["service_version_id"])
        definition = version.definition
        new_answers = answers if answers is not None else row["answers"]
        errors = validate_answers(definition.form_fields, new_answers, complete=True)
        if errors:
            raise InvalidAnswers(errors)
        values["answers"] = new_answers
        if step.action == "submit":
            member_id = row["applicant_id"]
            applicant = await members.applicant(session, member_id) if member_id else None
            facts = ApplicantFacts(
                registered=applicant is not None,
                identity_verified=applicant is not None and applicant.identity_verified,
                embassy_id=applicant.embassy_id if applicant else None,
                identity_expired=applicant is not None
                and applicant.identity_expired(now.astimezone(UTC).date()),
            )
            embassy = processing_embassy(definition.processing, facts.embassy_id)
            refusal = eligibility_refusal(definition.eligibility, facts, embassy)
            if refusal is not None:
                raise NotEligible(refusal)
            if embassy is None:
                raise NotEligible(
                    Refusal("no_embassy", "No embassy processes this application for you.")
                )
            values.update(
                embassy_id=embassy,
                submitted_at=now,
                due_at=domain.due_at(now, definition.target_processing_days),
            )
        required = [d.code for d in definition.required_documents if d.required]
        missing = await documents.missing_kinds(session, row["id"], required)
        if missing:
            raise DocumentsMissing(missing)
    elif answers is not None:
        raise InvalidAnswers(
            [FieldError("answers", "answers are given only to submit or resubmit", "invalid")]
        )
    if step.target in ("approved", "rejected"):
        values["decided_at"] = now
    if step.target == "approved":
        values["reference"] = domain.decision_reference(row["service_type"], row["id"], now)
    await session.execute(
        update(applications).where(applications.c.id == row["id"]).values(**values)
    )
    await _history(
        session, row["id"], step.action, status, step.target, reason, actor.subject, actor.side, now
    )
    changed = {**row, **values}
    if step.action == "submit":
        version = await catalogue.by_id(session, row["service_version_id"])
        await outbox.add(
            session,
            ApplicationSubmittedV1(
                application_id=row["id"],
                applicant_id=row["applicant_id"],
                subject_id=subject_of(row),
                service_type=row["service_type"],
                catalogue_version=row["catalogue_version"],
                embassy_id=changed["embassy_id"],
                submitted_at=now,
                due_at=changed["due_at"],
                fee_amount=str(version.definition.fee.amount),
                fee_currency=version.definition.fee.currency,
                answers=changed["answers"],
                **visitor_fields(changed),
            ),
        )
    else:
        await outbox.add(
            session,
            ApplicationStatusChangedV1(
                application_id=row["id"],
                applicant_id=row["applicant_id"],
                subject_id=subject_of(row),
                service_type=row["service_type"],
                embassy_id=changed["embassy_id"] or "",
                action=step.action,
                from_status=status,
                to_status=step.target,
                actor_role=actor.side,
                changed_at=now,
                reason=reason,
                reference=changed.get("reference"),
                **visitor_fields(changed),
            ),
        )
        if step.target == "issued" and row["service_type"] == LAISSEZ_PASSER:
            await outbox.add(session, laissez_passer_issued(changed, now))
    if on_transition is not None:
        await on_transition(session, outbox, row, changed, step.action, now)
    if step.target in SEAT_RELEASING and on_closed is not None:
        # A withdrawn or expired application gives its appointment's seat back.
        await on_closed(session, outbox, changed, now)
    if step.target == "issued" and on_issued is not None:
        await on_issued(session, outbox, changed, now)
    return changed


# The statuses whose application lets go of its booked appointment (and seat).
SEAT_RELEASING = frozenset({"withdrawn", "expired"})


async def note_status(
    session: AsyncSession,
    outbox: OutboxWriter,
    row: dict[str, Any],
    *,
    action: str,
    reason: str | None,
    actor: Actor,
    now: datetime,
) -> None:
    """Record in the history, and publish as a status change, a step that leaves the
    application's status as it is (the documentation authority accepting or rejecting a
    hand-over package): the person hears of it by the status-mail path."""
    status = row["status"]
    await _history(
        session, row["id"], action, status, status, reason, actor.subject, actor.side, now
    )
    await outbox.add(
        session,
        ApplicationStatusChangedV1(
            application_id=row["id"],
            applicant_id=row["applicant_id"],
            subject_id=subject_of(row),
            service_type=row["service_type"],
            embassy_id=row["embassy_id"] or "",
            action=action,
            from_status=status,
            to_status=status,
            actor_role=actor.side,
            changed_at=now,
            reason=reason,
            reference=row.get("reference"),
        ),
    )


LAISSEZ_PASSER = "laissez_passer"


def _answer_date(answers: dict[str, Any], name: str) -> date | None:
    value = answers.get(name)
    return date.fromisoformat(value) if isinstance(value, str) and value else None


def laissez_passer_issued(row: dict[str, Any], now: datetime) -> LaissezPasserIssuedV1:
    """The event the returnees service opens a reception case from (item 9)."""
    answers: dict[str, Any] = row["answers"] or {}
    destination = answers.get("destination")
    return LaissezPasserIssuedV1(
        application_id=row["id"],
        applicant_id=row["applicant_id"],
        embassy_id=row["embassy_id"],
        issued_at=now,
        reference=row.get("reference"),
        travel_date=_answer_date(answers, "travel_date"),
        expected_return_date=_answer_date(answers, "expected_return_date"),
        destination=destination if isinstance(destination, str) else None,
    )


async def note_officer(
    session: AsyncSession, subject: str, embassies: Sequence[str], now: datetime
) -> None:
    """Remember that ``subject`` acted as an officer of each of ``embassies``."""
    if not embassies:
        return
    statement = insert(officers).values(
        [
            {"subject": subject, "embassy_id": e, "first_seen_at": now, "last_seen_at": now}
            for e in sorted(set(embassies))
        ]
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[officers.c.subject, officers.c.embassy_id],
            set_={"last_seen_at": statement.excluded.last_seen_at},
        )
    )


async def is_known_officer(session: AsyncSession, subject: str, embassy_id: str) -> bool:
    """``subject`` was seen acting as an officer of ``embassy_id``."""
    found = await session.execute(
        select(officers.c.subject).where(
            officers.c.subject == subject, officers.c.embassy_id == embassy_id
        )
    )
    return found.first() is not None


async def assign(
    session: AsyncSession,
    row: dict[str, Any],
    *,
    assignee: str | None,
    actor: Actor,
    actor_role: str,
    now: datetime,
) -> dict[str, Any]:
    """Give the case to an officer (their subject), or to nobody."""
    values = {"assigned_to": assignee, "version": row["version"] + 1, "updated_at": now}
    await session.execute(
        update(applications).where(applications.c.id == row["id"]).values(**values)
    )
    note = f"assigned to {assignee}" if assignee else "unassigned"
    await _history(
        session,
        row["id"],
        "assign",
        row["status"],
        row["status"],
        note,
        actor.subject,
        actor_role,
        now,
    )
    return {**row, **values}


@dataclass(frozen=True)
class QueueFilters:
    status: Sequence[str] = ()
    service_type: str | None = None
    # "me", "none", or an officer's subject.
    assigned: str | None = None
    overdue: bool | None = None
    escalated: bool | None = None


async def search(
    session: AsyncSession,
    where: ColumnElement[bool],
    filters: QueueFilters,
    *,
    caller: str,
    now: datetime,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """The applications a decision reaches, filtered; oldest due first (the queue)."""
    conditions: list[ColumnElement[bool]] = [where]
    if filters.status:
        conditions.append(applications.c.status.in_(list(filters.status)))
    if filters.service_type:
        conditions.append(applications.c.service_type == filters.service_type)
    if filters.assigned == "none":
        conditions.append(applications.c.assigned_to.is_(None))
    elif filters.assigned == "me":
        conditions.append(applications.c.assigned_to == caller)
    elif filters.assigned:
        conditions.append(applications.c.assigned_to == filters.assigned)
    overdue = and_(
        applications.c.status.in_(sorted(domain.SLA_RUNNING)), applications.c.due_at < now
    )
    if filters.overdue is True:
        conditions.append(overdue)
    elif filters.overdue is False:
        conditions.append(~overdue)
    if filters.escalated is True:
        conditions.append(applications.c.escalated_at.is_not(None))
    elif filters.escalated is False:
        conditions.append(applications.c.escalated_at.is_(None))
    condition = and_(*conditions)
    total = (
        await session.execute(select(func.count()).select_from(applications).where(condition))
    ).scalar_one()
    rows = await session.execute(
        select(applications)
        .where(condition)
        .order_by(
            applications.c.due_at.asc().nulls_last(), applications.c.created_at, applications.c.id
        )
        .limit(limit)
        .offset(offset)
    )
    return [dict(r) for r in rows.mappings()], int(total)


# --- the worker's periodic job --------------------------------------------------------


async def escalate_overdue(
    session: AsyncSession, outbox: OutboxWriter, *, now: datetime, batch: int = 500
) -> list[UUID]:
    """Flag and escalate (once) applications past their due date without a decision."""
    rows = await flag_overdue(session, applications, domain.SLA_RUNNING, now=now, batch=batch)
    for row in rows:
        await _history(
            session,
            row["id"],
            "escalate",
            row["status"],
            row["status"],
            f"overdue since {row['due_at'].isoformat()}",
            SYSTEM.subject,
            SYSTEM.side,
            now,
        )
        await outbox.add(
            session,
            ApplicationEscalatedV1(
                application_id=row["id"],
                applicant_id=row["applicant_id"],
                service_type=row["service_type"],
                embassy_id=row["embassy_id"] or "",
                status=row["status"],
                due_at=row["due_at"],
                escalated_at=now,
            ),
        )
    return [r["id"] for r in rows]


async def expire_stale(
    session: AsyncSession,
    outbox: OutboxWriter,
    *,
    now: datetime,
    draft_days: int,
    information_days: int,
    batch: int = 500,
    on_closed: ClosedHook | None = None,
) -> list[UUID]:
    """Drafts never submitted, and applications whose information never came, expire."""
    rows = (
        (
            await session.execute(
                select(applications)
                .where(
                    or_(
                        and_(
                            applications.c.status == "draft",
                            applications.c.updated_at < now - timedelta(days=draft_days),
                        ),
                        and_(
                            applications.c.status == "information_requested",
                            applications.c.updated_at < now - timedelta(days=information_days),
                        ),
                    )
                )
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        )
        .mappings()
        .all()
    )
    for row in rows:
        await apply_transition(
            session,
            outbox,
            dict(row),
            action="expire",
            actor=SYSTEM,
            reason="no action within the allowed time",
            answers=None,
            now=now,
            on_closed=on_closed,
        )
    return [r["id"] for r in rows]


# --- merge (a step of the members consumer; erasure: consular.erasure) ------------------


async def merge_applicant(session: AsyncSession, absorbed: UUID, survivor: UUID) -> None:
    await session.execute(
        update(applications)
        .where(applications.c.applicant_id == absorbed)
        .values(applicant_id=survivor, version=applications.c.version + 1)
    )

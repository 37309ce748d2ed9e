"""HTTP interface of appointments.

`/embassies/{embassy_id}/slot-template`: an embassy's template (public); its officers (and
admins) publish new versions, audited. `/embassies/{embassy_id}/slots`: the slots that
can be booked in a range of dates, computed from the template (public). `/appointments`:
the applicant books a slot for their application, reschedules, cancels; an officer of the
application's embassy does it on their behalf (another embassy's: 404). Times are UTC,
each shown again in the embassy's zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request

from consular.appointments import domain, service
from consular.appointments.schemas import (
    AppointmentView,
    Cancellation,
    NewAppointment,
    Reschedule,
    SlotList,
    SlotTemplateIn,
    SlotTemplateView,
    SlotView,
)
from consular.deps import IdentityDep, ServiceDep
from consular.problems import invalid, not_found
from consular.resources import Consular
from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_identity.policy import Decision, Forbidden
from diaspora_service.problems import TYPE_BASE, Problem

router = APIRouter(tags=["appointments"])

RESOURCE = "consular_appointment"
TEMPLATE = "consular_slot_template"
EmbassyId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")]
VIEW_FIELDS = sorted(AppointmentView.model_fields)
MAX_RANGE_DAYS = 62

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such appointment"}}
BOOKING: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such application (or appointment)"},
    409: {"description": "The slot is full, or the application already holds an appointment"},
    422: {"description": "Not a slot: in the past, beyond the horizon, on a closed day"},
}


def now() -> datetime:
    return datetime.now(UTC)


def _template_view(row: dict[str, Any], *, staff: bool) -> SlotTemplateView:
    return SlotTemplateView.model_validate(
        {**row, "created_by": row["created_by"] if staff else None}
    )


def _view(row: dict[str, Any]) -> AppointmentView:
    return AppointmentView(
        id=row["id"],
        application_id=row["application_id"],
        applicant_id=row["applicant_id"],
        embassy_id=row["embassy_id"],
        status=row["status"],
        slot_start=row["slot_start"],
        slot_end=row["slot_end"],
        local_start=service.local(row["slot_start"], row["timezone"]),
        local_end=service.local(row["slot_end"], row["timezone"]),
        timezone=row["timezone"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        cancelled_at=row["cancelled_at"],
        cancel_reason=row["cancel_reason"],
    )


def _refused(error: domain.Refused) -> Problem:
    return invalid(
        "This slot cannot be booked",
        [{"field": "slot_start", "message": error.message, "code": error.code}],
    )


def _full() -> Problem:
    return Problem(
        409,
        "Slot full",
        detail="Every seat of this slot is taken; choose another (see the embassy's slots).",
        type_=TYPE_BASE + "slot-full",
    )


def _no_template() -> Problem:
    return invalid(
        "This embassy takes no appointments yet",
        [{"field": "embassy_id", "message": "no slot template published", "code": "no_slots"}],
    )


def _not_active() -> Problem:
    return Problem(409, "Appointment cancelled", detail="This appointment was cancelled.")


def _role(decision: Decision, row: dict[str, Any]) -> str:
    return "applicant" if decision.is_own(row) else ",".join(decision.roles)


async def _audit(
    svc: Consular,
    session: Any,
    decision: Decision,
    request: Request,
    rows: list[dict[str, Any]],
    *,
    action: str | None = None,
) -> None:
    """Staff reads and changes of appointments (record = the applicant)."""
    accesses = [
        (row["applicant_id"] or row["application_id"], VIEW_FIELDS)
        for row in rows
        if not decision.is_own(row)
    ]
    if decision.principal.is_staff and accesses:
        await svc.audit.record(
            session, decision, AccessContext.of(request), accesses, action=action
        )


# --- templates and slots -----------------------------------------------------------------


@router.get(
    "/embassies/{embassy_id}/slot-template",
    response_model=SlotTemplateView,
    responses={404: {"description": "No template published"}},
)
async def get_slot_template(embassy_id: EmbassyId, svc: ServiceDep) -> SlotTemplateView:
    """The embassy's template in force (no token needed)."""
    async with svc.sessions() as session:
        row = await service.current_template(session, embassy_id)
    if row is None:
        raise not_found("slot template for this embassy")
    return _template_view(row, staff=False)


@router.put(
    "/embassies/{embassy_id}/slot-template",
    response_model=SlotTemplateView,
    responses={**AUTH_RESPONSES, 422: {"description": "Not a valid template"}},
)
async def put_slot_template(
    embassy_id: EmbassyId,
    body: SlotTemplateIn,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> SlotTemplateView:
    """Publish a new version of the embassy's template (an officer of that embassy, or
    an admin). Bookings already made keep their slot. Audited."""
    decision = identity.policy.decide(principal, TEMPLATE, "update")
    if not decision.permits({"embassy_id": embassy_id}):
        raise Forbidden(TEMPLATE, "update")
    definition = body.model_dump(mode="json")
    definition["valid_from"] = body.valid_from
    definition["valid_to"] = body.valid_to
    definition["closures"] = [{**c, "end": c["end"] or c["start"]} for c in definition["closures"]]
    async with svc.sessions() as session, session.begin():
        row = await service.publish_template(
            session, embassy_id, definition, actor=principal.subject
        )
        await svc.audit.record(
            session,
            decision,
            AccessContext.of(request),
            [(row["id"], sorted(SlotTemplateIn.model_fields))],
        )
    return _template_view(row, staff=True)


@router.get(
    "/embassies/{embassy_id}/slots",
    response_model=SlotList,
    responses={404: {"description": "No template published"}, 422: {"description": "Bad range"}},
)
async def list_slots(
    embassy_id: EmbassyId,
    svc: ServiceDep,
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
    include_full: bool = False,
) -> SlotList:
    """The slots of the embassy from `from` to `to` (local dates, inclusive; default the
    next 14 days) that can still be booked, with the seats left. No token needed."""
    at = now()
    async with svc.sessions() as session:
        row = await service.current_template(session, embassy_id)
        if row is None:
            raise not_found("slot template for this embassy")
        template = service.template_of(row)
        today = at.astimezone(template.zone).date()
        first = max(first or today, today)
        last = last or first + timedelta(days=13)
        if last < first or (last - first).days >= MAX_RANGE_DAYS:
            raise invalid(
                "Bad date range",
                [
                    {
                        "field": "to",
                        "message": f"must be on or after `from`, within {MAX_RANGE_DAYS} days",
                        "code": "range",
                    }
                ],
            )
        found = await service.available_slots(
            session, template, first, last, now=at, include_full=include_full
        )
    return SlotList(
        embassy_id=embassy_id,
        timezone=template.timezone,
        template_version=row["version"],
        items=[
            SlotView(
                start=a.slot.start,
                end=a.slot.end,
                local_start=a.slot.local_start,
                local_end=a.slot.local_end,
                capacity=a.capacity,
                available=a.available,
            )
            for a in found
        ],
    )


# --- appointments ------------------------------------------------------------------------


@router.post(
    "/appointments",
    status_code=201,
    response_model=AppointmentView,
    responses={**AUTH_RESPONSES, **BOOKING},
)
async def book_appointment(
    body: NewAppointment,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> AppointmentView:
    """Book a slot of the application's embassy (the applicant, or an officer of that
    embassy on their behalf). One active appointment per application."""
    decision = identity.policy.decide(principal, RESOURCE, "book")
    async with svc.sessions() as session, session.begin():
        application = await service.load_application(
            session, body.application_id, decision.where(service.APPLICATION_SCOPE_COLUMNS)
        )
        if application is None:
            raise not_found("application")
        try:
            row = await service.book(
                session,
                svc.outbox,
                application,
                start=body.slot_start,
                actor=principal.subject,
                actor_role=_role(decision, application),
                now=now(),
            )
        except service.NotBookable as error:
            raise Problem(
                409,
                "No appointment for this application now",
                detail=f"An application {error.status} cannot hold an appointment.",
                type_=TYPE_BASE + "not-bookable",
                status_now=error.status,
            ) from None
        except service.AlreadyBooked as error:
            raise Problem(
                409,
                "Already booked",
                detail="This application holds an appointment: reschedule or cancel it.",
                type_=TYPE_BASE + "already-booked",
                appointment_id=str(error.appointment_id),
            ) from None
        except service.NoTemplate:
            raise _no_template() from None
        except domain.Refused as error:
            raise _refused(error) from None
        except service.SlotFull:
            raise _full() from None
        await _audit(svc, session, decision, request, [row], action="book")
    return _view(row)


@router.get("/appointments", response_model=list[AppointmentView], responses=AUTH_RESPONSES)
async def list_appointments(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    application_id: UUID | None = None,
) -> list[AppointmentView]:
    """A citizen's own appointments; an officer's embassy's (first 200, soonest first)."""
    decision = identity.policy.decide(principal, RESOURCE, "read")
    async with svc.sessions() as session, session.begin():
        rows = await service.search(
            session, decision.where(service.SCOPE_COLUMNS), application_id=application_id
        )
        await _audit(svc, session, decision, request, rows)
    return [_view(r) for r in rows]


@router.get(
    "/appointments/{appointment_id}",
    response_model=AppointmentView,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def get_appointment(
    appointment_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> AppointmentView:
    decision = identity.policy.decide(principal, RESOURCE, "read")
    async with svc.sessions() as session, session.begin():
        row = await service.load(session, appointment_id, decision.where(service.SCOPE_COLUMNS))
        if row is None:
            raise not_found("appointment")
        await _audit(svc, session, decision, request, [row])
    return _view(row)


@router.put(
    "/appointments/{appointment_id}/slot",
    response_model=AppointmentView,
    responses={**AUTH_RESPONSES, **BOOKING},
)
async def reschedule_appointment(
    appointment_id: UUID,
    body: Reschedule,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> AppointmentView:
    """Move the appointment to another slot of the same embassy (the old seat is given
    back only once the new one is taken)."""
    decision = identity.policy.decide(principal, RESOURCE, "book")
    async with svc.sessions() as session, session.begin():
        row = await service.load(
            session, appointment_id, decision.where(service.SCOPE_COLUMNS), lock=True
        )
        if row is None:
            raise not_found("appointment")
        try:
            changed = await service.reschedule(
                session,
                svc.outbox,
                row,
                start=body.slot_start,
                actor_role=_role(decision, row),
                now=now(),
            )
        except service.NotActive:
            raise _not_active() from None
        except service.NoTemplate:
            raise _no_template() from None
        except domain.Refused as error:
            raise _refused(error) from None
        except service.SlotFull:
            raise _full() from None
        await _audit(svc, session, decision, request, [changed], action="reschedule")
    return _view(changed)


@router.post(
    "/appointments/{appointment_id}/cancel",
    response_model=AppointmentView,
    responses={**AUTH_RESPONSES, **NOT_FOUND, 409: {"description": "Already cancelled"}},
)
async def cancel_appointment(
    appointment_id: UUID,
    body: Cancellation,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> AppointmentView:
    """Cancel the appointment; its seat is free again."""
    decision = identity.policy.decide(principal, RESOURCE, "book")
    async with svc.sessions() as session, session.begin():
        row = await service.load(
            session, appointment_id, decision.where(service.SCOPE_COLUMNS), lock=True
        )
        if row is None:
            raise not_found("appointment")
        try:
            changed = await service.cancel(
                session,
                svc.outbox,
                row,
                reason=body.reason,
                actor_role=_role(decision, row),
                now=now(),
            )
        except service.NotActive:
            raise _not_active() from None
        await _audit(svc, session, decision, request, [changed], action="cancel")
    return _view(changed)

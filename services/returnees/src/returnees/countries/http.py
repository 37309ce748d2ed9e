"""HTTP interface of the country lists (`/countries`).

Everyone, without a token, reads the published labour-demand countries and the published
watchlist (each entry's advisory in French and English); every other route needs a
bearer token (401 without one). Analysts and the ministry's
coordinators (policy resource ``returnees_country_list``, action ``edit``) edit the
labour-demand countries (a new version each time, the history kept), propose watchlist
entries (the difficulty reports counted for the country are frozen with the proposal as
evidence), and review them: a *second* analyst or coordinator publishes, never the
proposer (403, four-eyes). Publishing sends the advisory (``returnees.advisory.published``),
which notifications fans out. A transition the status does not allow is 409 naming the
allowed ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal, authenticate
from diaspora_identity.principal import Principal, Role
from diaspora_reference import isco
from diaspora_service.conditional import (
    PRECONDITION_RESPONSES,
    IfMatch,
    expected_version,
    set_etag,
    version_conflict,
)
from diaspora_service.problems import TYPE_BASE, Problem
from diaspora_service.suppression import DEFAULT_THRESHOLD
from returnees.countries import domain, service
from returnees.countries.schemas import (
    COUNTRY,
    CaseEvidenceCell,
    Evidence,
    EvidenceCell,
    HistoryEntry,
    LabourDemandEdit,
    LabourDemandHistory,
    LabourDemandList,
    LabourDemandVersion,
    LabourDemandView,
    Occupation,
    Source,
    Texts,
    Titles,
    TransitionRequest,
    WatchlistList,
    WatchlistProposal,
    WatchlistView,
)
from returnees.deps import IdentityDep, ServiceDep
from returnees.problems import not_found

router = APIRouter(prefix="/countries", tags=["countries"])

RESOURCE = "returnees_country_list"
CountryCode = Annotated[str, Path(pattern=COUNTRY, examples=["SA"])]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not possible from the current status; `allowed` names what is"}
}
FOUR_EYES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not allowed: the role, or the proposer reviewing their own entry"}
}

# Who calls without a token: the policy's `public` role.
ANONYMOUS = Principal(subject="anonymous", roles=frozenset({Role.PUBLIC}))


def now() -> datetime:
    return datetime.now(UTC)


async def caller(request: Request) -> Principal:
    """The verified caller, or the anonymous public when the request carries no token."""
    if not request.headers.get("authorization"):
        return ANONYMOUS
    return await authenticate(request)


Caller = Annotated[Principal, Depends(caller)]


def _is_editor(identity: Any, principal: Principal) -> bool:
    allowed: bool = identity.policy.allowed(principal, RESOURCE, "edit")
    return allowed


# --- labour-demand countries ----------------------------------------------------------


def _labour_view(row: dict[str, Any], *, staff: bool) -> LabourDemandView:
    return LabourDemandView(
        country=row["country"],
        sectors=list(row["sectors"]),
        occupations=[
            Occupation(code=c, label_fr=isco.label(c, "fr"), label_en=isco.label(c, "en"))
            for c in row["occupations"]
        ],
        sources=[Source.model_validate(s) for s in row["sources"]],
        last_reviewed_on=row["last_reviewed_on"],
        notes=row["notes"] if staff else None,
        published=row["published"],
        version=row["version"],
        updated_at=row["updated_at"],
        updated_by=row["updated_by"] if staff else None,
    )


@router.get("/labour-demand", response_model=LabourDemandList, response_model_exclude_none=True)
async def list_labour_demand(
    svc: ServiceDep, identity: IdentityDep, principal: Caller
) -> LabourDemandList:
    """Countries where Togolese workers are in demand: sectors, occupations (ISCO-08),
    sources, last review. No token needed (published ones); editors also see drafts."""
    identity.policy.decide(principal, RESOURCE, "read")
    staff = _is_editor(identity, principal)
    async with svc.sessions() as session:
        rows = await service.labour_demand_rows(session, published_only=not staff)
    return LabourDemandList(items=[_labour_view(r, staff=staff) for r in rows])


@router.get(
    "/labour-demand/{country}",
    response_model=LabourDemandView,
    response_model_exclude_none=True,
    responses={404: {"description": "Not on the list (or not published)"}},
)
async def get_labour_demand(
    country: CountryCode,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: Caller,
    response: Response,
) -> LabourDemandView:
    """One labour-demand country."""
    identity.policy.decide(principal, RESOURCE, "read")
    staff = _is_editor(identity, principal)
    async with svc.sessions() as session:
        rows = await service.labour_demand_rows(session, published_only=not staff, country=country)
    if not rows:
        raise not_found("labour-demand country")
    set_etag(response, rows[0]["version"])
    return _labour_view(rows[0], staff=staff)


@router.put(
    "/labour-demand/{country}",
    response_model=LabourDemandView,
    responses={**AUTH_RESPONSES, **PRECONDITION_RESPONSES},
)
async def put_labour_demand(
    country: CountryCode,
    body: LabourDemandEdit,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> LabourDemandView:
    """Add a labour-demand country or save a new version of it (analysts, coordinators).
    Occupations must be ISCO-08 codes of the reference data (422 naming each wrong one).
    ``If-Match`` the ``ETag`` of the last read (``"0"``: only if it is new)."""
    identity.policy.decide(principal, RESOURCE, "edit")
    problem = domain.country_problem(country)
    if problem:
        raise Problem(422, "Unknown country", detail=problem, type_=TYPE_BASE + "validation")
    values = body.model_dump(mode="json")
    values["last_reviewed_on"] = body.last_reviewed_on
    async with svc.sessions() as session, session.begin():
        try:
            row = await service.save_labour_demand(
                session,
                country,
                values,
                actor=principal.subject,
                expected=expected_version(if_match),
                now=now(),
            )
        except service.VersionConflict as conflict:
            raise version_conflict(conflict.current) from None
    set_etag(response, row["version"])
    return _labour_view(row, staff=True)


@router.get(
    "/labour-demand/{country}/history",
    response_model=LabourDemandHistory,
    responses={**AUTH_RESPONSES, 404: {"description": "Never on the list"}},
)
async def labour_demand_history(
    country: CountryCode, svc: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> LabourDemandHistory:
    """Every saved version of a labour-demand country, newest first, with who saved it."""
    identity.policy.decide(principal, RESOURCE, "edit")
    async with svc.sessions() as session:
        rows = await service.labour_demand_versions(session, country)
    if not rows:
        raise not_found("labour-demand country")
    return LabourDemandHistory(
        country=country,
        versions=[
            LabourDemandVersion(
                version=r["version"],
                changed_by=r["changed_by"],
                changed_at=r["changed_at"],
                snapshot=r["snapshot"],
            )
            for r in rows
        ],
    )


# --- watchlist ------------------------------------------------------------------------


def _evidence_for(identity: Any, principal: Principal, evidence: dict[str, Any]) -> dict[str, Any]:
    """The evidence as the caller may see it: report counts under 5 hidden (None) unless
    they may read exact counts (the observatory's small-cell rule)."""
    if identity.policy.allowed(principal, RESOURCE, "evidence_exact"):
        return evidence
    counts = evidence.get("difficulty_reports", {})
    case_counts = evidence.get("cases")
    return {
        **evidence,
        "difficulty_reports": {
            category: (n if n >= DEFAULT_THRESHOLD else None) for category, n in counts.items()
        },
        **(
            {
                "cases": {
                    reason: (n if n >= DEFAULT_THRESHOLD else None)
                    for reason, n in case_counts.items()
                }
            }
            if isinstance(case_counts, dict)
            else {}
        ),
    }


def _watch_view(
    row: dict[str, Any],
    *,
    identity: Any,
    staff: bool,
    principal: Principal,
    entries: list[dict[str, Any]] | None = None,
) -> WatchlistView:
    view = WatchlistView(
        id=row["id"],
        country=row["country"],
        level=row["level"],
        status=row["status"],
        title=Titles(fr=row["title_fr"], en=row["title_en"]),
        text=Texts(fr=row["text_fr"], en=row["text_en"]),
        published_at=row["published_at"],
        withdrawn_at=row["withdrawn_at"],
    )
    if staff:
        view.rationale = row["rationale"]
        view.evidence = _evidence_for(identity, principal, row["evidence"])
        view.proposed_by = row["proposed_by"]
        view.reviewed_by = row["reviewed_by"]
        view.version = row["version"]
        view.allowed_actions = domain.allowed_actions(
            row["status"], proposer=row["proposed_by"] == principal.subject
        )
        if entries is not None:
            view.history = [HistoryEntry.model_validate(e) for e in entries]
    return view


@router.get("/watchlist", response_model=WatchlistList, response_model_exclude_none=True)
async def list_watchlist(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: Caller,
    status: Annotated[
        list[domain.Status] | None,
        Query(description="Editors only: entries in these statuses (default: every one)"),
    ] = None,
    country: Annotated[str | None, Query(pattern=COUNTRY)] = None,
) -> WatchlistList:
    """Countries where migrant workers' rights are reported violated, with their
    advisories. No token needed: published entries; editors see every status."""
    identity.policy.decide(principal, RESOURCE, "read")
    staff = _is_editor(identity, principal)
    wanted: list[str] = [str(s) for s in status or []] if staff else ["published"]
    async with svc.sessions() as session:
        rows = await service.watchlist_rows(session, statuses=wanted, country=country)
    return WatchlistList(
        items=[_watch_view(r, identity=identity, staff=staff, principal=principal) for r in rows]
    )


@router.post(
    "/watchlist",
    response_model=WatchlistView,
    status_code=201,
    responses={**AUTH_RESPONSES},
)
async def propose_watchlist_entry(
    body: WatchlistProposal,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    response: Response,
) -> WatchlistView:
    """Propose a country for the watchlist (a draft), with its advisory's level and
    French and English text. The difficulty reports counted for the country are frozen
    with it as evidence. A second analyst or coordinator reviews it."""
    identity.policy.decide(principal, RESOURCE, "edit")
    async with svc.sessions() as session, session.begin():
        row = await service.propose(
            session,
            {
                "country": body.country,
                "level": body.level,
                "title_fr": body.title.fr,
                "title_en": body.title.en,
                "text_fr": body.text.fr,
                "text_en": body.text.en,
                "rationale": body.rationale,
            },
            sources=[s.model_dump(mode="json") for s in body.sources],
            actor=principal.subject,
            now=now(),
        )
        entries = await service.history(session, row["id"])
    set_etag(response, row["version"])
    return _watch_view(
        {**row, "reviewed_by": None, "published_at": None, "withdrawn_at": None},
        identity=identity,
        staff=True,
        principal=principal,
        entries=entries,
    )


@router.get(
    "/watchlist/{entry_id}",
    response_model=WatchlistView,
    response_model_exclude_none=True,
    responses={404: {"description": "No such entry (or not published)"}},
)
async def get_watchlist_entry(
    entry_id: UUID, svc: ServiceDep, identity: IdentityDep, principal: Caller, response: Response
) -> WatchlistView:
    """One watchlist entry (editors: with its evidence and history)."""
    identity.policy.decide(principal, RESOURCE, "read")
    staff = _is_editor(identity, principal)
    async with svc.sessions() as session:
        rows = await service.watchlist_rows(
            session, entry_id=entry_id, statuses=None if staff else ["published"]
        )
        if not rows:
            raise not_found("watchlist entry")
        entries = await service.history(session, entry_id) if staff else None
    set_etag(response, rows[0]["version"])
    return _watch_view(
        rows[0], identity=identity, staff=staff, principal=principal, entries=entries
    )


@router.post(
    "/watchlist/{entry_id}/transitions",
    response_model=WatchlistView,
    responses={
        **AUTH_RESPONSES,
        **FOUR_EYES,
        **CONFLICT,
        404: {"description": "No such entry"},
        **PRECONDITION_RESPONSES,
    },
)
async def transition_watchlist_entry(
    entry_id: UUID,
    body: TransitionRequest,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> WatchlistView:
    """Move an entry along: ``submit`` it for review, ``return`` it to its proposer,
    ``publish`` it (a second reviewer only: the proposer gets 403), ``withdraw`` it.
    Publishing sends its advisory to the members living in the country and to its
    subscribers. Not possible from the status: 409 naming what is."""
    identity.policy.decide(principal, RESOURCE, "edit")
    expected = expected_version(if_match)
    async with svc.sessions() as session, session.begin():
        rows = await service.watchlist_rows(session, entry_id=entry_id, lock=True)
        if not rows:
            raise not_found("watchlist entry")
        row = rows[0]
        if expected is not None and expected != row["version"]:
            raise version_conflict(row["version"])
        try:
            changed = await service.transition(
                session,
                svc.outbox,
                row,
                action=body.action,
                actor=principal.subject,
                reason=body.reason,
                now=now(),
            )
        except domain.FourEyes as refused:
            raise Problem(
                403,
                "Four-eyes review",
                detail=str(refused),
                type_=TYPE_BASE + "four-eyes",
                allowed=domain.allowed_actions(row["status"], proposer=True),
            ) from None
        except domain.IllegalTransition as error:
            raise Problem(
                409,
                "Transition not allowed",
                detail=str(error),
                type_=TYPE_BASE + "transition-not-allowed",
                status_now=error.status,
                allowed=error.allowed,
            ) from None
        except service.AlreadyPublished:
            raise Problem(
                409,
                "Country already on the watchlist",
                detail=(
                    f"{row['country']} has a published entry: withdraw it before publishing another"
                ),
                type_=TYPE_BASE + "transition-not-allowed",
                status_now=row["status"],
                allowed=["withdraw"],
            ) from None
        entries = await service.history(session, entry_id)
    set_etag(response, changed["version"])
    return _watch_view(changed, identity=identity, staff=True, principal=principal, entries=entries)


@router.get(
    "/evidence/{country}",
    response_model=Evidence,
    responses={**AUTH_RESPONSES},
)
async def evidence(
    country: CountryCode, svc: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> Evidence:
    """The difficulty reports counted for a country, per category (from the consular
    service's events), and the returnees' cases from it whose reason for return
    indicates rights violations, per reason: what a watchlist proposal rests on. Counts
    under 5 are hidden from analysts (coordinators and admins see them exact)."""
    identity.policy.decide(principal, RESOURCE, "edit")
    exact = identity.policy.allowed(principal, RESOURCE, "evidence_exact")
    async with svc.sessions() as session, session.begin():
        counts = await service.report_counts_of(session, country)
        case_counts = await service.case_counts_of(session, country)
    return Evidence(
        country=country,
        difficulty_reports=[
            EvidenceCell(
                category=category,
                reports=n if exact or n >= DEFAULT_THRESHOLD else None,
            )
            for category, n in counts.items()
        ],
        cases=[
            CaseEvidenceCell(reason=reason, cases=n if exact or n >= DEFAULT_THRESHOLD else None)
            for reason, n in case_counts.items()
        ],
        cases_rule=service.CASES_RULE,
        exact=exact,
    )

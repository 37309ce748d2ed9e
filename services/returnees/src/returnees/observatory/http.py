"""HTTP interface of the observatory (`/observatory`): aggregate figures of returns, needs,
referral times by partner, difficulty reports and watchlist changes.

Analysts, the ministry's coordinators and admins read them (policy resource
``returnee_observatory``, action ``read``), small cells suppressed by the platform's rule;
coordinators and admins may ask for exact counts with ``exact=true`` (``read_exact``).
Each table is JSON, or CSV with ``Accept: text/csv`` or ``format=csv`` (UTF-8, a header
row, suppressed figures empty and flagged in a column).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_identity.principal import Principal
from returnees.deps import IdentityDep, ServiceDep
from returnees.observatory import service
from returnees.observatory.domain import (
    THRESHOLD,
    Row,
    Table,
    render_csv,
    suppress,
    suppress_within,
)

router = APIRouter(prefix="/observatory", tags=["observatory"])

RESOURCE = "returnee_observatory"

RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    200: {
        "content": {"text/csv": {}},
        "description": "The table as JSON, or as CSV (`Accept: text/csv` or `format=csv`)",
    },
    403: {"description": "Your roles do not allow this (e.g. exact counts) (problem details)"},
    422: {"description": "Invalid parameter (problem details)"},
}

Exact = Annotated[
    bool, Query(description="Exact counts, no suppression (coordinators and admins only)")
]
Format = Annotated[
    Literal["json", "csv"] | None,
    Query(description="`csv` for a CSV export (the same as `Accept: text/csv`)"),
]


class ObservatoryTable(BaseModel):
    table: str
    exact: bool
    threshold: int = Field(description="Cells counting fewer are suppressed unless exact")
    suppression: bool = Field(description="Whether the small-cell rule was applied")
    total: int | None = Field(description="Items counted in the table (null if small)")
    dimensions: list[str]
    measures: list[str]
    rows: list[dict[str, Any]] = Field(
        description="One per cell: its dimensions, `count` and measures (null when "
        "suppressed), `suppressed`, and `suppressed_measures` of a shown row"
    )


Query_ = Callable[[AsyncSession], Awaitable[list[Row]]]


async def _table(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: Principal,
    request: Request,
    *,
    name: str,
    load: Query_,
    dimensions: tuple[str, ...],
    measures: tuple[str, ...] = (),
    exact: bool,
    csv: bool,
    suppressible: bool = True,
    apply: Callable[[list[Row]], None] | None = None,
) -> Any:
    identity.policy.decide(principal, RESOURCE, "read_exact" if exact else "read")
    async with svc.sessions() as session:
        rows = await load(session)
    total: int | None = sum(r.count for r in rows)
    if suppressible and not exact:
        total = suppress(rows, threshold=THRESHOLD, additive=True)
        if apply is not None:
            apply(rows)
    table = Table(name, dimensions, measures, rows, total, exact, THRESHOLD, suppressible)
    if csv or "text/csv" in request.headers.get("accept", ""):
        return Response(
            render_csv(table).encode(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="observatory-{name}.csv"',
                "Cache-Control": "private, no-store",
            },
        )
    return Response(
        ObservatoryTable.model_validate(table.as_dict()).model_dump_json().encode(),
        media_type="application/json",
        headers={"Cache-Control": "private, no-store"},
    )


@router.get(
    "/returns", response_model=ObservatoryTable, responses=RESPONSES, response_class=Response
)
async def returns(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    exact: Exact = False,
    format: Format = None,
) -> Any:
    """Returns (cases with a return date, not cancelled) by country returned from, month
    of return and reason."""
    return await _table(
        svc,
        identity,
        principal,
        request,
        name="returns",
        load=service.returns,
        dimensions=("country", "month", "reason"),
        exact=exact,
        csv=format == "csv",
    )


@router.get("/needs", response_model=ObservatoryTable, responses=RESPONSES, response_class=Response)
async def needs(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    exact: Exact = False,
    format: Format = None,
) -> Any:
    """Needs assessed, met and unmet, by need area and month (of return, or of opening for
    a case not yet returned); each need of a case counted once."""
    return await _table(
        svc,
        identity,
        principal,
        request,
        name="needs",
        load=service.needs,
        dimensions=("month", "area", "state"),
        exact=exact,
        csv=format == "csv",
    )


REFERRAL_MEASURES = (
    *service.OUTCOMES,
    "acknowledged_n",
    "days_to_acknowledge_median",
    "days_to_acknowledge_p90",
    "days_to_complete_median",
    "days_to_complete_p90",
)


def _referral_cells(rows: list[Row]) -> None:
    suppress_within(
        rows,
        service.OUTCOMES,
        {
            "acknowledged_n": ("acknowledged_n",),
            "days_to_acknowledge_median": ("acknowledged_n",),
            "days_to_acknowledge_p90": ("acknowledged_n",),
            "days_to_complete_median": ("done",),
            "days_to_complete_p90": ("done",),
        },
        threshold=THRESHOLD,
    )


@router.get(
    "/referral-times",
    response_model=ObservatoryTable,
    responses=RESPONSES,
    response_class=Response,
)
async def referral_times(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    exact: Exact = False,
    format: Format = None,
) -> Any:
    """Referrals by partner: counts by status (outcome), median and 90th percentile of the
    days to acknowledge (acknowledged ones) and to complete (done ones)."""
    return await _table(
        svc,
        identity,
        principal,
        request,
        name="referral-times",
        load=service.referral_times,
        dimensions=("partner", "name"),
        measures=REFERRAL_MEASURES,
        exact=exact,
        csv=format == "csv",
        apply=_referral_cells,
    )


@router.get(
    "/difficulty-reports",
    response_model=ObservatoryTable,
    responses=RESPONSES,
    response_class=Response,
)
async def difficulty_reports(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    exact: Exact = False,
    format: Format = None,
) -> Any:
    """Consular difficulty reports by country and category, since counting began (the
    country lists keep no month)."""
    return await _table(
        svc,
        identity,
        principal,
        request,
        name="difficulty-reports",
        load=service.difficulty_reports,
        dimensions=("country", "category"),
        exact=exact,
        csv=format == "csv",
    )


@router.get(
    "/watchlist-changes",
    response_model=ObservatoryTable,
    responses=RESPONSES,
    response_class=Response,
)
async def watchlist_changes(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    exact: Exact = False,
    format: Format = None,
) -> Any:
    """Watchlist publications and withdrawals (of published entries) by month and country.
    Public decisions about countries, counting no person: never suppressed."""
    return await _table(
        svc,
        identity,
        principal,
        request,
        name="watchlist-changes",
        load=service.watchlist_changes,
        dimensions=("month", "country", "change"),
        exact=exact,
        csv=format == "csv",
        suppressible=False,
    )

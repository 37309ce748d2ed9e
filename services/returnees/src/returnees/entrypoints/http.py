"""The returnees service's HTTP interface.

Every route but the public reads of the country lists and the awareness
subscriptions needs a bearer token, and the policy table (diaspora_identity) decides who
may do what. Each feature has its router in its ``http.py``; they are listed here, one
line each.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from diaspora_identity.service_app import service_app
from returnees import SERVICE_NAME
from returnees.agreements.http import router as agreements_router
from returnees.bootstrap import bootstrap
from returnees.cases.http import router as cases_router
from returnees.countries.http import router as countries_router
from returnees.observatory.http import router as observatory_router
from returnees.partners.http import router as partners_router
from returnees.referrals.http import router as referrals_router
from returnees.resources import Returnees
from returnees.subscribers.http import router as subscriptions_router

ROUTERS: list[APIRouter] = [
    cases_router,
    agreements_router,
    partners_router,
    referrals_router,
    countries_router,  # country lists: public reads of published entries
    subscriptions_router,  # awareness subscriptions: public, no token
    observatory_router,  # aggregate figures for analysts, small cells suppressed
]


def build_app(service: Returnees | None = None) -> FastAPI:
    return service_app(
        SERVICE_NAME,
        given=service,
        bootstrap=bootstrap,
        title="Returnees",
        description=(
            "The ministry's return cell: cases of returning migrants (opened by a case "
            "worker, by the returnee before return, or when consular issues a "
            "laissez-passer), intake, needs assessment, reintegration plan, follow-ups and "
            "closure; partner organisations and referrals of a case's needs with their SLA; "
            "the register of labour-migration agreements; labour-demand countries and the "
            "watchlist with its advisories; awareness subscriptions. Health, psychosocial "
            "and vulnerability fields are sealed at rest and shown only to the assigned "
            "case worker; every staff read is audited. Every call but the public reads of "
            "the country lists and the awareness subscriptions needs an OIDC bearer token "
            "(docs/security.md)."
        ),
        routers=ROUTERS,
    )


def app() -> FastAPI:
    """Factory for `uvicorn --factory returnees.entrypoints.http:app`."""
    return build_app()

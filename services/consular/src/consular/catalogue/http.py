"""HTTP interface of the service catalogue (`/catalogue/service-types`).

Anyone reads it, without a token (what the ministry offers and what it needs). The
ministry's coordinators (and admins) edit it: each PUT publishes a new version (with
If-Match: the version they read), audited; applications keep their version.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from consular.catalogue import service
from consular.catalogue.domain import CODE, ServiceTypeDefinition
from consular.catalogue.schemas import ServiceTypeList, ServiceTypeView
from consular.deps import IdentityDep, ServiceDep
from consular.problems import not_found
from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_service.conditional import (
    PRECONDITION_RESPONSES,
    IfMatch,
    expected_version,
    set_etag,
    version_conflict,
)

router = APIRouter(prefix="/catalogue", tags=["catalogue"])

Code = Annotated[str, Path(pattern=CODE, examples=["consular_card"])]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such service type"}}


def view(found: service.ServiceTypeVersion) -> ServiceTypeView:
    return ServiceTypeView(
        **found.definition.model_dump(),
        code=found.code,
        version=found.version,
        current_version=found.current_version,
        version_id=found.id,
        published_at=found.created_at,
    )


@router.get("/service-types", response_model=ServiceTypeList)
async def list_service_types(svc: ServiceDep) -> ServiceTypeList:
    """Every service type as it stands (its current version). No token needed."""
    async with svc.sessions() as session:
        return ServiceTypeList(items=[view(v) for v in await service.current(session)])


@router.get("/service-types/{code}", response_model=ServiceTypeView, responses=NOT_FOUND)
async def get_service_type(
    code: Code,
    svc: ServiceDep,
    response: Response,
    version: Annotated[int | None, Query(ge=1, description="An earlier version")] = None,
) -> ServiceTypeView:
    """A service type (its current version, or `version`). No token needed."""
    async with svc.sessions() as session:
        found = await service.get(session, code, version)
    if found is None:
        raise not_found("service type (or version)")
    if found.version == found.current_version:
        set_etag(response, found.version)
    return view(found)


@router.put(
    "/service-types/{code}",
    response_model=ServiceTypeView,
    responses={**AUTH_RESPONSES, **PRECONDITION_RESPONSES},
)
async def put_service_type(
    code: Code,
    body: ServiceTypeDefinition,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> ServiceTypeView:
    """Publish a new version of a service type (or its first). Applications already made
    keep the version they were made under. Audited."""
    decision = identity.policy.decide(principal, "consular_service_type", "update")
    expected = expected_version(if_match)
    async with svc.sessions() as session, session.begin():
        try:
            published = await service.publish(
                session, code, body, expected=expected, actor=principal.subject
            )
        except service.VersionConflict as error:
            raise version_conflict(error.current) from None
        await svc.audit.record(
            session,
            decision,
            AccessContext.of(request),
            [(published.id, sorted(ServiceTypeDefinition.model_fields))],
        )
    set_etag(response, published.version)
    return view(published)

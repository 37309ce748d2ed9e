"""``POST /internal/keys``: the data keys other services need to seal and open events.

Internal: not routed by the gateway (deploy/local/nginx answers 404 for
``/api/registry/internal/``), and allowed to the ``service`` role only (a client-
credentials token of matching or notifications). Each answer is a list, one item per
subject asked: ``{"status": "active", "dek": "<base64>"}`` (created if the subject had
none yet) or ``{"status": "gone"}`` (erased: the key was destroyed).
"""

from __future__ import annotations

import base64
from typing import Literal
from uuid import UUID

import structlog
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_service.problems import Problem
from registry.deps import RegistryDep

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/internal", tags=["internal"])


class KeysRequest(BaseModel):
    subject_ids: list[UUID] = Field(min_length=1, max_length=1000)


class SubjectKey(BaseModel):
    subject_id: UUID
    status: Literal["active", "gone"]
    dek: str | None = Field(default=None, description="Base64 of the 256-bit data key.")


class KeysAnswer(BaseModel):
    keys: list[SubjectKey]


@router.post(
    "/keys",
    response_model=KeysAnswer,
    response_model_exclude_none=True,
    responses={**AUTH_RESPONSES},
)
async def data_keys(
    body: KeysRequest, registry: RegistryDep, principal: CurrentPrincipal, request: Request
) -> KeysAnswer:
    """Data keys of persons, for the platform's services (``service`` role only)."""
    if not principal.is_service:
        raise Problem(403, "Forbidden", detail="Only the platform's services may fetch data keys.")
    if registry.keys is None:
        raise Problem(
            503, "Key service disabled", detail="Event encryption is off on this registry."
        )
    found = await registry.keys.data_keys(body.subject_ids)
    log.info(
        "data_keys_served",
        client=principal.client_id or principal.subject,
        asked=len(body.subject_ids),
        gone=sum(1 for k in found.values() if k is None),
    )
    return KeysAnswer(
        keys=[
            SubjectKey(subject_id=s, status="gone")
            if found.get(s) is None
            else SubjectKey(
                subject_id=s, status="active", dek=base64.b64encode(found[s] or b"").decode()
            )
            for s in dict.fromkeys(body.subject_ids)
        ]
    )

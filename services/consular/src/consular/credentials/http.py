"""HTTP interface of issued credentials (`/credentials`).

Public, without a token: the ministry's key set (`/credentials/jwks.json`), the
revocation list (`/credentials/revocations`, with an ETag; signed:
`/credentials/revocations.jwt`), verification (`POST /credentials/verify`) and its page
(`GET /credentials/verify`). With a token: the holder and the officers of the issuing
embassy read and download a credential (the token, the PDF; anyone else 404); officers of
that embassy and admins revoke it with a reason (audited, event).
"""

from __future__ import annotations

import hashlib
import html
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import HTMLResponse

from consular.credentials import domain, service
from consular.credentials.document import render_pdf
from consular.credentials.schemas import (
    PASTED_TOKEN_PATTERN,
    TOKEN_MAX,
    CredentialList,
    CredentialView,
    RevocationList,
    RevocationRequest,
    RevokedEntry,
    Verification,
    VerificationRequest,
)
from consular.deps import IdentityDep, ServiceDep
from consular.problems import not_found
from consular.resources import Consular
from consular.signing_keys import KeyRing
from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_identity.policy import Decision
from diaspora_identity.principal import Principal
from diaspora_service.problems import Problem

router = APIRouter(prefix="/credentials", tags=["credentials"])

RESOURCE = "consular_credential"
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such credential"}}
VIEW_FIELDS = sorted(CredentialView.model_fields)
PUBLIC_CACHE = "public, max-age=300"


def now() -> datetime:
    return datetime.now(UTC)


def _keys(svc: Consular) -> KeyRing:
    if svc.credential_keys is None:
        raise Problem(503, "Credentials unavailable", detail="No signing key is configured.")
    return svc.credential_keys


def _is_holder(principal: Principal, row: dict[str, Any]) -> bool:
    return row["holder_subject"] == principal.subject or (
        principal.member_id is not None and row["holder_id"] == principal.member_id
    )


def _view(principal: Principal, row: dict[str, Any]) -> CredentialView:
    staff = principal.is_staff and not _is_holder(principal, row)
    return CredentialView(
        id=row["id"],
        application_id=row["application_id"],
        credential_type=row["credential_type"],
        holder_id=row["holder_id"],
        embassy_id=row["embassy_id"],
        kid=row["kid"],
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        revocation_reason=row["revocation_reason"] if staff else None,
    )


async def _audit(
    svc: Consular,
    session: Any,
    decision: Decision,
    request: Request,
    rows: list[dict[str, Any]],
    fields: list[str],
    *,
    action: str | None = None,
) -> None:
    """Staff reads, downloads and revocations (record = the holder, or the application of
    a visitor without a registry record)."""
    principal = decision.principal
    accesses = [
        (row["holder_id"] or row["application_id"], fields)
        for row in rows
        if not _is_holder(principal, row)
    ]
    if principal.is_staff and accesses:
        await svc.audit.record(
            session, decision, AccessContext.of(request), accesses, action=action
        )


async def _load(
    svc: Consular,
    session: Any,
    decision: Decision,
    credential_id: UUID,
    *,
    lock: bool = False,
) -> dict[str, Any]:
    row = await service.load(
        session, credential_id, decision.where(service.SCOPE_COLUMNS), lock=lock
    )
    if row is None:
        raise not_found("credential")
    return row


# --- public: key set, revocation list, verification -----------------------------------


@router.get("/jwks.json")
async def jwks(svc: ServiceDep, response: Response) -> dict[str, Any]:
    """The ministry's public keys (JWKS, RFC 7517; Ed25519, RFC 8037): the current signing
    key first, then earlier ones still accepted. No token needed; verify offline with it."""
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return _keys(svc).jwks()


@router.get("/revocations", response_model=RevocationList, responses={304: {}})
async def revocation_list(
    svc: ServiceDep,
    response: Response,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    """Every revoked credential id (with when), oldest first. No token needed. Its ETag
    changes only when the list does: `If-None-Match` answers 304."""
    async with svc.sessions() as session:
        revoked = await service.revocations(session)
    body = RevocationList(
        issuer=svc.settings.credential_issuer,
        revoked=[RevokedEntry(id=i, revoked_at=at) for i, at in revoked],
    )
    etag = '"' + hashlib.sha256(body.model_dump_json().encode()).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=60"}
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return body


@router.get(
    "/revocations.jwt",
    response_class=Response,
    responses={200: {"content": {"application/jwt": {}}}},
)
async def signed_revocation_list(svc: ServiceDep) -> Response:
    """The revocation list as a token signed by the current key (claims `iss`, `iat`,
    `revoked`: the ids), so that an offline verifier can trust a copy it was handed."""
    keys = _keys(svc)
    async with svc.sessions() as session:
        revoked = await service.revocations(session)
    token = keys.sign(
        {
            "iss": svc.settings.credential_issuer,
            "iat": int(now().timestamp()),
            "revoked": [str(i) for i, _ in revoked],
        },
        typ="revocation-list+jwt",
    )
    return Response(token, media_type="application/jwt", headers={"Cache-Control": "no-cache"})


async def _verify(svc: Consular, token: str) -> Verification:
    """Offline rules (domain.verify with the published keys), then this service's own
    register: a revoked id is revoked; a signed id the register never issued is forged."""
    jwks_json = _keys(svc).jwks()
    issuer = svc.settings.credential_issuer
    verdict = domain.verify(token, jwks_json, issuer=issuer)
    credential_id = verdict.credential_id
    if credential_id is not None:
        async with svc.sessions() as session:
            known, revoked = await service.status_of(session, credential_id)
        if not known:
            verdict = domain.Verdict("forged", "not in the ministry's register", None, verdict.kid)
        elif revoked:
            verdict = domain.verify(token, jwks_json, issuer=issuer, revoked={credential_id})
    found = verdict.claims or {}
    return Verification(
        status=verdict.status,
        reason=verdict.reason,
        kid=verdict.kid,
        credential_id=found.get("jti"),
        credential_type=found.get("credential_type"),
        issuing_embassy=found.get("issuing_embassy"),
        application_reference=found.get("application_reference"),
        holder=found.get("holder"),
        issued_at=datetime.fromtimestamp(found["iat"], UTC) if "iat" in found else None,
        expires_at=datetime.fromtimestamp(found["exp"], UTC) if "exp" in found else None,
    )


@router.post("/verify", response_model=Verification)
async def verify(body: VerificationRequest, svc: ServiceDep, response: Response) -> Verification:
    """Is this token (read from a QR code) a genuine credential? `valid`, `revoked`,
    `forged` (bad signature, unknown key, altered payload, not issued) or `expired`.
    No token needed."""
    response.headers["Cache-Control"] = "no-store"
    return await _verify(svc, body.token)


STATUS_TEXT = {
    "valid": ("VALIDE", "VALID", "#1b7a2f"),
    "revoked": ("RÉVOQUÉ", "REVOKED", "#b36b00"),
    "forged": ("FALSIFIÉ", "FORGED", "#b00020"),
    "expired": ("EXPIRÉ", "EXPIRED", "#555555"),
}

PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vérifier un document consulaire / Verify a consular document</title>
<style>body{{font-family:sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}
textarea{{width:100%;height:8rem}} .verdict{{color:#fff;padding:1rem;font-size:1.4rem}}
dt{{font-weight:bold}}</style></head><body>
<h1>Vérifier un document consulaire<br><small>Verify a consular document</small></h1>
{result}
<form method="get" action="">
<label for="token">Code lu sur le QR / Code read from the QR</label>
<textarea id="token" name="token" maxlength="{max}" required>{token}</textarea>
<p><button type="submit">Vérifier / Verify</button></p></form>
<p>Hors ligne : la clé publique du ministère est publiée à <a href="jwks.json">jwks.json</a>,
la liste des révocations à <a href="revocations">revocations</a>.<br>
Offline: the ministry's public key is at <a href="jwks.json">jwks.json</a>, the revocation
list at <a href="revocations">revocations</a>.</p>
</body></html>"""


def _result_html(result: Verification) -> str:
    fr, en, colour = STATUS_TEXT[result.status]
    rows = [("Motif / Reason", result.reason)]
    if result.holder:
        name = f"{result.holder.get('given_name', '')} {result.holder.get('family_name', '')}"
        rows.append(("Titulaire / Holder", name))
        for key, label in (
            ("date_of_birth", "Date de naissance / Date of birth"),
            ("passport_number", "Passeport / Passport"),
            ("nationality", "Nationalité / Nationality"),
        ):
            if result.holder.get(key):
                rows.append((label, str(result.holder[key])))
    for label, value in (
        ("Type", result.credential_type),
        ("Délivré par / Issued by", result.issuing_embassy),
        ("Référence / Reference", result.application_reference),
        (
            "Expire le / Expires",
            result.expires_at.date().isoformat() if result.expires_at else None,
        ),
        ("Identifiant / Id", result.credential_id),
    ):
        if value:
            rows.append((label, value))
    listed = "".join(
        f"<dt>{html.escape(label)}</dt><dd>{html.escape(value)}</dd>" for label, value in rows
    )
    return (
        f'<p class="verdict" id="status" data-status="{result.status}" '
        f'style="background:{colour}">{fr} / {en}</p><dl>{listed}</dl>'
    )


@router.get("/verify", response_class=HTMLResponse)
async def verification_page(
    svc: ServiceDep,
    token: Annotated[str | None, Query(max_length=TOKEN_MAX, pattern=PASTED_TOKEN_PATTERN)] = None,
) -> HTMLResponse:
    """A page to paste (or link with `?token=`) the code of a QR and see the verdict.
    No token needed, no script: the answer is in the page."""
    result = ""
    if token is not None and token.strip():
        result = _result_html(await _verify(svc, token.strip()))
    page = PAGE.format(result=result, token=html.escape(token or ""), max=TOKEN_MAX)
    return HTMLResponse(
        page,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                "frame-ancestors 'none'; base-uri 'none'"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


# --- with a token: the holder's and the embassy's ---------------------------------------


@router.get("", response_model=CredentialList, responses=AUTH_RESPONSES)
async def list_credentials(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    application_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CredentialList:
    """A holder's credentials; an embassy's (officers); all (coordinators, admins).
    Filter: `application_id`."""
    decision = identity.policy.decide(principal, RESOURCE, "read")
    async with svc.sessions() as session, session.begin():
        rows = await service.search(
            session,
            decision.where(service.SCOPE_COLUMNS),
            application_id=application_id,
            limit=limit,
            offset=offset,
        )
        await _audit(svc, session, decision, request, rows, VIEW_FIELDS, action="list")
    return CredentialList(items=[_view(principal, r) for r in rows])


@router.get(
    "/{credential_id}",
    response_model=CredentialView,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def get_credential(
    credential_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> CredentialView:
    """A credential's metadata (no token, no holder data: download them)."""
    decision = identity.policy.decide(principal, RESOURCE, "read")
    async with svc.sessions() as session, session.begin():
        row = await _load(svc, session, decision, credential_id)
        await _audit(svc, session, decision, request, [row], VIEW_FIELDS)
    return _view(principal, row)


@router.get(
    "/{credential_id}/token",
    response_class=Response,
    responses={**AUTH_RESPONSES, **NOT_FOUND, 200: {"content": {"application/jwt": {}}}},
)
async def download_token(
    credential_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> Response:
    """The signed token (what the QR code carries): the holder and the issuing embassy's
    officers only."""
    decision = identity.policy.decide(principal, RESOURCE, "download")
    async with svc.sessions() as session, session.begin():
        row = await _load(svc, session, decision, credential_id)
        await _audit(svc, session, decision, request, [row], ["token"], action="download")
    return Response(
        row["token"], media_type="application/jwt", headers={"Cache-Control": "no-store"}
    )


@router.get(
    "/{credential_id}/document.pdf",
    response_class=Response,
    responses={**AUTH_RESPONSES, **NOT_FOUND, 200: {"content": {"application/pdf": {}}}},
)
async def download_pdf(
    credential_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> Response:
    """The printable credential (PDF with the holder's data and the QR code): the holder
    and the issuing embassy's officers only (anyone else: 404)."""
    decision = identity.policy.decide(principal, RESOURCE, "download")
    async with svc.sessions() as session, session.begin():
        row = await _load(svc, session, decision, credential_id)
        await _audit(svc, session, decision, request, [row], ["holder", "token"], action="download")
    pdf = render_pdf(service.printed(row))
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="credential-{row["id"]}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/{credential_id}/revocation",
    response_model=CredentialView,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        409: {"description": "Already revoked"},
        422: {"description": "No reason given"},
    },
)
async def revoke_credential(
    credential_id: UUID,
    body: RevocationRequest,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> CredentialView:
    """Revoke a credential (officers of the issuing embassy, admins), with a reason: it is
    on the public revocation list at once, audited, and `consular.credential.revoked` is
    published."""
    decision = identity.policy.decide(principal, RESOURCE, "revoke")
    async with svc.sessions() as session, session.begin():
        row = await _load(svc, session, decision, credential_id, lock=True)
        try:
            changed = await service.revoke(
                session,
                svc.outbox,
                row,
                reason=body.reason,
                actor_subject=principal.subject,
                actor_role=",".join(decision.roles),
                now=now(),
            )
        except service.AlreadyRevoked:
            raise Problem(
                409, "Already revoked", detail=f"Revoked on {row['revoked_at'].isoformat()}."
            ) from None
        await _audit(
            svc, session, decision, request, [changed], ["revocation_reason"], action="revoke"
        )
    return _view(principal, changed)

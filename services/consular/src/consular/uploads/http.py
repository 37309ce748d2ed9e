"""HTTP interface of uploaded documents: those of an application (the catalogue's
required documents) and the attachments of a difficulty report.

- ``POST /applications/{id}/documents`` (multipart: ``file``, ``kind``): the applicant,
  while the application is a draft or information is requested. ``kind`` is one of the
  required-document codes of the application's catalogue version.
- ``POST /reports/{id}/documents`` (multipart: ``file``): the reporter, or the focal
  points of the report's embassy (and the ministry's coordinators), until it is closed.
- ``GET .../documents``: the list; ``GET .../documents/{document_id}``: the bytes, after
  the authorization check (the person, officers of the case's embassy, the ministry's
  coordinators; anyone else 404), never a storage URL. Staff reads are audited.
- ``DELETE /applications/{id}/documents/{document_id}``: the applicant, while a draft.

Every upload is authorized from its headers before its body is read (``UPLOADS``, run by
``diaspora_service.uploads.UploadGuard``) and checked by content, size, pages and pixels
(``diaspora_documents.checks``) before anything is stored: 413, 415 or 422 problems.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import StreamingResponse
from starlette.requests import Request as StarletteRequest

from consular.applications import service as applications
from consular.catalogue import service as catalogue
from consular.deps import IdentityDep, ServiceDep
from consular.documents import service as documents
from consular.problems import invalid, not_found
from consular.reports import service as reports
from consular.resources import Consular
from consular.uploads.schemas import DocumentList, DocumentView
from diaspora_documents.checks import UploadLimits, UploadRefused, checked_upload, read_chunks
from diaspora_documents.problems import UPLOAD_RESPONSES, store_problem, upload_problem
from diaspora_documents.store import ObjectNotFound, ObjectStore, StoreUnavailable
from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal, authenticate, forbidden
from diaspora_identity.policy import Decision, Forbidden
from diaspora_identity.principal import Principal, Role
from diaspora_service.problems import TYPE_BASE, Problem
from diaspora_service.uploads import UploadRoute

router = APIRouter(tags=["documents"])

APPLICATION = "consular_application"
REPORT = "consular_report"
APPLICATION_DOCUMENTS = "/applications/{application_id}/documents"
REPORT_DOCUMENTS = "/reports/{report_id}/documents"
# Statuses in which the applicant adds documents; deletes them only in a draft.
UPLOAD_STATUSES = ("draft", "information_requested")
AUDITED_FIELDS = ["documents"]
# Multipart framing around the file (boundaries, headers, the kind field).
MULTIPART_OVERHEAD = 64 * 1024
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such case or document"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not possible in the case's status, or the case has all it may hold"}
}
STORE_DOWN: dict[int | str, dict[str, Any]] = {
    503: {"description": "The document store did not answer; nothing was stored"}
}


def now() -> datetime:
    return datetime.now(UTC)


def limits(svc: Consular) -> UploadLimits:
    settings = svc.settings.document_limits
    return UploadLimits(
        max_bytes=settings.max_bytes,
        max_pdf_pages=settings.max_pdf_pages,
        max_image_pixels=settings.max_image_pixels,
    )


async def _store(svc: Consular) -> ObjectStore:
    if svc.documents is None:
        raise Problem(503, "The document store is not configured")
    try:
        return await svc.documents.get()
    except StoreUnavailable as error:
        raise store_problem(error) from None


def _view(row: dict[str, Any], *, staff: bool) -> DocumentView:
    return DocumentView(
        id=row["id"],
        kind=row["kind"],
        filename=row["filename"],
        content_type=row["content_type"],
        size=row["size"],
        sha256=row["sha256"],
        uploaded_by_role=row["uploaded_by_role"],
        uploaded_by=row["uploaded_by"] if staff else None,
        uploaded_at=row["uploaded_at"],
    )


def _status_conflict(title: str, detail: str, status_now: str) -> Problem:
    return Problem(
        409,
        title,
        detail=detail,
        type_=TYPE_BASE + "documents-not-accepted",
        status_now=status_now,
    )


def _too_many(limit: int) -> Problem:
    return Problem(
        409,
        "Too many documents",
        detail=f"A case holds at most {limit} documents.",
        type_=TYPE_BASE + "too-many-documents",
        limit=limit,
    )


def _clean_name(filename: str | None) -> str | None:
    if not filename:
        return None
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable())[:200]
    return name or None


async def _receive(
    svc: Consular, store: ObjectStore, file: UploadFile, key: str
) -> tuple[Any, str | None]:
    """Check the upload, then store it: (what the store kept, the name given)."""
    filename = _clean_name(file.filename)
    try:
        async with checked_upload(
            read_chunks(file),
            filename=filename,
            content_type=file.content_type,
            limits=limits(svc),
            spool_dir=svc.settings.document_spool_dir,
        ) as checked:
            stored = await store.put(
                key, checked.chunks(), content_type=checked.content_type, sha256=checked.sha256
            )
    except UploadRefused as refusal:
        raise upload_problem(refusal) from None
    except StoreUnavailable as error:
        raise store_problem(error) from None
    return stored, filename


async def _download(store: ObjectStore, row: dict[str, Any]) -> StreamingResponse:
    try:
        stream = await store.get(row["storage_key"])
    except ObjectNotFound:
        raise not_found("document") from None
    except StoreUnavailable as error:
        raise store_problem(error) from None

    async def body() -> AsyncIterator[bytes]:
        async with stream:
            async for chunk in stream:
                yield chunk

    return StreamingResponse(
        body(),
        media_type=row["content_type"],
        headers={
            "Content-Disposition": "attachment",
            "Content-Length": str(stream.info.size),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


async def _audit(
    svc: Consular,
    session: Any,
    decision: Decision,
    request: Request,
    record_id: UUID,
    *,
    action: str,
) -> None:
    await svc.audit.record(
        session, decision, AccessContext.of(request), [(record_id, AUDITED_FIELDS)], action=action
    )


# --- applications -----------------------------------------------------------------------


def _application_where(decision: Decision, principal: Principal) -> Any:
    return applications.visible(
        decision.where(applications.SCOPE_COLUMNS), principal.member_id, principal.subject
    )


def _is_applicant(principal: Principal, row: dict[str, Any]) -> bool:
    return row["applicant_subject"] == principal.subject or (
        principal.member_id is not None and row["applicant_id"] == principal.member_id
    )


async def _apply_decision(
    identity: Any, principal: Principal, application_id: UUID, svc: Consular
) -> tuple[Decision, dict[str, Any]]:
    decision: Decision = identity.policy.decide(principal, APPLICATION, "apply")
    async with svc.sessions() as session, session.begin():
        row = await applications.load(
            session, application_id, _application_where(decision, principal)
        )
    if row is None:
        raise not_found("application")
    return decision, row


@router.post(
    APPLICATION_DOCUMENTS,
    status_code=201,
    response_model=DocumentView,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **CONFLICT, **UPLOAD_RESPONSES, **STORE_DOWN},
)
async def upload_application_document(
    application_id: UUID,
    file: Annotated[UploadFile, File(description="A PDF, JPEG or PNG.")],
    kind: Annotated[
        str,
        Form(
            max_length=64,
            pattern=r"^[a-z][a-z0-9_]*$",
            description="The catalogue's required-document code, e.g. `photo`.",
        ),
    ],
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
) -> DocumentView:
    """Add a document to your application (a draft, or when information is requested)."""
    _decision, row = await _apply_decision(identity, principal, application_id, svc)
    if row["status"] not in UPLOAD_STATUSES:
        raise _status_conflict(
            "The application takes no documents now",
            "Documents are added to a draft or when information is requested.",
            row["status"],
        )
    async with svc.sessions() as session, session.begin():
        version = await catalogue.by_id(session, row["service_version_id"])
    codes = [d.code for d in version.definition.required_documents]
    if kind not in codes:
        raise invalid(
            "Unknown document kind",
            [
                {
                    "field": "kind",
                    "message": "is not a document of this service: " + ", ".join(codes),
                    "code": "unknown",
                }
            ],
        )
    store = await _store(svc)
    document_id, key = documents.new_key("application", application_id)
    stored, filename = await _receive(svc, store, file, key)
    try:
        async with svc.sessions() as session, session.begin():
            locked = await applications.load(
                session, application_id, _application_where(_decision, principal), lock=True
            )
            if locked is None:
                raise not_found("application")
            if locked["status"] not in UPLOAD_STATUSES:
                raise _status_conflict(
                    "The application takes no documents now",
                    "The application changed status while the document was sent.",
                    locked["status"],
                )
            if await documents.count(session, "application", application_id) >= (
                svc.settings.documents_per_case
            ):
                raise _too_many(svc.settings.documents_per_case)
            saved = await documents.record(
                session,
                document_id=document_id,
                owner="application",
                owner_id=application_id,
                member_id=locked["applicant_id"],
                kind=kind,
                filename=filename,
                stored=stored,
                uploader=documents.Uploader(principal.subject, "applicant"),
                now=now(),
            )
    except BaseException:
        await documents.discard(store, key)
        raise
    return _view(saved, staff=False)


async def _readable_application(
    identity: Any,
    principal: Principal,
    svc: Consular,
    session: Any,
    application_id: UUID,
    action: str,
) -> tuple[Decision, dict[str, Any]]:
    decision: Decision = identity.policy.decide(principal, APPLICATION, action)
    row = await applications.load(session, application_id, _application_where(decision, principal))
    if row is None:
        raise not_found("application")
    return decision, row


@router.get(
    APPLICATION_DOCUMENTS,
    response_model=DocumentList,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def list_application_documents(
    application_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> DocumentList:
    """The application's documents (the applicant, its embassy's officers, coordinators)."""
    async with svc.sessions() as session, session.begin():
        decision, row = await _readable_application(
            identity, principal, svc, session, application_id, "read"
        )
        rows = await documents.listing(session, "application", application_id)
        staff = principal.is_staff and not _is_applicant(principal, row)
        if staff:
            await _audit(
                svc, session, decision, request, row["applicant_id"] or row["id"], action="list"
            )
    return DocumentList(items=[_view(r, staff=staff) for r in rows])


@router.get(
    APPLICATION_DOCUMENTS + "/{document_id}",
    response_class=StreamingResponse,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        200: {
            "description": "The document's bytes (PDF, JPEG or PNG)",
            "content": {
                "application/pdf": {},
                "image/jpeg": {},
                "image/png": {},
            },
        },
    },
)
async def download_application_document(
    application_id: UUID,
    document_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> StreamingResponse:
    """The document itself: to the applicant, the officers of the application's embassy
    and the ministry's coordinators (anyone else: 404). Staff downloads are audited."""
    async with svc.sessions() as session, session.begin():
        decision, row = await _readable_application(
            identity, principal, svc, session, application_id, "download"
        )
        found = await documents.find(session, "application", application_id, document_id)
        if found is None:
            raise not_found("document")
        if principal.is_staff and not _is_applicant(principal, row):
            await _audit(
                svc, session, decision, request, row["applicant_id"] or row["id"], action="download"
            )
    return await _download(await _store(svc), found)


@router.delete(
    APPLICATION_DOCUMENTS + "/{document_id}",
    status_code=204,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **CONFLICT},
)
async def delete_application_document(
    application_id: UUID,
    document_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
) -> Response:
    """Remove a document from your draft (its stored bytes too)."""
    decision: Decision = identity.policy.decide(principal, APPLICATION, "apply")
    store = await _store(svc)
    async with svc.sessions() as session, session.begin():
        row = await applications.load(
            session, application_id, _application_where(decision, principal), lock=True
        )
        if row is None:
            raise not_found("application")
        found = await documents.find(session, "application", application_id, document_id)
        if found is None:
            raise not_found("document")
        if row["status"] != "draft":
            raise _status_conflict(
                "The document cannot be removed now",
                "Documents are removed from a draft only; once submitted they are the "
                "embassy's file.",
                row["status"],
            )
        await documents.remove(session, store, found)
    return Response(status_code=204)


# --- difficulty reports -----------------------------------------------------------------


def _is_reporter(principal: Principal, row: dict[str, Any]) -> bool:
    return (
        row["reporter_subject"] is not None and row["reporter_subject"] == principal.subject
    ) or (principal.member_id is not None and row["reporter_id"] == principal.member_id)


def _report_action(principal: Principal) -> tuple[str, str]:
    """(policy action, uploader role): the reporter follows, the staff handles."""
    if principal.is_staff:
        role = "embassy_officer" if principal.has(Role.EMBASSY_OFFICER) else "ministry_coordinator"
        return "handle", role
    return "follow", "reporter"


async def _load_report(
    svc: Consular, session: Any, decision: Decision, report_id: UUID, *, lock: bool = False
) -> dict[str, Any]:
    row = await reports.load(session, report_id, decision.where(reports.SCOPE_COLUMNS), lock=lock)
    if row is None:
        raise not_found("report")
    return row


@router.post(
    REPORT_DOCUMENTS,
    status_code=201,
    response_model=DocumentView,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **CONFLICT, **UPLOAD_RESPONSES, **STORE_DOWN},
)
async def upload_report_document(
    report_id: UUID,
    file: Annotated[UploadFile, File(description="A PDF, JPEG or PNG.")],
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> DocumentView:
    """Attach a document to a difficulty report: the reporter, or the focal point (and
    the ministry) on their behalf; until the report is closed."""
    action, role = _report_action(principal)
    decision: Decision = identity.policy.decide(principal, REPORT, action)
    async with svc.sessions() as session, session.begin():
        row = await _load_report(svc, session, decision, report_id)
    if row["status"] == "closed":
        raise _status_conflict(
            "The report is closed", "A closed report takes no more documents.", "closed"
        )
    store = await _store(svc)
    document_id, key = documents.new_key("report", report_id)
    stored, filename = await _receive(svc, store, file, key)
    try:
        async with svc.sessions() as session, session.begin():
            locked = await _load_report(svc, session, decision, report_id, lock=True)
            if locked["status"] == "closed":
                raise _status_conflict(
                    "The report is closed", "A closed report takes no more documents.", "closed"
                )
            if await documents.count(session, "report", report_id) >= (
                svc.settings.documents_per_case
            ):
                raise _too_many(svc.settings.documents_per_case)
            saved = await documents.record(
                session,
                document_id=document_id,
                owner="report",
                owner_id=report_id,
                member_id=locked["reporter_id"],
                kind=documents.ATTACHMENT,
                filename=filename,
                stored=stored,
                uploader=documents.Uploader(principal.subject, role),
                now=now(),
            )
            staff = principal.is_staff and not _is_reporter(principal, locked)
            if staff:
                await _audit(
                    svc,
                    session,
                    decision,
                    request,
                    locked["reporter_id"] or locked["id"],
                    action="attach",
                )
    except BaseException:
        await documents.discard(store, key)
        raise
    return _view(saved, staff=staff)


async def _readable_report(
    identity: Any,
    principal: Principal,
    svc: Consular,
    session: Any,
    report_id: UUID,
    action: str = "read",
) -> tuple[Decision, dict[str, Any]]:
    decision: Decision = identity.policy.decide(principal, REPORT, action)
    return decision, await _load_report(svc, session, decision, report_id)


@router.get(
    REPORT_DOCUMENTS,
    response_model=DocumentList,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def list_report_documents(
    report_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> DocumentList:
    """The report's attachments (the reporter, the focal points, coordinators)."""
    async with svc.sessions() as session, session.begin():
        decision, row = await _readable_report(identity, principal, svc, session, report_id)
        rows = await documents.listing(session, "report", report_id)
        staff = principal.is_staff and not _is_reporter(principal, row)
        if staff:
            await _audit(
                svc, session, decision, request, row["reporter_id"] or row["id"], action="list"
            )
    return DocumentList(items=[_view(r, staff=staff) for r in rows])


@router.get(
    REPORT_DOCUMENTS + "/{document_id}",
    response_class=StreamingResponse,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        200: {
            "description": "The document's bytes (PDF, JPEG or PNG)",
            "content": {"application/pdf": {}, "image/jpeg": {}, "image/png": {}},
        },
    },
)
async def download_report_document(
    report_id: UUID,
    document_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> StreamingResponse:
    """An attachment itself: the reporter, the focal points of the report's embassy, the
    ministry's coordinators (anyone else: 404). Staff downloads are audited."""
    async with svc.sessions() as session, session.begin():
        decision, row = await _readable_report(
            identity, principal, svc, session, report_id, "download"
        )
        found = await documents.find(session, "report", report_id, document_id)
        if found is None:
            raise not_found("document")
        if principal.is_staff and not _is_reporter(principal, row):
            await _audit(
                svc, session, decision, request, row["reporter_id"] or row["id"], action="download"
            )
    return await _download(await _store(svc), found)


# --- authorized before the body is read -------------------------------------------------


def _authorizer(resource: str, actions: tuple[str, ...]) -> Any:
    """The token verified (401) and one of ``actions`` granted (403), from the headers."""

    async def authorize(request: StarletteRequest) -> None:
        principal = await authenticate(request)
        policy = request.app.state.identity.policy
        refusal: Forbidden | None = None
        for action in actions:
            try:
                policy.decide(principal, resource, action)
                return
            except Forbidden as error:
                refusal = refusal or error
        assert refusal is not None
        raise forbidden(refusal)

    return authorize


def upload_routes(max_bytes: int) -> list[UploadRoute]:
    """The upload routes for ``create_app(uploads=...)`` (the body capped a little above a
    document's limit: the multipart framing)."""
    cap = max_bytes + MULTIPART_OVERHEAD
    return [
        UploadRoute("POST", APPLICATION_DOCUMENTS, _authorizer(APPLICATION, ("apply",)), cap),
        UploadRoute("POST", REPORT_DOCUMENTS, _authorizer(REPORT, ("follow", "handle")), cap),
    ]

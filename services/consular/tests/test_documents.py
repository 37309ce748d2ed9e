"""Uploaded documents of applications and difficulty reports, on the real PostgreSQL and
Kafka and the local store (one round trip through a real S3-compatible server,
SeaweedFS): checked before anything is stored (415 renamed executable, 413 oversized
bytes, pixels or pages), downloaded only after the authorization check (another
embassy's officer 404), staff downloads in the audit trail, submit refused without the
catalogue's required documents (named), deletion in a draft, erasure of a member's
documents."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from consular_testing import (
    answers_for,
    known_applicant,
    new_member_id,
    profile,
    upload_document,
    upload_required_documents,
)
from sqlalchemy import func, select

from consular.bootstrap import bootstrap
from consular.documents import service as documents
from consular.documents.tables import documents as documents_table
from consular.entrypoints.http import build_app
from consular.resources import Consular
from consular.settings import ConsularSettings, DocumentLimitSettings
from consular.tables import audit_log
from diaspora_devstack.testing import serve_app
from diaspora_documents import testing as samples
from diaspora_documents.settings import S3Settings, StoreSettings
from diaspora_identity.testing import LocalIssuer, citizen, coordinator, officer

pytestmark = pytest.mark.integration

CARD_DOCUMENTS = ["identity_document", "photo", "proof_of_residence"]


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


async def draft_of(
    consular: Consular, http: httpx.AsyncClient, issuer: LocalIssuer, service_type: str
) -> tuple[dict[str, str], str, UUID]:
    """A verified applicant of Paris and their draft: (headers, application id, member)."""
    member_id = new_member_id()
    await known_applicant(consular, member_id, profile(verified=True))
    headers = issuer.headers(citizen(member_id=member_id, subject=f"citizen-{member_id}"))
    draft = ok(
        await http.post(
            "/applications",
            json={"service_type": service_type, "answers": answers_for(service_type)},
            headers=headers,
        ),
        201,
    )
    return headers, draft["id"], member_id


async def act(
    http: httpx.AsyncClient, headers: dict[str, str], app_id: str, action: str, **body: Any
) -> httpx.Response:
    return await http.post(
        f"/applications/{app_id}/transitions", json={"action": action, **body}, headers=headers
    )


async def stored_rows(consular: Consular) -> int:
    async with consular.sessions() as session:
        return int(
            (await session.execute(select(func.count()).select_from(documents_table))).scalar_one()
        )


def stored_files(root: Path) -> list[Path]:
    return [p for p in (root / "objects").rglob("*") if p.is_file()] if root.exists() else []


async def test_an_applicant_uploads_and_downloads_and_only_the_embassy_sees_it(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    me, app_id, member_id = await draft_of(consular, http, identity_provider, "consular_card")
    subject = f"citizen-{member_id}"
    photo = samples.image("jpeg", 600, 800)
    uploaded = ok(
        await upload_document(
            http,
            me,
            f"/applications/{app_id}/documents",
            photo,
            filename="photo.jpg",
            content_type="image/jpeg",
            kind="photo",
        ),
        201,
    )
    assert uploaded["kind"] == "photo"
    assert uploaded["content_type"] == "image/jpeg"
    assert uploaded["size"] == len(photo)
    assert uploaded["sha256"] == hashlib.sha256(photo).hexdigest()
    assert uploaded["filename"] == "photo.jpg"
    assert uploaded["uploaded_by_role"] == "applicant"
    # The row: the catalogue's code, the storage key, who uploaded it.
    async with consular.sessions() as session:
        row = (
            (
                await session.execute(
                    select(documents_table).where(documents_table.c.id == UUID(uploaded["id"]))
                )
            )
            .mappings()
            .one()
        )
    assert row["application_id"] == UUID(app_id)
    assert row["member_id"] == member_id
    assert row["storage_key"] == f"applications/{app_id}/{uploaded['id']}"
    assert row["uploaded_by"] == subject
    assert row["uploaded_by_role"] == "applicant"
    assert row["uploaded_at"] is not None

    path = f"/applications/{app_id}/documents/{uploaded['id']}"
    back = await http.get(path, headers=me)
    assert back.status_code == 200, back.text
    assert back.content == photo
    assert back.headers["content-type"] == "image/jpeg"
    assert back.headers["x-content-type-options"] == "nosniff"
    assert back.headers["content-disposition"] == "attachment"
    listed = ok(await http.get(f"/applications/{app_id}/documents", headers=me))
    assert [d["id"] for d in listed["items"]] == [uploaded["id"]]

    # Submitted: the embassy's officers read it, audited in the person's access log.
    await upload_required_documents(http, me, app_id, "consular_card")
    ok(await act(http, me, app_id, "submit"))
    paris = identity_provider.headers(officer("fr-paris"))
    seen = await http.get(path, headers=paris)
    assert seen.status_code == 200
    assert seen.content == photo
    async with consular.sessions() as session:
        entries = (
            (
                await session.execute(
                    select(audit_log).where(
                        audit_log.c.record_id == member_id, audit_log.c.action == "download"
                    )
                )
            )
            .mappings()
            .all()
        )
    assert len(entries) == 1
    assert entries[0]["resource"] == "consular_application"
    assert entries[0]["fields"] == ["documents"]
    ministry = identity_provider.headers(coordinator())
    assert (await http.get(path, headers=ministry)).content == photo

    # Another embassy, another citizen: as if it did not exist.
    berlin = identity_provider.headers(officer("de-berlin"))
    stranger = identity_provider.headers(citizen(member_id=new_member_id()))
    for outsider in (berlin, stranger):
        assert (await http.get(path, headers=outsider)).status_code == 404
        assert (
            await http.get(f"/applications/{app_id}/documents", headers=outsider)
        ).status_code == 404
    # No token: 401; the bytes never leave without the check.
    assert (await http.get(path)).status_code == 401


@pytest.mark.parametrize(
    ("filename", "data", "content_type", "status", "code"),
    [
        ("photo.jpg", samples.PE, "image/jpeg", 415, "executable"),
        ("scan.pdf", samples.ELF, "application/pdf", 415, "executable"),
        ("photo.png", samples.png_claiming(20_000, 20_000), "image/png", 413, "pixels"),
        (
            "photo.jpg",
            samples.image("jpeg", 64, 64) + b"\0" * (256 * 1024),
            "image/jpeg",
            413,
            "bytes",
        ),
        ("scan.pdf", samples.pdf(6), "application/pdf", 413, "pages"),
    ],
    ids=["renamed executable", "elf as pdf", "pixel bomb", "oversized image", "too many pages"],
)
async def test_a_bad_file_is_refused_before_anything_is_stored(
    make_settings: Any,
    identity_provider: LocalIssuer,
    tmp_path: Path,
    filename: str,
    data: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    limits = DocumentLimitSettings(
        max_bytes=256 * 1024, max_pdf_pages=5, max_image_pixels=20_000_000
    )
    service = bootstrap(make_settings(document_limits=limits))
    try:
        async with (
            serve_app(build_app(service)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            me, app_id, _ = await draft_of(service, http, identity_provider, "consular_card")
            answer = await upload_document(
                http,
                me,
                f"/applications/{app_id}/documents",
                data,
                filename=filename,
                content_type=content_type,
                kind="photo",
            )
            assert answer.status_code == status, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == code
            assert await stored_rows(service) == 0
            assert stored_files(tmp_path / "documents") == []
            # A good file then goes in (the refusal left nothing half done).
            good = await upload_document(
                http, me, f"/applications/{app_id}/documents", samples.pdf(1), kind="photo"
            )
            assert good.status_code == 201, good.text
            assert len(stored_files(tmp_path / "documents")) == 1
    finally:
        await service.close()


async def test_an_upload_is_refused_from_its_headers_before_its_body_is_read(
    make_settings: Any, identity_provider: LocalIssuer
) -> None:
    limits = DocumentLimitSettings(max_bytes=64 * 1024)
    service = bootstrap(make_settings(document_limits=limits))
    try:
        async with (
            serve_app(build_app(service)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            me, app_id, _ = await draft_of(service, http, identity_provider, "consular_card")
            # Over the limit and the multipart framing (but under what the server drains
            # after refusing, so that the client reads the answer).
            big = samples.pdf(1) + b"%" * (600 * 1024)
            path = f"/applications/{app_id}/documents"
            refused = await upload_document(http, {}, path, big, kind="photo")
            assert refused.status_code == 401, refused.text
            officer_headers = identity_provider.headers(officer("fr-paris"))
            forbidden = await upload_document(http, officer_headers, path, big, kind="photo")
            assert forbidden.status_code == 403, forbidden.text
            too_large = await upload_document(http, me, path, big, kind="photo")
            assert too_large.status_code == 413, too_large.text
            assert too_large.headers["content-type"] == "application/problem+json"
            assert await stored_rows(service) == 0
    finally:
        await service.close()


async def test_submit_names_the_missing_documents_and_resubmit_after_upload_passes(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    me, app_id, _ = await draft_of(consular, http, identity_provider, "consular_card")
    refused = await act(http, me, app_id, "submit")
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["type"].endswith("/documents-missing")
    assert problem["missing"] == CARD_DOCUMENTS
    assert [e["field"] for e in problem["errors"]] == [f"documents.{c}" for c in CARD_DOCUMENTS]

    documents_path = f"/applications/{app_id}/documents"
    ok(await upload_document(http, me, documents_path, samples.pdf(1), kind="photo"), 201)
    refused = await act(http, me, app_id, "submit")
    assert refused.json()["missing"] == ["identity_document", "proof_of_residence"]
    # A kind the service does not ask for is refused, naming the field.
    unknown = await upload_document(http, me, documents_path, samples.pdf(1), kind="diploma")
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "kind"
    for kind in ("identity_document", "proof_of_residence"):
        ok(await upload_document(http, me, documents_path, samples.pdf(2), kind=kind), 201)
    assert ok(await act(http, me, app_id, "submit"))["status"] == "submitted"
    # Submitted: no more uploads until information is requested.
    late = await upload_document(http, me, documents_path, samples.pdf(1), kind="photo")
    assert late.status_code == 409
    assert late.json()["status_now"] == "submitted"

    paris = identity_provider.headers(officer("fr-paris"))
    ok(await act(http, paris, app_id, "request_information", reason="Photo floue."))
    ok(
        await upload_document(
            http,
            me,
            documents_path,
            samples.image("png", 300, 400),
            filename="photo.png",
            content_type="image/png",
            kind="photo",
        ),
        201,
    )
    assert ok(await act(http, me, app_id, "resubmit"))["status"] == "resubmitted"
    kinds = [d["kind"] for d in ok(await http.get(documents_path, headers=paris))["items"]]
    assert sorted(kinds) == ["identity_document", "photo", "photo", "proof_of_residence"]


async def test_the_owner_deletes_a_document_of_a_draft_only(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer, tmp_path: Path
) -> None:
    me, app_id, _ = await draft_of(consular, http, identity_provider, "passport_preparation")
    uploaded = await upload_required_documents(http, me, app_id, "passport_preparation")
    path = f"/applications/{app_id}/documents/{uploaded[0]['id']}"
    files_before = len(stored_files(tmp_path / "documents"))
    stranger = identity_provider.headers(citizen(member_id=new_member_id()))
    assert (await http.delete(path, headers=stranger)).status_code == 404
    assert (await http.delete(path, headers=me)).status_code == 204
    assert (await http.get(path, headers=me)).status_code == 404
    assert len(stored_files(tmp_path / "documents")) == files_before - 1
    # The kind is missing again.
    refused = await act(http, me, app_id, "submit")
    assert refused.json()["missing"] == [uploaded[0]["kind"]]
    await upload_required_documents(http, me, app_id, "passport_preparation")
    ok(await act(http, me, app_id, "submit"))
    kept = ok(await http.get(f"/applications/{app_id}/documents", headers=me))["items"][0]
    refused_delete = await http.delete(f"/applications/{app_id}/documents/{kept['id']}", headers=me)
    assert refused_delete.status_code == 409


async def test_report_attachments_go_both_ways_and_stay_in_the_embassy(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    member_id = new_member_id()
    me = identity_provider.headers(citizen(member_id=member_id))
    report = ok(
        await http.post(
            "/reports",
            json={"category": "detention", "country": "FR", "description": "Arrested at work."},
            headers=me,
        ),
        201,
    )
    path = f"/reports/{report['id']}/documents"
    notice = samples.pdf(2)
    mine = ok(await upload_document(http, me, path, notice, filename="arrest-notice.pdf"), 201)
    assert (mine["kind"], mine["uploaded_by_role"]) == ("attachment", "reporter")

    paris = identity_provider.headers(officer("fr-paris"))
    got = await http.get(f"{path}/{mine['id']}", headers=paris)
    assert got.status_code == 200
    assert got.content == notice
    # The focal point attaches a document for the person, who reads it back.
    letter = samples.image("png", 200, 100)
    theirs = ok(
        await upload_document(
            http, paris, path, letter, filename="letter.png", content_type="image/png"
        ),
        201,
    )
    assert theirs["uploaded_by_role"] == "embassy_officer"
    assert (await http.get(f"{path}/{theirs['id']}", headers=me)).content == letter
    listed = ok(await http.get(path, headers=me))["items"]
    assert [d["id"] for d in listed] == [mine["id"], theirs["id"]]
    assert all(d["uploaded_by"] is None for d in listed)  # staff subjects: staff only

    berlin = identity_provider.headers(officer("de-berlin"))
    assert (await http.get(f"{path}/{mine['id']}", headers=berlin)).status_code == 404
    assert (await upload_document(http, berlin, path, notice)).status_code == 404
    async with consular.sessions() as session:
        actions = set(
            (
                await session.execute(
                    select(audit_log.c.action).where(
                        audit_log.c.record_id == member_id,
                        audit_log.c.resource == "consular_report",
                    )
                )
            ).scalars()
        )
    assert {"download", "attach"} <= actions
    # An executable is refused here too.
    refused = await upload_document(http, me, path, samples.PE, filename="notice.pdf")
    assert refused.status_code == 415


async def test_erasure_removes_a_members_documents_and_their_bytes(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer, tmp_path: Path
) -> None:
    me, draft_id, member_id = await draft_of(consular, http, identity_provider, "consular_card")
    await upload_required_documents(http, me, draft_id, "consular_card")
    # Another person's documents stay.
    other, other_id, _ = await draft_of(consular, http, identity_provider, "consular_card")
    await upload_required_documents(http, other, other_id, "consular_card")
    report = ok(
        await http.post(
            "/reports",
            json={"category": "other", "country": "FR", "description": "Lost papers."},
            headers=me,
        ),
        201,
    )
    ok(await upload_document(http, me, f"/reports/{report['id']}/documents", samples.pdf(1)), 201)
    assert len(stored_files(tmp_path / "documents")) == 7

    store = await consular.documents.get() if consular.documents else None
    assert store is not None
    async with consular.sessions() as session, session.begin():
        removed = await documents.erase_member_documents(session, store, member_id)
    assert removed == 4
    assert len(stored_files(tmp_path / "documents")) == 3
    async with consular.sessions() as session:
        left = (await session.execute(select(documents_table.c.member_id))).scalars().all()
    assert member_id not in left
    assert len(left) == 3
    assert (await http.get(f"/applications/{draft_id}/documents", headers=me)).json()["items"] == []


async def test_erasure_can_keep_the_documents_of_applications_kept_as_records(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    me, kept_id, member_id = await draft_of(consular, http, identity_provider, "consular_card")
    await upload_required_documents(http, me, kept_id, "consular_card")
    ok(await act(http, me, kept_id, "submit"))
    draft = ok(
        await http.post(
            "/applications",
            json={"service_type": "passport_preparation", "answers": {}},
            headers=me,
        ),
        201,
    )
    await upload_required_documents(http, me, draft["id"], "passport_preparation")
    store = await consular.documents.get() if consular.documents else None
    assert store is not None
    async with consular.sessions() as session, session.begin():
        removed = await documents.erase_member_documents(
            session, store, member_id, application_statuses=("draft", "withdrawn", "expired")
        )
    assert removed == 3
    assert len(ok(await http.get(f"/applications/{kept_id}/documents", headers=me))["items"]) == 3


@pytest.fixture
async def s3_consular(
    make_settings: Any, s3_store_settings: S3Settings
) -> AsyncIterator[tuple[Consular, str]]:
    settings: ConsularSettings = make_settings(
        documents=StoreSettings(backend="s3", s3=s3_store_settings)
    )
    service = bootstrap(settings)
    try:
        async with serve_app(build_app(service)) as url:
            yield service, url
    finally:
        await service.close()


async def test_a_document_round_trip_through_a_real_s3_server(
    s3_consular: tuple[Consular, str], identity_provider: LocalIssuer
) -> None:
    service, url = s3_consular
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        me, app_id, _ = await draft_of(service, http, identity_provider, "consular_card")
        scan = samples.pdf(3)
        uploaded = ok(
            await upload_document(
                http, me, f"/applications/{app_id}/documents", scan, kind="identity_document"
            ),
            201,
        )
        # The server holds it under the document's key, with its checksum.
        assert service.documents is not None
        store = await service.documents.get()
        key = f"applications/{app_id}/{uploaded['id']}"
        info = await store.stat(key)
        assert (info.size, info.sha256) == (len(scan), hashlib.sha256(scan).hexdigest())
        back = await http.get(f"/applications/{app_id}/documents/{uploaded['id']}", headers=me)
        assert back.status_code == 200
        assert back.content == scan
        assert (
            await http.delete(f"/applications/{app_id}/documents/{uploaded['id']}", headers=me)
        ).status_code == 204
        assert not await store.exists(key)


def test_production_refuses_a_local_document_folder(make_settings: Any) -> None:
    settings = make_settings(
        environment="production",
        database_url="postgresql://consular:secret@db.example:5432/consular",
        oidc_issuer="https://idp.example/realms/diaspora",
        kafka_security_protocol="SASL_SSL",
        documents=StoreSettings(backend="local"),
    )
    with pytest.raises(RuntimeError, match="local folder"):
        bootstrap(settings, signing=False)

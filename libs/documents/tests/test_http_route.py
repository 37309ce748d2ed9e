"""A service's upload route built the documented way (diaspora_documents.problems): bad
files get 413/415/422 problem details, never a 500, and nothing of them is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import StreamingResponse

from diaspora_documents import testing as samples
from diaspora_documents.checks import UploadLimits, UploadRefused, checked_upload, read_chunks
from diaspora_documents.local import LocalObjectStore
from diaspora_documents.problems import UPLOAD_RESPONSES, upload_problem
from diaspora_service.app import create_app
from diaspora_service.problems import Problem
from diaspora_service.uploads import UploadRoute

LIMITS = UploadLimits(max_bytes=1024 * 1024, max_pdf_pages=3, max_image_pixels=1_000_000)


def _app(store: LocalObjectStore, spool: Path) -> Any:
    router = APIRouter()

    @router.post("/documents", status_code=201, responses=UPLOAD_RESPONSES)
    async def upload(
        file: Annotated[UploadFile, File()], key: Annotated[str, Form(pattern=r"^[a-z0-9-]+$")]
    ) -> dict[str, Any]:
        try:
            async with checked_upload(
                read_chunks(file),
                filename=file.filename,
                content_type=file.content_type,
                limits=LIMITS,
                spool_dir=spool,
            ) as checked:
                stored = await store.put(
                    f"evidence/{key}",
                    checked.chunks(),
                    content_type=checked.content_type,
                    sha256=checked.sha256,
                )
        except UploadRefused as refusal:
            raise upload_problem(refusal) from None
        return {"key": key, "content_type": stored.content_type, "sha256": stored.sha256}

    @router.get("/documents/{key}")
    async def download(key: str, request: Request) -> StreamingResponse:
        if not await store.exists(f"evidence/{key}"):
            raise Problem(404, "No such document")
        stream = await store.get(f"evidence/{key}")
        return StreamingResponse(
            aiter(stream),
            media_type=stream.info.content_type,
            headers={
                "Content-Disposition": "attachment",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def anyone(_request: Request) -> None:
        return None

    return create_app(
        title="documents example",
        version="0",
        description="a route receiving documents",
        routers=[router],
        uploads=[UploadRoute("POST", "/documents", anyone, 2 * 1024 * 1024)],
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    store = LocalObjectStore(tmp_path / "store")
    (tmp_path / "spool").mkdir()
    transport = httpx.ASGITransport(app=_app(store, tmp_path / "spool"))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http, tmp_path


def _stored(root: Path) -> list[Path]:
    return [p for p in (root / "store").rglob("*") if p.is_file()]


async def test_a_document_goes_in_and_comes_back_with_its_detected_type(
    client: tuple[httpx.AsyncClient, Path],
) -> None:
    http, _ = client
    data = samples.pdf(2)
    answer = await http.post(
        "/documents",
        files={"file": ("passport", data, "application/octet-stream")},
        data={"key": "p1"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["content_type"] == "application/pdf"
    back = await http.get("/documents/p1")
    assert back.content == data
    assert back.headers["content-type"] == "application/pdf"
    assert back.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("filename", "data", "content_type", "status", "code"),
    [
        ("scan.pdf", samples.ELF, "application/pdf", 415, "executable"),
        ("scan.pdf", samples.image("png", 8, 8), "application/pdf", 415, "mismatch"),
        ("photo.png", samples.png_claiming(40_000, 40_000), "image/png", 413, "pixels"),
        ("a.pdf", samples.pdf(4), "application/pdf", 413, "pages"),
        ("a.pdf", samples.pdf(1) + b"%" * (1024 * 1024), "application/pdf", 413, "bytes"),
        ("a.pdf", b"%PDF-1.4\n" + b"garbage " * 50, "application/pdf", 422, "damaged"),
        (
            "a.pdf",
            samples.pdf(1, javascript="app.alert(1)"),
            "application/pdf",
            422,
            "active_content",
        ),
    ],
)
async def test_a_bad_file_is_a_problem_and_nothing_is_stored(
    client: tuple[httpx.AsyncClient, Path],
    filename: str,
    data: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    http, root = client
    answer = await http.post(
        "/documents", files={"file": (filename, data, content_type)}, data={"key": "bad"}
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == code
    assert _stored(root) == []
    assert list((root / "spool").iterdir()) == []
    assert (await http.get("/documents/bad")).status_code == 404

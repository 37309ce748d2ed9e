"""Bulk import over HTTP against the real database: exact reports, modes, refusals, scope."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from diaspora_devstack.testing import wait_until
from diaspora_identity.testing import LocalIssuer, citizen, officer
from registry.duplicates.tables import duplicate_cases
from registry.imports.tables import import_jobs
from registry.members.tables import members
from registry.resources import Registry
from registry.tables import outbox

from .data.embassy_lists import (
    HEADER_EN,
    HEADER_FR,
    Lists,
    Row,
    build_rows,
    cells,
    csv_bytes,
    expected,
    expected_errors,
    faulty,
    xlsx_bytes,
)

pytestmark = pytest.mark.integration
COUNTERS = ("total_rows", "blank_rows", "accepted", "duplicates", "rejected")


def client(base_url: str, issuer: LocalIssuer, *embassies: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url, timeout=60, headers=issuer.headers(officer(*embassies))
    )


async def upload(
    http: httpx.AsyncClient,
    content: bytes,
    filename: str,
    *,
    mode: str = "partial",
    batch_size: int | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    data = {"mode": mode, "consent_method": "signed_form", "consent_reference": "registre 2024"}
    if batch_size:
        data["batch_size"] = str(batch_size)
    return await http.post(
        "/imports", files={"file": (filename, content)}, data=data, headers=headers or {}
    )


async def finished(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    state: dict[str, Any] = {}

    async def done() -> bool:
        reply = await http.get(f"/imports/{job_id}")
        assert reply.status_code == 200, reply.text
        state.update(reply.json())
        return state["status"] in ("done", "failed")

    await wait_until(done, timeout=240, interval=0.2, message="the import to finish")
    return state


async def report(http: httpx.AsyncClient, job: dict[str, Any]) -> list[list[str]]:
    reply = await http.get(f"/imports/{job['id']}/errors.csv")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(reply.text)))
    assert lines[0] == ["row", "column", "reason"]
    return lines[1:]


def check_report(lines: list[list[str]], rows: list[Row], cells_of: set[str]) -> None:
    """Exactly the planted faults, each at its row and column; no cell value echoed."""
    wanted = expected_errors(rows)
    got: dict[int, list[tuple[str, str]]] = {}
    for row, column, reason in lines:
        got.setdefault(int(row), []).append((column, reason))
    assert set(got) == set(wanted)
    for number, errors in wanted.items():
        assert len(got[number]) == len(errors), (number, got[number])
        for (column, fragment), (got_column, reason) in zip(errors, got[number], strict=True):
            assert got_column == (column or ""), (number, got_column, reason)
            assert fragment in reason, (number, reason)
    for _row, _column, reason in lines:
        assert not any(value in reason for value in cells_of), reason


def values_of(rows: list[Row]) -> set[str]:
    return {c for r in rows for c in r.cells if len(c) > 3}


async def count(registry: Registry, table: Any, *where: Any) -> int:
    async with registry.sessions() as session:
        found = await session.execute(select(func.count()).select_from(table).where(*where))
    return int(found.scalar_one())


async def test_three_files_in_three_encodings_end_with_an_exact_report(
    registry_url: str, registry: Registry, identity_provider: LocalIssuer
) -> None:
    """Windows-1252 with ',' and French headers, UTF-8 BOM with ';' and English headers,
    XLSX: a few thousand rows with every kind of fault, blank lines, accented and Ewe
    spellings, duplicates inside a file and against members imported before."""
    first = Lists(seed=0, phone_base=10_000_000)
    rows_1 = build_rows(first, rows=2_000, header=HEADER_FR, existing=[], ewe=False)
    people_1 = [r for r in rows_1 if r.outcome == "accepted"]
    second = Lists(seed=1, phone_base=20_000_000)
    existing_1 = [_person(r) for r in people_1[:30]]
    rows_2 = build_rows(second, rows=1_500, header=HEADER_EN, existing=existing_1, ewe=True)
    third = Lists(seed=2, phone_base=30_000_000)
    existing_2 = [_person(r) for r in people_1[30:50]] + [
        _person(r) for r in rows_2 if r.outcome == "accepted"
    ][:20]
    rows_3 = build_rows(third, rows=1_000, header=HEADER_FR, existing=existing_2, ewe=True)
    files = [
        (csv_bytes(HEADER_FR, rows_1, encoding="cp1252", delimiter=",", bom=False), "a.csv"),
        (csv_bytes(HEADER_EN, rows_2, encoding="utf-8", delimiter=";", bom=True), "b.csv"),
        (xlsx_bytes(HEADER_FR, rows_3), "c.xlsx"),
    ]
    formats = [("csv", "cp1252", ","), ("csv", "utf-8-sig", ";"), ("xlsx", None, None)]
    async with client(registry_url, identity_provider, "fr-paris") as http:
        registered = 0
        for (content, name), rows, (kind, encoding, delimiter) in zip(
            files, [rows_1, rows_2, rows_3], formats, strict=True
        ):
            response = await upload(http, content, name)
            assert response.status_code == 202, response.text
            assert response.headers["location"] == f"/imports/{response.json()['id']}"
            job = await finished(http, response.json()["id"])
            assert (job["format"], job["encoding"], job["delimiter"]) == (kind, encoding, delimiter)
            assert job["status"] == "done"
            want = expected(rows)
            assert {k: job[k] for k in COUNTERS} == want, name
            assert job["processed_rows"] == want["total_rows"]
            assert job["accepted"] + job["duplicates"] + job["rejected"] == job["total_rows"]
            check_report(await report(http, job), rows, values_of(rows))
            registered += want["accepted"] + want["duplicates"]
            assert await count(registry, members) == registered
            # One record flagged per duplicate row (it may match more than one earlier record:
            # a person listed in file 1 twice and again in file 2).
            async with registry.sessions() as session:
                flagged_rows = (
                    await session.execute(
                        select(func.count(func.distinct(duplicate_cases.c.member_id))).where(
                            duplicate_cases.c.import_job_id == job["id"]
                        )
                    )
                ).scalar_one()
            assert flagged_rows == want["duplicates"], name

    assert want["duplicates"] > 0
    events = await count(registry, outbox, outbox.c.event_type == "registry.member.registered")
    assert events == registered
    flagged = await count(registry, outbox, outbox.c.event_type == "registry.duplicates.flagged")
    assert flagged == await count(registry, duplicate_cases)
    async with registry.sessions() as session:
        kept = (await session.execute(select(import_jobs.c.content))).scalars().all()
    assert kept == [None, None, None]  # the files (personal data) are dropped once imported


def _person(row: Row) -> Any:
    from datetime import datetime

    from .data.embassy_lists import Person

    family, given, birth, country, phone, email, _sex = row.cells
    return Person(family, given, datetime.strptime(birth, "%d/%m/%Y").date(), country, phone, email)


async def test_all_or_nothing_rejects_a_batch_whole_and_partial_keeps_the_valid_rows(
    registry_url: str, registry: Registry, identity_provider: LocalIssuer
) -> None:
    lists = Lists(seed=4, phone_base=40_000_000)
    rows: list[Row] = [Row(cells(lists.person()), "accepted") for _ in range(30)]
    rows[12] = faulty(lists, 0, HEADER_FR)  # batch 2 (rows 10-19 of the data)
    rows[27] = faulty(lists, 3, HEADER_FR)  # batch 3
    content = csv_bytes(HEADER_FR, rows, encoding="utf-8", delimiter=";", bom=False)
    async with client(registry_url, identity_provider, "fr-paris") as http:
        strict = await finished(
            http,
            (await upload(http, content, "l.csv", mode="all_or_nothing", batch_size=10)).json()[
                "id"
            ],
        )
        assert {k: strict[k] for k in ("accepted", "duplicates", "rejected")} == {
            "accepted": 10,
            "duplicates": 0,
            "rejected": 20,
        }
        assert strict["rejected_batches"] == 2
        lines = await report(http, strict)
        assert sorted({int(r[0]) for r in lines}) == list(range(12, 32))  # rows 12..31
        together = [r for r in lines if r[0] == "13"]
        assert together == [
            [
                "13",
                "",
                "not imported: rows 12 to 21 were rejected together "
                "(all or nothing) because some of them are invalid",
            ]
        ]
        assert await count(registry, members) == 10

        # The same list, partial: the rows rejected before go in (as new members, flagged as
        # duplicates of nobody: the first ten are in already and come back as duplicates).
        partial = await finished(
            http, (await upload(http, content, "l.csv", mode="partial", batch_size=10)).json()["id"]
        )
        assert partial["rejected"] == 2
        assert partial["duplicates"] == 10  # the ten imported by the first run
        assert partial["accepted"] == 18
        assert await count(registry, members) == 10 + 28


async def test_refused_uploads_are_problem_details_and_create_nothing(
    registry_url: str, registry: Registry, identity_provider: LocalIssuer
) -> None:
    async with client(registry_url, identity_provider, "fr-paris") as http:
        missing = await upload(http, "nom;prénom;pays\nA;B;FR\n".encode(), "x.csv")
        assert missing.status_code == 422
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["missing_columns"] == ["date_of_birth", "email", "phone"]
        for content in (b"", b"PK\x03\x04not a workbook", "nom;prénom\n".encode()):
            refused = await upload(http, content, "x.xlsx")
            assert refused.status_code == 422, refused.text
        no_consent = await http.post(
            "/imports", files={"file": ("x.csv", b"a;b\n1;2\n")}, data={"mode": "partial"}
        )
        assert no_consent.status_code == 422
        bad_mode = await upload(http, b"a;b\n", "x.csv", mode="sometimes")
        assert bad_mode.status_code == 422
    async with httpx.AsyncClient(
        base_url=registry_url, headers=identity_provider.headers(citizen("someone"))
    ) as as_citizen:
        forbidden = await upload(as_citizen, b"nom;prenom\n", "x.csv")
        assert forbidden.status_code == 403
    async with httpx.AsyncClient(base_url=registry_url) as anonymous:
        assert (await upload(anonymous, b"a", "x.csv")).status_code == 401
    assert await count(registry, import_jobs) == 0


async def test_an_import_is_seen_by_its_uploader_only_and_a_key_replays_it(
    registry_url: str, registry: Registry, identity_provider: LocalIssuer
) -> None:
    lists = Lists(seed=5, phone_base=50_000_000)
    rows = [Row(cells(lists.person()), "accepted") for _ in range(5)]
    content = csv_bytes(HEADER_FR, rows, encoding="utf-8", delimiter=";", bom=False)
    async with client(registry_url, identity_provider, "fr-paris") as http:
        first = await upload(http, content, "k.csv", headers={"Idempotency-Key": "list-1"})
        again = await upload(http, content, "k.csv", headers={"Idempotency-Key": "list-1"})
        assert (first.status_code, again.status_code) == (202, 200)
        assert first.json()["id"] == again.json()["id"]
        other = await upload(http, content + b"\n", "k.csv", headers={"Idempotency-Key": "list-1"})
        assert other.status_code == 422
        job = await finished(http, first.json()["id"])
        assert job["accepted"] == 5
    async with client(registry_url, identity_provider, "de-berlin") as berlin:
        assert (await berlin.get(f"/imports/{job['id']}")).status_code == 404
        assert (await berlin.get(f"/imports/{job['id']}/errors.csv")).status_code == 404
    assert await count(registry, members) == 5


MB = 1024 * 1024


class LargeUpload:
    """A multipart upload of ``size`` bytes of CSV produced lazily, counting what the
    client managed to send before the server answered."""

    boundary = "diaspora-upload-boundary"

    def __init__(self, size: int) -> None:
        self.head = (
            f"--{self.boundary}\r\n"
            'Content-Disposition: form-data; name="consent_method"\r\n\r\nsigned_form\r\n'
            f"--{self.boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="list.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
            "family_name;given_name\r\n"
        ).encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.size = len(self.head) + size + len(self.tail)
        self.payload = size
        self.sent = 0

    @property
    def headers(self) -> dict[str, str]:
        return {
            "content-type": f"multipart/form-data; boundary={self.boundary}",
            "content-length": str(self.size),
        }

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        self.sent += len(self.head)
        line = b"Mensah;Ama\r\n" * 5000
        left = self.payload
        while left > 0:
            chunk = line[:left]
            left -= len(chunk)
            self.sent += len(chunk)
            yield chunk
        yield self.tail
        self.sent += len(self.tail)


async def send_while_listening(base_url: str, body: LargeUpload, headers: dict[str, str]) -> bytes:
    """POST /imports over a raw socket: the body is written chunk by chunk while the answer
    is read at the same time; writing stops as soon as the answer has come (or the server
    closed). Returns the answer's bytes (status line, headers, body)."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"POST /imports HTTP/1.1\r\nHost: {host}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    writer.write((head + "\r\n").encode())
    answer = b""

    async def listen() -> None:
        nonlocal answer
        while chunk := await reader.read(65536):
            answer += chunk
            if b"\r\n\r\n" in answer:
                length = re.search(rb"content-length: (\d+)", answer.lower())
                if length and len(answer.split(b"\r\n\r\n", 1)[1]) >= int(length.group(1)):
                    return

    listening = asyncio.create_task(listen())
    try:
        async for chunk in body:
            if listening.done():
                break
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass  # the server closed: its answer is what counts
    with contextlib.suppress(ConnectionError):
        await asyncio.wait_for(listening, timeout=30)
    writer.close()
    return answer


@pytest.mark.parametrize("who", ["nobody", "citizen"])
async def test_an_upload_is_refused_before_its_body_is_read(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry, who: str
) -> None:
    """50 MB multipart, no token (401) or a citizen's (403): the answer comes while the
    client is still sending, the server having read at most its socket buffers' worth."""
    body = LargeUpload(50 * MB)
    headers = body.headers
    if who == "citizen":
        headers |= identity_provider.headers(citizen())
    answer = await send_while_listening(registry_url, body, headers)
    status = 401 if who == "nobody" else 403
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert b"content-type: application/problem+json" in answer.lower()
    assert body.sent < 16 * MB, body.sent  # the client was cut off long before the end
    async with registry.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(import_jobs))).scalar() == 0


async def test_an_upload_declared_over_the_limit_is_413_before_reading(
    registry_url: str, identity_provider: LocalIssuer
) -> None:
    body = LargeUpload(51 * MB)  # the default limit is 50 MB
    headers = body.headers | identity_provider.headers(officer("fr-paris"))
    answer = await send_while_listening(registry_url, body, headers)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"content-type: application/problem+json" in answer.lower()
    assert body.sent < 16 * MB


async def test_a_zip_bomb_or_a_list_too_wide_is_refused_with_a_clear_problem(
    registry_url: str, registry: Registry, identity_provider: LocalIssuer
) -> None:
    from .test_import_limits import zip_bomb

    async with client(registry_url, identity_provider, "fr-paris") as http:
        bomb = await upload(http, zip_bomb(64 * 1024 * 1024), "bomb.xlsx")
        assert bomb.status_code == 413, bomb.text
        assert bomb.headers["content-type"] == "application/problem+json"
        assert "decompression bomb" in bomb.json()["detail"]
        wide = ";".join(f"c{i}" for i in range(300)) + "\nA;B\n"
        too_wide = await upload(http, wide.encode(), "wide.csv")
        assert too_wide.status_code == 422, too_wide.text
        assert "more than 200" in too_wide.json()["detail"]
    assert await count(registry, import_jobs) == 0

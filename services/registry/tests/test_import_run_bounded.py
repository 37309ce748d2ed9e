"""The import run reads the file under the same memory limit as the upload's first read:
a file that needs more while it runs fails the job with its reason, in a worker process,
and the API process, the batches committed before and their report stay."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from sqlalchemy import func, select

from diaspora_identity.testing import LocalIssuer, officer
from registry.bootstrap import Registry
from registry.imports.runner import ImportRunner
from registry.imports.settings import ImportSettings
from registry.members.tables import members

from .data.embassy_lists import HEADER_FR, Lists, build_rows, csv_bytes

pytestmark = pytest.mark.integration
MB = 1024 * 1024


@pytest.fixture(autouse=True)
def _runner_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    # The API only queues (as when `registry-import-worker` runs the imports): the test
    # runs the job with a smaller memory limit than the upload was read with.
    monkeypatch.setenv("REGISTRY_IMPORT_RUNNER", "false")


def crafted_list() -> bytes:
    """12 good rows, then one line of 10 million empty cells (10 MB: a blank line to the
    checks, but the row alone takes well over 100 MB to hold while it is read), then 3
    good rows."""
    lists = Lists(seed=21, phone_base=71_000_000)
    before = build_rows(lists, rows=9, header=HEADER_FR, existing=[], ewe=False)
    before += build_rows(lists, rows=3, header=HEADER_FR, existing=[], ewe=False)
    after = build_rows(lists, rows=3, header=HEADER_FR, existing=[], ewe=False)
    assert {r.outcome for r in before + after} == {"accepted"}
    head = csv_bytes(HEADER_FR, before, encoding="utf-8", delimiter=";", bom=False)
    tail = csv_bytes(HEADER_FR, after, encoding="utf-8", delimiter=";", bom=False)
    return head + b";" * 10_000_000 + b"\r\n" + tail.split(b"\r\n", 1)[1]


async def test_a_file_too_big_for_the_reader_during_the_run_fails_the_job_not_the_api(
    registry: Registry, registry_url: str, identity_provider: LocalIssuer
) -> None:
    async with httpx.AsyncClient(
        base_url=registry_url, timeout=60, headers=identity_provider.headers(officer("fr-paris"))
    ) as http:
        # The upload's first read (1 GiB by default) accepts the file: 15 rows, 1 blank.
        queued = await http.post(
            "/imports",
            files={"file": ("crafted.csv", crafted_list())},
            data={"mode": "partial", "consent_method": "signed_form", "batch_size": "4"},
        )
        assert queued.status_code == 202, queued.text
        job = queued.json()
        assert (job["total_rows"], job["blank_rows"], job["status"]) == (15, 1, "queued")

        # The run, in this process (the one serving the API), with a 64 MiB reader.
        runner = ImportRunner(registry, ImportSettings(runner=False, reader_memory_bytes=64 * MB))
        assert await runner.run_pending() == 1

        # The API still answers, and says why the job stopped and how far it got.
        state = (await http.get(f"/imports/{job['id']}")).json()
        assert state["status"] == "failed", state
        assert "REGISTRY_IMPORT_READER_MEMORY_BYTES" in state["error"]
        assert f"more than {64 * MB} bytes of memory" in state["error"]
        assert "stopped after 12 rows" in state["error"]
        # Three batches of 4 were committed before the batch holding the long line.
        assert state["processed_rows"] == 12
        assert state["accepted"] + state["duplicates"] == 12
        assert state["rejected"] == 0
        assert state["finished_at"] is not None
        report = await http.get(f"/imports/{job['id']}/errors.csv")
        assert report.status_code == 200
        assert list(csv.reader(io.StringIO(report.text))) == [["row", "column", "reason"]]

        # A failed job is final: another pass does not pick it up again.
        assert await runner.run_pending() == 0

    async with registry.sessions() as session:
        stored = (await session.execute(select(func.count()).select_from(members))).scalar_one()
    assert stored == 12  # nothing already accepted is lost


async def test_the_same_file_imports_whole_within_a_larger_limit(
    registry: Registry, registry_url: str, identity_provider: LocalIssuer
) -> None:
    """The control: only the memory limit made the run above fail."""
    async with httpx.AsyncClient(
        base_url=registry_url, timeout=60, headers=identity_provider.headers(officer("fr-paris"))
    ) as http:
        queued = await http.post(
            "/imports",
            files={"file": ("crafted.csv", crafted_list())},
            data={"mode": "partial", "consent_method": "signed_form", "batch_size": "4"},
        )
        assert queued.status_code == 202, queued.text
        runner = ImportRunner(registry, ImportSettings(runner=False))
        assert await runner.run_pending() == 1
        state = (await http.get(f"/imports/{queued.json()['id']}")).json()
    assert state["status"] == "done", state
    assert (state["processed_rows"], state["accepted"] + state["duplicates"]) == (15, 15)

"""`registry-import`, the command an embassy officer runs, against the real API and database."""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from diaspora_identity.testing import LocalIssuer, officer
from registry.members.tables import members
from registry.resources import Registry

from .data.embassy_lists import HEADER_FR, Lists, Row, cells, csv_bytes, faulty

pytestmark = pytest.mark.integration


def installed_command() -> str:
    """The console script the package installs, beside this interpreter."""
    command = Path(sys.executable).parent / "registry-import"
    assert command.exists(), "registry-import is not installed in the environment"
    return str(command)


async def test_the_cli_uploads_follows_progress_and_saves_the_error_report(
    registry_url: str, registry: Registry, identity_provider: LocalIssuer, tmp_path: Path
) -> None:
    lists = Lists(seed=11, phone_base=51_000_000)
    rows: list[Row] = [Row(cells(lists.person()), "accepted") for _ in range(40)]
    rows[5] = faulty(lists, 0, HEADER_FR)
    rows[33] = faulty(lists, 1, HEADER_FR)
    source = tmp_path / "membres.csv"
    source.write_bytes(csv_bytes(HEADER_FR, rows, encoding="cp1252", delimiter=";", bom=False))
    errors = tmp_path / "erreurs.csv"
    command = installed_command()

    process = await asyncio.create_subprocess_exec(
        command,
        str(source),
        "--url",
        registry_url,
        "--mode",
        "partial",
        "--batch-size",
        "10",
        "--errors",
        str(errors),
        "--poll",
        "0.2",
        env={**os.environ, "REGISTRY_TOKEN": identity_provider.token(officer("fr-paris"))},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=180)
    output = stdout.decode() + stderr.decode()

    assert process.returncode == 1, output  # some rows were rejected
    assert "40/40 rows, 38 accepted, 0 flagged as possible duplicates" in output, output
    assert "2 rejected" in output, output
    with errors.open(newline="") as handle:
        report = list(csv.reader(handle))
    assert report[0] == ["row", "column", "reason"]
    assert sorted({int(line[0]) for line in report[1:]}) == [7, 35]  # header is row 1
    async with registry.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(members)) == 38


async def test_the_cli_explains_a_refusal_and_exits_2(
    registry_url: str, identity_provider: LocalIssuer, tmp_path: Path
) -> None:
    source = tmp_path / "vide.csv"
    source.write_bytes(b"")
    command = installed_command()
    process = await asyncio.create_subprocess_exec(
        command,
        str(source),
        "--url",
        registry_url,
        "--no-progress",
        env={**os.environ, "REGISTRY_TOKEN": identity_provider.token(officer("fr-paris"))},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2, stdout + stderr
    assert stderr.strip(), "a refusal must say why"

"""An import's rows checked in the forked worker give exactly what the thread gives."""

from __future__ import annotations

from diaspora_identity.jurisdictions import default_jurisdictions
from diaspora_identity.policy import default_policy
from diaspora_identity.principal import Principal, Role
from registry.imports.checking import BatchChecker, JobChecks, fork_available
from registry.imports.columns import layout
from registry.imports.reading import open_sheet
from registry.imports.registration import registration_schema

from .data.embassy_lists import HEADER_FR, Lists, build_rows, csv_bytes


async def test_the_worker_process_checks_rows_as_the_thread_does() -> None:
    assert fork_available()
    rows = build_rows(
        Lists(seed=11, phone_base=70_000_000), rows=600, header=HEADER_FR, existing=[], ewe=True
    )
    sheet = open_sheet(
        csv_bytes(HEADER_FR, rows, encoding="utf-8", delimiter=";", bom=False), "l.csv"
    )
    records = list(sheet.records())
    paris = Principal(
        subject="officer",
        roles=frozenset({Role.EMBASSY_OFFICER}),
        embassies=frozenset({"fr-paris"}),
    )
    job = JobChecks(
        layout=layout(sheet.header),
        schema=registration_schema(),
        jurisdictions=default_jurisdictions(),
        # Paris only: rows living elsewhere are outside the jurisdiction.
        decision=default_policy().decide(paris, "member_import", "create"),
        extra_fields={"consent_recorded": {"method": "signed_form"}},
    )
    threaded = BatchChecker(job, process=False)
    forked = BatchChecker(job, process=True)
    try:
        halves = records[:300], records[300:]
        by_thread = [c for half in halves for c in await threaded.check(half)]
        by_process = [c for half in halves for c in await forked.check(half)]
    finally:
        await forked.close()
        await threaded.close()
    assert by_process == by_thread
    kinds = {type(c).__name__ for c in by_thread}
    assert kinds == {"ValidRow", "list"}  # valid and rejected rows both compared
    assert len(by_thread) == sum(1 for r in records if not r.blank)

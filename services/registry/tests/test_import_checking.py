"""An import's rows checked in the forked worker give exactly what the thread gives."""

from __future__ import annotations

from diaspora_identity.jurisdictions import default_jurisdictions
from diaspora_identity.policy import default_policy
from diaspora_identity.principal import Principal, Role
from registry.imports.checking import BatchChecker, JobChecks, fork_available
from registry.imports.columns import layout
from registry.imports.reading import open_sheet
from registry.imports.registration import registration_schema
from registry.imports.validation import ValidRow, check_record

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


def test_a_cell_with_a_control_character_is_a_row_error_with_its_reason() -> None:
    """A quoted CSV cell may hold CR, LF or an escape: the row is refused, column named,
    value not quoted (the free-text rules of POST /members apply to every cell)."""
    content = (
        "Nom;Prénom;Date de naissance;Pays;Téléphone;Courriel\r\n"
        '"Mensah";"Ama\r\nReply-To: x@evil.example";1990-04-27;FR;+33612345678;a@example.org\r\n'
        "Mensah\x1b[2J;Kodjo;1991-05-28;FR;+33612345679;k@example.org\r\n"
        "Mensah;Afi;1992-06-29;FR;+33612345670;f@example.org\r\n"
    ).encode()
    sheet = open_sheet(content, "l.csv")
    paris = Principal(
        subject="officer",
        roles=frozenset({Role.EMBASSY_OFFICER}),
        embassies=frozenset({"fr-paris"}),
    )
    the_layout = layout(sheet.header)
    results = [
        check_record(
            record,
            the_layout,
            schema=registration_schema(),
            jurisdictions=default_jurisdictions(),
            decision=default_policy().decide(paris, "member_import", "create"),
            extra_fields={"consent_recorded": {"method": "signed_form"}},
        )
        for record in sheet.records()
    ]
    first, second, third = results
    assert isinstance(first, list)
    assert [(e.row, e.column) for e in first] == [(2, "Prénom")]
    assert "control characters" in first[0].reason
    assert "evil" not in first[0].reason
    assert isinstance(second, list)
    assert [(e.row, e.column) for e in second] == [(3, "Nom")]
    assert "control characters" in second[0].reason
    assert isinstance(third, ValidRow)

"""An import's rows read and checked in the forked, memory-capped worker give exactly what
a thread reading and checking them gives, and what the parent checking them gives."""

from __future__ import annotations

from diaspora_identity.jurisdictions import default_jurisdictions
from diaspora_identity.policy import default_policy
from diaspora_identity.principal import Principal, Role
from registry.imports.checking import Batch, CheckSpec, JobFeed, Source, fork_available
from registry.imports.columns import layout
from registry.imports.reading import DEFAULT_LIMITS, open_sheet
from registry.imports.registration import registration_schema
from registry.imports.validation import ValidRow, check_record

from .data.embassy_lists import HEADER_FR, Lists, build_rows, csv_bytes

MB = 1024 * 1024


async def _read_all(feed: JobFeed) -> tuple[tuple[str, ...], list[Batch]]:
    try:
        header = await feed.open()
        batches = []
        # Several reads in flight at once, as the runner keeps them: they stay in order.
        while True:
            ahead = [feed.next(), feed.next(), feed.next()]
            got = [b for b in [await f for f in ahead] if b is not None]
            batches += got
            if len(got) < len(ahead):
                return header, batches
    finally:
        await feed.close()


async def test_the_worker_process_reads_and_checks_rows_as_a_thread_does() -> None:
    assert fork_available()
    rows = build_rows(
        Lists(seed=11, phone_base=70_000_000), rows=600, header=HEADER_FR, existing=[], ewe=True
    )
    content = csv_bytes(HEADER_FR, rows, encoding="utf-8", delimiter=";", bom=False)
    sheet = open_sheet(content, "l.csv")
    records = list(sheet.records())
    paris = Principal(
        subject="officer",
        roles=frozenset({Role.EMBASSY_OFFICER}),
        embassies=frozenset({"fr-paris"}),
    )
    spec = CheckSpec(
        schema=registration_schema(),
        jurisdictions=default_jurisdictions(),
        # Paris only: rows living elsewhere are outside the jurisdiction.
        decision=default_policy().decide(paris, "member_import", "create"),
        extra_fields={"consent_recorded": {"method": "signed_form"}},
    )
    # Resuming after the first 100 records, in batches of 250 data rows.
    source = Source(content, "csv", sheet.encoding, sheet.delimiter, DEFAULT_LIMITS, 100, 250)
    feeds = {
        "forked": JobFeed(source, spec, memory=256 * MB),
        "forked, parent checks": JobFeed(source, spec, memory=256 * MB, check_in_reader=False),
        "thread": JobFeed(source, spec, memory=256 * MB, isolate=False),
    }
    assert [f.forked for f in feeds.values()] == [True, True, False]
    read = {name: await _read_all(feed) for name, feed in feeds.items()}
    assert read["forked"] == read["thread"] == read["forked, parent checks"]

    header, batches = read["thread"]
    assert header == sheet.header
    expected = spec.with_layout(layout(sheet.header)).check(records[100:])
    assert [c for b in batches for c in b.checked or []] == expected
    kinds = {type(c).__name__ for c in expected}
    assert kinds == {"ValidRow", "list"}  # valid and rejected rows both compared
    assert sum(b.records for b in batches) == len(records) - 100
    assert batches[0].first_row == 102  # the header is row 1; 100 records skipped
    assert all(len(b.checked or []) == 250 for b in batches[:-1])
    assert all(b.unchecked == () for b in batches)  # no cells cross back once checked


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

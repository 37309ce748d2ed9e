"""An import's rows built directly (registry.imports.rows) are what the one-by-one
functions make of them: the members row, the history line, the registration event's JSON
(the libs/events contract's model_dump_json, byte for byte) and the audit event's JSON."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from uuid_utils.compat import uuid7

from diaspora_identity.audit import AuditEntry
from diaspora_identity.jurisdictions import default_jurisdictions
from diaspora_identity.policy import default_policy
from diaspora_identity.principal import Principal, Role
from diaspora_reference import esco, places
from registry.bulk import json_text
from registry.imports.columns import layout
from registry.imports.reading import open_sheet
from registry.imports.registration import registration_schema
from registry.imports.rows import (
    AuditJson,
    history_line,
    member_columns,
    registered_data,
    registered_events,
)
from registry.imports.validation import ValidRow, check_record
from registry.members.columns import registration_columns
from registry.members.events import audit_event, registered_event
from registry.members.records import MEMBER_FIELDS, history_value, view_of
from registry.members.registration import GIVEN_AT_REGISTRATION

from .data.embassy_lists import HEADER_FR, Lists, build_rows, csv_bytes

DOCTOR = esco.occupations_for_isco("2211")[0]
SKILL = esco.find_skills("gestion de projet", "fr", limit=1)[0]
LYON = places.city("FR", "Lyon")
NOW = datetime(2026, 11, 29, 5, 30, 1, 123456, tzinfo=UTC)


def body(**fields: Any) -> BaseModel:
    data: dict[str, Any] = {
        "given_name": "Akossiwa",
        "family_name": "Mensah",
        "date_of_birth": "1990-04-27",
        "country_of_residence": "FR",
        "email": "akossiwa.mensah@example.org",
        "phone": "+33612345678",
        "consent_recorded": {"method": "signed_form"},
    }
    return registration_schema().model_validate(data | fields)


BODIES = {
    "required only": body(),
    "unicode names": body(
        given_name="Kɔkú Ɖéla 🌍",
        family_name='Agbéko "Jr" \\ O\u2019Neil\u2028',
        email="kɔku@exämple.tg",
    ),
    "english, male": body(preferred_language="en", sex="male"),
    "known city": body(city="lyon", sex="female"),
    "unknown city": body(city="Trifouillis-les-Oies"),
    "city by id": body(city={"geonames_id": LYON.geonames_id} if LYON else "Lyon"),
    "every part": body(
        sex="other",
        place_of_birth={"city": "Kpalimé", "country": "tg"},
        postal_address={
            "lines": ["12 rue des Lilas", "Bâtiment B"],
            "postal_code": "69003",
            "city": "Lyon",
            "country": "FR",
        },
        city="Lyon",
        arrival_year=2012,
        residence_status="permanent_resident",
        languages=["FR", "ee", "en"],
        occupations=[{"esco_uri": DOCTOR.uri, "title": "Médecin urgentiste"}, {"isco_code": "23"}],
        skills=[{"esco_uri": SKILL.uri}, {"label": "Cuisine togolaise"}],
        education=[{"isced_level": 8, "field": "Médecine", "country": "TG", "year": 2015}],
        experience=[{"title": "Urgentiste", "isco_code": "2211", "start_year": 2016}],
        availability={"mission_types": ["medical", "teaching"], "available_from": "2027-01-01"},
        consents={"contact_for_missions": True, "newsletters": False},
    ),
    "empty lists, default availability": body(
        languages=[], occupations=[], skills=[], education=[], experience=[], availability={}
    ),
}


def imported_bodies() -> list[BaseModel]:
    """The valid rows of an import test's list (Ewe letters in names, both sexes...)."""
    rows = build_rows(
        Lists(seed=5, phone_base=71_000_000), rows=300, header=HEADER_FR, existing=[], ewe=True
    )
    sheet = open_sheet(
        csv_bytes(HEADER_FR, rows, encoding="utf-8", delimiter=";", bom=False), "l.csv"
    )
    everywhere = Principal(subject="coordinator", roles=frozenset({Role.MINISTRY_COORDINATOR}))
    checked = [
        check_record(
            r,
            layout(sheet.header),
            schema=registration_schema(),
            jurisdictions=default_jurisdictions(),
            decision=default_policy().decide(everywhere, "member_import", "create"),
            extra_fields={"consent_recorded": {"method": "in_person"}},
        )
        for r in sheet.records()
        if not r.blank
    ]
    valid = [c.body for c in checked if isinstance(c, ValidRow)]
    assert len(valid) > 200
    return valid


def both_rows(value: BaseModel, reference: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    member_id = uuid7()
    given = dict(
        member_id=member_id,
        embassy_id="fr-paris",
        registered_by="officer-1",
        by_role="embassy_officer",
        consent_method="signed_form",
        consent_reference=reference,
        now=NOW,
    )
    one_by_one = registration_columns(
        value.command(None),  # type: ignore[attr-defined]
        owner_subject=None,
        digest=None,
        **given,  # type: ignore[arg-type]
    )
    return member_columns(value, **given), one_by_one  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(BODIES))
@pytest.mark.parametrize("reference", [None, "form 12/ä"])
def test_rows_are_what_a_registration_makes(name: str, reference: str | None) -> None:
    assert_same_rows(BODIES[name], reference)


def test_an_imported_lists_rows_are_what_registrations_make() -> None:
    for value in imported_bodies():
        assert_same_rows(value, None)


def assert_same_rows(value: BaseModel, reference: str | None) -> None:
    built, one_by_one = both_rows(value, reference)
    # The members row: the same columns in the same order (COPY's), the same values.
    assert list(built) == list(one_by_one)
    assert built == one_by_one
    # The history line, as the import made it from the record view before rows.py.
    record = view_of(one_by_one)
    given = [f for f in MEMBER_FIELDS if f in GIVEN_AT_REGISTRATION and record.get(f)]
    assert history_line(built) == (
        ",".join(given),
        json_text({f: history_value(f, record) for f in given}),
    )
    # The event: the contract's JSON, byte for byte.
    [(key, value_json)] = registered_events([built])
    assert key == str(one_by_one["id"])
    assert value_json == registered_event(one_by_one).model_dump_json().encode()


def containers(value: Any) -> Iterator[Any]:
    """Every list and dict in a value, itself included."""
    if isinstance(value, list | dict):
        yield value
        for item in value if isinstance(value, list) else value.values():
            yield from containers(item)


def test_no_two_rows_share_a_list_or_a_dict() -> None:
    first, _ = both_rows(BODIES["required only"], None)
    second, _ = both_rows(BODIES["required only"], None)
    for column, value in first.items():
        shared = {id(c) for c in containers(value)} & {id(c) for c in containers(second[column])}
        assert not shared, column
    first["availability"]["mission_types"].append("medical")
    assert second["availability"]["mission_types"] == []


def test_the_batch_is_validated_against_the_contract() -> None:
    built, _ = both_rows(BODIES["required only"], None)
    wrong = dict(built, preferred_language="de")
    with pytest.raises(ValidationError):
        registered_events([built, wrong])
    assert registered_data(built)["profile"]["consents"] == []


@pytest.mark.parametrize(
    "shared",
    [
        {"actor_client": None, "client_address": None, "request_id": "import:1", "trace_id": None},
        {"actor_client": "cli", "client_address": "10.0.0.1", "request_id": None, "trace_id": "t"},
        # A value that reads like one of the placeholder ids: the model per entry instead.
        {
            "actor_client": "00000000-0000-0000-0000-000000000001",
            "client_address": None,
            "request_id": None,
            "trace_id": None,
        },
    ],
)
def test_audit_json_is_the_contracts(shared: dict[str, Any]) -> None:
    values = {
        "occurred_at": NOW,
        "actor_subject": "Ɖéla officer",
        "actor_roles": ["embassy_officer"],
        "actor_is_service": False,
        "action": "create",
        "resource": "member_import",
        "fields": sorted(MEMBER_FIELDS),
    } | shared
    make = AuditJson(**values)
    for _ in range(5):
        audit_id, record_id = uuid7(), uuid7()
        entry = AuditEntry(audit_id=audit_id, record_id=record_id, **values)
        assert make(audit_id, record_id) == audit_event(entry).model_dump_json().encode()

"""The policy table and its one enforcement path; jurisdictions; claims."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import Column, MetaData, Table, Text, Uuid, select
from sqlalchemy.dialects import postgresql

from diaspora_identity.jurisdictions import Jurisdictions, default_jurisdictions
from diaspora_identity.policy import Forbidden, Policy, default_policy
from diaspora_identity.principal import Principal, Role, principal_from_claims

MEMBER_FIELDS = [
    "id",
    "given_name",
    "family_name",
    "date_of_birth",
    "country_of_residence",
    "embassy_id",
    "email",
    "phone",
    "preferred_language",
    "registered_at",
    "registered_by",
]


def who(*roles: Role, **kwargs: Any) -> Principal:
    return Principal(subject=kwargs.pop("subject", "s-1"), roles=frozenset(roles), **kwargs)


def record(**kwargs: Any) -> dict[str, Any]:
    base = dict.fromkeys(MEMBER_FIELDS, "x")
    base.update(id=uuid4(), owner_subject=None, embassy_id="fr-paris")
    base.update(kwargs)
    return base


def test_the_shipped_policy_loads_and_names_only_known_roles() -> None:
    policy = default_policy()
    assert {"member", "member_access_log", "delivery"} <= set(policy.table.resources)
    assert policy.resource("member").personal_fields >= {"given_name", "email", "phone"}


def test_function_level_denial_is_forbidden() -> None:
    policy = default_policy()
    with pytest.raises(Forbidden):
        policy.decide(who(Role.ANALYST), "member", "read")
    with pytest.raises(Forbidden):
        policy.decide(who(Role.CITIZEN), "member", "search")
    with pytest.raises(Forbidden):
        policy.decide(who(), "member", "list")  # a token with no platform role
    assert policy.allowed(who(Role.ADMIN), "member", "export")


def test_a_grant_naming_clients_is_only_for_their_tokens() -> None:
    policy = Policy.from_yaml(
        """
resources:
  package:
    actions:
      answer:
        service: {scope: all, clients: [national-documentation-authority]}
      read:
        service: {scope: all}
"""
    )
    authority = who(Role.SERVICE, client_id="national-documentation-authority")
    assert policy.allowed(authority, "package", "answer")
    for other in (who(Role.SERVICE, client_id="registry"), who(Role.SERVICE)):
        with pytest.raises(Forbidden):
            policy.decide(other, "package", "answer")
        assert policy.allowed(other, "package", "read")
    # The shipped table names the authority for consular's hand-over answers.
    shipped = default_policy()
    assert shipped.allowed(authority, "consular_handover", "answer")
    assert not shipped.allowed(
        who(Role.SERVICE, client_id="matching"), "consular_handover", "answer"
    )


def test_scopes_reach_exactly_their_records() -> None:
    policy = default_policy()
    mine = uuid4()
    citizen = policy.decide(who(Role.CITIZEN, member_id=mine), "member", "read")
    assert citizen.permits(record(id=mine))
    assert citizen.permits(record(owner_subject="s-1"))
    assert not citizen.permits(record())
    paris = policy.decide(
        who(Role.EMBASSY_OFFICER, embassies=frozenset({"fr-paris"})), "member", "read"
    )
    assert paris.permits(record(embassy_id="fr-paris"))
    assert not paris.permits(record(embassy_id="de-berlin"))
    nowhere = policy.decide(who(Role.EMBASSY_OFFICER), "member", "read")
    assert not nowhere.permits(record(embassy_id="fr-paris"))


def test_the_sql_condition_matches_the_scope() -> None:
    table = Table(
        "members",
        MetaData(),
        Column("id", Uuid),
        Column("owner_subject", Text),
        Column("embassy_id", Text),
    )
    columns = {
        "id": table.c.id,
        "owner_subject": table.c.owner_subject,
        "embassy_id": table.c.embassy_id,
    }
    policy = default_policy()

    def sql(principal: Principal, action: str = "list") -> str:
        decision = policy.decide(principal, "member", action)
        query = select(table.c.id).where(decision.where(columns))
        return str(
            query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        )

    assert "embassy_id IN ('be-brussels', 'fr-paris')" in sql(
        who(Role.EMBASSY_OFFICER, embassies=frozenset({"fr-paris", "be-brussels"}))
    )
    assert "owner_subject = 's-1'" in sql(who(Role.CITIZEN))
    assert "false" in sql(who(Role.EMBASSY_OFFICER)).lower()
    assert "WHERE true" in sql(who(Role.ADMIN))


def test_analysts_get_aggregates_only() -> None:
    """Member rows, even without personal fields, give exact counts per country and
    embassy (small-cell suppression defeated): analysts read statistics only."""
    policy = default_policy()
    for action in ("list", "export", "read", "search", "statistics_exact"):
        with pytest.raises(Forbidden):
            policy.decide(who(Role.ANALYST), "member", action)
    assert policy.allowed(who(Role.ANALYST), "member", "statistics")


ROWS_POLICY = """
resources:
  member:
    personal_fields: [id, given_name, family_name, date_of_birth, email, phone, registered_by]
    scope_attributes: {own_subject: owner_subject, own_member: id}
    actions:
      list:
        citizen: {scope: own}
        analyst: {scope: all, fields: non_personal}
"""


def test_non_personal_rows_keep_no_personal_field() -> None:
    decision = Policy.from_yaml(ROWS_POLICY).decide(who(Role.ANALYST), "member", "list")
    shown = decision.project(record(), MEMBER_FIELDS)
    assert set(shown) == {
        "country_of_residence",
        "embassy_id",
        "preferred_language",
        "registered_at",
    }
    assert decision.output_fields(MEMBER_FIELDS) == list(shown)


def test_field_rules_are_per_row_when_roles_combine() -> None:
    # A non_personal grant combined with an own one: everything of one's own record only.
    mine = uuid4()
    decision = Policy.from_yaml(ROWS_POLICY).decide(
        who(Role.ANALYST, Role.CITIZEN, member_id=mine), "member", "list"
    )
    assert "email" in decision.project(record(id=mine), MEMBER_FIELDS)
    assert "email" not in decision.project(record(), MEMBER_FIELDS)


def test_partner_scope_and_bad_tables_are_refused_at_load() -> None:
    policy = Policy.from_yaml(
        """
resources:
  case:
    scope_attributes: {partner: partner_org}
    actions:
      read: {partner_caseworker: {scope: partner}}
"""
    )
    decision = policy.decide(who(Role.PARTNER_CASEWORKER, partner_org="ngo-a"), "case", "read")
    assert decision.permits({"partner_org": "ngo-a"})
    assert not decision.permits({"partner_org": "ngo-b"})
    with pytest.raises(ValueError, match="needs its attribute"):
        Policy.from_yaml("resources: {x: {actions: {read: {citizen: {scope: own}}}}}")
    with pytest.raises(ValueError, match="citizen"):
        Policy.from_yaml("resources: {x: {actions: {read: {superuser: {scope: all}}}}}")


def test_every_country_maps_to_exactly_one_embassy() -> None:
    j = default_jurisdictions()
    assert j.embassy_for("FR") == "fr-paris"
    assert j.embassy_for("NO") == "de-berlin"  # not YAML's boolean "no"
    assert j.embassy_for("DE") == "de-berlin"
    assert j.embassy_for("US") == "us-washington"
    assert j.embassy_for("CA") == "ca-ottawa"
    assert j.embassy_for("BJ") == "bj-cotonou"
    assert j.embassy_for("NC") == j.default_embassy  # not listed: the default post
    import pycountry

    everyone = {c.alpha_2 for c in pycountry.countries}
    union: set[str] = set()
    for embassy in j.embassies:
        covered = j.countries_of([embassy])
        assert not covered & union, embassy
        union |= covered
    assert union == everyone


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "default_embassy: aa-b\nembassies:\n"
            "  - {id: aa-b, name: A, city: A, country: FR, covers: [FR]}\n"
            "  - {id: cc-d, name: C, city: C, country: DE, covers: [DE, FR]}\n",
            "covered by both",
        ),
        (
            "default_embassy: aa-b\nembassies:\n"
            "  - {id: aa-b, name: A, city: A, country: FR, covers: [ZZ]}\n",
            "ISO 3166",
        ),
        (
            "default_embassy: xx-y\nembassies:\n"
            "  - {id: aa-b, name: A, city: A, country: FR, covers: [FR]}\n",
            "default_embassy",
        ),
    ],
)
def test_broken_jurisdiction_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Jurisdictions.from_yaml(text)


def test_keycloak_claims_make_a_principal() -> None:
    member = uuid4()
    principal = principal_from_claims(
        {
            "sub": "u-1",
            "realm_access": {"roles": ["citizen", "offline_access", "default-roles-diaspora"]},
            "resource_access": {
                "diaspora-api": {"roles": ["analyst"]},
                "other": {"roles": ["admin"]},
            },
            "member_id": str(member),
            "azp": "portal",
        },
        audience="diaspora-api",
    )
    assert principal.roles == {Role.CITIZEN, Role.ANALYST}
    assert principal.member_id == member
    assert principal.client_id == "portal"
    service = principal_from_claims({"sub": "svc", "realm_access": {"roles": ["service"]}})
    assert service.is_service
    with pytest.raises(ValueError, match="UUID"):
        principal_from_claims({"sub": "u", "member_id": "42"})
    with pytest.raises(ValueError, match="subject"):
        principal_from_claims({"realm_access": {"roles": ["admin"]}})

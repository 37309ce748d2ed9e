"""The full member profile against the real database: validation against the reference
data, the gazetteer, encryption of document numbers at rest, assisted registration,
updates with history, If-Match, confirmation, and the events they publish."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from diaspora_identity.testing import LocalIssuer, Persona, admin, citizen, officer
from diaspora_reference import esco, isco, places
from registry.members.tables import member_changes, member_documents, members
from registry.resources import Registry
from registry.tables import audit_log, outbox

pytestmark = pytest.mark.integration

PASSPORT = "TG7654321"
ID_CARD = "CNI-0042-7788"
DOCTOR = esco.occupations_for_isco("2211")[0]
SKILL = esco.find_skills("gestion de projet", "fr", limit=1)[0]


def person(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "given_name": "Akossiwa",
        "family_name": "Mensah",
        "date_of_birth": "1990-04-27",
        "country_of_residence": "FR",
        "email": "akossiwa.mensah@example.org",
        "phone": "+33612345678",
    }
    body.update(overrides)
    return body


def full_person(**overrides: Any) -> dict[str, Any]:
    return person(
        sex="female",
        place_of_birth={"city": "Kpalimé", "country": "tg"},
        documents=[
            {"kind": "passport", "number": PASSPORT.lower(), "expires_on": "2031-05-01"},
            {"kind": "national_id_card", "number": ID_CARD},
        ],
        postal_address={
            "lines": ["12 rue des Lilas", "Bâtiment B"],
            "postal_code": "69003",
            "city": "Lyon",
            "country": "FR",
        },
        city="lyon",
        arrival_year=2012,
        residence_status="permanent_resident",
        languages=["FR", "ee", "en", "fr"],
        occupations=[{"esco_uri": DOCTOR.uri, "title": "Médecin urgentiste"}, {"isco_code": "23"}],
        skills=[{"esco_uri": SKILL.uri}, {"label": "Cuisine togolaise"}],
        education=[
            {
                "isced_level": 8,
                "field": "Médecine",
                "institution": "Université de Lomé",
                "country": "TG",
                "year": 2015,
            }
        ],
        experience=[
            {"title": "Urgentiste", "isco_code": "2211", "country": "FR", "start_year": 2016}
        ],
        availability={
            "mission_types": ["medical", "teaching", "medical"],
            "available_from": "2027-01-01",
            "remote": True,
        },
        consents={"contact_for_missions": True, "newsletters": False},
        **overrides,
    )


@asynccontextmanager
async def as_(url: str, issuer: LocalIssuer, persona: Persona) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=20, headers=issuer.headers(persona)) as c:
        yield c


async def events(registry: Registry, member_id: str) -> list[tuple[str, dict[str, Any]]]:
    async with registry.sessions() as session:
        rows = await session.execute(
            select(outbox.c.event_type, outbox.c.value)
            .where(outbox.c.key == member_id, outbox.c.event_type.like("registry.member.%"))
            .order_by(outbox.c.id)
        )
        return [(r.event_type, json.loads(r.value)) for r in rows]


async def test_a_full_profile_is_validated_resolved_and_published(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    me = citizen()
    async with as_(registry_url, identity_provider, me) as client:
        created = await client.post("/members", json=full_person())
        assert created.status_code == 201, created.text
        assert created.headers["etag"] == '"1"'
        member = created.json()
        member_id = member["id"]
        lyon = places.city("FR", "Lyon")
        assert lyon is not None
        assert member["city"] == {
            "name": "Lyon",
            "geonames_id": lyon.geonames_id,
            "latitude": lyon.latitude,
            "longitude": lyon.longitude,
        }
        assert member["embassy_id"] == "fr-paris"
        assert member["sex"] == "female"
        assert member["place_of_birth"] == {"city": "Kpalimé", "country": "TG"}
        assert member["languages"] == ["fr", "ee", "en"]
        # The ESCO occupation brings its ISCO-08 unit group; a coarser ISCO group is kept.
        assert member["occupations"] == [
            {"isco_code": "2211", "esco_uri": DOCTOR.uri, "title": "Médecin urgentiste"},
            {"isco_code": "23"},
        ]
        # An ESCO skill gets its French label; free text stays free text.
        assert member["skills"] == [
            {"esco_uri": SKILL.uri, "label": SKILL.label_fr},
            {"label": "Cuisine togolaise"},
        ]
        assert member["availability"]["mission_types"] == ["medical", "teaching"]
        assert {c["purpose"]: c["granted"] for c in member["consents"]} == {
            "contact_for_missions": True,
            "newsletters": False,
        }
        assert member["registration_consent"] == {"method": "self_service", "reference": None}
        assert member["last_confirmed_at"] == member["registered_at"]
        assert member["version"] == 1
        # The person sees their own document numbers (normalised), decrypted.
        mine = await client.get(f"/members/{member_id}")
        assert mine.headers["etag"] == '"1"'
        assert {d["kind"]: d["number"] for d in mine.json()["documents"]} == {
            "passport": PASSPORT,
            "national_id_card": ID_CARD,
        }

    published = await events(registry, member_id)
    assert [t for t, _ in published] == ["registry.member.registered"]
    data = published[0][1]
    assert data["given_name"] == "Akossiwa"
    snapshot = data["profile"]
    assert snapshot["city"]["geonames_id"] == lyon.geonames_id
    assert snapshot["occupations"][0]["isco_code"] == "2211"
    assert snapshot["skills"][0]["esco_uri"] == SKILL.uri
    assert snapshot["education"][0]["isced_level"] == 8
    assert snapshot["consents"][0]["purpose"] == "contact_for_missions"
    assert snapshot["last_confirmed_at"]
    # Registry-only data stays here: no address, no place of birth, no document in events.
    raw = json.dumps(data)
    for secret in (PASSPORT, ID_CARD, "rue des Lilas", "69003", "Kpalimé", "passport"):
        assert secret not in raw

    async with registry.sessions() as session:
        row = (await session.execute(select(members))).one()
    assert row.occupation_codes == ["2", "22", "221", "2211", "23"]
    assert row.skill_uris == [SKILL.uri]
    assert row.mission_types == ["medical", "teaching"]


async def test_document_numbers_are_encrypted_at_rest(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    async with as_(registry_url, identity_provider, citizen()) as client:
        created = await client.post("/members", json=full_person())
        member_id = created.json()["id"]
        await client.patch(f"/members/{member_id}", json={"given_name": "Akossiwa Afi"})
    async with registry.sessions() as session:
        stored = (await session.execute(select(member_documents))).mappings().all()
        # Every text column of every table, as the database holds it.
        dump = await session.execute(
            text(
                "SELECT string_agg(t::text, ' ') FROM (SELECT * FROM members) t "
                "UNION ALL SELECT string_agg(t::text, ' ') FROM (SELECT * FROM member_changes) t "
                "UNION ALL SELECT string_agg(t::text, ' ') FROM (SELECT * FROM outbox) t "
                "UNION ALL SELECT string_agg(t::text, ' ') FROM (SELECT * FROM audit_log) t"
            )
        )
        everything = " ".join(r[0] or "" for r in dump)
    assert {r["kind"] for r in stored} == {"passport", "national_id_card"}
    for row in stored:
        assert row["key_id"] == registry.cipher.active_key_id
        assert PASSPORT.encode() not in row["number_ciphertext"]
        assert ID_CARD.encode() not in row["number_ciphertext"]
        assert len(row["number_ciphertext"]) > 12 + 16  # nonce + tag + body
    for secret in (PASSPORT, ID_CARD, PASSPORT.lower()):
        assert secret not in everything
        assert secret.encode().hex() not in everything  # not as bytea either


async def test_unknown_cities_are_kept_without_coordinates_and_ids_are_checked(
    registry_url: str, identity_provider: LocalIssuer
) -> None:
    async with as_(registry_url, identity_provider, citizen()) as client:
        created = await client.post("/members", json=person(city="Saint-Rien-sur-Loue"))
        assert created.status_code == 201, created.text
        assert created.json()["city"] == {
            "name": "Saint-Rien-sur-Loue",
            "geonames_id": None,
            "latitude": None,
            "longitude": None,
        }
    lome = places.city("TG", "Lomé")
    assert lome is not None
    async with as_(registry_url, identity_provider, citizen()) as client:
        wrong = await client.post("/members", json=person(city={"geonames_id": lome.geonames_id}))
        assert wrong.status_code == 422
        assert [e["field"] for e in wrong.json()["errors"]] == ["city"]
        right = await client.post(
            "/members",
            json=person(country_of_residence="TG", city={"geonames_id": lome.geonames_id}),
        )
        assert right.status_code == 201, right.text
        assert right.json()["city"]["name"] == "Lomé"
        assert right.json()["embassy_id"] == "tg-lome"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"occupations": [{"isco_code": "9999"}]}, "occupations.0.isco_code"),
        ({"occupations": [{"isco_code": "22222"}]}, "occupations.0.isco_code"),
        ({"occupations": [{"title": "médecin"}]}, "occupations.0"),
        (
            {"occupations": [{"isco_code": "7", "esco_uri": DOCTOR.uri}]},
            "occupations.0",
        ),
        (
            {"occupations": [{"esco_uri": "http://data.europa.eu/esco/occupation/nope"}]},
            "occupations.0.esco_uri",
        ),
        (
            {"skills": [{"esco_uri": "http://data.europa.eu/esco/skill/nope"}]},
            "skills.0.esco_uri",
        ),
        ({"skills": [{}]}, "skills.0"),
        ({"languages": ["fr", "xx"]}, "languages"),
        ({"languages": ["fra"]}, "languages"),
        ({"education": [{"isced_level": 9}]}, "education.0.isced_level"),
        ({"education": [{"isced_level": 6, "country": "ZZ"}]}, "education.0.country"),
        ({"experience": [{"title": "x", "start_year": 2020, "end_year": 2010}]}, "experience.0"),
        ({"arrival_year": 1850}, "arrival_year"),
        ({"arrival_year": 1985}, ""),  # before the year of birth
        ({"sex": "unknown"}, "sex"),
        ({"residence_status": "undocumented"}, "residence_status"),
        ({"availability": {"mission_types": ["tourism"]}}, "availability.mission_types.0"),
        (
            {"availability": {"available_from": "2027-01-01", "available_until": "2026-01-01"}},
            "availability",
        ),
        ({"documents": [{"kind": "passport", "number": "a"}]}, "documents.0.number"),
        ({"documents": [{"kind": "driving_licence", "number": "X1234"}]}, "documents.0.kind"),
        (
            {
                "documents": [
                    {"kind": "passport", "number": "A1234"},
                    {"kind": "passport", "number": "B1234"},
                ]
            },
            "documents",
        ),
        (
            {"postal_address": {"lines": [], "city": "Lyon", "country": "FR"}},
            "postal_address.lines",
        ),
        ({"place_of_birth": {"country": "XX"}}, "place_of_birth.country"),
        ({"consents": {"marketing": True}}, "consents.marketing.[key]"),
        ({"city": {}}, "city"),
    ],
)
async def test_invalid_profiles_are_422_naming_the_field_and_store_nothing(
    registry_client: httpx.AsyncClient, registry: Registry, overrides: dict[str, Any], field: str
) -> None:
    response = await registry_client.post("/members", json=person(**overrides))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    fields = [e["field"] or "" for e in response.json()["errors"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    async with registry.sessions() as session:
        assert (await session.execute(select(members))).first() is None


async def test_assisted_registration_records_who_filed_it_and_the_persons_consent(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    paris = officer("fr-paris")
    async with as_(registry_url, identity_provider, paris) as staff:
        refused = await staff.post("/members", json=person())
        assert refused.status_code == 422
        assert [e["field"] for e in refused.json()["errors"]] == ["consent_recorded"]
        bad_method = await staff.post(
            "/members", json=person(consent_recorded={"method": "self_service"})
        )
        assert bad_method.status_code == 422
        filed = await staff.post(
            "/members",
            json=full_person(
                consent_recorded={"method": "signed_form", "reference": "PAR-2026-17"}
            ),
        )
        assert filed.status_code == 201, filed.text
        member = filed.json()
        assert member["registered_by"] == paris.subject
        assert member["registration_consent"] == {
            "method": "signed_form",
            "reference": "PAR-2026-17",
        }
        # Staff write document numbers but never read them back (policy: member_document).
        read = await staff.get(f"/members/{member['id']}")
        assert read.status_code == 200
        assert read.json()["documents"] == [
            {"kind": "national_id_card", "issuing_country": "TG", "expires_on": None},
            {"kind": "passport", "issuing_country": "TG", "expires_on": "2031-05-01"},
        ]
        assert PASSPORT not in read.text
        history = (await staff.get(f"/members/{member['id']}/history")).json()["items"]
    assert [h["action"] for h in history] == ["registered"]
    assert history[0]["actor_role"] == "embassy_officer"
    assert history[0]["actor_subject"] == paris.subject
    assert "documents" in history[0]["fields"]
    assert PASSPORT not in json.dumps(history)
    async with registry.sessions() as session:
        consents = (
            await session.execute(text("SELECT method, actor_role FROM member_consents"))
        ).all()
    assert set(consents) == {("signed_form", "embassy_officer")}


async def test_updates_keep_a_history_and_publish_the_whole_profile(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    me = citizen()
    paris = officer("fr-paris")
    async with as_(registry_url, identity_provider, me) as mine:
        member_id = (await mine.post("/members", json=full_person())).json()["id"]
        changed = await mine.patch(
            f"/members/{member_id}",
            json={
                "phone": "+33 6 99 88 77 66",
                "languages": ["fr", "de"],
                "occupations": [{"isco_code": "2212"}],
                "postal_address": None,
            },
        )
        assert changed.status_code == 200, changed.text
        assert changed.headers["etag"] == '"2"'
        assert changed.json()["phone"] == "+33699887766"
        assert "postal_address" not in changed.json() or changed.json()["postal_address"] is None
        # The same values again: nothing changes, no version, no event.
        again = await mine.patch(f"/members/{member_id}", json={"languages": ["fr", "de"]})
        assert again.json()["version"] == 2
    async with as_(registry_url, identity_provider, paris) as staff:
        corrected = await staff.patch(
            f"/members/{member_id}", json={"family_name": "Mensah-Agbeko"}
        )
        assert corrected.status_code == 200, corrected.text
    async with as_(registry_url, identity_provider, me) as mine:
        page = (await mine.get(f"/members/{member_id}/history")).json()
        log = (await mine.get(f"/members/{member_id}/access-log")).json()["items"]
    history = page["items"]
    assert [h["action"] for h in history] == ["updated", "updated", "registered"]
    officer_change, own_change = history[0], history[1]
    assert officer_change["actor_role"] == "embassy_officer"
    assert officer_change["actor_subject"] == paris.subject
    assert officer_change["fields"] == ["family_name"]
    assert officer_change["old_values"] == {"family_name": "Mensah"}
    assert officer_change["new_values"] == {"family_name": "Mensah-Agbeko"}
    assert own_change["actor_role"] == "citizen"
    assert own_change["actor_subject"] is None
    assert own_change["fields"] == ["postal_address", "phone", "languages", "occupations"]
    assert own_change["old_values"]["phone"] == "+33612345678"
    assert own_change["new_values"]["postal_address"] is None
    assert own_change["version"] == 2
    # The officer's correction shows in the person's access log.
    assert [(e["action"], e["fields"]) for e in log] == [("update", ["family_name"])]

    published = await events(registry, member_id)
    assert [t for t, _ in published] == [
        "registry.member.registered",
        "registry.member.updated",
        "registry.member.updated",
    ]
    first_update = published[1][1]
    # The postal address is not in the snapshot: its change is not announced.
    assert first_update["changed_fields"] == ["phone", "languages", "occupations"]
    assert first_update["profile"]["phone"] == "+33699887766"
    assert [o["isco_code"] for o in first_update["profile"]["occupations"]] == ["2212"]
    assert published[2][1]["profile"]["family_name"] == "Mensah-Agbeko"


async def test_moving_country_rederives_the_embassy_and_drops_the_old_city(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    async with as_(registry_url, identity_provider, citizen()) as mine:
        member_id = (await mine.post("/members", json=full_person())).json()["id"]
        moved = await mine.patch(f"/members/{member_id}", json={"country_of_residence": "DE"})
        assert moved.status_code == 200, moved.text
        assert moved.json()["embassy_id"] == "de-berlin"
        assert "city" not in moved.json() or moved.json()["city"] is None
        settled = await mine.patch(f"/members/{member_id}", json={"city": "München"})
        assert settled.json()["city"]["name"] == "Munich"
        assert settled.json()["city"]["latitude"] is not None
    published = await events(registry, member_id)
    assert published[1][1]["changed_fields"] == ["country_of_residence", "city", "embassy_id"]
    assert published[1][1]["profile"]["embassy_id"] == "de-berlin"
    assert published[2][1]["changed_fields"] == ["city"]


async def test_if_match_guards_against_lost_updates(
    registry_url: str, identity_provider: LocalIssuer
) -> None:
    async with as_(registry_url, identity_provider, citizen()) as mine:
        created = await mine.post("/members", json=person())
        member_id = created.json()["id"]
        etag = created.headers["etag"]
        first = await mine.patch(
            f"/members/{member_id}", json={"arrival_year": 2015}, headers={"If-Match": etag}
        )
        assert first.status_code == 200
        assert first.headers["etag"] == '"2"'
        stale = await mine.patch(
            f"/members/{member_id}", json={"arrival_year": 2016}, headers={"If-Match": etag}
        )
        assert stale.status_code == 412
        assert stale.headers["content-type"] == "application/problem+json"
        assert stale.headers["etag"] == '"2"'
        assert stale.json()["current_version"] == 2
        weak = await mine.patch(
            f"/members/{member_id}", json={"arrival_year": 2016}, headers={"If-Match": 'W/"2"'}
        )
        assert weak.status_code == 412
        garbage = await mine.patch(
            f"/members/{member_id}", json={"arrival_year": 2016}, headers={"If-Match": "2"}
        )
        assert garbage.status_code == 412
        assert (await mine.get(f"/members/{member_id}")).json()["arrival_year"] == 2015
        star = await mine.patch(
            f"/members/{member_id}", json={"arrival_year": 2016}, headers={"If-Match": "*"}
        )
        assert star.status_code == 200
        confirm_stale = await mine.post(f"/members/{member_id}/confirm", headers={"If-Match": etag})
        assert confirm_stale.status_code == 412


async def test_bad_updates_are_422_and_change_nothing(
    registry_url: str, identity_provider: LocalIssuer
) -> None:
    async with as_(registry_url, identity_provider, citizen()) as mine:
        member_id = (await mine.post("/members", json=person())).json()["id"]
        for body, field in [
            ({"given_name": None}, "given_name"),
            ({"email": None}, "email"),
            ({"occupations": [{"isco_code": "0000"}]}, "occupations.0.isco_code"),
            ({"languages": ["zz"]}, "languages"),
            ({"owner_subject": "someone-else"}, "owner_subject"),
            ({"embassy_id": "de-berlin"}, "embassy_id"),
            ({"version": 7}, "version"),
            ({"city": {"geonames_id": 999999999}}, "city"),
        ]:
            response = await mine.patch(f"/members/{member_id}", json=body)
            assert response.status_code == 422, (body, response.text)
            assert field in [e["field"] for e in response.json()["errors"]], body
        record = (await mine.get(f"/members/{member_id}")).json()
    assert record["version"] == 1
    assert record["given_name"] == "Akossiwa"


async def test_confirmation_moves_last_confirmed_and_is_published(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    async with as_(registry_url, identity_provider, citizen()) as mine:
        created = (await mine.post("/members", json=person())).json()
        confirmed = await mine.post(f"/members/{created['id']}/confirm")
        assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["last_confirmed_at"] > created["last_confirmed_at"]
    assert confirmed.json()["version"] == 2
    published = await events(registry, created["id"])
    assert [t for t, _ in published][-1] == "registry.member.confirmed"
    event = published[-1][1]
    assert event["profile"]["last_confirmed_at"] == event["confirmed_at"]
    async with registry.sessions() as session:
        actions = [r.action for r in await session.execute(select(member_changes.c.action))]
    assert sorted(actions) == ["confirmed", "registered"]


async def test_scope_of_updates_history_and_confirmation(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    async with as_(registry_url, identity_provider, citizen()) as mine:
        member_id = (await mine.post("/members", json=person())).json()["id"]
    path = f"/members/{member_id}"
    for persona in (citizen(), officer("de-berlin")):
        async with as_(registry_url, identity_provider, persona) as other:
            assert (await other.patch(path, json={"arrival_year": 2000})).status_code == 404
            assert (await other.get(f"{path}/history")).status_code == 404
            assert (await other.post(f"{path}/confirm")).status_code == 404
    async with as_(registry_url, identity_provider, admin()) as staff:
        assert (await staff.get(f"{path}/history")).status_code == 200
    async with registry.sessions() as session:
        audited = (await session.execute(select(audit_log.c.action, audit_log.c.resource))).all()
        record = (await session.execute(select(members.c.version))).one()
    assert audited == [("list", "member_history")]
    assert record.version == 1


def test_the_reference_data_used_here_is_the_shipped_one() -> None:
    assert DOCTOR.isco_code == "2211"
    assert isco.group("2211") is not None


async def test_reference_data_helps_fill_in_a_profile(
    registry_url: str, identity_provider: LocalIssuer, anonymous: httpx.AsyncClient
) -> None:
    async with as_(registry_url, identity_provider, citizen()) as client:
        found = await client.get("/reference/occupations", params={"q": "infirm", "limit": 5})
        assert found.status_code == 200
        choice = found.json()[0]
        assert choice["uri"].startswith("http://data.europa.eu/esco/occupation/")
        assert isco.group(choice["isco_code"]) is not None
        skills = (await client.get("/reference/skills", params={"q": "gestion projet"})).json()
        assert skills
        group = (await client.get("/reference/isco/2211", params={"lang": "en"})).json()
        assert [a["code"] for a in group["ancestors"]] == ["2", "22", "221"]
        assert group["label"] == isco.label("2211", "en")
        assert (await client.get("/reference/isco/9999")).status_code == 404
        cities = (
            await client.get("/reference/cities", params={"country": "tg", "q": "kpal"})
        ).json()
        assert cities[0]["name"] == "Kpalimé"
        assert (
            await client.get("/reference/cities", params={"country": "XX", "q": "ab"})
        ).status_code == 422
        # What the reference data gives is what registration accepts.
        registered = await client.post(
            "/members",
            json=person(
                occupations=[{"esco_uri": choice["uri"]}],
                skills=[{"esco_uri": skills[0]["uri"]}],
                country_of_residence="TG",
                city={"geonames_id": cities[0]["geonames_id"]},
            ),
        )
        assert registered.status_code == 201, registered.text
        assert registered.json()["occupations"][0]["isco_code"] == choice["isco_code"]
    assert (await anonymous.get("/reference/skills", params={"q": "gestion"})).status_code == 401

"""Erasure end to end over real processes: registry API, relay and worker, notifications
worker and API, real PostgreSQL and Kafka.

A person registers (full profile, documents, address), lives a little in the platform
(verification email, an update, a consent withdrawn, an officer's read), then erases
themselves. Once notifications has processed ``registry.member.erased``, every text,
JSON, array and bytea column of every table of both databases is searched for the
person's names, email and phone: none may hold them. The statistics read model still
adds up (every additive dimension sums to the total, which is the number of members).
"""

from __future__ import annotations

import unicodedata
from typing import Any

import asyncpg
import httpx
import pytest

from diaspora_devstack.testing import ServiceProcess, wait_until
from diaspora_identity.testing import analyst, citizen, coordinator, officer
from tests.conftest import LocalPlatform

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PERSON = {
    "given_name": "Sénamé",
    "family_name": "Akakpo-Zinsou",
    "date_of_birth": "1986-06-14",
    "country_of_residence": "FR",
    "email": "senam.akakpo-zinsou@example.fr",
    "phone": "+33 7 81 23 45 67",
    "preferred_language": "fr",
    "sex": "female",
    "place_of_birth": {"city": "Aného", "country": "TG"},
    "city": "Lyon",
    "postal_address": {
        "lines": ["8 quai Zinsou"],
        "postal_code": "69002",
        "city": "Lyon",
        "country": "FR",
    },
    "documents": [{"kind": "passport", "number": "TG5550001"}],
    "occupations": [{"isco_code": "2211", "title": "Pédiatre Akakpo-Zinsou"}],
    "skills": [{"label": "Pédiatrie néonatale"}],
    "education": [{"isced_level": 8, "institution": "Université de Lomé", "country": "TG"}],
    "languages": ["fr", "ee"],
    "availability": {"mission_types": ["medical"], "remote": True},
    "consents": {"contact_for_missions": True, "statistics": True, "newsletters": True},
}
E164 = "+33781234567"
OTHERS = [
    ("Kossi", "Dogbevi"),
    ("Ama", "Lawson"),
    ("Komlan", "Agbodjan"),
    ("Abla", "Tchalla"),
    ("Yao", "Gbeasor"),
    ("Enyonam", "Kludze"),
]
ADDITIVE = ("country", "city", "occupation", "education", "sex", "age_band", "embassy")


def fold(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return plain.lower()


# What must not remain anywhere: names (as written and folded), email, phone, passport.
NEEDLES = sorted(
    {
        PERSON["given_name"],
        PERSON["family_name"],
        fold(PERSON["given_name"]),
        fold(PERSON["family_name"]),
        "Akakpo",
        "Zinsou",
        PERSON["email"],
        E164,
        E164.removeprefix("+"),
        "TG5550001",
    }
)

SEARCHABLE = """
SELECT table_name, column_name, data_type, udt_name
FROM information_schema.columns
WHERE table_schema = 'public'
  AND (data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea')
       OR (data_type = 'ARRAY' AND udt_name IN ('_text', '_varchar')))
ORDER BY table_name, column_name
"""


async def leftovers(database_url: str) -> list[tuple[str, str, str]]:
    """(table, column, needle) for every needle found in any text-like column."""
    found: list[tuple[str, str, str]] = []
    connection = await asyncpg.connect(database_url)
    try:
        columns = await connection.fetch(SEARCHABLE)
        assert columns, "no column to search: wrong database?"
        for column in columns:
            table, name = column["table_name"], column["column_name"]
            ident = f'"{table}"."{name}"'
            for needle in NEEDLES:
                if column["data_type"] == "bytea":
                    condition = f"position(convert_to($1, 'UTF8') in {ident}) > 0"
                elif column["data_type"] == "ARRAY":
                    condition = f"array_to_string({ident}, ' ') ILIKE '%' || $1 || '%'"
                else:
                    condition = f"{ident}::text ILIKE '%' || $1 || '%'"
                hits = await connection.fetchval(
                    f'SELECT count(*) FROM "{table}" WHERE {condition}',  # noqa: S608
                    needle,
                )
                if hits:
                    found.append((table, name, needle))
    finally:
        await connection.close()
    return found


async def count_rows(database_url: str, query: str, *args: Any) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(await connection.fetchval(query, *args))
    finally:
        await connection.close()


async def test_erasure_leaves_nothing_of_the_person_in_either_database(
    platform: LocalPlatform,
) -> None:
    if "registry-worker" not in platform.processes:  # the read models' consumer
        registry_env = platform.processes["registry-api"].env
        log = platform.processes["registry-api"].log_path.parent / "registry-worker.log"
        platform.processes["registry-worker"] = ServiceProcess(
            "registry-worker", ["registry-worker"], registry_env, log
        ).start()
    issuer = platform.issuer
    me = citizen()
    async with httpx.AsyncClient(base_url=platform.registry_url, timeout=30) as client:
        created = await client.post("/members", json=PERSON, headers=issuer.headers(me))
        assert created.status_code == 201, created.text
        member_id = created.json()["id"]
        for n, (given, family) in enumerate(OTHERS):
            other = await client.post(
                "/members",
                headers=issuer.headers(citizen()),
                json={
                    "given_name": given,
                    "family_name": family,
                    "date_of_birth": f"19{70 + n}-0{n + 1}-1{n}",
                    "country_of_residence": "FR",
                    "email": f"{given.lower()}.{family.lower()}@example.org",
                    "phone": f"+3361122334{n}",
                    "sex": "male" if n % 2 else "female",
                    "city": "Lyon" if n < 3 else "Paris",
                },
            )
            assert other.status_code == 201, other.text
        mine = issuer.headers(me)
        updated = await client.patch(
            f"/members/{member_id}", json={"arrival_year": 2011}, headers=mine
        )
        assert updated.status_code == 200, updated.text
        withdrawn = await client.delete(f"/members/{member_id}/consents/newsletters", headers=mine)
        assert withdrawn.status_code == 200
        staff_read = await client.get(
            f"/members/{member_id}", headers=issuer.headers(officer("fr-paris"))
        )
        assert staff_read.status_code == 200
        ministry = issuer.headers(coordinator())

        async def exact_total() -> int | None:
            response = await client.get(
                "/statistics/members", params={"by": "country", "exact": "true"}, headers=ministry
            )
            assert response.status_code == 200, response.text
            total: int | None = response.json()["total"]
            return total

        # Notifications has the person (the verification email sent), statistics count
        # everyone.
        await wait_until(
            lambda: any(PERSON["email"] in m.recipients for m in platform.mailbox.messages),
            timeout=90,
            message="the verification email",
        )

        async def everyone_counted() -> bool:
            return await exact_total() == 1 + len(OTHERS)

        await wait_until(everyone_counted, timeout=90, message="the statistics read model")
        # The search below finds the person where they are (it is not a search that cannot fail).
        assert await leftovers(platform.notifications_database), "the person is in notifications"
        assert await leftovers(platform.registry_database), "the person is in the registry"

        erased = await client.delete(f"/members/{member_id}", headers=mine)
        assert erased.status_code == 204, erased.text

        async def notifications_erased() -> bool:
            return (
                await count_rows(
                    platform.notifications_database,
                    "SELECT count(*) FROM inbox WHERE event_type = 'registry.member.erased'",
                )
                == 1
            )

        await wait_until(notifications_erased, timeout=90, message="notifications' erasure")

        async def statistics_erased() -> bool:
            return await exact_total() == len(OTHERS)

        await wait_until(statistics_erased, timeout=90, message="the statistics' erasure")
        assert (await client.get(f"/members/{member_id}", headers=mine)).status_code == 404

        # The statistics still add up: every additive dimension sums to the total, which
        # is the number of members in the registry; suppressed views never show more.
        members_left = await count_rows(platform.registry_database, "SELECT count(*) FROM members")
        assert members_left == len(OTHERS)
        observatory = issuer.headers(analyst())
        for dimension in ADDITIVE:
            exact = await client.get(
                "/statistics/members", params={"by": dimension, "exact": "true"}, headers=ministry
            )
            table = exact.json()
            assert table["total"] == members_left, (dimension, table)
            assert sum(item["members"] for item in table["items"]) == members_left, dimension
            shown = await client.get(
                "/statistics/members", params={"by": dimension}, headers=observatory
            )
            assert shown.status_code == 200, shown.text
            visible = [i["members"] for i in shown.json()["items"] if i["members"] is not None]
            assert sum(visible) <= members_left, dimension
            assert all(n >= 5 for n in visible), dimension

    # Nothing of the person remains in any table of either database.
    registry_left = await leftovers(platform.registry_database)
    notifications_left = await leftovers(platform.notifications_database)
    assert registry_left == [], registry_left
    assert notifications_left == [], notifications_left
    # Only ids: the erasure record and the audit trail of the officer's read.
    assert (
        await count_rows(
            platform.registry_database,
            "SELECT count(*) FROM erased_members WHERE member_id = $1::uuid",
            member_id,
        )
        == 1
    )
    assert (
        await count_rows(
            platform.registry_database,
            "SELECT count(*) FROM audit_log WHERE record_id = $1::uuid",
            member_id,
        )
        >= 1
    )

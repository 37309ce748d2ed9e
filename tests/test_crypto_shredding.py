"""Crypto-shredding end to end: after erasure, Kafka holds nothing readable about the person.

Real processes (registry API, relay and worker; matching API and worker; notifications
worker), real PostgreSQL and Kafka. A person with distinctive values registers; the
welcome email goes out (notifications read their contact through the key service);
matching's read model takes them in and a coordinator proposes them a need (a
``matching.match.proposed`` about them, sealed with their key by matching); they erase
themselves. Then an independent client, the Debian ``kcat`` binary, reads EVERY topic of
the test's prefix from the beginning (dead-letter topics included): none of the person's
values may appear in clear, and no sealed data about them may open with any key that
still exists (every data key left in the registry's key store, unwrapped with the
key-encryption key). The key service answers "gone" for them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from notifications_testing import confirm_email

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import (
    ServiceProcess,
    answers,
    api_command,
    asyncpg_url,
    free_port,
    serve_app,
    service_env,
    wait_until,
)
from diaspora_identity.testing import LocalIssuer, citizen, coordinator, service_account
from notifications.bootstrap import CONSUMER_NAME as NOTIFICATIONS_CONSUMER
from notifications.bootstrap import bootstrap as notifications_bootstrap
from notifications.settings import NotificationsSettings

# Six processes and a dead letter after a handler's retries: minutes on a busy machine.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

PERSON = {
    "given_name": "Kpadenou",
    "family_name": "Xwlasedzi-Amavi",
    "date_of_birth": "1979-11-23",
    "country_of_residence": "FR",
    "email": "kpadenou.xwlasedzi@example.fr",
    "phone": "+33 6 98 76 54 31",
    "preferred_language": "fr",
    "city": "Lyon",
    "occupations": [{"isco_code": "2212", "title": "Chirurgien Xwlasedzi"}],
    "languages": ["fr", "en"],
    "availability": {"mission_types": ["medical"], "remote": True},
    "consents": {"contact_for_missions": True, "statistics": True, "newsletters": True},
}
E164 = "+33698765431"
# What must never be readable on any topic after erasure.
NEEDLES = [
    "Kpadenou",
    "Xwlasedzi",
    "kpadenou.xwlasedzi@example.fr",
    "1979-11-23",
    E164,
    E164.removeprefix("+"),
    "98765431",
]
CLIENTS = {"matching": "matching-test-secret", "notifications": "notifications-test-secret"}
SOON = date.today() + timedelta(days=60)


@dataclass
class Platform:
    registry_url: str
    matching_url: str
    issuer: LocalIssuer
    mailbox: Mailbox
    prefix: str
    kek_file: Path
    registry_database: str
    notifications_database: str
    matching_database: str
    processes: dict[str, ServiceProcess]


@pytest.fixture
async def platform(
    registry_database: str,
    notifications_database: str,
    matching_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    test_logs: Path,
    tmp_path: Path,
) -> AsyncIterator[Platform]:
    issuer_port = free_port()
    issuer = LocalIssuer(f"http://127.0.0.1:{issuer_port}/dev-idp", clients=CLIENTS)
    registry_port, matching_port = free_port(), free_port()
    registry_url = f"http://127.0.0.1:{registry_port}"
    kek_file = tmp_path / "event-kek.key"

    def client(prefix: str, name: str) -> dict[str, str]:
        return {
            f"{prefix}_EVENT_KEYS_CLIENT_ID": name,
            f"{prefix}_EVENT_KEYS_CLIENT_SECRET": CLIENTS[name],
        }

    with Mailbox() as mailbox:
        registry_env = service_env(
            "REGISTRY",
            database_url=registry_database,
            kafka=kafka_bootstrap,
            topic_prefix=topic_prefix,
            issuer=issuer,
            extra={"REGISTRY_EVENT_KEK_FILE": str(kek_file)},
        )
        matching_env = service_env(
            "MATCHING",
            database_url=matching_database,
            kafka=kafka_bootstrap,
            topic_prefix=topic_prefix,
            issuer=issuer,
            event_keys_from=registry_url,
            extra=client("MATCHING", "matching"),
        )
        notifications_env = service_env(
            "NOTIFICATIONS",
            database_url=notifications_database,
            kafka=kafka_bootstrap,
            topic_prefix=topic_prefix,
            issuer=issuer,
            event_keys_from=registry_url,
            extra={
                "NOTIFICATIONS_SMTP_PORT": str(mailbox.port),
                **client("NOTIFICATIONS", "notifications"),
            },
        )
        processes = {
            "registry-api": ServiceProcess(
                "registry-api",
                api_command("registry", registry_port),
                registry_env,
                test_logs / "registry-api.log",
            ),
            "registry-relay": ServiceProcess(
                "registry-relay", ["registry-relay"], registry_env, test_logs / "registry-relay.log"
            ),
            "registry-worker": ServiceProcess(
                "registry-worker",
                ["registry-worker"],
                registry_env,
                test_logs / "registry-worker.log",
            ),
            "matching-api": ServiceProcess(
                "matching-api",
                api_command("matching", matching_port),
                matching_env,
                test_logs / "matching-api.log",
            ),
            "matching-worker": ServiceProcess(
                "matching-worker",
                ["matching-worker"],
                matching_env,
                test_logs / "matching-worker.log",
            ),
            "notifications-worker": ServiceProcess(
                "notifications-worker",
                ["notifications-worker"],
                notifications_env,
                test_logs / "notifications-worker.log",
            ),
        }
        async with serve_app(issuer.asgi_app(), port=issuer_port):
            for process in processes.values():
                process.start()
            try:
                for url in (registry_url, f"http://127.0.0.1:{matching_port}"):
                    await wait_until(
                        lambda url=url: answers(f"{url}/health/live"), timeout=240, message=url
                    )
                yield Platform(
                    registry_url=registry_url,
                    matching_url=f"http://127.0.0.1:{matching_port}",
                    issuer=issuer,
                    mailbox=mailbox,
                    prefix=topic_prefix,
                    kek_file=kek_file,
                    registry_database=registry_database,
                    notifications_database=notifications_database,
                    matching_database=matching_database,
                    processes=processes,
                )
            finally:
                for process in processes.values():
                    process.stop()


async def _fetchval(database_url: str, query: str, *args: Any) -> Any:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()


async def _confirm_address(platform: Platform, kafka_bootstrap: str, mail_text: str) -> None:
    """Open the verification link, as the person does (the same code as the endpoint)."""
    service = notifications_bootstrap(
        NotificationsSettings(
            database_url=asyncpg_url(platform.notifications_database),
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=platform.prefix,
            environment="test",
            json_logs=False,
        )
    )
    try:
        await confirm_email(service, mail_text)
    finally:
        await service.close()


async def _execute(database_url: str, statement: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _topics(bootstrap: str, prefix: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith(prefix))
    finally:
        await admin.close()


def _kcat(bootstrap: str, topic: str) -> str:
    """The whole topic as kcat prints it: headers, key and value of each record."""
    kcat = shutil.which("kcat")
    assert kcat, "the kcat binary (Debian package kcat) is required"
    done = subprocess.run(
        [
            kcat,
            "-b",
            bootstrap,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%h %k %s\n",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return done.stdout.decode("utf-8", "replace")


def _kcat_records(bootstrap: str, topic: str) -> list[tuple[dict[str, str], bytes]]:
    """(headers, value) of every record, read by kcat (value length-prefixed)."""
    kcat = shutil.which("kcat")
    assert kcat
    done = subprocess.run(
        [
            kcat,
            "-b",
            bootstrap,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%S %s\n%h\n",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    records = []
    out = done.stdout
    while out:
        size_text, _, rest = out.partition(b" ")
        size = int(size_text)
        value = rest[: max(size, 0)]
        rest = rest[max(size, 0) + 1 :]
        header_line, _, out = rest.partition(b"\n")
        headers = dict(
            part.split("=", 1)
            for part in header_line.decode("utf-8", "replace").split(",")
            if "=" in part
        )
        if size >= 0:
            records.append((headers, value))
    return records


def _opens(key: bytes, headers: dict[str, str], sealed: dict[str, Any]) -> bool:
    """Whether ``key`` opens the sealed data (with the associated data the platform binds:
    event id, type, version and subject; see docs/events.md)."""
    aad = "|".join(
        [headers["ce_id"], headers["ce_type"], headers.get("ce_dataversion", "1"), sealed["sub"]]
    ).encode()
    try:
        AESGCM(key).decrypt(base64.b64decode(sealed["iv"]), base64.b64decode(sealed["ct"]), aad)
    except InvalidTag:
        return False
    return True


async def _live_data_keys(platform: Platform) -> list[bytes]:
    """Every data key still in the registry's key store, unwrapped with the local KEK."""
    kek = platform.kek_file.read_bytes()
    connection = await asyncpg.connect(platform.registry_database)
    try:
        rows = await connection.fetch(
            "SELECT wrapped_dek FROM person_keys WHERE wrapped_dek IS NOT NULL"
        )
    finally:
        await connection.close()
    keys = []
    for row in rows:
        wrapped = bytes(row["wrapped_dek"])
        keys.append(AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], b"diaspora-dek"))
    return keys


async def test_after_erasure_no_topic_holds_anything_readable_about_the_person(
    platform: Platform, kafka_bootstrap: str
) -> None:
    issuer = platform.issuer
    me = citizen()
    async with (
        httpx.AsyncClient(base_url=platform.registry_url, timeout=30) as registry,
        httpx.AsyncClient(
            base_url=platform.matching_url, timeout=30, headers=issuer.headers(coordinator())
        ) as matching,
    ):
        created = await registry.post("/members", json=PERSON, headers=issuer.headers(me))
        assert created.status_code == 201, created.text
        member_id = created.json()["id"]
        other = await registry.post(
            "/members",
            headers=issuer.headers(citizen()),
            json={
                "given_name": "Ama",
                "family_name": "Lawson",
                "date_of_birth": "1990-02-02",
                "country_of_residence": "FR",
                "email": "ama.lawson@example.org",
                "phone": "+33611223344",
            },
        )
        assert other.status_code == 201, other.text
        other_id = other.json()["id"]

        # Notifications read the (sealed) contact through the key service: the email
        # verifying the address arrives; the person confirms it (the welcome follows, and
        # so later messages, such as the proposal, reach that address).
        def to_the_person() -> list[Any]:
            return [m for m in platform.mailbox.messages if PERSON["email"] in m.recipients]

        await wait_until(lambda: bool(to_the_person()), timeout=90, message="the verification")
        await _confirm_address(platform, kafka_bootstrap, to_the_person()[0].text())
        await wait_until(lambda: len(to_the_person()) >= 2, timeout=90, message="the welcome")
        posted = await matching.post(
            "/needs",
            json={
                "title": "Chirurgie pédiatrique à Kara",
                "type": "medical",
                "institution": "CHU Kara",
                "institution_kind": "hospital",
                "description": "Former les équipes.",
                "occupations": ["2212"],
                "languages": ["fr"],
                "starts_on": SOON.isoformat(),
                "ends_on": (SOON + timedelta(days=14)).isoformat(),
                "region": "TG-K",
                "prefecture": "Kozah",
                "experts_wanted": 1,
                "publish": True,
            },
        )
        assert posted.status_code == 201, posted.text
        need_id = posted.json()["id"]

        async def ranked() -> bool:
            found = await matching.get(f"/needs/{need_id}/candidates")
            return found.status_code == 200 and any(
                c["member_id"] == member_id for c in found.json()["items"]
            )

        # Matching's read model took the person in (it opened registry.members' sealed data).
        await wait_until(ranked, timeout=90, message="the person among the candidates")
        proposed = await matching.post(
            f"/needs/{need_id}/proposals", json={"member_ids": [member_id]}
        )
        assert proposed.status_code in (200, 201), proposed.text
        # The proposal reaches the person (notifications opened matching's sealed event).
        await wait_until(
            lambda: len(to_the_person()) >= 3, timeout=90, message="the proposal email"
        )

        # A handler failing: notifications' contacts table is away while the person's
        # update arrives; after its retries the event goes to the dead-letter topic (as
        # consumed: sealed; its reason quotes the failed SQL, scrubbed of their values).
        dead_letters = f"{platform.prefix}{NOTIFICATIONS_CONSUMER}.dlq"
        await _execute(
            platform.notifications_database, "ALTER TABLE recipients RENAME TO recipients_away"
        )
        try:
            patched = await registry.patch(
                f"/members/{member_id}",
                json={"city": "Paris", "arrival_year": 2004},
                headers=issuer.headers(me),
            )
            assert patched.status_code == 200, patched.text

            async def dead_lettered() -> bool:
                return bool(await asyncio.to_thread(_kcat, kafka_bootstrap, dead_letters))

            await wait_until(
                dead_lettered,
                timeout=120,
                message="the dead-lettered update",
            )
        finally:
            await _execute(
                platform.notifications_database,
                "ALTER TABLE recipients_away RENAME TO recipients",
            )
        letters = await asyncio.to_thread(_kcat, kafka_bootstrap, dead_letters)
        assert "registry.member.updated" in letters
        assert "dlq_error=" in letters

        erased = await registry.delete(f"/members/{member_id}", headers=issuer.headers(me))
        assert erased.status_code == 204, erased.text

        async def erasure_processed() -> bool:
            counts = [
                await _fetchval(
                    database,
                    "SELECT count(*) FROM inbox WHERE event_type = 'registry.member.erased'",
                )
                for database in (platform.matching_database, platform.notifications_database)
            ]
            return all(counts)

        await wait_until(erasure_processed, timeout=90, message="matching and notifications erased")

    topics = await _topics(kafka_bootstrap, platform.prefix)
    assert f"{platform.prefix}registry.members" in topics
    assert f"{platform.prefix}matching.matches" in topics
    assert dead_letters in topics
    seen = ""
    for topic in topics:
        text = await asyncio.to_thread(_kcat, kafka_bootstrap, topic)
        seen += text
        for needle in NEEDLES:
            assert needle.lower() not in text.lower(), f"{needle!r} readable on {topic}"
    assert member_id in seen, "the search cannot fail: the person's events are there"

    # Sealed data about the person: present, and opened by no key that still exists;
    # the same check opens other people's sealed data (it is not a check that cannot fail).
    keys = await _live_data_keys(platform)
    assert keys, "other people's keys are in the store"
    about_them = about_others = 0
    for topic in topics:
        for headers, value in await asyncio.to_thread(_kcat_records, kafka_bootstrap, topic):
            try:
                data = json.loads(value)
            except ValueError:
                continue
            sealed = data.get("_sealed") if isinstance(data, dict) else None
            if not sealed or not sealed.get("sub"):
                continue
            opened = any(_opens(key, headers, sealed) for key in keys)
            if sealed["sub"] == member_id:
                about_them += 1
                assert not opened, f"sealed data about the person opens, on {topic}"
            elif sealed["sub"] == other_id:
                about_others += opened
    # registered (registry.members), proposed (matching.matches), the registry's audit...
    assert about_them >= 2, about_them
    assert about_others >= 1, "the other person's sealed data opens with their live key"

    # The key service says the person's key is gone (no service can fetch it any more).
    async with httpx.AsyncClient(base_url=platform.registry_url, timeout=30) as registry:
        answer = await registry.post(
            "/internal/keys",
            json={"subject_ids": [member_id, other_id]},
            headers=issuer.headers(service_account("notifications")),
        )
    assert answer.status_code == 200, answer.text
    statuses = {k["subject_id"]: k["status"] for k in answer.json()["keys"]}
    assert statuses == {member_id: "gone", other_id: "active"}

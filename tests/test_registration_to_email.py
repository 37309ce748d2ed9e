"""End to end over real connections: HTTP registration -> outbox -> Kafka -> SMTP.

The first email of a registration verifies the address (issue 15); the welcome follows
the confirmation of its link."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess

import httpx
import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from notifications_testing import verification_token

from diaspora_devstack.testing import wait_until
from diaspora_events.shredding import unseal
from diaspora_events.topics import REGISTRY_MEMBERS
from diaspora_identity.testing import citizen, service_account
from tests.conftest import LocalPlatform

pytestmark = pytest.mark.integration


async def test_a_registration_sends_a_verification_then_the_welcome_with_the_persons_name(
    platform: LocalPlatform,
) -> None:
    async with httpx.AsyncClient(
        base_url=platform.registry_url, headers=platform.issuer.headers(citizen())
    ) as client:
        response = await client.post(
            "/members",
            json={
                "given_name": "Mawuli",
                "family_name": "Adjovi",
                "date_of_birth": "1988-02-14",
                "country_of_residence": "CA",
                "email": "mawuli.adjovi@example.ca",
                "phone": "+15145550123",
                "preferred_language": "en",
            },
        )
    assert response.status_code == 201, response.text
    member_id = response.json()["id"]

    await wait_until(lambda: len(platform.mailbox.messages) == 1, timeout=30, message="the email")
    verification = platform.mailbox.messages[0]
    assert verification.recipients == ("mawuli.adjovi@example.ca",)
    assert verification.subject.startswith("Confirm your email address")
    async with httpx.AsyncClient(base_url=platform.notifications_url) as client:
        confirmed = await client.post(
            "/contacts/email/confirm", json={"token": verification_token(verification.text())}
        )
    assert confirmed.status_code == 200, confirmed.text

    await wait_until(lambda: len(platform.mailbox.messages) == 2, timeout=30, message="welcome")
    mail = platform.mailbox.messages[1]
    assert mail.recipients == ("mawuli.adjovi@example.ca",)
    assert "Mawuli Adjovi" in mail.text()
    assert member_id in mail.text()


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is installed by .ci/run")
async def test_registry_events_are_readable_by_kcat_and_the_cloudevents_sdk(
    platform: LocalPlatform,
) -> None:
    async with httpx.AsyncClient(
        base_url=platform.registry_url, headers=platform.issuer.headers(citizen())
    ) as client:
        response = await client.post(
            "/members",
            json={
                "given_name": "Afi",
                "family_name": "Dogbé",
                "date_of_birth": "1995-09-30",
                "country_of_residence": "DE",
                "email": "afi@example.de",
                "phone": "+4915112345678",
            },
        )
    assert response.status_code == 201
    member_id = response.json()["id"]
    topic = platform.topic_prefix + REGISTRY_MEMBERS.name

    # kcat is an independent client (librdkafka): -J prints each record as JSON.
    output = ""
    for _ in range(40):
        result = await asyncio.to_thread(
            subprocess.run,
            [
                "kcat",
                "-b",
                platform.kafka_bootstrap,
                "-C",
                "-t",
                topic,
                "-o",
                "beginning",
                "-e",
                "-J",
                "-q",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        output = result.stdout.strip()
        if output:
            break
        await asyncio.sleep(0.25)
    records = [json.loads(line) for line in output.splitlines()]
    assert len(records) == 1
    record = records[0]
    assert record["key"] == member_id
    # kcat -J gives headers as a flat [name, value, name, value, ...] list.
    flat = record["headers"]
    headers = {flat[i]: flat[i + 1].encode() for i in range(0, len(flat), 2)}

    event = from_binary(
        KafkaMessage(headers=headers, key=record["key"], value=record["payload"].encode()),
        JSONFormat(),
    )
    assert event.get_type() == "registry.member.registered"
    assert event.get_source() == "/tg/diaspora/registry"
    assert event.get_subject() == member_id
    # Crypto-shredding: the personal fields travel sealed; a service with the person's
    # data key (from the registry's internal key service) opens them.
    data = event.get_data()
    assert isinstance(data, dict)
    assert "Afi" not in record["payload"]
    assert "given_name" not in data
    async with httpx.AsyncClient(base_url=platform.registry_url) as client:
        answer = await client.post(
            "/internal/keys",
            json={"subject_ids": [member_id]},
            headers=platform.issuer.headers(service_account("notifications")),
        )
    assert answer.status_code == 200, answer.text
    (key,) = answer.json()["keys"]
    opened = unseal(
        data,
        event_id=event.get_id(),
        event_type=event.get_type(),
        version=1,
        data_key=base64.b64decode(key["dek"]),
    )
    assert opened["given_name"] == "Afi"
    assert opened["family_name"] == "Dogbé"
    assert headers["ce_dataversion"] == b"1"
    assert headers["traceparent"].startswith(b"00-")

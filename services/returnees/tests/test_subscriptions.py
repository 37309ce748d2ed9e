"""Awareness subscriptions: consent recorded, double opt-in, one-step signed
unsubscribe, rate limits and problem details, on the real database; the events
notifications reads (the address sealed in production) carry the links."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from returnees.resources import Returnees
from returnees.subscribers.tables import subscriptions
from returnees.tables import outbox

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def body(address: str = "kafui@example.tg", **overrides: Any) -> dict[str, Any]:
    return {
        "channel": "email",
        "address": address,
        "language": "en",
        "awareness": True,
        "countries": ["LY", "SA"],
        "consent": {"text_version": "2026-12", "accepted": True},
        **overrides,
    }


async def events(service: Returnees, event_type: str) -> list[dict[str, Any]]:
    async with service.sessions() as session:
        rows = (
            await session.execute(
                select(outbox.c.value)
                .where(outbox.c.event_type == event_type)
                .order_by(outbox.c.id)
            )
        ).scalars()
        return [json.loads(v) for v in rows]


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


async def test_a_subscription_is_confirmed_by_its_link_and_ended_by_the_signed_one(
    returnees: Returnees, http: httpx.AsyncClient
) -> None:
    consent = await http.get("/subscriptions/consent")
    assert consent.status_code == 200
    assert consent.json()["version"] == "2026-12"
    assert "unsubscribe" in consent.json()["text"]["en"]

    asked = await http.post("/subscriptions", json=body())
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] == "pending"
    [requested] = await events(returnees, "returnees.subscriber.requested")
    assert requested["address"] == "kafui@example.tg"
    assert requested["language"] == "en"
    link = requested["confirm_link"]
    assert link.startswith("http://127.0.0.1:8080/api/returnees/subscriptions/confirm?token=")
    async with returnees.sessions() as session:
        row = (await session.execute(select(subscriptions))).one()
    # The consent is kept (text version and time); the secret only as its digest.
    assert row.consent_text_version == "2026-12"
    assert row.consented_at is not None
    assert row.status == "pending"
    assert token_of(link) not in (row.confirm_token_hash or "")
    assert await events(returnees, "returnees.subscriber.confirmed") == []

    confirmed = await http.get("/subscriptions/confirm", params={"token": token_of(link)})
    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "active"
    used = await http.get("/subscriptions/confirm", params={"token": token_of(link)})
    assert used.status_code == 404
    assert used.headers["content-type"].startswith(PROBLEM)
    [active] = await events(returnees, "returnees.subscriber.confirmed")
    assert active["countries"] == ["LY", "SA"]
    assert active["awareness"] is True
    assert active["consent_text_version"] == "2026-12"
    leave = active["unsubscribe_link"]

    forged = token_of(leave)[:-4] + "AAAA"
    refused = await http.get("/subscriptions/unsubscribe", params={"token": forged})
    assert refused.status_code == 404
    assert await events(returnees, "returnees.subscriber.unsubscribed") == []
    left = await http.get("/subscriptions/unsubscribe", params={"token": token_of(leave)})
    assert left.status_code == 200
    assert left.json()["status"] == "unsubscribed"
    again = await http.post("/subscriptions/unsubscribe", params={"token": token_of(leave)})
    assert again.status_code == 200
    [ended] = await events(returnees, "returnees.subscriber.unsubscribed")
    assert ended["subscriber_id"] == active["subscriber_id"]
    async with returnees.sessions() as session:
        row = (await session.execute(select(subscriptions))).one()
    assert row.status == "unsubscribed"
    assert row.address is None


async def test_subscribing_again_replaces_the_earlier_choices(
    returnees: Returnees, http: httpx.AsyncClient
) -> None:
    for countries in (["LY"], ["SA"]):
        assert (
            await http.post("/subscriptions", json=body(countries=countries))
        ).status_code == 202
    first, second = await events(returnees, "returnees.subscriber.requested")
    for each in (first, second):
        ok = await http.post(
            "/subscriptions/confirm", json={"token": token_of(each["confirm_link"])}
        )
        assert ok.status_code == 200
    [ended] = await events(returnees, "returnees.subscriber.unsubscribed")
    assert ended["subscriber_id"] == first["subscriber_id"]


async def test_bad_requests_are_problems_and_requests_are_rate_limited(
    returnees: Returnees, http: httpx.AsyncClient
) -> None:
    for bad in (
        body(address="not an address"),
        body(channel="sms", address="12"),
        body(countries=["XX"]),
        body(awareness=False, countries=[]),
        body(consent={"text_version": "2026-12", "accepted": False}),
        body(consent={"text_version": "2019-01", "accepted": True}),
        body(address="kafui@example.tg\r\nBcc: x@example.org"),
        {**body(), "extra": 1},
    ):
        answer = await http.post("/subscriptions", json=bad)
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.headers["content-type"].startswith(PROBLEM)
    malformed = await http.post(
        "/subscriptions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422
    assert malformed.headers["content-type"].startswith(PROBLEM)
    assert (await http.get("/subscriptions/unsubscribe", params={"token": "x"})).status_code == 422
    assert await events(returnees, "returnees.subscriber.requested") == []

    # A Togolese number in national form is kept in E.164.
    sms = await http.post("/subscriptions", json=body(channel="sms", address="90 12 34 56"))
    assert sms.status_code == 202, sms.text
    [requested] = await events(returnees, "returnees.subscriber.requested")
    assert requested["address"] == "+22890123456"

    # Three requests per address and hour, whatever the case of the address.
    for address in ("ama@example.tg", "AMA@example.tg", "ama@example.tg"):
        assert (await http.post("/subscriptions", json=body(address))).status_code == 202
    limited = await http.post("/subscriptions", json=body("ama@example.tg"))
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith(PROBLEM)
    assert 1 <= int(limited.headers["retry-after"]) <= 3601
    assert (await http.post("/subscriptions", json=body("other@example.tg"))).status_code == 202

"""Crypto-shredding: sealing, key-encryption keys (local file, Vault Transit over HTTP),
the consumer-side key resolver, and what a consumer does with sealed events (opens them,
skips those about erased persons, waits while the key service is down, never writes a
personal value into a dead letter's reason)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import Column, MetaData, Table, Text, Uuid, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from uuid_utils.compat import uuid7

from diaspora_devstack.testing import asyncpg_url, serve_app, wait_until
from diaspora_events.cloudevents import Envelope, decode, headers_to_kafka
from diaspora_events.consumer import EventConsumer, Outcome, Record, inbox_table
from diaspora_events.contracts import MatchProposedV1, MemberErasedV1, MemberRegisteredV1
from diaspora_events.outbox import OutboxWriter, outbox_table
from diaspora_events.shredding import (
    SEALED,
    KeyResolver,
    KeyServiceUnavailable,
    LocalFileKek,
    SealBroken,
    VaultTransitKek,
    new_data_key,
    seal,
    unseal,
)

PERSON = {"given_name": "Yawovi", "email": "yawovi.tchala@example.org", "phone": "+22890112233"}


def registered(member_id: UUID | None = None) -> MemberRegisteredV1:
    return MemberRegisteredV1(
        member_id=member_id or uuid7(),
        given_name=PERSON["given_name"],
        family_name="Tchala",
        date_of_birth=date(1984, 3, 9),
        email=PERSON["email"],
        phone=PERSON["phone"],
        country_of_residence="BJ",
        registered_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_sealing_hides_every_personal_field_and_opens_with_the_key() -> None:
    event = registered()
    key = new_data_key()
    data = seal(event.model_dump(mode="json"), MemberRegisteredV1, event_id="e1", data_key=key)
    text = json.dumps(data)
    for value in (*PERSON.values(), "Tchala", "1984-03-09", '"BJ"'):
        assert value not in text
    assert data["member_id"] == str(event.member_id)  # routing stays in clear
    assert data["preferred_language"] == "fr"  # not personal
    assert data[SEALED]["sub"] == str(event.member_id)
    opened = unseal(data, event_id="e1", event_type=event.event_type, version=1, data_key=key)
    assert MemberRegisteredV1.model_validate(opened) == event


def test_a_ciphertext_opens_only_for_its_event_type_and_person() -> None:
    event = registered()
    key = new_data_key()
    data = seal(event.model_dump(mode="json"), MemberRegisteredV1, event_id="e1", data_key=key)
    kind = event.event_type
    for wrong in (
        {"event_id": "e2", "event_type": kind, "version": 1, "data_key": key},
        {"event_id": "e1", "event_type": "registry.member.updated", "version": 1, "data_key": key},
        {"event_id": "e1", "event_type": kind, "version": 2, "data_key": key},
        {"event_id": "e1", "event_type": kind, "version": 1, "data_key": new_data_key()},
    ):
        with pytest.raises(SealBroken):
            unseal(data, **wrong)  # type: ignore[arg-type]
    moved = {**data, SEALED: {**data[SEALED], "sub": str(uuid7())}}
    with pytest.raises(SealBroken):
        unseal(moved, event_id="e1", event_type=kind, version=1, data_key=key)


def test_no_subject_or_no_key_seals_with_a_key_nobody_has() -> None:
    event = registered()
    data = seal(event.model_dump(mode="json"), MemberRegisteredV1, event_id="e", data_key=None)
    assert PERSON["email"] not in json.dumps(data)
    assert data[SEALED]["sub"] == str(event.member_id)  # the subject's key was gone


def test_local_kek_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "kek.key"
    first = LocalFileKek(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    dek = new_data_key()
    wrapped = asyncio.run(first.wrap([dek]))[0]
    assert dek not in wrapped
    again = LocalFileKek(path)
    assert again.kek_id == first.kek_id
    assert asyncio.run(again.unwrap([wrapped])) == [dek]
    other = LocalFileKek(tmp_path / "other.key")
    with pytest.raises(InvalidTag):  # another KEK
        asyncio.run(other.unwrap([wrapped]))


class FakeVaultTransit:
    """Vault's Transit encrypt/decrypt JSON API (batch_input), as documented by HashiCorp:
    POST /v1/transit/encrypt/<key> -> data.batch_results[].ciphertext "vault:v1:...";
    POST /v1/transit/decrypt/<key> -> data.batch_results[].plaintext (base64)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.key = new_data_key()
        self.calls: list[str] = []
        self.down = False

    def app(self) -> Starlette:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        async def handle(request: Request) -> JSONResponse:
            operation = request.path_params["op"]
            self.calls.append(operation)
            if self.down:
                return JSONResponse({"errors": ["sealed"]}, status_code=503)
            if request.headers.get("x-vault-token") != self.token:
                return JSONResponse({"errors": ["permission denied"]}, status_code=403)
            items = (await request.json())["batch_input"]
            aead = AESGCM(self.key)
            results: list[dict[str, Any]] = []
            for item in items:
                if operation == "encrypt":
                    nonce = os.urandom(12)
                    raw = nonce + aead.encrypt(nonce, base64.b64decode(item["plaintext"]), None)
                    results.append({"ciphertext": "vault:v1:" + base64.b64encode(raw).decode()})
                else:
                    raw = base64.b64decode(item["ciphertext"].removeprefix("vault:v1:"))
                    plain = aead.decrypt(raw[:12], raw[12:], None)
                    results.append({"plaintext": base64.b64encode(plain).decode()})
            return JSONResponse({"data": {"batch_results": results}})

        return Starlette(routes=[Route("/v1/transit/{op}/{key}", handle, methods=["POST"])])


async def test_vault_transit_kek_wraps_and_unwraps_over_http() -> None:
    vault = FakeVaultTransit(token="s.test-token")
    async with serve_app(vault.app()) as url:
        kek = VaultTransitKek(address=url, token="s.test-token", key_name="diaspora-events")
        deks = [new_data_key() for _ in range(3)]
        wrapped = await kek.wrap(deks)
        assert all(w.startswith(b"vault:v1:") for w in wrapped)
        assert await kek.unwrap(wrapped) == deks
        assert vault.calls == ["encrypt", "decrypt"]  # one batch each way
        assert kek.kek_id == "vault-transit:transit/diaspora-events"
        vault.down = True
        with pytest.raises(KeyServiceUnavailable):
            await kek.unwrap(wrapped)
        refused = VaultTransitKek(address=url, token="wrong", key_name="diaspora-events")
        vault.down = False
        with pytest.raises(KeyServiceUnavailable):
            await refused.wrap(deks)


async def test_resolver_caches_for_its_ttl_forgets_on_erasure_and_reports_outages() -> None:
    now = [0.0]
    store: dict[UUID, bytes | None] = {}
    asked: list[list[UUID]] = []
    down = [False]

    async def fetch(subjects: list[UUID]) -> dict[UUID, bytes | None]:
        asked.append(subjects)
        if down[0]:
            raise KeyServiceUnavailable("down")
        return {s: store.get(s) for s in subjects}

    resolver = KeyResolver(fetch, ttl=60, max_entries=2, clock=lambda: now[0])
    a, b, c = uuid7(), uuid7(), uuid7()
    store.update({a: b"a" * 32, b: b"b" * 32, c: b"c" * 32})
    assert await resolver.data_keys([a, b]) == {a: store[a], b: store[b]}
    assert await resolver.data_keys([a]) == {a: store[a]}
    assert asked == [[a, b]]  # one batch, then the cache
    resolver.forget(a)
    assert await resolver.data_keys([a]) == {a: None}  # gone at once, without asking
    assert resolver.cached(a) is None
    await resolver.data_keys([c])
    assert len(resolver) == 2  # bounded
    now[0] = 61.0
    down[0] = True
    with pytest.raises(KeyServiceUnavailable):
        await resolver.data_keys([c])  # expired: asked again, and the service is down
    assert not await resolver.available()
    down[0] = False
    assert await resolver.data_keys([c]) == {c: store[c]}
    assert await resolver.available()


async def test_a_resolver_without_ttl_keeps_no_live_key_in_memory() -> None:
    store: dict[UUID, bytes | None] = {}
    asked: list[list[UUID]] = []

    async def fetch(subjects: list[UUID]) -> dict[UUID, bytes | None]:
        asked.append(subjects)
        return {s: store.get(s) for s in subjects}

    # As the writers of API processes use it (EventKeySettings.resolver(..., ttl=0)).
    resolver = KeyResolver(fetch, ttl=0.0)
    live, erased = uuid7(), uuid7()
    store.update({live: b"k" * 32, erased: None})
    assert await resolver.data_keys([live, erased]) == {live: store[live], erased: None}
    assert resolver.cached(live) is None
    assert len(resolver) == 1  # only the final "gone" answer
    assert await resolver.data_keys([live, erased]) == {live: store[live], erased: None}
    assert asked == [[live, erased], [live]]


# --- The consumer against the real database -------------------------------------------

metadata = MetaData()
inbox = inbox_table(metadata)
outbox = outbox_table(metadata)
seen = Table("seen", metadata, Column("member_id", Uuid), Column("email", Text))


@pytest.fixture
async def engine(empty_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(asyncpg_url(empty_database))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


class Keys:
    """A key service in memory (the registry's, as far as consumers can tell)."""

    def __init__(self) -> None:
        self.keys: dict[UUID, bytes | None] = {}
        self.down = False
        self.refused = 0  # fetches answered "unavailable" while down

    async def fetch(self, subjects: list[UUID]) -> dict[UUID, bytes | None]:
        if self.down:
            self.refused += 1
            raise KeyServiceUnavailable("key service: ConnectError")
        return {s: self.keys.setdefault(s, new_data_key()) for s in subjects}


async def written(engine: AsyncEngine, writer: OutboxWriter, event: Any) -> Record:
    """The event as the outbox writes it (sealed) and Kafka would deliver it."""
    sessions = async_sessionmaker(engine)
    async with sessions() as session, session.begin():
        event_id = await writer.add(session, event)
        row = (await session.execute(select(outbox).where(outbox.c.event_id == event_id))).one()
    headers = {k: v.decode() for k, v in headers_to_kafka(row.headers)}
    return Record(
        topic=event.topic.name,
        partition=0,
        offset=0,
        key=row.key.encode(),
        value=row.value,
        headers=headers,
    )


@pytest.mark.integration
async def test_consumer_opens_skips_erased_waits_for_keys_and_scrubs_dead_letters(
    engine: AsyncEngine,
) -> None:
    keys = Keys()
    resolver = KeyResolver(keys.fetch, ttl=300)
    writer = OutboxWriter(outbox, source="/test", keys=resolver)
    dead: list[dict[str, Any]] = []

    async def sink(**record: Any) -> None:
        dead.append(record)

    sessions = async_sessionmaker(engine, class_=AsyncSession)
    consumer = EventConsumer(
        name="test-sealed",
        session_factory=sessions,
        inbox=inbox,
        dead_letters=sink,
        keys=KeyResolver(keys.fetch, ttl=300),
        first_backoff=0.01,
        max_backoff=0.02,
        max_attempts=2,
        max_key_backoff=0.05,
    )
    handled: list[MemberRegisteredV1] = []

    @consumer.on(MemberRegisteredV1)
    async def on_registered(event: MemberRegisteredV1, session: AsyncSession, _: Envelope) -> None:
        if event.given_name == "Fail":
            raise RuntimeError(f"cannot reach {event.email} for {event.given_name}")
        handled.append(event)
        await session.execute(seen.insert().values(member_id=event.member_id, email=event.email))

    @consumer.on(MemberErasedV1)
    async def on_erased(event: MemberErasedV1, session: AsyncSession, _: Envelope) -> None:
        return None

    # Sealed on the way out: the outbox row holds no personal value.
    person = registered()
    record = await written(engine, writer, person)
    assert record.value is not None
    assert PERSON["email"].encode() not in record.value
    assert SEALED in decode(record.headers, record.value).data
    assert await consumer.handle_record(record) is Outcome.HANDLED
    assert handled == [person]  # opened with the person's key

    # The key service down: the consumer waits (no dead letter), then goes on.
    late = registered()
    late_record = await written(engine, writer, late)
    consumer.keys = KeyResolver(keys.fetch, ttl=300)  # a fresh cache: it must ask
    keys.down = True
    task = asyncio.create_task(consumer.handle_record(late_record))
    # The outcome: the resolver reports the key service unavailable and the consumer has
    # asked again and again (its backoff is 10-50 ms) without giving up on the record.
    await wait_until(lambda: keys.refused >= 5, timeout=10, message="retried key fetches")
    assert not task.done()
    assert dead == []
    assert not await consumer.keys.available()
    keys.down = False
    assert await asyncio.wait_for(task, 5) is Outcome.HANDLED
    assert handled[-1] == late

    # Erased: the key is destroyed at the key service, and this consumer hears of it.
    keys.keys[person.member_id] = None
    erased = await written(
        engine, writer, MemberErasedV1(member_id=person.member_id, erased_at=datetime.now(UTC))
    )
    assert await consumer.handle_record(erased) is Outcome.HANDLED
    assert consumer.keys.cached(person.member_id) is None
    again = Record(**{**record.__dict__, "offset": 5})
    before = len(handled)
    # A redelivered (or rebuilt-from-offset-0) event about them: nothing personal, no crash.
    assert await consumer.handle_record(again) is Outcome.SHREDDED
    fresh = await written(engine, writer, registered(person.member_id))
    assert await consumer.handle_record(fresh) is Outcome.SHREDDED
    assert len(handled) == before
    assert dead == []

    # A handler failing with personal values in its error: the dead letter keeps the
    # sealed record as it came, and its reason shows none of the values.
    failing = registered().model_copy(update={"given_name": "Fail"})
    failing_record = await written(engine, writer, failing)
    assert await consumer.handle_record(failing_record) is Outcome.DEAD_LETTERED
    (letter,) = dead
    assert letter["value"] == failing_record.value
    reason = letter["headers"]["dlq_error"]
    assert "RuntimeError" in reason
    assert PERSON["email"] not in reason
    assert "Fail" not in reason


async def test_proposals_are_sealed_with_the_experts_key_and_need_fields_stay_clear() -> None:
    keys = Keys()
    expert = uuid7()
    event = MatchProposedV1(
        proposal_id=uuid7(),
        need_id=uuid7(),
        member_id=expert,
        proposed_at=datetime.now(UTC),
        need_title="Chirurgie",
        need_type="medical",
        institution="CHU Kara",
        region="TG-K",
        score=0.9,
        reasons=["Chirurgien à Lyon, parle éwé"],
    )
    dek = (await keys.fetch([expert]))[expert]
    assert dek is not None
    data = seal(event.model_dump(mode="json"), MatchProposedV1, event_id="x", data_key=dek)
    assert "Lyon" not in json.dumps(data, ensure_ascii=False)
    assert data["need_title"] == "Chirurgie"
    assert data[SEALED]["sub"] == str(expert)


def test_http_fetcher_reports_the_key_service_down() -> None:
    from diaspora_events.shredding import ClientCredentials, HttpKeyFetcher

    fetch = HttpKeyFetcher(
        "http://127.0.0.1:9", ClientCredentials("http://127.0.0.1:9/token", "matching", "s")
    )
    with pytest.raises(KeyServiceUnavailable):
        asyncio.run(fetch([uuid7()]))


def test_production_refuses_the_local_kek_and_events_in_clear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from diaspora_events.shredding import event_key_settings

    monkeypatch.setenv("MATCHING_ENVIRONMENT", "production")
    monkeypatch.setenv("MATCHING_EVENT_KEYS_CLIENT_SECRET", "s3cret")
    settings = event_key_settings("MATCHING")
    assert settings.client_credentials("matching")._auth == ("matching", "s3cret")
    monkeypatch.setenv("MATCHING_EVENT_ENCRYPTION", "false")
    with pytest.raises(ValidationError, match="without crypto-shredding"):
        event_key_settings("MATCHING")
    monkeypatch.delenv("MATCHING_EVENT_ENCRYPTION")
    monkeypatch.setenv("MATCHING_EVENT_KEK", "local")  # the default
    with pytest.raises(ValueError, match="local key-encryption key"):
        event_key_settings("MATCHING").kek()
    monkeypatch.delenv("MATCHING_EVENT_KEYS_CLIENT_SECRET")
    with pytest.raises(ValueError, match="CLIENT_SECRET is required"):
        event_key_settings("MATCHING").client_credentials("matching")

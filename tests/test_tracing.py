"""One trace follows a registration: HTTP, the relay's publish, the consumer, the SMTP send
(of the registration's first email: the verification of the address)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import asyncpg_url, free_port, serve_app, wait_until
from diaspora_events.kafka import ensure_topics
from diaspora_events.observability import setup_observability
from diaspora_events.outbox import OutboxRelay
from diaspora_events.topics import REGISTRY_MEMBERS, with_prefix
from diaspora_identity.testing import LocalIssuer, officer
from notifications.bootstrap import bootstrap as notifications_bootstrap
from notifications.entrypoints.worker import run as run_worker
from notifications.settings import NotificationsSettings
from registry.bootstrap import bootstrap as registry_bootstrap
from registry.entrypoints.http import build_app
from registry.settings import RegistrySettings
from registry.tables import outbox as registry_outbox

pytestmark = pytest.mark.integration


async def test_a_registration_is_one_trace_from_http_to_smtp(
    registry_database: str,
    notifications_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    mailbox: Mailbox,
    identity_provider: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Notifications opens the registry's sealed personal fields with keys from the
    # registry's internal key service (crypto-shredding): this test's registry API.
    registry_port = free_port()
    monkeypatch.setenv("NOTIFICATIONS_EVENT_KEYS_URL", f"http://127.0.0.1:{registry_port}")
    monkeypatch.setenv("NOTIFICATIONS_EVENT_KEYS_TOKEN_URL", identity_provider.issuer + "/token")
    exporter = InMemorySpanExporter()
    setup_observability("trace-test", json_logs=False, span_processor=SimpleSpanProcessor(exporter))
    registry = registry_bootstrap(
        RegistrySettings(
            database_url=asyncpg_url(registry_database),
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=topic_prefix,
            environment="test",
            json_logs=False,
            oidc_issuer=identity_provider.issuer,
            oidc_audience=identity_provider.audience,
        )
    )
    notifications = notifications_bootstrap(
        NotificationsSettings(
            database_url=asyncpg_url(notifications_database),
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=topic_prefix,
            environment="test",
            smtp_port=mailbox.port,
            json_logs=False,
        )
    )
    await ensure_topics(kafka_bootstrap, [with_prefix(REGISTRY_MEMBERS, topic_prefix)])
    relay = OutboxRelay(
        engine=registry.engine,
        table=registry_outbox,
        bootstrap_servers=kafka_bootstrap,
        client_id="trace-relay",
        topic_prefix=topic_prefix,
    )
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(relay.run(stop)),
        asyncio.create_task(run_worker(notifications, stop)),
    ]
    try:
        async with (
            serve_app(build_app(registry), port=registry_port) as base_url,
            # The first registration of a fresh process (token keys, data key, warm
            # caches) can take longer than httpx's 5 s default on a loaded machine.
            httpx.AsyncClient(
                headers=identity_provider.headers(officer("us-washington")), timeout=60
            ) as client,
        ):
            response = await client.post(
                f"{base_url}/members",
                json={
                    "given_name": "Sena",
                    "family_name": "Kpodar",
                    "date_of_birth": "1979-11-02",
                    "country_of_residence": "US",
                    "email": "sena@example.com",
                    "phone": "+12025550123",
                    "consent_recorded": {"method": "in_person"},
                },
            )
            assert response.status_code == 201
            await wait_until(lambda: len(mailbox.messages) == 1, timeout=30, message="the email")
            assert mailbox.messages[0].subject.startswith("Confirm")

        def names_in_trace() -> dict[str, int]:
            spans = exporter.get_finished_spans()
            http = [s for s in spans if s.name == "POST /members" and s.parent is None]
            if not http:
                return {}
            trace_id = http[-1].context.trace_id
            found: dict[str, int] = {}
            for span in spans:
                if span.context.trace_id == trace_id:
                    found[span.name] = found.get(span.name, 0) + 1
            return found

        wanted = {
            "POST /members",
            f"{topic_prefix}registry.members publish",
            f"{topic_prefix}registry.members process",
            "smtp send",
        }
        await wait_until(
            lambda: wanted <= set(names_in_trace()), timeout=10, message=f"spans {wanted}"
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await registry.close()

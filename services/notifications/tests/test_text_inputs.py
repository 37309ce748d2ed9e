"""Every free-text field of notifications' HTTP inputs refuses control characters with
a 422 problem (diaspora_service.text SingleLine / MultiLine; issue 15)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from notifications_testing import add_recipient

from diaspora_identity.testing import LocalIssuer, Persona, admin, citizen, coordinator
from notifications.resources import Notifications

pytestmark = pytest.mark.integration

TEMPLATE = {"subject": "Bonjour {{ given_name }}", "body": "Bonjour", "sms": "Bonjour"}
CAMPAIGN = {"name": "Guide", "template": "guide_diaspora", "variables": {}}


CASES: list[tuple[str, str, str, Any, str]] = [
    # (who, method, path, body, the field named in the answer; for the template's
    # ``body`` the shared problem renderer drops the name with the request's "body"
    # location, so the character is looked for instead)
    (
        "admin",
        "PUT",
        "/templates/member_welcome/fr",
        {**TEMPLATE, "subject": "A\r\nBcc: x"},
        "subject",
    ),
    ("admin", "PUT", "/templates/member_welcome/fr", {**TEMPLATE, "body": "A\x00B"}, "U+0000"),
    ("admin", "PUT", "/templates/member_welcome/fr", {**TEMPLATE, "sms": "A\rB"}, "sms"),
    (
        "admin",
        "PUT",
        "/templates/member_welcome/fr",
        {**TEMPLATE, "category": "account\n"},
        "category",
    ),
    (
        "admin",
        "PUT",
        "/templates/member_welcome/fr",
        {**TEMPLATE, "variables": {"given_name": "Ama\r\nX-Probe: 1"}},
        "variables",
    ),
    (
        "admin",
        "POST",
        "/templates/member_welcome/fr/preview",
        {"variables": {"given_name": {"nested": ["ok", "A\u2028B"]}}},
        "variables",
    ),
    ("coordinator", "POST", "/campaigns", {**CAMPAIGN, "name": "Guide\r\nX"}, "name"),
    (
        "coordinator",
        "POST",
        "/campaigns",
        {**CAMPAIGN, "variables": {"x": "\x1b[31m"}},
        "variables",
    ),
    ("coordinator", "POST", "/campaigns/audience", {"template": "guide\ndiaspora"}, "template"),
    ("citizen", "PUT", "/me/preferences", {"channels": ["inbox"], "timezone": "UTC\n"}, "timezone"),
    (
        "citizen",
        "PUT",
        "/me/preferences",
        {"channels": ["inbox"], "opted_out": ["a\u2029"]},
        "opted_out",
    ),
    ("anonymous", "POST", "/contacts/email/confirm", {"token": "x" * 20 + "\r\n"}, "token"),
    ("citizen", "POST", "/me/contacts/phone/confirm", {"code": "12\n456"}, "code"),
]


@pytest.mark.parametrize(("who", "method", "path", "body", "field"), CASES)
async def test_control_characters_are_a_422_problem_naming_the_field(
    client: httpx.AsyncClient,
    identity_provider: LocalIssuer,
    api_service: Notifications,
    who: str,
    method: str,
    path: str,
    body: Any,
    field: str,
) -> None:
    member = await add_recipient(api_service, email="ama@example.org")
    personas: dict[str, Persona] = {
        "admin": admin(),
        "coordinator": coordinator(),
        "citizen": citizen(member_id=member),
    }
    headers = identity_provider.headers(personas[who]) if who in personas else {}
    answer = await client.request(method, path, json=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in answer.text
    assert "control characters" in answer.text or "pattern" in answer.text

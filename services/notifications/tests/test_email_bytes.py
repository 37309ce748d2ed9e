"""Outgoing email is built by the email package's header machinery (issue 15).

Headers are never put together by string formatting: a CR or LF in any value is
refused by ``email.policy.default`` (the delivery fails for good instead of carrying a
forged header), and a subject rendered from a name with line breaks is one line.
"""

from __future__ import annotations

import email
import email.policy
import random
from dataclasses import dataclass
from uuid import uuid4

import pytest

from notifications.deliveries.domain import PermanentFailure
from notifications.deliveries.smtp import EmailTransport
from notifications.settings import NotificationsSettings
from notifications.templates.domain import TemplateVersion, render_version

ALPHABET = "abcdefghij KLM .,;:=-\n\t_éèàçÉ€ñ😀<>\"'?\r"
INJECTED = "Ama\r\nReply-To: x@evil.example\r\nX-Probe: 1"


@dataclass
class Row:
    id: str
    address: str
    subject: str
    body: str
    language: str


def transport() -> EmailTransport:
    return EmailTransport(
        NotificationsSettings(environment="test", database_url="postgresql+asyncpg://h/db")
    )


def _parsed(raw: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def test_a_message_reads_back_with_its_headers_and_text() -> None:
    row = Row(
        id="0192-abc",
        address="akossiwa@example.org",
        subject="Bienvenue au registre, Akossiwa — ça marche",
        body="Bonjour Akossiwa,\n\nVotre inscription est enregistrée.\n.\nFin\n",
        language="fr",
    )
    parsed = _parsed(transport().message_bytes(row))
    assert parsed["To"] == "akossiwa@example.org"
    assert parsed["From"].addresses[0].addr_spec == "no-reply@diaspora.gouv.tg"
    assert parsed["Subject"] == row.subject
    assert parsed["Message-ID"] == "<0192-abc@notifications.diaspora.gouv.tg>"
    assert parsed["Content-Language"] == "fr"
    assert parsed.get_content() == row.body


def test_random_subjects_and_bodies_read_back_exactly() -> None:
    sender = transport()
    rng = random.Random(7)
    for n in range(300):
        subject = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 120)))
        subject = " ".join(subject.replace("\r", " ").replace("\n", " ").split()) or "x"
        body = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 1500)))
        row = Row(f"d-{n}", f"person{n}@example.org", subject, body.replace("\r", ""), "en")
        parsed = _parsed(sender.message_bytes(row))
        assert parsed["Subject"] == subject
        assert parsed.get_content().rstrip("\n") == row.body.rstrip("\n")
        assert set(parsed.keys()) == {
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "Content-Type",
            "Content-Transfer-Encoding",
            "MIME-Version",
            "Content-Language",
        }


@pytest.mark.parametrize("field", ["subject", "address", "language"])
def test_a_line_break_in_any_header_value_is_refused_for_good(field: str) -> None:
    values = {
        "subject": "Bonjour",
        "address": "ama@example.org",
        "language": "fr",
        field: INJECTED if field != "address" else "ama@example.org\r\nBcc: x@evil.example",
    }
    row = Row(id="d-1", body="Bonjour", **values)
    with pytest.raises(PermanentFailure, match="not a valid message"):
        transport().message_bytes(row)


def test_a_name_with_line_breaks_renders_a_one_line_subject_without_extra_headers() -> None:
    version = TemplateVersion(
        id=uuid4(),
        key="member_welcome",
        language="fr",
        version=1,
        category="account",
        subject="Bienvenue, {{ given_name }}",
        body="Bonjour {{ given_name }}\n",
        sms="{{ given_name }}",
        variables={"given_name": "A"},
        active=True,
    )
    rendered = render_version(version, {"given_name": INJECTED})
    assert rendered.subject == "Bienvenue, Ama Reply-To: x@evil.example X-Probe: 1"
    raw = transport().message_bytes(
        Row("d-2", "ama@example.org", rendered.subject, rendered.body, "fr")
    )
    headers = raw.split(b"\n\n", 1)[0]
    assert b"\nReply-To:" not in headers
    assert b"\nX-Probe:" not in headers
    parsed = _parsed(raw)
    assert parsed["Reply-To"] is None
    assert parsed["X-Probe"] is None

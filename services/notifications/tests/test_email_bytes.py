"""The email sender writes exactly the bytes the email package would write."""

from __future__ import annotations

import email
import email.policy
import random
from dataclasses import dataclass
from unittest import mock

from notifications.email_sender import EmailTransport
from notifications.settings import NotificationsSettings

ALPHABET = "abcdefghij KLM .,;:=-\n\t_éèàçÉ€ñ😀<>\"'?\r"


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


def test_messages_are_byte_for_byte_those_of_the_compat32_classes() -> None:
    sender = transport()
    rng = random.Random(7)
    with mock.patch(
        "notifications.email_sender.formatdate", return_value="Sat, 28 Nov 2026 11:00:00 -0000"
    ):
        for n in range(2000):
            subject = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 120)))
            body = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 1500)))
            row = Row(
                id=f"delivery-{n}",
                address=f"person{n}@example.org",
                subject=subject.replace("\n", " ").replace("\r", " "),
                body=body if n % 3 else body.encode("ascii", "ignore").decode(),
                language=rng.choice(["fr", "en"]),
            )
            assert sender.message_bytes(row) == sender.message_bytes_compat32(row), row


def test_a_message_reads_back_with_its_headers_and_text() -> None:
    row = Row(
        id="0192-abc",
        address="akossiwa@example.org",
        subject="Bienvenue au registre, Akossiwa — ça marche",
        body="Bonjour Akossiwa,\n\nVotre inscription est enregistrée.\n.\nFin\n",
        language="fr",
    )
    parsed = email.message_from_bytes(transport().message_bytes(row), policy=email.policy.default)
    assert parsed["To"] == "akossiwa@example.org"
    assert parsed["Subject"] == row.subject
    assert parsed["Message-ID"] == "<0192-abc@notifications.diaspora.gouv.tg>"
    assert parsed["Content-Language"] == "fr"
    assert parsed.get_content() == row.body

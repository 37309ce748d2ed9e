"""A local SMTP server that keeps what it receives: the run command's mail catcher
and the tests' real SMTP peer (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import re
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class ReceivedMail:
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"] or "")

    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain", "html"))
        return body.get_content() if body is not None else ""


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self._mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        refusal = self._mailbox.refusal_for(tuple(envelope.rcpt_tos))
        if refusal:
            return refusal
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self._mailbox.deliver(
            ReceivedMail(
                sender=envelope.mail_from,
                recipients=tuple(envelope.rcpt_tos),
                message=message,
            ),
            raw=envelope.content,
        )
        return "250 Message accepted for delivery"


class Mailbox:
    """An SMTP server on loopback in a background thread; ``messages`` holds all mail."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, folder: Path | None = None):
        self._lock = threading.Lock()
        self._messages: list[ReceivedMail] = []
        self._folder = folder
        # Files are numbered on from what the folder holds: a new run keeps the last one's.
        self._numbered_from = _last_number(folder) if folder is not None else 0
        # Test controls: addresses refused for good (550), and a number of
        # messages to refuse for now (451) before accepting again.
        self.rejected: set[str] = set()
        self.transient_failures = 0
        self._controller = Controller(_Handler(self), hostname=host, port=port or _free_port())
        self.host = host
        self.port = self._controller.port

    def deliver(self, mail: ReceivedMail, *, raw: bytes) -> None:
        with self._lock:
            self._messages.append(mail)
            count = len(self._messages)
        if self._folder is not None:
            self._folder.mkdir(parents=True, exist_ok=True)
            (self._folder / f"{self._numbered_from + count:06d}.eml").write_bytes(raw)
            print(f"mail to {', '.join(mail.recipients)}: {mail.subject}", flush=True)

    def refusal_for(self, recipients: tuple[str, ...]) -> str | None:
        with self._lock:
            if self.rejected.intersection(recipients):
                return "550 5.1.1 Mailbox unavailable"
            if self.transient_failures > 0:
                self.transient_failures -= 1
                return "451 4.3.0 Try again later"
        return None

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._messages)

    def start(self) -> Mailbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> Mailbox:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _last_number(folder: Path) -> int:
    """The highest number of the ``NNNNNN.eml`` files in ``folder`` (0 if none)."""
    if not folder.is_dir():
        return 0
    return max((int(f.stem) for f in folder.glob("*.eml") if f.stem.isdigit()), default=0)


_LINK = re.compile(r"https?://[^\s<>\"']+")


def newest_link(folder: Path, recipient: str, *, containing: str = "") -> str | None:
    """The first link (containing ``containing``) of the newest mail to ``recipient`` kept
    in ``folder``: what a person clicks in their mailbox, for scripts and the README."""
    wanted = recipient.strip().lower()
    for path in sorted(folder.glob("*.eml"), reverse=True):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        addresses = [a.addr_spec.lower() for a in getattr(message["To"], "addresses", ())]
        if wanted not in addresses:
            continue
        for part in message.walk():
            if part.get_content_maintype() != "text":
                continue
            for link in _LINK.findall(part.get_content()):
                if containing in link:
                    return str(link)
    return None

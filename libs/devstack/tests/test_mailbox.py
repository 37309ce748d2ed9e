"""The local mailbox's files: a new run numbers on from the previous run's, never over them."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from diaspora_devstack.mailbox import Mailbox, ReceivedMail


def _mail(subject: str) -> tuple[ReceivedMail, bytes]:
    message = EmailMessage()
    message["Subject"] = subject
    message.set_content("Bonjour")
    return ReceivedMail("noreply@example.org", ("a@example.org",), message), bytes(message)


def test_a_new_run_numbers_on_from_the_mail_already_kept(tmp_path: Path) -> None:
    first = Mailbox(folder=tmp_path)
    for subject in ("un", "deux"):
        mail, raw = _mail(subject)
        first.deliver(mail, raw=raw)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["000001.eml", "000002.eml"]

    second = Mailbox(folder=tmp_path)  # the next `make run`
    mail, raw = _mail("trois")
    second.deliver(mail, raw=raw)
    assert sorted(f.name for f in tmp_path.iterdir()) == [
        "000001.eml",
        "000002.eml",
        "000003.eml",
    ]
    assert b"Subject: un" in (tmp_path / "000001.eml").read_bytes()
    assert b"Subject: trois" in (tmp_path / "000003.eml").read_bytes()


def test_the_newest_link_to_an_address_is_read_through_its_encoding(tmp_path: Path) -> None:
    from diaspora_devstack.mailbox import newest_link

    box = Mailbox(folder=tmp_path)
    for to, token in (
        ("ama@example.org", "old"),
        ("kofi@example.org", "kofi"),
        ("Ama@Example.org", "new"),
    ):
        message = EmailMessage()
        message["To"] = f"Ama <{to}>"
        message["Subject"] = "Confirmez"
        # Quoted-printable folds long lines and writes '=' as '=3D': read as the person would.
        message.set_content(
            "Bonjour, " + "x" * 80 + f"\nhttp://127.0.0.1:8080/confirm?token={token}-" + "y" * 60,
            cte="quoted-printable",
        )
        box.deliver(ReceivedMail("noreply@example.org", (to,), message), raw=bytes(message))
    assert b"token=3D" in (tmp_path / "000003.eml").read_bytes()
    assert newest_link(tmp_path, "ama@example.org", containing="confirm") == (
        "http://127.0.0.1:8080/confirm?token=new-" + "y" * 60
    )
    assert newest_link(tmp_path, "kofi@example.org") == (
        "http://127.0.0.1:8080/confirm?token=kofi-" + "y" * 60
    )
    assert newest_link(tmp_path, "nobody@example.org") is None

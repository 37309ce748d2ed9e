"""Email addresses and phone numbers are verified before anything else is sent to them.

Issue 15: anyone could register someone else's address and have the ministry mail it.
Now a contact value the person has not proven they own gets exactly one kind of
message, its verification:

- email: a link carrying a single-use random token (32 bytes, URL-safe), valid
  ``verification_email_ttl_hours`` (24 h);
- phone (when an SMS provider is configured): a 6-digit code, valid
  ``verification_sms_ttl_minutes`` (15 min), at most ``verification_code_attempts``
  tries (5), confirmed by the person signed in.

Only the secret's SHA-256 is stored (``contact_verifications.secret_hash``; a code's
hash is salted with its verification's id); the message's text is replaced in the
delivery log once sent (deliveries.sender). Each send, first or re-send, is a row: at most
``verification_sends_per_address_per_hour`` (3) per address and
``verification_sends_per_member_per_hour`` (6) per member; a re-send over the limit is
a 429 with Retry-After, a send caused by an event over it is skipped (logged).

A send starts on ``registry.member.registered`` and whenever a snapshot brings a new
email or phone (``registry.member.updated``...). A newer send or a new address
supersedes the pending ones. Until verified, the address is invisible to every other
message (dispatch.VERIFIED_EMAIL): they go to the next channel of the person's order
(the in-app inbox by default) or are skipped. The welcome is held instead: it is
queued when the first contact is verified (or at once for a person with nothing to
verify), once per member (``recipients.welcomed_at``).

Confirming publishes ``notifications.contact.verified`` v1 (member id and kind only).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode
from uuid import UUID

import structlog
import uuid_utils.compat as uuid_compat
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts import ContactVerifiedV1
from diaspora_events.observability import current_traceparent
from diaspora_events.outbox import OutboxWriter
from notifications.contacts.tables import contact_verifications
from notifications.deliveries.dispatch import enqueue, notify
from notifications.resources import Notifications
from notifications.settings import NotificationsSettings
from notifications.tables import recipients
from notifications.templates.domain import locale_of, render_version
from notifications.templates.service import resolve

log = structlog.get_logger(__name__)

Kind = Literal["email", "phone"]
CHANNEL: dict[str, str] = {"email": "email", "phone": "sms"}
TEMPLATE: dict[str, str] = {
    "email": "contact_verification_email",
    "phone": "contact_verification_sms",
}
_WELCOME_NAMESPACE = uuid.UUID("8e0d3c57-2a4b-4f7e-9d61-5c2b7a1e9f04")


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class VerificationError(Exception):
    """Why a confirmation is refused: ``status`` (404, 409, 410, 422) and a title."""

    def __init__(self, status: int, title: str, detail: str | None = None) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def code_hash(verification_id: UUID, code: str) -> str:
    return secret_hash(f"{verification_id}:{code}")


def address_hash(kind: str, address: str) -> str:
    value = address.strip().lower() if kind == "email" else address.strip()
    return secret_hash(f"{kind}:{value}")


def welcome_cause(member_id: UUID) -> UUID:
    """The welcome's cause event id: one welcome per member, whatever confirms first."""
    return uuid.uuid5(_WELCOME_NAMESPACE, str(member_id))


@dataclass(frozen=True)
class Contacts:
    """The stored contact values and whether each is verified."""

    email: str | None
    phone: str | None
    email_verified: bool
    phone_verified: bool

    @classmethod
    def of(cls, row: Any) -> Contacts:
        return cls(
            email=row.email,
            phone=row.phone,
            email_verified=row.email_verified_at is not None,
            phone_verified=row.phone_verified_at is not None,
        )

    def value(self, kind: str) -> str | None:
        return self.email if kind == "email" else self.phone

    def verified(self, kind: str) -> bool:
        return self.email_verified if kind == "email" else self.phone_verified


async def contacts_of(session: AsyncSession, member_id: UUID) -> Contacts | None:
    row = (
        await session.execute(
            select(
                recipients.c.email,
                recipients.c.phone,
                recipients.c.email_verified_at,
                recipients.c.phone_verified_at,
            ).where(recipients.c.member_id == member_id)
        )
    ).first()
    return Contacts.of(row) if row else None


def kinds_to_verify(
    before: Contacts | None, after: Contacts | None, available: frozenset[str]
) -> list[str]:
    """The contact kinds whose value is new and unverified (and whose channel exists)."""
    if after is None:
        return []
    found = []
    for kind in ("email", "phone"):
        value = after.value(kind)
        if not value or after.verified(kind) or CHANNEL[kind] not in available:
            continue
        if before is not None and before.value(kind) == value:
            continue  # the same unverified value: its verification is under way (or re-sent)
        found.append(kind)
    return found


async def _check_limits(
    session: AsyncSession, settings: NotificationsSettings, member_id: UUID, hashed: str, now: Any
) -> None:
    window = now - timedelta(hours=1)
    # Serialise sends to one address, so that two concurrent requests count each other.
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(hashed))))
    # Both limits in one pass over the hour's sends of this address or this member.
    by_address = contact_verifications.c.address_hash == hashed
    by_member = contact_verifications.c.member_id == member_id
    created = contact_verifications.c.created_at
    counts = (
        await session.execute(
            select(
                func.count().filter(by_address),
                func.min(created).filter(by_address),
                func.count().filter(by_member),
                func.min(created).filter(by_member),
            ).where(or_(by_address, by_member), created > window)
        )
    ).one()
    for count, oldest, limit in (
        (counts[0], counts[1], settings.verification_sends_per_address_per_hour),
        (counts[2], counts[3], settings.verification_sends_per_member_per_hour),
    ):
        if count >= limit:
            raise RateLimited(max(1, int((oldest + timedelta(hours=1) - now).total_seconds()) + 1))


async def send(
    session: AsyncSession,
    outbox: OutboxWriter,
    settings: NotificationsSettings,
    *,
    member_id: UUID,
    kind: str,
) -> UUID | None:
    """Queue a verification of the member's current ``kind`` value (superseding pending
    ones); the delivery id, or None when there is nothing to verify.
    RateLimited over the limits."""
    person = (
        await session.execute(select(recipients).where(recipients.c.member_id == member_id))
    ).first()
    if person is None:
        return None
    address = person.email if kind == "email" else person.phone
    if not address:
        return None
    now = datetime.now(UTC)
    hashed_address = address_hash(kind, address)
    await _check_limits(session, settings, member_id, hashed_address, now)
    await supersede(session, member_id, kind)
    verification_id = uuid_compat.uuid7()
    if kind == "email":
        secret = secrets.token_urlsafe(32)
        stored = secret_hash(secret)
        ttl = timedelta(hours=settings.verification_email_ttl_hours)
        variables: dict[str, Any] = {
            "link": f"{settings.verification_link_base}?{urlencode({'token': secret})}",
            "expires_in_hours": round(ttl.total_seconds() / 3600),
        }
    else:
        secret = f"{secrets.randbelow(1_000_000):06d}"
        stored = code_hash(verification_id, secret)
        ttl = timedelta(minutes=settings.verification_sms_ttl_minutes)
        variables = {"code": secret, "expires_in_minutes": round(ttl.total_seconds() / 60)}
    await session.execute(
        contact_verifications.insert().values(
            id=verification_id,
            member_id=member_id,
            kind=kind,
            address=address,
            secret_hash=stored,
            created_at=now,
            expires_at=now + ttl,
            address_hash=hashed_address,
        )
    )
    template = TEMPLATE[kind]
    version = await resolve(session, template, person.language)
    message = render_version(
        version,
        {**variables, "given_name": person.given_name, "family_name": person.family_name},
        locale=locale_of(version.language, person.country_of_residence),
    )
    channel = CHANNEL[kind]
    created = await enqueue(
        session,
        outbox,
        [
            {
                "id": uuid_compat.uuid7(),
                "cause_event_id": verification_id,
                "recipient_id": member_id,
                "channel": channel,
                "template": template,
                "template_version": message.version,
                "category": version.category,
                # Asked for by the person, now: no quiet hours, no opt-out.
                "mandatory": True,
                "language": message.language,
                "address": address,
                "subject": message.subject,
                "body": message.body,
                "sms_text": message.sms,
                "traceparent": current_traceparent().get("traceparent"),
                "campaign_id": None,
                "previous_id": None,
                "reason": "verification",
            }
        ],
    )
    log.info("verification_sent", member_id=str(member_id), kind=kind)
    return created[0] if created else None


async def supersede(session: AsyncSession, member_id: UUID, kind: str) -> None:
    await session.execute(
        update(contact_verifications)
        .where(
            contact_verifications.c.member_id == member_id,
            contact_verifications.c.kind == kind,
            contact_verifications.c.status == "pending",
        )
        .values(status="superseded", address=None)
    )


async def send_for_new_values(
    session: AsyncSession,
    outbox: OutboxWriter,
    settings: NotificationsSettings,
    *,
    member_id: UUID,
    before: Contacts | None,
    available: frozenset[str],
) -> list[str]:
    """After a snapshot: verify every new, unverified contact value (kinds sent).
    A value that changed supersedes the old value's pending verification."""
    after = await contacts_of(session, member_id)
    sent = []
    for kind in ("email", "phone"):
        if before is not None and after is not None and before.value(kind) != after.value(kind):
            await supersede(session, member_id, kind)
    for kind in kinds_to_verify(before, after, available):
        try:
            if await send(session, outbox, settings, member_id=member_id, kind=kind):
                sent.append(kind)
        except RateLimited as limited:
            log.warning(
                "verification_rate_limited",
                member_id=str(member_id),
                kind=kind,
                retry_after=limited.retry_after,
            )
    return sent


async def _verified(
    session: AsyncSession,
    outbox: OutboxWriter,
    verification: Any,
    now: datetime,
    *,
    available: frozenset[str],
) -> datetime:
    column = "email" if verification.kind == "email" else "phone"
    marked = (
        await session.execute(
            update(recipients)
            .where(
                recipients.c.member_id == verification.member_id,
                recipients.c[column] == verification.address,
            )
            .values({f"{column}_verified_at": now})
            .returning(recipients.c.member_id)
        )
    ).first()
    await session.execute(
        update(contact_verifications)
        .where(contact_verifications.c.id == verification.id)
        .values(status="verified", verified_at=now, address=None)
    )
    if marked is None:  # the address changed since: this link proves nothing now
        raise VerificationError(410, "This address is no longer the person's")
    await outbox.add(
        session,
        ContactVerifiedV1(
            member_id=verification.member_id, kind=verification.kind, verified_at=now
        ),
    )
    await welcome_if_due(session, outbox, verification.member_id, available=available)
    return now


async def welcome_if_due(
    session: AsyncSession, outbox: OutboxWriter, member_id: UUID, *, available: frozenset[str]
) -> UUID | None:
    """Queue the member's welcome unless already done (once per member)."""
    row = (
        await session.execute(
            update(recipients)
            .where(recipients.c.member_id == member_id, recipients.c.welcomed_at.is_(None))
            .values(welcomed_at=func.now())
            .returning(recipients.c.registered_at)
        )
    ).first()
    if row is None:
        return None
    registered_at = row.registered_at or datetime.now(UTC)
    return await notify(
        session,
        outbox,
        member_id=member_id,
        template="member_welcome",
        variables={"member_id": str(member_id), "registered_at": registered_at.isoformat()},
        cause_event_id=welcome_cause(member_id),
        available=available,
    )


async def confirm_link(
    session: AsyncSession, outbox: OutboxWriter, token: str, *, available: frozenset[str]
) -> tuple[UUID, datetime]:
    """Confirm an email by its link's token; (member id, verified at)."""
    now = datetime.now(UTC)
    verification = (
        await session.execute(
            select(contact_verifications)
            .where(
                contact_verifications.c.secret_hash == secret_hash(token),
                contact_verifications.c.kind == "email",
            )
            .with_for_update()
        )
    ).first()
    if verification is None or verification.status != "pending":
        raise VerificationError(404, "Unknown or already used link")
    if verification.expires_at <= now:
        raise VerificationError(410, "This link has expired", "Ask for a new one.")
    return verification.member_id, await _verified(
        session, outbox, verification, now, available=available
    )


async def confirm_code(
    session: AsyncSession,
    outbox: OutboxWriter,
    settings: NotificationsSettings,
    member_id: UUID,
    code: str,
    *,
    available: frozenset[str],
) -> datetime:
    """Confirm the member's phone with the code of its latest pending verification.
    A wrong code counts as an attempt (committed by the caller even when refused)."""
    now = datetime.now(UTC)
    verification = (
        await session.execute(
            select(contact_verifications)
            .where(
                contact_verifications.c.member_id == member_id,
                contact_verifications.c.kind == "phone",
                contact_verifications.c.status == "pending",
            )
            .order_by(contact_verifications.c.created_at.desc())
            .limit(1)
            .with_for_update()
        )
    ).first()
    if verification is None:
        raise VerificationError(404, "No code awaiting confirmation", "Ask for a new one.")
    if verification.expires_at <= now:
        raise VerificationError(410, "This code has expired", "Ask for a new one.")
    if not secrets.compare_digest(code_hash(verification.id, code), verification.secret_hash):
        attempts = verification.attempts + 1
        exhausted = attempts >= settings.verification_code_attempts
        await session.execute(
            update(contact_verifications)
            .where(contact_verifications.c.id == verification.id)
            .values(
                attempts=attempts,
                status="exhausted" if exhausted else "pending",
                address=None if exhausted else verification.address,
            )
        )
        if exhausted:
            raise VerificationError(409, "Too many wrong codes", "Ask for a new one.")
        left = settings.verification_code_attempts - attempts
        raise VerificationError(422, "Wrong code", f"{left} attempt(s) left.")
    return await _verified(session, outbox, verification, now, available=available)


# -- the routes' use cases (contacts/http.py): one transaction each ------------------


async def confirm_email(service: Notifications, token: str) -> datetime:
    """Confirm an email address by its link's token; when it was verified."""
    async with service.sessions() as session, session.begin():
        _member, at = await confirm_link(
            session, service.outbox, token, available=service.settings.available_channels
        )
    return at


async def own_contacts(service: Notifications, member_id: UUID) -> Contacts | None:
    async with service.sessions() as session:
        return await contacts_of(session, member_id)


async def confirm_phone(service: Notifications, member_id: UUID, code: str) -> datetime:
    """Confirm the member's phone by the code sent to it. A wrong code is counted (the
    transaction commits) before ``VerificationError`` is raised."""
    refused: VerificationError | None = None
    async with service.sessions() as session, session.begin():
        try:
            at = await confirm_code(
                session,
                service.outbox,
                service.settings,
                member_id,
                code,
                available=service.settings.available_channels,
            )
        except VerificationError as error:
            refused = error  # the attempt is counted: commit, then refuse
    if refused is not None:
        raise refused
    return at


async def resend(service: Notifications, member_id: UUID, kind: str) -> UUID:
    """Send a new verification of the member's email or phone: the delivery id.
    ``VerificationError`` (404 no recipient, 409 nothing to verify) or ``RateLimited``."""
    available = service.settings.available_channels
    async with service.sessions() as session, session.begin():
        found = await contacts_of(session, member_id)
        if found is None:
            raise VerificationError(404, "Recipient not found")
        if kind == "phone" and "sms" not in available:
            raise VerificationError(409, "No SMS channel", "Phone numbers cannot be verified here.")
        if not found.value(kind):
            raise VerificationError(409, f"No {kind} to verify")
        if found.verified(kind):
            raise VerificationError(409, f"Your {kind} is already verified")
        delivery_id = await send(
            session, service.outbox, service.settings, member_id=member_id, kind=kind
        )
    assert delivery_id is not None
    return delivery_id


async def erase_member(session: AsyncSession, member_id: UUID) -> None:
    """Erasure step: the member's verifications (and the addresses they name) go."""
    await session.execute(
        delete(contact_verifications).where(contact_verifications.c.member_id == member_id)
    )

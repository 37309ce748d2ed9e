"""Use cases of issued credentials: signing one in the transaction of the application's
`issue`, reading, revoking, and what the public lists show."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from consular.applications.service import NotEligible, subject_of
from consular.catalogue.domain import Refusal
from consular.credentials import domain
from consular.credentials.document import PrintedCredential
from consular.credentials.tables import credentials
from consular.members.tables import applicants
from consular.settings import ConsularSettings
from consular.signing_keys import KeyRing
from diaspora_events.contracts import CredentialIssuedV1, CredentialRevokedV1
from diaspora_events.outbox import OutboxWriter

# The columns the policy's scopes compare (policy.yaml, resource consular_credential).
SCOPE_COLUMNS: dict[str, Any] = {
    "holder_id": credentials.c.holder_id,
    "holder_subject": credentials.c.holder_subject,
    "embassy_id": credentials.c.embassy_id,
}

HOLDER_UNKNOWN = Refusal(
    "holder_unknown",
    "The applicant's registry record is not known here (erased or not yet received): "
    "no credential can be signed for them.",
)


def validity(settings: ConsularSettings, credential_type: str) -> timedelta:
    days = (
        settings.e_visa_validity_days
        if credential_type == "e_visa"
        else settings.consular_card_validity_days
    )
    return timedelta(days=days)


async def _holder(session: AsyncSession, application: dict[str, Any]) -> domain.Holder:
    if application["service_type"] == "e_visa" or application["applicant_id"] is None:
        return domain.visitor_of(application["answers"])
    row = (
        (
            await session.execute(
                select(
                    applicants.c.given_name, applicants.c.family_name, applicants.c.date_of_birth
                ).where(applicants.c.member_id == application["applicant_id"])
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotEligible(HOLDER_UNKNOWN)
    born: date | None = row["date_of_birth"]
    return domain.Holder(row["given_name"], row["family_name"], born)


async def issue(
    session: AsyncSession,
    outbox: OutboxWriter,
    application: dict[str, Any],
    now: datetime,
    *,
    keys: KeyRing,
    settings: ConsularSettings,
) -> dict[str, Any] | None:
    """Sign the credential of an application just issued (a consular card or an e-visa;
    other types issue no credential) and store it with its event, in the caller's
    transaction."""
    credential_type = application["service_type"]
    if credential_type not in domain.CREDENTIAL_TYPES:
        return None
    holder = await _holder(session, application)
    credential_id = uuid.uuid4()
    expires_at = now + validity(settings, credential_type)
    embassy_id: str = application["embassy_id"]
    token = keys.sign(
        domain.claims(
            credential_id=credential_id,
            credential_type=credential_type,
            issuer=settings.credential_issuer,
            holder=holder,
            embassy_id=embassy_id,
            reference=application.get("reference"),
            issued_at=now,
            expires_at=expires_at,
        )
    )
    row = {
        "id": credential_id,
        "application_id": application["id"],
        "credential_type": credential_type,
        "holder_id": application["applicant_id"],
        "holder_subject": application["applicant_subject"],
        "embassy_id": embassy_id,
        "kid": keys.kid,
        "token": token,
        "issued_at": now,
        "expires_at": expires_at,
    }
    await session.execute(credentials.insert().values(**row))
    await outbox.add(
        session,
        CredentialIssuedV1(
            credential_id=credential_id,
            application_id=application["id"],
            holder_id=application["applicant_id"],
            subject_id=subject_of(application),
            credential_type=credential_type,
            embassy_id=embassy_id,
            kid=keys.kid,
            issued_at=now,
            expires_at=expires_at,
        ),
    )
    return row


async def load(
    session: AsyncSession, credential_id: UUID, where: ColumnElement[bool], *, lock: bool = False
) -> dict[str, Any] | None:
    statement = select(credentials).where(credentials.c.id == credential_id, where)
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def search(
    session: AsyncSession,
    where: ColumnElement[bool],
    *,
    application_id: UUID | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    statement = select(credentials).where(where)
    if application_id is not None:
        statement = statement.where(credentials.c.application_id == application_id)
    rows = await session.execute(
        statement.order_by(credentials.c.issued_at.desc(), credentials.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [dict(r) for r in rows.mappings()]


class AlreadyRevoked(Exception):
    pass


async def revoke(
    session: AsyncSession,
    outbox: OutboxWriter,
    row: dict[str, Any],
    *,
    reason: str,
    actor_subject: str,
    actor_role: str,
    now: datetime,
) -> dict[str, Any]:
    """Revoke a (locked) credential, with its event; once only."""
    if row["revoked_at"] is not None:
        raise AlreadyRevoked(str(row["id"]))
    values = {"revoked_at": now, "revoked_by": actor_subject, "revocation_reason": reason}
    await session.execute(update(credentials).where(credentials.c.id == row["id"]).values(**values))
    subject: UUID = row["holder_id"] or row["application_id"]
    await outbox.add(
        session,
        CredentialRevokedV1(
            credential_id=row["id"],
            application_id=row["application_id"],
            holder_id=row["holder_id"],
            subject_id=subject,
            credential_type=row["credential_type"],
            embassy_id=row["embassy_id"],
            revoked_at=now,
            actor_role=actor_role,
            reason=reason,
        ),
    )
    return {**row, **values}


async def revocations(session: AsyncSession) -> list[tuple[UUID, datetime]]:
    """Every revoked credential (id, when), oldest first: the public revocation list."""
    rows = await session.execute(
        select(credentials.c.id, credentials.c.revoked_at)
        .where(credentials.c.revoked_at.is_not(None))
        .order_by(credentials.c.revoked_at, credentials.c.id)
    )
    return [(r.id, r.revoked_at) for r in rows]


async def status_of(session: AsyncSession, credential_id: str) -> tuple[bool, bool]:
    """(known, revoked) for a credential id taken from a verified token."""
    try:
        key = UUID(credential_id)
    except ValueError:
        return False, False
    row = (
        await session.execute(select(credentials.c.revoked_at).where(credentials.c.id == key))
    ).first()
    if row is None:
        return False, False
    return True, row.revoked_at is not None


def printed(row: dict[str, Any]) -> PrintedCredential:
    """The PDF's content, from the stored token's own claims (what the QR proves)."""
    found: dict[str, Any] = jwt.decode(row["token"], options={"verify_signature": False})
    holder = found.get("holder", {})
    born = holder.get("date_of_birth")
    return PrintedCredential(
        credential_id=str(row["id"]),
        credential_type=row["credential_type"],
        holder=domain.Holder(
            given_name=holder.get("given_name", ""),
            family_name=holder.get("family_name", ""),
            date_of_birth=date.fromisoformat(born) if born else None,
            passport_number=holder.get("passport_number"),
            nationality=holder.get("nationality"),
        ),
        embassy_id=row["embassy_id"],
        reference=found.get("application_reference"),
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        token=row["token"],
    )


# --- merge (a step of the members consumer) -------------------------------------------


async def merge_holder(session: AsyncSession, absorbed: UUID, survivor: UUID) -> None:
    """Two registry records were one person: their credentials follow the survivor (as
    their applications do), so the holder still downloads them. Erasure keeps them (issued
    documents are legal records)."""
    await session.execute(
        update(credentials).where(credentials.c.holder_id == absorbed).values(holder_id=survivor)
    )

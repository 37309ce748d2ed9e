"""Registry use cases: each one state change plus its events, in one transaction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime
from uuid import UUID

import uuid_utils.compat as uuid_compat
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.contracts import MemberRegisteredV1
from diaspora_events.outbox import OutboxWriter
from registry.adapters.orm import members
from registry.domain import Member, RegisterMember


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before for a different request."""


def _digest(command: RegisterMember) -> str:
    body = {k: v for k, v in asdict(command).items() if k != "idempotency_key"}
    return hashlib.sha256(json.dumps(body, default=str, sort_keys=True).encode()).hexdigest()


def _member(row: object) -> Member:
    return Member(**{f: getattr(row, f) for f in Member.__dataclass_fields__})


async def register_member(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    command: RegisterMember,
) -> tuple[Member, bool]:
    """Register a person; returns the member and whether it was created now.

    A repeated request with the same Idempotency-Key returns the first result.
    """
    digest = _digest(command)
    if command.idempotency_key:
        existing = await _by_idempotency_key(sessions, command.idempotency_key, digest)
        if existing:
            return existing, False
    member = Member(
        id=uuid_compat.uuid7(),
        given_name=command.given_name,
        family_name=command.family_name,
        date_of_birth=command.date_of_birth,
        country_of_residence=command.country_of_residence,
        email=command.email,
        phone=command.phone,
        preferred_language=command.preferred_language,
        registered_at=datetime.now(UTC),
    )
    try:
        async with sessions() as session, session.begin():
            await session.execute(
                members.insert().values(
                    **asdict(member), idempotency_key=command.idempotency_key, request_digest=digest
                )
            )
            await outbox.add(
                session,
                MemberRegisteredV1(
                    member_id=member.id,
                    given_name=member.given_name,
                    family_name=member.family_name,
                    date_of_birth=member.date_of_birth,
                    email=member.email,
                    phone=member.phone,
                    country_of_residence=member.country_of_residence,
                    preferred_language=member.preferred_language,
                    registered_at=member.registered_at,
                ),
                subject=str(member.id),
            )
    except IntegrityError:
        # Two requests with one Idempotency-Key raced; the other one won.
        if command.idempotency_key:
            existing = await _by_idempotency_key(sessions, command.idempotency_key, digest)
            if existing:
                return existing, False
        raise
    return member, True


async def _by_idempotency_key(
    sessions: async_sessionmaker[AsyncSession], key: str, digest: str
) -> Member | None:
    async with sessions() as session:
        row = (
            await session.execute(select(members).where(members.c.idempotency_key == key))
        ).first()
    if row is None:
        return None
    if row.request_digest != digest:
        raise IdempotencyConflict(key)
    return _member(row)


async def get_member(
    *, sessions: async_sessionmaker[AsyncSession], member_id: UUID
) -> Member | None:
    async with sessions() as session:
        row = (await session.execute(select(members).where(members.c.id == member_id))).first()
    return _member(row) if row else None

"""Use cases of the catalogue: read the current (or a given) version, publish a new one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from consular.catalogue.domain import ServiceTypeDefinition
from consular.catalogue.tables import service_type_versions, service_types


@dataclass(frozen=True)
class ServiceTypeVersion:
    id: UUID
    code: str
    version: int
    current_version: int
    definition: ServiceTypeDefinition
    created_at: datetime
    created_by: str | None


class VersionConflict(Exception):
    def __init__(self, current: int) -> None:
        super().__init__(f"the current version is {current}")
        self.current = current


def _version(row: Any) -> ServiceTypeVersion:
    return ServiceTypeVersion(
        id=row["id"],
        code=row["code"],
        version=row["version"],
        current_version=row["current_version"],
        definition=ServiceTypeDefinition.model_validate(row["definition"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
    )


def _select() -> Any:
    return select(
        service_type_versions,
        service_types.c.current_version,
    ).join(service_types, service_types.c.code == service_type_versions.c.code)


async def get(
    session: AsyncSession, code: str, version: int | None = None
) -> ServiceTypeVersion | None:
    """A service type as of ``version`` (default: the current one)."""
    wanted = version if version is not None else service_types.c.current_version
    row = (
        (
            await session.execute(
                _select().where(
                    service_type_versions.c.code == code, service_type_versions.c.version == wanted
                )
            )
        )
        .mappings()
        .first()
    )
    return _version(row) if row is not None else None


async def by_id(session: AsyncSession, version_id: UUID) -> ServiceTypeVersion:
    row = (
        (await session.execute(_select().where(service_type_versions.c.id == version_id)))
        .mappings()
        .one()
    )
    return _version(row)


async def current(session: AsyncSession) -> list[ServiceTypeVersion]:
    rows = (
        await session.execute(
            _select()
            .where(service_type_versions.c.version == service_types.c.current_version)
            .order_by(service_types.c.code)
        )
    ).mappings()
    return [_version(r) for r in rows]


async def publish(
    session: AsyncSession,
    code: str,
    definition: ServiceTypeDefinition,
    *,
    expected: int | None,
    actor: str | None,
) -> ServiceTypeVersion:
    """A new version of ``code`` (version 1 of a new type); ``expected`` is the version the
    editor read (If-Match): another edit in between raises VersionConflict."""
    now = func.now()
    current_row = (
        await session.execute(
            select(service_types.c.current_version)
            .where(service_types.c.code == code)
            .with_for_update()
        )
    ).first()
    if current_row is None:
        if expected not in (None, 0):
            raise VersionConflict(0)
        await session.execute(
            insert(service_types).values(code=code, current_version=1).on_conflict_do_nothing()
        )
        version = 1
    else:
        current_version = int(current_row[0])
        if expected is not None and expected != current_version:
            raise VersionConflict(current_version)
        version = current_version + 1
        await session.execute(
            update(service_types)
            .where(service_types.c.code == code)
            .values(current_version=version, updated_at=now)
        )
    await session.execute(
        insert(service_type_versions).values(
            id=uuid.uuid4(),
            code=code,
            version=version,
            definition=definition.model_dump(mode="json"),
            created_by=actor,
        )
    )
    found = await get(session, code, version)
    assert found is not None
    return found

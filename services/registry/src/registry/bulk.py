"""Bulk writes in the session's transaction: PostgreSQL COPY on its own connection.

A bulk import writes thousands of rows per transaction into several tables.
SQLAlchemy's ``executemany`` processes every parameter of every row in Python
and asyncpg sends one Bind/Execute per row; COPY sends the rows as one binary
stream, which the server ingests in one go. The rows are plain tuples in the
table's column order; JSONB values are JSON text, encoded once (:func:`json_text`).

The COPY runs on the very connection of the session, inside its transaction:
it commits or rolls back with everything else the session did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession


def json_text(value: Any) -> str:
    """JSON text of a value (dates, datetimes and UUIDs as the API writes them)."""
    return to_json(value).decode()


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under ``session``, with the session's transaction begun."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter sends BEGIN with the first statement it runs: run
        # one, so that what follows on the driver is part of the session's transaction.
        await connection.exec_driver_sql("SELECT 1")
    return driver


async def copy_rows(
    session: AsyncSession,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """COPY ``rows`` (tuples in ``columns`` order) into ``table``, in the session's transaction."""
    if not rows:
        return
    driver = await driver_connection(session)
    await driver.copy_records_to_table(
        table.name, columns=list(columns), records=rows, schema_name=table.schema
    )

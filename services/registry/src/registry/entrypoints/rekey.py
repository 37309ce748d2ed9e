"""Re-encrypt document numbers under the active key: `registry-rekey`.

After a new key is added to ``REGISTRY_DOCUMENT_KEYS`` and made active with
``REGISTRY_DOCUMENT_KEY_ID`` (the old one still listed), this moves every number
still sealed under another key to the active one (the members' documents and the
documents of identity checks), in small transactions (each
row locked while it is rewritten, so it runs beside the live service). When it
reports nothing left, the old key can be removed from the settings
(docs/runbooks/rotate-keys.md). ``--generate-key`` prints a new random key.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.bootstrap import bootstrap
from registry.crypto import DocumentCipher, Sealed, generate_key
from registry.identity.service import number_context
from registry.identity.tables import identity_verifications
from registry.members.tables import member_documents

# Every table of sealed numbers, with the associated data of a row's number.
SEALED_NUMBERS: tuple[tuple[Table, Callable[[Mapping[Any, Any]], dict[str, Any]]], ...] = (
    (member_documents, lambda row: {"member_id": row["member_id"], "kind": row["kind"]}),
    (identity_verifications, lambda row: number_context(row["member_id"], row["id"])),
)


async def rekey(
    sessions: async_sessionmaker[AsyncSession], cipher: DocumentCipher, *, batch: int = 500
) -> int:
    """Re-seal every number not under the active key (the members' documents, the
    documents of identity checks); returns how many were moved."""
    moved = 0
    for table, context_of in SEALED_NUMBERS:
        moved += await _rekey_table(sessions, cipher, table, context_of, batch)
    return moved


async def _rekey_table(
    sessions: async_sessionmaker[AsyncSession],
    cipher: DocumentCipher,
    table: Table,
    context_of: Callable[[Mapping[Any, Any]], dict[str, Any]],
    batch: int,
) -> int:
    moved = 0
    while True:
        async with sessions() as session, session.begin():
            rows = (
                (
                    await session.execute(
                        select(table)
                        .where(table.c.key_id != cipher.active_key_id)
                        .order_by(table.c.id)
                        .limit(batch)
                        .with_for_update(skip_locked=True)
                    )
                )
                .mappings()
                .all()
            )
            for row in rows:
                context = context_of(row)
                number = cipher.open(Sealed(row["key_id"], row["number_ciphertext"]), **context)
                sealed = cipher.seal(number, **context)
                await session.execute(
                    update(table)
                    .where(table.c.id == row["id"])
                    .values(key_id=sealed.key_id, number_ciphertext=sealed.ciphertext)
                )
        moved += len(rows)
        if len(rows) < batch:
            return moved


async def remaining(sessions: async_sessionmaker[AsyncSession], active_key_id: str) -> int:
    left = 0
    async with sessions() as session:
        for table, _context in SEALED_NUMBERS:
            count = await session.execute(
                select(func.count()).select_from(table).where(table.c.key_id != active_key_id)
            )
            left += int(count.scalar_one())
    return left


async def run() -> int:
    registry = bootstrap()
    try:
        moved = await rekey(registry.sessions, registry.cipher)
        left = await remaining(registry.sessions, registry.cipher.active_key_id)
    finally:
        await registry.close()
    print(
        f"re-encrypted {moved} document numbers under key {registry.cipher.active_key_id!r}; "
        f"{left} under other keys"
    )
    return 0 if left == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="registry-rekey", description=__doc__)
    parser.add_argument(
        "--generate-key", action="store_true", help="print a new random key (base64) and exit"
    )
    args = parser.parse_args()
    if args.generate_key:
        print(generate_key())
        return
    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()

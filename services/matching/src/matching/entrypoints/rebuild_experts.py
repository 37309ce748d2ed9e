"""`matching-rebuild-experts`: rebuild the experts read model from ``registry.members``.

Runs beside the live service (no need to stop the worker): see
docs/runbooks/rebuild-read-model.md and ``matching.experts.rebuild``.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from diaspora_events.shredding import event_key_settings
from diaspora_service.db import make_engine
from matching import SERVICE_NAME
from matching.experts.rebuild import rebuild
from matching.settings import MatchingSettings


async def run() -> int:
    settings = MatchingSettings()
    # The swap drops and renames tables: the owner's work (the runtime role keeps its
    # rights on the new tables: diaspora_service.db_roles.copy_grants).
    owner_url = settings.async_migration_database_url
    engine = make_engine(owner_url)
    try:
        report = await rebuild(
            engine,
            bootstrap_servers=settings.kafka,
            topic_prefix=settings.topic_prefix,
            # The members' events are sealed (crypto-shredding): their keys, per batch.
            keys=event_key_settings(SERVICE_NAME).resolver(SERVICE_NAME),
        )
    finally:
        await engine.dispose()
    print(
        json.dumps(
            {
                "events_read": report.events_read,
                "events_applied": report.events_applied,
                "caught_up_during_swap": report.caught_up,
                "skipped": report.skipped,
                "experts": report.experts,
                "seconds": round(report.seconds, 2),
            }
        )
    )
    return 0


def main() -> None:
    argparse.ArgumentParser(
        description="Rebuild the experts read model from the registry's member topic "
        "(MATCHING_* settings), then swap it in."
    ).parse_args()
    raise SystemExit(asyncio.run(run()))


if __name__ == "__main__":
    main()

"""The returnees service's service-wide tables (its own database) and their metadata:
outbox, inbox and audit log (definitions shared with every service: diaspora_events,
diaspora_identity). Each feature's own tables are in its ``tables.py`` (``members/``,
``cases/``, ...), on this metadata.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from diaspora_events.consumer import inbox_table
from diaspora_events.outbox import outbox_table
from diaspora_identity.audit import audit_table

metadata = MetaData()

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
# Staff reads and changes of cases (append-only, hash-chained).
audit_log = audit_table(metadata, chained=True)

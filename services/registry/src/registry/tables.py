"""Service-wide tables: the outbox, the inbox, the audit log, and the metadata every
feature's tables are declared on (each feature keeps its own in its ``tables.py``)."""

from __future__ import annotations

from sqlalchemy import MetaData

from diaspora_events.consumer import inbox_table
from diaspora_events.outbox import outbox_table
from diaspora_identity.audit import audit_table

metadata = MetaData()

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
# Every staff read or change of a member's record; append-only (trigger in migration 0002),
# hash-chained (migration 0009).
audit_log = audit_table(metadata, chained=True)

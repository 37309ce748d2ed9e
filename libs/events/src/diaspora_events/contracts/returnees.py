"""Events published by the returnees service."""

from __future__ import annotations

from diaspora_events.contracts.audit import AuditRecorded
from diaspora_events.contracts.base import contract
from diaspora_events.topics import RETURNEES_AUDIT


@contract(
    event_type="returnees.audit.recorded",
    version=1,
    topic=RETURNEES_AUDIT,
    key="record_id",
    subject="record_id",
    description=(
        "A member of staff read or changed a returnee's case held by returnees (record id = "
        "the returnee's member id when the case is linked to one, else the case id); reads "
        "of the sensitive fields (health, psychosocial, vulnerabilities) are named in "
        "`fields`."
    ),
)
class ReturneesAuditRecordedV1(AuditRecorded):
    pass

"""Events built from a member's record: the registration event, the audit event."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from diaspora_events.contracts import MemberRegisteredV1, RegistryAuditRecordedV1
from diaspora_identity.audit import audit_event_factory
from registry.members.domain import Member
from registry.members.records import profile_of

# The event published for each entry (its fields are the entry's).
audit_event = audit_event_factory(RegistryAuditRecordedV1)


def registered_event(
    member: Member | Mapping[Any, Any], consents: Sequence[Mapping[Any, Any]] = ()
) -> MemberRegisteredV1:
    """The registration event: the first release's flat fields and the whole profile."""
    row: Mapping[Any, Any] = asdict(member) if isinstance(member, Member) else member
    return MemberRegisteredV1(
        member_id=row["id"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        date_of_birth=row["date_of_birth"],
        email=row["email"],
        phone=row["phone"],
        country_of_residence=row["country_of_residence"],
        preferred_language=row["preferred_language"],
        registered_at=row["registered_at"],
        profile=profile_of(row, consents),
    )

"""Events published by the registry service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from diaspora_events.contracts.audit import AuditRecorded
from diaspora_events.contracts.base import Event, contract, personal
from diaspora_events.topics import REGISTRY_AUDIT, REGISTRY_MEMBERS

Language = Literal["fr", "en"]


@contract(
    event_type="registry.member.registered",
    version=1,
    topic=REGISTRY_MEMBERS,
    key="member_id",
    description="A person was registered in the diaspora registry.",
)
class MemberRegisteredV1(Event):
    member_id: UUID
    given_name: str = personal(description="Given name(s), as the person wrote them.")
    family_name: str = personal(description="Family name.")
    date_of_birth: date = personal()
    email: str = personal(description="Contact email address.")
    phone: str = personal(description="Phone number in E.164 form.")
    country_of_residence: str = personal(
        description="ISO 3166-1 alpha-2 code of the country of residence."
    )
    preferred_language: Language = "fr"
    registered_at: datetime


@contract(
    event_type="registry.audit.recorded",
    version=1,
    topic=REGISTRY_AUDIT,
    key="record_id",
    description="Someone other than the person read or changed a member's record.",
)
class RegistryAuditRecordedV1(AuditRecorded):
    pass


@contract(
    event_type="registry.member.erased",
    version=1,
    topic=REGISTRY_MEMBERS,
    key="member_id",
    description=(
        "A person's data was erased from the registry at their request; every service "
        "deletes or anonymises what it holds on them."
    ),
)
class MemberErasedV1(Event):
    member_id: UUID
    erased_at: datetime

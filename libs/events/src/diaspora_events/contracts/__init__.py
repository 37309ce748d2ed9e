"""Every event contract of the platform. Importing this package registers them all."""

from diaspora_events.contracts.base import (
    Event,
    UnknownEventType,
    all_contracts,
    contract,
    contract_for,
    personal,
)
from diaspora_events.contracts.notifications import DeliveryDeliveredV1, DeliveryFailedV1
from diaspora_events.contracts.registry import (
    AssociationRegisteredV1,
    AssociationUpdatedV1,
    DuplicatesFlaggedV1,
    DuplicatesResolvedV1,
    MemberConfirmedV1,
    MemberErasedV1,
    MemberMarkedStaleV1,
    MemberMergedV1,
    MemberProfile,
    MemberRegisteredV1,
    MemberUpdatedV1,
    RegistryAuditRecordedV1,
)

__all__ = [
    "AssociationRegisteredV1",
    "AssociationUpdatedV1",
    "DeliveryDeliveredV1",
    "DeliveryFailedV1",
    "DuplicatesFlaggedV1",
    "DuplicatesResolvedV1",
    "Event",
    "MemberConfirmedV1",
    "MemberErasedV1",
    "MemberMarkedStaleV1",
    "MemberMergedV1",
    "MemberProfile",
    "MemberRegisteredV1",
    "MemberUpdatedV1",
    "RegistryAuditRecordedV1",
    "UnknownEventType",
    "all_contracts",
    "contract",
    "contract_for",
    "personal",
]

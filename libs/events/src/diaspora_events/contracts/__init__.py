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
    MemberErasedV1,
    MemberRegisteredV1,
    RegistryAuditRecordedV1,
)

__all__ = [
    "DeliveryDeliveredV1",
    "DeliveryFailedV1",
    "Event",
    "MemberErasedV1",
    "MemberRegisteredV1",
    "RegistryAuditRecordedV1",
    "UnknownEventType",
    "all_contracts",
    "contract",
    "contract_for",
    "personal",
]

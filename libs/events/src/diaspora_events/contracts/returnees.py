"""Events published by the returnees service."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from diaspora_events.contracts.audit import AuditRecorded
from diaspora_events.contracts.base import Event, contract, personal
from diaspora_events.topics import RETURNEES_ADVISORIES, RETURNEES_AUDIT, RETURNEES_SUBSCRIBERS


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


# --- country lists and advisories (docs/returnees.md, "Country lists and advisories") --

AdvisoryLevel = Literal["caution", "warning", "avoid"]


@contract(
    event_type="returnees.advisory.published",
    version=1,
    topic=RETURNEES_ADVISORIES,
    key="entry_id",
    description=(
        "A watchlist entry (a country where migrant workers' rights are reported violated) "
        "was published after a second analyst's review: notifications sends its advisory, "
        "in French or English, to the registered members living in that country and to the "
        "awareness subscribers of that country. Public text, no personal data."
    ),
)
class AdvisoryPublishedV1(Event):
    entry_id: UUID = Field(description="The watchlist entry; one advisory per entry.")
    country: str = Field(description="ISO 3166-1 alpha-2.")
    level: AdvisoryLevel
    title_fr: str
    title_en: str
    text_fr: str
    text_en: str
    published_at: datetime


@contract(
    event_type="returnees.advisory.withdrawn",
    version=1,
    topic=RETURNEES_ADVISORIES,
    key="entry_id",
    description="A published watchlist entry was withdrawn (its advisory no longer stands).",
)
class AdvisoryWithdrawnV1(Event):
    entry_id: UUID
    country: str
    withdrawn_at: datetime


SubscriberChannel = Literal["email", "sms"]


@contract(
    event_type="returnees.subscriber.requested",
    version=1,
    topic=RETURNEES_SUBSCRIBERS,
    key="subscriber_id",
    subject="subscriber_id",
    description=(
        "Someone in Togo asked to receive migration awareness messages and advisories: "
        "notifications sends the confirmation link (double opt-in) to the address, and "
        "nothing else until it is confirmed."
    ),
)
class SubscriberRequestedV1(Event):
    subscriber_id: UUID
    channel: SubscriberChannel
    language: Literal["fr", "en"]
    requested_at: datetime
    expires_at: datetime = Field(description="The confirmation link stops working then.")
    address: str = personal(description="The email address or phone number (E.164).")
    confirm_link: str = personal(description="The single-use confirmation link.")


@contract(
    event_type="returnees.subscriber.confirmed",
    version=1,
    topic=RETURNEES_SUBSCRIBERS,
    key="subscriber_id",
    subject="subscriber_id",
    description=(
        "A subscriber confirmed their address: from now on notifications sends them the "
        "awareness messages and the advisories of the countries they chose."
    ),
)
class SubscriberConfirmedV1(Event):
    subscriber_id: UUID
    channel: SubscriberChannel
    language: Literal["fr", "en"]
    awareness: bool = Field(description="Wants the migration awareness campaigns.")
    countries: list[str] = Field(description="Advisories of these countries (ISO alpha-2).")
    consent_text_version: str
    consented_at: datetime
    confirmed_at: datetime
    address: str = personal(description="The email address or phone number (E.164).")
    unsubscribe_link: str = personal(description="The signed one-step unsubscribe link.")


@contract(
    event_type="returnees.subscriber.unsubscribed",
    version=1,
    topic=RETURNEES_SUBSCRIBERS,
    key="subscriber_id",
    description=(
        "A subscriber left (the signed link): notifications forgets their address and "
        "cancels what is still queued for them."
    ),
)
class SubscriberUnsubscribedV1(Event):
    subscriber_id: UUID
    unsubscribed_at: datetime

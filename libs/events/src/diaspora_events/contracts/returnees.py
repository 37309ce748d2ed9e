"""Events published by the returnees service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from diaspora_events.contracts.audit import AuditRecorded
from diaspora_events.contracts.base import Event, contract, personal
from diaspora_events.topics import (
    RETURNEES_ADVISORIES,
    RETURNEES_AUDIT,
    RETURNEES_CASES,
    RETURNEES_REFERRALS,
    RETURNEES_SUBSCRIBERS,
)


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


# --- Cases (returnees.cases) -------------------------------------------------------------

CaseStatus = Literal["declared", "open", "assessed", "in_plan", "closed", "cancelled"]
CaseOrigin = Literal["case_worker", "pre_return", "laissez_passer"]

CASE_SUBJECT = (
    "The person the personal fields are about: the returnee's member id, or the case id "
    "when the case is linked to no registry record."
)


@contract(
    event_type="returnees.case.opened",
    version=1,
    topic=RETURNEES_CASES,
    key="case_id",
    subject="subject_id",
    description=(
        "A returnee's case was opened: by a case worker, by the returnee before return (a "
        "pre-return declaration) or from a laissez-passer issued by consular. Health, "
        "psychosocial and vulnerability data are never in an event."
    ),
)
class CaseOpenedV1(Event):
    case_id: UUID
    member_id: UUID | None = Field(description="The returnee's registry member id, if known.")
    subject_id: UUID = Field(description=CASE_SUBJECT)
    origin: CaseOrigin
    status: CaseStatus
    application_id: UUID | None = Field(
        default=None, description="The consular application (origin laissez_passer)."
    )
    opened_at: datetime
    expected_arrival: date | None = personal(default=None)
    return_date: date | None = personal(default=None)
    country_from: str | None = personal(
        default=None, description="ISO 3166-1 alpha-2 of the country returned from."
    )


@contract(
    event_type="returnees.case.status-changed",
    version=1,
    topic=RETURNEES_CASES,
    key="case_id",
    subject="subject_id",
    description=(
        "A case moved in its state machine (intake recorded, needs assessed, plan agreed, "
        "closed with its outcome, cancelled)."
    ),
)
class CaseStatusChangedV1(Event):
    case_id: UUID
    member_id: UUID | None = None
    subject_id: UUID = Field(description=CASE_SUBJECT)
    action: str
    from_status: CaseStatus
    to_status: CaseStatus
    changed_at: datetime
    outcome: str | None = Field(default=None, description="The closure's outcome code.")


@contract(
    event_type="returnees.case.assigned",
    version=1,
    topic=RETURNEES_CASES,
    key="case_id",
    subject="subject_id",
    description="A case was assigned to a case worker of the return cell.",
)
class CaseAssignedV1(Event):
    case_id: UUID
    member_id: UUID | None = None
    subject_id: UUID = Field(description=CASE_SUBJECT)
    assigned_to: str = personal(description="The case worker's subject at the identity provider.")
    assigned_at: datetime


@contract(
    event_type="returnees.case.follow-up-overdue",
    version=1,
    topic=RETURNEES_CASES,
    key="case_id",
    subject="subject_id",
    description=(
        "A follow-up of a case (3, 6 or 12 months after return) passed its due date without "
        "being recorded; flagged once by the worker's job."
    ),
)
class CaseFollowUpOverdueV1(Event):
    case_id: UUID
    member_id: UUID | None = None
    subject_id: UUID = Field(description=CASE_SUBJECT)
    months: int
    due_on: date
    flagged_at: datetime


# --- referrals to partner organisations (returnees.referrals) ---------------------------

ReferralStatus = Literal["referred", "acknowledged", "done", "refused", "cancelled"]

REFERRAL_SUBJECT_ID = (
    "The person the personal fields are about: the returnee's member id, or the referral "
    "id for a returnee without a registry record."
)


@contract(
    event_type="returnees.referral.created",
    version=1,
    topic=RETURNEES_REFERRALS,
    key="referral_id",
    subject="subject_id",
    description=(
        "A case worker of the return cell referred one need of a case to a partner "
        "organisation that offers it in the returnee's prefecture, with the SLA's dates."
    ),
)
class ReferralCreatedV1(Event):
    referral_id: UUID
    case_id: UUID
    member_id: UUID | None = Field(description="The returnee's registry member id, if any.")
    subject_id: UUID = Field(description=REFERRAL_SUBJECT_ID)
    partner_id: UUID
    partner_org: str = Field(description="The partner's `partner_org` (its case workers' claim).")
    need: str = Field(description="Need category, e.g. housing.")
    priority: str = Field(description="high, medium or low.")
    prefecture: str = Field(description="Prefecture of Togo (slug), e.g. golfe.")
    region: str = Field(description="Its region (ISO 3166-2:TG), e.g. TG-M.")
    referred_at: datetime
    acknowledge_by: datetime = Field(description="The partner acknowledges before this.")
    complete_by: datetime = Field(description="The partner reports the outcome before this.")
    note: str | None = personal(default=None, description="The case worker's note for the partner.")


@contract(
    event_type="returnees.referral.status-changed",
    version=1,
    topic=RETURNEES_REFERRALS,
    key="referral_id",
    subject="subject_id",
    description=(
        "A referral moved on: acknowledged by the partner, reported done or refused (with "
        "a reason), or cancelled by the return cell."
    ),
)
class ReferralStatusChangedV1(Event):
    referral_id: UUID
    case_id: UUID
    member_id: UUID | None
    subject_id: UUID = Field(description=REFERRAL_SUBJECT_ID)
    partner_org: str
    need: str
    action: str = Field(description="acknowledge, complete, refuse or cancel.")
    from_status: ReferralStatus
    to_status: ReferralStatus
    actor_side: str = Field(description="partner or cell.")
    changed_at: datetime
    reason: str | None = personal(default=None, description="The reason or report, free text.")


@contract(
    event_type="returnees.referral.escalated",
    version=1,
    topic=RETURNEES_REFERRALS,
    key="referral_id",
    description=(
        "A referral passed a deadline of its SLA (acknowledgement or outcome) with the "
        "partner still to act: flagged overdue and escalated to the ministry's "
        "coordinators, once per stage. Ids only."
    ),
)
class ReferralEscalatedV1(Event):
    referral_id: UUID
    case_id: UUID
    member_id: UUID | None
    partner_id: UUID
    partner_org: str
    need: str
    status: ReferralStatus
    stage: Literal["acknowledge", "complete"] = Field(description="The deadline passed.")
    due_at: datetime
    escalated_at: datetime


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

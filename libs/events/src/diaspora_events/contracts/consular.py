"""Events published by the consular service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from diaspora_events.contracts.audit import AuditRecorded
from diaspora_events.contracts.base import Event, contract, personal
from diaspora_events.topics import CONSULAR_APPLICATIONS, CONSULAR_AUDIT, CONSULAR_REPORTS

# One state machine for every service type (docs/consular.md).
ApplicationStatus = Literal[
    "draft",
    "submitted",
    "under_review",
    "information_requested",
    "resubmitted",
    "approved",
    "rejected",
    "issued",
    "collected",
    "withdrawn",
    "expired",
]

# Whose data key seals an application event's personal fields (crypto-shredding).
# A foreign visitor (e-visa, no registry record) is told where their application stands
# at the contact of their own account: these fields carry it (null for a registry member,
# whom notifications reaches through the registry's events).
VISITOR_EMAIL = (
    "A foreign visitor's email (their account's, verified by the identity provider): "
    "where notifications sends the status messages. Null for a registry member."
)
VISITOR_NAME = "A foreign visitor's name as given on the form (greeting). Null for a member."
VISITOR_LANGUAGE = "The language of a foreign visitor's messages (fr or en). Null for a member."

SUBJECT_ID = (
    "The person the personal fields are about: the applicant's member id, or the "
    "application id for a foreign visitor without a registry record."
)


@contract(
    event_type="consular.application.submitted",
    version=1,
    topic=CONSULAR_APPLICATIONS,
    key="application_id",
    subject="subject_id",
    description=(
        "A person submitted an application for a consular service (first submission); "
        "the embassy that processes it and its due date are set."
    ),
)
class ApplicationSubmittedV1(Event):
    application_id: UUID
    applicant_id: UUID | None = Field(
        description="The applicant's registry member id; null for a foreign visitor (e-visa)."
    )
    subject_id: UUID = Field(description=SUBJECT_ID)
    service_type: str = Field(description="Catalogue code, e.g. consular_card.")
    catalogue_version: int = Field(description="The catalogue version the application is under.")
    embassy_id: str = Field(description="The embassy that processes the application.")
    submitted_at: datetime
    due_at: datetime = Field(description="Submission plus the type's target processing days.")
    fee_amount: str = Field(description="Decimal amount, as text.")
    fee_currency: str = Field(description="ISO 4217.")
    answers: dict[str, Any] = personal(description="The form's answers (field name -> value).")
    visitor_email: str | None = personal(default=None, description=VISITOR_EMAIL)
    visitor_name: str | None = personal(default=None, description=VISITOR_NAME)
    visitor_language: Literal["fr", "en"] | None = Field(default=None, description=VISITOR_LANGUAGE)


@contract(
    event_type="consular.application.status-changed",
    version=1,
    topic=CONSULAR_APPLICATIONS,
    key="application_id",
    subject="subject_id",
    description=(
        "An application moved from one status to another (every transition after the "
        "first submission: review, information requested, resubmission, decision, issue, "
        "collection, withdrawal, expiry), with who did it and why."
    ),
)
class ApplicationStatusChangedV1(Event):
    application_id: UUID
    applicant_id: UUID | None
    subject_id: UUID = Field(description=SUBJECT_ID)
    service_type: str
    embassy_id: str
    action: str = Field(description="The transition, e.g. approve, request_information.")
    from_status: ApplicationStatus
    to_status: ApplicationStatus
    actor_role: str = Field(description="applicant, embassy_officer or system.")
    changed_at: datetime
    reason: str | None = personal(default=None, description="The reason given, free text.")
    reference: str | None = Field(
        default=None,
        description="The decision's reference, given at approval (e.g. EV-2026-3F9A1C).",
    )
    visitor_email: str | None = personal(default=None, description=VISITOR_EMAIL)
    visitor_name: str | None = personal(default=None, description=VISITOR_NAME)
    visitor_language: Literal["fr", "en"] | None = Field(default=None, description=VISITOR_LANGUAGE)


@contract(
    event_type="consular.application.escalated",
    version=1,
    topic=CONSULAR_APPLICATIONS,
    key="application_id",
    description=(
        "An application passed its due date without a decision: flagged overdue and "
        "escalated to the ministry's coordinators (once per application). Ids only."
    ),
)
class ApplicationEscalatedV1(Event):
    application_id: UUID
    applicant_id: UUID | None
    service_type: str
    embassy_id: str
    status: ApplicationStatus
    due_at: datetime
    escalated_at: datetime


# --- difficulty reports (docs/consular.md, "Difficulty reports") ----------------------

ReportStatus = Literal["open", "in_progress", "waiting_for_reporter", "resolved", "closed"]

REPORT_SUBJECT_ID = (
    "The person the personal fields are about: the reporter's member id, or the report id "
    "for a reporter without a registry record."
)


@contract(
    event_type="consular.report.filed",
    version=1,
    topic=CONSULAR_REPORTS,
    key="report_id",
    subject="subject_id",
    description=(
        "A difficulty was reported (by the person, or by a focal point on their behalf with "
        "their consent) and routed to the embassy covering the country where it happened."
    ),
)
class ReportFiledV1(Event):
    report_id: UUID
    reporter_id: UUID | None = Field(description="The reporter's registry member id, if any.")
    subject_id: UUID = Field(description=REPORT_SUBJECT_ID)
    category: str = Field(description="Category code of the ministry's list, e.g. detention.")
    country: str = Field(description="Where the difficulty happened (ISO 3166-1 alpha-2).")
    embassy_id: str = Field(description="The embassy whose focal point handles it.")
    filed_at: datetime
    due_at: datetime = Field(description="Filing plus the category's target days (SLA).")
    filed_on_behalf: bool = Field(description="Filed by a focal point with the consent below.")
    consent_method: str | None = Field(
        default=None, description="How the person consented (filed on their behalf only)."
    )
    consent_given_at: datetime | None = None
    account: str = personal(description="The reporter's account of the difficulty (free text).")


@contract(
    event_type="consular.report.status-changed",
    version=1,
    topic=CONSULAR_REPORTS,
    key="report_id",
    subject="subject_id",
    description="A difficulty report moved from one status to another, with who did it and why.",
)
class ReportStatusChangedV1(Event):
    report_id: UUID
    reporter_id: UUID | None
    subject_id: UUID = Field(description=REPORT_SUBJECT_ID)
    category: str
    embassy_id: str
    action: str = Field(description="The transition, e.g. resolve, request_information.")
    from_status: ReportStatus
    to_status: ReportStatus
    actor_role: str = Field(description="reporter, staff or system.")
    changed_at: datetime
    reason: str | None = personal(default=None, description="The reason given, free text.")


@contract(
    event_type="consular.report.message-posted",
    version=1,
    topic=CONSULAR_REPORTS,
    key="report_id",
    description=(
        "A message was posted on a difficulty report, by the reporter or by the staff "
        "(ids only: the text stays in consular)."
    ),
)
class ReportMessagePostedV1(Event):
    report_id: UUID
    reporter_id: UUID | None
    embassy_id: str
    author_side: str = Field(description="reporter or staff.")
    posted_at: datetime


@contract(
    event_type="consular.report.escalated",
    version=1,
    topic=CONSULAR_REPORTS,
    key="report_id",
    description=(
        "A difficulty report passed its due date unresolved: flagged overdue and escalated "
        "to the ministry's coordinators (once per report). Ids only."
    ),
)
class ReportEscalatedV1(Event):
    report_id: UUID
    reporter_id: UUID | None
    category: str
    country: str
    embassy_id: str
    status: ReportStatus
    due_at: datetime
    escalated_at: datetime


@contract(
    event_type="consular.laissez-passer.issued",
    version=1,
    topic=CONSULAR_APPLICATIONS,
    key="application_id",
    subject="applicant_id",
    description=(
        "An embassy issued a laissez-passer to a registered member: they are expected to "
        "travel to Togo (the returnees service opens a reception case). Published with the "
        "application's status-changed event to issued, in the same transaction."
    ),
)
class LaissezPasserIssuedV1(Event):
    application_id: UUID
    applicant_id: UUID = Field(description="The holder's registry member id.")
    embassy_id: str = Field(description="The embassy that issued it.")
    issued_at: datetime
    reference: str | None = Field(default=None, description="The decision's reference.")
    travel_date: date | None = personal(
        default=None, description="The travel date the applicant gave."
    )
    expected_return_date: date | None = personal(
        default=None,
        description=(
            "The expected return date the applicant gave (form field expected_return_date; "
            "optional in the form: null when not given)."
        ),
    )
    destination: str | None = personal(default=None, description="Destination given, free text.")


@contract(
    event_type="consular.audit.recorded",
    version=1,
    topic=CONSULAR_AUDIT,
    key="record_id",
    subject="record_id",
    description=(
        "Someone other than the applicant read or changed an application held by consular "
        "(record id = the applicant's member id), or a coordinator edited the service "
        "catalogue (resource consular_service_type, record id = the new version's id)."
    ),
)
class ConsularAuditRecordedV1(AuditRecorded):
    pass


# --- Issued credentials (consular.credentials) ----------------------------------------

CredentialType = Literal["consular_card", "e_visa"]


@contract(
    event_type="consular.credential.issued",
    version=1,
    topic=CONSULAR_APPLICATIONS,
    key="application_id",
    subject="subject_id",
    description=(
        "An application was issued and its signed credential made in the same transaction "
        "(a JWS compact token, EdDSA, verifiable with the ministry's published JWKS). "
        "Ids and dates only: the holder's data are in the token, never in the event."
    ),
)
class CredentialIssuedV1(Event):
    credential_id: UUID = Field(description="The token's `jti`.")
    application_id: UUID
    holder_id: UUID | None = Field(
        description="The holder's registry member id; null for a foreign visitor (e-visa)."
    )
    subject_id: UUID = Field(description=SUBJECT_ID)
    credential_type: CredentialType
    embassy_id: str = Field(description="The issuing embassy.")
    kid: str = Field(description="The key that signed it (RFC 7638 thumbprint).")
    issued_at: datetime
    expires_at: datetime


@contract(
    event_type="consular.credential.revoked",
    version=1,
    topic=CONSULAR_APPLICATIONS,
    key="application_id",
    subject="subject_id",
    description=(
        "An officer of the issuing embassy (or an admin) revoked a credential: it is on the "
        "public revocation list from now on and verifies as revoked."
    ),
)
class CredentialRevokedV1(Event):
    credential_id: UUID
    application_id: UUID
    holder_id: UUID | None
    subject_id: UUID = Field(description=SUBJECT_ID)
    credential_type: CredentialType
    embassy_id: str
    revoked_at: datetime
    actor_role: str = Field(description="embassy_officer, ministry_coordinator or admin.")
    reason: str = personal(description="Why it was revoked, free text.")


# --- appointments (services/consular/src/consular/appointments) -----------------------
# On the applications topic, keyed by application id: a person's appointment events stay
# in order with their application's.

APPOINTMENT_TIMES = "UTC instants; `timezone` is the embassy's IANA zone, in which they are shown."


@contract(
    event_type="consular.appointment.booked",
    version=1,
    topic=CONSULAR_APPLICATIONS,
    key="application_id",
    subject="subject_id",
    description=(
        "A seat was booked at an embassy for an application (by the applicant, or an "
        "officer on their behalf). " + APPOINTMENT_TIMES
    ),
)
class AppointmentBookedV1(Event):
    appointment_id: UUID
    application_id: UUID
    applicant_id: UUID | None
    subject_id: UUID = Field(description=SUBJECT_ID)
    embassy_id: str
    slot_start: datetime
    slot_end: datetime
    timezone: str = Field(description="The embassy's IANA time zone, e.g. Europe/Paris.")
    booked_by_role: str = Field(description="applicant or embassy_officer (or admin).")
    booked_at: datetime


@contract(
    event_type="consular.appointment.rescheduled",
    version=1,
    topic=CONSULAR_APPLICATIONS,
    key="application_id",
    subject="subject_id",
    description="An appointment moved to another slot of the same embassy. " + APPOINTMENT_TIMES,
)
class AppointmentRescheduledV1(Event):
    appointment_id: UUID
    application_id: UUID
    applicant_id: UUID | None
    subject_id: UUID = Field(description=SUBJECT_ID)
    embassy_id: str
    previous_start: datetime
    slot_start: datetime
    slot_end: datetime
    timezone: str
    actor_role: str
    rescheduled_at: datetime


@contract(
    event_type="consular.appointment.cancelled",
    version=1,
    topic=CONSULAR_APPLICATIONS,
    key="application_id",
    subject="subject_id",
    description="An appointment was cancelled; its seat is free again. " + APPOINTMENT_TIMES,
)
class AppointmentCancelledV1(Event):
    appointment_id: UUID
    application_id: UUID
    applicant_id: UUID | None
    subject_id: UUID = Field(description=SUBJECT_ID)
    embassy_id: str
    slot_start: datetime
    timezone: str
    actor_role: str
    cancelled_at: datetime
    reason: str | None = personal(default=None, description="The reason given, free text.")


@contract(
    event_type="consular.appointment.reminder-due",
    version=1,
    topic=CONSULAR_APPLICATIONS,
    key="application_id",
    subject="subject_id",
    description=(
        "An appointment is near (about 24 hours ahead): the notifications service reminds "
        "the person in their language. Published once per booked slot (a reschedule "
        "gives a new one). " + APPOINTMENT_TIMES
    ),
)
class AppointmentReminderDueV1(Event):
    appointment_id: UUID
    application_id: UUID
    applicant_id: UUID | None
    subject_id: UUID = Field(description=SUBJECT_ID)
    embassy_id: str
    slot_start: datetime
    slot_end: datetime
    timezone: str
    local_start: str = personal(
        description="The start as the person reads it, in the embassy's zone (ISO 8601)."
    )


# --- payments by reference (services/consular/src/consular/payments) ------------------

PaymentMethod = Literal["cash_at_embassy", "bank_transfer", "mobile_money"]


@contract(
    event_type="consular.payment.recorded",
    version=1,
    topic=CONSULAR_APPLICATIONS,
    key="application_id",
    subject="subject_id",
    description=(
        "An officer of the application's embassy recorded the payment of its fee (by "
        "reference: cash at the embassy, bank transfer or mobile money) and the service "
        "gave it a receipt number, sequential per embassy and year."
    ),
)
class PaymentRecordedV1(Event):
    payment_id: UUID
    application_id: UUID
    applicant_id: UUID | None
    subject_id: UUID = Field(description=SUBJECT_ID)
    embassy_id: str
    receipt_number: str = Field(description="e.g. FR-PAR-2026-000123.")
    method: PaymentMethod
    amount: str = Field(description="Decimal amount, as text.")
    currency: str = Field(description="ISO 4217.")
    recorded_at: datetime
    payer_reference: str = personal(
        description="The payer's reference (transfer or mobile-money transaction id, or the "
        "cash slip's number), free text."
    )


@contract(
    event_type="consular.payment.voided",
    version=1,
    topic=CONSULAR_APPLICATIONS,
    key="application_id",
    subject="subject_id",
    description=(
        "The ministry voided a receipt (with a reason): the fee is owed again. The receipt "
        "number is never given again."
    ),
)
class PaymentVoidedV1(Event):
    payment_id: UUID
    application_id: UUID
    applicant_id: UUID | None
    subject_id: UUID = Field(description=SUBJECT_ID)
    embassy_id: str
    receipt_number: str
    voided_at: datetime
    actor_role: str = Field(description="ministry_coordinator or admin.")
    reason: str = personal(description="Why the receipt was voided, free text.")


# --- hand-over to the national documentation authority (consular.handover) ------------

HandoverStatus = Literal["sent", "accepted", "rejected", "produced"]


@contract(
    event_type="consular.handover.sent",
    version=1,
    topic=CONSULAR_APPLICATIONS,
    key="application_id",
    subject="subject_id",
    description=(
        "A passport or national identity card preparation was approved: its hand-over "
        "package for the national documentation authority (a JWS signed with the consular "
        "key, verifiable with GET /credentials/jwks.json; format: docs/consular.md, "
        "docs/schemas/consular-handover-package.schema.json) is ready."
    ),
)
class HandoverSentV1(Event):
    handover_id: UUID
    application_id: UUID
    applicant_id: UUID | None
    subject_id: UUID = Field(description=SUBJECT_ID)
    service_type: str
    embassy_id: str
    kid: str = Field(description="The key that signed the package (RFC 7638 thumbprint).")
    sent_at: datetime
    package: str = personal(
        description="The package: a JWS compact token (EdDSA) whose payload is the "
        "package's JSON document."
    )


@contract(
    event_type="consular.handover.answered",
    version=1,
    topic=CONSULAR_APPLICATIONS,
    key="application_id",
    subject="subject_id",
    description=(
        "The national documentation authority answered a hand-over package: accepted, "
        "rejected (with a reason) or produced (with the document number)."
    ),
)
class HandoverAnsweredV1(Event):
    handover_id: UUID
    application_id: UUID
    applicant_id: UUID | None
    subject_id: UUID = Field(description=SUBJECT_ID)
    embassy_id: str
    answer: Literal["accepted", "rejected", "produced"]
    from_status: HandoverStatus
    answered_at: datetime
    reason: str | None = personal(default=None, description="The authority's reason.")
    document_number: str | None = personal(
        default=None, description="The number of the document produced."
    )

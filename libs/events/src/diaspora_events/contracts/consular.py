"""Events published by the consular service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from diaspora_events.contracts.audit import AuditRecorded
from diaspora_events.contracts.base import Event, contract, personal
from diaspora_events.topics import CONSULAR_APPLICATIONS, CONSULAR_AUDIT

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

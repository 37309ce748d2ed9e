"""Events published by the matching service.

Needs are institutions' requests, public within the platform: their events carry no
personal data. Matches, missions and projects are about a person (the expert, the
project holder): their topics carry personal data and keep a finite history; fields
that say something about the person beyond their member id are marked ``personal()``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from diaspora_events.contracts.audit import AuditRecorded
from diaspora_events.contracts.base import Event, contract, personal
from diaspora_events.topics import (
    MATCHING_AUDIT,
    MATCHING_MATCHES,
    MATCHING_MISSIONS,
    MATCHING_NEEDS,
    MATCHING_PROJECTS,
)

# The ministry's programmes a national need belongs to.
NeedType = Literal["teaching", "medical", "volunteering", "co_development", "technical_assistance"]
NeedStatus = Literal[
    "draft", "open", "matching", "proposals_sent", "filled", "cancelled", "expired"
]
WorkMode = Literal["on_site", "remote", "hybrid"]
DeclineReason = Literal["unavailable", "not_interested", "conditions", "other"]
ProjectStage = Literal["idea", "feasibility", "seed", "growth"]
Currency = Literal["XOF", "EUR"]


class _Part(BaseModel):
    """A part of a snapshot: frozen, tolerant of fields added later."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)


class NeedDetails(_Part):
    """A national need as it stands after the event (no personal data)."""

    title: str
    type: NeedType
    status: NeedStatus
    institution: str = Field(description="The requesting institution (university, hospital...).")
    description: str = ""
    occupations: list[str] = Field(
        default_factory=list, description="Required occupations, ISCO-08 codes."
    )
    skills: list[str] = Field(
        default_factory=list, description="Skills sought: ESCO skill URIs or free-text labels."
    )
    education_level: int | None = Field(
        default=None, ge=0, le=8, description="Minimum ISCED 2011 level."
    )
    languages: list[str] = Field(default_factory=list, description="ISO 639-1 codes required.")
    region: str = Field(description="ISO 3166-2:TG region code, e.g. TG-M.")
    prefecture: str | None = Field(default=None, description="Prefecture within the region.")
    work_mode: WorkMode = "on_site"
    starts_on: date | None = None
    ends_on: date | None = None
    duration_days: int | None = Field(default=None, ge=1)
    experts_wanted: int = Field(ge=1)
    funding: str | None = Field(default=None, description="Who funds it, how (free text).")


@contract(
    event_type="matching.need.posted",
    version=1,
    topic=MATCHING_NEEDS,
    key="need_id",
    description="A coordinator published a national need (it is open for matching).",
)
class NeedPostedV1(Event):
    need_id: UUID
    posted_at: datetime
    need: NeedDetails


@contract(
    event_type="matching.need.updated",
    version=1,
    topic=MATCHING_NEEDS,
    key="need_id",
    description="A need changed (its details or its status: matching, proposals sent...).",
)
class NeedUpdatedV1(Event):
    need_id: UUID
    updated_at: datetime
    changed_fields: list[str] = Field(description="Fields of `need` that changed.")
    need: NeedDetails


@contract(
    event_type="matching.need.closed",
    version=1,
    topic=MATCHING_NEEDS,
    key="need_id",
    description="A need reached an end state: filled, cancelled or expired.",
)
class NeedClosedV1(Event):
    need_id: UUID
    closed_at: datetime
    outcome: Literal["filled", "cancelled", "expired"]
    need: NeedDetails


@contract(
    event_type="matching.match.proposed",
    version=1,
    topic=MATCHING_MATCHES,
    key="proposal_id",
    description=(
        "A coordinator proposed a need to an expert; notifications tells the expert, "
        "who accepts or declines through the API."
    ),
    subject="member_id",
)
class MatchProposedV1(Event):
    proposal_id: UUID
    need_id: UUID
    member_id: UUID = Field(description="The expert (registry member id).")
    proposed_at: datetime
    respond_by: date | None = Field(default=None, description="Answer wanted by this day.")
    # What the expert needs to read in the message about the need (public fields).
    need_title: str
    need_type: NeedType
    institution: str
    region: str = Field(description="ISO 3166-2:TG region code.")
    prefecture: str | None = None
    work_mode: WorkMode = "on_site"
    starts_on: date | None = None
    ends_on: date | None = None
    score: float = Field(ge=0, description="The ranking's score when proposed.")
    reasons: list[str] = personal(
        default_factory=list,
        description="Why the expert was proposed, in short (derived from their profile).",
    )


@contract(
    event_type="matching.match.accepted",
    version=1,
    topic=MATCHING_MATCHES,
    key="proposal_id",
    description="The expert accepted a proposal; a mission record follows.",
)
class MatchAcceptedV1(Event):
    proposal_id: UUID
    need_id: UUID
    member_id: UUID
    accepted_at: datetime


@contract(
    event_type="matching.match.declined",
    version=1,
    topic=MATCHING_MATCHES,
    key="proposal_id",
    description="The expert declined a proposal, with a reason.",
    subject="member_id",
)
class MatchDeclinedV1(Event):
    proposal_id: UUID
    need_id: UUID
    member_id: UUID
    declined_at: datetime
    reason: DeclineReason
    comment: str | None = personal(default=None, description="The expert's own words.")


@contract(
    event_type="matching.match.withdrawn",
    version=1,
    topic=MATCHING_MATCHES,
    key="proposal_id",
    description=(
        "A proposal awaiting an answer was withdrawn: the need was filled, cancelled or "
        "expired, or the expert's data was erased."
    ),
)
class MatchWithdrawnV1(Event):
    proposal_id: UUID
    need_id: UUID
    member_id: UUID | None = Field(default=None, description="Absent after an erasure.")
    withdrawn_at: datetime
    reason: Literal["need_filled", "need_cancelled", "need_expired", "member_erased"]


@contract(
    event_type="matching.match.withdrawn",
    version=2,
    topic=MATCHING_MATCHES,
    key="proposal_id",
    description=(
        "A proposal awaiting an answer was withdrawn: the need was filled, cancelled or "
        "expired, the expert's data was erased, or the expert withdrew their consent to "
        "be contacted for missions. Version 2 adds that last reason; every withdrawal is "
        "published in version 2, and in version 1 too when its reason is one of version "
        "1's (until version 1's consumers have moved)."
    ),
)
class MatchWithdrawnV2(Event):
    proposal_id: UUID
    need_id: UUID
    member_id: UUID | None = Field(default=None, description="Absent after an erasure.")
    withdrawn_at: datetime
    reason: Literal[
        "need_filled", "need_cancelled", "need_expired", "member_erased", "consent_withdrawn"
    ]


class MissionFacts(_Part):
    """What statistics count of a mission: its type, where in Togo, where the expert lives."""

    type: NeedType
    region: str = Field(description="ISO 3166-2:TG region code.")
    prefecture: str | None = None
    country_of_residence: str | None = Field(
        default=None, description="The expert's country of residence (ISO 3166-1 alpha-2)."
    )


@contract(
    event_type="matching.mission.agreed",
    version=1,
    topic=MATCHING_MISSIONS,
    key="mission_id",
    description="The ministry and the expert agreed the terms and dates of a mission.",
    subject="member_id",
)
class MissionAgreedV1(Event):
    mission_id: UUID
    proposal_id: UUID
    need_id: UUID
    member_id: UUID
    agreed_at: datetime
    starts_on: date
    ends_on: date
    # Country of residence with the type and place can single a person out.
    facts: MissionFacts = personal()


@contract(
    event_type="matching.mission.completed",
    version=1,
    topic=MATCHING_MISSIONS,
    key="mission_id",
    description="A mission was carried out and closed with a report (counted in statistics).",
    subject="member_id",
)
class MissionCompletedV1(Event):
    mission_id: UUID
    need_id: UUID
    member_id: UUID
    completed_at: datetime
    starts_on: date
    ends_on: date
    facts: MissionFacts = personal()


@contract(
    event_type="matching.mission.cancelled",
    version=1,
    topic=MATCHING_MISSIONS,
    key="mission_id",
    description="An agreed mission will not take place.",
    subject="member_id",
)
class MissionCancelledV1(Event):
    mission_id: UUID
    need_id: UUID
    member_id: UUID | None = Field(default=None, description="Absent after an erasure.")
    cancelled_at: datetime
    reason: str | None = personal(default=None)


class ProjectDetails(_Part):
    """A diaspora project as partners may see it (the holder's contact is not here)."""

    title: str
    sector: str = Field(description="Sector of activity (see docs/matching.md).")
    region: str = Field(description="ISO 3166-2:TG region code.")
    prefecture: str | None = None
    amount_sought: Decimal = Field(ge=0, description="Funding sought (decimal, never a float).")
    currency: Currency
    stage: ProjectStage
    partners_wanted: list[str] = Field(
        default_factory=list, description="Kinds of partners sought (investor, mentor...)."
    )
    description: str = ""


@contract(
    event_type="matching.project.submitted",
    version=1,
    topic=MATCHING_PROJECTS,
    key="project_id",
    description="A member of the diaspora submitted a project to the project holders' platform.",
    subject="holder_id",
)
class ProjectSubmittedV1(Event):
    project_id: UUID
    holder_id: UUID = Field(description="The holder's registry member id.")
    submitted_at: datetime
    # Free text written by the holder may name them: the whole project is marked.
    project: ProjectDetails = personal()


@contract(
    event_type="matching.project.updated",
    version=1,
    topic=MATCHING_PROJECTS,
    key="project_id",
    description="A project holder changed their project.",
    subject="holder_id",
)
class ProjectUpdatedV1(Event):
    project_id: UUID
    holder_id: UUID
    updated_at: datetime
    changed_fields: list[str]
    project: ProjectDetails = personal()


@contract(
    event_type="matching.project.withdrawn",
    version=1,
    topic=MATCHING_PROJECTS,
    key="project_id",
    description=(
        "A project left the platform: withdrawn by its holder, or deleted with the "
        "holder's data (erasure). Consumers delete what they keep of it."
    ),
)
class ProjectWithdrawnV1(Event):
    project_id: UUID
    withdrawn_at: datetime
    reason: Literal["withdrawn", "holder_erased"]


@contract(
    event_type="matching.interest.expressed",
    version=1,
    topic=MATCHING_PROJECTS,
    key="project_id",
    description=(
        "A national actor or partner expressed interest in a project; notifications "
        "tells the holder."
    ),
    subject="holder_id",
)
class InterestExpressedV1(Event):
    interest_id: UUID
    project_id: UUID
    holder_id: UUID = Field(description="The holder to tell (registry member id).")
    project_title: str = personal()
    organisation: str = Field(description="Who is interested: the ministry, a partner...")
    actor_role: str = Field(description="Role of the person who expressed it.")
    message: str | None = personal(default=None, description="Their message to the holder.")
    expressed_at: datetime


@contract(
    event_type="matching.audit.recorded",
    version=1,
    topic=MATCHING_AUDIT,
    key="record_id",
    description=(
        "Someone other than the person read personal data held by matching "
        "(candidates, proposals, missions, project contacts); record id = member id."
    ),
    subject="record_id",
)
class MatchingAuditRecordedV1(AuditRecorded):
    pass

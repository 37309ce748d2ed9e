"""Ranked candidates for a need, with their reasons: `GET /needs/{id}/candidates`.

Coordinators (and admins) only: the answer is personal data of the experts, and
every candidate shown is an audited read (matching's audit trail, keyed by member).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_service.problems import Problem
from matching.deps import ServiceDep
from matching.needs import service as needs
from matching.needs.domain import CLOSED
from matching.ranking.reasons import reasons
from matching.ranking.scoring import NeedQuery, rank

router = APIRouter(prefix="/needs", tags=["candidates"])

CANDIDATE_FIELDS: tuple[str, ...] = (
    "member_id",
    "given_name",
    "family_name",
    "country_of_residence",
    "languages",
    "occupations",
    "experience",
    "education",
    "skills",
    "availability",
)


class ReasonView(BaseModel):
    code: str = Field(
        description="occupation, skills, experience, text, education (scored); "
        "languages, availability (hard filters passed: 0 points)"
    )
    text: str
    points: float = Field(description="Points of the score (out of 100) this reason brought.")


class Availability(BaseModel):
    mission_types: list[str]
    available_from: date | None
    available_until: date | None
    remote: bool


class CandidateView(BaseModel):
    rank: int
    score: float = Field(description="0 to 100.")
    member_id: UUID
    given_name: str
    family_name: str
    country_of_residence: str
    languages: list[str]
    occupations: list[dict[str, Any]]
    experience: list[dict[str, Any]]
    education: list[dict[str, Any]]
    skills: list[str]
    availability: Availability
    reasons: list[ReasonView]
    components: dict[str, float] = Field(description="Each component's value, 0 to 1.")


class CandidatePage(BaseModel):
    need_id: UUID
    items: list[CandidateView]


@router.get(
    "/{need_id}/candidates",
    response_model=CandidatePage,
    responses={
        **AUTH_RESPONSES,
        404: {"description": "No such need"},
        409: {"description": "The need is closed"},
    },
)
async def candidates(
    need_id: UUID,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    lang: Literal["fr", "en"] = "fr",
) -> CandidatePage:
    """The experts who best fit a need, best first, each with its score and reasons."""
    decision = svc.identity.policy.decide(principal, "expert_candidate", "list")
    async with svc.sessions() as session, session.begin():
        try:
            need = await needs.get_need(session, need_id)
        except needs.NeedNotFound:
            raise Problem(404, "Need not found") from None
        if need["status"] in CLOSED:
            raise Problem(409, "The need is closed", detail=f"It is {need['status']}.")
        query = NeedQuery.of(need)
        found = await rank(session, query, limit=limit)
        items = []
        for position, candidate in enumerate(found, start=1):
            expert = candidate.expert
            summary = expert["summary"]
            record = {
                "rank": position,
                "score": candidate.score,
                "member_id": candidate.member_id,
                "given_name": expert["given_name"],
                "family_name": expert["family_name"],
                "country_of_residence": expert["country_of_residence"],
                "languages": expert["languages"],
                "occupations": summary.get("occupations", []),
                "experience": summary.get("experience", []),
                "education": summary.get("education", []),
                "skills": expert["skill_labels"],
                "availability": {
                    "mission_types": expert["mission_types"],
                    "available_from": expert["available_from"],
                    "available_until": expert["available_until"],
                    "remote": expert["remote"],
                },
                "reasons": [r.__dict__ for r in reasons(candidate, query, lang)],
                "components": candidate.components,
            }
            items.append(record)
        await svc.audit.record(
            session,
            decision,
            AccessContext.of(request),
            [(item["member_id"], CANDIDATE_FIELDS) for item in items],
            action="rank",
        )
    return CandidatePage(need_id=need_id, items=[CandidateView.model_validate(i) for i in items])

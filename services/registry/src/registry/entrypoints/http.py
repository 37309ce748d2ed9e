"""The registry's HTTP interface."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from diaspora_events.observability import setup_observability
from diaspora_service.app import create_app
from diaspora_service.problems import Problem
from registry import SERVICE_NAME, domain
from registry.bootstrap import Registry, bootstrap
from registry.service import IdempotencyConflict, get_member, register_member

router = APIRouter(prefix="/members", tags=["members"])


class RegistrationRequest(BaseModel):
    """What a person gives to register."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    given_name: str = Field(min_length=1, max_length=100, examples=["Akossiwa"])
    family_name: str = Field(min_length=1, max_length=100, examples=["Mensah"])
    date_of_birth: date = Field(examples=["1990-04-27"])
    country_of_residence: str = Field(
        min_length=2, max_length=2, description="ISO 3166-1 alpha-2 code", examples=["FR"]
    )
    email: EmailStr = Field(examples=["akossiwa.mensah@example.org"])
    phone: str = Field(
        min_length=4,
        max_length=32,
        description="International form, +...",
        examples=["+33612345678"],
    )
    preferred_language: domain.Language = "fr"

    @field_validator("country_of_residence")
    @classmethod
    def _country(cls, value: str) -> str:
        return domain.normalise_country(value)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return domain.normalise_phone(value)

    @field_validator("date_of_birth")
    @classmethod
    def _birth(cls, value: date) -> date:
        return domain.check_birth_date(value)


class MemberOut(BaseModel):
    id: UUID
    given_name: str
    family_name: str
    date_of_birth: date
    country_of_residence: str
    email: str
    phone: str
    preferred_language: domain.Language
    registered_at: datetime


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


RegistryDep = Annotated[Registry, Depends(_registry)]


@router.post("", status_code=201, response_model=MemberOut)
async def register(
    body: RegistrationRequest,
    registry: RegistryDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> MemberOut:
    """Register a person of the diaspora."""
    try:
        member, created = await register_member(
            sessions=registry.sessions,
            outbox=registry.outbox,
            command=domain.RegisterMember(**body.model_dump(), idempotency_key=idempotency_key),
        )
    except IdempotencyConflict:
        raise Problem(
            422,
            "Idempotency-Key already used",
            detail="This Idempotency-Key was used for a different request; use a new key.",
        ) from None
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/members/{member.id}"
    return MemberOut.model_validate(member, from_attributes=True)


@router.get("/{member_id}", response_model=MemberOut)
async def read_member(member_id: UUID, registry: RegistryDep) -> MemberOut:
    """Read one member's record."""
    member = await get_member(sessions=registry.sessions, member_id=member_id)
    if member is None:
        raise Problem(404, "Member not found")
    return MemberOut.model_validate(member, from_attributes=True)


def build_app(registry: Registry | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = registry is None
        app.state.registry = registry or bootstrap()
        setup_observability(SERVICE_NAME, json_logs=app.state.registry.settings.json_logs)
        try:
            yield
        finally:
            if owned:
                await app.state.registry.close()

    async def database_ready() -> bool:
        ready: bool = await application.state.registry.database_ready()
        return ready

    application = create_app(
        title="Registry (RECOATEX)",
        version="0.1.0",
        description="Members of the Togolese diaspora: registration and profiles.",
        routers=[router],
        lifespan=lifespan,
        readiness={"database": database_ready},
    )
    return application


def app() -> FastAPI:
    """Factory for `uvicorn --factory registry.entrypoints.http:app`."""
    return build_app()

"""Request and response models of awareness subscriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from diaspora_service.text import SingleLine
from returnees.subscribers import domain

Token = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-.]{16,200}$")]


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text_version: Annotated[SingleLine, Field(max_length=40, examples=["2026-12"])] = Field(
        description="The version of the consent text shown (GET /subscriptions/consent)."
    )
    accepted: Literal[True] = Field(description="The person ticked it: must be true.")


class NewSubscription(BaseModel):
    """What someone in Togo asks for: awareness messages and/or the advisories of some
    countries, by email or SMS, in French or English."""

    model_config = ConfigDict(extra="forbid")

    channel: domain.Channel
    address: Annotated[SingleLine, Field(min_length=3, max_length=254)] = Field(
        description="Email address, or phone number (international form, or Togolese)."
    )
    language: Literal["fr", "en"] = "fr"
    awareness: bool = Field(True, description="Migration awareness messages.")
    countries: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] = Field(
        default_factory=list,
        max_length=50,
        description="Advisories of these countries (ISO 3166-1 alpha-2).",
    )
    consent: Consent

    @field_validator("countries")
    @classmethod
    def _iso(cls, codes: list[str]) -> list[str]:
        import pycountry

        wrong = [c for c in codes if pycountry.countries.get(alpha_2=c) is None]
        if wrong:
            raise ValueError(f"not ISO 3166-1 alpha-2 country codes: {', '.join(wrong)}")
        return codes

    @model_validator(mode="after")
    def _something_and_valid(self) -> NewSubscription:
        if not self.awareness and not self.countries:
            raise ValueError("choose awareness messages, some countries' advisories, or both")
        try:
            self.address = domain.normalise_address(self.channel, self.address)
        except domain.InvalidAddress as error:
            raise ValueError(f"address: {error}") from None
        return self


class SubscriptionRequested(BaseModel):
    status: Literal["pending"] = "pending"
    detail: str
    expires_at: datetime


class ConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Token


class SubscriptionState(BaseModel):
    status: Literal["active", "unsubscribed"]
    at: datetime


class ConsentText(BaseModel):
    version: str
    text: dict[str, str]

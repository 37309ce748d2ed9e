"""Request and response models of partner organisations' HTTP interface."""

from __future__ import annotations

import re
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from diaspora_service.text import SingleLine
from returnees.partners.domain import PARTNER_ORG, Need

PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: SingleLine = Field(min_length=1, max_length=200, description="A desk or a person.")
    email: EmailStr | None = None
    phone: str | None = Field(
        None, description="E.164, e.g. +22890000000.", max_length=16, pattern=PHONE.pattern
    )


class PartnerEdit(BaseModel):
    """A partner organisation as the ministry records it (a new version of it)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: SingleLine = Field(min_length=2, max_length=200, examples=["Caritas Togo"])
    contact: Contact
    services: list[Need] = Field(
        min_length=1, max_length=8, description="The need categories the partner takes."
    )
    regions: list[SingleLine] = Field(
        default_factory=list,
        max_length=5,
        description="Whole regions covered: ISO 3166-2:TG codes (TG-M) or names (Maritime).",
    )
    prefectures: list[SingleLine] = Field(
        default_factory=list,
        max_length=60,
        description="Single prefectures covered: slugs (agoe-nyive) or names (Agoè-Nyivé).",
    )
    active: bool = Field(True, description="Inactive: no new referrals.")


class NewPartner(PartnerEdit):
    partner_org: str = Field(
        pattern=PARTNER_ORG,
        description="The `partner_org` claim its case workers' tokens carry.",
        examples=["caritas-togo"],
    )


class PartnerView(BaseModel):
    id: UUID
    partner_org: str
    name: str
    contact: Contact
    services: list[str]
    regions: list[str]
    prefectures: list[str]
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class PartnerList(BaseModel):
    items: list[PartnerView]


class PrefectureView(BaseModel):
    slug: str
    name: str
    seat: str | None


class RegionView(BaseModel):
    code: str
    name: str
    name_fr: str
    seat: str
    prefectures: list[PrefectureView]


class Areas(BaseModel):
    """Togo's regions and their prefectures (diaspora_reference.togo; sources in its
    data/NOTICE.md)."""

    regions: list[RegionView]

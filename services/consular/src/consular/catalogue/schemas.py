"""Request and response models of the catalogue's HTTP interface."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from consular.catalogue.domain import ServiceTypeDefinition


class ServiceTypeView(ServiceTypeDefinition):
    """A version of a service type (the current one unless asked otherwise)."""

    code: str
    version: int = Field(description="This version's number (the ETag of the current one).")
    current_version: int
    version_id: UUID
    published_at: datetime


class ServiceTypeList(BaseModel):
    items: list[ServiceTypeView]

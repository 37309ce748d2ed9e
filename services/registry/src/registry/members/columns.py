"""The members row built from a command: a registration's columns, a change's city columns."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from registry.members.domain import RegisterMember
from registry.members.errors import InvalidChange
from registry.members.records import profile_columns

# The optional parts of a registration, in the order they become members columns.
OPTIONAL_PARTS = (
    "sex",
    "place_of_birth",
    "postal_address",
    "city",
    "arrival_year",
    "residence_status",
    "languages",
    "occupations",
    "skills",
    "education",
    "experience",
    "availability",
)


def city_columns(
    changes: Mapping[Any, Any], *, country: str, field: str = "city"
) -> dict[str, Any]:
    try:
        return profile_columns(changes, country=country)
    except ValueError as error:
        raise InvalidChange(field, str(error)) from None


def registration_columns(
    command: RegisterMember,
    *,
    member_id: UUID,
    embassy_id: str,
    owner_subject: str | None,
    registered_by: str | None,
    by_role: str | None,
    consent_method: str,
    consent_reference: str | None,
    digest: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The members row of a registration (one registration, or each row of a bulk import)."""
    profile = {name: getattr(command, name) for name in OPTIONAL_PARTS}
    return {
        "id": member_id,
        "given_name": command.given_name,
        "family_name": command.family_name,
        "date_of_birth": command.date_of_birth,
        "country_of_residence": command.country_of_residence,
        "email": command.email,
        "phone": command.phone,
        "preferred_language": command.preferred_language,
        "registered_at": now,
        "embassy_id": embassy_id,
        "owner_subject": owner_subject,
        "registered_by": registered_by,
        "registered_by_role": by_role,
        **city_columns(profile, country=command.country_of_residence),
        "registration_consent_method": consent_method,
        "registration_consent_reference": consent_reference,
        "last_confirmed_at": now,
        "updated_at": now,
        "version": 1,
        "idempotency_key": command.idempotency_key,
        "request_digest": digest,
    }

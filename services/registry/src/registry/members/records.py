"""A member's record as stored (members row, documents, consents) and as shown.

One place turns the stored record into what callers receive (:func:`view_of`,
cut down afterwards by the policy's field rules), into the snapshot events
carry (:func:`profile_of`), and turns validated profile parts into columns
(:func:`profile_columns`). Document numbers are decrypted here, only when the
caller asked for them (the policy's ``member_document`` resource).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from pydantic_core import to_jsonable_python
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts.registry import (
    Availability as AvailabilitySnapshot,
)
from diaspora_events.contracts.registry import (
    City,
    Consent,
    Education,
    Experience,
    IdentityVerification,
    MemberProfile,
    Occupation,
    Skill,
)
from diaspora_reference import isco
from registry.crypto import DocumentCipher, Sealed, UndecryptableDocument
from registry.members.identity_level import current_identity
from registry.members.profile import (
    Availability,
    CityChoice,
    DocumentInput,
    PlaceOfBirth,
    PostalAddress,
    resolve_city,
)
from registry.members.tables import member_changes, member_consents, member_documents

log = structlog.get_logger(__name__)

# What a member record shows, in order; the policy's field rules cut it down per caller.
MEMBER_FIELDS: tuple[str, ...] = (
    "id",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "place_of_birth",
    "country_of_residence",
    "city",
    "embassy_id",
    "postal_address",
    "email",
    "phone",
    "preferred_language",
    "arrival_year",
    "residence_status",
    "languages",
    "occupations",
    "skills",
    "education",
    "experience",
    "availability",
    "documents",
    "identity",
    "consents",
    "registered_at",
    "registered_by",
    "registration_consent",
    "last_confirmed_at",
    "updated_at",
    "version",
)
# Fields a person (or an officer correcting) may change with PATCH.
UPDATABLE_FIELDS: tuple[str, ...] = (
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "place_of_birth",
    "country_of_residence",
    "city",
    "postal_address",
    "email",
    "phone",
    "preferred_language",
    "arrival_year",
    "residence_status",
    "languages",
    "occupations",
    "skills",
    "education",
    "experience",
    "availability",
    "documents",
)
REQUIRED_FIELDS = frozenset(
    {"given_name", "family_name", "date_of_birth", "country_of_residence", "email", "phone"}
)
# Fields of the record that are in the events' profile snapshot (the others stay here:
# postal address, place of birth, documents).
PROFILE_FIELDS = frozenset(MemberProfile.model_fields)


def jsonable(value: Any) -> Any:
    return to_jsonable_python(value)


def _occupation_codes(occupations: Iterable[Mapping[Any, Any]]) -> list[str]:
    codes: dict[str, None] = {}
    for occupation in occupations:
        code = occupation.get("isco_code")
        if code:
            for group in isco.ancestors(code):
                codes[group.code] = None
            codes[code] = None
    return sorted(codes)


_PLAIN_COLUMNS = frozenset(
    {
        "given_name",
        "family_name",
        "date_of_birth",
        "email",
        "phone",
        "country_of_residence",
        "preferred_language",
        "arrival_year",
        "residence_status",
    }
)


def profile_columns(changes: Mapping[Any, Any], *, country: str) -> dict[str, Any]:
    """Column values for the profile fields in ``changes`` (validated parts or None).

    ``country`` is the country of residence after the change (cities are looked up there).
    """
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name in _PLAIN_COLUMNS:
            values[name] = value
        elif name == "sex":
            values["sex"] = value or "unspecified"
        elif name == "place_of_birth":
            place: PlaceOfBirth | None = value
            values["birth_city"] = place.city if place else None
            values["birth_country"] = place.country if place else None
        elif name == "postal_address":
            address: PostalAddress | None = value
            values["postal_address"] = address.model_dump() if address else None
        elif name == "city":
            choice: CityChoice | str | None = value
            resolved = resolve_city(choice, country) if choice is not None else None
            values["city_name"] = resolved.name if resolved else None
            values["city_geonames_id"] = resolved.geonames_id if resolved else None
            values["city_latitude"] = resolved.latitude if resolved else None
            values["city_longitude"] = resolved.longitude if resolved else None
        elif name == "languages":
            values["languages"] = list(value or [])
        elif name in ("occupations", "skills", "education", "experience"):
            parts = [p.model_dump(exclude_none=True) for p in (value or [])]
            values[name] = jsonable(parts)
            if name == "occupations":
                values["occupation_codes"] = _occupation_codes(parts)
            if name == "skills":
                values["skill_uris"] = sorted({p["esco_uri"] for p in parts if p.get("esco_uri")})
        elif name == "availability":
            availability: Availability = value or Availability()
            values["availability"] = jsonable(availability.model_dump())
            values["mission_types"] = sorted(set(availability.mission_types))
        elif name == "documents":
            continue  # their own table (write_documents)
        else:
            raise KeyError(name)
    return values


# --- related rows ---------------------------------------------------------------------------


async def documents_of(
    session: AsyncSession, member_ids: Sequence[UUID]
) -> dict[UUID, list[Mapping[Any, Any]]]:
    found: dict[UUID, list[Mapping[Any, Any]]] = defaultdict(list)
    if not member_ids:
        return found
    rows = await session.execute(
        select(member_documents)
        .where(member_documents.c.member_id.in_(member_ids))
        .order_by(member_documents.c.member_id, member_documents.c.kind)
    )
    for row in rows.mappings():
        found[row["member_id"]].append(row)
    return found


async def consents_of(
    session: AsyncSession, member_ids: Sequence[UUID]
) -> dict[UUID, list[Mapping[Any, Any]]]:
    """The latest decision per purpose of each member."""
    found: dict[UUID, list[Mapping[Any, Any]]] = defaultdict(list)
    if not member_ids:
        return found
    c = member_consents.c
    latest = (
        select(func.max(c.id))
        .where(c.member_id.in_(member_ids))
        .group_by(c.member_id, c.purpose)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(member_consents).where(c.id.in_(latest)).order_by(c.member_id, c.purpose)
    )
    for row in rows.mappings():
        found[row["member_id"]].append(row)
    return found


async def write_documents(
    session: AsyncSession,
    cipher: DocumentCipher,
    member_id: UUID,
    documents: Sequence[DocumentInput],
) -> None:
    """Replace the member's documents; numbers sealed under the active key."""
    await session.execute(
        member_documents.delete().where(member_documents.c.member_id == member_id)
    )
    if not documents:
        return
    rows = []
    for document in documents:
        sealed = cipher.seal(document.number, member_id=member_id, kind=document.kind)
        rows.append(
            {
                "member_id": member_id,
                "kind": document.kind,
                "issuing_country": document.issuing_country,
                "expires_on": document.expires_on,
                "key_id": sealed.key_id,
                "number_ciphertext": sealed.ciphertext,
            }
        )
    await session.execute(member_documents.insert(), rows)


def open_number(cipher: DocumentCipher, row: Mapping[Any, Any]) -> str | None:
    try:
        return cipher.open(
            Sealed(row["key_id"], row["number_ciphertext"]),
            member_id=row["member_id"],
            kind=row["kind"],
        )
    except UndecryptableDocument as error:
        log.error(
            "document_undecryptable", kind=row["kind"], key_id=row["key_id"], error=str(error)
        )
        return None


# --- views ----------------------------------------------------------------------------------


def city_view(row: Mapping[Any, Any]) -> dict[str, Any] | None:
    if row.get("city_name") is None:
        return None
    return {
        "name": row["city_name"],
        "geonames_id": row.get("city_geonames_id"),
        "latitude": row.get("city_latitude"),
        "longitude": row.get("city_longitude"),
    }


def document_view(
    row: Mapping[Any, Any], cipher: DocumentCipher | None, *, with_number: bool
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "kind": row["kind"],
        "issuing_country": row["issuing_country"],
        "expires_on": row["expires_on"],
    }
    if with_number and cipher is not None:
        view["number"] = open_number(cipher, row)
    return view


def consent_view(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {"purpose": row["purpose"], "granted": row["granted"], "at": row["at"]}


def identity_view(row: Mapping[Any, Any]) -> dict[str, Any] | None:
    """The member's identity verification level today (strongest unexpired check)."""
    return current_identity(row.get("identity_checks"), datetime.now(UTC).date())


def view_of(
    row: Mapping[Any, Any],
    documents: Sequence[Mapping[Any, Any]] = (),
    consents: Sequence[Mapping[Any, Any]] = (),
    *,
    cipher: DocumentCipher | None = None,
    with_numbers: bool = False,
) -> dict[str, Any]:
    """Every field of :data:`MEMBER_FIELDS` for one member (numbers only if asked)."""
    place = (
        {"city": row.get("birth_city"), "country": row["birth_country"]}
        if row.get("birth_country")
        else None
    )
    method = row.get("registration_consent_method")
    return {
        "id": row["id"],
        "given_name": row["given_name"],
        "family_name": row["family_name"],
        "date_of_birth": row["date_of_birth"],
        "sex": row.get("sex") or "unspecified",
        "place_of_birth": place,
        "country_of_residence": row["country_of_residence"],
        "city": city_view(row),
        "embassy_id": row["embassy_id"],
        "postal_address": row.get("postal_address"),
        "email": row["email"],
        "phone": row["phone"],
        "preferred_language": row["preferred_language"],
        "arrival_year": row.get("arrival_year"),
        "residence_status": row.get("residence_status"),
        "languages": list(row.get("languages") or []),
        "occupations": list(row.get("occupations") or []),
        "skills": list(row.get("skills") or []),
        "education": list(row.get("education") or []),
        "experience": list(row.get("experience") or []),
        "availability": dict(row.get("availability") or {}) or None,
        "documents": [document_view(d, cipher, with_number=with_numbers) for d in documents],
        "identity": identity_view(row),
        "consents": [consent_view(c) for c in consents],
        "registered_at": row["registered_at"],
        "registered_by": row.get("registered_by"),
        "registration_consent": (
            {"method": method, "reference": row.get("registration_consent_reference")}
            if method
            else None
        ),
        "last_confirmed_at": row.get("last_confirmed_at"),
        "updated_at": row.get("updated_at"),
        "version": row.get("version", 1),
    }


def history_value(field: str, view: Mapping[Any, Any]) -> Any:
    """A field's value as history keeps it: JSON, and never a document number."""
    value = view.get(field)
    if field == "documents":
        value = [{k: v for k, v in d.items() if k != "number"} for d in value or []]
    return jsonable(value)


def profile_of(row: Mapping[Any, Any], consents: Sequence[Mapping[Any, Any]]) -> MemberProfile:
    """The snapshot events carry: no postal address, no place of birth, no documents (of
    the identity checks, the level and the kind of document, never its number)."""
    city = city_view(row)
    availability = row.get("availability") or {}
    identity = identity_view(row)
    return MemberProfile(
        given_name=row["given_name"],
        family_name=row["family_name"],
        date_of_birth=row["date_of_birth"],
        sex=row.get("sex") or "unspecified",
        email=row["email"],
        phone=row["phone"],
        preferred_language=row["preferred_language"],
        country_of_residence=row["country_of_residence"],
        city=City(**city) if city else None,
        embassy_id=row["embassy_id"],
        arrival_year=row.get("arrival_year"),
        residence_status=row.get("residence_status"),
        languages=list(row.get("languages") or []),
        occupations=[Occupation(**o) for o in row.get("occupations") or []],
        skills=[Skill(**s) for s in row.get("skills") or []],
        education=[Education(**e) for e in row.get("education") or []],
        experience=[Experience(**e) for e in row.get("experience") or []],
        availability=AvailabilitySnapshot(**availability),
        consents=[
            Consent(purpose=c["purpose"], granted=c["granted"], at=c["at"]) for c in consents
        ],
        last_confirmed_at=row.get("last_confirmed_at"),
        identity=IdentityVerification(**identity) if identity else None,
    )


# --- history --------------------------------------------------------------------------------


async def record_change(
    session: AsyncSession,
    *,
    member_id: UUID,
    action: str,
    actor_role: str,
    actor_subject: str | None,
    fields: Sequence[str],
    old: Mapping[Any, Any],
    new: Mapping[Any, Any],
    version: int,
    request_id: str | None,
    at: datetime | None = None,
) -> None:
    """One line of the member's history (in the caller's transaction)."""
    values = change_row(
        member_id=member_id,
        action=action,
        actor_role=actor_role,
        actor_subject=actor_subject,
        fields=fields,
        old=old,
        new=new,
        version=version,
        request_id=request_id,
        at=at,
    )
    await session.execute(member_changes.insert(), values)  # compiled once, not rebuilt


def change_row(
    *,
    member_id: UUID,
    action: str,
    actor_role: str,
    actor_subject: str | None,
    fields: Sequence[str],
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    version: int,
    request_id: str | None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The member_changes row of one history line (bulk writers insert many at once)."""
    values: dict[str, Any] = {
        "member_id": member_id,
        "action": action,
        "actor_role": actor_role,
        "actor_subject": actor_subject,
        "fields": list(fields),
        "old_values": {f: history_value(f, old) for f in fields if f in old},
        "new_values": {f: history_value(f, new) for f in fields if f in new},
        "version": version,
        "request_id": request_id,
    }
    if at is not None:
        values["changed_at"] = at
    return values

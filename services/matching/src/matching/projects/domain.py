"""Projects of diaspora project holders: vocabularies and the rules on a project's fields."""

from __future__ import annotations

from typing import Literal, get_args

from diaspora_reference import togo

Stage = Literal["idea", "feasibility", "seed", "growth"]
Currency = Literal["XOF", "EUR"]
# Sectors of activity partners filter on (a short list the ministry's programmes use;
# "other" for the rest, the description says more).
Sector = Literal[
    "agriculture",
    "agri_food",
    "crafts",
    "culture",
    "digital",
    "education",
    "energy",
    "environment",
    "finance",
    "health",
    "housing_construction",
    "industry",
    "tourism",
    "trade",
    "transport_logistics",
    "water_sanitation",
    "other",
]
PartnerKind = Literal[
    "investor", "lender", "donor", "technical", "mentor", "local_authority", "distributor"
]
SECTORS: tuple[str, ...] = get_args(Sector)
STAGES: tuple[str, ...] = get_args(Stage)
PARTNER_KINDS: tuple[str, ...] = get_args(PartnerKind)

# Fields a holder may change after submission; each change publishes matching.project.updated.
EDITABLE_FIELDS: tuple[str, ...] = (
    "title",
    "sector",
    "region",
    "prefecture",
    "amount_sought",
    "currency",
    "stage",
    "partners_wanted",
    "description",
    "contact_name",
    "contact_email",
    "contact_phone",
    "share_contact",
)
# Fields that travel in matching.project.* events (never the holder's contact).
PUBLIC_FIELDS: tuple[str, ...] = (
    "title",
    "sector",
    "region",
    "prefecture",
    "amount_sought",
    "currency",
    "stage",
    "partners_wanted",
    "description",
)


class InvalidPlace(ValueError):
    """A region or prefecture that is not Togo's."""


def place(region: str | None, prefecture: str | None) -> tuple[str, str | None]:
    """The region's ISO code and the prefecture's slug, checked against the reference
    data (codes, names, accents and case are accepted). A prefecture alone names its
    region. Raises :class:`InvalidPlace`."""
    try:
        if region is None:
            if not prefecture:
                raise InvalidPlace("give a region of Togo")
            found = togo.prefecture(prefecture)
            return found.region_code, found.slug
        code = togo.region(region).code
        slug = togo.prefecture(prefecture, code).slug if prefecture else None
    except togo.UnknownLocality as error:
        raise InvalidPlace(str(error)) from None
    return code, slug

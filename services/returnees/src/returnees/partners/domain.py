"""Partner organisations in plain Python: what they offer, where they work.

Coverage is given as whole regions (ISO 3166-2:TG codes, e.g. ``TG-M``) and/or single
prefectures (slugs of ``diaspora_reference.togo``, e.g. ``agoe-nyive``); a partner
covers a prefecture listed, or any prefecture of a region listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from diaspora_reference import togo

# The ``partner_org`` claim the organisation's case workers' tokens carry.
PARTNER_ORG = r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$"
_PARTNER_ORG = re.compile(PARTNER_ORG)


class UnknownPlace(ValueError):
    pass


def region_codes(values: Iterable[str]) -> list[str]:
    """Regions as ISO 3166-2:TG codes (names accepted), sorted, each once."""
    found: set[str] = set()
    for value in values:
        try:
            found.add(togo.region(value).code)
        except togo.UnknownLocality as error:
            raise UnknownPlace(str(error)) from None
    return sorted(found)


def prefecture_slugs(values: Iterable[str]) -> list[str]:
    """Prefectures as slugs (names and former names accepted), sorted, each once."""
    found: set[str] = set()
    for value in values:
        try:
            found.add(togo.prefecture(value).slug)
        except togo.UnknownLocality as error:
            raise UnknownPlace(str(error)) from None
    return sorted(found)


def prefecture_slug(value: str) -> tuple[str, str]:
    """A prefecture's slug and its region's code."""
    try:
        found = togo.prefecture(value)
    except togo.UnknownLocality as error:
        raise UnknownPlace(str(error)) from None
    return found.slug, found.region_code


def covers(regions: Iterable[str], prefectures: Iterable[str], prefecture: str) -> bool:
    slug, region = prefecture_slug(prefecture)
    return slug in set(prefectures) or region in set(regions)


def is_partner_org(value: str) -> bool:
    return bool(_PARTNER_ORG.fullmatch(value))


# The need categories of a case's assessment (issue 18, item 1): what a partner offers.
NEEDS: tuple[str, ...] = (
    "reception",
    "housing",
    "health",
    "psychosocial",
    "documents",
    "training",
    "employment",
    "business_start_up",
)
Need = Literal[
    "reception",
    "housing",
    "health",
    "psychosocial",
    "documents",
    "training",
    "employment",
    "business_start_up",
]


class NotCovered(Exception):
    """The partner cannot take this referral; the message says why."""


def check_can_take(
    *,
    name: str,
    active: bool,
    services: Iterable[str],
    regions: Iterable[str],
    prefectures: Iterable[str],
    need: str,
    prefecture: str,
) -> None:
    """Raise :class:`NotCovered` unless the partner is active, offers ``need`` and covers
    ``prefecture`` (listed, or its whole region is)."""
    if not active:
        raise NotCovered(f"{name} takes no referrals (inactive)")
    offered = sorted(services)
    if need not in offered:
        raise NotCovered(
            f"{name} does not offer {need} (offers: {', '.join(offered) or 'nothing'})"
        )
    if not covers(regions, prefectures, prefecture):
        slug, region = prefecture_slug(prefecture)
        raise NotCovered(f"{name} does not cover the prefecture {slug} (region {region})")

"""Per-person preferences: channel order, quiet hours in the person's zone, opt-outs.

No row in ``preferences`` means the defaults: channels email, SMS, inbox in that
order, no quiet hours, the time zone of the country of residence, no opt-out and
no consent to newsletters. Quiet hours apply to channels that disturb (email and
SMS); the in-app inbox is read when the person chooses, so it is never held.

Message categories: what a person may silence, and what they must consent to first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

CHANNELS = ("email", "sms", "inbox")
DEFAULT_CHANNELS = ("email", "sms", "inbox")
# Channels that reach a device and can wake someone up.
DISTURBING = frozenset({"email", "sms"})
DEFAULT_ZONE = "Africa/Lome"
# Countries spanning several zones: the most populous one rather than the first listed.
_PREFERRED_ZONES = {
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "RU": "Europe/Moscow",
    "KZ": "Asia/Almaty",
    "CD": "Africa/Kinshasa",
}


@cache
def _zones_by_country() -> dict[str, str]:
    """Country -> first zone of the IANA ``zone.tab`` (shipped by tzdata, no network)."""
    table = resources.files("tzdata").joinpath("zoneinfo/zone.tab").read_text("utf-8")
    zones: dict[str, str] = {}
    for line in table.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        country, _coordinates, zone, *_ = line.split("\t")
        zones.setdefault(country, zone)
    zones.update(_PREFERRED_ZONES)
    return zones


def zone_for_country(country: str | None) -> str:
    if not country:
        return DEFAULT_ZONE
    return _zones_by_country().get(country.upper(), DEFAULT_ZONE)


def valid_zone(name: str) -> bool:
    if name not in available_timezones():
        return False
    try:
        ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return False
    return True


@dataclass(frozen=True)
class Preferences:
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    timezone: str | None = None
    quiet_start: time | None = None
    quiet_end: time | None = None
    opted_out: frozenset[str] = frozenset()
    consents: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, row: Any) -> Preferences:
        """From a row with the preferences columns (all NULL when the person has none)."""
        if row is None or getattr(row, "channels", None) is None:
            return cls()
        return cls(
            channels=tuple(row.channels),
            timezone=row.timezone,
            quiet_start=row.quiet_start,
            quiet_end=row.quiet_end,
            opted_out=frozenset(row.opted_out or ()),
            consents=frozenset(row.consents or ()),
        )

    def zone(self, country: str | None) -> str:
        return self.timezone or zone_for_country(country)


def quiet_until(
    now: datetime, *, zone: str, start: time | None, end: time | None
) -> datetime | None:
    """When the quiet period containing ``now`` ends (UTC-aware), or None outside it.

    The period runs from ``start`` to ``end`` in the person's local time and may span
    midnight (22:00 -> 07:00).
    """
    if start is None or end is None or start == end:
        return None
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= clock < end
        end_day = local.date()
    else:
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=tz).astimezone(now.tzinfo)


def channel_chain(
    prefs: Preferences, *, email: str | None, phone: str | None, available: frozenset[str]
) -> list[str]:
    """The person's channels, in order, that can reach them now."""
    chain = []
    for channel in prefs.channels:
        if channel not in available:
            continue
        if channel == "email" and not email:
            continue
        if channel == "sms" and not phone:
            continue
        chain.append(channel)
    return chain


# -- message categories -------------------------------------------------------------


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    # Legal and safety messages: ignore opt-outs and quiet hours.
    mandatory: bool = False
    # Sent only to people who opted in (consent to newsletters).
    needs_consent: bool = False


CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category("account", "About the person's own file: registration, profile updates."),
        Category(
            "newsletter",
            "Information campaigns, the guide for Togolese abroad.",
            needs_consent=True,
        ),
        Category("awareness", "Awareness campaigns (irregular migration, rights abroad)."),
        Category("consular", "Consular applications and appointments."),
        Category(
            "profile_reminders",
            "Update campaign: reminders to check and confirm one's registry record.",
        ),
        Category("missions", "Mission proposals and missions, interest in the person's projects."),
        Category("legal", "Legal notices the person must receive.", mandatory=True),
        Category("safety", "Safety alerts in the country of residence.", mandatory=True),
    )
}


def category(name: str) -> Category:
    try:
        return CATEGORIES[name]
    except KeyError:
        raise ValueError(f"unknown category {name!r}; known: {sorted(CATEGORIES)}") from None

"""Message categories: what a person may silence, and what they must consent to first."""

from __future__ import annotations

from dataclasses import dataclass


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

"""Embassy jurisdictions: which diplomatic post covers which countries of residence.

Reference data (``data/jurisdictions.yaml``, or an edited copy named by a
service's ``JURISDICTIONS_FILE`` setting), loaded and checked at start-up:
every country maps to exactly one post, the countries listed under a post's
``covers`` and every other one to ``default_embassy``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pycountry
import yaml  # type: ignore[import-untyped,unused-ignore]
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import ColumnElement, case, literal


class Embassy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z]{2}-[a-z0-9-]+$")
    name: str
    city: str
    country: str
    covers: tuple[str, ...]

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return _iso(value)

    @field_validator("covers")
    @classmethod
    def _covers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_iso(v) for v in value)


def _iso(code: str) -> str:
    code = code.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code


class JurisdictionTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default_embassy: str
    embassies: tuple[Embassy, ...]

    @model_validator(mode="after")
    def _one_post_per_country(self) -> JurisdictionTable:
        ids = [e.id for e in self.embassies]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"embassy ids listed twice: {duplicates}")
        if self.default_embassy not in ids:
            raise ValueError(f"default_embassy {self.default_embassy!r} is not an embassy")
        seen: dict[str, str] = {}
        for embassy in self.embassies:
            for country in embassy.covers:
                if country in seen:
                    raise ValueError(
                        f"{country} is covered by both {seen[country]} and {embassy.id}"
                    )
                seen[country] = embassy.id
        return self


class _Yaml12Loader(yaml.SafeLoader):  # type: ignore[misc,unused-ignore]
    """YAML without the 1.1 booleans: ``NO`` (Norway) and ``ON`` stay strings."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}


@dataclass(frozen=True)
class Jurisdictions:
    table: JurisdictionTable

    @classmethod
    def from_yaml(cls, text: str) -> Jurisdictions:
        raw: Any = yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 (a SafeLoader)
        return cls(JurisdictionTable.model_validate(raw))

    @classmethod
    def load(cls, path: Path | None = None) -> Jurisdictions:
        """The given file, or the seed shipped with this library."""
        if path is None:
            return default_jurisdictions()
        return cls.from_yaml(path.read_text(encoding="utf-8"))

    @property
    def default_embassy(self) -> str:
        return self.table.default_embassy

    @property
    def embassies(self) -> dict[str, Embassy]:
        return {e.id: e for e in self.table.embassies}

    def covered(self) -> dict[str, str]:
        """Country -> embassy id, for the countries listed explicitly."""
        return {c: e.id for e in self.table.embassies for c in e.covers}

    def embassy_for(self, country: str) -> str:
        """The id of the post covering residents of ``country`` (ISO alpha-2)."""
        return self.covered().get(country.upper(), self.table.default_embassy)

    def countries_of(self, embassy_ids: Iterable[str]) -> set[str]:
        """Every ISO country covered by these posts (the default post covers all the rest)."""
        wanted = set(embassy_ids)
        covered = self.covered()
        countries = {c for c, e in covered.items() if e in wanted}
        if self.table.default_embassy in wanted:
            countries |= {c.alpha_2 for c in pycountry.countries} - set(covered)
        return countries

    def sql_embassy_of(self, country: ColumnElement[Any]) -> ColumnElement[str]:
        """SQL expression giving the embassy id of a country-of-residence column."""
        covered = self.covered()
        return case(covered, value=country, else_=literal(self.table.default_embassy))


@cache
def default_jurisdictions() -> Jurisdictions:
    text = (
        resources.files("diaspora_identity").joinpath("data/jurisdictions.yaml").read_text("utf-8")
    )
    return Jurisdictions.from_yaml(text)

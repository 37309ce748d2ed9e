"""Row-by-row validation of an embassy list, with the registration's own rules.

A record becomes the body of a registration request (after the spreadsheet
conversions of :mod:`registry.imports.columns`) and goes through the very model
that validates ``POST /members``; the country must then lie within the
uploader's jurisdiction, exactly as for an assisted registration.

Reported problems name the row, the column (as the file names it) and the
reason, never the cell's value: the report can be passed around without
spreading personal data, and the officer finds the value in their own file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from diaspora_identity.jurisdictions import Jurisdictions
from diaspora_identity.policy import Decision
from registry.imports import columns
from registry.imports.columns import Layout
from registry.imports.reading import Record

# Cell conversions from spreadsheet habits to what the registration form takes.
CONVERSIONS: dict[str, Callable[[str], Any]] = {
    "date_of_birth": columns.parse_date,
    "country_of_residence": columns.country_code,
    "phone": columns.phone_text,
    "preferred_language": columns.language,
    "sex": columns.sex,
}


@dataclass(frozen=True)
class RowError:
    row: int
    column: str | None
    reason: str


@dataclass(frozen=True)
class ValidRow:
    row: int
    body: BaseModel
    embassy_id: str


Schema = type[BaseModel]


_COVERED: dict[int, dict[str, str]] = {}


def _covered(jurisdictions: Jurisdictions) -> dict[str, str]:
    """Country -> embassy, computed once per jurisdictions table (not once per row)."""
    key = id(jurisdictions.table)
    if key not in _COVERED:
        _COVERED[key] = jurisdictions.covered()
    return _COVERED[key]


def _scrub(message: str, value: str) -> str:
    """The message without the cell's value (some validators quote what they were given)."""
    message = re.sub(r"^Value error, ", "", message)
    if value:
        for form in (repr(value), f'"{value}"', value):
            message = message.replace(form, "the value")
    return message


def check_record(
    record: Record,
    layout: Layout,
    *,
    schema: Schema,
    jurisdictions: Jurisdictions,
    decision: Decision,
    extra_fields: Mapping[str, Any] | None = None,
) -> ValidRow | list[RowError]:
    """The record as a valid registration within the caller's scope, or its problems."""
    errors: list[RowError] = []
    cells = record.cells
    extra = [c for c in cells[layout.width :] if c]
    if extra:
        errors.append(
            RowError(record.row, None, f"{len(extra)} cell(s) beyond the last named column")
        )
    body: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for field, index in layout.positions.items():
        value = cells[index] if index < len(cells) else ""
        if not value:
            if columns.BY_FIELD[field].required:
                errors.append(RowError(record.row, layout.column_of(field), "required"))
            continue
        raw[field] = value
        convert = CONVERSIONS.get(field)
        try:
            body[field] = convert(value) if convert else value
        except ValueError as error:
            errors.append(RowError(record.row, layout.column_of(field), str(error)))
    if errors:
        return errors
    body.update(extra_fields or {})
    try:
        valid = schema.model_validate(body)
    except ValidationError as error:
        for item in error.errors(include_input=False, include_url=False):
            name = str(item["loc"][0]) if item["loc"] else ""
            column = layout.column_of(name) if name else None
            errors.append(RowError(record.row, column, _scrub(str(item["msg"]), raw.get(name, ""))))
        return errors
    country = str(getattr(valid, "country_of_residence"))  # noqa: B009 (any schema)
    embassy = _covered(jurisdictions).get(country, jurisdictions.default_embassy)
    if not decision.permits({"embassy_id": embassy}):
        return [
            RowError(
                record.row,
                layout.column_of("country_of_residence"),
                f"outside your jurisdiction (this country is covered by {embassy})",
            )
        ]
    return ValidRow(record.row, valid, embassy)

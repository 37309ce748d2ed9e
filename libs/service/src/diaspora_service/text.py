"""Free text that people type, refused when it carries control characters.

A name, a title or a subject ends up in mail headers, CSV cells, logs and PDF lines:
a CR or LF in it can forge a header or a log line, a NUL truncates it in C code, and
the Unicode line and paragraph separators split lines in some readers. Every free-text
field of a request is one of the two types below (docs/security.md):

- ``SingleLine``: no control character at all (C0, DEL, C1), no U+2028/U+2029;
- ``MultiLine``: the same, except line feed and tab, for descriptions and messages that
  people write over several lines (CR is refused: line ends are LF only).

The refusal is a 422 problem naming the field and the character's code point; the
JSON Schema (and so the OpenAPI documents) carries the same rule as a ``pattern``.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# ECMA-262 and Python agree on these escapes; the pattern goes into the OpenAPI documents.
_FORBIDDEN_SINGLE = r"\x00-\x1F\x7F-\x9F\u2028\u2029"
_FORBIDDEN_MULTI = r"\x00-\x08\x0B-\x1F\x7F-\x9F\u2028\u2029"
SINGLE_LINE_PATTERN = f"^[^{_FORBIDDEN_SINGLE}]*$"
MULTI_LINE_PATTERN = f"^[^{_FORBIDDEN_MULTI}]*$"

_single = re.compile(f"[{_FORBIDDEN_SINGLE}]")
_multi = re.compile(f"[{_FORBIDDEN_MULTI}]")


def control_character(value: str, *, multiline: bool = False) -> str | None:
    """The first forbidden character of ``value`` as ``U+XXXX at position n``, or None."""
    found = (_multi if multiline else _single).search(value)
    if found is None:
        return None
    return f"U+{ord(found.group()):04X} at position {found.start()}"


def _check_single(value: str) -> str:
    found = control_character(value)
    if found is not None:
        raise ValueError(f"control characters are not allowed here ({found})")
    return value


def _check_multi(value: str) -> str:
    found = control_character(value, multiline=True)
    if found is not None:
        raise ValueError(
            f"control characters are not allowed here ({found}); lines end with LF only"
        )
    return value


class _Pattern:
    """Adds the rule to the string's JSON Schema, keeping its other constraints. A field
    with a ``pattern`` of its own (``^[0-9]{1,4}$``...) keeps it: it is the rule that
    field is validated against too, and narrower (the check above still runs)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.setdefault("pattern", self.pattern)
        return schema


SingleLine = Annotated[str, AfterValidator(_check_single), _Pattern(SINGLE_LINE_PATTERN)]
MultiLine = Annotated[str, AfterValidator(_check_multi), _Pattern(MULTI_LINE_PATTERN)]

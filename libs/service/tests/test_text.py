"""Free-text types refuse control characters, with the code point in the error."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel, Field, ValidationError

from diaspora_service.text import (
    MULTI_LINE_PATTERN,
    SINGLE_LINE_PATTERN,
    MultiLine,
    SingleLine,
    control_character,
)


class Form(BaseModel):
    name: SingleLine = Field(max_length=40)
    message: MultiLine | None = None


@pytest.mark.parametrize(
    "bad",
    [
        "Ama\r\nReply-To: x@evil.example",
        "a\nb",
        "nul\x00",
        "tab\t",
        "del\x7f",
        "c1\x85",
        "ls\u2028",
        "ps\u2029",
    ],
    ids=["crlf", "lf", "nul", "tab", "del", "nel", "line-separator", "paragraph-separator"],
)
def test_single_line_refuses_every_control_character(bad: str) -> None:
    with pytest.raises(ValidationError, match="control characters are not allowed"):
        Form(name=bad)
    assert re.fullmatch(SINGLE_LINE_PATTERN, bad) is None


def test_multi_line_keeps_line_feeds_and_tabs_but_refuses_the_rest() -> None:
    assert Form(name="Ama", message="line one\n\tline two").message == "line one\n\tline two"
    for bad in ("windows\r\nline ends", "nul\x00", "vt\x0b", "ls\u2028"):
        with pytest.raises(ValidationError, match="control characters"):
            Form(name="Ama", message=bad)
        assert re.fullmatch(MULTI_LINE_PATTERN, bad) is None


def test_ordinary_text_passes_unchanged() -> None:
    text = "Kɔ̃fi Agbéko-N'Djamé (Lomé) 🇹🇬"
    assert Form(name=text[:40]).name == text[:40]
    assert control_character(text) is None
    assert re.fullmatch(SINGLE_LINE_PATTERN, text)


def test_the_error_names_the_character_and_where_it_is() -> None:
    assert control_character("ab\rc") == "U+000D at position 2"


def test_the_json_schema_keeps_other_constraints_and_adds_the_pattern() -> None:
    schema = Form.model_json_schema()["properties"]["name"]
    assert schema == {
        "maxLength": 40,
        "pattern": SINGLE_LINE_PATTERN,
        "title": "Name",
        "type": "string",
    }


class Code(BaseModel):
    code: SingleLine = Field(pattern=r"^[0-9]{6}$")


def test_a_field_with_a_pattern_of_its_own_documents_it_and_still_refuses_controls() -> None:
    # The documented rule is the field's (narrower); the control-character check still runs.
    assert Code.model_json_schema()["properties"]["code"]["pattern"] == r"^[0-9]{6}$"
    assert Code(code="123456").code == "123456"
    with pytest.raises(ValidationError, match="pattern"):
        Code(code="12345a")
    with pytest.raises(ValidationError):
        Code(code="123456\n")

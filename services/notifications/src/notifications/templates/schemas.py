"""Requests and answers of the template routes, and template variables' values."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from diaspora_service.text import MultiLine, SingleLine, control_character


def _plain_values(value: dict[str, Any]) -> dict[str, Any]:
    """Template variables' values (JSON): no control character in any text, at any depth
    (the same rule as ``MultiLine``: line feeds and tabs only; names are ``SingleLine``)."""

    def visit(item: Any, path: str) -> None:
        if isinstance(item, str):
            found = control_character(item, multiline=True)
            if found is not None:
                raise ValueError(f"{path}: control characters are not allowed here ({found})")
        elif isinstance(item, dict):
            for key, inner in item.items():
                if control_character(str(key)) is not None:
                    raise ValueError(f"{path}: control characters in a name")
                visit(inner, f"{path}.{key}")
        elif isinstance(item, list):
            for index, inner in enumerate(item):
                visit(inner, f"{path}[{index}]")

    visit(value, "variables")
    return value


Variables = Annotated[dict[str, Any], AfterValidator(_plain_values)]
Language = Annotated[str, Field(pattern=r"^[a-z]{2}$")]


class TemplateOut(BaseModel):
    key: str
    language: str
    version: int
    category: str
    subject: str
    body: str
    sms: str
    variables: dict[str, Any]
    active: bool
    created_by: str
    created_at: datetime


class TemplateSummary(BaseModel):
    key: str
    language: str
    version: int
    category: str
    active: bool
    created_at: datetime


class TemplatePage(BaseModel):
    items: list[TemplateSummary]
    next_offset: int | None


class TemplateIn(BaseModel):
    subject: SingleLine = Field(max_length=500)
    body: MultiLine = Field(max_length=20_000)
    sms: MultiLine = Field(max_length=1_000)
    category: SingleLine | None = Field(
        default=None, description="Default: the previous version's."
    )
    variables: Variables | None = Field(
        default=None,
        description="Declared variables, name -> sample value. Default: the previous version's.",
    )
    active: bool = Field(default=True, description="false: a draft, kept but not sent.")


class PreviewIn(BaseModel):
    variables: Variables | None = Field(
        default=None, description="Values to render with; default: the declared samples."
    )
    version: int | None = None
    draft: TemplateIn | None = Field(default=None, description="Preview unsaved text instead.")


class PreviewOut(BaseModel):
    key: str
    language: str
    version: int | None
    subject: str
    body: str
    sms: str

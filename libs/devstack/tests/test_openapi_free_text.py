"""Every string a client sends is constrained: no free text reaches a service unchecked.

A string property of a request body, or a string query parameter, must carry a
``pattern`` (the free-text types of ``diaspora_service.text`` add one that refuses
control characters), an ``enum``/``const`` or a ``format`` (date, email, uuid, uri...).
Otherwise it would admit CR, LF, NUL and the Unicode separators, which forge mail
headers, CSV rows and log lines (docs/security.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from diaspora_devstack import openapi

ROOT = Path(__file__).resolve().parents[3]
DOCUMENTS = sorted((ROOT / openapi.OPENAPI_DIR).glob("*.json"))
METHODS = ("get", "put", "post", "patch", "delete")
# A binary upload (a multipart file: ``contentMediaType``) is bytes, not text: the
# service that reads it checks what it holds (the registry's import refuses cells with
# control characters row by row).
CONSTRAINTS = ("pattern", "enum", "const", "format", "contentMediaType")


def _numeric_alternative(options: list[dict[str, Any]]) -> bool:
    """A Decimal's schema: a number, or the same number written as a string (parsed as
    a decimal numeral, so nothing else passes)."""
    return any(option.get("type") in ("number", "integer") for option in options)


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def unconstrained_strings(
    document: dict[str, Any], schema: dict[str, Any], where: str, seen: frozenset[str]
) -> Iterator[str]:
    """Paths (``where``) of string schemas reachable from ``schema`` with no constraint."""
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:  # recursive schemas are walked once
            return
        seen = seen | {ref}
        where = f"{where}<{ref.rsplit('/', 1)[-1]}>"
    schema = _resolve(document, schema)
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key, [])
        for option in options:
            if option.get("type") == "string" and _numeric_alternative(options):
                continue
            yield from unconstrained_strings(document, option, where, seen)
    types = schema.get("type")
    is_string = types == "string" or (isinstance(types, list) and "string" in types)
    if is_string and not any(key in schema for key in CONSTRAINTS):
        yield where
    for name, sub in schema.get("properties", {}).items():
        yield from unconstrained_strings(document, sub, f"{where}.{name}", seen)
    if isinstance(schema.get("items"), dict):
        yield from unconstrained_strings(document, schema["items"], f"{where}[]", seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from unconstrained_strings(
            document, schema["additionalProperties"], f"{where}{{}}", seen
        )


def offenders(document: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            here = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                parameter = _resolve(document, parameter)
                if parameter.get("in") != "query":
                    continue
                found += unconstrained_strings(
                    document,
                    parameter.get("schema", {}),
                    f"{here} ?{parameter['name']}",
                    frozenset(),
                )
            body = _resolve(document, operation.get("requestBody", {}))
            for media, content in body.get("content", {}).items():
                found += unconstrained_strings(
                    document, content.get("schema", {}), f"{here} body({media})", frozenset()
                )
    return found


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.stem for p in DOCUMENTS])
def test_no_request_string_is_unconstrained(path: Path) -> None:
    found = offenders(json.loads(path.read_text()))
    assert found == [], "strings a client sends without pattern, enum or format:\n" + "\n".join(
        found
    )


def test_an_unconstrained_string_is_reported() -> None:
    document = {
        "paths": {
            "/things": {
                "post": {
                    "parameters": [
                        {"name": "q", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "day",
                            "in": "query",
                            "schema": {"format": "date", "type": "string"},
                        },
                    ],
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/T"}}
                        }
                    },
                }
            }
        },
        "components": {
            "schemas": {
                "T": {
                    "properties": {
                        "name": {"type": "string", "pattern": "^[^\\x00-\\x1F]*$"},
                        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "kind": {"type": "string", "enum": ["a", "b"]},
                        "amount": {"anyOf": [{"type": "number"}, {"type": "string"}]},
                        "parts": {"type": "array", "items": {"$ref": "#/components/schemas/T"}},
                    }
                }
            }
        },
    }
    assert offenders(document) == [
        "POST /things ?q",
        "POST /things body(application/json)<T>.note",
        "POST /things body(application/json)<T>.tags[]",
    ]

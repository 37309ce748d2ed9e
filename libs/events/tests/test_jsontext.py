"""split_around: the pieces of a JSON text its values are put between."""

from __future__ import annotations

import json

from diaspora_events.jsontext import split_around


def test_values_put_between_the_pieces_give_the_text_json_would_make() -> None:
    template = json.dumps({"id": "@a@", "type": "x", "subject": "@b@"})
    parts = split_around(template, '"@a@"', '"@b@"')
    assert parts is not None
    head, middle, tail = parts
    made = head + json.dumps("0198-1") + middle + json.dumps("Kɔkú") + tail
    assert made == json.dumps({"id": "0198-1", "type": "x", "subject": "Kɔkú"})


def test_no_pieces_when_a_placeholder_is_missing_repeated_or_out_of_order() -> None:
    assert split_around('{"a": "@a@"}', '"@a@"', '"@b@"') is None
    assert split_around('{"a": "@a@", "b": "@a@", "c": "@b@"}', '"@a@"', '"@b@"') is None
    assert split_around('{"b": "@b@", "a": "@a@"}', '"@a@"', '"@b@"') is None

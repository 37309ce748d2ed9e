"""The headers copy_many and copy_encoded write: encode()'s, each event's id and subject
spliced into one JSON text (the same JSON object as the dict built per event)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from diaspora_events.cloudevents import attributes
from diaspora_events.outbox import _HeaderText

NOW = datetime(2026, 11, 29, 5, 30, tzinfo=UTC)


@pytest.mark.parametrize("extra", [None, {"traceparent": "00-abc-def-01"}, {"ce_subject": "x"}])
@pytest.mark.parametrize(
    "subject", ["0198c1d2-0000-7000-8000-000000000001", 'Kɔkú "Ɖ" \\ \u2028 🌍', ""]
)
def test_header_text_is_the_json_of_encodes_headers(
    extra: dict[str, str] | None, subject: str
) -> None:
    texts = _HeaderText("registry.member.registered", 1, source="/src", time=NOW, extra=extra)
    event_id = "0198c1d2-0000-7000-8000-0000000000ff"
    # What copy_many wrote before: the first event's headers, its id and subject replaced.
    expected = {
        **attributes(
            "registry.member.registered",
            1,
            source="/src",
            event_id="first",
            time=NOW,
            subject="first",
            extra_headers=extra,
        ),
        "ce_id": event_id,
        "ce_subject": subject,
    }
    if not subject:
        del expected["ce_subject"]
    assert json.loads(texts.text(event_id, subject)) == expected

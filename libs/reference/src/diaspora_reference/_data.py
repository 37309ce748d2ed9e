"""Loading the packaged data files (gzip'd JSON next to the code)."""

from __future__ import annotations

import gzip
import json
import unicodedata
from importlib import resources
from typing import Any


def load_json_gz(name: str) -> Any:
    """A data file of this package, decoded."""
    raw = resources.files("diaspora_reference").joinpath("data", name).read_bytes()
    return json.loads(gzip.decompress(raw))


def fold(text: str) -> str:
    """Text for matching: accents removed, case folded, punctuation as spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    cleaned = "".join(c if c.isalnum() else " " for c in plain)
    return " ".join(cleaned.split())

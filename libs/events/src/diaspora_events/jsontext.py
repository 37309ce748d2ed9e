"""Many JSON texts from one: the text made once with two placeholder values, then each
text's own values put in their place (bulk producers: a ``json.dumps`` or a model per
event costs more than the rest of writing it)."""

from __future__ import annotations


def split_around(text: str, first: str, second: str) -> tuple[str, str, str] | None:
    """``text`` cut around ``first`` and, after it, ``second`` (each present exactly once):
    ``(head, middle, tail)``, so that ``head + a + middle + b + tail`` is the text with
    ``a`` and ``b`` in their places; None when the placeholders are not found that way
    (a fixed value that looks like one of them: make that text another way)."""
    if text.count(first) != 1 or text.count(second) != 1:
        return None
    head, rest = text.split(first)
    if second not in rest:
        return None
    middle, tail = rest.split(second)
    return head, middle, tail

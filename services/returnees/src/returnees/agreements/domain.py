"""Bilateral labour-migration agreements: their stages, in plain Python."""

from __future__ import annotations

from typing import Literal

Stage = Literal["identified", "negotiating", "signed", "in_force", "suspended", "abandoned"]

# stage -> the stages it may move to (an agreement moves forward, or is suspended once
# in force and resumed, or abandoned before it is signed).
NEXT: dict[str, tuple[str, ...]] = {
    "identified": ("negotiating", "abandoned"),
    "negotiating": ("signed", "abandoned"),
    "signed": ("in_force",),
    "in_force": ("suspended",),
    "suspended": ("in_force",),
    "abandoned": (),
}


class StageRefused(Exception):
    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(f"an agreement that is {current} cannot become {wanted}")
        self.current = current
        self.allowed = list(NEXT[current])


def check_move(current: str, wanted: str) -> None:
    if wanted not in NEXT[current]:
        raise StageRefused(current, wanted)

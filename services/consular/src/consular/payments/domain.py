"""Payments by reference, in plain Python: receipt numbers and the balance of a fee.

No card is processed: the fee of an application's catalogue version is owed, an officer
records a payment made elsewhere (cash at the embassy, bank transfer, mobile money) by
its reference, and the service gives a receipt number, sequential per embassy and year.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Method = Literal["cash_at_embassy", "bank_transfer", "mobile_money"]

# The statuses in which a fee may be paid: submitted and not closed without a decision.
PAYABLE: frozenset[str] = frozenset(
    {"submitted", "under_review", "information_requested", "resubmitted", "approved", "issued"}
)


def receipt_prefix(embassy_id: str) -> str:
    """The embassy's part of a receipt number: its country and the first three letters of
    its city, e.g. ``fr-paris`` -> ``FR-PAR``, ``et-addis-ababa`` -> ``ET-ADD``."""
    country, _, city = embassy_id.partition("-")
    letters = re.sub(r"[^a-z]", "", city.lower())[:3]
    return f"{country.upper()}-{letters.upper()}" if letters else country.upper()


def receipt_number(embassy_id: str, year: int, sequence: int) -> str:
    """``FR-PAR-2026-000123``: the embassy, the year, the sequence (six digits at least)."""
    return f"{receipt_prefix(embassy_id)}-{year}-{sequence:06d}"


@dataclass(frozen=True)
class Balance:
    amount: Decimal
    currency: str
    paid: Decimal

    @property
    def due(self) -> Decimal:
        return max(self.amount - self.paid, Decimal(0))

    @property
    def settled(self) -> bool:
        return self.due == 0


@dataclass(frozen=True)
class AmountError:
    field: str
    message: str
    code: str


def check_amount(owed: Balance, amount: Decimal, currency: str) -> list[AmountError]:
    """What is wrong with paying ``amount`` ``currency`` against ``owed``: a payment settles
    the fee in full, in the fee's currency (no partial payments, no change given)."""
    errors: list[AmountError] = []
    if currency != owed.currency:
        errors.append(
            AmountError("currency", f"the fee is in {owed.currency}, not {currency}", "mismatch")
        )
    if amount != owed.due:
        errors.append(
            AmountError("amount", f"the amount due is {owed.due} {owed.currency}", "mismatch")
        )
    return errors

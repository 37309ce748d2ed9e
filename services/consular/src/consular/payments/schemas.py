"""Request and response models of payments' HTTP interface."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from consular.payments.domain import Method
from diaspora_service.text import MultiLine, SingleLine


class NewPayment(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    method: Method
    payer_reference: SingleLine = Field(
        min_length=1,
        max_length=120,
        description="The transfer's or mobile-money transaction's id, or the cash slip's number.",
    )
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2, examples=["50000"])
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["XOF"])


class VoidRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: MultiLine = Field(min_length=1, max_length=2000)


class Receipt(BaseModel):
    id: UUID
    application_id: UUID | None
    embassy_id: str
    receipt_number: str = Field(examples=["FR-PAR-2026-000123"])
    method: Method
    payer_reference: str
    amount: str = Field(description="Decimal amount, as text.")
    currency: str
    recorded_at: datetime
    recorded_by: str | None = Field(None, description="The officer (shown to staff only).")
    voided_at: datetime | None
    void_reason: str | None
    voided_by: str | None = Field(None, description="Shown to staff only.")


class PaymentStatus(BaseModel):
    """What an application owes, what is paid, and its receipts (voided ones included)."""

    application_id: UUID
    fee_amount: str = Field(description="The fee of the application's catalogue version.")
    currency: str
    paid: str
    due: str
    settled: bool
    receipts: list[Receipt]

"""Use cases of payments: what an application owes, recording a payment with its receipt
number, voiding a receipt, and the guard that refuses an approval while a fee is unpaid."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from consular.applications.service import subject_of
from consular.catalogue import service as catalogue
from consular.payments import domain
from consular.payments.tables import payments, receipt_counters
from consular.resources import TransitionBlocked
from diaspora_events.contracts import PaymentRecordedV1, PaymentVoidedV1
from diaspora_events.outbox import OutboxWriter


class NotPayable(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(f"an application {status} takes no payment")
        self.status = status


class NothingOwed(Exception):
    """The fee is free, or already paid (a receipt is in force)."""

    def __init__(self, receipt_number: str | None) -> None:
        super().__init__(
            f"already paid (receipt {receipt_number})" if receipt_number else "nothing is owed"
        )
        self.receipt_number = receipt_number


class WrongAmount(Exception):
    def __init__(self, errors: list[domain.AmountError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class AlreadyVoided(Exception):
    pass


async def receipts(session: AsyncSession, application_id: UUID) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(payments)
        .where(payments.c.application_id == application_id)
        .order_by(payments.c.recorded_at, payments.c.receipt_sequence)
    )
    return [dict(r) for r in rows.mappings()]


async def balance(session: AsyncSession, application: dict[str, Any]) -> domain.Balance:
    """The fee of the application's catalogue version, and what is paid against it."""
    fee = (await catalogue.by_id(session, application["service_version_id"])).definition.fee
    paid = (
        await session.execute(
            select(func.coalesce(func.sum(payments.c.amount), 0)).where(
                payments.c.application_id == application["id"], payments.c.voided_at.is_(None)
            )
        )
    ).scalar_one()
    return domain.Balance(amount=fee.amount, currency=fee.currency, paid=Decimal(paid))


async def _next_sequence(session: AsyncSession, embassy_id: str, year: int) -> int:
    """The next receipt sequence of the embassy and year, taken in the caller's
    transaction: the counter row stays locked until it ends (concurrent recordings wait
    their turn), and a rollback gives the number back, so the numbers have no gaps."""
    statement = (
        insert(receipt_counters)
        .values(embassy_id=embassy_id, year=year, last=1)
        .on_conflict_do_update(
            index_elements=[receipt_counters.c.embassy_id, receipt_counters.c.year],
            set_={"last": receipt_counters.c.last + 1},
        )
        .returning(receipt_counters.c.last)
    )
    sequence: int = (await session.execute(statement)).scalar_one()
    return sequence


async def record(
    session: AsyncSession,
    outbox: OutboxWriter,
    application: dict[str, Any],
    *,
    method: domain.Method,
    payer_reference: str,
    amount: Decimal,
    currency: str,
    actor_subject: str,
    now: datetime,
) -> dict[str, Any]:
    """Record the payment of a (locked) application's fee and give its receipt number."""
    if application["status"] not in domain.PAYABLE or not application["embassy_id"]:
        raise NotPayable(application["status"])
    owed = await balance(session, application)
    if owed.settled:
        active = [r for r in await receipts(session, application["id"]) if r["voided_at"] is None]
        raise NothingOwed(active[0]["receipt_number"] if active else None)
    errors = domain.check_amount(owed, amount, currency)
    if errors:
        raise WrongAmount(errors)
    amount = owed.due  # the same amount, written as the fee is (50000 -> 50000.00)
    embassy_id: str = application["embassy_id"]
    year = now.astimezone(UTC).year
    sequence = await _next_sequence(session, embassy_id, year)
    row = {
        "id": uuid.uuid4(),
        "application_id": application["id"],
        "applicant_id": application["applicant_id"],
        "applicant_subject": application["applicant_subject"],
        "embassy_id": embassy_id,
        "receipt_year": year,
        "receipt_sequence": sequence,
        "receipt_number": domain.receipt_number(embassy_id, year, sequence),
        "method": method,
        "payer_reference": payer_reference,
        "amount": amount,
        "currency": currency,
        "recorded_by": actor_subject,
        "recorded_at": now,
        "voided_at": None,
        "voided_by": None,
        "void_reason": None,
    }
    await session.execute(payments.insert().values(**row))
    await outbox.add(
        session,
        PaymentRecordedV1(
            payment_id=row["id"],
            application_id=application["id"],
            applicant_id=application["applicant_id"],
            subject_id=subject_of(application),
            embassy_id=embassy_id,
            receipt_number=row["receipt_number"],
            method=method,
            amount=str(amount),
            currency=currency,
            recorded_at=now,
            payer_reference=payer_reference,
        ),
    )
    return row


async def load(
    session: AsyncSession, payment_id: UUID, *, lock: bool = False
) -> dict[str, Any] | None:
    statement = select(payments).where(payments.c.id == payment_id)
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def void(
    session: AsyncSession,
    outbox: OutboxWriter,
    payment: dict[str, Any],
    *,
    reason: str,
    actor_subject: str,
    actor_role: str,
    now: datetime,
) -> dict[str, Any]:
    """Void a (locked) receipt: the fee is owed again; the number is never given again."""
    if payment["voided_at"] is not None:
        raise AlreadyVoided(payment["receipt_number"])
    values = {"voided_at": now, "voided_by": actor_subject, "void_reason": reason}
    await session.execute(update(payments).where(payments.c.id == payment["id"]).values(**values))
    subject: UUID = payment["applicant_id"] or payment["application_id"] or payment["id"]
    await outbox.add(
        session,
        PaymentVoidedV1(
            payment_id=payment["id"],
            application_id=payment["application_id"] or payment["id"],
            applicant_id=payment["applicant_id"],
            subject_id=subject,
            embassy_id=payment["embassy_id"],
            receipt_number=payment["receipt_number"],
            voided_at=now,
            actor_role=actor_role,
            reason=reason,
        ),
    )
    return {**payment, **values}


async def require_paid_before_approval(
    session: AsyncSession,
    outbox: OutboxWriter,
    before: dict[str, Any],
    after: dict[str, Any],
    action: str,
    now: datetime,
) -> None:
    """The applications' transition hook: an approval is refused (409) while the fee of
    the application is not paid."""
    del outbox, after, now
    if action != "approve":
        return
    owed = await balance(session, before)
    if not owed.settled:
        raise TransitionBlocked(
            "Fee unpaid",
            f"The fee of {owed.amount} {owed.currency} is not paid ({owed.due} "
            f"{owed.currency} due): an officer records the payment first.",
            "fee-unpaid",
            amount_due=str(owed.due),
            currency=owed.currency,
        )

"""The observatory's read models on the real database: small cells suppressed by the
platform's rule (primary and complementary), exact counts for coordinators only, the CSV
exports' shape, and no figures for citizens, partners' case workers or case workers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import insert
from uuid_utils.compat import uuid7

from diaspora_identity.testing import LocalIssuer, Persona
from returnees.cases.tables import cases
from returnees.countries.tables import report_counts, watchlist, watchlist_history
from returnees.observatory.domain import Row, suppress, suppress_within
from returnees.partners.tables import partners
from returnees.referrals.tables import referrals
from returnees.resources import Returnees

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
T0 = datetime(2026, 10, 1, 9, tzinfo=UTC)


def bearer(issuer: LocalIssuer, *roles: str, subject: str = "staff-1") -> dict[str, str]:
    return {"authorization": f"Bearer {issuer.token(Persona(subject=subject, roles=roles))}"}


def case_row(
    country: str, returned: date, reason: str, needs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "id": uuid7(),
        "origin": "case_worker",
        "status": "open",
        "opened_by": "cw-1",
        "opened_at": T0,
        "return_date": returned,
        "country_from": country,
        "reason": reason,
        "needs": needs or [],
    }


async def seed_cases(service: Returnees) -> None:
    rows = (
        [case_row("FR", date(2026, 10, 3), "expelled") for _ in range(7)]
        + [case_row("LY", date(2026, 10, 9), "humanitarian") for _ in range(2)]
        + [case_row("LY", date(2026, 11, 2), "expelled") for _ in range(6)]
        # A cancelled case and one not yet returned are no returns.
        + [{**case_row("LY", date(2026, 11, 2), "expelled"), "status": "cancelled"}]
        + [{**case_row("LY", date(2026, 11, 2), "expelled"), "return_date": None}]
    )
    async with service.sessions() as session, session.begin():
        await session.execute(insert(cases), rows)


async def test_returns_suppress_small_cells_and_their_complement_exact_for_coordinators(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    await seed_cases(returnees)

    analyst = await http.get("/observatory/returns", headers=bearer(identity_provider, "analyst"))
    assert analyst.status_code == 200, analyst.text
    body = analyst.json()
    assert body["exact"] is False
    assert body["suppression"] is True
    assert body["threshold"] == 5
    assert body["total"] == 15
    cells = {(r["country"], r["month"], r["reason"]): r for r in body["rows"]}
    assert cells[("FR", "2026-10", "expelled")]["count"] == 7
    # 2 is under 5 (primary); alone it would be 15 - 7 - 6: the smallest other goes too.
    assert cells[("LY", "2026-10", "humanitarian")] | {"count": None} == {
        "country": "LY",
        "month": "2026-10",
        "reason": "humanitarian",
        "count": None,
        "suppressed": True,
        "suppressed_measures": [],
    }
    assert cells[("LY", "2026-11", "expelled")]["count"] is None
    assert cells[("LY", "2026-11", "expelled")]["suppressed"] is True
    assert analyst.headers["cache-control"] == "private, no-store"

    exact = await http.get(
        "/observatory/returns",
        params={"exact": "true"},
        headers=bearer(identity_provider, "ministry_coordinator"),
    )
    assert exact.status_code == 200, exact.text
    counts = {(r["country"], r["month"], r["reason"]): r["count"] for r in exact.json()["rows"]}
    assert counts == {
        ("FR", "2026-10", "expelled"): 7,
        ("LY", "2026-10", "humanitarian"): 2,
        ("LY", "2026-11", "expelled"): 6,
    }
    assert not any(r["suppressed"] for r in exact.json()["rows"])

    refused = await http.get(
        "/observatory/returns",
        params={"exact": "true"},
        headers=bearer(identity_provider, "analyst"),
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize("role", ["citizen", "partner_caseworker", "case_worker"])
async def test_no_figures_for_citizens_partners_or_case_workers(
    role: str, returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    await seed_cases(returnees)
    for table in (
        "returns",
        "needs",
        "referral-times",
        "difficulty-reports",
        "watchlist-changes",
    ):
        response = await http.get(
            f"/observatory/{table}",
            params={"format": "csv"},
            headers=bearer(identity_provider, role, subject="person-1"),
        )
        assert response.status_code == 403, (table, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
    anonymous = await http.get("/observatory/returns")
    assert anonymous.status_code == 401


def parse_csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))


async def test_csv_exports_have_a_header_quote_values_and_leave_suppressed_cells_empty(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    await seed_cases(returnees)
    analyst = bearer(identity_provider, "analyst")

    by_param = await http.get("/observatory/returns", params={"format": "csv"}, headers=analyst)
    by_accept = await http.get("/observatory/returns", headers={**analyst, "accept": "text/csv"})
    assert by_param.content == by_accept.content
    assert by_param.text.splitlines()[0] == (
        "country,month,reason,count,suppressed,suppressed_measures"
    )
    assert 'filename="observatory-returns.csv"' in by_param.headers["content-disposition"]
    rows = {(r["country"], r["month"], r["reason"]): r for r in parse_csv(by_param)}
    assert rows[("FR", "2026-10", "expelled")]["count"] == "7"
    assert rows[("FR", "2026-10", "expelled")]["suppressed"] == "false"
    assert rows[("LY", "2026-10", "humanitarian")]["count"] == ""
    assert rows[("LY", "2026-10", "humanitarian")]["suppressed"] == "true"

    # A partner's name with a comma, quotes and accents; another that starts a formula.
    names = {"assoc-retour": 'Association "Retour", Lomé', "formula": "=HYPERLINK(1)"}
    await seed_referrals(returnees, {org: (5, 0, 0) for org in names}, names)
    export = await http.get(
        "/observatory/referral-times",
        params={"format": "csv", "exact": "true"},
        headers=bearer(identity_provider, "admin"),
    )
    assert '"Association ""Retour"", Lomé"' in export.content.decode("utf-8")
    by_partner = {r["partner"]: r for r in parse_csv(export)}
    assert by_partner["assoc-retour"]["name"] == 'Association "Retour", Lomé'
    assert by_partner["formula"]["name"] == "'=HYPERLINK(1)"
    assert by_partner["assoc-retour"]["done"] == "5"


async def seed_referrals(
    service: Returnees,
    plan: dict[str, tuple[int, int, int]],
    names: dict[str, str] | None = None,
) -> None:
    """For each partner: (done, refused, referred) referrals; the i-th done one was
    acknowledged after i+1 days and completed after 10*(i+1) days."""
    async with service.sessions() as session, session.begin():
        for org, (done, refused, referred) in plan.items():
            partner_id = uuid7()
            await session.execute(
                insert(partners).values(
                    id=partner_id,
                    partner_org=org,
                    name=(names or {}).get(org, org.upper()),
                    contact_name="Contact",
                    services=["housing"],
                )
            )
            rows = []
            for i in range(done + refused + referred):
                status = "done" if i < done else "refused" if i < done + refused else "referred"
                rows.append(
                    referral_row(partner_id, org, status, ack_days=i + 1, done_days=10 * (i + 1))
                )
            await session.execute(insert(referrals), rows)


def referral_row(
    partner_id: UUID, org: str, status: str, *, ack_days: int, done_days: int
) -> dict[str, Any]:
    closed = status in ("done", "refused")
    return {
        "id": uuid7(),
        "case_id": uuid7(),
        "partner_id": partner_id,
        "partner_org": org,
        "need": "housing",
        "priority": "high",
        "prefecture": "Golfe",
        "region": "Maritime",
        "status": status,
        "referred_by": "cw-1",
        "referred_at": T0,
        "acknowledge_by": T0 + timedelta(days=3),
        "complete_by": T0 + timedelta(days=30),
        "acknowledged_at": T0 + timedelta(days=ack_days) if closed else None,
        "closed_at": T0 + timedelta(days=done_days) if closed else None,
    }


async def test_referral_times_by_partner_with_medians_and_small_partners_hidden(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    await seed_referrals(returnees, {"big": (10, 10, 0), "mid": (0, 0, 8), "tiny": (0, 0, 2)})
    response = await http.get(
        "/observatory/referral-times", headers=bearer(identity_provider, "analyst")
    )
    assert response.status_code == 200, response.text
    rows = {r["partner"]: r for r in response.json()["rows"]}
    big = rows["big"]
    assert (big["count"], big["done"], big["refused"], big["referred"]) == (20, 10, 10, 0)
    assert big["acknowledged_n"] == 20
    # Acknowledged after 1..20 days; the done ones completed after 10..100 days.
    assert big["days_to_acknowledge_median"] == 10.5
    assert big["days_to_acknowledge_p90"] == 18.1
    assert big["days_to_complete_median"] == 55.0
    assert big["days_to_complete_p90"] == 91.0
    # 2 referrals: hidden; 8 is the smallest other partner, hidden with it.
    assert rows["tiny"]["suppressed"] is True
    assert rows["tiny"]["count"] is None
    assert rows["mid"]["suppressed"] is True
    assert rows["mid"]["referred"] is None
    assert response.json()["total"] == 30

    exact = await http.get(
        "/observatory/referral-times",
        params={"exact": "true"},
        headers=bearer(identity_provider, "ministry_coordinator"),
    )
    exact_rows = {r["partner"]: r for r in exact.json()["rows"]}
    assert exact_rows["tiny"]["referred"] == 2
    assert exact_rows["mid"]["count"] == 8


def test_a_partners_small_outcomes_and_the_times_they_give_are_hidden() -> None:
    measures = {"done": 6, "refused": 1, "referred": 0, "acknowledged_n": 7}
    measures |= {"ack_median": 2.0, "done_median": 12.0}
    row = Row({"partner": "a"}, 7, dict(measures))
    suppress_within(
        [row],
        ("done", "refused", "referred"),
        {"ack_median": ("acknowledged_n",), "done_median": ("done",)},
        threshold=5,
    )
    # 1 refusal (primary), then the 6 done ones (else 7 - 6 gives it back); 0 stays shown.
    assert row.hidden == {"refused", "done", "done_median"}
    assert row.measure("referred") == 0
    assert row.measure("ack_median") == 2.0
    rows = [Row({"k": "a"}, 3), Row({"k": "b"}, 1)]
    assert suppress(rows, threshold=5, additive=True) is None
    assert all(r.suppressed for r in rows)


async def test_needs_met_and_unmet_by_area_and_month(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    housing_met = {"area": "housing", "priority": "high", "met": True}
    housing_unmet = {"area": "housing", "priority": "high", "met": False}
    health = {"area": "health", "priority": "medium", "met": False}
    rows = [case_row("FR", date(2026, 10, 3), "expelled", [housing_met, health]) for _ in range(6)]
    rows += [case_row("FR", date(2026, 10, 5), "expelled", [housing_unmet]) for _ in range(5)]
    rows += [case_row("FR", date(2026, 10, 5), "expelled", [health | {"met": True}])]
    async with returnees.sessions() as session, session.begin():
        await session.execute(insert(cases), rows)

    response = await http.get(
        "/observatory/needs", headers=bearer(identity_provider, "ministry_coordinator")
    )
    assert response.status_code == 200, response.text
    cells = {(r["month"], r["area"], r["state"]): r["count"] for r in response.json()["rows"]}
    assert cells == {
        ("2026-10", "housing", "met"): 6,
        ("2026-10", "housing", "unmet"): None,  # 5: the smallest shown, hidden with the 1
        ("2026-10", "health", "unmet"): 6,
        ("2026-10", "health", "met"): None,  # 1 (primary)
    }
    assert response.json()["total"] == 18


async def test_difficulty_reports_and_watchlist_changes(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    entry = uuid7()
    async with returnees.sessions() as session, session.begin():
        await session.execute(
            insert(report_counts),
            [
                {"country": "LB", "category": "wage_theft", "reports": 12, "last_filed_at": T0},
                {
                    "country": "LB",
                    "category": "confiscated_passport",
                    "reports": 9,
                    "last_filed_at": T0,
                },
                {"country": "QA", "category": "wage_theft", "reports": 3, "last_filed_at": T0},
            ],
        )
        await session.execute(
            insert(watchlist).values(
                id=entry,
                country="LB",
                level="warning",
                status="withdrawn",
                title_fr="t",
                title_en="t",
                text_fr="t",
                text_en="t",
                rationale="r",
                evidence={},
                proposed_by="a-1",
                proposed_at=T0,
                version=3,
                updated_at=T0,
            )
        )
        history = [
            ("propose", None, "proposed", T0),
            ("publish", "proposed", "published", T0 + timedelta(days=2)),
            ("withdraw", "published", "withdrawn", T0 + timedelta(days=40)),
        ]
        await session.execute(
            insert(watchlist_history),
            [
                {
                    "entry_id": entry,
                    "action": a,
                    "from_status": f,
                    "to_status": t,
                    "actor": "a-2",
                    "at": at,
                }
                for a, f, t, at in history
            ],
        )
    analyst = bearer(identity_provider, "analyst")
    reports = await http.get("/observatory/difficulty-reports", headers=analyst)
    assert reports.status_code == 200, reports.text
    cells = {(r["country"], r["category"]): r["count"] for r in reports.json()["rows"]}
    assert cells == {
        ("LB", "wage_theft"): 12,
        ("LB", "confiscated_passport"): None,  # the complement of QA's 3
        ("QA", "wage_theft"): None,
    }
    changes = await http.get(
        "/observatory/watchlist-changes", params={"format": "csv"}, headers=analyst
    )
    assert [(r["month"], r["country"], r["change"], r["count"]) for r in parse_csv(changes)] == [
        ("2026-10", "LB", "published", "1"),
        ("2026-11", "LB", "withdrawn", "1"),
    ]

"""/v1/partners/{id}/exposure, /loans and /settlements/{date}: content, and who sees what.

A partner key sees its own bank only: another bank's id and an id that does not exist are the
same 404 problem. Risk and regulator keys see every partner; channel keys are 403.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from apitools import START, Api, assert_problem

from lendstack.cli.funding import exposure_json
from lendstack.core.jsonvalues import json_default
from lendstack.servicing import LoanRequest, Payment, ProductCatalog, book_loan, take_payment
from lendstack.servicing.cob import close_through
from lendstack.storage.apikeys import Role, SqlApiKeys
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.funding import SqlFunding
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.storage.settlements import SqlSettlements

BANK = "harbour-joint-stock"
OTHER = "big-state-bank"
PAID_ON = START + timedelta(days=32)
CLOSED = PAID_ON.isoformat()
OPEN = (PAID_ON + timedelta(days=1)).isoformat()
ENDPOINTS = ("exposure", "loans", f"settlements/{CLOSED}")


@dataclass
class Partners:
    api: Api
    loans: list[int]  # two with BANK, then one with OTHER

    def get(self, who: str, partner_id: str, endpoint: str, **params: Any) -> Any:
        url = f"/v1/partners/{partner_id}/{endpoint}"
        return self.api.client.get(url, headers=self.api.auth(who), params=params)


@pytest.fixture
def partners(api: Api, catalog: ProductCatalog) -> Partners:
    engine = api.engine
    repo = SqlFunding(engine)
    repo.import_builtin()
    loans = []
    for amount, bank in (("10000.01", BANK), ("3000.00", BANK), ("8000.00", OTHER)):
        request = LoanRequest("cash-loan-installment", Decimal(amount), 12, Decimal("0.18"), START)
        loan_id = book_loan(SqlUnitOfWork(engine), catalog, request).id
        repo.record_plan(engine, loan_id, {"platform": Decimal("0.3"), bank: Decimal("0.7")})
        loans.append(loan_id)
    close_through(SqlCloseStore(engine), PAID_ON - timedelta(days=1))
    payment = Payment(loans[0], Decimal("2000.00"), PAID_ON, "p1")
    take_payment(SqlUnitOfWork(engine), payment)
    close_through(SqlCloseStore(engine), PAID_ON)
    keys = SqlApiKeys(engine)
    api.keys["harbour"] = keys.create(Role.PARTNER, partner_id=BANK)[0]
    api.keys["state"] = keys.create(Role.PARTNER, partner_id=OTHER)[0]
    return Partners(api, loans)


def as_printed(payload: object) -> Any:
    return json.loads(json.dumps(payload, default=json_default, ensure_ascii=False))


# --- content ----------------------------------------------------------------------------


def test_exposure_is_the_cli_partner_object(partners: Partners) -> None:
    response = partners.get("harbour", BANK, "exposure")
    assert response.status_code == 200, response.text
    body = response.json()
    report = SqlFunding(partners.api.engine).exposures(PAID_ON)
    cli = next(p for p in as_printed(exposure_json(report))["partners"] if p["id"] == BANK)
    assert body == {"as_of": CLOSED, **cli}
    assert body["loans"] == 2
    assert body["total_allocated"] == "9100.01"  # 0.7 of 13,000.01
    assert Decimal(body["balance"]) < Decimal("9100.01")  # the payment took some principal
    assert body["tier1_limit"] is not None
    assert body["dpd_mix"][0]["bucket"] == "M0"
    as_of = partners.get("risk", BANK, "exposure", as_of=START.isoformat()).json()
    assert as_of["as_of"] == START.isoformat()
    assert as_of["today"] == "9100.01"


def test_loans_are_the_partners_own_paginated(partners: Partners) -> None:
    body = partners.get("harbour", BANK, "loans").json()
    mine = partners.loans[:2]
    assert [loan["loan_id"] for loan in body["loans"]] == mine
    assert body["next_after"] is None
    first = body["loans"][0]
    assert first["share"] == "0.7000"
    assert first["status"] == "active"
    assert Decimal(first["principal"]) < Decimal("7000.01")  # the payment took some principal
    assert first["bucket"] == "M0"
    assert first["dpd"] == 0
    page = partners.get("harbour", BANK, "loans", limit=1).json()
    assert [loan["loan_id"] for loan in page["loans"]] == mine[:1]
    assert page["next_after"] == mine[0]
    rest = partners.get("harbour", BANK, "loans", limit=1, after=page["next_after"]).json()
    assert [loan["loan_id"] for loan in rest["loans"]] == mine[1:]
    assert rest["next_after"] is None
    other = partners.get("risk", OTHER, "loans").json()
    assert [loan["loan_id"] for loan in other["loans"]] == partners.loans[2:]
    for bad in ({"limit": 0}, {"limit": 501}, {"after": -1}, {"limit": "x"}):
        problem = assert_problem(partners.get("risk", BANK, "loans", **bad), 422)
        assert problem["errors"][0]["field"] in ("limit", "after")


def test_settlement_is_the_files_bytes(partners: Partners) -> None:
    response = partners.get("harbour", BANK, f"settlements/{CLOSED}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    statement = SqlSettlements(partners.api.engine).statement(PAID_ON, BANK)
    assert response.content == statement.json_bytes()
    body = response.json()
    assert body["sha256"] == statement.checksum
    assert [line["loan_id"] for line in body["loans"]] == partners.loans[:1]
    assert Decimal(body["totals"]["net"]) > 0  # the bank is owed its part of the payment
    booked = partners.get("regulator", OTHER, f"settlements/{START.isoformat()}").json()
    assert booked["totals"]["net"] == "-5600.00"  # it paid out its 70 % of 8,000.00


def test_an_unclosed_date_is_409_naming_the_date(partners: Partners) -> None:
    for who in ("harbour", "risk"):
        body = assert_problem(partners.get(who, BANK, f"settlements/{OPEN}"), 409)
        assert body["field"] == "date"
        assert "not closed" in body["detail"]


@pytest.mark.parametrize("bad", ["2026-02-30", "20260216", "2026-2-16", "yesterday"])
def test_a_malformed_date_is_422_naming_the_date(partners: Partners, bad: str) -> None:
    body = assert_problem(partners.get("risk", BANK, f"settlements/{bad}"), 422)
    assert [(e["field"], e["in"]) for e in body["errors"]] == [("date", "path")]


def test_the_platform_has_no_settlement(partners: Partners) -> None:
    body = assert_problem(partners.get("risk", "platform", f"settlements/{CLOSED}"), 404)
    assert body["field"] == "partner_id"
    assert partners.get("risk", "platform", "exposure").status_code == 200


# --- access -----------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("who", ["risk", "regulator"])
def test_risk_and_regulator_see_every_partner(partners: Partners, who: str, endpoint: str) -> None:
    for partner_id in (BANK, OTHER):
        response = partners.get(who, partner_id, endpoint)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_unknown_partner_is_404_for_risk(partners: Partners, endpoint: str) -> None:
    body = assert_problem(partners.get("risk", "nobody", endpoint), 404)
    assert body["field"] == "partner_id"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_partner_sees_its_own_bank(partners: Partners, endpoint: str) -> None:
    assert partners.get("harbour", BANK, endpoint).status_code == 200
    assert partners.get("state", OTHER, endpoint).status_code == 200


def _shape(body: dict[str, Any], partner_id: str) -> dict[str, Any]:
    return {**body, "detail": body["detail"].replace(repr(partner_id), "<id>")}


@pytest.mark.parametrize("endpoint", [*ENDPOINTS, f"settlements/{OPEN}"])
def test_another_bank_and_a_nonexistent_id_are_the_same_404(
    partners: Partners, endpoint: str
) -> None:
    """Ids do not leak: a stored bank, the platform and nothing at all answer alike."""
    seen = []
    for partner_id in (OTHER, "platform", "nobody"):
        body = assert_problem(partners.get("harbour", partner_id, endpoint), 404)
        assert body["field"] == "partner_id"
        seen.append(_shape(body, partner_id))
    assert seen[0] == seen[1] == seen[2]
    assert set(seen[0]) == {"type", "title", "status", "detail", "field"}
    # and it is what risk sees for an id that does not exist
    assert _shape(partners.get("risk", "nobody", endpoint).json(), "nobody") == seen[0]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_partner_key_for_an_unstored_bank_sees_nothing(partners: Partners, endpoint: str) -> None:
    assert_problem(partners.get("partner", "bank-a", endpoint), 404)  # its own id, not stored
    assert_problem(partners.get("partner", BANK, endpoint), 404)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_channel_keys_are_403(partners: Partners, endpoint: str) -> None:
    for partner_id in (BANK, "nobody"):
        assert_problem(partners.get("channel", partner_id, endpoint), 403)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_no_key_is_401(partners: Partners, endpoint: str) -> None:
    response = partners.api.client.get(f"/v1/partners/{BANK}/{endpoint}")
    assert_problem(response, 401)


def test_writes_are_not_routes(partners: Partners) -> None:
    url = f"/v1/partners/{BANK}/exposure"
    assert_problem(partners.api.client.post(url, headers=partners.api.auth("risk")), 405)


def test_the_routes_are_in_the_openapi_document(partners: Partners) -> None:
    paths = partners.api.client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/partners/{partner_id}/exposure",
        "/v1/partners/{partner_id}/loans",
        "/v1/partners/{partner_id}/settlements/{date}",
    } <= set(paths)
    assert "409" in paths["/v1/partners/{partner_id}/settlements/{date}"]["get"]["responses"]


def test_settlement_dates_are_checked_after_visibility(partners: Partners) -> None:
    """A partner probing another bank learns nothing from the date either."""
    closed = assert_problem(partners.get("harbour", OTHER, f"settlements/{CLOSED}"), 404)
    unclosed = assert_problem(partners.get("harbour", OTHER, f"settlements/{OPEN}"), 404)
    assert closed == unclosed
    assert date.fromisoformat(OPEN) > PAID_ON

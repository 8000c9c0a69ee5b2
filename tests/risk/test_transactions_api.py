"""`POST /v1/transactions`: the use-of-funds feed over HTTP (problem+json, idempotency, roles)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from lendstack.api import create_app
from lendstack.servicing import LoanRequest, LoanState, ProductCatalog, book_loan
from lendstack.settings import Settings
from lendstack.storage import schema
from lendstack.storage.apikeys import Role, SqlApiKeys
from lendstack.storage.repositories import SqlUnitOfWork
from risk.monitoring_book import DAY


@pytest.fixture
def loan(engine: Engine, catalog: ProductCatalog) -> LoanState:
    request = LoanRequest("cash-loan-installment", Decimal("12000"), 12, None, DAY)
    return book_loan(SqlUnitOfWork(engine), catalog, request)


@pytest.fixture
def client(engine: Engine) -> TestClient:
    return TestClient(create_app(Settings(database_url="unused://"), engine=engine))


def auth(engine: Engine, role: Role) -> dict[str, str]:
    extra: dict[str, Any] = {"channel": "alipay"} if role is Role.CHANNEL else {}
    return {"Authorization": f"Bearer {SqlApiKeys(engine).create(role, **extra)[0]}"}


def body(loan_id: int, amount: str = "2500.00", tid: str = "api-1") -> dict[str, Any]:
    item = {
        "transaction_id": tid,
        "loan_id": loan_id,
        "timestamp": "2026-11-05T09:15:00+08:00",
        "amount": amount,
        "merchant_category": "securities_brokerage",
    }
    return {"transactions": [item]}


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(schema.funds_transactions)
        return int(conn.execute(query).scalar_one())


def test_post_flags_then_replays(client: TestClient, engine: Engine, loan: LoanState) -> None:
    headers = auth(engine, Role.RISK)
    first = client.post("/v1/transactions", json=body(loan.id), headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["flagged"][0]["loan_id"] == loan.id
    again = client.post("/v1/transactions", json=body(loan.id), headers=headers)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["duplicates"] == 1
    assert stored(engine) == 1


def test_same_id_other_content_is_409(client: TestClient, engine: Engine, loan: LoanState) -> None:
    headers = auth(engine, Role.RISK)
    client.post("/v1/transactions", json=body(loan.id), headers=headers)
    clash = client.post("/v1/transactions", json=body(loan.id, "1.00"), headers=headers)
    assert clash.status_code == 409
    assert clash.headers["content-type"] == "application/problem+json"
    assert clash.json()["field"] == "transactions[0].transaction_id"


def test_bad_record_is_422_naming_the_field(
    client: TestClient, engine: Engine, loan: LoanState
) -> None:
    headers = auth(engine, Role.RISK)
    payload = body(loan.id)
    payload["transactions"].append(
        {**payload["transactions"][0], "transaction_id": "b", "amount": "1.001"}
    )
    bad = client.post("/v1/transactions", json=payload, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["field"] == "transactions[1].amount"
    assert stored(engine) == 0
    missing = client.post("/v1/transactions", json=body(999_999), headers=headers)
    assert missing.status_code == 404
    assert missing.json()["field"] == "transactions[0].loan_id"
    empty = client.post("/v1/transactions", json={"transactions": []}, headers=headers)
    assert empty.status_code == 422


def test_only_risk_keys_may_post(client: TestClient, engine: Engine, loan: LoanState) -> None:
    assert client.post("/v1/transactions", json=body(loan.id)).status_code == 401
    for role in (Role.REGULATOR, Role.CHANNEL):
        denied = client.post("/v1/transactions", json=body(loan.id), headers=auth(engine, role))
        assert denied.status_code == 403
    assert stored(engine) == 0

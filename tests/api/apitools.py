"""Helpers for the API tests: a handle on a running app and a problem+json check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from lendstack.servicing import LoanRequest, LoanState, ProductCatalog, book_loan
from lendstack.storage.repositories import SqlUnitOfWork

START = date(2026, 1, 15)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    client: TestClient
    engine: Engine
    clock: FakeClock
    loan: LoanState
    keys: dict[str, str]

    def auth(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}", **extra}

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def book(engine: Engine, catalog: ProductCatalog) -> LoanState:
    request = LoanRequest("cash-loan-installment", Decimal("12000"), 12, None, START)
    return book_loan(SqlUnitOfWork(engine), catalog, request)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    return body

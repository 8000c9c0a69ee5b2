"""POST /v1/applications with co-lending partners stored: the decision carries its funding."""

from __future__ import annotations

import base64
import os
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from example_app import payload as body
from lendstack.api import create_app
from lendstack.settings import Settings
from lendstack.storage.apikeys import Role, SqlApiKeys
from lendstack.storage.funding import SqlFunding


def test_the_decision_includes_its_funding_plan(engine: Engine) -> None:
    SqlFunding(engine).import_builtin()
    key = SqlApiKeys(engine).create(Role.CHANNEL, channel="mall-app")[0]
    settings = Settings(database_url="unused://", pii_key=base64.b64encode(os.urandom(32)).decode())
    client = TestClient(create_app(settings, engine=engine))
    headers = {"Authorization": f"Bearer {key}"}
    response = client.post("/v1/applications", json=body(), headers=headers)
    assert response.status_code == 201, response.text
    decision = response.json()
    assert decision["outcome"] == "APPROVE"
    funding = decision["funding"]
    assert funding["outcome"] == "funded"
    assert sum(Decimal(s["share"]) for s in funding["shares"]) == 1
    assert sum(Decimal(s["amount"]) for s in funding["shares"]) == Decimal(
        decision["offer"]["amount"]
    )
    shown = client.get(f"/v1/decisions/{decision['decision_id']}", headers=headers).json()
    assert shown["funding"] == funding

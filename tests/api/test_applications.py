"""POST /v1/applications, GET /v1/decisions/{id}, GET /v1/rule-packs over a real database."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
from apitools import Api, FakeClock, assert_problem
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from example_app import payload as body
from lendstack.api import create_app
from lendstack.settings import Settings
from lendstack.storage.apikeys import Role, SqlApiKeys


@pytest.fixture
def uw(engine: Engine) -> Api:
    keys = SqlApiKeys(engine)
    issued = {
        "risk": keys.create(Role.RISK)[0],
        "regulator": keys.create(Role.REGULATOR)[0],
        "mall": keys.create(Role.CHANNEL, channel="mall-app")[0],
        "other": keys.create(Role.CHANNEL, channel="video-app")[0],
        "partner": keys.create(Role.PARTNER, partner_id="bank-a")[0],
    }
    settings = Settings(database_url="unused://", pii_key=base64.b64encode(os.urandom(32)).decode())
    app = create_app(settings, engine=engine, clock=FakeClock())
    return Api(TestClient(app), engine, FakeClock(), None, issued)  # type: ignore[arg-type]


def submit(uw: Api, who: str = "mall", payload: Any = None, **headers: str) -> Any:
    return uw.client.post(
        "/v1/applications",
        json=body() if payload is None else payload,
        headers=uw.auth(who, **headers),
    )


def test_an_approvable_application_gets_a_decision_and_an_offer(uw: Api) -> None:
    response = submit(uw)
    assert response.status_code == 201, response.text
    decision = response.json()
    assert decision["decision_id"].startswith("dcs_")
    assert decision["outcome"] == "APPROVE"
    assert decision["reasons"] == []
    offer = decision["offer"]
    assert offer["amount"] == "20000.00"
    assert offer["term_months"] == 12
    assert float(offer["apr_irr"]) <= 0.24
    assert len(offer["schedule"]) == 12
    assert sum(float(i["principal"]) for i in offer["schedule"]) == pytest.approx(20000.0)
    assert uw.count("decision_log") == 1


def test_a_decline_has_coded_reasons_and_no_offer(uw: Api) -> None:
    decision = submit(uw, payload=body(**{"loan.purpose": "speculation"})).json()
    assert decision["outcome"] == "DECLINE"
    assert decision["offer"] is None
    assert all(set(r) == {"code", "text"} for r in decision["reasons"])
    assert decision["reasons"]


def test_idempotency_key_replays_or_conflicts(uw: Api) -> None:
    first = submit(uw, **{"Idempotency-Key": "app-1"})
    again = submit(uw, **{"Idempotency-Key": "app-1"})
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["decision_id"] == first.json()["decision_id"]
    changed = submit(
        uw, payload=body(**{"loan.amount": "21000.00"}), **{"Idempotency-Key": "app-1"}
    )
    assert_problem(changed, 409)
    assert uw.count("decision_log") == 1


def test_invalid_input_is_a_422_naming_fields_and_is_only_counted(uw: Api) -> None:
    bad = body(**{"applicant.resident_id": "110105194912310021", "loan.amount": True})
    problem = assert_problem(submit(uw, payload=bad), 422)
    fields = {e["field"] for e in problem["errors"]}
    assert {"applicant.resident_id", "loan.amount"} <= fields
    assert "110105194912310021" not in json.dumps(problem)
    assert uw.count("decision_log") == 0
    assert uw.count("rejected_inputs") == 1


def test_a_channel_sees_only_its_own_decisions(uw: Api) -> None:
    decision_id = submit(uw).json()["decision_id"]
    path = f"/v1/decisions/{decision_id}"
    assert uw.client.get(path, headers=uw.auth("mall")).json()["decision_id"] == decision_id
    assert_problem(uw.client.get(path, headers=uw.auth("other")), 404)
    assert uw.client.get(path, headers=uw.auth("regulator")).status_code == 200
    assert uw.client.get(path, headers=uw.auth("risk")).status_code == 200
    assert_problem(uw.client.get(path, headers=uw.auth("partner")), 403)
    assert_problem(uw.client.get("/v1/decisions/dcs_nope", headers=uw.auth("risk")), 404)


def test_roles_for_submitting(uw: Api) -> None:
    assert_problem(submit(uw, "regulator"), 403)
    assert_problem(submit(uw, "partner"), 403)
    assert_problem(submit(uw, "other"), 403)  # a channel key cannot submit for another channel
    assert submit(uw, "risk").status_code == 201
    no_key = uw.client.post("/v1/applications", json=body())
    assert_problem(no_key, 401)
    assert uw.count("decision_log") == 1


def test_rule_packs_are_listed(uw: Api) -> None:
    packs = uw.client.get("/v1/rule-packs", headers=uw.auth("regulator")).json()
    ids = {p["id"] for p in packs}
    assert "cn-2025-10" in ids
    assert all(len(p["sha256"]) == 64 for p in packs)


def test_openapi_documents_the_application_schema(uw: Api) -> None:
    spec = uw.client.get("/openapi.json").json()
    assert "/v1/applications" in spec["paths"]
    assert "Application" in spec["components"]["schemas"]

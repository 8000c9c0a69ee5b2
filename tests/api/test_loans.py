"""Reading loans and payoff quotes, health, error translation and the OpenAPI document."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from apitools import Api, assert_problem
from fastapi.testclient import TestClient

from lendstack.api import create_app
from lendstack.core.jsonvalues import json_default
from lendstack.servicing import get_loan, quote_payoff
from lendstack.servicing.views import loan_json, payoff_json
from lendstack.settings import Settings
from lendstack.storage.db import make_engine
from lendstack.storage.repositories import SqlUnitOfWork


def _as_cli_prints(payload: object) -> object:
    return json.loads(json.dumps(payload, default=json_default, ensure_ascii=False))


def test_loan_matches_the_cli_json(api: Api) -> None:
    response = api.client.get(f"/v1/loans/{api.loan.id}", headers=api.auth("risk"))
    assert response.status_code == 200
    expected = loan_json(get_loan(SqlUnitOfWork(api.engine), api.loan.id))
    assert response.json() == _as_cli_prints(expected)
    body = response.json()
    assert body["balances"]["principal"] == "12000.00"
    assert len(body["installments"]) == 12
    assert {"dpd", "risk_class", "risk_class_cn"} <= body.keys()


def test_unknown_loan_is_404_problem(api: Api) -> None:
    body = assert_problem(api.client.get("/v1/loans/999999", headers=api.auth("risk")), 404)
    assert body["field"] == "loan_id"


def test_loan_id_is_validated(api: Api) -> None:
    for bad in ("abc", "0", str(2**63)):
        body = assert_problem(api.client.get(f"/v1/loans/{bad}", headers=api.auth("risk")), 422)
        assert body["errors"][0]["field"] == "loan_id"


def test_payoff_quote_matches_the_service(api: Api) -> None:
    url = f"/v1/loans/{api.loan.id}/payoff-quote?date=2026-02-01"
    response = api.client.get(url, headers=api.auth("regulator"))
    assert response.status_code == 200
    expected = quote_payoff(SqlUnitOfWork(api.engine), api.loan.id, date(2026, 2, 1))
    assert response.json() == _as_cli_prints(payoff_json(expected))
    assert response.json()["principal"] == "12000.00"


def test_payoff_quote_needs_a_real_date(api: Api) -> None:
    base = f"/v1/loans/{api.loan.id}/payoff-quote"
    for query in ("", "?date=2026-02-30", "?date=1767225600", "?date=2026/02/01"):
        body = assert_problem(api.client.get(base + query, headers=api.auth("risk")), 422)
        assert [(e["field"], e["in"]) for e in body["errors"]] == [("date", "query")]


def test_healthz(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/missing-dir/x.db")
    client = TestClient(create_app(Settings(), engine=engine))
    body = assert_problem(client.get("/healthz"), 503)
    assert body["title"] == "Database unavailable"


def test_unhandled_errors_are_500_problems_without_a_traceback(api: Api) -> None:
    app = api.client.app

    async def boom() -> None:
        raise RuntimeError("secret internals at /srv/app.py line 42")

    app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    client = TestClient(app, raise_server_exceptions=False)
    response = client.get("/boom")
    body = assert_problem(response, 500)
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert body["title"] == "Internal error"


def test_unknown_route_is_a_404_problem(api: Api) -> None:
    assert_problem(api.client.get("/v1/nothing-here"), 404)


def test_openapi_lists_the_routes_and_the_bearer_scheme(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert {
        "/healthz",
        "/v1/loans/{loan_id}",
        "/v1/loans/{loan_id}/payments",
        "/v1/loans/{loan_id}/payoff-quote",
    } <= spec["paths"].keys()
    schemes = spec["components"]["securitySchemes"]
    assert schemes == {
        "ApiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": schemes["ApiKey"]["description"],
        }
    }
    post = spec["paths"]["/v1/loans/{loan_id}/payments"]["post"]
    assert post["security"] == [{"ApiKey": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    assert "application/problem+json" in post["responses"]["409"]["content"]
    assert api.client.get("/docs").status_code == 200


def test_a_database_outage_mid_request_is_503_not_500(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/missing-dir/x.db")
    client = TestClient(create_app(Settings(), engine=engine), raise_server_exceptions=False)
    response = client.get("/v1/loans/1", headers={"Authorization": "Bearer lsk_any"})
    assert_problem(response, 503)

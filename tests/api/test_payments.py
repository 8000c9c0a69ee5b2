"""Posting payments: created once, replayed on retry, refused on a changed body, strict input."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from apitools import Api, assert_problem
from fastapi.testclient import TestClient

PAY = {"amount": "1000.00", "date": "2026-01-15", "prepay": None}


def _post(api: Api, body: Any, key: str | None = "k-1", who: str = "risk") -> Any:
    headers = api.auth(who) if key is None else api.auth(who, **{"Idempotency-Key": key})
    return api.client.post(f"/v1/loans/{api.loan.id}/payments", json=body, headers=headers)


def test_a_new_payment_is_201_and_written(api: Api) -> None:
    response = _post(api, PAY)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["amount"], body["date"], body["status"]) == ("1000.00", "2026-01-15", "posted")
    assert body["idempotency_key"] == "k-1"
    assert "idempotent-replayed" not in response.headers
    assert api.count("payments") == 1


def test_a_retry_replays_the_stored_payment_and_writes_nothing(api: Api) -> None:
    first = _post(api, PAY)
    entries = api.count("journal_entries")
    again = _post(api, PAY)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert (api.count("payments"), api.count("journal_entries")) == (1, entries)


def test_a_reused_key_with_another_body_is_409_and_writes_nothing(api: Api) -> None:
    _post(api, PAY)
    entries, lines = api.count("journal_entries"), api.count("journal_lines")
    body = assert_problem(_post(api, {**PAY, "amount": "999.99"}), 409)
    assert body["field"] == "idempotency_key"
    assert (api.count("payments"), api.count("journal_entries")) == (1, entries)
    assert api.count("journal_lines") == lines
    loan = api.client.get(f"/v1/loans/{api.loan.id}", headers=api.auth("risk")).json()
    assert loan["balances"]["credit"] == "1000.00"  # the first payment only


def test_a_prepayment(api: Api) -> None:
    response = _post(api, {**PAY, "amount": "3000.00", "prepay": "shorten-term"})
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "prepayment"


def test_a_missing_idempotency_key_is_named(api: Api) -> None:
    body = assert_problem(_post(api, PAY, key=None), 422)
    assert [(e["field"], e["in"]) for e in body["errors"]] == [("Idempotency-Key", "header")]
    assert api.count("payments") == 0


@pytest.mark.parametrize(
    "amount",
    [True, False, "abc", "-5", -5, 0, "0.00", "1.005", 1.005, "NaN", "Infinity", None, [1], {}],
)
def test_a_bad_amount_is_422_naming_the_field(api: Api, amount: Any) -> None:
    body = assert_problem(_post(api, {**PAY, "amount": amount}), 422)
    assert [(e["field"], e["in"]) for e in body["errors"]] == [("amount", "body")]
    assert api.count("payments") == 0


@pytest.mark.parametrize(
    ("amount", "stored"), [(1000, "1000.00"), (250.5, "250.50"), ("7.1", "7.10")]
)
def test_numbers_with_at_most_two_decimals_are_money(api: Api, amount: Any, stored: str) -> None:
    response = _post(api, {**PAY, "amount": amount})
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == stored


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"date": 0}, "date"),
        ({"date": "15/01/2026"}, "date"),
        ({"prepay": "sometime"}, "prepay"),
        ({"tip": "5.00"}, "tip"),
    ],
)
def test_other_bad_fields_are_named(api: Api, patch: dict[str, Any], field: str) -> None:
    body = assert_problem(_post(api, {**PAY, **patch}), 422)
    assert field in [e["field"] for e in body["errors"]]


def test_submitted_values_are_never_echoed(api: Api) -> None:
    secret = "110101199003074514"  # shaped like a resident id
    response = _post(api, {**PAY, "amount": secret + "x", "date": secret})
    body = assert_problem(response, 422)
    assert secret not in response.text
    assert all(set(e) == {"field", "in", "message", "type"} for e in body["errors"])


@pytest.mark.parametrize("raw", [b'{"amount": "1.00", ', b"not json", b""])
def test_malformed_json_is_a_422_problem(api: Api, raw: bytes) -> None:
    headers = api.auth("risk", **{"Idempotency-Key": "m", "Content-Type": "application/json"})
    response = api.client.post(f"/v1/loans/{api.loan.id}/payments", content=raw, headers=headers)
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "body"


def test_an_unknown_loan_is_404(api: Api) -> None:
    headers = api.auth("risk", **{"Idempotency-Key": "u"})
    assert_problem(api.client.post("/v1/loans/424242/payments", json=PAY, headers=headers), 404)


def test_a_payment_before_disbursement_is_422_naming_date(api: Api) -> None:
    body = assert_problem(_post(api, {**PAY, "date": "2025-12-31"}), 422)
    assert body["field"] == "date"


def test_concurrent_first_requests_with_one_key_post_once_and_never_fail(api: Api) -> None:
    """Both may pass the replay check; the database's unique key decides, the loser replays."""
    statuses: list[int] = []
    for round_ in range(5):
        barrier = threading.Barrier(6)

        def post(key: str = f"race-{round_}", barrier: threading.Barrier = barrier) -> None:
            client = TestClient(api.client.app, raise_server_exceptions=False)
            barrier.wait()
            statuses.append(_post_with(client, api, PAY, key).status_code)

        threads = [threading.Thread(target=post) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert set(statuses) <= {200, 201}, statuses
    assert statuses.count(201) >= 5
    assert api.count("payments") == 5


def _post_with(client: TestClient, api: Api, body: Any, key: str) -> Any:
    headers = api.auth("risk", **{"Idempotency-Key": key})
    return client.post(f"/v1/loans/{api.loan.id}/payments", json=body, headers=headers)

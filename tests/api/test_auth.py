"""Who may call what: 401 without a valid key, 403 for the wrong role, 404 outside a scope."""

from __future__ import annotations

import pytest
from apitools import Api, assert_problem

from lendstack.storage.apikeys import SqlApiKeys, hash_key

PAY = {"amount": "100.00", "date": "2026-01-15"}


def _loan_url(api: Api) -> str:
    return f"/v1/loans/{api.loan.id}"


def test_no_key_is_401_with_a_bearer_challenge(api: Api) -> None:
    response = api.client.get(_loan_url(api))
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    ["Bearer lsk_not-a-real-key", "Basic dXNlcjpwYXNz", "Bearer", "lsk_no_scheme"],
)
def test_a_wrong_key_or_scheme_is_401(api: Api, header: str) -> None:
    response = api.client.get(_loan_url(api), headers={"Authorization": header})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_revoked_key_is_401(api: Api) -> None:
    SqlApiKeys(api.engine).revoke(api.keys["regulator"])
    assert_problem(api.client.get(_loan_url(api), headers=api.auth("regulator")), 401)


def test_revocation_takes_effect_once_the_cached_lookup_expires(api: Api) -> None:
    url, headers = _loan_url(api), api.auth("regulator")
    assert api.client.get(url, headers=headers).status_code == 200
    SqlApiKeys(api.engine).revoke(api.keys["regulator"])
    api.clock.now += 4.9  # still inside the 5 s cache: the documented revocation delay
    assert api.client.get(url, headers=headers).status_code == 200
    api.clock.now += 0.2
    assert_problem(api.client.get(url, headers=headers), 401)


def test_only_the_digest_is_stored(api: Api) -> None:
    key = api.keys["risk"]
    with api.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT key_sha256, prefix FROM api_keys").all()
    assert (hash_key(key), key[:12]) in [tuple(r) for r in rows]
    assert all(key not in str(tuple(r)) for r in rows)


def test_a_regulator_may_not_post_a_payment(api: Api) -> None:
    headers = api.auth("regulator", **{"Idempotency-Key": "r1"})
    response = api.client.post(f"{_loan_url(api)}/payments", json=PAY, headers=headers)
    assert_problem(response, 403)
    assert api.count("payments") == 0


def test_a_channel_may_neither_read_a_loan_nor_pay(api: Api) -> None:
    assert_problem(api.client.get(_loan_url(api), headers=api.auth("channel")), 403)
    headers = api.auth("channel", **{"Idempotency-Key": "c1"})
    response = api.client.post(f"{_loan_url(api)}/payments", json=PAY, headers=headers)
    assert_problem(response, 403)


@pytest.mark.parametrize("suffix", ["", "/payoff-quote?date=2026-01-20"])
def test_a_partner_sees_no_loan_yet(api: Api, suffix: str) -> None:
    body = assert_problem(api.client.get(_loan_url(api) + suffix, headers=api.auth("partner")), 404)
    assert (
        body["detail"] == f"no loan {api.loan.id}"
    )  # the same answer as for a loan that is absent


def test_a_regulator_may_read(api: Api) -> None:
    assert api.client.get(_loan_url(api), headers=api.auth("regulator")).status_code == 200


def test_authentication_comes_before_body_validation(api: Api) -> None:
    response = api.client.post(
        f"{_loan_url(api)}/payments", json={"amount": True}, headers={"Idempotency-Key": "x"}
    )
    assert_problem(response, 401)

"""`lendstack decisions verify/show` against real tampering done directly in SQL."""

from __future__ import annotations

import json

import pytest
from audit_testdata import MOBILE, NAME, RESIDENT_ID
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError

from lendstack.core.errors import NotFound
from lendstack.storage.guards import MESSAGE, drop_append_only_guard
from lendstack.storage.schema import decision_log


@pytest.fixture
def five(decide):
    return [decide(n) for n in range(1, 6)]


def problems(result) -> list[tuple[int, str]]:
    payload = json.loads(result.stdout)
    return [(p["seq"], p["kind"]) for p in payload["problems"]]


@pytest.mark.parametrize(
    "statement",
    [
        update(decision_log).where(decision_log.c.seq == 2).values(outcome="DECLINE"),
        delete(decision_log).where(decision_log.c.seq == 5),
    ],
    ids=["update", "delete"],
)
def test_the_database_refuses_edits_and_deletes(cli, engine, five, statement):
    with pytest.raises(DBAPIError, match=MESSAGE), engine.begin() as conn:
        conn.execute(statement)
    assert cli("verify").exit_code == 0


def test_verify_intact_chain_prints_the_head(cli, five):
    result = cli("verify")
    assert result.exit_code == 0, result.output
    assert f"chain intact: 5 records, head {five[-1].hash}" in result.stdout
    payload = json.loads(cli("verify", "--format", "json").stdout)
    assert payload["ok"] is True
    assert payload["head"] == {"seq": 5, "hash": five[-1].hash}


def test_verify_names_an_edited_record(cli, engine, five):
    with engine.begin() as conn:
        drop_append_only_guard(conn)  # an attacker with DDL rights removes the guard first
        conn.execute(
            update(decision_log)
            .where(decision_log.c.seq == 3)
            .values(record_json=decision_log.c.record_json + " ")
        )
    result = cli("verify", "--format", "json")
    assert result.exit_code == 1
    assert problems(result) == [(3, "edited")]
    table = cli("verify")
    assert table.exit_code == 1
    assert "edited" in table.stdout


def test_verify_names_an_edited_query_column(cli, engine, five):
    with engine.begin() as conn:
        drop_append_only_guard(conn)  # an attacker with DDL rights removes the guard first
        conn.execute(update(decision_log).where(decision_log.c.seq == 2).values(offer_amount_fen=1))
    result = cli("verify", "--format", "json")
    assert result.exit_code == 1
    assert problems(result) == [(2, "edited")]
    assert "offer_amount_fen" in json.loads(result.stdout)["problems"][0]["message"]


def test_verify_names_a_deleted_record(cli, engine, five):
    with engine.begin() as conn:
        drop_append_only_guard(conn)  # an attacker with DDL rights removes the guard first
        conn.execute(delete(decision_log).where(decision_log.c.seq == 3))
    result = cli("verify", "--format", "json")
    assert result.exit_code == 1
    assert problems(result) == [(4, "deleted")]


def test_verify_names_swapped_seq_values(cli, engine, five):
    with engine.begin() as conn:
        drop_append_only_guard(conn)  # an attacker with DDL rights removes the guard first
        seq = decision_log.c.seq
        conn.execute(update(decision_log).where(seq == 3).values(seq=-3))
        conn.execute(update(decision_log).where(seq == 4).values(seq=3))
        conn.execute(update(decision_log).where(seq == -3).values(seq=4))
    result = cli("verify", "--format", "json")
    assert result.exit_code == 1
    found = problems(result)
    assert found
    assert {kind for _, kind in found} == {"reordered"}


def test_verify_names_a_truncated_tail(cli, engine, five):
    with engine.begin() as conn:
        drop_append_only_guard(conn)  # an attacker with DDL rights removes the guard first
        conn.execute(delete(decision_log).where(decision_log.c.seq == 5))
    result = cli("verify", "--format", "json")
    assert result.exit_code == 1
    assert problems(result) == [(5, "truncated")]


def test_expect_head_accepts_an_earlier_head_and_refuses_a_stranger(cli, decide, five):
    earlier = five[2].hash
    decide(6)
    assert cli("verify", "--expect-head", earlier).exit_code == 0
    result = cli("verify", "--expect-head", "ab" * 32, "--format", "json")
    assert result.exit_code == 1
    assert problems(result) == [(6, "forged_link")]


def test_show_masks_by_default_and_reveals_on_request(cli, five):
    masked = cli("show", "dec-000002", "--format", "json")
    assert masked.exit_code == 0, masked.output
    entry = json.loads(masked.stdout)["entries"][0]
    applicant = entry["record"]["application"]["applicant"]
    assert applicant["resident_id"] == RESIDENT_ID[:3] + "*" * 14 + RESIDENT_ID[-1]
    assert applicant["mobile"] == MOBILE[:3] + "****" + MOBILE[-4:]
    for secret in (NAME, RESIDENT_ID, MOBILE):
        assert secret not in masked.stdout
    revealed = cli("show", "dec-000002", "--reveal", "--format", "json")
    applicant = json.loads(revealed.stdout)["entries"][0]["record"]["application"]["applicant"]
    assert (applicant["name"], applicant["resident_id"], applicant["mobile"]) == (
        NAME,
        RESIDENT_ID,
        MOBILE,
    )
    assert entry["hash"] == five[1].hash
    table = cli("show", "dec-000002")
    assert table.exit_code == 0
    assert RESIDENT_ID not in table.stdout


def test_show_a_missing_decision_is_not_found(cli, five):
    result = cli("show", "dec-999999")
    assert isinstance(result.exception, NotFound)

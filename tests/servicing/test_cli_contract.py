"""The JSON the CLI prints is a contract other tools read; these pin its shape and values."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy_financial as npf
import pytest

from lendstack.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--format", "json"])
    assert done.value.code in (0, None)
    return json.loads(capsys.readouterr().out)


def run_ok(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    main([*argv, "--format", "json"])
    return json.loads(capsys.readouterr().out)


def test_quote_json_holds_the_schedule_and_labelled_aprs(capsys):
    out = run_ok(
        capsys,
        "loan",
        "quote",
        "--amount",
        "12000",
        "--term",
        "12",
        "--method",
        "equal-installment",
        "--rate",
        "0.18",
        "--day-count",
        "30/360",
        "--date",
        "2026-01-15",
    )
    assert isinstance(out, dict)
    for key in (
        "apr_irr",
        "apr_effective",
        "apr_simple",
        "total_interest",
        "total_fees",
        "total_cost",
    ):
        assert isinstance(out[key], str), key
    rows = out["installments"]
    assert len(rows) == 12
    assert set(rows[0]) >= {"number", "due_date", "principal", "interest", "fee", "total"}
    expected = Decimal(str(round(-npf.pmt(0.18 / 12, 12, 12000), 2)))
    assert all(Decimal(r["total"]) == expected for r in rows[:-1])
    assert sum(Decimal(r["principal"]) for r in rows) == Decimal("12000")
    # 30/360 with level payments: the IRR is the contract rate.
    assert abs(Decimal(out["apr_irr"]) - Decimal("0.18")) < Decimal("0.0001")
    assert Decimal(out["apr_effective"]) > Decimal(out["apr_irr"])


def test_quote_counts_every_fee_in_the_apr(capsys):
    base = [
        "loan",
        "quote",
        "--amount",
        "6000",
        "--term",
        "6",
        "--method",
        "interest-free-fee",
        "--date",
        "2026-03-31",
    ]
    out = run_ok(capsys, *base, "--fee-rate", "0.006")
    assert Decimal(out["total_fees"]) == Decimal("216.00")  # 6000 × 0.6% × 6
    assert Decimal(out["total_interest"]) == 0
    # "0.6% a month" on the original principal costs far more than 7.2% a year:
    monthly = npf.irr([6000] + [-1036] * 6)
    assert abs(Decimal(out["apr_irr"]) - Decimal(str(monthly * 12))) < Decimal("1e-9")


def test_trial_balance_json_shape(capsys, database_url):
    main(["--database", database_url, "init"])
    capsys.readouterr()
    main(
        [
            "--database",
            database_url,
            "loan",
            "book",
            "--product",
            "cash-loan-installment",
            "--amount",
            "5000",
            "--term",
            "6",
            "--rate",
            "0.12",
            "--date",
            "2026-02-01",
        ]
    )
    capsys.readouterr()
    out = run_ok(capsys, "--database", database_url, "ledger", "trial-balance")
    assert out["balanced"] is True
    assert out["total_debit"] == out["total_credit"] == "5000.00"
    accounts = {a["account"]: a for a in out["accounts"]}
    assert accounts["1301 principal receivable"]["debit"] == "5000.00"
    assert accounts["1001 cash and settlement"]["credit"] == "5000.00"

"""The regulator report's pure core: fen splits, APRs, caps, shares and concentration.

Inputs are hand-made frames; expected values come from the exact Decimal IRR solver in
`lendstack.core.rates`, from arithmetic done here, or from invariants (splits sum to the fen).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.core.rates import disclose
from lendstack.funding import Policy
from lendstack.risk.regulator import (
    Concentration,
    EclSnapshot,
    FunderInfo,
    Period,
    RegulatorInputs,
    build_report,
    split_by_units,
)
from lendstack.risk.regulator_apr import Contracts, above_cap, float_aprs
from lendstack.risk.regulator_page import render_files, table_csv

END = date(2026, 6, 30)


def _contracts(loans: list[tuple[int, int, int, list[int], str]]) -> Contracts:
    """(id, principal fen, term, installment totals in fen, upfront fee rate)."""
    flow_loan, number, fen = [], [], []
    for loan_id, _, _, payments, _ in loans:
        for k, amount in enumerate(payments, start=1):
            flow_loan.append(loan_id)
            number.append(k)
            fen.append(amount)
    return Contracts(
        loan_id=np.array([x[0] for x in loans], dtype=np.int64),
        principal_fen=np.array([x[1] for x in loans], dtype=np.int64),
        upfront_fee_rate=tuple(x[4] for x in loans),
        rounding=tuple("half-up" for _ in loans),
        term_months=np.array([x[2] for x in loans], dtype=np.int64),
        flow_loan=np.array(flow_loan, dtype=np.int64),
        flow_number=np.array(number, dtype=np.int64),
        flow_fen=np.array(fen, dtype=np.int64),
        disbursed=np.array([END] * len(loans), dtype="datetime64[D]"),
    )


def _exact(principal: int, fee: int, term: int, payments: list[int]) -> Decimal:
    flows = [Decimal(principal - fee) / 100] + [Decimal(0)] * term
    for k, amount in enumerate(payments, start=term - len(payments) + 1):
        flows[k] -= Decimal(amount) / 100
    return disclose(flows, Decimal(principal) / 100, term).apr_irr


LOANS = [
    (1, 1_200_000, 12, [106_618] * 11 + [106_621], "0"),  # ~12 % annuity
    (2, 600_000, 6, [100_000] * 6, "0"),  # interest-free: 0 %
    (3, 500_000, 1, [510_000], "0.01"),  # bullet, 1 % upfront fee: far above 24 %
    (4, 300_000, 3, [105_000, 104_000, 103_000], "0"),
]


def test_float_aprs_agree_with_the_exact_solver() -> None:
    c = _contracts(LOANS)
    apr = float_aprs(c)
    fees = c.upfront_fee_fen()
    assert fees.tolist() == [0, 0, 5_000, 0]
    for k, (_, principal, term, payments, _) in enumerate(LOANS):
        exact = _exact(principal, int(fees[k]), term, payments)
        assert apr[k] == pytest.approx(float(exact), abs=1e-9)
    assert apr[1] == pytest.approx(0.0, abs=1e-12)


def test_above_cap_is_decided_by_the_exact_figure() -> None:
    c = _contracts(LOANS)
    apr = float_aprs(c)
    exact_first = _exact(1_200_000, 0, 12, LOANS[0][3])
    # a cap equal to loan 1's disclosed APR is not exceeded; one 1e-10 below it is
    cap = np.array([float(exact_first), 0.24, 0.24, np.nan])
    count, found = above_cap(c, apr, cap)
    assert count == 1
    assert [i for i, _ in found] == [2]
    assert found[0][1] == _exact(500_000, 5_000, 1, [510_000])
    cap[0] = float(exact_first - Decimal("1e-10"))
    count, found = above_cap(c, apr, cap)
    assert [i for i, _ in found] == [0, 2]
    assert found[0][1] == exact_first
    assert above_cap(c, apr, cap, listed=1)[0] == 2


@given(
    amount=st.integers(0, 10**10),
    units=st.lists(st.integers(1, 10_000), min_size=1, max_size=4),
)
def test_split_sums_to_the_fen_and_stays_within_one_fen(amount: int, units: list[int]) -> None:
    shares = pl.DataFrame(
        {"loan_id": [1] * len(units), "funder_id": [f"f{k}" for k in range(len(units))],
         "units": units}
    )  # fmt: skip
    parts = split_by_units(shares, pl.DataFrame({"loan_id": [1], "principal_fen": [amount]}))
    assert int(parts["fen"].sum()) == amount
    total = sum(units)
    for fid, fen in parts.select("funder_id", "fen").iter_rows():
        exact = Decimal(amount) * units[int(fid[1:])] / total
        assert abs(Decimal(fen) - exact) < 1


def _panel(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    names = ("loan_id", "state", "dpd", "principal_fen", "risk_class", "product_id", "funder",
             "province", "channel", "months_on_book")  # fmt: skip
    return pl.DataFrame(rows, schema=names, orient="row")


def _inputs(**overrides: Any) -> RegulatorInputs:
    panel = _panel([
        (1, "M0", 0, 1_000_001, "normal", "cash", "big", "Beijing", "app", 3),
        (2, "M0", 0, 500_000, "normal", "cash", "platform", "Zhejiang", "app", 0),
        (3, "M4", 100, 300_000, "substandard", "bullet", "platform", "Beijing", "web", 5),
        (4, "M1", 10, 200_000, "special_mention", "cash", "big", "Beijing", "web", 2),
        (5, "CO", 200, 90_000, "loss", "cash", "platform", "Beijing", "web", 6),
    ])  # fmt: skip
    c = _contracts([
        (1, 1_200_000, 12, [106_618] * 11 + [106_621], "0"),
        (2, 500_000, 1, [510_000], "0.01"),
        (3, 300_000, 3, [105_000, 104_000, 103_000], "0"),
        (4, 300_000, 3, [100_000] * 3, "0"),
    ])  # fmt: skip
    caps = pl.DataFrame({
        "loan_id": [1, 2, 3, 4], "apr_cap": [0.24, 0.24, 0.24, None],
        "apr_rule": ["R.APR"] * 3 + [None], "line_cap_fen": [1_000_000] * 4,
        "line_rule": ["R.LINE"] * 4, "borrower": ["b1", "b2", "b3", "b3"],
    })  # fmt: skip
    positions = pl.DataFrame(
        {"loan_id": [1, 1, 4, 4], "funder_id": ["platform", "big", "platform", "big"],
         "share_units": [3000, 7000, 2000, 8000]}
    )  # fmt: skip
    plans = pl.DataFrame(
        {"loan_id": [1, 1, 4, 4], "funder_id": ["platform", "big", "platform", "big"],
         "share": ["0.3000", "0.7000", "0.2000", "0.8000"]}
    )  # fmt: skip
    base: dict[str, Any] = {
        "period": Period(date(2026, 6, 1), END, 30), "pack": "cn-test 1", "panel": panel, "contracts": c,
        "caps": caps, "positions": positions, "plans": plans,
        "originations": pl.DataFrame({"loan_id": [2], "principal_fen": [500_000]}),
        "funders": (FunderInfo("platform", "Platform", "platform"),
                 FunderInfo("big", "Big bank", "state_owned")),
        "policy": Policy(),
        "concentration": (Concentration("big", "Big bank", "state_owned", 2, 860_001, 3_000_000,
                                     1_000_000, 750_000, 500_000, -110_001, -360_001),),
        "ledger_principal_fen": 2_000_001,
        "ecl": EclSnapshot(9, END, "cfg", True, 150_000, 2_100_000, ((1, 20_000, 2), (2, 30_000, 1),
                                                                  (3, 100_000, 1))),
        "alerts": ({"id": "npl:2026-06", "severity": "warn"},), "npl_sales": None,
        "npl_sales_note": "no NPL sale tables",
    }  # fmt: skip
    base.update(overrides)
    return RegulatorInputs(**base)


def _table(report: Any, name: str) -> list[dict[str, object]]:
    return [dict(r) for t in report.tables() if t.name == name for r in t.rows]


def test_balances_partition_the_book_and_reconcile() -> None:
    report = build_report(_inputs())
    rows = _table(report, "balances")
    for dim in ("total", "product", "province", "channel", "lender_type", "partner"):
        assert sum(Decimal(str(r["balance"])) for r in rows if r["dimension"] == dim) == Decimal(
            "20000.01"
        ), dim
    partner = {r["value"]: r["balance"] for r in rows if r["dimension"] == "partner"}
    # loan 1: 1,000,001 fen × 70 % = 700,000.7 → 700,001 (largest remainder); loan 4: 160,000
    assert partner == {"big": "8600.01", "platform": "11400.00"}
    lender = {r["value"]: r["balance"] for r in rows if r["dimension"] == "lender_type"}
    assert lender == {"platform": "11400.00", "state_owned": "8600.01"}
    assert report.summary["reconciled"] is True
    off = build_report(_inputs(ledger_principal_fen=2_000_000))
    assert off.summary["reconciled"] is False
    assert _table(off, "reconciliation")[2]["amount"] == "0.01"


def test_classification_npl_and_provisions() -> None:
    report = build_report(_inputs())
    classes = {r["class"]: r for r in _table(report, "classification")}
    assert classes["substandard"]["balance"] == "3000.00"
    assert classes["loss"]["loans"] == 0  # the CO row is off the books
    assert report.summary["npl_ratio"] == pytest.approx(300_000 / 2_000_001)
    cover = _table(report, "provisions")[0]
    assert cover["provision_coverage"] == pytest.approx(150_000 / 300_000)
    assert cover["provision_ratio"] == pytest.approx(150_000 / 2_000_001)
    assert [r["stage"] for r in _table(report, "ecl_by_stage")] == [1, 2, 3]
    assert _table(report, "charge_offs") == [
        {"product": "cash", "loans": 1, "principal_written_off": "900.00"}
    ]
    sales = next(t for t in report.tables() if t.name == "npl_sales")
    assert sales.rows == ()
    assert "no NPL sale tables" in sales.note


def test_breaches_are_counted_and_listed() -> None:
    report = build_report(_inputs())
    s = report.summary
    assert s["apr_above_cap"] == 1
    assert [r["loan_id"] for r in _table(report, "apr_above_cap")] == [2]
    # loan 1's contract 12,000.00 > 10,000.00 and its borrower b1 still owes 10,000.01;
    # b3 owes 3,000.00 + 2,000.00 over two loans, within the cap
    assert s["amount_cap_breaches"] == 2
    assert [r["subject"] for r in _table(report, "amount_cap_breaches")] == ["loan 1", "b1"]
    # loan 4: the platform holds 20 % < 30 %
    assert s["share_floor_breaches"] == 1
    assert _table(report, "share_floor_breaches") == [
        {"loan_id": 4, "smallest_share": 0.2, "platform_share": 0.2}
    ]
    conc = _table(report, "concentration")[0]
    assert conc["tier1_breach"] is True
    assert conc["tier1_used"] == pytest.approx(860_001 / 750_000)
    assert s["concentration_breaches"] == 1


def test_files_render_deterministically_with_headers_for_empty_tables() -> None:
    monitoring = {"score_psi": [{"psi": 0.05, "band": "stable"}], "fairness": []}
    report = build_report(_inputs(alerts=(), monitoring=monitoring))
    files = render_files(report)
    assert files == render_files(build_report(_inputs(alerts=(), monitoring=monitoring)))
    assert files["alerts.csv"].decode().splitlines()[0].startswith("id,severity,period")
    assert files["monitoring_score_psi.csv"].decode() == "psi,band\n0.05,stable\n"
    html = files["report.html"].decode()
    assert "Model monitoring and fairness" in html
    assert "Model monitoring was not requested" not in html
    without = render_files(build_report(_inputs(monitoring_note="Not available: no model")))
    assert "Not available: no model" in without["report.html"].decode()
    balances = next(t for t in report.tables() if t.name == "balances")
    assert table_csv(balances).splitlines()[1] == "total,all,4,20000.01,1,5000.00"

"""Early warning: thresholds from TOML, each metric on a hand-built panel (expected values
worked out here, by hand), and a default spike planted in a synthetic book that must alert in
the first month it is measurable and not before."""

from __future__ import annotations

import itertools
import json
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from lendstack.core.errors import ValidationError
from lendstack.risk.alerts import (
    Alert,
    Metric,
    Severity,
    Thresholds,
    default_thresholds,
    evaluate,
    load_thresholds,
)
from lendstack.risk.panel import State, loan_rows, month_end_after, panel_frame, validate_panel
from lendstack.risk.stock import fpd_by_cohort, fpd_table, stock_measures, stock_total
from lendstack.risk.synthetic_panel import PanelSpec, Spike, generate_panel
from lendstack.risk.vintages import vintage_curves, vintage_table


def only(alerts: tuple[Alert, ...], metric: Metric) -> list[Alert]:
    return [a for a in alerts if a.metric is metric]


def cohort(month: int, year: int = 2024) -> date:
    return date(year, month, 1)


# --- thresholds --------------------------------------------------------------------------


def test_defaults_are_the_shipped_file() -> None:
    t = default_thresholds()
    assert (t.vintage.months_on_book, t.vintage.dpd, t.vintage.trailing_cohorts) == (3, 30, 6)
    assert (t.vintage.ratio.warn, t.vintage.ratio.critical) == (1.5, 2.0)
    assert (t.fpd.rate.warn, t.fpd.rate.critical, t.fpd.seasoning_months) == (0.03, 0.05, 2)
    assert (t.npl.warn, t.npl.critical) == (0.03, 0.05)
    assert t.partner_headroom.below
    assert t.partner_headroom.warn == 0.10
    assert (t.approval_jump.trailing_months, t.approval_jump.jump.warn) == (3, 0.05)
    assert load_thresholds("") == t  # an empty file is all defaults


def test_partial_file_overrides_only_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[npl]\nwarn = 0.02\n[vintage]\nmin_cohort_loans = 1\n", encoding="utf-8")
    t = load_thresholds(path)
    assert (t.npl.warn, t.npl.critical) == (0.02, 0.05)
    assert t.vintage.min_cohort_loans == 1
    assert t.vintage.ratio.warn == 1.5


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[vintage]\nwarn_ratio = "high"', "thresholds.vintage.warn_ratio"),
        ("[npl]\ncritical = true", "thresholds.npl.critical"),
        ("[fpd]\nwarn_rate = [0.1]", "thresholds.fpd.warn_rate"),
        ("[approval_jump]\nwarn_points = nan", "thresholds.approval_jump.warn_points"),
        ("[npl]\nwarn = -0.1", "thresholds.npl.warn"),
        ("[vintage]\nmin_cohort_loans = 2.5", "thresholds.vintage.min_cohort_loans"),
        ("[vintage]\ntrailing_cohorts = 0", "thresholds.vintage.trailing_cohorts"),
        ("[vintage]\nwarn_ratios = 1.5", "thresholds.vintage.warn_ratios"),
        ("[volume]\nwarn = 1", "thresholds.volume"),
        ("npl = 0.03", "thresholds.npl"),
        ("[npl]\nwarn = 0.06", "thresholds.npl.critical"),  # critical below warn
        ("[partner_headroom]\ncritical = 0.2", "thresholds.partner_headroom.critical"),
        ("[npl\n", "file"),
    ],
)
def test_bad_thresholds_name_the_field(text: str, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_thresholds(text)
    assert caught.value.field == field


def test_as_of_must_be_a_month_end() -> None:
    panel = panel_frame(loan_rows(1, cohort(1), [0, 0]))
    with pytest.raises(ValidationError) as caught:
        evaluate(panel, date(2024, 2, 28))
    assert caught.value.field == "as_of_month_end"


# --- (1) vintage 30+ at MOB 3 ------------------------------------------------------------

VINTAGE = load_thresholds("[vintage]\nmin_cohort_loans = 1\n")
OCT = date(2024, 10, 31)


def vintage_panel() -> Any:
    """Cohorts Jan … Jul 2024, 4 loans each, observed to 2024-10-31 (Jul reaches MOB 3).

    Jan … Jun: one loan per cohort at 35 DPD at MOB 2 (30+ by MOB 3): rate 1/4 each. Jan also
    has a loan first 30+ at MOB 4, which must not count. Jul: loan 701 at 31 DPD at MOB 3 and
    loan 702 charged off at MOB 2 (a charge-off counts as 30+): rate 2/4. A left-truncated
    loan (first row at MOB 1) in Jul is not part of the cohort.
    """
    rows: list[dict[str, Any]] = []
    for month in range(1, 7):
        life = 10 - month  # month-ends from MOB 0 to 2024-10-31
        base = month * 100
        rows += loan_rows(base + 1, cohort(month), [0, 0, 35] + [0] * (life - 3))
        for k in (2, 3, 4):
            dpds = [0] * life
            if month == 1 and k == 2:
                dpds[4] = 45
            rows += loan_rows(base + k, cohort(month), dpds)
    jul = cohort(7)
    rows += loan_rows(701, jul, [0, 0, 0, 31])
    rows += loan_rows(702, jul, [0, 15], exit_state=State.CHARGED_OFF, exit_dpd=45)
    rows += loan_rows(703, jul, [0, 0, 0, 0])
    rows += loan_rows(704, jul, [0, 0, 0, 0])
    rows += loan_rows(799, jul, [0, 40, 70], first_mob=1)
    return panel_frame(rows)


def test_vintage_alert_by_hand() -> None:
    (alert,) = only(evaluate(vintage_panel(), OCT, VINTAGE), Metric.VINTAGE_MOB3)
    # 0.5 / mean(0.25 × 6) = 2.0: at the critical level, so critical.
    assert alert.severity is Severity.CRITICAL
    assert alert.value == pytest.approx(2.0)
    assert alert.threshold == 2.0
    assert alert.detail["rate"] == pytest.approx(0.5)
    assert alert.detail["trailing_average"] == pytest.approx(0.25)
    assert alert.cohorts == (cohort(7),)
    assert alert.period == OCT
    assert (alert.loan_ids, alert.loan_count) == ((701, 702), 2)
    assert alert.id == "vintage_mob3:2024-10-31"


def test_vintage_needs_the_full_trailing_window_and_judges_a_cohort_once() -> None:
    panel = vintage_panel()
    # 2024-09-30: Jun reaches MOB 3 with only 5 cohorts before it: not measurable.
    assert only(evaluate(panel, date(2024, 9, 30), VINTAGE), Metric.VINTAGE_MOB3) == []
    # A higher critical level changes the severity, not the measurement.
    lenient = load_thresholds("[vintage]\nmin_cohort_loans = 1\ncritical_ratio = 2.5\n")
    (alert,) = only(evaluate(panel, OCT, lenient), Metric.VINTAGE_MOB3)
    assert (alert.severity, alert.threshold) == (Severity.WARN, 1.5)
    # A cohort smaller than the minimum is skipped.
    strict = load_thresholds("[vintage]\nmin_cohort_loans = 5\n")
    assert only(evaluate(panel, OCT, strict), Metric.VINTAGE_MOB3) == []


# --- (2) first-payment default -----------------------------------------------------------

FPD = load_thresholds(
    "[fpd]\nmin_cohort_loans = 1\ntrailing_cohorts = 2\nwarn_rate = 0.3\ncritical_rate = 0.6\n"
    "warn_ratio = 1.5\ncritical_ratio = 3.0\n"
)
MAY = date(2024, 5, 31)


def fpd_panel() -> Any:
    """Jan and Feb: 4 loans, 1 FPD each (0.25). Mar: 5 loans, 2 FPD (0.4), seasoned at May."""
    rows: list[dict[str, Any]] = []
    for month, loans, defaults in ((1, 4, 1), (2, 4, 1), (3, 5, 2)):
        life = 6 - month
        for k in range(loans):
            loan = month * 100 + k
            if k < defaults:
                rows += loan_rows(
                    loan, cohort(month), [0, 0, 35] + [0] * (life - 3), fpd_from_mob=2
                )
            else:
                rows += loan_rows(loan, cohort(month), [0] * life)
    return panel_frame(rows)


def test_fpd_level_and_trend_by_hand() -> None:
    alerts = evaluate(fpd_panel(), MAY, FPD)
    (level,) = only(alerts, Metric.FPD_RATE)
    (trend,) = only(alerts, Metric.FPD_VS_TRAILING)
    assert (level.severity, level.threshold) == (Severity.WARN, 0.3)
    assert level.value == pytest.approx(0.4)  # 2 / 5
    assert trend.value == pytest.approx(1.6)  # 0.4 / mean(0.25, 0.25)
    assert (trend.severity, trend.threshold) == (Severity.WARN, 1.5)
    for alert in (level, trend):
        assert alert.cohorts == (cohort(3),)
        assert (alert.loan_ids, alert.loan_count) == ((300, 301), 2)


def test_fpd_not_before_the_cohort_is_seasoned() -> None:
    # 2024-04-30: Mar is at MOB 1; Feb (0.25) is the cohort judged, below 0.3, and has only
    # one cohort before it, so no trend either.
    assert evaluate(fpd_panel(), date(2024, 4, 30), FPD) == ()


# --- (3) M1 → M2 roll rate ---------------------------------------------------------------

ROLL = load_thresholds(
    "[roll_m1_m2]\ntrailing_months = 2\nmin_loans = 1\nwarn_ratio = 1.3\ncritical_ratio = 1.6\n"
)
APR = date(2024, 4, 30)


def roll_panel() -> Any:
    """One Dec 2023 cohort; DPD at Dec, Jan, Feb, Mar, Apr month-ends.

    Feb: of loans 1-4 in M1 at Jan, loan 1 is M2 (1/4). Mar: of 5-8, loan 5 (1/4). Apr: of
    9-12, loans 9 and 10 are M2; 11 is charged off (not a roll to M2); 12 cures (2/4).
    """
    dec = date(2023, 12, 1)
    rows = loan_rows(1, dec, [0, 10, 40, 0, 0])
    for loan in (2, 3, 4):
        rows += loan_rows(loan, dec, [0, 10, 0, 0, 0])
    rows += loan_rows(5, dec, [0, 0, 10, 40, 0])
    for loan in (6, 7, 8):
        rows += loan_rows(loan, dec, [0, 0, 10, 0, 0])
    for loan in (9, 10):
        rows += loan_rows(loan, dec, [0, 0, 0, 10, 40])
    rows += loan_rows(11, dec, [0, 0, 0, 10], exit_state=State.CHARGED_OFF, exit_dpd=40)
    rows += loan_rows(12, dec, [0, 0, 0, 10, 0])
    return panel_frame(rows)


def test_roll_rate_alert_by_hand() -> None:
    alerts = evaluate(roll_panel(), APR, ROLL)
    (alert,) = alerts
    assert alert.metric is Metric.ROLL_M1_M2
    assert alert.value == pytest.approx(2.0)  # 0.5 / mean(0.25, 0.25)
    assert (alert.severity, alert.threshold) == (Severity.CRITICAL, 1.6)
    assert alert.detail["rate"] == pytest.approx(0.5)
    assert (alert.loan_ids, alert.loan_count) == ((9, 10), 2)
    assert alert.cohorts == (date(2023, 12, 1),)


def test_roll_rate_needs_the_trailing_months() -> None:
    # At March only February has M1 loans before it (January's M1 start is out of the panel).
    assert evaluate(roll_panel(), date(2024, 3, 31), ROLL) == ()


ROLL6 = load_thresholds(
    "[roll_m1_m2]\ntrailing_months = 6\nmin_loans = 1\nwarn_ratio = 1.3\ncritical_ratio = 1.6\n"
)
# (rolled, in M1) for Feb..Jul 2024: summed in another order, these rates' last bit differs,
# so a baseline summed in whatever order a group_by hands the months over would vary.
TRAILING = [(2, 5), (1, 7), (2, 4), (2, 7), (1, 6), (1, 3)]
AUG = date(2024, 8, 31)


def roll6_panel() -> Any:
    """Dec 2023 cohort; each month m of Feb..Aug has loans in M1 at m−1, some M2 at m."""
    dec, rows, loan = date(2023, 12, 1), [], 0
    for k, (rolled, n) in enumerate([*TRAILING, (3, 3)]):  # Aug: all three roll
        for i in range(n):
            loan += 1
            after = [40, 70, 100] if i < rolled else [0, 0, 0]
            rows += loan_rows(loan, dec, [*[0] * (k + 1), 10, *after][:10])
    return panel_frame(rows)


def test_roll_rate_baseline_sums_in_month_order_whatever_order_the_rows_come_in() -> None:
    rates = [r / n for r, n in TRAILING]
    assert len({sum(p) / 6 for p in itertools.permutations(rates)}) > 1  # the order would matter
    panel = roll6_panel()
    runs = [
        evaluate(panel.sample(fraction=1.0, shuffle=True, seed=s), AUG, ROLL6) for s in range(8)
    ]
    assert len({json.dumps([a.as_json() for a in run], sort_keys=True) for run in runs}) == 1
    (alert,) = only(runs[0], Metric.ROLL_M1_M2)
    assert alert.detail["trailing_average"] == sum(rates) / 6  # in month order
    assert alert.value == 1.0 / (sum(rates) / 6)


# --- (4) NPL ratio -----------------------------------------------------------------------

MAR = date(2024, 3, 31)


def npl_panel(substandard_fen: int) -> Any:
    feb = cohort(2)
    return panel_frame(
        [
            *loan_rows(1, feb, [0, 0], principal_fen=1_000_000 - substandard_fen),
            *loan_rows(2, feb, [0, 100], principal_fen=substandard_fen),
            *loan_rows(3, feb, [0, 0], principal_fen=1_000_000, risk_classes=["normal", "doubtful"]),
            *loan_rows(4, feb, [150], exit_state=State.CHARGED_OFF, principal_fen=9_000_000),
        ]
    )  # fmt: skip


def test_npl_ratio_by_hand() -> None:
    panel = npl_panel(80_000)
    # On the books: 920,000 + 80,000 + 1,000,000 = 2,000,000 fen; NPL = 80,000 (substandard)
    # + 1,000,000 (doubtful by class) = 1,080,000 → 0.54; the CO row is not on the books.
    (alert,) = only(evaluate(panel, MAR), Metric.NPL_RATIO)
    assert alert.value == pytest.approx(0.54)
    assert (alert.severity, alert.threshold) == (Severity.CRITICAL, 0.05)
    assert (alert.loan_ids, alert.loan_count) == ((2, 3), 2)


def test_npl_warn_level() -> None:
    feb = cohort(2)
    panel = panel_frame(
        [
            *loan_rows(1, feb, [0, 0], principal_fen=960_000),
            *loan_rows(2, feb, [0, 100], principal_fen=40_000),
        ]
    )
    (alert,) = only(evaluate(panel, MAR), Metric.NPL_RATIO)
    assert alert.value == pytest.approx(0.04)  # 40,000 / 1,000,000
    assert (alert.severity, alert.threshold) == (Severity.WARN, 0.03)
    clean = panel_frame(loan_rows(1, feb, [0, 0]))
    assert only(evaluate(clean, MAR), Metric.NPL_RATIO) == []


# --- (5) partner headroom and (6) approval jump ------------------------------------------


def test_partner_headroom() -> None:
    panel = panel_frame(loan_rows(1, cohort(2), [0, 0]))
    headroom = {"bank-c": 0.05, "bank-a": 0.5, "bank-b": 0.08}
    alerts = evaluate(panel, MAR, partner_headroom=headroom)
    assert [(a.id, a.severity, a.value, a.threshold) for a in alerts] == [
        ("partner_headroom:2024-03-31:bank-b", Severity.WARN, 0.08, 0.10),
        ("partner_headroom:2024-03-31:bank-c", Severity.CRITICAL, 0.05, 0.05),
    ]
    with pytest.raises(ValidationError) as caught:
        evaluate(panel, MAR, partner_headroom={"bank-x": "lots"})  # type: ignore[dict-item]
    assert caught.value.field == "partner_headroom.bank-x"


def test_approval_jump() -> None:
    panel = panel_frame(loan_rows(1, cohort(3), [0, 0]))
    history = {cohort(1): 0.40, cohort(2): 0.42, cohort(3): 0.44}
    (warn,) = evaluate(panel, APR, approvals={**history, cohort(4): 0.50})
    assert warn.metric is Metric.APPROVAL_JUMP
    assert warn.value == pytest.approx(0.08)  # 0.50 − mean(0.40, 0.42, 0.44)
    assert (warn.severity, warn.threshold) == (Severity.WARN, 0.05)
    (critical,) = evaluate(panel, APR, approvals={**history, cohort(4): 0.60})
    assert critical.severity is Severity.CRITICAL
    assert critical.value == pytest.approx(0.18)
    assert evaluate(panel, APR, approvals={**history, cohort(4): 0.46}) == ()
    gap = {cohort(1): 0.40, cohort(3): 0.44, cohort(4): 0.90}  # February missing
    assert evaluate(panel, APR, approvals=gap) == ()
    assert evaluate(panel, APR) == ()  # no inputs: skipped, not an error


def test_as_json() -> None:
    (alert,) = only(evaluate(vintage_panel(), OCT, VINTAGE), Metric.VINTAGE_MOB3)
    data = json.loads(json.dumps(alert.as_json()))
    assert data["id"] == "vintage_mob3:2024-10-31"
    assert data["metric"] == "vintage_mob3"
    assert data["severity"] == "critical"
    assert data["period"] == "2024-10-31"
    assert data["cohorts"] == ["2024-07-01"]
    assert data["loan_ids"] == [701, 702]
    assert data["loan_count"] == 2
    assert data["value"] == pytest.approx(2.0)
    assert data["threshold"] == 2.0


# --- the planted spike -------------------------------------------------------------------

SPIKE = date(2024, 11, 1)
BOOK = PanelSpec(cohorts=18, months=18, loans_per_cohort=4_000, seed=3)


def vintage_alerts_by_month(spikes: tuple[Spike, ...], t: Thresholds) -> dict[date, Alert]:
    panel = generate_panel(PanelSpec(**{**_spec_fields(), "spikes": spikes}))
    out = {}
    for k in range(BOOK.months):
        month_end = month_end_after(BOOK.first_cohort, k)
        found = only(evaluate(panel, month_end, t), Metric.VINTAGE_MOB3)
        assert len(found) <= 1
        if found:
            out[month_end] = found[0]
    return out


def _spec_fields() -> dict[str, Any]:
    return {name: getattr(BOOK, name) for name in PanelSpec.__dataclass_fields__}


def test_planted_spike_fires_first_when_measurable_and_not_before() -> None:
    t = default_thresholds()
    fired = vintage_alerts_by_month((Spike(SPIKE, 3.0),), t)
    measurable = month_end_after(SPIKE, t.vintage.months_on_book)  # 2025-02-28
    assert fired, "the spike raised no vintage alert"
    first = min(fired)
    assert first == measurable
    alert = fired[first]
    assert alert.cohorts == (SPIKE,)
    assert alert.severity is Severity.CRITICAL
    assert alert.loan_count > 0
    assert len(alert.loan_ids) == min(alert.loan_count, 100)
    # The same seed without the spike raises no vintage alert at any month-end.
    assert vintage_alerts_by_month((), t) == {}


# --- the batched measures ----------------------------------------------------------------


@given(
    seed=st.integers(0, 2**16),
    cohorts=st.integers(1, 8),
    extra_months=st.integers(0, 6),
    at=st.integers(0, 14),
    dpd=st.sampled_from((1, 30, 60)),
    seasoning=st.integers(1, 4),
)
@settings(max_examples=25, deadline=None)
def test_the_batched_measures_are_the_public_functions_tables(
    seed: int, cohorts: int, extra_months: int, at: int, dpd: int, seasoning: int
) -> None:
    """`evaluate` collects the vintage, FPD and stock tables in one `collect_all`
    (`vintage_table`, `fpd_table`, `stock_total`): each must equal, row for row and bit for
    bit, what `vintage_curves`, `fpd_by_cohort` and `stock_measures` return at that month-end."""
    spec = PanelSpec(cohorts=cohorts, months=cohorts + extra_months, loans_per_cohort=60, seed=seed)
    panel = generate_panel(spec)
    as_of = month_end_after(spec.first_cohort, min(at, spec.months - 1))
    lazy = validate_panel(panel).filter(pl.col("month_end") <= as_of)
    vintages, fpd, stock = pl.collect_all(
        [vintage_table(lazy, (dpd,), as_of), fpd_table(lazy, seasoning), stock_total(lazy, as_of)]
    )
    assert_frame_equal(vintages, vintage_curves(lazy, (dpd,), as_of=as_of).table)
    assert_frame_equal(fpd, fpd_by_cohort(lazy, seasoning_months=seasoning, as_of=as_of).table)
    assert_frame_equal(stock, stock_measures(lazy, as_of, dimensions=()).rows())

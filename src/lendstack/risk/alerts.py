"""Early warning: thresholds over the loan-month panel that raise alerts when defaults spike.

`evaluate(panel, as_of_month_end, thresholds)` measures, at one month-end, using only rows up
to it (so a replay month by month sees what a risk team saw then):

1. `vintage_mob3`: the 30+ DPD rate by months on book 3 of the cohort that reaches MOB 3 at
   this month-end, over the plain average of the 6 cohorts before it (a ratio);
2. `fpd_rate` and `fpd_vs_trailing`: the first-payment-default rate of the cohort whose FPD
   becomes known at this month-end, as a level and over the 6 cohorts before it;
3. `roll_m1_m2`: the share of last month-end's M1 loans that are M2 now, over the trailing
   6 months' average;
4. `npl_ratio`: the NPL ratio at the month-end, as a level;
5. `partner_headroom`: each partner's unused concentration headroom (an input), alerting
   when it falls *to or below* the levels;
6. `approval_jump`: the month's approval rate (an input) minus the trailing 3-month average.

A cohort is judged once, at the month-end its measure first becomes measurable, so a spike
fires in that month and not again as the cohort ages. A value at or beyond `warn` alerts;
at or beyond `critical` the alert is critical. Metrics whose inputs are absent (no such
cohort yet, too small a cohort, too short a history, no approvals given) are skipped. A zero
trailing average gives no ratio, so ratio metrics skip it (the level metrics still speak).

Pure: polars in, frozen alerts out; thresholds come from TOML (`alerts_config/default.toml`).
Definitions and the reasons for the defaults are in docs/early-warning.md.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from lendstack.core.datafiles import load_toml
from lendstack.core.errors import NotFound, ValidationError
from lendstack.risk.panel import (
    BUCKETS,
    NON_PERFORMING,
    PanelLike,
    State,
    month_index,
    validate_panel,
)
from lendstack.risk.stock import fpd_table, stock_total
from lendstack.risk.vintages import measure_name, vintage_table

MAX_LOAN_IDS = 100
"""Loan ids listed on an alert; `loan_count` always has the full number."""


class Severity(StrEnum):
    WARN = "warn"
    CRITICAL = "critical"


class Metric(StrEnum):
    VINTAGE_MOB3 = "vintage_mob3"
    FPD_RATE = "fpd_rate"
    FPD_VS_TRAILING = "fpd_vs_trailing"
    ROLL_M1_M2 = "roll_m1_m2"
    NPL_RATIO = "npl_ratio"
    PARTNER_HEADROOM = "partner_headroom"
    APPROVAL_JUMP = "approval_jump"
    FUNDS_MISUSE = "funds_misuse"
    """A loan's funds reached a forbidden merchant category (`risk.surveillance`)."""


@dataclass(frozen=True, slots=True)
class Levels:
    """Warn and critical levels; `below` means low values are bad (headroom)."""

    warn: float
    critical: float
    below: bool = False

    def breach(self, value: float) -> tuple[Severity, float] | None:
        """The severity and the level reached by `value`, or None."""
        for severity, level in ((Severity.CRITICAL, self.critical), (Severity.WARN, self.warn)):
            if (value <= level) if self.below else (value >= level):
                return severity, level
        return None


@dataclass(frozen=True, slots=True)
class VintageThresholds:
    months_on_book: int
    dpd: int
    trailing_cohorts: int
    min_cohort_loans: int
    ratio: Levels


@dataclass(frozen=True, slots=True)
class FpdThresholds:
    seasoning_months: int
    trailing_cohorts: int
    min_cohort_loans: int
    rate: Levels
    ratio: Levels


@dataclass(frozen=True, slots=True)
class RollThresholds:
    trailing_months: int
    min_loans: int
    ratio: Levels


@dataclass(frozen=True, slots=True)
class ApprovalThresholds:
    trailing_months: int
    jump: Levels


@dataclass(frozen=True, slots=True)
class Thresholds:
    vintage: VintageThresholds
    fpd: FpdThresholds
    roll_m1_m2: RollThresholds
    npl: Levels
    partner_headroom: Levels
    approval_jump: ApprovalThresholds


@dataclass(frozen=True, slots=True)
class Alert:
    """One breached threshold at one month-end.

    `value` is what was measured (a ratio, rate or points, as the metric says) and
    `threshold` the level it reached. `cohorts` are the origination months involved;
    `loan_ids` the first MAX_LOAN_IDS loans involved (sorted) and `loan_count` all of them.
    `subject` names the partner for headroom alerts. `detail` carries the inputs of a ratio
    (the period's rate and the trailing average).
    """

    metric: Metric
    severity: Severity
    value: float
    threshold: float
    period: date
    cohorts: tuple[date, ...] = ()
    loan_ids: tuple[int, ...] = ()
    loan_count: int = 0
    subject: str | None = None
    detail: Mapping[str, float] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Stable across re-runs: metric, period and (for partners) the partner."""
        parts = [self.metric.value, self.period.isoformat()]
        if self.subject is not None:
            parts.append(self.subject)
        return ":".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "metric": self.metric.value,
            "severity": self.severity.value,
            "value": self.value,
            "threshold": self.threshold,
            "period": self.period.isoformat(),
            "subject": self.subject,
            "cohorts": [c.isoformat() for c in self.cohorts],
            "loan_ids": list(self.loan_ids),
            "loan_count": self.loan_count,
            "detail": dict(self.detail),
        }


# --- thresholds -------------------------------------------------------------------------

_INT, _NUM = "integer", "number"
_SCHEMA: dict[str, dict[str, str]] = {
    "vintage": {"months_on_book": _INT, "dpd": _INT, "trailing_cohorts": _INT,
                "min_cohort_loans": _INT, "warn_ratio": _NUM, "critical_ratio": _NUM},
    "fpd": {"seasoning_months": _INT, "trailing_cohorts": _INT, "min_cohort_loans": _INT,
            "warn_rate": _NUM, "critical_rate": _NUM, "warn_ratio": _NUM, "critical_ratio": _NUM},
    "roll_m1_m2": {"trailing_months": _INT, "min_loans": _INT, "warn_ratio": _NUM,
                   "critical_ratio": _NUM},
    "npl": {"warn": _NUM, "critical": _NUM},
    "partner_headroom": {"warn": _NUM, "critical": _NUM},
    "approval_jump": {"trailing_months": _INT, "warn_points": _NUM, "critical_points": _NUM},
}  # fmt: skip


def load_thresholds(source: Path | str) -> Thresholds:
    """Thresholds from a TOML file (a `Path`) or TOML text (a `str`).

    Keys left out take the shipped defaults; an unknown section or key, or a value that is
    not a number, raises `ValidationError` with `field="thresholds.<section>.<key>"`.
    """
    if isinstance(source, Path):
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise NotFound(f"cannot read thresholds {source}: {exc}", field="thresholds") from exc
        name = str(source)
    else:
        text, name = source, "thresholds"
    return _parse(load_toml(text, name), _default_raw())


@functools.cache
def _default_raw() -> dict[str, dict[str, Any]]:
    item = resources.files("lendstack.risk") / "alerts_config" / "default.toml"
    return _checked(load_toml(item.read_text("utf-8"), "default.toml"), complete=True)


@functools.cache
def default_thresholds() -> Thresholds:
    """The shipped `alerts_config/default.toml` (read once)."""
    return _parse({}, _default_raw())


def _checked(data: Mapping[str, Any], *, complete: bool) -> dict[str, dict[str, Any]]:
    """Known sections and keys, numbers only (ints where counts are meant)."""
    out: dict[str, dict[str, Any]] = {}
    for section, values in data.items():
        if section not in _SCHEMA:
            raise ValidationError(
                f"unknown section (known: {sorted(_SCHEMA)})", field=f"thresholds.{section}"
            )
        if not isinstance(values, Mapping):
            raise ValidationError("must be a table", field=f"thresholds.{section}")
        out[section] = {k: _number(section, k, v) for k, v in values.items()}
    if complete:
        for section, keys in _SCHEMA.items():
            for key in keys:
                if key not in out.get(section, {}):
                    raise ValidationError("is missing", field=f"thresholds.{section}.{key}")
    return out


def _number(section: str, key: str, value: Any) -> float | int:
    name = f"thresholds.{section}.{key}"
    kind = _SCHEMA[section].get(key)
    if kind is None:
        raise ValidationError(f"unknown threshold (known: {sorted(_SCHEMA[section])})", field=name)
    is_number = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    if not is_number:
        raise ValidationError(f"must be a number, got {value!r}", field=name)
    if kind == _INT:
        if not isinstance(value, int) or value < 0:
            raise ValidationError(f"must be a whole number >= 0, got {value}", field=name)
        return value
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValidationError(f"must be a finite number >= 0, got {value}", field=name)
    return number


def _parse(data: Mapping[str, Any], defaults: dict[str, dict[str, Any]]) -> Thresholds:
    given = _checked(data, complete=False)
    merged = {s: {**defaults[s], **given.get(s, {})} for s in _SCHEMA}

    def levels(section: str, warn: str, critical: str, *, below: bool = False) -> Levels:
        low, high = merged[section][warn], merged[section][critical]
        if (high > low) if below else (high < low):
            word = "at or below" if below else "at or above"
            raise ValidationError(
                f"must be {word} {warn} ({low})", field=f"thresholds.{section}.{critical}"
            )
        return Levels(float(low), float(high), below)

    def positive(section: str, key: str) -> int:
        value = int(merged[section][key])
        if value < 1:
            raise ValidationError("must be >= 1", field=f"thresholds.{section}.{key}")
        return value

    v, f, r = merged["vintage"], merged["fpd"], merged["roll_m1_m2"]
    return Thresholds(
        vintage=VintageThresholds(
            months_on_book=positive("vintage", "months_on_book"),
            dpd=positive("vintage", "dpd"),
            trailing_cohorts=positive("vintage", "trailing_cohorts"),
            min_cohort_loans=int(v["min_cohort_loans"]),
            ratio=levels("vintage", "warn_ratio", "critical_ratio"),
        ),
        fpd=FpdThresholds(
            seasoning_months=positive("fpd", "seasoning_months"),
            trailing_cohorts=positive("fpd", "trailing_cohorts"),
            min_cohort_loans=int(f["min_cohort_loans"]),
            rate=levels("fpd", "warn_rate", "critical_rate"),
            ratio=levels("fpd", "warn_ratio", "critical_ratio"),
        ),
        roll_m1_m2=RollThresholds(
            trailing_months=positive("roll_m1_m2", "trailing_months"),
            min_loans=int(r["min_loans"]),
            ratio=levels("roll_m1_m2", "warn_ratio", "critical_ratio"),
        ),
        npl=levels("npl", "warn", "critical"),
        partner_headroom=levels("partner_headroom", "warn", "critical", below=True),
        approval_jump=ApprovalThresholds(
            trailing_months=positive("approval_jump", "trailing_months"),
            jump=levels("approval_jump", "warn_points", "critical_points"),
        ),
    )


# --- evaluation -------------------------------------------------------------------------


def evaluate(
    panel: PanelLike,
    as_of_month_end: date,
    thresholds: Thresholds | None = None,
    *,
    approvals: Mapping[date, float] | None = None,
    partner_headroom: Mapping[str, float] | None = None,
) -> tuple[Alert, ...]:
    """Every alert at `as_of_month_end` from the panel's rows up to it (see the module doc).

    `approvals` maps a month (any date in it) to that month's approval rate (a fraction);
    `partner_headroom` maps a partner to its unused concentration headroom (a fraction).
    Alerts come in metric order, partners sorted by name.
    """
    t = thresholds or default_thresholds()
    if (as_of_month_end + timedelta(days=1)).day != 1:
        raise ValidationError("must be the last day of a month", field="as_of_month_end")
    lazy = validate_panel(panel).filter(pl.col("month_end") <= as_of_month_end)
    m = _measure(lazy, as_of_month_end, t)
    alerts: list[Alert] = []
    alerts += _vintage(lazy, as_of_month_end, t.vintage, m.vintage)
    alerts += _fpd(lazy, as_of_month_end, t.fpd, m.fpd)
    alerts += _roll_m1_m2(lazy, as_of_month_end, t.roll_m1_m2)
    alerts += _npl(lazy, as_of_month_end, t.npl, m.stock)
    if partner_headroom is not None:
        alerts += _headroom(partner_headroom, as_of_month_end, t.partner_headroom)
    if approvals is not None:
        alerts += _approval_jump(approvals, as_of_month_end, t.approval_jump)
    return tuple(alerts)


@dataclass(frozen=True, slots=True)
class _Measures:
    """The panel measures the metrics judge, collected together (`_measure`)."""

    vintage: pl.DataFrame
    """`vintage_curves(...).table` at the month-end, for the vintage threshold's DPD."""
    fpd: pl.DataFrame
    """`fpd_by_cohort(...).table` at the month-end."""
    stock: pl.DataFrame
    """`stock_measures(..., dimensions=()).table`: the book's total row."""


def _measure(lazy: pl.LazyFrame, as_of: date, t: Thresholds) -> _Measures:
    """The vintage, FPD and stock tables in one `pl.collect_all`: the plans share the
    validated panel, and each collect has a fixed cost (planning, a thread-pool round trip)
    that a month-end's small panel makes a large share of the whole.

    The roll rate's months are sorted before its trailing average sums their rates: a
    group-by emits its groups in an order that hangs on polars' hashing state, which any
    earlier polars work in the process shifts, and the sum's last bit followed it."""
    frames = pl.collect_all(
        [
            vintage_table(lazy, (t.vintage.dpd,), as_of),
            fpd_table(lazy, t.fpd.seasoning_months),
            stock_total(lazy, as_of),
        ]
    )
    return _Measures(*frames)


def _months_back(month_end: date, months: int) -> date:
    """The first day of the month `months` before `month_end`'s month."""
    index = month_end.year * 12 + month_end.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def _month_number(day: date) -> int:
    return day.year * 12 + day.month - 1


def _loans(frame: pl.DataFrame) -> tuple[tuple[int, ...], int]:
    ids = frame.get_column("loan_id").unique().sort()
    return tuple(int(i) for i in ids.head(MAX_LOAN_IDS)), ids.len()


def _cohort_loans(lazy: pl.LazyFrame, cohort: date, event: pl.Expr) -> pl.DataFrame:
    """The loans of `cohort` (observed from origination) with a row where `event` holds."""
    rows = lazy.filter(pl.col("origination_month") == cohort)
    starts = rows.filter(pl.col("months_on_book") == 0).select("loan_id")
    return (
        rows.filter(event)
        .select("loan_id")
        .unique()
        .join(starts, on="loan_id", how="semi")
        .collect()
    )


def _ratio_alert(
    metric: Metric, rate: float, earlier: list[float], levels: Levels, **context: Any
) -> Alert | None:
    baseline = sum(earlier) / len(earlier)  # in period order: the last bit depends on the order
    if baseline <= 0:
        return None
    ratio = rate / baseline
    hit = levels.breach(ratio)
    if hit is None:
        return None
    detail = {"rate": rate, "trailing_average": baseline, "trailing_periods": float(len(earlier))}
    return Alert(metric, hit[0], ratio, hit[1], detail=detail, **context)


def _vintage(
    lazy: pl.LazyFrame, as_of: date, t: VintageThresholds, table: pl.DataFrame
) -> list[Alert]:
    cohort = _months_back(as_of, t.months_on_book)
    name = measure_name(t.dpd)
    at_mob = table.filter(
        (pl.col("months_on_book") == t.months_on_book) & (pl.col("loans") >= t.min_cohort_loans)
    ).sort("origination_month")
    current = at_mob.filter(pl.col("origination_month") == cohort)
    earlier = at_mob.filter(pl.col("origination_month") < cohort).tail(t.trailing_cohorts)
    if current.is_empty() or earlier.height < t.trailing_cohorts:
        return []
    rate = float(current[f"{name}_rate"][0])
    event = (pl.col("months_on_book") <= t.months_on_book) & (
        (pl.col("dpd") >= t.dpd) | (pl.col("state") == State.CHARGED_OFF.value)
    )
    return _with_loans(
        _ratio_alert(
            Metric.VINTAGE_MOB3, rate, earlier[f"{name}_rate"].to_list(), t.ratio,
            period=as_of, cohorts=(cohort,),
        ),
        lazy, cohort, event,
    )  # fmt: skip


def _with_loans(
    alert: Alert | None, lazy: pl.LazyFrame, cohort: date, event: pl.Expr
) -> list[Alert]:
    if alert is None:
        return []
    ids, count = _loans(_cohort_loans(lazy, cohort, event))
    return [replace(alert, loan_ids=ids, loan_count=count)]


def _fpd(lazy: pl.LazyFrame, as_of: date, t: FpdThresholds, table: pl.DataFrame) -> list[Alert]:
    cohort = _months_back(as_of, t.seasoning_months)
    usable = table.filter(
        (pl.col("loans") >= t.min_cohort_loans) & pl.col("fpd_rate").is_not_null()
    ).sort("origination_month")
    current = usable.filter(pl.col("origination_month") == cohort)
    if current.is_empty():
        return []
    rate = float(current["fpd_rate"][0])
    event = pl.col("first_payment_default")
    context: dict[str, Any] = {"period": as_of, "cohorts": (cohort,)}
    alerts: list[Alert] = []
    hit = t.rate.breach(rate)
    if hit is not None:
        level = Alert(Metric.FPD_RATE, hit[0], rate, hit[1], **context)
        alerts += _with_loans(level, lazy, cohort, event)
    earlier = usable.filter(pl.col("origination_month") < cohort).tail(t.trailing_cohorts)
    if earlier.height == t.trailing_cohorts:
        relative = _ratio_alert(
            Metric.FPD_VS_TRAILING, rate, earlier["fpd_rate"].to_list(), t.ratio, **context
        )
        alerts += _with_loans(relative, lazy, cohort, event)
    return alerts


def _roll_m1_m2(lazy: pl.LazyFrame, as_of: date, t: RollThresholds) -> list[Alert]:
    """Loans in M1 at month-end m−1 that are M2 at m, for m = as_of and the months before."""
    now = _month_number(as_of)
    rows = lazy.select(
        "loan_id", "origination_month", month_index("month_end").alias("month"), "state"
    ).filter(pl.col("month") >= now - t.trailing_months - 1)
    starts = rows.filter(pl.col("state") == State.M1.value).select(
        "loan_id", (pl.col("month") + 1).alias("month")
    )
    pairs = starts.join(rows, on=["loan_id", "month"], how="inner").with_columns(
        (pl.col("state") == State.M2.value).alias("rolled")
    )
    per_month = (
        pairs.group_by("month")
        .agg(pl.len().alias("loans"), pl.col("rolled").sum().alias("rolled"))
        .filter(pl.col("loans") >= max(t.min_loans, 1))
        .with_columns((pl.col("rolled") / pl.col("loans")).alias("rate"))
        .sort("month")  # a group_by's come in no fixed order, and the baseline's sum is ordered
        .collect()
    )
    current = per_month.filter(pl.col("month") == now)
    earlier = per_month.filter(pl.col("month") < now)
    if current.is_empty() or earlier.height < t.trailing_months:
        return []
    alert = _ratio_alert(
        Metric.ROLL_M1_M2, float(current["rate"][0]), earlier["rate"].to_list(), t.ratio,
        period=as_of,
    )  # fmt: skip
    if alert is None:
        return []
    rolled = pairs.filter((pl.col("month") == now) & pl.col("rolled")).collect()
    ids, count = _loans(rolled)
    cohorts = tuple(sorted(set(rolled["origination_month"].to_list())))
    return [replace(alert, cohorts=cohorts, loan_ids=ids, loan_count=count)]


def _npl(lazy: pl.LazyFrame, as_of: date, levels: Levels, total: pl.DataFrame) -> list[Alert]:
    ratio = total["npl_ratio"][0]
    if ratio is None:
        return []
    hit = levels.breach(float(ratio))
    if hit is None:
        return []
    npl = lazy.filter(
        (pl.col("month_end") == as_of)
        & pl.col("state").is_in(BUCKETS)
        & pl.col("risk_class").is_in(NON_PERFORMING)
    ).collect()
    ids, count = _loans(npl)
    cohorts = tuple(sorted(set(npl["origination_month"].to_list())))
    return [Alert(Metric.NPL_RATIO, hit[0], float(ratio), hit[1], as_of, cohorts, ids, count)]


def _headroom(headroom: Mapping[str, float], as_of: date, levels: Levels) -> list[Alert]:
    alerts = []
    for partner in sorted(headroom):
        value = headroom[partner]
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ValidationError(
                f"must be a number, got {value!r}", field=f"partner_headroom.{partner}"
            )
        hit = levels.breach(float(value))
        if hit is not None:
            alerts.append(
                Alert(Metric.PARTNER_HEADROOM, hit[0], float(value), hit[1], as_of, subject=partner)
            )
    return alerts


def _approval_jump(
    approvals: Mapping[date, float], as_of: date, t: ApprovalThresholds
) -> list[Alert]:
    by_month: dict[int, float] = {}
    for month, value in approvals.items():
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ValidationError(f"must be a number, got {value!r}", field=f"approvals.{month}")
        by_month[_month_number(month)] = float(value)
    now = _month_number(as_of)
    earlier = [by_month.get(now - k) for k in range(1, t.trailing_months + 1)]
    current = by_month.get(now)
    if current is None or any(v is None for v in earlier):
        return []
    baseline = sum(v for v in earlier if v is not None) / t.trailing_months
    jump = current - baseline
    hit = t.jump.breach(jump)
    if hit is None:
        return []
    detail = {
        "rate": current,
        "trailing_average": baseline,
        "trailing_periods": float(t.trailing_months),
    }
    return [Alert(Metric.APPROVAL_JUMP, hit[0], jump, hit[1], as_of, detail=detail)]

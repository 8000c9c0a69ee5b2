"""Scenarios as data: what a simulated market does differently from the baseline.

A scenario is a TOML file (built-ins live in `simulation/scenarios/`). Every table and key is
optional except `name`; anything not given keeps the baseline value. Unknown keys, wrong types
and out-of-range values are refused with a `ValidationError` whose field names the key
(`demand.base_rate`, `caps[0].apr_max`), so a typo never silently runs the baseline.

    name = "tighter-caps"
    description = "..."
    [demand]        base_rate, repeat_rate, approval_elasticity, price_elasticity
    [policy]        max_pd, limit_scale, affordability_share, margin, lgd  (the lender's policy)
    [behaviour]     miss_scale, cure_rate, prepay_rate, late_share
    [[caps]]        from_month, apr_max, amount_max              (a rule-pack override)
    [[income_shocks]] from_month, change, tiers                   (−0.15 = incomes fall 15%)
    [[gold]]        month, change                                 (the gold price moves)
    [clampdown]     npl_threshold, apr_max, amount_max, max_pd   (the regulator's feedback loop)
    [collections]   enabled, contact_lift, answer_rate, promise_rate, promise_keep, promise_days

Months count from 1 (the run's first month). Pure: no I/O beyond reading the file's text.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from lendstack.core.errors import NotFound, ValidationError


@dataclass(frozen=True, slots=True)
class Demand:
    """Monthly application propensity and how it answers the market (see docs/simulation.md)."""

    base_rate: float = 0.06
    """P(a borrower without a loan with us applies in a month) at the reference market."""
    repeat_rate: float = 0.015
    """The same for a borrower who already has an active loan (multi-borrowing)."""
    approval_elasticity: float = 0.5
    """Demand ∝ (last month's approval rate / 0.5) ** this: easy credit draws applicants."""
    price_elasticity: float = 1.0
    """Demand ∝ (0.18 / last month's mean APR) ** this: dear credit puts them off."""


@dataclass(frozen=True, slots=True)
class PolicyOverride:
    """Overrides of the lender's credit policy (policies/default.toml); None keeps it."""

    max_pd: Decimal | None = None
    limit_scale: Decimal = Decimal(1)
    """Every limit on the PD curve times this (a looser or tighter limit curve)."""
    affordability_share: Decimal | None = None
    margin: Decimal | None = None
    """The pricing margin (policy default 3%): a lender chasing volume prices thinner."""
    lgd: Decimal | None = None
    """The loss-given-default assumed in pricing (policy default 85%): an optimistic lender
    assumes less, so riskier applicants fit under the APR cap."""


@dataclass(frozen=True, slots=True)
class Behaviour:
    """Repayment behaviour knobs over the latent default model."""

    miss_scale: float = 4.0
    """Multiplies the odds of entering default at a due date. 4.0 calibrates the baseline's
    90+ DPD into REGULATION.md §10's 1.5–3.5% (the latent PD alone is the screened training
    population's 12-month bad rate, about 2% on the approved book; see docs/simulation.md)."""
    cure_rate: float = 0.15
    """P(a borrower in arrears pays everything) at each 30-day mark."""
    prepay_rate: float = 0.015
    """P(a borrower pays the loan off early) at a due date."""
    late_share: float = 0.04
    """P(a good borrower pays a few days late) at a due date (cures before 30 DPD)."""


@dataclass(frozen=True, slots=True)
class Collections:
    """Collections in the loop (`simulation.collections_loop`): the real queue, plan and contact
    log at each month-end, and how borrowers answer them. The rates are stated assumptions."""

    enabled: bool = True
    """On: every scenario is collected under the collection rules; the shipped
    `no-collections` scenario turns it off, to show what collections buy (docs/simulation.md)."""
    contact_lift: float = 2.0
    """Cure probability at a 30-day mark × this when collections reached the borrower in the
    last 31 days (an answered call or a delivered SMS / push)."""
    answer_rate: float = 0.35
    """P(a debtor answers one collection call attempt)."""
    delivery_rate: float = 0.97
    """P(an SMS or app push is delivered)."""
    promise_rate: float = 0.4
    """P(a debtor who answers a call promises to pay what is overdue)."""
    promise_keep: float = 0.5
    """P(a promise is kept: the borrower pays everything owed on the promise's date)."""
    promise_days: int = 7
    """Days from the contact to the promise's date."""


@dataclass(frozen=True, slots=True)
class Caps:
    """A regulatory tightening: rules added to the rule pack from the start of a month."""

    from_month: int
    apr_max: Decimal | None = None
    amount_max: int | None = None


@dataclass(frozen=True, slots=True)
class IncomeShock:
    """Incomes in the affected city tiers change by `change` from the start of a month."""

    from_month: int
    change: float
    tiers: tuple[int, ...] = (1, 2, 3, 4)


@dataclass(frozen=True, slots=True)
class GoldMove:
    """The gold price changes by `change` (a fraction) in `month`."""

    month: int
    change: float


@dataclass(frozen=True, slots=True)
class Clampdown:
    """Once the month-end NPL ratio reaches `npl_threshold`, caps apply from the next month."""

    npl_threshold: float
    apr_max: Decimal | None = None
    amount_max: int | None = None
    max_pd: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str = ""
    demand: Demand = field(default_factory=Demand)
    policy: PolicyOverride = field(default_factory=PolicyOverride)
    behaviour: Behaviour = field(default_factory=Behaviour)
    caps: tuple[Caps, ...] = ()
    income_shocks: tuple[IncomeShock, ...] = ()
    gold: tuple[GoldMove, ...] = ()
    clampdown: Clampdown | None = None
    source: str = "<builtin>"
    collections: Collections = field(default_factory=Collections)

    def income_factor(self, month: int, tier: int) -> float:
        """Income multiplier in `month` for a borrower in city `tier` (shocks compound)."""
        factor = 1.0
        for shock in self.income_shocks:
            if month >= shock.from_month and tier in shock.tiers:
                factor *= 1.0 + shock.change
        return factor

    def gold_index(self, month: int) -> float:
        """Gold price in `month` relative to the start (1.0)."""
        index = 1.0
        for move in self.gold:
            if month >= move.month:
                index *= 1.0 + move.change
        return index


# --- parsing --------------------------------------------------------------------------------

_TOP = {"name", "description", "demand", "policy", "behaviour", "caps", "income_shocks", "gold",
        "clampdown", "collections"}  # fmt: skip


def _unknown(table: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ValidationError(
            f"unknown key {extra[0]!r} (allowed: {', '.join(sorted(allowed))})",
            field=f"{prefix}{extra[0]}",
        )


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValidationError("must be a table", field=key)
    return value


def _float(table: Mapping[str, Any], key: str, where: str, lo: float, hi: float) -> float | None:
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"must be a number, not {value!r}", field=f"{where}{key}")
    if not lo <= float(value) <= hi:
        raise ValidationError(f"must be in [{lo}, {hi}], not {value}", field=f"{where}{key}")
    return float(value)


def _decimal(table: Mapping[str, Any], key: str, where: str, lo: str, hi: str) -> Decimal | None:
    if key not in table:
        return None
    value = table[key]
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValidationError(f"must be a number, not {value!r}", field=f"{where}{key}") from None
    if not Decimal(lo) <= number <= Decimal(hi):
        raise ValidationError(f"must be in [{lo}, {hi}], not {value}", field=f"{where}{key}")
    return number


def _int(table: Mapping[str, Any], key: str, where: str, lo: int, hi: int) -> int | None:
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"must be a whole number, not {value!r}", field=f"{where}{key}")
    if not lo <= value <= hi:
        raise ValidationError(f"must be in [{lo}, {hi}], not {value}", field=f"{where}{key}")
    return value


def _required(value: Any, key: str) -> Any:
    if value is None:
        raise ValidationError("is required", field=key)
    return value


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _demand(data: Mapping[str, Any]) -> Demand:
    t, w = _table(data, "demand"), "demand."
    _unknown(t, set(Demand.__dataclass_fields__), w)
    return Demand(**_given(
        base_rate=_float(t, "base_rate", w, 0.0, 1.0),
        repeat_rate=_float(t, "repeat_rate", w, 0.0, 1.0),
        approval_elasticity=_float(t, "approval_elasticity", w, 0.0, 5.0),
        price_elasticity=_float(t, "price_elasticity", w, 0.0, 5.0),
    ))  # fmt: skip


def _policy(data: Mapping[str, Any]) -> PolicyOverride:
    t, w = _table(data, "policy"), "policy."
    _unknown(t, set(PolicyOverride.__dataclass_fields__), w)
    return PolicyOverride(**_given(
        max_pd=_decimal(t, "max_pd", w, "0.001", "1"),
        limit_scale=_decimal(t, "limit_scale", w, "0.1", "10"),
        affordability_share=_decimal(t, "affordability_share", w, "0.01", "1"),
        margin=_decimal(t, "margin", w, "0", "0.2"),
        lgd=_decimal(t, "lgd", w, "0.01", "1"),
    ))  # fmt: skip


def _behaviour(data: Mapping[str, Any]) -> Behaviour:
    t, w = _table(data, "behaviour"), "behaviour."
    _unknown(t, set(Behaviour.__dataclass_fields__), w)
    return Behaviour(**_given(
        miss_scale=_float(t, "miss_scale", w, 0.0, 20.0),
        cure_rate=_float(t, "cure_rate", w, 0.0, 1.0),
        prepay_rate=_float(t, "prepay_rate", w, 0.0, 1.0),
        late_share=_float(t, "late_share", w, 0.0, 1.0),
    ))  # fmt: skip


def _array(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValidationError(f"must be an array of tables ([[{key}]])", field=key)
    return value


def _caps(data: Mapping[str, Any]) -> tuple[Caps, ...]:
    out = []
    for i, t in enumerate(_array(data, "caps")):
        w = f"caps[{i}]."
        _unknown(t, set(Caps.__dataclass_fields__), w)
        cap = Caps(
            _required(_int(t, "from_month", w, 1, 600), f"{w}from_month"),
            _decimal(t, "apr_max", w, "0.01", "0.36"),
            _int(t, "amount_max", w, 100, 10_000_000),
        )
        if cap.apr_max is None and cap.amount_max is None:
            raise ValidationError("needs apr_max or amount_max", field=f"{w}apr_max")
        out.append(cap)
    return tuple(out)


def _shocks(data: Mapping[str, Any]) -> tuple[IncomeShock, ...]:
    out = []
    for i, t in enumerate(_array(data, "income_shocks")):
        w = f"income_shocks[{i}]."
        _unknown(t, set(IncomeShock.__dataclass_fields__), w)
        tiers = t.get("tiers", [1, 2, 3, 4])
        if not isinstance(tiers, list) or not tiers or any(x not in (1, 2, 3, 4) for x in tiers):
            raise ValidationError("must be a non-empty list of city tiers 1-4", field=f"{w}tiers")
        out.append(IncomeShock(
            _required(_int(t, "from_month", w, 1, 600), f"{w}from_month"),
            _required(_float(t, "change", w, -0.9, 1.0), f"{w}change"),
            tuple(sorted(set(tiers))),
        ))  # fmt: skip
    return tuple(out)


def _gold(data: Mapping[str, Any]) -> tuple[GoldMove, ...]:
    out = []
    for i, t in enumerate(_array(data, "gold")):
        w = f"gold[{i}]."
        _unknown(t, set(GoldMove.__dataclass_fields__), w)
        out.append(GoldMove(
            _required(_int(t, "month", w, 1, 600), f"{w}month"),
            _required(_float(t, "change", w, -0.9, 5.0), f"{w}change"),
        ))  # fmt: skip
    return tuple(out)


def _clampdown(data: Mapping[str, Any]) -> Clampdown | None:
    if "clampdown" not in data:
        return None
    t, w = _table(data, "clampdown"), "clampdown."
    _unknown(t, set(Clampdown.__dataclass_fields__), w)
    clamp = Clampdown(
        _required(_float(t, "npl_threshold", w, 0.0, 1.0), f"{w}npl_threshold"),
        _decimal(t, "apr_max", w, "0.01", "0.36"),
        _int(t, "amount_max", w, 100, 10_000_000),
        _decimal(t, "max_pd", w, "0.001", "1"),
    )
    if clamp.apr_max is None and clamp.amount_max is None and clamp.max_pd is None:
        raise ValidationError("needs apr_max, amount_max or max_pd", field=f"{w}apr_max")
    return clamp


def _collections(data: Mapping[str, Any]) -> Collections:
    t, w = _table(data, "collections"), "collections."
    _unknown(t, set(Collections.__dataclass_fields__), w)
    enabled = t.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValidationError(f"must be true or false, not {enabled!r}", field=f"{w}enabled")
    return Collections(enabled, **_given(
        contact_lift=_float(t, "contact_lift", w, 1.0, 10.0),
        answer_rate=_float(t, "answer_rate", w, 0.0, 1.0),
        delivery_rate=_float(t, "delivery_rate", w, 0.0, 1.0),
        promise_rate=_float(t, "promise_rate", w, 0.0, 1.0),
        promise_keep=_float(t, "promise_keep", w, 0.0, 1.0),
        promise_days=_int(t, "promise_days", w, 1, 28),
    ))  # fmt: skip


def parse_scenario(text: str, source: str = "<text>") -> Scenario:
    """Validate a scenario's TOML text completely; errors name the field and the source."""
    try:
        data = tomllib.loads(text)
        _unknown(data, _TOP, "")
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("is required (a non-empty string)", field="name")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise ValidationError("must be a string", field="description")
        return Scenario(
            name.strip(), description, _demand(data), _policy(data), _behaviour(data),
            _caps(data), _shocks(data), _gold(data), _clampdown(data), source,
            _collections(data),
        )  # fmt: skip
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{source}: not valid TOML: {exc}", field="scenario") from None
    except ValidationError as exc:
        raise ValidationError(f"{source}: {exc.message}", field=exc.field) from None


def builtin_names() -> tuple[str, ...]:
    folder = resources.files("lendstack.simulation") / "scenarios"
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml")))


def load_scenario(ref: str | Path) -> Scenario:
    """A built-in scenario by name ("gold-crash") or any scenario file by path."""
    text_ref = str(ref)
    if isinstance(ref, Path) or text_ref.endswith(".toml") or "/" in text_ref:
        path = Path(ref)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise NotFound(
                f"cannot read scenario file {path}: {exc.strerror}", field="scenario"
            ) from None
        return parse_scenario(text, path.name)
    if text_ref not in builtin_names():
        known = ", ".join(builtin_names())
        raise NotFound(f"unknown scenario {text_ref!r}; built-in: {known}", field="scenario")
    folder = resources.files("lendstack.simulation") / "scenarios"
    return parse_scenario((folder / f"{text_ref}.toml").read_text(encoding="utf-8"), text_ref)

"""Model drift, performance and fairness in production, read from the decision log and book.

Three questions a model-risk team and a supervisor ask of a credit model in force:
- has the population moved? PSI of the score and of every feature, recent applications
  against the training baseline saved with the model (`scoring.monitor.drift`);
- does it still rank and is it calibrated? AUC, Brier and PD-decile calibration on matured
  loans (booked from a logged decision, outcome observable over `horizon_months`), beside the
  model's development figures (its metadata and out-of-fold predictions);
- is it fair? approval and default rates by gender, age band and province with bootstrap CIs
  and the adverse-impact ratio (`scoring.fairness.observed_fairness`).

Applications are read back through the PII vault (as replay does) only to rebuild the model
row and derive gender and age band; no name, resident ID or mobile leaves this module. With
no PII key available, features and the two PII-derived groups are reported as unavailable
and the score PSI uses the PDs recorded in the log.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, and_, case, func, select

from lendstack.core.errors import ValidationError
from lendstack.scoring import CreditModel, load_model, load_oof
from lendstack.scoring.fairness import observed_fairness
from lendstack.scoring.metrics import auc, brier, ece
from lendstack.scoring.monitor import Stability, band, drift, psi
from lendstack.settings import Settings
from lendstack.storage.schema import decision_log, loan_month_ends, loan_profiles, loans
from lendstack.underwriting.application import Application
from lendstack.underwriting.decision import GRANTED
from lendstack.underwriting.features import FeatureMap, default_model_dir
from lendstack.underwriting.identity import age_on, gender_of
from lendstack.underwriting.pii import PiiVault

DEFAULT_HORIZON_MONTHS = 12
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 42
BAD_DPD = 90
AGE_BANDS = ((18, 24), (25, 34), (35, 44), (45, 54), (55, 200))
UNKNOWN = "unknown"
_CHUNK = 500
_DECILES = 10


@dataclass(frozen=True, slots=True)
class Monitored:
    """One logged application as monitoring sees it: no PII, only what the tables need."""

    decision_id: str
    granted: bool
    recorded_pd: float | None
    row: np.ndarray | None
    """The model's encoded row; None without the PII key."""
    gender: str
    age_band: str
    province: str


def age_band(age: int) -> str:
    for low, high in AGE_BANDS:
        if low <= age <= high:
            return f"{low}+" if high >= 200 else f"{low}-{high}"
    return f"<{AGE_BANDS[0][0]}"


@lru_cache(maxsize=4)
def _model(path: Path) -> tuple[CreditModel, FeatureMap, dict[str, Any]]:
    meta = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
    return load_model(path), FeatureMap.load(path), meta


def monitoring_tables(
    engine: Engine,
    start: date,
    end: date,
    *,
    settings: Settings | None = None,
    model_dir: Path | None = None,
    horizon_months: int = DEFAULT_HORIZON_MONTHS,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, list[dict[str, object]]]:
    """The four monitoring tables for applications decided in [start, end].

    Keys: "score_psi", "feature_psi", "performance", "fairness"; rows hold plain JSON values
    (NaN becomes None). Performance uses loans disbursed at least `horizon_months` before
    `end`. Deterministic for a given `seed`.
    """
    if end < start:
        raise ValidationError(f"end {end} is before start {start}", field="end")
    if horizon_months < 1:
        raise ValidationError("must be at least 1", field="horizon_months")
    settings = settings or Settings.from_env()
    path = (model_dir or settings.model_dir or default_model_dir()).resolve()
    try:
        model, fmap, meta = _model(path)
    except (OSError, KeyError, ValueError) as exc:
        raise ValidationError(f"cannot load the model in {path}: {exc}", field="model") from exc
    vault = PiiVault.for_reading(settings)
    apps = list(_monitored(_window_records(engine, start, end), model, fmap, vault))
    matured = _matured(engine, end, horizon_months)
    matured_apps = {
        a.decision_id: a
        for a in _monitored(_records_by_id(engine, list(matured)), model, fmap, vault)
    }
    score_rows, feature_rows = _psi_tables(apps, model)
    return _clean(
        {
            "score_psi": score_rows,
            "feature_psi": feature_rows,
            "performance": _performance(matured, path, meta, horizon_months),
            "fairness": _fairness(apps, matured, matured_apps, resamples, seed),
        }
    )


# --- reading ------------------------------------------------------------------------------


def _window_records(engine: Engine, start: date, end: date) -> Iterator[tuple[str, str, str]]:
    """(decision_id, final outcome, record JSON) per decision in the window; a review's
    outcome replaces the engine's (a referral resolved to an approval grants credit)."""
    query = (
        select(
            decision_log.c.decision_id,
            decision_log.c.kind,
            decision_log.c.outcome,
            decision_log.c.record_json,
        )
        .where(decision_log.c.application_date.between(start, end))
        .order_by(decision_log.c.seq)
    )
    records: dict[str, str] = {}
    outcomes: dict[str, str] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            outcomes[row.decision_id] = row.outcome
            if row.kind == "decision":
                records[row.decision_id] = row.record_json
    for did, text in records.items():
        yield did, outcomes[did], text


def _records_by_id(engine: Engine, ids: list[str]) -> Iterator[tuple[str, str, str]]:
    for i in range(0, len(ids), _CHUNK):
        query = select(
            decision_log.c.decision_id, decision_log.c.outcome, decision_log.c.record_json
        ).where(
            decision_log.c.decision_id.in_(ids[i : i + _CHUNK]), decision_log.c.kind == "decision"
        )
        with engine.connect() as conn:
            yield from ((r.decision_id, r.outcome, r.record_json) for r in conn.execute(query))


def _monitored(
    records: Iterable[tuple[str, str, str]],
    model: CreditModel,
    fmap: FeatureMap,
    vault: PiiVault | None,
) -> Iterator[Monitored]:
    for did, outcome, text in records:
        record = json.loads(text)
        sealed = record["application"]
        score = record["decision"].get("score")
        recorded = None if score is None else float(score["pd"])
        province = str(sealed.get("applicant", {}).get("province", UNKNOWN))
        granted = outcome in GRANTED
        if vault is None:
            yield Monitored(did, granted, recorded, None, UNKNOWN, UNKNOWN, province)
            continue
        app = Application.model_validate(vault.reveal(sealed, did))
        rid = app.applicant.resident_id
        row = model.spec.encode_row(fmap.row(app))
        band_ = age_band(age_on(rid, app.application_date))
        yield Monitored(did, granted, recorded, row, gender_of(rid), band_, province)


def _matured(engine: Engine, end: date, horizon: int) -> dict[str, tuple[float, int]]:
    """decision id -> (PD at origination, 1 if 90+ DPD or charged off within `horizon` months).

    A loan counts once it is observable: bad inside the horizon, or seen at (or paid off
    before) months on book = horizon. Month-ends after `end` are ignored.
    """
    me = loan_month_ends.c
    within = and_(me.months_on_book <= horizon, me.month_end <= end)
    bad = func.max(case((and_(within, (me.dpd >= BAD_DPD) | (me.state == "CO")), 1), else_=0))
    seen = func.max(case((me.month_end <= end, me.months_on_book), else_=-1))
    paid = func.max(case((and_(me.month_end <= end, me.state == "PO"), 1), else_=0))
    query = (
        select(loan_profiles.c.decision_id, loan_profiles.c.pd_origination, bad, seen, paid)
        .join(loans, loans.c.id == loan_profiles.c.loan_id)
        .join(loan_month_ends, me.loan_id == loan_profiles.c.loan_id)
        .where(
            loan_profiles.c.decision_id.is_not(None), loan_profiles.c.pd_origination.is_not(None)
        )
        .where(loans.c.disbursement_date <= end)
        .group_by(loan_profiles.c.decision_id, loan_profiles.c.pd_origination)
    )
    out: dict[str, tuple[float, int]] = {}
    with engine.connect() as conn:
        for did, pd_, is_bad, mob, paid_off in conn.execute(query):
            if is_bad or paid_off or mob >= horizon:
                out[did] = (float(pd_), int(is_bad))
    return out


# --- tables -------------------------------------------------------------------------------


def _psi_tables(
    apps: list[Monitored], model: CreditModel
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = [a.row for a in apps if a.row is not None]
    if rows and len(rows) == len(apps):
        X = np.vstack(rows)
        drifted = drift(model.profile, model.spec, X, model.champion.pd(X))
        score, features = drifted[0], drifted[1:]
        score_row = _psi_row("score (PD)", score.psi, score.stability, len(apps), "model")
        return [score_row], [
            _psi_row(r.name, r.psi, r.stability, len(apps), "model") for r in features
        ]
    recorded = np.array([a.recorded_pd for a in apps if a.recorded_pd is not None])
    if recorded.size == 0:
        return [], []
    base = model.profile["score"]
    value = psi(base["shares"], _shares(recorded, base["edges"]))
    return [_psi_row("score (PD)", value, band(value), recorded.size, "recorded")], []


def _shares(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Bin shares on the baseline's edges, as `scoring.monitor` bins (no missing values)."""
    out = np.zeros(len(edges) + 2)
    np.add.at(out, np.searchsorted(np.asarray(edges), values, side="left"), 1.0)
    return out / max(values.size, 1)


def _psi_row(name: str, value: float, stab: Stability, n: int, source: str) -> dict[str, Any]:
    return {"name": name, "psi": value, "band": stab.value, "applications": n, "pd_source": source}


def _development(path: Path, meta: dict[str, Any]) -> tuple[dict[str, float], np.ndarray]:
    champion = meta.get("cv_metrics", {}).get("models", {}).get("champion", {})
    try:
        oof = load_oof(path)
    except OSError:
        oof = np.empty((0, 2))
    return {k: float(v) for k, v in champion.items() if isinstance(v, int | float)}, oof


def _performance(
    matured: dict[str, tuple[float, int]], path: Path, meta: dict[str, Any], horizon: int
) -> list[dict[str, Any]]:
    dev, oof = _development(path, meta)
    dev_y, dev_p = (oof[:, 0], oof[:, 1]) if oof.size else (np.empty(0), np.empty(0))
    pairs = np.array(list(matured.values()), dtype=float).reshape(-1, 2)
    p, y = pairs[:, 0], pairs[:, 1]
    both = y.size > 0 and 0 < y.sum() < y.size
    n = int(y.size)
    summary = {
        "auc": (auc(y, p) if both else math.nan, dev.get("auc", math.nan)),
        "brier": (brier(y, p) if n else math.nan, dev.get("brier", math.nan)),
        "ece": (ece(y, p) if n else math.nan, dev.get("ece", math.nan)),
        "mean_pd": (_mean(p), _mean(dev_p)),
        "default_rate": (_mean(y), _mean(dev_y)),
        "observed_to_expected": (_ratio(y, p), _ratio(dev_y, dev_p)),
    }
    rows = [
        _perf_row("summary", name, obs, devv, n, horizon) for name, (obs, devv) in summary.items()
    ]
    return rows + _deciles(p, y, horizon)


def _deciles(p: np.ndarray, y: np.ndarray, horizon: int) -> list[dict[str, Any]]:
    """Calibration by PD decile: observed default rate against mean PD (the expectation)."""
    if p.size == 0:
        return []
    order = np.argsort(p, kind="stable")
    rows = []
    for k, chunk in enumerate(np.array_split(order, min(_DECILES, len(order))), start=1):
        if chunk.size:
            rows.append(
                _perf_row(
                    "decile",
                    f"pd_decile_{k}",
                    _mean(y[chunk]),
                    _mean(p[chunk]),
                    chunk.size,
                    horizon,
                )
            )
    return rows


def _perf_row(
    kind: str, metric: str, observed: float, reference: float, n: int, horizon: int
) -> dict[str, Any]:
    """`reference` is the development figure (summary) or the mean PD (decile)."""
    return {
        "kind": kind,
        "metric": metric,
        "observed": observed,
        "reference": reference,
        "difference": observed - reference,
        "loans": n,
        "horizon_months": horizon,
    }


def _mean(v: np.ndarray) -> float:
    return float(np.mean(v)) if v.size else math.nan


def _ratio(y: np.ndarray, p: np.ndarray) -> float:
    return float(y.sum() / p.sum()) if p.size and p.sum() > 0 else math.nan


def _fairness(
    apps: list[Monitored],
    matured: dict[str, tuple[float, int]],
    matured_apps: dict[str, Monitored],
    resamples: int,
    seed: int,
) -> list[dict[str, Any]]:
    approved = np.array([a.granted for a in apps], dtype=bool)
    loans_ = [(matured_apps[d], bad) for d, (_, bad) in matured.items() if d in matured_apps]
    defaulted = np.array([bad for _, bad in loans_], dtype=float)
    out: list[dict[str, Any]] = []
    for attribute in ("gender", "age_band", "province"):
        groups = np.array([getattr(a, attribute) for a in apps], dtype=object)
        loan_groups = np.array([getattr(m, attribute) for m, _ in loans_], dtype=object)
        if groups.size == 0 and loan_groups.size == 0:
            continue
        rows = observed_fairness(
            attribute, groups, approved, loan_groups, defaulted, resamples, seed
        )
        out.extend(asdict(r) for r in rows)
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


__all__ = ["age_band", "monitoring_tables"]

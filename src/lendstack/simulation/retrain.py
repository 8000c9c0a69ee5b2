"""Monthly model retraining and score drift (`lendstack simulate --retrain`).

At each month-end the hook:

1. measures the **drift** of the score distribution: the PSI (`scoring.monitor.psi`) of this
   month's applicants' PD at decision against last month's, on last month's deciles;
2. once enough loans have **matured** (booked at least `maturity_months` before the
   month-end; "bad" = ever 90+ DPD or charged off at a month-end, as in loans.parquet), splits
   them by a hash of the loan id into training (70%) and held-out (30%) loans. Each loan's row
   is its application as decided (the generated application, dated and showing that month's
   income) mapped by the model's own feature map, exactly as at decision time;
3. **retrains** the credit model with the project's trainer (`scoring.train.train_model`, the
   `lendstack model train` pipeline, seeded by the run's seed) into
   `<run>/models/month-MM` (the training table beside it, as `training-month-MM.csv`);
4. reports the held-out **AUC** of the new model, of the champion (the model the engine is
   using, rescored on the same rows) and of the latent PD (the best any model could do);
5. **switches** the engine to the new model when it beats the champion on the held-out
   loans: the run's `ServiceSpec.settings.model_dir` points at it and the service is rebuilt,
   so later decisions record the new model's sha256 and `lendstack decisions replay --model
   <run>/models/month-MM` replays them.

A month without enough matured loans or bads records why and trains nothing. The model
metadata's timestamp is the month-end, so the same seed gives the same model files.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, text

from lendstack.core.dates import add_months
from lendstack.scoring.champion import PipelineConfig
from lendstack.scoring.monitor import band, psi
from lendstack.scoring.train import TrainRequest, train_model
from lendstack.simulation.behaviour import uniform
from lendstack.simulation.metrics import MonthMetrics
from lendstack.underwriting.application import Application
from lendstack.underwriting.features import FEATURE_MAP_FILE, FeatureMap, default_model_dir
from lendstack.underwriting.outcomes import auc
from lendstack.wiring import load_credit_model, model_sha256

TARGET = "defaulted"
HOLDOUT_SHARE = 0.3
PSI_BINS = 10
MATURITY_MONTHS = 6
"""A loan counts as matured once it was booked at least this many months before the month-end."""
PROMOTE_MARGIN = 0.0
"""The engine switches when the new model's held-out AUC beats the champion's by more than this."""
MIN_ROWS = 200
MIN_BADS = 20
"""Matured loans and bads needed before a month retrains (read at each month-end)."""

_MATURED_SQL = (
    "SELECT l.id, p.decision_id, COALESCE(b.bad, 0) FROM loans l"
    " JOIN loan_profiles p ON p.loan_id = l.id"
    " LEFT JOIN (SELECT loan_id, MAX(CASE WHEN dpd >= 90 OR state = 'CO' THEN 1 ELSE 0 END)"
    " AS bad FROM loan_month_ends GROUP BY loan_id) b ON b.loan_id = l.id"
    " WHERE l.disbursement_date <= :cut ORDER BY l.id"
)


def score_psi(previous: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """PSI of `current` against `previous` on the deciles of `previous` (both non-empty)."""
    edges = np.unique(np.quantile(previous, np.linspace(0, 1, bins + 1)[1:-1]))

    def shares(values: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
        return counts / max(len(values), 1)

    return psi(shares(previous), shares(current))


@dataclass
class Retrainer:
    """`MonthEndHook` for `RunConfig.retrain`; `run` is the runner's `_Run` (its tables,
    population, spec and service)."""

    run: Any
    _rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    _by_id: dict[str, int] = field(default_factory=dict)
    _previous: np.ndarray | None = None

    def __call__(self, engine: Engine, month_end: date, metrics: MonthMetrics) -> None:
        record: dict[str, Any] = {"model_sha256": self._sha(), "retrained": False}
        record.update(self._drift(metrics.month))
        record.update(self._retrain(engine, month_end, metrics))
        metrics.model = record

    # -- drift ------------------------------------------------------------------------------

    def _drift(self, month: int) -> dict[str, Any]:
        pds = np.asarray(
            [
                float(d["pd"])
                for d in self.run.tables.decisions
                if d["month"] == month and d["pd"] is not None
            ],
            dtype=float,
        )
        out: dict[str, Any] = {"score_mean": round(float(pds.mean()), 6) if pds.size else None}
        previous, self._previous = self._previous, pds if pds.size else self._previous
        if previous is None or not pds.size:
            return {**out, "score_psi": None, "psi_band": None}
        value = score_psi(previous, pds)
        return {**out, "score_psi": round(value, 6), "psi_band": band(value).value}

    # -- retraining -------------------------------------------------------------------------

    def _retrain(self, engine: Engine, month_end: date, metrics: MonthMetrics) -> dict[str, Any]:
        cut = add_months(month_end.replace(day=1), 1 - MATURITY_MONTHS) - timedelta(days=1)
        with engine.connect() as conn:
            matured = conn.execute(text(_MATURED_SQL), {"cut": cut}).all()
        bads = sum(int(b) for _, _, b in matured)
        out: dict[str, Any] = {"matured_loans": len(matured), "matured_bads": bads}
        if len(matured) < MIN_ROWS or bads < MIN_BADS:
            return {**out, "reason": f"needs {MIN_ROWS} matured loans and {MIN_BADS} bads"}
        seed = self.run.cfg.seed
        held = [uniform(seed, int(i), "holdout") < HOLDOUT_SHARE for i, _, _ in matured]
        fmap = self._feature_map()
        rows = [self._row(str(d), fmap) for _, d, _ in matured]
        y = np.asarray([int(b) for _, _, b in matured], dtype=int)
        train = [i for i, h in enumerate(held) if not h]
        test = [i for i, h in enumerate(held) if h]
        if y[train].sum() < MIN_BADS // 2 or y[test].sum() < 2 or y[test].sum() == len(test):
            return {**out, "reason": "too few bads on one side of the split"}
        folder = self.run.out / "models"
        folder.mkdir(exist_ok=True)
        name = f"month-{metrics.month:02d}"
        data = folder / f"training-{name}.csv"
        labels = folder / "labels.json"
        _write_csv(data, [rows[i] for i in train], y[train])
        labels.write_text(json.dumps(fmap.labels(), indent=1) + "\n", encoding="utf-8")
        model_dir = folder / name
        stamp = datetime(month_end.year, month_end.month, month_end.day, tzinfo=UTC)
        request = TrainRequest(
            data, TARGET, model_dir, labels=labels, overwrite=True,
            config=PipelineConfig(seed=seed, n_jobs=1),
        )  # fmt: skip
        train_model(request, now=lambda: stamp)
        shutil.copyfile(self._model_dir() / FEATURE_MAP_FILE, model_dir / FEATURE_MAP_FILE)
        new = _aucs(model_dir, [rows[i] for i in test], y[test])
        champion = _aucs(self._model_dir(), [rows[i] for i in test], y[test])
        latent = self.run.population.outcomes.latent_pd
        borrowers = [self._borrower(str(matured[i][1])) for i in test]
        latent_auc = float(auc(y[test].astype(bool), np.asarray(latent[borrowers], dtype=float)))
        switched = new > champion + PROMOTE_MARGIN
        if switched:
            self._switch(model_dir)
        return {
            **out,
            "retrained": True,
            "model_dir": f"models/{name}",
            "train_loans": len(train),
            "train_bads": int(y[train].sum()),
            "holdout_loans": len(test),
            "holdout_bads": int(y[test].sum()),
            "new_auc": round(new, 4),
            "champion_auc": round(champion, 4),
            "latent_auc": round(latent_auc, 4),
            "switched": switched,
            "new_model_sha256": model_sha256(model_dir),
        }

    def _model_dir(self) -> Path:
        current: Path | None = self.run.spec.settings.model_dir
        return current or default_model_dir()

    def _sha(self) -> str:
        return model_sha256(self._model_dir().resolve())

    def _feature_map(self) -> FeatureMap:
        return FeatureMap.load(self._model_dir() / FEATURE_MAP_FILE)

    def _switch(self, model_dir: Path) -> None:
        """Point the engine at `model_dir`: later decisions record its sha256."""
        run = self.run
        run.spec = replace(run.spec, settings=replace(run.spec.settings, model_dir=model_dir))
        run._service()

    def _index(self) -> dict[str, int]:
        decisions = self.run.tables.decisions
        if len(self._by_id) != len(decisions):
            self._by_id = {str(d["decision_id"]): i for i, d in enumerate(decisions)}
        return self._by_id

    def _borrower(self, decision_id: str) -> int:
        return int(self.run.tables.decisions[self._index()[decision_id]]["borrower"])

    def _row(self, decision_id: str, fmap: FeatureMap) -> dict[str, Any]:
        """The model row of the application as it was decided (cached per decision)."""
        cached = self._rows.get(decision_id)
        if cached is not None:
            return cached
        i = self._index()[decision_id]
        decided = self.run.tables.applications[i]
        raw = self.run.rendered[int(decided["borrower"])]
        applicant = {**raw["applicant"], "monthly_income": decided["monthly_income"]}
        app = {**raw, "applicant": applicant, "application_date": decided["application_date"]}
        row = dict(fmap.row(Application.model_validate(app)))
        self._rows[decision_id] = row
        return row


def _write_csv(path: Path, rows: list[dict[str, Any]], y: np.ndarray) -> None:
    """Floats written with repr (as `lendstack applicants generate` does)."""
    names = list(rows[0])
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*names, TARGET])
        writer.writerows([*(r[n] for n in names), int(t)] for r, t in zip(rows, y, strict=True))


def _aucs(model_dir: Path, rows: list[dict[str, Any]], y: np.ndarray) -> float:
    """The model's AUC on `rows` (encoded with the model's own feature spec)."""
    model = load_credit_model(model_dir).model
    X = np.vstack([model.spec.encode_row(r) for r in rows])
    return float(auc(y.astype(bool), model.score_matrix(X).pd))

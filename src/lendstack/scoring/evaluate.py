"""Honest evaluation: stratified K-fold cross-validation of the whole default pipeline.

Each outer training fold gets its own feature spec, binning, models, blend and calibration,
so nothing learned ever sees the fold it is scored on. The scorecard and logistic baselines
are the champion's own components from the same fold, fitted on the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import delayed
from sklearn.model_selection import StratifiedKFold

from lendstack.core.errors import ValidationError
from lendstack.scoring.champion import PipelineConfig, Progress, assemble, inner_tasks, run_tasks
from lendstack.scoring.features import infer_spec
from lendstack.scoring.metrics import Metric, Summary, compute_metrics, sigmoid, summarise

MODELS = ("champion", "scorecard", "logistic")


@dataclass(frozen=True, slots=True)
class Evaluation:
    rows: int
    positive_rate: float
    folds: int
    seed: int
    summaries: dict[str, dict[Metric, Summary]]
    oof_pd: np.ndarray

    def to_json(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "positive_rate": self.positive_rate,
            "folds": self.folds,
            "seed": self.seed,
            "models": {
                name: {m.value: {"mean": s.mean, "std": s.std} for m, s in metrics.items()}
                for name, metrics in self.summaries.items()
            },
        }


def evaluate_pipeline(
    frame: pd.DataFrame,
    y: np.ndarray,
    target: str,
    config: PipelineConfig,
    folds: int = 5,
    exclude: Sequence[str] = (),
    protected: Sequence[str] = (),
    progress: Progress | None = None,
) -> Evaluation:
    """Cross-validate champion, scorecard and logistic; `y` is 1 for default."""
    minority = int(min(y.sum(), len(y) - y.sum()))
    if folds < 2 or minority < folds:
        raise ValidationError(
            f"{folds} folds need at least {folds} rows of each class (smallest has {minority})",
            field="folds",
        )
    step = progress or (lambda _msg: None)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=config.seed)
    prepared = []
    for tr, te in splitter.split(np.zeros(len(y)), y):
        spec = infer_spec(frame.iloc[tr], target, exclude, protected)
        prepared.append((tr, te, spec, spec.encode_frame(frame.iloc[tr])))
    # One pool for every fold's inner fits, then one for every fold's final fits: no core
    # idles while a single fold finishes.
    tasks = [inner_tasks(X, y[tr], spec, config) for tr, _, spec, X in prepared]
    flat = run_tasks([t for group in tasks for t in group], config.n_jobs, step, "fit")
    results, at = [], 0
    for group in tasks:
        results.append(flat[at : at + len(group)])
        at += len(group)
    champions = run_tasks(
        [
            delayed(assemble)(X, y[tr], spec, config, res)
            for (tr, _, spec, X), res in zip(prepared, results, strict=True)
        ],
        config.n_jobs,
        step,
        "final",
    )
    return _score_folds(frame, y, prepared, champions, folds, config.seed)


def _score_folds(
    frame: pd.DataFrame,
    y: np.ndarray,
    prepared: list[Any],
    champions: list[Any],
    folds: int,
    seed: int,
) -> Evaluation:
    per_fold: dict[str, list[dict[Metric, float]]] = {m: [] for m in MODELS}
    oof = np.zeros(len(y))
    for (_, te, spec, _), champion in zip(prepared, champions, strict=True):
        Z = champion.component_logits(spec.encode_frame(frame.iloc[te]))
        oof[te] = champion.blend.pd(Z)
        per_fold["champion"].append(compute_metrics(y[te], oof[te]))
        per_fold["scorecard"].append(compute_metrics(y[te], sigmoid(Z[:, 1])))
        per_fold["logistic"].append(compute_metrics(y[te], sigmoid(Z[:, 2])))
    summaries = {name: summarise(per_fold[name]) for name in MODELS}
    return Evaluation(len(y), float(y.mean()), folds, seed, summaries, oof)

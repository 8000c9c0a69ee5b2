"""Honest evaluation: stratified K-fold cross-validation of the whole default pipeline.

Each outer training fold gets its own feature spec, binning, models, blend and calibration,
so nothing learned ever sees the fold it is scored on. The scorecard and logistic baselines
are the champion's own components from the same fold, fitted on the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from lendstack.core.errors import ValidationError
from lendstack.scoring.champion import PipelineConfig, Progress, fit_champion
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
    splitter = StratifiedKFold(folds, shuffle=True, random_state=config.seed)
    per_fold: dict[str, list[dict[Metric, float]]] = {m: [] for m in MODELS}
    oof = np.zeros(len(y))
    for k, (tr, te) in enumerate(splitter.split(np.zeros(len(y)), y)):
        spec = infer_spec(frame.iloc[tr], target, exclude, protected)
        X_train, X_test = spec.encode_frame(frame.iloc[tr]), spec.encode_frame(frame.iloc[te])
        champion = fit_champion(X_train, y[tr], spec, config)
        Z = champion.component_logits(X_test)
        oof[te] = champion.blend.pd(Z)
        per_fold["champion"].append(compute_metrics(y[te], oof[te]))
        per_fold["scorecard"].append(compute_metrics(y[te], sigmoid(Z[:, 1])))
        per_fold["logistic"].append(compute_metrics(y[te], sigmoid(Z[:, 2])))
        if progress:
            progress(f"fold {k + 1}/{folds}")
    summaries = {name: summarise(per_fold[name]) for name in MODELS}
    return Evaluation(len(y), float(y.mean()), folds, config.seed, summaries, oof)

"""The train use case: table in, verified model directory out.

All input checks (readable file, target column, two classes, positive label) happen before
anything is written, and the directory is written atomically, so bad input leaves nothing.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from lendstack.core.errors import ValidationError
from lendstack.scoring.artifacts import check_out, save_model
from lendstack.scoring.champion import (
    Champion,
    PipelineConfig,
    Progress,
    fit_champion,
    inner_metrics,
    scored_rows,
)
from lendstack.scoring.data import encode_target, file_sha256, load_table
from lendstack.scoring.explain import population_reference
from lendstack.scoring.fairness import GroupRow, fairness_table, group_labels
from lendstack.scoring.features import FeatureSpec, infer_spec
from lendstack.scoring.model import CreditModel
from lendstack.scoring.modelcard import render_model_card
from lendstack.scoring.monitor import build_profile, card_bin_shares

BACKGROUND_ROWS = 2_000
_LIBRARIES = ("lendstack", "lightgbm", "optbinning", "scikit-learn", "numpy", "pandas", "scipy")


@dataclass(frozen=True, slots=True)
class TrainRequest:
    data: Path
    target: str
    out: Path
    positive: str | None = None
    exclude: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    labels: Path | None = None
    cutoff: float | None = None
    overwrite: bool = False
    config: PipelineConfig = field(default_factory=PipelineConfig)


def read_labels(path: Path | None) -> Mapping[str, Any]:
    """Optional JSON file of human texts for reason codes: {"PAY_0": {"label": ..., "unit": ...}}."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"cannot read labels file {path}: {exc}", field="labels") from exc
    if not isinstance(data, dict):
        raise ValidationError("labels file must hold a JSON object", field="labels")
    return data


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found


def background_reference(champion: Champion, X: np.ndarray, seed: int) -> np.ndarray:
    """Population-mean reference from a seeded background sample of the training rows."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(X), size=min(len(X), BACKGROUND_ROWS), replace=False)
    return population_reference(champion.contributions(X[np.sort(rows)]))


def _fairness(
    frame: Any, spec: FeatureSpec, pd_: np.ndarray, y: np.ndarray, cutoff: float, seed: int
) -> tuple[GroupRow, ...]:
    rows: list[GroupRow] = []
    for col in spec.protected:
        rows.extend(fairness_table(col, group_labels(frame[col]), pd_, y, cutoff, seed=seed))
    return tuple(rows)


def train_model(
    request: TrainRequest,
    progress: Progress | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CreditModel:
    """Train, describe and save a model; returns it as loaded in memory."""
    check_out(Path(request.out), request.overwrite)
    frame = load_table(request.data)
    target = encode_target(frame, request.target, request.positive)
    spec = infer_spec(
        frame, request.target, request.exclude, request.protected, read_labels(request.labels)
    )
    X, y, seed = spec.encode_frame(frame), target.y, request.config.seed
    champion = fit_champion(X, y, spec, request.config, progress)
    rows = scored_rows(champion)
    oof_pd = champion.blend.pd(champion.inner_oof[rows])
    cutoff = float(y.mean()) if request.cutoff is None else request.cutoff
    profile = build_profile(spec, X, champion.pd(X))
    profile["scorecard_bins"] = card_bin_shares(champion.scorecard, X, spec)
    profile["cutoff"] = cutoff
    model = CreditModel(
        champion=champion,
        reference=background_reference(champion, X, seed),
        metadata=_metadata(request, frame.shape, target, champion, y, cutoff, now),
        profile=profile,
        fairness=_fairness(frame.iloc[rows], spec, oof_pd, y[rows], cutoff, seed),
    )
    save_model(
        model,
        request.out,
        render_model_card(model),
        np.column_stack([y[rows], oof_pd]),
        request.overwrite,
    )
    if progress:
        progress("saved")
    return model


def _metadata(
    request: TrainRequest,
    shape: tuple[int, int],
    target: Any,
    champion: Champion,
    y: np.ndarray,
    cutoff: float,
    now: Callable[[], datetime],
) -> dict[str, Any]:
    metrics = inner_metrics(champion, y)
    config = request.config
    return {
        "created_at": now().isoformat(timespec="seconds"),
        "data": {
            "file": Path(request.data).name,
            "sha256": file_sha256(Path(request.data)),
            "rows": shape[0],
            "columns": shape[1],
        },
        "target": {
            "column": target.column,
            "positive_label": target.positive_label,
            "positive_rate": float(y.mean()),
            "positives": int(y.sum()),
        },
        "seed": config.seed,
        "cutoff_pd": cutoff,
        "scaling": {
            "base_points": config.scaling.base_points,
            "base_odds": config.scaling.base_odds,
            "pdo": config.scaling.pdo,
        },
        "pipeline": {
            "inner_folds": config.inner_folds,
            "out_of_fold_rows": len(scored_rows(champion)),
            "gbm_rounds": champion.gbm_rounds,
            "blend_weights": dict(
                zip(("lightgbm", "scorecard", "logistic"), champion.blend.weights, strict=True)
            ),
            "calibration": champion.blend.calibrator.method.value,
        },
        "cv_metrics": {
            "kind": "inner out-of-fold (the blend row is mildly optimistic: its weights were "
            "chosen on these rows; `lendstack model evaluate` gives the honest figure)",
            "models": {k: {m.value: v for m, v in d.items()} for k, d in metrics.items()},
        },
        "libraries": versions(),
    }

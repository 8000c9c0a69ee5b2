"""Small use cases behind the CLI: JSON shapes for explain, monitor and evaluation fairness."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from lendstack.scoring.evaluate import Evaluation
from lendstack.scoring.fairness import fairness_table, group_labels
from lendstack.scoring.model import CreditModel, RowScore
from lendstack.scoring.monitor import characteristic_analysis, drift


def row_score_to_json(result: RowScore) -> dict[str, Any]:
    return {
        "pd": result.pd,
        "points": result.points,
        "scorecard_points": result.scorecard_points,
        "reasons": [asdict(r) for r in result.reasons],
        "scorecard_reasons": [asdict(r) for r in result.scorecard_reasons],
    }


def monitor_model(model: CreditModel, frame: pd.DataFrame) -> dict[str, Any]:
    """PSI rows (score first) and the characteristic analysis of the current population."""
    X = model.spec.encode_frame(frame)
    pd_ = model.champion.pd(X)
    rows = drift(model.profile, model.spec, X, pd_)
    chars = characteristic_analysis(
        model.champion.scorecard, model.profile["scorecard_bins"], X, model.spec
    )
    shift: dict[str, float] = {}
    for c in chars:
        shift[c.feature] = shift.get(c.feature, 0.0) + c.shift
    return {
        "rows": len(frame),
        "psi": [{"name": r.name, "psi": r.psi, "band": r.stability.value} for r in rows],
        "characteristic_shift": shift,
        "characteristics": [
            {
                "feature": c.feature,
                "bin": c.bin,
                "points": c.points,
                "expected": c.expected,
                "actual": c.actual,
                "shift": c.shift,
            }
            for c in chars
        ],
    }


def evaluation_fairness(
    frame: pd.DataFrame,
    protected: Sequence[str],
    result: Evaluation,
    y: np.ndarray,
    cutoff: float | None,
) -> list[dict[str, Any]]:
    """Fairness on the pooled out-of-fold PDs of an evaluation run."""
    level = float(y.mean()) if cutoff is None else cutoff
    rows = []
    for col in protected:
        rows.extend(fairness_table(col, group_labels(frame[col]), result.oof_pd, y, level))
    return [asdict(r) | {"cutoff": level} for r in rows]

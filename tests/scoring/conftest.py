"""Shared fixtures: a synthetic credit table whose true risk drivers are known, and a model
trained on it once per test session (per xdist worker)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lendstack.scoring import CreditModel, PipelineConfig, TrainRequest, train_model

REPO = Path(__file__).resolve().parents[2]
TAIWAN = REPO / "examples" / "data" / "taiwan_credit_default.csv"
GERMAN = REPO / "examples" / "data" / "german_credit.csv"


def synthetic_frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Risk rises with `utilisation` and `late_payments`, falls with `income`; `region` B is
    riskier; `noise` carries nothing. Includes an id, a constant and an empty column."""
    rng = np.random.default_rng(seed)
    utilisation = rng.uniform(0, 1, n)
    late = rng.poisson(0.8, n).astype(float)
    income = rng.lognormal(8, 0.5, n)
    region = rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2])
    noise = rng.normal(size=n)
    z = -2.0 + 2.5 * utilisation + 0.7 * late - 0.8 * (np.log(income) - 8) + 0.8 * (region == "B")
    y = rng.uniform(size=n) < 1 / (1 + np.exp(-z))
    income[rng.uniform(size=n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "loan_id": np.arange(100_000, 100_000 + n),
            "utilisation": utilisation,
            "late_payments": late,
            "income": income,
            "region": region,
            "noise": noise,
            "gender": rng.choice(["f", "m"], n),
            "product": "card",
            "empty": np.nan,
            "defaulted": y.astype(int),
        }
    )


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "loans.csv"
    synthetic_frame().to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def trained(
    tmp_path_factory: pytest.TempPathFactory, synthetic_csv: Path
) -> tuple[Path, CreditModel]:
    out = tmp_path_factory.mktemp("models") / "m1"
    request = TrainRequest(
        synthetic_csv,
        "defaulted",
        out,
        protected=("gender",),
        config=PipelineConfig(seed=7, inner_folds=3, n_jobs=1),
    )
    return out, train_model(request)

"""The shipped default credit model: verified, self-describing, sane on the example."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lendstack.core.errors import ValidationError
from lendstack.scoring import (
    FeatureKind,
    PipelineConfig,
    TrainRequest,
    load_model,
    train_model,
    verify,
)
from lendstack.underwriting.application import Application
from lendstack.underwriting.features import (
    FeatureMap,
    default_feature_map_path,
    default_model_dir,
)
from lendstack.underwriting.outcomes import auc
from lendstack.underwriting.population import PopulationConfig, generate_population

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "application.json"
LATENT_AUC_SEED_7 = 0.8817
"""Latent-model AUC of `applicants generate --n 20000 --seed 7`, the training population."""


def _kinds(model: object) -> list[tuple[str, bool]]:
    return [(f.name, f.kind is FeatureKind.CATEGORICAL) for f in model.spec.features]  # type: ignore[attr-defined]


def test_default_model_loads_verifies_and_scores_the_example() -> None:
    root = default_model_dir()
    verify(root)
    model = load_model(root)
    fmap = FeatureMap.load(root)
    fmap.check_model(_kinds(model))
    assert model.spec.names == fmap.names
    app = Application.model_validate(json.loads(EXAMPLE.read_text(encoding="utf-8")))
    result = model.score_row(fmap.row(app))
    assert result.pd < 0.05
    assert all(r.text.split(" ", 1)[1][0].isupper() for r in result.reasons)


def test_default_model_is_small_and_carries_its_feature_map() -> None:
    root = default_model_dir()
    assert sum(p.stat().st_size for p in root.iterdir()) < 2_000_000
    shipped = (root / "feature_map.toml").read_text(encoding="utf-8")
    assert shipped == default_feature_map_path().read_text(encoding="utf-8")


def test_default_model_sits_below_the_latent_ceiling() -> None:
    metrics = load_model(default_model_dir()).metadata["cv_metrics"]["models"]["champion"]
    assert 0.6 < metrics["auc"] < LATENT_AUC_SEED_7


def test_a_risky_applicant_scores_worse() -> None:
    root = default_model_dir()
    model, fmap = load_model(root), FeatureMap.load(root)
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["bureau"] |= {"inquiries_3m": 6, "inquiries_6m": 9, "inquiries_12m": 14,
                       "active_lenders": 7, "worst_dpd_24m": 45, "unsecured_balance": "90000.00"}  # fmt: skip
    data["applicant"]["monthly_income"] = "4000.00"
    risky = model.score_row(fmap.row(Application.model_validate(data)))
    safe = model.score_row(fmap.row(Application.model_validate_json(EXAMPLE.read_text())))
    assert risky.pd > 5 * safe.pd


def test_mismatched_map_is_refused(tmp_path: Path) -> None:
    model = load_model(default_model_dir())
    fmap = FeatureMap.load(default_feature_map_path())
    kinds = _kinds(model)
    with pytest.raises(ValidationError, match="not in the feature map"):
        fmap.check_model([*kinds, ("shoe_size", False)])
    with pytest.raises(ValidationError, match="kind differs"):
        fmap.check_model([(kinds[0][0], not kinds[0][1])])


def test_trained_model_beats_chance_but_not_the_latent_pd(tmp_path: Path) -> None:
    """Train on one population, score a fresh one: latent AUC > model AUC > 0.6."""
    fmap = FeatureMap.load(default_feature_map_path())
    train_pop = generate_population(PopulationConfig(seed=21, n=6_000))
    test_pop = generate_population(PopulationConfig(seed=22, n=6_000))
    table = tmp_path / "train.csv"
    _write(table, fmap, train_pop)
    request = TrainRequest(
        table, "defaulted", tmp_path / "m", config=PipelineConfig(seed=1, inner_folds=2)
    )
    model = train_model(request)
    apps = [Application.model_validate(a) for a in test_pop.applications()]
    pds = np.array([model.score_row(r, reasons=False).pd for r in fmap.rows(apps)])
    y = test_pop.outcomes.defaulted
    model_auc, latent_auc = auc(y, pds), test_pop.outcomes.latent_auc
    assert 0.6 < model_auc < latent_auc


def _write(path: Path, fmap: FeatureMap, population: object) -> None:
    import pandas as pd

    apps = [Application.model_validate(a) for a in population.applications()]  # type: ignore[attr-defined]
    frame = pd.DataFrame(fmap.columns(apps))
    frame["defaulted"] = population.outcomes.defaulted.astype(int)  # type: ignore[attr-defined]
    frame.to_csv(path, index=False)

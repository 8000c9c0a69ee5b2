"""The compiled scorecard must agree with optbinning's own scoring, which it replaces."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lendstack.scoring import Scaling, infer_spec
from lendstack.scoring.scorecard import ScorecardFitter, scorecard_from_dict, scorecard_to_dict
from lendstack.scoring.scorecard import _frame_for_optbinning as optbinning_frame

from .conftest import synthetic_frame


@pytest.fixture(scope="module")
def fitted() -> tuple:
    frame = synthetic_frame(1500, seed=3)
    spec = infer_spec(frame, "defaulted")
    X = spec.encode_frame(frame)
    y = frame["defaulted"].to_numpy(float)
    fitter = ScorecardFitter(Scaling())
    card = fitter.fit(X, y, spec)
    return spec, X, fitter, card


def test_compiled_logit_matches_optbinning(fitted: tuple) -> None:
    spec, X, fitter, card = fitted
    library = fitter.scorecard_.predict_proba(optbinning_frame(X, spec))[:, 1]
    mine = 1 / (1 + np.exp(-card.logit(X)))
    np.testing.assert_allclose(mine, library, atol=1e-9)


def test_compiled_points_match_optbinning(fitted: tuple) -> None:
    spec, X, fitter, card = fitted
    library = fitter.scorecard_.score(optbinning_frame(X, spec))
    np.testing.assert_allclose(card.points(X).sum(axis=1), library, atol=1e-6)


def test_single_row_lookup_matches_batch(fitted: tuple) -> None:
    _, X, _, card = fitted
    batch = card.points(X[:50])
    for i in range(50):
        singles = {j: pts for j, pts, _ in card.row_points(X[i])}
        for j, pts in singles.items():
            assert pts == pytest.approx(batch[i, j], abs=1e-12)


def test_points_scale_is_600_at_50_to_1_and_20_to_double() -> None:
    scale = Scaling()
    pd_at_50_to_1 = np.array([1 / 51])
    assert scale.points_from_pd(pd_at_50_to_1)[0] == pytest.approx(600.0)
    pd_at_100_to_1 = np.array([1 / 101])
    assert scale.points_from_pd(pd_at_100_to_1)[0] == pytest.approx(620.0)
    assert Scaling(500, 20, 40).points_from_pd(np.array([1 / 21]))[0] == pytest.approx(500.0)


def test_card_points_are_the_pd_on_the_points_scale(fitted: tuple) -> None:
    _, X, _, card = fitted
    pd_ = 1 / (1 + np.exp(-card.logit(X)))
    np.testing.assert_allclose(
        card.points(X).sum(axis=1), card.scaling.points_from_pd(pd_), atol=1e-6
    )


def test_json_round_trip_scores_identically(fitted: tuple) -> None:
    _, X, _, card = fitted
    again = scorecard_from_dict(scorecard_to_dict(card))
    np.testing.assert_array_equal(again.points(X), card.points(X))
    assert all(math.isfinite(v) for ch in again.characteristics for v in ch.woe)

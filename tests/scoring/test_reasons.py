"""Reason codes: exact additivity, direction, stability, and batch/single-row agreement."""

from __future__ import annotations

import numpy as np
import pytest

from lendstack.scoring import CreditModel
from lendstack.scoring.explain import centre, population_reference, top_adverse

from .conftest import synthetic_frame


@pytest.fixture(scope="module")
def scored(trained: tuple) -> tuple[CreditModel, np.ndarray]:
    _, model = trained
    frame = synthetic_frame(800, seed=11)
    return model, model.spec.encode_frame(frame)


def test_contributions_sum_to_raw_score(scored: tuple) -> None:
    model, X = scored
    contributions = model.explain_matrix(X)
    np.testing.assert_allclose(contributions.sum(axis=1), model.champion.raw(X), atol=1e-6)


def test_treeshap_part_sums_to_booster_margin(scored: tuple) -> None:
    model, X = scored
    booster = model.champion.booster
    contrib = booster.predict(X, pred_contrib=True)
    np.testing.assert_allclose(contrib.sum(axis=1), booster.predict(X, raw_score=True), atol=1e-6)


def test_adverse_reasons_push_toward_default(scored: tuple) -> None:
    """Removing a reason's contribution (moving that feature to the reference) lowers the
    blended log-odds, for every listed reason of every row."""
    model, X = scored
    impacts = model.explain_matrix(X)
    raw = model.champion.raw(X)
    # The contributions are an exact decomposition of the log-odds, so taking one out is
    # the log-odds without that feature's push: only then does the check below mean much.
    np.testing.assert_allclose(impacts.sum(axis=1), raw, atol=1e-6)
    for i, reasons in enumerate(model.reasons_matrix(X)):
        for r in reasons:
            j = model.spec.names.index(r.feature)
            assert impacts[i, j] > 0
            assert raw[i] - impacts[i, j] < raw[i]


def test_known_risk_driver_is_named_for_high_values_only(scored: tuple) -> None:
    model, X = scored
    j = model.spec.names.index("utilisation")
    reasons = model.reasons_matrix(X)
    high = [i for i in range(len(X)) if X[i, j] > 0.9]
    low = [i for i in range(len(X)) if X[i, j] < 0.1]
    named_high = np.mean([any(r.feature == "utilisation" for r in reasons[i]) for i in high])
    named_low = np.mean([any(r.feature == "utilisation" for r in reasons[i]) for i in low])
    assert named_high > 0.8
    assert named_low < 0.05


def test_noise_feature_matters_far_less_than_true_drivers(scored: tuple) -> None:
    model, X = scored
    impact = np.abs(model.explain_matrix(X)[:, :-1]).mean(axis=0)
    names = model.spec.names
    noise = impact[names.index("noise")]
    for driver in ("utilisation", "late_payments", "income"):
        assert impact[names.index(driver)] > 3 * noise, driver
    first = [r[0].feature for r in model.reasons_matrix(X) if r]
    assert first.count("noise") / len(first) < 0.10


def test_reasons_are_stable_under_a_change_of_background(trained: tuple) -> None:
    _, model = trained
    X = model.spec.encode_frame(synthetic_frame(4000, seed=21))
    contrib = model.champion.contributions(X)
    ref_a = population_reference(contrib[:2000])
    ref_b = population_reference(contrib[2000:])
    a = centre(contrib[2000:], ref_a)
    b = centre(contrib[2000:], ref_b)
    first_same = sets_same = 0
    for i in range(2000):
        top_a = top_adverse(model.spec, X[2000 + i], a[i])
        top_b = top_adverse(model.spec, X[2000 + i], b[i])
        first_same += [r.code for r in top_a[:1]] == [r.code for r in top_b[:1]]
        sets_same += {r.code for r in top_a} == {r.code for r in top_b}
    # The reference moves by sampling noise only, far less than a typical reason's impact.
    assert np.max(np.abs(ref_a - ref_b)) < 0.05
    assert first_same / 2000 > 0.95
    assert sets_same / 2000 > 0.90


def test_single_row_path_matches_batch(trained: tuple) -> None:
    _, model = trained
    frame = synthetic_frame(200, seed=5)
    X = model.spec.encode_frame(frame)
    batch = model.score_matrix(X)
    batch_reasons = model.reasons_matrix(X)
    for i, row in enumerate(frame.drop(columns=["defaulted"]).to_dict("records")):
        one = model.score_row(row)
        assert one.pd == pytest.approx(batch.pd[i], abs=1e-9)
        assert one.points == pytest.approx(batch.points[i], abs=1e-6)
        assert one.scorecard_points == pytest.approx(batch.scorecard_points[i], abs=1e-6)
        assert [r.code for r in one.reasons] == [r.code for r in batch_reasons[i]]
        assert model.score_row(row, reasons=False).pd == pytest.approx(one.pd, abs=1e-12)


def test_scorecard_reasons_are_points_below_maximum(trained: tuple) -> None:
    _, model = trained
    row = {"utilisation": 0.99, "late_payments": 6, "income": 500.0, "region": "B", "noise": 0}
    result = model.score_row(row)
    card = {
        model.spec.features[ch.index].name: ch for ch in model.champion.scorecard.characteristics
    }
    x = model.spec.encode_row(row)
    for reason in result.scorecard_reasons:
        ch = card[reason.feature]
        expected = max(ch.points) - ch.points[ch.bin_of(float(x[ch.index]))]
        assert reason.impact == pytest.approx(expected)
        assert reason.impact > 0
    assert {r.feature for r in result.reasons} >= {"utilisation", "late_payments"}
    assert len(result.reasons) <= 4
    assert result.reasons[0].text.startswith(result.reasons[0].code + " ")

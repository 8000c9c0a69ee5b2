"""IFRS 9 staging: thresholds, cause codes, one stage per loan, config validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lendstack.core.errors import ValidationError
from lendstack.risk.staging import (
    CAUSES,
    Cause,
    Stage,
    StagingConfig,
    assign_stages,
    cause_labels,
    parse_staging,
)


def stage_one(dpd: int, defaulted: bool = False, pd0: float = 0.05, pd1: float = 0.05, **cfg):
    result = assign_stages(
        np.array([dpd]),
        np.array([defaulted]),
        np.array([pd0]),
        np.array([pd1]),
        StagingConfig(**cfg),
    )
    return int(result.stage[0]), cause_labels(int(result.causes[0]))


@pytest.mark.parametrize(
    ("dpd", "defaulted", "pd0", "pd1", "stage", "causes"),
    [
        (0, False, 0.05, 0.05, 1, ("S1",)),
        (30, False, 0.05, 0.05, 1, ("S1",)),  # "more than 30 days": 30 is still stage 1
        (31, False, 0.05, 0.05, 2, ("S2_DPD",)),
        (90, False, 0.05, 0.05, 2, ("S2_DPD",)),
        (91, False, 0.05, 0.05, 3, ("S3_DPD",)),  # stage 3 carries only stage-3 causes
        (0, True, 0.05, 0.05, 3, ("S3_DEFAULT",)),
        (120, True, 0.05, 0.05, 3, ("S3_DPD", "S3_DEFAULT")),
        (0, False, 0.05, 0.10, 2, ("S2_PD_RATIO",)),  # exactly 2x
        (0, False, 0.05, 0.0999, 1, ("S1",)),
        (45, False, 0.05, 0.20, 2, ("S2_DPD", "S2_PD_RATIO")),
        (0, False, 0.0, 0.0, 1, ("S1",)),  # 0 >= 2 x 0, but no rise: not a SICR
        (0, False, 0.0, 0.001, 2, ("S2_PD_RATIO",)),
    ],
)
def test_thresholds_and_causes(dpd, defaulted, pd0, pd1, stage, causes) -> None:
    assert stage_one(dpd, defaulted, pd0, pd1) == (stage, causes)


def test_thresholds_are_configurable() -> None:
    assert stage_one(30, sicr_dpd_over=29) == (2, ("S2_DPD",))
    assert stage_one(61, default_dpd_over=60) == (3, ("S3_DPD",))
    assert stage_one(0, pd0=0.05, pd1=0.12, pd_ratio=3.0) == (1, ("S1",))
    # an absolute floor keeps a tiny PD that doubled out of stage 2
    assert stage_one(0, pd0=0.001, pd1=0.003, pd_min_increase=0.005) == (1, ("S1",))
    assert stage_one(0, pd0=0.01, pd1=0.03, pd_min_increase=0.005) == (2, ("S2_PD_RATIO",))


def test_cause_stage_mapping() -> None:
    assert [c.stage for c in CAUSES] == [
        Stage.ONE, Stage.TWO, Stage.TWO, Stage.THREE, Stage.THREE, Stage.TWO,  # S2_FORBORNE
    ]  # fmt: skip


loans = st.integers(min_value=0, max_value=60)


@given(
    n=loans,
    data=st.data(),
    cfg=st.builds(
        StagingConfig,
        sicr_dpd_over=st.integers(0, 60),
        default_dpd_over=st.integers(61, 200),
        pd_ratio=st.floats(1.0, 5.0),
        pd_min_increase=st.floats(0.0, 0.05),
    ),
)
def test_every_loan_has_one_stage_and_its_own_causes(n, data, cfg) -> None:
    prob = hnp.arrays(np.float64, n, elements=st.floats(0.0, 1.0))
    dpd = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 400)))
    defaulted = data.draw(hnp.arrays(np.bool_, n))
    pd0, pd1 = data.draw(prob), data.draw(prob)
    result = assign_stages(dpd, defaulted, pd0, pd1, cfg)
    assert result.stage.dtype == np.uint8
    assert result.causes.dtype == np.uint8
    assert set(np.unique(result.stage)) <= {1, 2, 3}
    assert sum(result.counts().values()) == n
    for i in range(n):
        causes = [c for c in CAUSES if result.causes[i] & c]
        assert causes, "every loan carries at least one cause"
        assert {c.stage for c in causes} == {Stage(int(result.stage[i]))}
    # the triggers agree with the stage assignment
    assert np.all((result.stage == 3) == ((dpd > cfg.default_dpd_over) | defaulted))
    assert np.all(result.stage[dpd > cfg.sicr_dpd_over] >= 2)
    # more days past due never lowers the stage
    later = assign_stages(dpd + 31, defaulted, pd0, pd1, cfg)
    assert np.all(later.stage >= result.stage)


def test_counts_and_labels() -> None:
    result = assign_stages(
        np.array([0, 45, 100, 0]),
        np.array([False, False, False, True]),
        np.full(4, 0.02),
        np.array([0.02, 0.05, 0.02, 0.02]),
    )
    assert result.counts() == {Stage.ONE: 1, Stage.TWO: 1, Stage.THREE: 2}
    assert result.cause_counts()[Cause.S2_PD_RATIO] == 1
    assert result.labels(1) == ("S2_DPD", "S2_PD_RATIO")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sicr_dpd_over": -1}, "sicr_dpd_over"),
        ({"sicr_dpd_over": 90}, "sicr_dpd_over"),
        ({"default_dpd_over": 1.5}, "default_dpd_over"),
        ({"pd_ratio": 0.5}, "pd_ratio"),
        ({"pd_ratio": float("nan")}, "pd_ratio"),
        ({"pd_min_increase": 1.0}, "pd_min_increase"),
    ],
)
def test_config_validation_names_the_field(kwargs, field) -> None:
    with pytest.raises(ValidationError) as err:
        StagingConfig(**kwargs)
    assert err.value.field == field


def test_parse_staging_from_toml_table() -> None:
    cfg = parse_staging({"sicr_dpd_over": 29, "pd_ratio": 2.5})
    assert cfg == StagingConfig(sicr_dpd_over=29, pd_ratio=2.5)
    with pytest.raises(ValidationError) as err:
        parse_staging({"sicr_dpd": 30})
    assert err.value.field == "staging.sicr_dpd"
    with pytest.raises(ValidationError) as err:
        parse_staging({"sicr_dpd_over": 100})
    assert err.value.field == "staging.sicr_dpd_over"


@pytest.mark.parametrize(
    ("arrays", "field"),
    [
        ((np.array([-1]), np.array([False]), np.array([0.1]), np.array([0.1])), "dpd"),
        ((np.array([1.0]), np.array([False]), np.array([0.1]), np.array([0.1])), "dpd"),
        ((np.array([1]), np.array([False, True]), np.array([0.1]), np.array([0.1])), "defaulted"),
        ((np.array([1]), np.array([False]), np.array([1.1]), np.array([0.1])), "pd_origination"),
        ((np.array([1]), np.array([False]), np.array([0.1]), np.array([np.nan])), "pd_now"),
    ],
)
def test_bad_inputs_name_the_field(arrays, field) -> None:
    with pytest.raises(ValidationError) as err:
        assign_stages(*arrays)
    assert err.value.field == field

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from lendstack.scoring import FeatureKind, infer_spec
from lendstack.scoring.features import DropReason, spec_from_dict, spec_to_dict


def _frame() -> pd.DataFrame:
    n = 50
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "customer": [f"C{i:04d}" for i in range(n)],
            "row_no": np.arange(n) + 7,
            "amount": rng.uniform(100, 900, n),  # unique floats: a real feature, not an id
            "grade": rng.choice(["A", "B", "C"], n),
            "flag": rng.choice([True, False], n),
            "const": 3,
            "blank": np.nan,
            "y": rng.integers(0, 2, n),
        }
    )


def test_drops_are_reported_not_raised() -> None:
    spec = infer_spec(_frame(), "y", exclude=("flag",))
    dropped = {d.name: d.reason for d in spec.dropped}
    assert dropped == {
        "customer": DropReason.ID_LIKE,
        "row_no": DropReason.ID_LIKE,
        "const": DropReason.CONSTANT,
        "blank": DropReason.ALL_MISSING,
        "flag": DropReason.EXCLUDED,
    }
    assert spec.names == ("amount", "grade")
    assert spec.features[1].kind is FeatureKind.CATEGORICAL
    assert spec.features[1].categories == ("A", "B", "C")


def test_protected_columns_are_not_features() -> None:
    spec = infer_spec(_frame(), "y", protected=("grade",))
    assert "grade" not in spec.names
    assert spec.protected == ("grade",)


def test_unseen_and_missing_categories_encode_as_nan() -> None:
    spec = infer_spec(_frame(), "y")
    j = spec.names.index("grade")
    assert math.isnan(spec.encode_row({"grade": "Z"})[j])
    assert math.isnan(spec.encode_row({})[j])
    assert spec.encode_row({"grade": "B"})[j] == 1.0


def test_spec_json_round_trip() -> None:
    spec = infer_spec(_frame(), "y", labels={"amount": {"label": "Loan amount", "unit": "CNY"}})
    again = spec_from_dict(spec_to_dict(spec))
    assert again == spec
    assert again.features[0].label == "Loan amount"


@given(
    amount=st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
    grade=st.one_of(st.none(), st.sampled_from(["A", "B", "C", "Q"])),
    flag=st.booleans(),
)
def test_single_row_encoding_matches_table_encoding(
    amount: float | None, grade: str | None, flag: bool
) -> None:
    spec = infer_spec(_frame(), "y")
    row = {"amount": amount, "grade": grade, "flag": flag}
    from_row = spec.encode_row(row)
    from_frame = spec.encode_frame(pd.DataFrame([row]))[0]
    np.testing.assert_array_equal(from_row, from_frame)

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lendstack.core.errors import ValidationError
from lendstack.scoring import encode_target, load_table

FRAME = pd.DataFrame({"a": [1.5, 2.0, 3.0], "b": ["x", "y", "z"], "t": [0, 1, 0]})


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_delimited_text_is_sniffed(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "data.txt"
    FRAME.to_csv(path, sep=sep, index=False)
    got = load_table(path)
    assert list(got.columns) == ["a", "b", "t"]
    assert got["a"].tolist() == [1.5, 2.0, 3.0]


def test_parquet_excel_and_gzip(tmp_path: Path) -> None:
    FRAME.to_parquet(tmp_path / "d.parquet")
    FRAME.to_excel(tmp_path / "d.xlsx", index=False)
    FRAME.to_csv(tmp_path / "d.csv.gz", sep=";", index=False)
    for name in ("d.parquet", "d.xlsx", "d.csv.gz"):
        assert load_table(tmp_path / name)["b"].tolist() == ["x", "y", "z"], name


@pytest.mark.parametrize("content", [b"", b"   \n", b"a,b,c\n"])
def test_empty_files_are_rejected(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(ValidationError) as info:
        load_table(path)
    assert info.value.exit_code == 2


def test_unreadable_file_is_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"\x00\x01 definitely not parquet")
    with pytest.raises(ValidationError, match="cannot read"):
        load_table(path)


def test_zero_one_and_boolean_targets() -> None:
    assert encode_target(FRAME, "t").y.tolist() == [0, 1, 0]
    flags = pd.DataFrame({"t": [True, False, True]})
    assert encode_target(flags, "t").y.tolist() == [1, 0, 1]
    words = pd.DataFrame({"t": ["yes", "no", "no"]})
    assert encode_target(words, "t").y.tolist() == [1, 0, 0]


def test_two_labels_need_positive_and_use_it() -> None:
    frame = pd.DataFrame({"t": ["good", "bad", "good", "bad"]})
    with pytest.raises(ValidationError, match="--positive"):
        encode_target(frame, "t")
    assert encode_target(frame, "t", "bad").y.tolist() == [0, 1, 0, 1]


def test_three_values_without_positive_fail_and_with_positive_work() -> None:
    frame = pd.DataFrame({"t": ["paid", "late", "default", "paid"]})
    with pytest.raises(ValidationError, match="3 values"):
        encode_target(frame, "t")
    assert np.array_equal(encode_target(frame, "t", "default").y, [0, 0, 1, 0])


@pytest.mark.parametrize(
    ("frame", "column", "message"),
    [
        (pd.DataFrame({"t": [1, 1, 1]}), "t", "one class"),
        (pd.DataFrame({"t": [1, 0]}), "missing", "not found"),
        (pd.DataFrame({"t": [1.0, None, 0.0]}), "t", "missing values"),
        (pd.DataFrame({"t": ["a", "b"]}), "t", "--positive"),
    ],
)
def test_bad_targets(frame: pd.DataFrame, column: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        encode_target(frame, column)


def test_positive_must_be_a_label() -> None:
    with pytest.raises(ValidationError, match="not a value"):
        encode_target(pd.DataFrame({"t": ["a", "b"]}), "t", "c")

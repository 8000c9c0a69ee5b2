from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lendstack.core.errors import ValidationError
from lendstack.scoring import PipelineConfig, TrainRequest, load_model, train_model, verify

from .conftest import synthetic_frame

EXPECTED = {
    "lightgbm.txt",
    "scorecard.json",
    "logistic.json",
    "features.json",
    "pipeline.json",
    "profile.json",
    "metadata.json",
    "oof.npy",
    "MODEL_CARD.md",
    "manifest.json",
}


def test_directory_holds_plain_files_and_no_pickle(trained: tuple) -> None:
    out, _ = trained
    assert {p.name for p in out.iterdir()} == EXPECTED
    np.load(out / "oof.npy", allow_pickle=False)
    assert "tree" in (out / "lightgbm.txt").read_text()[:2000].lower()
    meta = json.loads((out / "metadata.json").read_text())
    assert len(meta["data"]["sha256"]) == 64
    assert {"lightgbm", "optbinning", "scikit-learn"} <= set(meta["libraries"])
    assert meta["seed"] == 7
    card = json.loads((out / "scorecard.json").read_text())
    assert {"bins", "woe", "points"} <= set(card["characteristics"][0])


def test_loaded_model_scores_like_the_trained_one(trained: tuple) -> None:
    out, model = trained
    again = load_model(out)
    X = model.spec.encode_frame(synthetic_frame(300, seed=9))
    np.testing.assert_array_equal(again.champion.pd(X), model.champion.pd(X))
    np.testing.assert_array_equal(again.explain_matrix(X), model.explain_matrix(X))


@pytest.mark.parametrize("victim", ["scorecard.json", "lightgbm.txt", "metadata.json"])
def test_edited_file_is_refused(trained: tuple, tmp_path: Path, victim: str) -> None:
    out, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with (copy / victim).open("a") as handle:
        handle.write(" ")
    with pytest.raises(ValidationError, match="sha256") as info:
        load_model(copy)
    assert info.value.exit_code == 2


def test_missing_file_is_refused(trained: tuple, tmp_path: Path) -> None:
    out, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "logistic.json").unlink()
    with pytest.raises(ValidationError, match="missing"):
        verify(copy)


@pytest.mark.slow
def test_same_data_and_seed_give_identical_files(tmp_path: Path) -> None:
    """Also across worker counts: parallel fitting must not change the model."""
    data = tmp_path / "d.csv"
    synthetic_frame(1200, seed=4).to_csv(data, index=False)
    outs = []
    for name, jobs in (("a", 1), ("b", 2)):
        request = TrainRequest(
            data,
            "defaulted",
            tmp_path / name,
            config=PipelineConfig(seed=3, inner_folds=2, n_jobs=jobs),
        )
        train_model(request)
        outs.append(tmp_path / name)
    for file in EXPECTED - {"metadata.json", "MODEL_CARD.md", "manifest.json"}:
        assert (outs[0] / file).read_bytes() == (outs[1] / file).read_bytes(), file
    for file in ("metadata.json", "MODEL_CARD.md"):
        strip = [_without_timestamp(o / file) for o in outs]
        assert strip[0] == strip[1], file


def _without_timestamp(path: Path) -> list[str]:
    return [
        line
        for line in path.read_text().splitlines()
        if "created_at" not in line and not line.startswith("Trained ")
    ]


def test_existing_output_is_not_clobbered(trained: tuple, synthetic_csv: Path) -> None:
    out, _ = trained
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(ValidationError, match="overwrite"):
        train_model(TrainRequest(synthetic_csv, "defaulted", out))
    assert sorted(p.name for p in out.iterdir()) == before

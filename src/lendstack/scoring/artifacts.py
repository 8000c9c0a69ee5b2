"""Model directories: plain files, a sha256 manifest, written atomically. No pickle.

A model that decides credit must be inspectable and tamper-evident. Every part is a text or
array format a reviewer can open (LightGBM's own text model, JSON, `.npy`, markdown), the
manifest records each file's sha256, and loading refuses a directory whose files no longer
match it. The directory is built under a temporary name beside the target and renamed into
place, so a run that fails half-way leaves nothing at `--out`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from lendstack.core.errors import ValidationError
from lendstack.scoring.blend import blend_from_dict, blend_to_dict
from lendstack.scoring.champion import Champion
from lendstack.scoring.fairness import GroupRow
from lendstack.scoring.features import spec_from_dict, spec_to_dict
from lendstack.scoring.logistic import linear_from_dict, linear_to_dict
from lendstack.scoring.model import CreditModel
from lendstack.scoring.scorecard import scorecard_from_dict, scorecard_to_dict

FORMAT_VERSION = 1


class ArtifactFile(StrEnum):
    LIGHTGBM = "lightgbm.txt"
    SCORECARD = "scorecard.json"
    LOGISTIC = "logistic.json"
    FEATURES = "features.json"
    PIPELINE = "pipeline.json"
    PROFILE = "profile.json"
    METADATA = "metadata.json"
    OOF = "oof.npy"
    MODEL_CARD = "MODEL_CARD.md"


MANIFEST = "manifest.json"


def _clean(value: Any) -> Any:
    """JSON has no NaN: missing figures are written as null."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def dumps(payload: Any) -> str:
    return json.dumps(_clean(payload), sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fairness_rows(rows: tuple[GroupRow, ...]) -> list[dict[str, Any]]:
    return [
        {
            "attribute": r.attribute,
            "group": r.group,
            "count": r.count,
            "approval_rate": r.approval_rate,
            "default_rate": r.default_rate,
            "air": r.air,
            "air_low": r.air_low,
            "air_high": r.air_high,
        }
        for r in rows
    ]


def _contents(model: CreditModel, model_card: str) -> dict[ArtifactFile, str]:
    champ = model.champion
    pipeline = {
        "format_version": FORMAT_VERSION,
        "components": ["lightgbm", "scorecard", "logistic"],
        "blend": blend_to_dict(champ.blend),
        "gbm_rounds": champ.gbm_rounds,
        "reference": {"kind": "population_mean", "values": [float(v) for v in model.reference]},
    }
    profile = dict(model.profile)
    profile["fairness"] = _fairness_rows(model.fairness)
    return {
        ArtifactFile.LIGHTGBM: champ.booster.model_to_string(),
        ArtifactFile.SCORECARD: dumps(scorecard_to_dict(champ.scorecard)),
        ArtifactFile.LOGISTIC: dumps(linear_to_dict(champ.logistic)),
        ArtifactFile.FEATURES: dumps(spec_to_dict(champ.spec)),
        ArtifactFile.PIPELINE: dumps(pipeline),
        ArtifactFile.PROFILE: dumps(profile),
        ArtifactFile.METADATA: dumps(model.metadata),
        ArtifactFile.MODEL_CARD: model_card,
    }


def save_model(
    model: CreditModel, out: Path, model_card: str, oof: np.ndarray, overwrite: bool = False
) -> Path:
    """Write the model directory atomically; refuse to clobber one unless told to."""
    out = Path(out)
    check_out(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, text in _contents(model, model_card).items():
            (tmp / name.value).write_text(text, encoding="utf-8")
        np.save(tmp / ArtifactFile.OOF.value, np.ascontiguousarray(oof, dtype=np.float64))
        digests = {f.value: _sha256(tmp / f.value) for f in ArtifactFile}
        (tmp / MANIFEST).write_text(dumps({"files": digests}), encoding="utf-8")
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse early (before any training) to replace an existing model by accident."""
    if out.exists() and not out.is_dir():
        raise ValidationError(f"{out} exists and is not a directory", field="out")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ValidationError(f"{out} exists and is not empty (use --overwrite)", field="out")


def _swap_into_place(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def verify(path: Path) -> None:
    """Check every file against the manifest; an edited model must not score anybody."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ValidationError(f"{path} is not a lendstack model (no {MANIFEST})", field="model")
    listed = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    for name in ArtifactFile:
        file = path / name.value
        if name.value not in listed or not file.is_file():
            raise ValidationError(f"model file {name.value} is missing", field="model")
        if _sha256(file) != listed[name.value]:
            raise ValidationError(
                f"model file {name.value} does not match its sha256 in {MANIFEST}: "
                "the model was modified after training",
                field="model",
            )


def _read_json(path: Path, name: ArtifactFile) -> Any:
    return json.loads((path / name.value).read_text(encoding="utf-8"))


def load_model(path: str | Path) -> CreditModel:
    """Load and verify a model directory."""
    root = Path(path)
    verify(root)
    pipeline = _read_json(root, ArtifactFile.PIPELINE)
    booster = lgb.Booster(model_str=(root / ArtifactFile.LIGHTGBM.value).read_text("utf-8"))
    champion = Champion(
        spec=spec_from_dict(_read_json(root, ArtifactFile.FEATURES)),
        booster=booster,
        scorecard=scorecard_from_dict(_read_json(root, ArtifactFile.SCORECARD)),
        logistic=linear_from_dict(_read_json(root, ArtifactFile.LOGISTIC)),
        blend=blend_from_dict(pipeline["blend"]),
        gbm_rounds=pipeline["gbm_rounds"],
    )
    profile = _read_json(root, ArtifactFile.PROFILE)
    fairness = tuple(
        GroupRow(**{k: (float("nan") if v is None else v) for k, v in r.items()})
        for r in profile.pop("fairness", [])
    )
    return CreditModel(
        champion=champion,
        reference=np.asarray(pipeline["reference"]["values"], dtype=np.float64),
        metadata=_read_json(root, ArtifactFile.METADATA),
        profile=profile,
        fairness=fairness,
    )


def load_oof(path: str | Path) -> np.ndarray:
    """Training out-of-fold (y, PD) pairs, for the report when no data is given."""
    return np.load(Path(path) / ArtifactFile.OOF.value, allow_pickle=False)

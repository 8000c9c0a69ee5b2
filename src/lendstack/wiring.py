"""Composition root for underwriting: settings in, a ready engine and service out.

The CLI and the HTTP API both build the service here, so a decision made from either entry
point runs the same pack, model, policy and products, and records to the same log.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine as SqlEngine

from lendstack.core.errors import ValidationError
from lendstack.scoring import CreditModel, load_model
from lendstack.servicing import ProductCatalog
from lendstack.settings import Settings
from lendstack.storage.decisions import SqlDecisionLog
from lendstack.underwriting.engine import Engine
from lendstack.underwriting.features import FeatureMap, default_model_dir
from lendstack.underwriting.pii import PiiVault
from lendstack.underwriting.policy import load_policy
from lendstack.underwriting.rules import default_pack, load_pack
from lendstack.underwriting.service import Underwriting


@dataclass(frozen=True, slots=True)
class LoadedModel:
    model: CreditModel
    features: FeatureMap
    sha256: str
    """sha256 of the model's manifest, which itself pins every file's sha256."""


def model_sha256(model_dir: Path) -> str:
    try:
        return hashlib.sha256((model_dir / "manifest.json").read_bytes()).hexdigest()
    except OSError as exc:
        raise ValidationError(
            f"{model_dir} is not a model directory: {exc}", field="model"
        ) from None


@lru_cache(maxsize=8)
def _load(model_dir: Path, sha256: str) -> LoadedModel:
    """The model and the feature map declared beside it (`FeatureMap.load` names a missing one)."""
    return LoadedModel(load_model(model_dir), FeatureMap.load(model_dir), sha256)


def load_credit_model(model_dir: Path | None) -> LoadedModel:
    """The model in `model_dir` (default: the shipped one); loaded once per content hash."""
    path = (model_dir or default_model_dir()).resolve()
    return _load(path, model_sha256(path))


def build_engine(
    settings: Settings,
    *,
    pack: str | Path | None = None,
    model_dir: Path | None = None,
) -> tuple[Engine, str]:
    """The engine for new decisions, and its model's sha256."""
    ref = pack or settings.rule_pack
    rule_pack = load_pack(ref) if ref else default_pack()
    loaded = load_credit_model(model_dir or settings.model_dir)
    engine = Engine(
        rule_pack,
        loaded.model,
        loaded.features,
        load_policy(),
        ProductCatalog(settings.products_dir),
    )
    return engine, loaded.sha256


def pii_vault(settings: Settings) -> PiiVault:
    return PiiVault.from_settings(settings)


def underwriting_service(settings: Settings, engine: SqlEngine) -> Underwriting:
    decision_engine, sha = build_engine(settings)
    return Underwriting(decision_engine, sha, SqlDecisionLog(engine), pii_vault(settings))

"""Composition root for underwriting: settings in, a ready engine and service out.

The CLI and the HTTP API both build the service here, so a decision made from either entry
point runs the same pack, model, policy and products, and records to the same log. The funding
desk is built here too: over the stored partners, with the co-lending policy of the same rule
pack, and exposures read from the book.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

from sqlalchemy import Engine as SqlEngine

from lendstack.core.errors import ValidationError
from lendstack.risk.surveillance import default_pack as default_surveillance_pack
from lendstack.scoring import CreditModel, load_model
from lendstack.servicing import ProductCatalog
from lendstack.settings import Settings
from lendstack.storage.decisions import SqlDecisionLog
from lendstack.storage.funding import SqlFunding
from lendstack.storage.use_of_funds import SqlUseOfFunds
from lendstack.underwriting.engine import Engine
from lendstack.underwriting.features import FeatureMap, default_model_dir
from lendstack.underwriting.funding_desk import FundingDesk, funding_policy
from lendstack.underwriting.pii import PiiVault
from lendstack.underwriting.policy import load_policy
from lendstack.underwriting.rules import RulePack, default_pack, load_pack
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
    rule_pack = rule_pack_for(settings, pack)
    loaded = load_credit_model(model_dir or settings.model_dir)
    engine = Engine(
        rule_pack,
        loaded.model,
        loaded.features,
        load_policy(),
        ProductCatalog(settings.products_dir),
    )
    return engine, loaded.sha256


def rule_pack_for(settings: Settings, pack: str | Path | None = None) -> RulePack:
    """`pack`, else the configured pack (`LENDSTACK_RULE_PACK`), else the default one."""
    ref = pack or settings.rule_pack
    return load_pack(ref) if ref else default_pack()


def pii_vault(settings: Settings) -> PiiVault:
    return PiiVault.from_settings(settings)


def funding_desk(
    engine: SqlEngine, pack: RulePack, clock: Callable[[], float] = time.monotonic
) -> FundingDesk:
    """The desk over the stored partners, with the pack's co-lending policy per loan date.

    Exposures are the book's as of the loan's business date: loans disbursed on or before it,
    that date's allocations counting against the daily quotas. `clock` times the refreshes
    of the cached exposures (`FundingDesk`).
    """
    repo = SqlFunding(engine)
    return FundingDesk(
        repo.all,
        repo.exposure_map,
        partial(funding_policy, pack),
        clock=clock,
        exposures_many=repo.exposure_maps,
    )


def underwriting_service(settings: Settings, engine: SqlEngine) -> Underwriting:
    """The decision service; with partners stored, granted offers are funded at decision time
    (none stored: no desk, and decisions carry no funding)."""
    decision_engine, sha = build_engine(settings)
    desk = funding_desk(engine, decision_engine.pack) if SqlFunding(engine).all() else None
    misuse = SqlUseOfFunds(engine, default_surveillance_pack())  # flags decline (P12)
    return Underwriting(
        decision_engine, sha, SqlDecisionLog(engine), pii_vault(settings), desk=desk, misuse=misuse
    )


def booking_desk(settings: Settings, engine: SqlEngine) -> FundingDesk:
    """The desk that re-checks plans at booking and checks manual plans (exact exposures)."""
    return funding_desk(engine, rule_pack_for(settings))

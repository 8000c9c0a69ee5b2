"""The real platform a simulation runs: its database, decision service and funding desk.

Everything is the production wiring (`lendstack.wiring`): the shipped credit model, the
default rule pack, the credit policy, the product catalog, the sample co-lending partners and
the hash-chained decision log. A scenario only changes data, never code:
- caps become extra rules appended to the rule pack's own TOML, effective from the first day
  of their month, so the engine enforces them like any rule and the decision records bind
  them (the derived pack is written to the run directory, auditable);
- policy overrides (cut-off, limit curve, affordability) replace the policy's values, with a
  new policy id and sha256 so every decision says which policy made it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine as SqlEngine

from lendstack.risk.surveillance import default_pack as surveillance_pack
from lendstack.servicing import ProductCatalog
from lendstack.settings import Settings
from lendstack.simulation.scenario import PolicyOverride
from lendstack.storage.db import make_engine
from lendstack.storage.decisions import SqlDecisionLog, prepare_entry
from lendstack.storage.use_of_funds import SqlUseOfFunds
from lendstack.underwriting.engine import Engine
from lendstack.underwriting.policy import Policy, load_policy
from lendstack.underwriting.rules import RulePack, default_pack, load_pack
from lendstack.underwriting.service import Underwriting
from lendstack.wiring import funding_desk, load_credit_model, pii_vault


@dataclass(frozen=True, slots=True)
class CapRule:
    """A cap added to the pack from `effective_from` (for every lender type)."""

    effective_from: date
    apr_max: Decimal | None = None
    amount_max: int | None = None


_RULE = """
[[rules]]
id = "{rule_id}"
kind = "{kind}"
description = "Simulation scenario {scenario}: {what}."
params = {{ max = {value} }}
effective_from = {day}
status = "guidance"
confidence = "U"
source = {{ body = "lendstack simulate", document = "scenario {scenario}", section = "none: scenario" }}
"""


def derived_pack(base: RulePack, scenario: str, caps: tuple[CapRule, ...]) -> str:
    """The base pack's TOML with the caps appended, under a new id (so it is never mistaken
    for the base pack in the decision log)."""
    slug = re.sub(r"[^a-z0-9.-]", "-", scenario.lower())
    tag = re.sub(r"[^A-Z0-9]", "_", scenario.upper())
    text = re.sub(r'(?m)^id = "[^"]*"', f'id = "{base.id}.sim-{slug}"', base.text, count=1)
    for i, cap in enumerate(caps):
        if cap.apr_max is not None:
            text += _RULE.format(
                rule_id=f"SIM.{tag}.APR_MAX.N{i}", kind="apr_max", scenario=scenario,
                what=f"all-in APR at most {cap.apr_max}", value=f'"{cap.apr_max}"',
                day=cap.effective_from.isoformat(),
            )  # fmt: skip
        if cap.amount_max is not None:
            text += _RULE.format(
                rule_id=f"SIM.{tag}.CREDIT_LINE_MAX.N{i}", kind="credit_line_max",
                scenario=scenario, what=f"credit line at most CNY {cap.amount_max}",
                value=cap.amount_max, day=cap.effective_from.isoformat(),
            )  # fmt: skip
    return text


def overridden_policy(base: Policy, scenario: str, o: PolicyOverride) -> Policy:
    """The credit policy with the scenario's overrides (unchanged if there are none)."""
    if o == PolicyOverride():
        return base
    curve = tuple(
        (pd, (limit * o.limit_scale).quantize(Decimal(1))) for pd, limit in base.limits.pd_curve
    )
    limits = replace(
        base.limits,
        pd_curve=curve,
        affordability_share=o.affordability_share or base.limits.affordability_share,
    )
    pricing = replace(
        base.pricing,
        margin=base.pricing.margin if o.margin is None else o.margin,
        lgd=o.lgd or base.pricing.lgd,
    )
    tag = f"{base.sha256}:{o!r}"
    return replace(
        base,
        id=f"{base.id}+{scenario}",
        sha256=hashlib.sha256(tag.encode()).hexdigest(),
        limits=limits,
        pricing=pricing,
        max_pd=o.max_pd or base.max_pd,
    )


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """Everything needed to build the decision service, picklable for batch workers."""

    settings: Settings
    scenario: str
    pack_path: Path | None
    policy: PolicyOverride


def run_settings(out: Path) -> Settings:
    """The run's own database and PII key, both inside the run directory."""
    return Settings(
        database_url=f"sqlite:///{out / 'lendstack.db'}",
        pii_key_file=out / "lendstack-pii.key",
    )


def build_service(spec: ServiceSpec, engine: SqlEngine | None = None) -> Underwriting:
    """The real decision service under the scenario's pack and policy, with the funding desk
    and the use-of-funds flags, as `wiring.underwriting_service` builds it."""
    db = engine or make_engine(spec.settings.database_url)
    pack = load_pack(spec.pack_path) if spec.pack_path else default_pack()
    loaded = load_credit_model(spec.settings.model_dir)
    policy = overridden_policy(load_policy(), spec.scenario, spec.policy)
    decision_engine = Engine(
        pack, loaded.model, loaded.features, policy, ProductCatalog(spec.settings.products_dir)
    )
    return Underwriting(
        decision_engine,
        loaded.sha256,
        SqlDecisionLog(db),
        pii_vault(spec.settings),
        desk=funding_desk(db, pack, clock=_frozen_clock),
        misuse=SqlUseOfFunds(db, surveillance_pack()),  # a flagged borrower is declined (P12)
    )


def _frozen_clock() -> float:
    """The desk's clock in a run: it never moves, so the desk never refreshes a date's
    exposures on wall time. A refresh re-reads the book, which does not yet hold the month's
    plans decided but not booked (the month is decided before its days are serviced), so it
    would forget them, and the plans would depend on how fast the machine ran. With it, each
    date's exposures are read once and kept running with every plan reserved (in one process:
    with `--workers N` each worker's desk sees only its own chunks' plans)."""
    return 0.0


def worker_service(spec: ServiceSpec) -> tuple[Underwriting, Any]:
    """A batch worker's own service (see `lendstack.underwriting.batch.Factory`)."""
    return build_service(spec), prepare_entry

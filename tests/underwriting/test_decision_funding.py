"""Co-lending at decision time: the funding plan on the decision, P11 declines, the desk's
cached exposures and reservations, the policy from the rule pack, and replay with funding.

Runs on SQLite and, when LENDSTACK_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Engine, select

from example_app import application as app_for
from lendstack.cli.underwriting import worker_service
from lendstack.core.errors import Conflict
from lendstack.funding import (
    NO_CAPACITY,
    Appetite,
    Exposure,
    Funder,
    FunderKind,
    LoanRequest,
    Policy,
    Quotas,
    Rule,
    builtin_partners,
    check_plan,
)
from lendstack.servicing import ProductCatalog
from lendstack.settings import Settings
from lendstack.storage import schema
from lendstack.storage.decisions import SqlDecisionLog, prepare_entry
from lendstack.storage.funding import SqlFunding
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.underwriting.application import Application
from lendstack.underwriting.batch import BatchJob, decide_rows
from lendstack.underwriting.funding_desk import (
    FundingDesk,
    funding_policy,
    record_request,
    recorded_plan,
)
from lendstack.underwriting.origination import originate
from lendstack.underwriting.population import PopulationConfig, generate_population
from lendstack.underwriting.rerun import backtest, replay
from lendstack.underwriting.rules import FUNDING_KINDS, LENDER_TYPES, builtin_packs, parse_pack
from lendstack.underwriting.rules import default_pack as default_rule_pack
from lendstack.underwriting.service import Underwriting
from lendstack.underwriting.views import decision_view
from lendstack.wiring import build_engine, underwriting_service

DAY = date(2026, 11, 2)
BIG = Decimal("1000000000.00")
EVERYONE = (date(2020, 1, 1), date(2030, 12, 31))


def bank(funder_id: str, cost: str = "0.03", tier1: str = "1000000.00") -> Funder:
    """A national bank whose 2.2 limit is 25% of `tier1` (250,000 by default)."""
    return Funder(
        id=funder_id, name=funder_id, kind=FunderKind.JOINT_STOCK,
        appetite=Appetite(max_pd=0.5, target_share=Decimal("0.70")),
        funding_cost=Decimal(cost), quotas=Quotas(BIG, BIG * 10),
        tier1_net_capital=Decimal(tier1), total_loans=BIG, on_platform_list=True,
    )  # fmt: skip


def platform(target_share: str = "1") -> Funder:
    return Funder(
        id="platform", name="platform", kind=FunderKind.PLATFORM,
        appetite=Appetite(max_pd=0.5, target_share=Decimal(target_share)),
        funding_cost=Decimal("0.05"), quotas=Quotas(BIG, BIG * 10),
    )  # fmt: skip


PANEL = (platform("0.50"), bank("bank-a", "0.028"), bank("bank-b", "0.034"))
"""The platform may take at most half of a loan: it cannot fund one alone."""
AT_LIMIT = {"bank-a": Exposure(balance=Decimal("250000.00")),
            "bank-b": Exposure(balance=Decimal("250000.00"))}  # fmt: skip
"""Both banks at 25% of their tier-1 net capital (rule 2.2)."""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def desk_over(
    funders: tuple[Funder, ...],
    exposures: Callable[[date], dict[str, Exposure]],
    clock: Callable[[], float] | None = None,
    refresh: float = 0.0,
) -> FundingDesk:
    """A desk over fixed partners and a test's exposures; refresh 0 re-reads on every plan."""
    return FundingDesk(
        lambda: funders,
        exposures,
        lambda _day: Policy(),
        clock=clock or Clock(),
        refresh_seconds=refresh,
    )


@pytest.fixture
def settings(engine: Engine) -> Settings:
    return Settings(pii_key=base64.b64encode(os.urandom(32)).decode())


@pytest.fixture
def funded(settings: Settings, engine: Engine) -> Underwriting:
    """The wired service over the sample partners (imported first, so it gets a desk)."""
    SqlFunding(engine).import_builtin()
    return underwriting_service(settings, engine)


def shares_of(record: dict[str, Any]) -> dict[str, Decimal]:
    return {s["funder_id"]: Decimal(s["share"]) for s in record["decision"]["funding"]["shares"]}


# -- decision time ----------------------------------------------------------------------------


def test_a_granted_offer_is_funded_shares_sum_to_1_and_parts_to_the_amount(
    funded: Underwriting,
) -> None:
    assert funded.desk is not None
    recorded = funded.decide(app_for())
    decision = recorded.record["decision"]
    assert decision["outcome"] == "APPROVE"
    funding = decision["funding"]
    assert funding["outcome"] == "funded"
    assert sum(shares_of(dict(recorded.record)).values()) == Decimal(1)
    amounts = [Decimal(s["amount"]) for s in funding["shares"]]
    assert sum(amounts) == Decimal(decision["offer"]["amount"])
    assert all(s["amount"] == f"{Decimal(s['amount']):.2f}" for s in funding["shares"])
    assert Decimal(funding["annual_cost"]) > 0
    # judged by the independent checker, under the pack's policy for the loan's date
    plan = recorded_plan(recorded.record)
    assert plan is not None
    request = record_request(recorded.record)
    partners = {f.id: f for f in builtin_partners()}
    policy = funding_policy(funded.engine.pack, DAY)
    assert check_plan(request, plan.share_map(), partners, {}, policy) == ()
    assert shares_of(dict(recorded.record))["platform"] >= Decimal("0.30")
    view = decision_view(recorded.decision_id, dict(recorded.record))
    assert view["funding"] == funding


def test_without_partners_there_is_no_desk_and_no_funding(
    settings: Settings, engine: Engine
) -> None:
    service = underwriting_service(settings, engine)
    assert service.desk is None
    recorded = service.decide(app_for())
    assert recorded.outcome == "APPROVE"
    assert "funding" not in recorded.record["decision"]
    assert decision_view(recorded.decision_id, dict(recorded.record))["funding"] is None


def test_declines_and_referrals_seek_no_funding(funded: Underwriting) -> None:
    declined = funded.decide(app_for(**{"loan.purpose": "securities"}))
    referred = funded.decide(
        app_for(application_date="2026-11-20", **{"consents.automated_decision": False})
    )
    assert (declined.outcome, referred.outcome) == ("DECLINE", "REFER")
    assert "funding" not in declined.record["decision"]
    assert "funding" not in referred.record["decision"]


def test_banks_at_their_limit_and_a_platform_that_cannot_fund_alone_decline_with_p11(
    settings: Settings, engine: Engine, catalog: ProductCatalog
) -> None:
    service = underwriting_service(settings, engine)
    service.desk = desk = desk_over(PANEL, lambda _day: dict(AT_LIMIT))
    recorded = service.decide(app_for())
    decision = recorded.record["decision"]
    assert decision["outcome"] == "DECLINE"
    assert decision["reasons"][0] == {"code": "P11", "text": NO_CAPACITY, "source": "policy"}
    assert decision["reasons"][0]["text"] == "no funding capacity within partner limits"
    funding = decision["funding"]
    assert (funding["outcome"], funding["reason"], funding["shares"]) == (
        "unfunded",
        NO_CAPACITY,
        [],
    )
    excluded = {e["funder_id"]: e["rule"] for e in funding["exclusions"]}
    assert excluded == {"bank-a": Rule.TIER1.value, "bank-b": Rule.TIER1.value}
    # the record keeps what could not be funded; no view shows it and nothing can book it
    assert decision["offer"] is not None
    assert decision_view(recorded.decision_id, dict(recorded.record))["offer"] is None
    with engine.connect() as conn:
        column = schema.decision_log.c.offer_amount_fen
        assert conn.execute(select(column)).scalar_one() is None  # not the borrower's exposure
    with pytest.raises(Conflict):
        originate(SqlUnitOfWork(engine), catalog, recorded.record, desk)


def test_a_decision_that_is_not_recorded_releases_its_reservation(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = underwriting_service(settings, engine)
    small = (platform(), bank("bank-a", tier1="100000.00"))  # 2.2 limit: CNY 25,000
    service.desk = desk = desk_over(small, lambda _day: {}, refresh=60)

    def broken(*_args: Any, **_kw: Any) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(service.log, "append", broken)
    with pytest.raises(RuntimeError):
        service.decide(app_for())  # 14,000 of bank-a's 25,000 were reserved, then released
    after = desk.plan(request("L-after"))
    assert after.share_map()["bank-a"] == Decimal("0.7000")  # not 0.55: nothing left reserved


# -- the desk -----------------------------------------------------------------------------------


def request(loan_id: str, amount: str = "20000.00", day: date = DAY) -> LoanRequest:
    return LoanRequest(loan_id, Decimal(amount), 0.02, Decimal("0.15"), "Guangdong",
                       "cash-loan-installment", 12, "travel", day)  # fmt: skip


def test_two_decisions_in_a_row_see_each_other_within_a_cached_refresh() -> None:
    reads: list[date] = []
    clock = Clock()
    funders = (platform(), bank("bank-a", tier1="100000.00"))  # 2.2 limit: CNY 25,000

    def exposures(day: date) -> dict[str, Exposure]:
        reads.append(day)
        return {}

    desk = desk_over(funders, exposures, clock, refresh=5.0)
    first = desk.plan(request("L1"))
    second = desk.plan(request("L2"))
    assert first.share_map() == {"bank-a": Decimal("0.7000"), "platform": Decimal("0.3000")}
    # bank-a has 25,000 - 14,000 = 11,000 left: 55% of the next loan, the platform the rest
    assert second.share_map() == {"bank-a": Decimal("0.5500"), "platform": Decimal("0.4500")}
    assert reads == [DAY]  # one read of the book for both
    clock.now = 5.0
    third = desk.plan(request("L3"))
    assert reads == [DAY, DAY]  # refreshed: the book now answers for the earlier loans
    assert third.share_map()["bank-a"] == Decimal("0.7000")  # (here nothing was booked)
    desk.plan(request("L4", day=DAY + timedelta(days=1)))
    assert reads == [DAY, DAY, DAY + timedelta(days=1)]  # cached per business date


def test_a_reservation_counts_on_its_date_and_later_ones_never_earlier() -> None:
    funders = (platform(), bank("bank-a", tier1="100000.00"))  # 2.2 limit: CNY 25,000
    desk = desk_over(funders, lambda _day: {}, refresh=60.0)
    tomorrow = DAY + timedelta(days=1)
    assert desk.plan(request("L-tomorrow", day=tomorrow)).share_map()["bank-a"] == Decimal("0.7")
    assert desk.plan(request("L-today")).share_map()["bank-a"] == Decimal("0.7")  # not yet lent
    later = desk.plan(request("L-later", day=tomorrow))
    assert later.funded
    assert "bank-a" not in later.share_map()  # 14,000 + 14,000 of its 25,000 taken


def test_released_reservations_no_longer_count() -> None:
    funders = (platform(), bank("bank-a", tier1="100000.00"))
    desk = desk_over(funders, lambda _day: {}, refresh=60.0)
    desk.plan(request("L1"))
    desk.release("L1")
    assert desk.plan(request("L2")).share_map()["bank-a"] == Decimal("0.7000")


# -- policy from the rule pack ------------------------------------------------------------------

STRICTER = """
[[rules]]
id = "T.COLENDING.TIER1.STRICTER"
kind = "colending_tier1_max"
description = "A stricter tier-1 limit, from 2026-06-01."
params = { max = "0.20" }
effective_from = 2026-06-01
status = "guidance"
confidence = "U"
source = { body = "TEST", document = "test", section = "REGULATION.md 2.2" }
"""


def test_policy_comes_from_the_pack_as_of_the_loans_date() -> None:
    pack = default_rule_pack()
    assert funding_policy(pack, DAY) == Policy(
        min_share=Decimal("0.30"),
        platform_min_share=Decimal("0.30"),
        tier1_ratio=Decimal("0.25"),
        total_loans_ratio=Decimal("0.50"),
    )
    ids = {r.id for r in pack.funding_rules(DAY)}
    assert ids == {
        "CN.COLENDING.PARTNER_SHARE_MIN",
        "CN.COLENDING.PARTNER_BALANCE_MAX.TIER1",
        "CN.COLENDING.TOTAL_BALANCE_MAX.TOTAL_LOANS",
        "CN.POLICY.COLENDING_SHARE_MIN",
    }
    stricter = parse_pack(pack.text + STRICTER, "stricter.toml")
    assert funding_policy(stricter, date(2026, 5, 31)).tier1_ratio == Decimal("0.25")
    assert funding_policy(stricter, date(2026, 6, 1)).tier1_ratio == Decimal("0.20")  # strictest


def test_a_kind_without_a_rule_in_force_keeps_the_conservative_default() -> None:
    pack = default_rule_pack()
    before = date(2021, 6, 1)  # 2.1 takes effect on 2022-01-01
    assert "CN.COLENDING.PARTNER_SHARE_MIN" not in {r.id for r in pack.funding_rules(before)}
    assert funding_policy(pack, before).platform_min_share == Policy().platform_min_share
    relaxed = pack.text.replace(
        'kind = "colending_own_share_min"\ndescription = "Co-funded internet loan: the partner\'s '
        '(platform\'s) own share of each loan at least 30%."\nparams = { min = "0.30" }',
        'kind = "colending_own_share_min"\ndescription = "Pure facilitation allowed."\n'
        'params = { min = "0" }',
    )
    assert relaxed != pack.text
    assert funding_policy(parse_pack(relaxed, "relaxed.toml"), DAY).platform_min_share == 0


def test_colending_rules_never_screen_an_application(funded: Underwriting) -> None:
    for pack in builtin_packs():
        for lender_type in LENDER_TYPES:
            selected = pack.select(DAY, lender_type).rules
            assert not [r.id for r in selected if r.kind in FUNDING_KINDS], pack.id
        assert len(pack.funding_rules(DAY)) == 4, pack.id
    decision = funded.decide(app_for()).record["decision"]
    assert not [r for r in decision["rule_results"] if r["kind"].startswith("colending_")]


# -- replay and backtest ----------------------------------------------------------------------


def test_replay_finds_no_difference_with_funded_and_unfunded_decisions(
    settings: Settings, engine: Engine
) -> None:
    book: dict[str, Exposure] = {}
    service = underwriting_service(settings, engine)
    service.desk = desk_over(PANEL, lambda _day: dict(book))
    first = service.decide(app_for())
    book.update(AT_LIMIT)  # the banks fill up between the two decisions
    second = service.decide(app_for(application_date="2026-11-20"))
    counter = service.decide(app_for(application_date="2026-12-10", **{"loan.amount": "150000.00"}))
    assert first.record["decision"]["funding"]["outcome"] == "funded"
    assert (second.outcome, second.record["decision"]["funding"]["outcome"]) == (
        "DECLINE",
        "unfunded",
    )
    assert counter.outcome == "DECLINE"  # a counter-offer that could not be funded
    assert Decimal(counter.record["decision"]["offer"]["amount"]) < Decimal("150000.00")
    assert "P07" not in [r["code"] for r in counter.record["decision"]["reasons"]]
    log: Any = service.log
    report = replay(log, service.vault, service.engine, service.model_sha256, *EVERYONE)
    assert report.checked == 3
    assert report.ok, report.as_json()
    challenger, _ = build_engine(settings, pack="cn-2026-tight")
    tally = backtest(log, service.vault, lambda _r: challenger, *EVERYONE).as_json()
    assert tally["applications"] == 3
    assert tally["swap_in"] == 0  # an unfunded decision stays declined


# -- batches ------------------------------------------------------------------------------------


def _comparable(records: list[dict[str, Any]]) -> list[str]:
    """Decisions with their ids blanked (ids are random; what they point at is not)."""
    text = [json.dumps(r["decision"], sort_keys=True) for r in records]
    return [re.sub(r"dcs_[0-9a-f]{32}", "dcs", t) for t in text]


def test_a_batch_funds_like_sequential_decisions(
    settings: Settings, engine: Engine, second_engine: Engine, database_url: str
) -> None:
    rows = list(generate_population(PopulationConfig(seed=5, n=60)).applications())
    for db in (engine, second_engine):
        SqlFunding(db).import_builtin()
    sequential = underwriting_service(settings, second_engine)
    expected = [dict(sequential.decide(Application.model_validate(r)).record) for r in rows]
    service = underwriting_service(settings, engine)
    batch_settings = replace(settings, database_url=database_url)
    job = BatchJob(service, prepare_entry, partial(worker_service, batch_settings), chunk_size=25)
    results = list(decide_rows(rows, job))
    log = SqlDecisionLog(engine)
    got = []
    for result in results:
        entry = log.get(result.line["decision_id"])
        assert entry is not None
        got.append(json.loads(entry.record_json))
    assert _comparable(got) == _comparable(expected)
    assert sum("funding" in r["decision"] for r in got) >= 10
    report = replay(log, service.vault, service.engine, service.model_sha256, *EVERYONE)
    assert report.ok, report.as_json()

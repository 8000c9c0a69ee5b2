"""`lendstack partners ...` and `lendstack funding exposure` through a root app, both backends."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from cli_runner import Run
from lendstack.cli.main import main
from lendstack.servicing import LoanRequest, ProductCatalog, book_loan
from lendstack.storage.funding import SqlFunding
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.storage.schema import funders

BANK = """
id = "river-bank"
name = "River Rural Bank"
kind = "rural"
home_region = "Sichuan"
tier1_net_capital = 2000000000.00
total_loans = 30000000000.00
on_platform_list = true
funding_cost = 0.036

[appetite]
max_pd = 0.05
terms = [6, 12]
target_share = 0.70

[quotas]
daily = {daily}
total = 500000000.00
"""


def partner_file(tmp_path: Path, text: str, name: str = "river.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(funders)).scalar_one())


def test_add_show_update_list(cli: Run, tmp_path: Path) -> None:
    added = cli("partners", "add", partner_file(tmp_path, BANK.format(daily="10000000.00")))
    assert added.exit_code == 0, added.output
    shown = cli("partners", "show", "river-bank", "--format", "json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["kind"] == "rural"
    assert data["quotas"]["daily"] == "10000000.00"
    assert data["version"] == 1
    again = cli("partners", "add", partner_file(tmp_path, BANK.format(daily="1.00")))
    assert again.exit_code == 4
    updated = cli("partners", "update", partner_file(tmp_path, BANK.format(daily="20000000.00")))
    assert updated.exit_code == 0, updated.output
    listed = json.loads(cli("partners", "list", "--format", "json").stdout)["partners"]
    assert [(p["id"], p["version"], p["quotas"]["daily"]) for p in listed] == [
        ("river-bank", 2, "20000000.00")
    ]
    table = cli("partners", "list")
    assert table.exit_code == 0
    assert "river-bank" in table.stdout
    assert "quotas.daily" in cli("partners", "show", "river-bank").stdout
    assert cli("partners", "show", "nobody").exit_code == 3


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("tier1_net_capital = 2000000000.00", 'tier1_net_capital = "lots"', "tier1_net_capital"),
        ("total_loans = 30000000000.00", "total_loans = true", "total_loans"),
        ("daily = 1.00", "daily = -1.00", "quotas.daily"),
        ('kind = "rural"', 'kind = "shadow_bank"', "kind"),
        ('home_region = "Sichuan"', "", "home_region"),
    ],
)
def test_a_bad_partner_file_is_exit_2_naming_the_field(
    cli: Run, engine: Engine, tmp_path: Path, old: str, new: str, field: str
) -> None:
    text = BANK.format(daily="1.00")
    assert old in text
    for command in ("add", "update"):
        result = cli("partners", command, partner_file(tmp_path, text.replace(old, new)))
        assert result.exit_code == 2, result.output
        assert field in result.output
    assert stored(engine) == 0


def test_import_builtin_is_idempotent(cli: Run, engine: Engine) -> None:
    first = cli("partners", "import-builtin")
    assert first.exit_code == 0
    assert "added 4" in first.stdout
    second = cli("partners", "import-builtin")
    assert second.exit_code == 0
    assert "nothing to add" in second.stdout
    assert stored(engine) == 4


def test_exposure_json(cli: Run, engine: Engine, catalog: ProductCatalog) -> None:
    assert cli("partners", "import-builtin").exit_code == 0
    repo = SqlFunding(engine)
    for amount in ("12000", "3000.01"):
        request = LoanRequest(
            "cash-loan-installment", Decimal(amount), 12, Decimal("0.18"), date(2026, 3, 2)
        )
        loan = book_loan(SqlUnitOfWork(engine), catalog, request)
        shares = {"platform": Decimal("0.3"), "big-state-bank": Decimal("0.7")}
        repo.record_plan(engine, loan.id, shares)

    result = cli("funding", "exposure", "--as-of", "2026-03-02", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["as_of"] == "2026-03-02"
    assert data["total_balance"] == "15000.01"
    partners = {p["id"]: p for p in data["partners"]}
    assert sorted(partners) == [f.id for f in repo.all()]
    state = partners["big-state-bank"]
    # 0.7 × 12,000 + 0.7 × 3,000.01 (2,100.007 -> 2,100.01 by largest remainder)
    assert state["balance"] == "10500.01"
    assert partners["platform"]["balance"] == "4500.00"
    assert state["tier1_limit"] == "750000000000.00"
    assert state["total_loans_limit"] == "12500000000000.00"
    assert state["tier1_headroom"] == "749999989499.99"
    assert state["loans"] == 2
    assert state["dpd_mix"][0] == {"bucket": "M0", "loans": 2, "balance": "10500.01"}
    assert partners["platform"]["tier1_limit"] is None
    assert sum(Decimal(p["balance"]) for p in data["partners"]) == Decimal("15000.01")
    table = cli("funding", "exposure")
    assert table.exit_code == 0
    assert "big-state-bank" in table.stdout
    assert "total co-lent balance 15,000.01" in table.stdout


def test_exposure_needs_an_initialised_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--database", f"sqlite:///{tmp_path / 'empty.db'}", "funding", "exposure"])
    assert done.value.code == 4
    assert "lendstack init" in capsys.readouterr().err


def test_buyback_through_the_cli_and_its_bad_inputs(
    cli: Run, engine: Engine, catalog: ProductCatalog
) -> None:
    repo = SqlFunding(engine)
    repo.import_builtin()
    on = date(2026, 3, 2)
    request = LoanRequest("cash-loan-installment", Decimal("10000.01"), 12, Decimal("0.18"), on)
    loan_id = book_loan(SqlUnitOfWork(engine), catalog, request).id
    repo.record_plan(
        engine, loan_id, {"platform": Decimal("0.3"), "harbour-joint-stock": Decimal("0.7")}
    )

    unknown = cli("funding", "buyback", str(loan_id), "--funder", "nobody", "--date", "2026-03-02")
    assert unknown.exit_code == 3
    assert "funder" in unknown.output
    bad_date = cli(
        "funding", "buyback", str(loan_id), "--funder", "harbour-joint-stock", "--date", "2026-3-2"
    )
    assert bad_date.exit_code == 2
    assert repo.plan(loan_id)  # nothing moved
    done = cli("funding", "buyback", str(loan_id), "--funder", "harbour-joint-stock",
               "--date", "2026-03-02", "--format", "json")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["price"] == "7000.01"
    again = cli(
        "funding",
        "buyback",
        str(loan_id),
        "--funder",
        "harbour-joint-stock",
        "--date",
        "2026-03-02",
    )
    assert again.exit_code == 4  # nothing left to buy

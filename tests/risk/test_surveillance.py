"""The pure use-of-funds core: feed records, the pack, flagging windows, the misuse penalty."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.core.errors import ValidationError
from lendstack.risk.alerts import Metric, Severity
from lendstack.risk.surveillance import (
    MerchantCategory,
    Transaction,
    default_pack,
    flag_alert,
    flags_for,
    load_pack,
    misuse_penalty,
    parse_pack,
    parse_transaction,
)

DISBURSED = date(2026, 3, 1)
GOOD: dict[str, Any] = {
    "transaction_id": "tx-1",
    "loan_id": "7",
    "timestamp": "2026-03-05T10:00:00+08:00",
    "amount": "1234.56",
    "merchant_category": "gold_trading",
}


def tx(tid: str, days: int, category: str = "gold_trading", amount: str = "100.00") -> Transaction:
    at = datetime(2026, 3, 1, 12, tzinfo=UTC) + timedelta(days=days)
    return Transaction(tid, 7, at, Decimal(amount), MerchantCategory(category))


def test_a_good_record_parses_exactly() -> None:
    t = parse_transaction(GOOD, 3)
    assert t.loan_id == 7
    assert t.amount == Decimal("1234.56")
    assert t.at == datetime(2026, 3, 5, 2, 0, tzinfo=UTC)  # +08:00 normalised to UTC
    assert t.category is MerchantCategory.GOLD_TRADING


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "12.345"),  # sub-fen
        ("amount", "-5"),
        ("amount", "abc"),
        ("amount", 12.5),  # a float is not a decimal string
        ("loan_id", "x"),
        ("loan_id", "0"),
        ("timestamp", "2026-03-05T10:00:00"),  # no offset
        ("timestamp", "yesterday"),
        ("merchant_category", "casino_royale"),
        ("transaction_id", ""),
    ],
)
def test_bad_fields_are_named_with_their_row(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as err:
        parse_transaction({**GOOD, field: value}, 12)
    assert err.value.field == f"row 12: {field}"


def test_missing_and_unknown_fields_are_named() -> None:
    without = {k: v for k, v in GOOD.items() if k != "amount"}
    with pytest.raises(ValidationError) as err:
        parse_transaction(without, 2)
    assert err.value.field == "row 2: amount"
    with pytest.raises(ValidationError) as err:
        parse_transaction({**GOOD, "merchant": "x"}, "transactions[4]")
    assert err.value.field == "transactions[4].merchant"


def test_the_shipped_pack_forbids_the_seed_categories() -> None:
    pack = default_pack()
    assert {
        MerchantCategory.GOLD_TRADING,
        MerchantCategory.FX,
        MerchantCategory.SECURITIES_BROKERAGE,
        MerchantCategory.LOTTERY,
        MerchantCategory.REAL_ESTATE,
    } <= pack.forbidden
    assert MerchantCategory.CONSUMPTION not in pack.forbidden
    assert Decimal("0.50") <= pack.misuse_markup <= Decimal("1.00")


PACK_TEXT = """
id = "t"
version = "1"
window_days = 30
min_amount = "0.01"
forbidden = ["gold_trading", "fx"]
misuse_markup = "0.75"
penalty_rate_cap = "0.24"
severity = "warn"
[product_markup]
cash = "1.00"
"""


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('misuse_markup = "0.75"', 'misuse_markup = "0.49"', "pack.misuse_markup"),
        ('misuse_markup = "0.75"', 'misuse_markup = "1.01"', "pack.misuse_markup"),
        ('misuse_markup = "0.75"', 'misuse_markup = "lots"', "pack.misuse_markup"),
        ('cash = "1.00"', 'cash = "2"', "pack.product_markup.cash"),
        ("window_days = 30", 'window_days = "30"', "pack.window_days"),
        ('["gold_trading", "fx"]', '["gold_trading", "tulips"]', "pack.forbidden"),
        ('severity = "warn"', 'severity = "panic"', "pack.severity"),
        ('id = "t"', "", "pack.id"),
        ('id = "t"', 'id = "t"\ncolour = "red"', "pack.colour"),
    ],
)
def test_bad_packs_name_the_key(old: str, new: str, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        load_pack(PACK_TEXT.replace(old, new))
    assert err.value.field == field


def test_product_markup_overrides_the_default() -> None:
    pack = load_pack(PACK_TEXT)
    assert pack.markup_for("cash") == Decimal("1.00")
    assert pack.markup_for("other") == Decimal("0.75")


def test_window_boundaries() -> None:
    pack = load_pack(PACK_TEXT)  # 30 days
    disbursed = {7: DISBURSED}
    assert flags_for([tx("a", 30)], disbursed, pack)[0].days_after == 30
    assert flags_for([tx("a", 31)], disbursed, pack) == ()
    assert flags_for([tx("a", -1)], disbursed, pack) == ()  # before disbursement: not its funds
    assert flags_for([tx("a", 0)], disbursed, pack)[0].days_after == 0
    assert flags_for([tx("a", 3, "consumption")], disbursed, pack) == ()
    assert flags_for([tx("a", 3, "securities_brokerage")], disbursed, pack) == ()  # not in pack
    assert flags_for([tx("a", 3)], {8: DISBURSED}, pack) == ()  # unknown loan: no flag


def test_min_amount() -> None:
    pack = parse_pack({**load_pack_dict(), "min_amount": "500.00"})
    assert flags_for([tx("a", 1, amount="499.99")], {7: DISBURSED}, pack) == ()
    assert len(flags_for([tx("a", 1, amount="500.00")], {7: DISBURSED}, pack)) == 1


def load_pack_dict() -> dict[str, Any]:
    import tomllib

    return tomllib.loads(PACK_TEXT)


def test_one_flag_per_loan_keeps_the_earliest_and_counts_all() -> None:
    pack = load_pack(PACK_TEXT)
    (flag,) = flags_for(
        [tx("late", 9, "fx"), tx("early", 2), tx("ok", 1, "consumption")], {7: DISBURSED}, pack
    )
    assert flag.transaction_id == "early"
    assert flag.offending == 2
    alert = flag_alert(flag, pack)
    assert alert.metric is Metric.FUNDS_MISUSE
    assert alert.severity is Severity.WARN
    assert alert.id == "funds_misuse:2026-03-03:loan-7"
    assert alert.loan_ids == (7,)


def test_misuse_penalty_worked_examples() -> None:
    p = misuse_penalty(Decimal("0.12"), Decimal("0.50"), Decimal("0.24"))
    assert p.rate == Decimal("0.18")
    assert p.applied_rate == Decimal("0.18")
    assert not p.capped
    p = misuse_penalty(Decimal("0.15"), Decimal("1.00"), Decimal("0.24"))
    assert p.rate == Decimal("0.30")
    assert p.applied_rate == Decimal("0.24")
    assert p.capped
    p = misuse_penalty(Decimal("0.0999999"), Decimal("0.55"), Decimal("0.24"))
    assert p.rate == Decimal("0.15499985")  # 0.154999845 rounds half up at 1e-8
    for bad in ("0.49", "1.01"):
        with pytest.raises(ValidationError):
            misuse_penalty(Decimal("0.1"), Decimal(bad), Decimal("0.24"))


@given(
    rate=st.decimals(min_value="0", max_value="0.36", places=6),
    markup=st.decimals(min_value="0.50", max_value="1.00", places=2),
)
def test_penalty_is_contract_rate_times_one_plus_markup_to_the_1e8(
    rate: Decimal, markup: Decimal
) -> None:
    p = misuse_penalty(rate, markup, Decimal("0.24"))
    exact = rate + rate * markup  # computed another way
    assert abs(p.rate - exact) <= Decimal("0.000000005")
    assert p.rate == exact.quantize(Decimal("1e-8"), rounding=ROUND_HALF_UP)
    assert p.rate >= rate * Decimal("1.5") - Decimal("5e-9")  # markup is at least 50 %
    assert p.applied_rate == min(p.rate, Decimal("0.24"))
    assert p.applied_rate >= min(rate, Decimal("0.24"))  # never below the contract rate (uncapped)


@given(fen=st.integers(min_value=1, max_value=10**13))
def test_amounts_reach_storage_as_exact_fen(fen: int) -> None:
    from lendstack.core.money import from_fen, to_fen

    text = f"{fen // 100}.{fen % 100:02d}"
    parsed = parse_transaction({**GOOD, "amount": text}).amount
    assert to_fen(parsed) == fen  # no float, no rounding: the fen survive the trip
    assert from_fen(to_fen(parsed)) == parsed

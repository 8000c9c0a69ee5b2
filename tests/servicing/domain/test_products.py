"""Products: built-ins load, malformed files name the file and the field, ranges hold."""

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from lendstack.core.daycount import DayCount
from lendstack.core.errors import NotFound, ValidationError
from lendstack.core.money import Rounding
from lendstack.servicing.domain import (
    DEFAULT_ORDER,
    Component,
    Product,
    ProductCatalog,
    RepaymentMethod,
    builtin_products,
    generate,
    load_product,
)

GOOD = """
id = "test-loan"
name = "Test loan"
method = "equal-installment"
terms_allowed = [3, 6, 12]
rate_min = 0.05
rate_max = 0.24
fee_rate_min = 0.001
fee_rate_max = 0.002
amount_min = 500
amount_max = 20000
day_count = "ACT/360"
rounding = "half-even"
grace_days = 3
penalty_multiplier = 1.5
"""


def write(tmp_path: Path, text: str, name: str = "product.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_builtins_cover_every_method() -> None:
    products = builtin_products()
    assert len(products) >= 5
    assert {p.method for p in products} == set(RepaymentMethod)
    assert len({p.id for p in products}) == len(products)


@pytest.mark.parametrize("product", builtin_products(), ids=lambda p: p.id)
def test_every_builtin_quotes_at_its_bounds(product: Product) -> None:
    for term in product.terms_allowed:
        for amount, rate in (
            (product.amount_min, product.rate_min),
            (product.amount_max, product.rate_max),
        ):
            schedule = generate(product.terms(amount, term, rate, date(2024, 1, 31)))
            assert schedule.total_principal == amount
            assert schedule.apr().apr_irr >= 0


def test_builtin_details() -> None:
    catalog = ProductCatalog()
    cash = catalog.get("cash-loan-installment")
    assert cash.terms_allowed == (3, 6, 12, 24, 36)
    assert (cash.rate_min, cash.rate_max) == (Decimal("0.072"), Decimal("0.24"))
    assert cash.day_count is DayCount.ACT_365F
    assert cash.waterfall == DEFAULT_ORDER
    huabei = catalog.get("huabei-installment")
    assert huabei.method is RepaymentMethod.INTEREST_FREE_FEE
    assert huabei.penalty_rate(Decimal(0)) == Decimal("0.18")
    bullet = catalog.get("short-term-bullet")
    assert max(bullet.terms_allowed) <= 12  # bullet consumer loans: at most one year
    guaranteed = catalog.get("guaranteed-installment")
    assert guaranteed.waterfall[1] is Component.OVERDUE_FEE
    assert "cash-loan-installment" in catalog
    assert len(catalog) == len(catalog.all())


def test_unknown_product_is_not_found() -> None:
    with pytest.raises(NotFound) as err:
        ProductCatalog().get("payday-2000")
    assert err.value.field == "product"


def test_load_good_file(tmp_path: Path) -> None:
    p = load_product(write(tmp_path, GOOD))
    assert p.id == "test-loan"
    assert p.rate_min == Decimal("0.05")
    assert isinstance(p.rate_min, Decimal)
    assert p.rounding is Rounding.HALF_EVEN
    assert p.waterfall == DEFAULT_ORDER
    assert (p.non_accrual_dpd, p.charge_off_dpd) == (90, 180)
    assert p.penalty_rate(Decimal("0.2")) == Decimal("0.300")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('method = "equal-installment"', 'method = "balloon"', "method"),
        ("rate_min = 0.05", 'rate_min = "cheap"', "rate_min"),
        ("rate_min = 0.05", "rate_min = true", "rate_min"),
        ("grace_days = 3", "grace_days = 3.5", "grace_days"),
        ("terms_allowed = [3, 6, 12]", 'terms_allowed = ["3"]', "terms_allowed.0"),
        ('name = "Test loan"\n', "", "name"),
        ("penalty_multiplier = 1.5\n", "", "penalty_multiplier"),
        ("penalty_multiplier = 1.5", "penalty_multiplier = 1.6", "penalty_multiplier"),
        ("penalty_multiplier = 1.5", "penalty_multiplier = 1.2", "penalty_multiplier"),
        ("rate_max = 0.24", "rate_max = 0.01", "rate_max"),
        ("rate_max = 0.24", "rate_max = 1.2", "rate_max"),
        ("rate_min = 0.05", "rate_min = -0.05", "rate_min"),
        ("fee_rate_max = 0.002", "fee_rate_max = 0.0005", "fee_rate_max"),
        ("amount_min = 500", "amount_min = 0", "amount_min"),
        ("amount_min = 500", "amount_min = 500.001", "amount_min"),
        ("amount_max = 20000", "amount_max = 100", "amount_max"),
        ("terms_allowed = [3, 6, 12]", "terms_allowed = [12, 6]", "terms_allowed"),
        ("terms_allowed = [3, 6, 12]", "terms_allowed = []", "terms_allowed"),
        ("terms_allowed = [3, 6, 12]", "terms_allowed = [0, 3]", "terms_allowed"),
        ('day_count = "ACT/360"', 'day_count = "ACT/ACT"', "day_count"),
        ('rounding = "half-even"', 'rounding = "bankers"', "rounding"),
        ("grace_days = 3", "grace_days = 45", "grace_days"),
        ('id = "test-loan"', 'id = "Test Loan"', "id"),
        ("grace_days = 3", "grace_days = 3\ncolour = 'red'", "colour"),
        ("grace_days = 3", "grace_days = 3\nwaterfall = ['overdue_penalty']", "waterfall"),
        ("grace_days = 3", "grace_days = 3\nnon_accrual_dpd = 200", "non_accrual_dpd"),
        ('name = "Test loan"', "name = ", "file"),
        ("rate_max = 0.24", "rate_max = inf", "rate_max"),
        ("rate_min = 0.05", "rate_min = nan", "rate_min"),
    ],
)
def test_malformed_file_names_the_file_and_field(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new), "broken.toml")
    with pytest.raises(ValidationError) as err:
        load_product(path)
    assert err.value.field == field
    assert "broken.toml" in str(err.value)


def test_penalty_error_says_why(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("penalty_multiplier = 1.5", "penalty_multiplier = 2"))
    with pytest.raises(ValidationError, match="251"):
        load_product(path)


def test_interest_free_product_must_have_zero_rate(tmp_path: Path) -> None:
    text = GOOD.replace('"equal-installment"', '"interest-free-fee"')
    with pytest.raises(ValidationError) as err:
        load_product(write(tmp_path, text))
    assert err.value.field == "rate_max"


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_product(tmp_path / "absent.toml")


def test_extra_directory_overrides_by_id(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    override = GOOD.replace('"test-loan"', '"cash-loan-installment"').replace(
        '"Test loan"', '"Ours"'
    )
    write(tmp_path, override, "cash.toml")
    catalog = ProductCatalog(tmp_path)
    assert catalog.get("cash-loan-installment").name == "Ours"
    assert catalog.get("test-loan").terms_allowed == (3, 6, 12)
    assert catalog.get("huabei-installment").method is RepaymentMethod.INTEREST_FREE_FEE


def test_duplicate_ids_in_one_directory(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.toml")
    write(tmp_path, GOOD, "b.toml")
    with pytest.raises(ValidationError) as err:
        ProductCatalog(tmp_path)
    assert err.value.field == "id"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount": Decimal(499)}, "amount"),
        ({"amount": Decimal(20001)}, "amount"),
        ({"amount": Decimal("600.001")}, "amount"),
        ({"term_months": 24}, "term"),
        ({"rate": Decimal("0.25")}, "rate"),
        ({"rate": Decimal("0.01")}, "rate"),
        ({"fee_rate": Decimal("0.003")}, "fee_rate"),
        ({"upfront_fee_rate": Decimal("0.01")}, "upfront_fee_rate"),
        ({"rate": 0.1}, "rate"),
        ({"rate": Decimal("NaN")}, "rate"),
        ({"amount": Decimal("Infinity")}, "amount"),
        ({"term_months": True}, "term"),
    ],
)
def test_terms_enforce_the_ranges(tmp_path: Path, kwargs: dict[str, object], field: str) -> None:
    product = load_product(write(tmp_path, GOOD))
    args: dict[str, object] = {"amount": Decimal(1000), "term_months": 6, "rate": Decimal("0.1")}
    with pytest.raises(ValidationError) as err:
        product.terms(start=date(2024, 1, 1), **(args | kwargs))  # type: ignore[arg-type]
    assert err.value.field == field


def test_terms_carry_the_products_conventions(tmp_path: Path) -> None:
    product = load_product(write(tmp_path, GOOD))
    t = product.terms(Decimal(1000), 6, Decimal("0.1"), date(2024, 1, 1))
    assert t.fee_rate == Decimal("0.001")  # omitted fee → range minimum
    assert t.day_count is DayCount.ACT_360
    assert t.rounding is Rounding.HALF_EVEN
    assert t.method is RepaymentMethod.EQUAL_INSTALLMENT
    t2 = product.terms(
        Decimal(1000), 6, Decimal("0.1"), date(2024, 1, 1), fee_rate=Decimal("0.002")
    )
    assert t2.fee_rate == Decimal("0.002")


def test_product_validates_when_built_directly() -> None:
    base = builtin_products()[0]
    with pytest.raises(ValidationError) as err:
        replace(base, penalty_multiplier=Decimal("1.29"))
    assert err.value.field == "penalty_multiplier"
    with pytest.raises(ValidationError) as err:
        replace(base, waterfall=(Component.CURRENT_FEE,))
    assert err.value.field == "waterfall"

"""Bad input through the CLI: a clear message naming the field, a non-zero exit, nothing written.

Each case runs `lendstack` in-process against a database holding a booked loan, closed
business dates and a posted payment, and compares a dump of every table before and after.
They run on SQLite and, with LENDSTACK_TEST_DATABASE_URL set, on PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from dbstate import dump

from lendstack.cli.main import main

BOOKED = date(2026, 1, 31)
CLOSED_THROUGH = date(2026, 2, 10)
OPEN = "2026-02-11"  # the open business date
VALIDATION, NOT_FOUND, CONFLICT = 2, 3, 4


def run_cli(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str]:
    """Run `lendstack --database URL args…`; (exit code, stderr with whitespace collapsed)."""
    capsys.readouterr()
    try:
        main(["--database", url, *args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    err = capsys.readouterr().err
    return code, re.sub(r"\s+", " ", err)


@pytest.fixture
def served(book, database_url: str) -> str:
    """A book with loan 1, dates closed through CLOSED_THROUGH and payment key "first"."""
    loan = book.book("cash-loan-installment", "12000", 12, "0.18", BOOKED)
    assert loan.id == 1
    book.close_through(CLOSED_THROUGH)
    book.pay(loan.id, "100.00", date.fromisoformat(OPEN), key="first")
    return database_url


def _book(amount: str, product: str = "cash-loan-installment") -> list[str]:
    args = ["loan", "book", "--product", product, "--amount", amount]
    return [*args, "--term", "12", "--rate", "0.18", "--date", OPEN]


def _pay(loan: str, amount: str, on: str = OPEN, key: str = "new") -> list[str]:
    return ["pay", loan, amount, "--date", on, "--idempotency-key", key]


CASES = [
    # (id, argv, exit code, field, a word the message must carry)
    ("book-negative", _book("-100"), VALIDATION, "amount", "> 0"),
    ("book-zero", _book("0"), VALIDATION, "amount", "> 0"),
    ("book-sub-fen", _book("12000.005"), VALIDATION, "amount", "fen"),
    ("book-not-a-number", _book("12k"), VALIDATION, "amount", "not a number"),
    ("pay-zero", _pay("1", "0"), VALIDATION, "amount", "> 0"),
    ("pay-sub-fen", _pay("1", "10.001"), VALIDATION, "amount", "fen"),
    (
        "pay-negative-after-dashdash",
        ["pay", "1", "--date", OPEN, "--idempotency-key", "new", "--", "-5"],
        VALIDATION,
        "amount",
        "> 0",
    ),
    ("pay-unknown-loan", _pay("999", "100"), NOT_FOUND, "loan_id", "999"),
    ("show-unknown-loan", ["loan", "show", "999"], NOT_FOUND, "loan_id", "999"),
    ("book-unknown-product", _book("1000", "no-such-product"), NOT_FOUND, "product", "no-such"),
    ("pay-closed-date", _pay("1", "100", "2026-02-05"), CONFLICT, "date", "closed"),
    ("pay-last-closed-date", _pay("1", "100", "2026-02-10"), CONFLICT, "date", "closed"),
    ("pay-beyond-open-date", _pay("1", "100", "2026-03-01"), CONFLICT, "date", "open"),
    ("book-closed-date", [*_book("1000")[:-1], "2026-02-01"], CONFLICT, "date", "closed"),
    ("pay-key-conflict", _pay("1", "200", key="first"), CONFLICT, "idempotency_key", "different"),
    (
        "pay-key-conflict-date",
        _pay("1", "100", "2026-02-10", key="first"),
        CONFLICT,
        "idempotency_key",
        "different",
    ),
    ("reverse-unknown", ["pay", "reverse", "999", "--date", OPEN], NOT_FOUND, "payment_id", "999"),
    ("cob-date-earlier", ["cob", "run", "--date", "2026-02-05"], CONFLICT, "date", "earlier"),
    ("cob-through-earlier", ["cob", "run", "--through", "2026-02-05"], CONFLICT, "date", "earlier"),
    ("cob-skips-dates", ["cob", "run", "--date", "2026-02-20"], CONFLICT, "date", "skips"),
    (
        "payoff-quote-closed",
        ["loan", "payoff-quote", "1", "--date", "2026-02-01"],
        VALIDATION,
        "date",
        "closed",
    ),
]


@pytest.mark.parametrize(
    ("argv", "code", "field", "word"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_refused_by_field_and_writes_nothing(
    served, engine, capsys, argv, code, field, word
):
    before = dump(engine)
    exit_code, err = run_cli(capsys, served, *argv)
    assert exit_code == code, err
    assert f"{field}:" in err, err
    assert word in err, err
    assert "Traceback" not in err
    assert dump(engine) == before


def test_negative_payment_amount_without_dashdash_names_the_field(served, engine, capsys):
    before = dump(engine)
    exit_code, err = run_cli(capsys, served, *_pay("1", "-5"))
    assert dump(engine) == before
    assert exit_code == VALIDATION, err
    assert "amount:" in err, err


def test_a_missing_option_is_a_usage_error_not_a_traceback(served, engine, capsys):
    before = dump(engine)
    try:
        exit_code, err = run_cli(capsys, served, "pay", "1", "100")
    finally:
        assert dump(engine) == before
    assert exit_code == VALIDATION, err
    assert "--date" in err, err


def test_the_same_payment_repeated_is_not_an_error_and_writes_nothing(served, engine, capsys):
    """The control for the conflict cases: an identical retry returns the first result."""
    before = dump(engine)
    exit_code, err = run_cli(capsys, served, *_pay("1", "100.00", key="first"))
    assert exit_code == 0, err
    assert dump(engine) == before


def test_a_good_payment_does_write(served, engine, capsys):
    """The control for every case above: the same command with good input changes the book."""
    before = dump(engine)
    exit_code, err = run_cli(capsys, served, *_pay("1", "50.00"))
    assert exit_code == 0, err
    after = dump(engine)
    assert len(after["payments"]) == len(before["payments"]) + 1
    assert after["loans"] != before["loans"]


def test_payment_dated_before_disbursement(book, engine, database_url, capsys):
    """Before any close every date is open, so only the loan's own date can refuse it."""
    book.book("cash-loan-installment", "12000", 12, "0.18", date(2026, 3, 1))
    before = dump(engine)
    exit_code, err = run_cli(capsys, database_url, *_pay("1", "100", "2026-02-20"))
    assert exit_code == VALIDATION, err
    assert "date:" in err, err
    assert "disbursement" in err, err
    assert dump(engine) == before


BROKEN_PRODUCTS = {
    "syntax": ('id = "cash-loan-installment\nname = ', "file", "not valid TOML"),
    "wrong-type": (
        'id = "my-loan"\nname = "x"\nmethod = "equal-installment"\nterms_allowed = "twelve"\n',
        "terms_allowed",
        "my-loan.toml",
    ),
    "unknown-key": ("colour = 'red'\n", "colour", "my-loan.toml"),
    "business-rule": (None, "penalty_multiplier", "1.3"),
}


def _valid_product_text() -> str:
    path = Path(__file__).parents[2] / "src/lendstack/servicing/products/cash-loan-installment.toml"
    text = path.read_text(encoding="utf-8")
    return text.replace('id = "cash-loan-installment"', 'id = "my-loan"')


PRODUCT_CASES = [(kind, _book("1000")) for kind in BROKEN_PRODUCTS] + [
    ("syntax", ["product", "list"]),
    ("business-rule", ["product", "show", "cash-loan-installment"]),
]


@pytest.mark.parametrize(
    ("kind", "argv"), PRODUCT_CASES, ids=[f"{k}-{a[0]}-{a[1]}" for k, a in PRODUCT_CASES]
)
def test_malformed_product_file_is_refused_by_field(
    served, engine, capsys, monkeypatch, tmp_path, kind, argv
):
    text, field, word = BROKEN_PRODUCTS[kind]
    if kind == "business-rule":
        text = _valid_product_text().replace("penalty_multiplier = 1.5", "penalty_multiplier = 2.0")
    elif kind == "unknown-key":
        text = _valid_product_text() + str(text)
    folder = tmp_path / "products"
    folder.mkdir()
    (folder / "my-loan.toml").write_text(str(text), encoding="utf-8")
    monkeypatch.setenv("LENDSTACK_PRODUCTS_DIR", str(folder))
    before = dump(engine)
    exit_code, err = run_cli(capsys, served, *argv)
    assert exit_code == VALIDATION, err
    assert f"{field}:" in err, err
    assert word in err, err
    assert "my-loan.toml" in err, err
    assert dump(engine) == before


def test_a_valid_extra_product_is_offered(served, engine, capsys, monkeypatch, tmp_path):
    """The control for the malformed files: the same file, intact, loads and books."""
    folder = tmp_path / "products"
    folder.mkdir()
    (folder / "my-loan.toml").write_text(_valid_product_text(), encoding="utf-8")
    monkeypatch.setenv("LENDSTACK_PRODUCTS_DIR", str(folder))
    exit_code, err = run_cli(capsys, served, *_book("1000", "my-loan"))
    assert exit_code == 0, err
    with engine.connect() as conn:
        from sqlalchemy import text

        row = conn.execute(text("SELECT product_id, principal_fen FROM loans WHERE id = 2")).one()
    assert tuple(row) == ("my-loan", int(Decimal("1000") * 100))

"""Registers the servicing command groups on the root CLI."""

from __future__ import annotations

import typer

from lendstack.cli import books, demo, loans, payment_file

__all__ = ["payment_file", "register"]  # imported for the command it registers


def register(app: typer.Typer) -> None:
    app.command("init")(books.init)
    app.command("demo")(demo.demo)
    app.add_typer(loans.product_app, name="product")
    app.add_typer(loans.loan_app, name="loan")
    app.add_typer(loans.pay_app, name="pay")  # with `pay file` (payment_file) registered on it
    app.add_typer(books.cob_app, name="cob")
    app.add_typer(books.ledger_app, name="ledger")
    app.add_typer(books.portfolio_app, name="portfolio")

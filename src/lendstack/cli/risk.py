"""`lendstack risk …`: portfolio analytics, expected credit loss and stress over the book."""

from __future__ import annotations

import typer

from lendstack.cli.risk_ecl import register as register_ecl

risk_app = typer.Typer(
    help="Risk and the regulator's view: vintages, roll rates, ECL, stress.", no_args_is_help=True
)

register_ecl(risk_app)

__all__ = ["risk_app"]

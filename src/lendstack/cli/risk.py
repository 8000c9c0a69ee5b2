"""`lendstack risk …`: portfolio analytics, expected credit loss and stress over the book."""

from __future__ import annotations

import typer

from lendstack.cli.risk_ecl import register as register_ecl
from lendstack.cli.risk_funds import register as register_funds
from lendstack.cli.risk_monitoring import register as register_monitoring

risk_app = typer.Typer(
    help="Risk and the regulator's view: vintages, roll rates, ECL, stress, early warning, "
    "model drift and fairness, use-of-funds surveillance.",
    no_args_is_help=True,
)

register_ecl(risk_app)
register_monitoring(risk_app)
register_funds(risk_app)

__all__ = ["risk_app"]

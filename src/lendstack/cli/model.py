"""`lendstack model`: placeholder until the scoring capability lands (issue 3)."""

import typer

app = typer.Typer(
    help="Train, evaluate, explain and monitor credit (PD) models.", no_args_is_help=True
)

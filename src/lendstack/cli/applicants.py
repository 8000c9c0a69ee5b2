"""`lendstack applicants`: synthetic loan applicants and the training table built from them.

`generate` draws a population (`lendstack.underwriting.population`), validates every
application against the schema, maps each through the feature map (the same code the decision
engine runs) and writes:

- `applications.jsonl`: one application per line, exactly the `Application` JSON;
- `outcomes.csv`: row, defaulted (90+ DPD in 12 months), latent_pd (the true PD);
- `training.csv`: the feature-mapped table plus `defaulted`, ready for `lendstack model train`;
- `labels.json`: reason texts from the feature map, for `model train --labels`;
- `summary.json`: the config and the measured bad rates and latent AUC.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import typer

from lendstack.cli.params import parse_date
from lendstack.cli.render import OutputFormat, console, print_json
from lendstack.core.errors import ValidationError

app = typer.Typer(help="Synthetic loan applicants and model training tables.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Synthetic loan applicants and model training tables."""


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", help="Directory to write the files into."),
    n: int = typer.Option(20_000, "--n", min=1, max=5_000_000, help="Number of applicants."),
    seed: int = typer.Option(7, "--seed", help="Same seed, same applicants and outcomes."),
    start: str = typer.Option("2025-10-01", "--start", help="First application date (ISO)."),
    months: int = typer.Option(12, "--months", min=1, max=120, help="Months of applications."),
    feature_map: Path | None = typer.Option(
        None, "--feature-map", help="Feature map TOML (default: the default model's)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty --out."),
    fmt: OutputFormat = typer.Option(OutputFormat.TABLE, "--format", help="table or json"),
) -> None:
    """Generate applicants, outcomes and the feature-mapped training table."""
    from lendstack.underwriting.features import FeatureMap, default_feature_map_path
    from lendstack.underwriting.population import PopulationConfig, generate_population

    _check_out(out, overwrite)
    fmap = FeatureMap.load(feature_map or default_feature_map_path())
    config = PopulationConfig(seed=seed, n=n, start=parse_date(start, "start"), months=months)
    began = time.perf_counter()
    population = generate_population(config)
    summary = _write_all(population, fmap, out)
    summary["seconds"] = round(time.perf_counter() - began, 2)
    if fmt is OutputFormat.JSON:
        print_json(summary)
        return
    _render(summary, out)


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValidationError(f"{out} exists and is not a directory", field="out")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ValidationError(f"{out} exists and is not empty (use --overwrite)", field="out")


def _write_all(population: Any, fmap: Any, out: Path) -> dict[str, Any]:
    """Validate every application (a schema break is a bug, so it raises), then write."""
    from lendstack.underwriting.application import Application

    out.mkdir(parents=True, exist_ok=True)
    raw = list(population.applications())
    apps = [Application.model_validate(a) for a in raw]
    with (out / "applications.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(a, ensure_ascii=False) + "\n" for a in raw)
    outcomes = population.outcomes
    defaulted = outcomes.defaulted.astype(int).tolist()
    _write_csv(
        out / "outcomes.csv",
        {
            "row": list(range(len(raw))),
            "defaulted": defaulted,
            "latent_pd": outcomes.latent_pd.tolist(),
        },
    )
    _write_csv(out / "training.csv", {**fmap.columns(apps), "defaulted": defaulted})
    (out / "labels.json").write_text(json.dumps(fmap.labels(), indent=1) + "\n", encoding="utf-8")
    summary = _summary(population)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def _write_csv(path: Path, columns: dict[str, list[Any]]) -> None:
    """Floats are written with repr, so reading the file back gives the same numbers."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))


def _summary(population: Any) -> dict[str, Any]:
    cfg, outcomes = population.config, population.outcomes
    screened = population.screened
    return {
        "n": cfg.n,
        "seed": cfg.seed,
        "start": cfg.start.isoformat(),
        "months": cfg.months,
        "bad_rate": outcomes.bad_rate,
        "screened_share": float(screened.mean()),
        "screened_bad_rate": float(outcomes.defaulted[screened].mean()) if screened.any() else None,
        "latent_auc": _finite(outcomes.latent_auc),
    }


def _finite(value: float) -> float | None:
    """JSON has no NaN: an AUC on a one-class sample is reported as null."""
    return value if value == value else None


def _render(summary: dict[str, Any], out: Path) -> None:
    screened = summary["screened_bad_rate"]
    console.print(
        f"{summary['n']:,} applicants -> [bold]{out}[/] in {summary['seconds']:.1f} s\n"
        f"bad rate (90+ DPD in 12 months) {summary['bad_rate']:.2%}; "
        f"after the reference screen ({summary['screened_share']:.0%} pass) "
        + (f"{screened:.2%}" if screened is not None else "n/a")
    )
    if summary["latent_auc"] is not None:
        console.print(f"latent-model AUC (the ceiling for any model) {summary['latent_auc']:.4f}")

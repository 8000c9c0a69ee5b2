"""`lendstack model`: train, evaluate, score, explain, report and monitor credit (PD) models.

Each command parses, calls one scoring use case and renders; the scoring package does the work.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lendstack.cli.render import OutputFormat, console, err_console, print_json
from lendstack.core.errors import ValidationError

app = typer.Typer(
    help="Train, evaluate, explain and monitor credit (PD) models.", no_args_is_help=True
)

_FORMAT = typer.Option(OutputFormat.TABLE, "--format", help="table or json")
_SEED = typer.Option(42, "--seed", help="Random seed: same data and seed, same model files.")


def _split(values: list[str] | None) -> tuple[str, ...]:
    """Accept `--exclude a,b` and `--exclude a --exclude b` alike."""
    return tuple(v.strip() for raw in values or [] for v in raw.split(",") if v.strip())


@contextmanager
def _progress(total: int, label: str, quiet: bool) -> Iterator[Any]:
    """A rich progress bar on stderr, fed by the scoring package's step callback."""
    if quiet:
        yield lambda _msg: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[step]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=total, step="")
        yield lambda msg: bar.update(task, advance=1, step=msg)


def _config(seed: int, inner_folds: int) -> Any:
    from lendstack.scoring import PipelineConfig

    return PipelineConfig(seed=seed, inner_folds=inner_folds)


@app.command()
def train(
    data: Path = typer.Argument(..., help="CSV/TSV, Parquet or Excel table of past loans."),
    target: str = typer.Option(..., "--target", help="Outcome column."),
    out: Path = typer.Option(..., "--out", help="Model directory to create."),
    positive: str | None = typer.Option(None, "--positive", help="Target value meaning default."),
    exclude: list[str] | None = typer.Option(None, "--exclude", help="Columns to leave out."),
    protected: list[str] | None = typer.Option(None, "--protected", help="Fairness attributes."),
    labels: Path | None = typer.Option(None, "--labels", help="JSON: column -> reason text."),
    cutoff: float | None = typer.Option(None, "--cutoff", help="Approve when PD <= cutoff."),
    seed: int = _SEED,
    inner_folds: int = typer.Option(4, "--inner-folds", min=2, help="Folds for blending."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
    fmt: OutputFormat = _FORMAT,
) -> None:
    """Train the champion (LightGBM + scorecard + logistic, blended and calibrated)."""
    from lendstack.scoring import TrainRequest, train_model

    request = TrainRequest(
        data,
        target,
        out,
        positive,
        _split(exclude),
        _split(protected),
        labels,
        cutoff,
        overwrite,
        _config(seed, inner_folds),
    )
    with _progress(inner_folds + 2, "training", fmt is OutputFormat.JSON) as step:
        model = train_model(request, step)
    _render_train(model, out, fmt)


def _render_train(model: Any, out: Path, fmt: OutputFormat) -> None:
    md = model.metadata
    summary = {
        "out": str(out),
        "rows": md["data"]["rows"],
        "positive_rate": md["target"]["positive_rate"],
        "features": list(model.spec.names),
        "dropped": {d.name: d.reason.value for d in model.spec.dropped},
        "pipeline": md["pipeline"],
        "inner_cv": md["cv_metrics"]["models"],
    }
    if fmt is OutputFormat.JSON:
        print_json(summary)
        return
    for name, reason in summary["dropped"].items():
        console.print(f"dropped [bold]{name}[/]: {reason}")
    champ = summary["inner_cv"]["champion"]
    console.print(
        f"model written to [bold]{out}[/]: {len(summary['features'])} features, "
        f"inner-CV AUC {champ['auc']:.4f}, calibration {md['pipeline']['calibration']}"
    )


@app.command()
def evaluate(
    data: Path = typer.Argument(..., help="Table of past loans."),
    target: str = typer.Option(..., "--target"),
    positive: str | None = typer.Option(None, "--positive"),
    folds: int = typer.Option(5, "--folds", min=2),
    seed: int = _SEED,
    exclude: list[str] | None = typer.Option(None, "--exclude"),
    protected: list[str] | None = typer.Option(None, "--protected"),
    cutoff: float | None = typer.Option(None, "--cutoff", help="Approve when PD <= cutoff."),
    inner_folds: int = typer.Option(4, "--inner-folds", min=2),
    fmt: OutputFormat = _FORMAT,
) -> None:
    """Stratified K-fold CV of the whole pipeline: champion vs scorecard vs logistic."""
    from lendstack.scoring import encode_target, evaluate_pipeline, evaluation_fairness, load_table

    frame = load_table(data)
    y = encode_target(frame, target, positive).y
    total = folds * (inner_folds + 2)
    with _progress(total, "cross-validating", fmt is OutputFormat.JSON) as step:
        result = evaluate_pipeline(
            frame,
            y,
            target,
            _config(seed, inner_folds),
            folds,
            _split(exclude),
            _split(protected),
            step,
        )
    payload = result.to_json()
    fair = evaluation_fairness(frame, _split(protected), result, y, cutoff)
    if fair:
        payload["fairness"] = fair
    if fmt is OutputFormat.JSON:
        print_json(payload)
        return
    _metrics_table(payload)
    if fair:
        _fairness_table(fair)


def _metrics_table(payload: dict[str, Any]) -> None:
    table = Table(
        title=f"{payload['folds']}-fold CV, {payload['rows']:,} rows, "
        f"positive rate {payload['positive_rate']:.2%}"
    )
    table.add_column("model")
    metrics = ["auc", "gini", "ks", "brier", "log_loss", "ece"]
    for m in metrics:
        table.add_column(m, justify="right")
    for name, values in payload["models"].items():
        table.add_row(name, *(f"{values[m]['mean']:.4f} ± {values[m]['std']:.4f}" for m in metrics))
    console.print(table)


def _fairness_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title="fairness (out-of-fold PDs)")
    for col in ("attribute", "group", "n", "approval", "default", "AIR", "95% CI"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["attribute"],
            r["group"],
            str(r["count"]),
            f"{r['approval_rate']:.3f}",
            f"{r['default_rate']:.3f}",
            f"{r['air']:.3f}",
            f"{r['air_low']:.3f}-{r['air_high']:.3f}",
        )
    console.print(table)


@app.command()
def score(
    model_dir: Path = typer.Argument(..., help="Model directory from `model train`."),
    data: Path = typer.Argument(..., help="Table to score."),
    out: Path = typer.Option(..., "--out", help="Output .csv or .parquet."),
    reasons: bool = typer.Option(False, "--reasons", help="Add the top 4 adverse reasons."),
) -> None:
    """Batch scoring: PD, points and (optionally) reason codes for every row."""
    from lendstack.scoring import load_model, load_table, score_frame, write_table

    model = load_model(model_dir)
    frame = load_table(data)
    with _progress(1, "scoring", False) as step:
        result = score_frame(model, frame, reasons)
        step("done")
    write_table(result, out)
    console.print(f"scored {len(result):,} rows -> [bold]{out}[/]")


@app.command()
def explain(
    model_dir: Path = typer.Argument(..., help="Model directory."),
    row: Path = typer.Argument(..., help="JSON file holding one applicant (column -> value)."),
    fmt: OutputFormat = _FORMAT,
) -> None:
    """One applicant's PD, points and reasons (champion and scorecard)."""
    from lendstack.scoring import load_model, row_score_to_json

    model = load_model(model_dir)
    try:
        applicant = json.loads(row.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"cannot read {row}: {exc}", field="row") from exc
    if not isinstance(applicant, dict):
        raise ValidationError("the row file must hold one JSON object", field="row")
    payload = row_score_to_json(model.score_row(applicant))
    if fmt is OutputFormat.JSON:
        print_json(payload)
        return
    console.print(
        f"PD [bold]{payload['pd']:.4f}[/]  points {payload['points']:.1f}  "
        f"scorecard points {payload['scorecard_points']:.1f}"
    )
    for kind in ("reasons", "scorecard_reasons"):
        console.print(f"[bold]{kind.replace('_', ' ')}[/]")
        for r in payload[kind]:
            console.print(f"  {r['text']}  ({r['impact']:+.3f})")


@app.command()
def report(
    model_dir: Path = typer.Argument(..., help="Model directory."),
    data: Path | None = typer.Option(None, "--data", help="Labelled table to report on."),
    out: Path | None = typer.Option(None, "--out", help="HTML file (default <DIR>-report.html)."),
) -> None:
    """Self-contained HTML report: ROC/KS, calibration, gains, importance, points, fairness."""
    from lendstack.scoring import build_report, load_model

    model = load_model(model_dir)
    target = out or Path(f"{Path(model_dir).name}-report.html")
    with _progress(1, "rendering report", False) as step:
        build_report(model, Path(model_dir), data, target)
        step("done")
    console.print(f"report written to [bold]{target}[/]")


@app.command()
def monitor(
    model_dir: Path = typer.Argument(..., help="Model directory."),
    current: Path = typer.Option(..., "--current", help="Current applications to compare."),
    fmt: OutputFormat = _FORMAT,
) -> None:
    """PSI of score and features against training (0.10 / 0.25 bands), characteristic analysis."""
    from lendstack.scoring import load_model, load_table, monitor_model

    model = load_model(model_dir)
    payload = monitor_model(model, load_table(current))
    if fmt is OutputFormat.JSON:
        print_json(payload)
        return
    table = Table(title="population stability (PSI vs training)")
    for col in ("variable", "PSI", "band"):
        table.add_column(col)
    for r in payload["psi"]:
        table.add_row(r["name"], f"{r['psi']:.4f}", r["band"])
    console.print(table)
    chars = Table(title="characteristic analysis (scorecard points shift)")
    for col in ("characteristic", "points shift"):
        chars.add_column(col)
    for name, shift in payload["characteristic_shift"].items():
        chars.add_row(name, f"{shift:+.2f}")
    console.print(chars)

"""The model report: one self-contained HTML file, charts inline as SVG, nothing fetched.

A validator opens it offline, on an air-gapped laptop if need be. Charts are matplotlib SVG
embedded in the page; tables are plain HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_curve

from lendstack.reporting import Page
from lendstack.scoring.artifacts import load_oof
from lendstack.scoring.data import encode_target, load_table
from lendstack.scoring.fairness import GroupRow, fairness_table, group_labels
from lendstack.scoring.metrics import compute_metrics
from lendstack.scoring.model import CreditModel


def _roc_ks(y: np.ndarray, p: np.ndarray) -> Any:
    fpr, tpr, _ = roc_curve(y, p)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    a.plot(fpr, tpr)
    a.plot([0, 1], [0, 1], "--", color="grey")
    a.set(title="ROC", xlabel="false positive rate", ylabel="true positive rate")
    order = np.argsort(-p)
    pos = np.cumsum(y[order]) / max(y.sum(), 1)
    neg = np.cumsum(1 - y[order]) / max((1 - y).sum(), 1)
    share = np.arange(1, len(y) + 1) / len(y)
    b.plot(share, pos, label="defaults")
    b.plot(share, neg, label="non-defaults")
    k = int(np.argmax(pos - neg))
    b.vlines(share[k], neg[k], pos[k], colors="red", label=f"KS {pos[k] - neg[k]:.3f}")
    b.set(title="KS", xlabel="share of population (riskiest first)", ylabel="cumulative share")
    b.legend()
    return fig


def _calibration(y: np.ndarray, p: np.ndarray) -> Any:
    order = np.argsort(p)
    chunks = np.array_split(order, 10)
    fig, ax = plt.subplots(figsize=(4.4, 3.6))
    ax.plot(
        [c.size and p[c].mean() for c in chunks], [c.size and y[c].mean() for c in chunks], "o-"
    )
    top = float(max(p.max(), y.mean()))
    ax.plot([0, top], [0, top], "--", color="grey")
    ax.set(
        title="calibration (deciles)", xlabel="mean predicted PD", ylabel="observed default rate"
    )
    return fig


def _distributions(y: np.ndarray, points: np.ndarray) -> Any:
    fig, ax = plt.subplots(figsize=(4.4, 3.6))
    bins = np.linspace(points.min(), points.max(), 40)
    ax.hist(points[y == 0], bins=bins, alpha=0.6, density=True, label="non-default")
    ax.hist(points[y == 1], bins=bins, alpha=0.6, density=True, label="default")
    ax.set(title="score distribution by outcome", xlabel="points", ylabel="density")
    ax.legend()
    return fig


def _importance(model: CreditModel) -> Any:
    gain = np.asarray(model.champion.booster.feature_importance("gain"), dtype=float)
    share = gain / gain.sum() if gain.sum() > 0 else gain
    order = np.argsort(share)[-15:]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(order) + 1))
    ax.barh([model.spec.features[i].name for i in order], share[order])
    ax.set(title="LightGBM feature importance (share of gain)")
    return fig


def gains_table(y: np.ndarray, p: np.ndarray, groups: int = 10) -> list[list[str]]:
    """Deciles riskiest first: count, defaults, default rate, cumulative capture, lift."""
    order = np.argsort(-p, kind="stable")
    base = y.mean()
    rows, captured = [], 0.0
    for i, chunk in enumerate(np.array_split(order, groups)):
        captured += y[chunk].sum()
        rate = y[chunk].mean()
        rows.append(
            [
                str(i + 1),
                f"{len(chunk)}",
                f"{int(y[chunk].sum())}",
                f"{rate:.3f}",
                f"{captured / y.sum():.3f}",
                f"{rate / base:.2f}",
            ]
        )
    return rows


def _points_rows(model: CreditModel) -> list[list[str]]:
    rows = []
    for ch in model.champion.scorecard.characteristics:
        name = model.spec.features[ch.index].name
        for label, woe, pts in zip(ch.labels, ch.woe, ch.points, strict=True):
            rows.append([name, label, f"{woe:.3f}", f"{pts:.1f}"])
    return rows


def _fair_rows(rows: list[GroupRow] | tuple[GroupRow, ...]) -> list[list[str]]:
    return [
        [
            r.attribute,
            r.group,
            str(r.count),
            f"{r.approval_rate:.3f}",
            f"{r.default_rate:.3f}",
            f"{r.air:.3f}",
            f"{r.air_low:.3f}-{r.air_high:.3f}",
        ]
        for r in rows
    ]


def _inputs(model: CreditModel, model_dir: Path, data: Path | None) -> tuple[Any, ...]:
    """(y, pd, fairness rows, source text) from given data, or the training out-of-fold PDs."""
    if data is None:
        oof = load_oof(model_dir)
        return oof[:, 0], oof[:, 1], model.fairness, "training data, inner out-of-fold PDs"
    frame = load_table(data)
    tgt = model.metadata["target"]
    y = encode_target(frame, tgt["column"], tgt["positive_label"]).y
    p = model.champion.pd(model.spec.encode_frame(frame))
    cutoff = model.profile.get("cutoff", float(y.mean()))
    fair = [
        row
        for col in model.spec.protected
        if col in frame
        for row in fairness_table(col, group_labels(frame[col]), p, y, cutoff)
    ]
    return y, p, fair, f"{Path(data).name} ({len(y):,} rows)"


def build_report(model: CreditModel, model_dir: Path, data: Path | None, out: Path) -> Path:
    """Render the report to `out` (HTML, no external resources)."""
    y, p, fair, source = _inputs(model, model_dir, data)
    metrics = compute_metrics(y, p)
    points = model.champion.scorecard.scaling.points_from_pd(p)
    page = Page("Credit model report")
    page.paragraph(f"Data: {source}. Target {model.metadata['target']['column']}.")
    page.table([{"metric": m.value, "value": f"{v:.4f}"} for m, v in metrics.items()])
    page.heading("Discrimination").chart(_roc_ks(y, p))
    page.heading("Calibration and score distribution")
    page.charts([_calibration(y, p), _distributions(y, points)])
    page.heading("Gains and lift").table(_rows(_GAINS, gains_table(y, p)))
    page.heading("Feature importance").chart(_importance(model))
    page.heading("Scorecard points")
    page.table(_rows(["characteristic", "bin", "WOE", "points"], _points_rows(model)))
    page.heading("Fairness")
    if fair:
        page.table(_rows(_FAIR, _fair_rows(fair)))
    else:
        page.paragraph("No protected attributes (--protected).")
    return page.write(out)


_GAINS = ["decile", "count", "defaults", "default rate", "cum. capture", "lift"]
_FAIR = ["attribute", "group", "n", "approval rate", "default rate", "AIR", "95% CI"]


def _rows(header: list[str], rows: list[list[str]]) -> list[dict[str, object]]:
    return [dict(zip(header, r, strict=True)) for r in rows]

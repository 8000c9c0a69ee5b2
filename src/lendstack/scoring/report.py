"""The model report: one self-contained HTML file, charts inline as SVG, nothing fetched.

A validator opens it offline, on an air-gapped laptop if need be. Charts are matplotlib SVG
embedded in the page; tables are plain HTML.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_curve

from lendstack.scoring.artifacts import load_oof
from lendstack.scoring.data import encode_target, load_table
from lendstack.scoring.fairness import GroupRow, fairness_table, group_labels
from lendstack.scoring.metrics import compute_metrics
from lendstack.scoring.model import CreditModel

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:1em}"""


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _roc_ks(y: np.ndarray, p: np.ndarray) -> str:
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
    return _svg(fig)


def _calibration(y: np.ndarray, p: np.ndarray) -> str:
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
    return _svg(fig)


def _distributions(y: np.ndarray, points: np.ndarray) -> str:
    fig, ax = plt.subplots(figsize=(4.4, 3.6))
    bins = np.linspace(points.min(), points.max(), 40)
    ax.hist(points[y == 0], bins=bins, alpha=0.6, density=True, label="non-default")
    ax.hist(points[y == 1], bins=bins, alpha=0.6, density=True, label="default")
    ax.set(title="score distribution by outcome", xlabel="points", ylabel="density")
    ax.legend()
    return _svg(fig)


def _importance(model: CreditModel) -> str:
    gain = np.asarray(model.champion.booster.feature_importance("gain"), dtype=float)
    share = gain / gain.sum() if gain.sum() > 0 else gain
    order = np.argsort(share)[-15:]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(order) + 1))
    ax.barh([model.spec.features[i].name for i in order], share[order])
    ax.set(title="LightGBM feature importance (share of gain)")
    return _svg(fig)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


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
    parts = [
        f"<h1>Credit model report</h1><p>Data: {html.escape(source)}. Target "
        f"<code>{html.escape(model.metadata['target']['column'])}</code>.</p>",
        _table(["metric", "value"], [[m.value, f"{v:.4f}"] for m, v in metrics.items()]),
        "<h2>Discrimination</h2>",
        _roc_ks(y, p),
        "<h2>Calibration and score distribution</h2><div class=charts>",
        _calibration(y, p),
        _distributions(y, points),
        "</div>",
        "<h2>Gains and lift</h2>",
        _table(
            ["decile", "count", "defaults", "default rate", "cum. capture", "lift"],
            gains_table(y, p),
        ),
        "<h2>Feature importance</h2>",
        _importance(model),
        "<h2>Scorecard points</h2>",
        _table(["characteristic", "bin", "WOE", "points"], _points_rows(model)),
        "<h2>Fairness</h2>",
        _table(
            ["attribute", "group", "n", "approval rate", "default rate", "AIR", "95% CI"],
            _fair_rows(fair),
        )
        if fair
        else "<p>No protected attributes (--protected).</p>",
    ]
    page = (
        f"<!doctype html><html><head><meta charset=utf-8><title>Credit model report</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
    Path(out).write_text(page, encoding="utf-8")
    return Path(out)

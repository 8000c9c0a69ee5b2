"""The model card: one markdown page a credit committee can read before approving a model."""

from __future__ import annotations

from typing import Any

from lendstack.scoring.features import DropReason


def _metrics_table(models: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        "| model | AUC | Gini | KS | Brier | log loss | ECE |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in models.items():
        lines.append(
            f"| {name} | {m['auc']:.4f} | {m['gini']:.4f} | {m['ks']:.4f} | {m['brier']:.4f} "
            f"| {m['log_loss']:.4f} | {m['ece']:.4f} |"
        )
    return lines


def _features(model: Any) -> list[str]:
    lines = ["| code | feature | kind | label |", "|---|---|---|---|"]
    for f in model.spec.features:
        lines.append(f"| {f.code} | {f.name} | {f.kind.value} | {f.label} |")
    return lines


def _dropped(model: Any) -> list[str]:
    if not model.spec.dropped:
        return ["No columns were dropped."]
    return [f"- `{d.name}`: {DropReason(d.reason).value}" for d in model.spec.dropped]


def _fairness(model: Any) -> list[str]:
    if not model.fairness:
        return ["No protected attributes were given (`--protected`)."]
    lines = [
        "| attribute | group | n | approval rate | default rate | AIR (95% CI) |",
        "|---|---|---|---|---|---|",
    ]
    for r in model.fairness:
        lines.append(
            f"| {r.attribute} | {r.group} | {r.count} | {r.approval_rate:.3f} "
            f"| {r.default_rate:.3f} | {r.air:.3f} ({r.air_low:.3f}-{r.air_high:.3f}) |"
        )
    return lines


def render_model_card(model: Any) -> str:
    """Markdown describing data, pipeline, metrics, reasons, fairness and limits."""
    md = model.metadata
    pipe = md["pipeline"]
    weights = ", ".join(f"{k} {v:.3f}" for k, v in pipe["blend_weights"].items())
    sc = md["scaling"]
    lines = [
        "# Model card: probability of default",
        "",
        f"Trained {md['created_at']} on `{md['data']['file']}` "
        f"(sha256 `{md['data']['sha256'][:16]}…`), {md['data']['rows']:,} rows, "
        f"target `{md['target']['column']}` = `{md['target']['positive_label']}` "
        f"(positive rate {md['target']['positive_rate']:.2%}), seed {md['seed']}.",
        "",
        "## Pipeline",
        "",
        "Champion: LightGBM, an optbinning WOE scorecard and a standardised logistic regression, "
        f"blended on out-of-fold log-odds of {pipe['out_of_fold_rows']:,} training rows "
        f"({pipe['inner_folds']}-fold inner CV, or its first fold alone on large tables) "
        f"(weights per unit log-odds: {weights}) and calibrated with "
        f"**{pipe['calibration']}** calibration, chosen by cross-validated log loss. "
        f"LightGBM has {pipe['gbm_rounds']} trees (early stopping inside the training data).",
        "",
        f"Points scale: {sc['base_points']:g} points at good:bad odds {sc['base_odds']:g}:1, "
        f"{sc['pdo']:g} points to double the odds.",
        "",
        "## Inner cross-validation",
        "",
        *_metrics_table(md["cv_metrics"]["models"]),
        "",
        md["cv_metrics"]["kind"].capitalize() + ".",
        "",
        "## Features and reason codes",
        "",
        *_features(model),
        "",
        "Champion reasons are TreeSHAP/linear log-odds contributions relative to the training "
        "population mean; scorecard reasons are points below each characteristic's maximum.",
        "",
        "### Dropped columns",
        "",
        *_dropped(model),
        "",
        f"## Fairness (approve when PD <= {md['cutoff_pd']:.4f}, out-of-fold PDs)",
        "",
        *_fairness(model),
        "",
        "## Limits",
        "",
        "- Trained on historical outcomes: it learns past approval policy and past economy.",
        "- Reject inference is not performed; applicants declined in the past are absent.",
        "- Monitor drift with `lendstack model monitor` and retrain when PSI exceeds 0.25.",
        "",
    ]
    return "\n".join(lines)

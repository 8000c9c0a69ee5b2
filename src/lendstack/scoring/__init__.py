"""Credit scoring: train, evaluate, explain and monitor PD models on any tabular credit data.

Public surface (other capabilities import only these names):

- `load_model(dir) -> CreditModel`, then `model.score_row(mapping)` for in-process,
  single-applicant scoring with reasons (the underwriting engine's path);
- `train_model(TrainRequest)`, `evaluate_pipeline(...)` and the batch/report/monitor helpers
  the CLI uses.
"""

from lendstack.scoring.artifacts import load_model, load_oof, save_model, verify
from lendstack.scoring.batch import score_frame, write_table
from lendstack.scoring.champion import Champion, Component, PipelineConfig, fit_champion
from lendstack.scoring.data import Target, encode_target, load_table
from lendstack.scoring.evaluate import Evaluation, evaluate_pipeline
from lendstack.scoring.explain import Reason
from lendstack.scoring.fairness import GroupRow, fairness_table
from lendstack.scoring.features import FeatureKind, FeatureSpec, infer_spec
from lendstack.scoring.gbm import GBMConfig
from lendstack.scoring.metrics import Metric, compute_metrics
from lendstack.scoring.model import BatchScore, CreditModel, RowScore
from lendstack.scoring.monitor import Stability, psi
from lendstack.scoring.report import build_report
from lendstack.scoring.scorecard import Scaling
from lendstack.scoring.service import evaluation_fairness, monitor_model, row_score_to_json
from lendstack.scoring.train import TrainRequest, train_model

__all__ = [
    "BatchScore",
    "Champion",
    "Component",
    "CreditModel",
    "Evaluation",
    "FeatureKind",
    "FeatureSpec",
    "GBMConfig",
    "GroupRow",
    "Metric",
    "PipelineConfig",
    "Reason",
    "RowScore",
    "Scaling",
    "Stability",
    "Target",
    "TrainRequest",
    "build_report",
    "compute_metrics",
    "encode_target",
    "evaluate_pipeline",
    "evaluation_fairness",
    "fairness_table",
    "fit_champion",
    "infer_spec",
    "load_model",
    "load_oof",
    "load_table",
    "monitor_model",
    "psi",
    "row_score_to_json",
    "save_model",
    "score_frame",
    "train_model",
    "verify",
    "write_table",
]

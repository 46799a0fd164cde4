"""Stage 5 of the pipeline: multilingual evaluation (per-language accuracy, fidelity, English gap)."""

from pivotrl.evaluation.metrics import compute_metrics, language_metrics, metrics_markdown
from pivotrl.evaluation.run import EvalConfig, EvalError, evaluate_loaded, run_eval

__all__ = ["EvalConfig", "EvalError", "compute_metrics", "language_metrics", "evaluate_loaded", "metrics_markdown",
           "run_eval"]

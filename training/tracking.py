"""MLflow tracking of training runs: parameters, validation metrics, the bundle.

The store is ``sqlite:///mlruns/mlflow.db`` with artifacts under ``mlruns/`` (MLflow
3's plain file store is in maintenance mode and raises). ``MLFLOW_TRACKING_URI``
overrides it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEFAULT_EXPERIMENT = "outcome-router"


def default_tracking_uri(root: str | Path = "mlruns") -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(root).resolve()}/mlflow.db"


def _experiment_id(mlflow, name: str, artifact_root: Path) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(name, artifact_location=artifact_root.resolve().as_uri())


def log_training_run(
    bundle_dir: str | Path,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    root: str | Path = "mlruns",
) -> str:
    """Log one training run and its bundle; return the MLflow run id."""
    import mlflow

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri or default_tracking_uri(root))
    experiment_id = _experiment_id(mlflow, experiment, root / "artifacts")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
        mlflow.log_artifacts(str(bundle_dir), artifact_path="bundle")
        return run.info.run_id

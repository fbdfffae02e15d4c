"""MLflow tracking of training runs: parameters, validation metrics, the bundle.

The store is ``sqlite:///mlruns/mlflow.db`` with artifacts under ``mlruns/`` (MLflow
3's plain file store is in maintenance mode and raises). ``MLFLOW_TRACKING_URI``
overrides it.

`training.registry.register_bundle` then registers the logged ``bundle/`` folder as
a version of a registered model; `log_training_run` itself only tracks.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

DEFAULT_EXPERIMENT = "outcome-router"


def default_tracking_uri(root: str | Path = "mlruns") -> str:
    """``$MLFLOW_TRACKING_URI``, else the sqlite store ``<root>/mlflow.db`` (absolute).

    Absolute so that a child process started elsewhere (``serve --bundle models:/...``
    resolves the URI in one) and notebooks opened from ``notebooks/`` find the same
    store.
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(root).resolve()}/mlflow.db"


def _experiment_id(client: Any, name: str, artifact_root: Path) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root.resolve().as_uri())


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def log_training_run(
    bundle_dir: str | Path,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    root: str | Path = "mlruns",
) -> str:
    """Log one training run and its bundle (under ``bundle/``); return the MLflow run id.

    Goes through an `mlflow.MlflowClient` rather than the fluent API on purpose:
    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI`` to the process
    environment, which would silently redirect every later run, registry lookup and
    child process (``serve --bundle models:/...``) of the caller to this store.

    Parameters
    ----------
    bundle_dir : path
        The bundle folder `train` wrote; logged file for file, so a registered version
        of it (`training.registry.register_bundle`) is the bundle itself.
    params : dict
        Logged as strings (truncated to 500 characters, MLflow's limit).
    metrics : dict
        Numeric validation metrics; None values are skipped.
    tracking_uri : str, optional
        Default `default_tracking_uri` of ``root``.
    experiment : str
        Experiment name; created with its artifacts under ``<root>/artifacts``.
    root : path
        The ``mlruns`` folder.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunStatus
    from mlflow.tracking.context.registry import resolve_tags

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=tracking_uri or default_tracking_uri(root))
    experiment_id = _experiment_id(client, experiment, root / "artifacts")
    run_id = client.create_run(experiment_id, tags=resolve_tags()).info.run_id
    try:
        now = int(time.time() * 1000)
        logged_params = [Param(k, str(v)[:500]) for k, v in params.items()]
        logged_metrics = [
            Metric(metric_name(k), float(v), now, 0) for k, v in metrics.items() if v is not None
        ]
        for chunk in _chunks(logged_params, 100):
            client.log_batch(run_id, params=chunk)
        for chunk in _chunks(logged_metrics, 1000):
            client.log_batch(run_id, metrics=chunk)
        client.log_artifacts(run_id, str(bundle_dir), artifact_path="bundle")
    except BaseException:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run_id)
    return run_id


def metric_name(name: str) -> str:
    """``name`` with what MLflow refuses in a metric name replaced by ``_``.

    Setting labels such as ``usage+knn`` name metrics (``cv_area_usage+knn``);
    MLflow allows only alphanumerics, ``_ - . : /`` and spaces.
    """
    return re.sub(r"[^\w\-. :/]", "_", name)

"""Shared fixtures: small real data cut from the shipped SWE-bench demo logs, the
exported encoder, and one real bundle trained from them (session-scoped: minutes
of work done once).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CALLS = ROOT / "data" / "swebench_verified" / "calls.parquet"
SHARED_DATA = ROOT.parent / "shared" / "data"
N_TRAIN_PROMPTS, N_TEST_PROMPTS = 120, 40


@pytest.fixture(scope="session")
def shipped_calls() -> pd.DataFrame:
    return pd.read_parquet(SHIPPED_CALLS)


@pytest.fixture(scope="session")
def encoder_dir() -> Path:
    from features.encoder_export import ensure_encoder

    return ensure_encoder()


@pytest.fixture(scope="session")
def static_encoder_dir() -> Path:
    """The static token vectors distilled from MiniLM (minutes on first use, then cached)."""
    from features.encoder_export import ensure_encoder

    return ensure_encoder(kind="static")


@pytest.fixture(scope="session")
def small_logs(shipped_calls, tmp_path_factory) -> dict[str, Path]:
    """Train/test call logs of disjoint prompts, every candidate present."""
    counts = shipped_calls.groupby("prompt_id")["model"].nunique()
    complete = sorted(counts[counts == counts.max()].index)
    train_ids = set(complete[0 : 2 * N_TRAIN_PROMPTS : 2])
    test_ids = set(complete[1 : 2 * N_TEST_PROMPTS : 2])
    folder = tmp_path_factory.mktemp("logs")
    paths = {}
    for name, ids in (("train", train_ids), ("test", test_ids)):
        paths[name] = folder / f"{name}.parquet"
        shipped_calls[shipped_calls["prompt_id"].isin(ids)].to_parquet(paths[name], index=False)
    return paths


@pytest.fixture(scope="session")
def trained(small_logs, tmp_path_factory):
    """A real bundle trained on `small_logs['train']` (no MLflow)."""
    from training.train import TrainConfig, train

    out = tmp_path_factory.mktemp("bundle") / "bundle"
    return train(TrainConfig(logs=[str(small_logs["train"])], out=str(out), track=False))


@pytest.fixture(scope="session")
def bundle_dir(trained) -> Path:
    return trained.bundle.path


@pytest.fixture(scope="session")
def training_set(small_logs, encoder_dir):
    """Featurized `small_logs['train']` (a `training.dataset.TrainingSet`)."""
    from features.call_log import read_call_logs
    from features.featurizer import Featurizer
    from features.spec import FeatureSpec
    from training.dataset import build_training_set

    frame = read_call_logs(small_logs["train"]).frame
    return build_training_set(frame, Featurizer(FeatureSpec(), encoder_dir, workers=2))


@pytest.fixture(scope="session")
def serving_forbidden() -> frozenset[str]:
    """The training stack (DESIGN.md section 1) and gateway libraries a serving
    process must never load."""
    return frozenset(
        {
            "torch",
            "transformers",
            "sentence_transformers",
            "sklearn",
            "lightgbm",
            "mlflow",
            "pandas",
            # the LiteLLM hook runs in the proxy (serving/gateways), never in the server
            "litellm",
        }
    )


@pytest.fixture(scope="session")
def imported_packages():
    """Top-level packages a process loaded, from its ``python -X importtime`` stderr."""

    def parse(stderr: str) -> set[str]:
        names = re.findall(r"import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)", stderr)
        return {name.split(".")[0] for name in names}

    return parse

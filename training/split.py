"""`outcome-router split`: a held-out split of call logs grouped by ``prompt_id``,
so no prompt's answers appear on both sides (evaluating on a prompt the router was
trained on flatters it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from features.call_log import log_files


def _read_raw(paths: list[str]) -> pd.DataFrame:
    frames = []
    for path in log_files(paths):
        if path.name.endswith(".parquet"):
            frames.append(pd.read_parquet(path))
        elif path.name.endswith((".csv", ".csv.gz")):
            frames.append(pd.read_csv(path, dtype=str))
        else:
            frames.append(pd.read_json(path, lines=True, dtype=False))
    return pd.concat(frames, ignore_index=True)


def in_train_split(prompt_id: str, train_fraction: float, seed: int) -> bool:
    """Deterministic side of one prompt: a hash, so adding logs never moves a prompt."""
    digest = hashlib.sha256(f"{seed}:{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < train_fraction


def split_logs(
    paths: list[str], out_dir: str | Path, *, train_fraction: float = 0.7, seed: int = 0
) -> tuple[Path, Path]:
    """Write ``train.parquet`` and ``test.parquet``; rows without prompt_id go by request_id."""
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}.")
    frame = _read_raw(paths)
    key = frame["prompt_id"] if "prompt_id" in frame else frame["request_id"]
    key = key.fillna(frame["request_id"]).astype(str)
    train_mask = key.map(lambda pid: in_train_split(pid, train_fraction, seed)).to_numpy(bool)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_path, test_path = out_dir / "train.parquet", out_dir / "test.parquet"
    frame[train_mask].to_parquet(train_path, index=False)
    frame[~train_mask].to_parquet(test_path, index=False)
    return train_path, test_path

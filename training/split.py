"""`outcome-router split`: a held-out split of call logs grouped by ``prompt_id``,
so no prompt's answers appear on both sides (evaluating on a prompt the router was
trained on flatters it).

The logs are read by the validated reader that ``train`` and ``evaluate`` use, so
the three commands accept and quarantine the same rows and group by the same prompt
key (`features.call_log.prompt_key` where a row has no ``prompt_id``).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from features.call_log import read_call_logs, write_call_log

#: Rejected rows of the logs, written beside the two halves.
QUARANTINE_FILE = "quarantine.jsonl"


@dataclass(frozen=True)
class Split:
    """Where `split_logs` wrote the two halves, and what they hold."""

    train: Path
    test: Path
    quarantine: Path | None
    n_train_rows: int
    n_test_rows: int
    n_train_prompts: int
    n_test_prompts: int
    n_quarantined: int

    def to_dict(self) -> dict[str, str | int | None]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def in_train_split(prompt_id: str, train_fraction: float, seed: int) -> bool:
    """Deterministic side of one prompt: a hash, so adding logs never moves a prompt."""
    digest = hashlib.sha256(f"{seed}:{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < train_fraction


def split_logs(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    train_fraction: float = 0.7,
    seed: int = 0,
) -> Split:
    """Write ``train.parquet`` and ``test.parquet`` (and ``quarantine.jsonl`` for bad rows).

    The halves hold the validated rows in the call-log columns, with ``prompt_id``
    filled and costs only where logged: ``train`` and ``evaluate`` price the rest with
    their own catalog.
    """
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}.")
    out_dir = Path(out_dir)
    quarantine = out_dir / QUARANTINE_FILE
    read = read_call_logs(paths, quarantine_path=quarantine, compute_costs=False)
    print(
        f"read {len(read.frame)} calls; quarantined {read.n_quarantined}"
        + (f" -> {quarantine}" if read.n_quarantined else ""),
        file=sys.stderr,
        flush=True,
    )
    frame = read.frame
    in_train = frame["prompt_id"].map(lambda pid: in_train_split(pid, train_fraction, seed))
    train, test = frame[in_train.to_numpy(bool)], frame[~in_train.to_numpy(bool)]
    return Split(
        train=write_call_log(train, out_dir / "train.parquet"),
        test=write_call_log(test, out_dir / "test.parquet"),
        quarantine=quarantine if read.n_quarantined else None,
        n_train_rows=len(train),
        n_test_rows=len(test),
        n_train_prompts=int(train["prompt_id"].nunique()),
        n_test_prompts=int(test["prompt_id"].nunique()),
        n_quarantined=read.n_quarantined,
    )

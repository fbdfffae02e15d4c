"""The decision log: one JSON line per /route decision.

Each line carries what off-policy evaluation needs later (``decision_id``,
``propensity``, ``router_version``, the allowed candidates and their scores), so
the log joins to the gateway's call log on ``decision_id`` and converts to a
`BanditLog`. The prompt itself is only written when asked for; its sha256 always
is, so repeated prompts can be grouped without storing them.

Durability (fsync, rotation) comes with a later issue: for now each line is
flushed to the OS after it is written.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def text_sha256(text: str) -> str:
    """Hex sha256 of a routing text (UTF-8).

    Examples
    --------
    >>> text_sha256("hi")[:12]
    '8f434346648f'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DecisionLog:
    """Append decisions to a JSONL file, safely from many request threads.

    Parameters
    ----------
    path : path
        The JSONL file; created with its folder if missing, appended to otherwise.
    log_prompts : bool
        Also write the routing text under ``prompt``.
    """

    def __init__(self, path: str | Path, *, log_prompts: bool = False) -> None:
        self.path = Path(path)
        self.log_prompts = log_prompts
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def write(
        self,
        *,
        decision_id: str,
        router_version: str,
        candidates: Sequence[str],
        model: str,
        propensity: float,
        reason: str,
        scores: Sequence[dict[str, Any]],
        routing_text: str | None,
        value_usd: float | None = None,
        min_success: float | None = None,
        max_cost_usd: float | None = None,
        user: str | None = None,
        team: str | None = None,
        task: str | None = None,
        session_id: str | None = None,
        feature_spec_version: int | None = None,
    ) -> None:
        """Append one decision and flush it.

        ``routing_text`` is None when the request failed before its text was built
        (a fallback decision); ``prompt_sha256`` is then null.
        """
        record: dict[str, Any] = {
            "decision_id": decision_id,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "router_version": router_version,
            "feature_spec_version": feature_spec_version,
            "candidates": list(candidates),
            "model": model,
            "propensity": propensity,
            "reason": reason,
            "scores": list(scores),
            "value_usd": value_usd,
            "min_success": min_success,
            "max_cost_usd": max_cost_usd,
            "user": user,
            "team": team,
            "task": task,
            "session_id": session_id,
            "prompt_sha256": text_sha256(routing_text) if routing_text is not None else None,
        }
        if self.log_prompts:
            record["prompt"] = routing_text
        line = json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        """Close the file; later writes raise ``ValueError``."""
        with self._lock:
            self._file.close()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

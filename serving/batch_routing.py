"""Route a JSONL file of prompts offline (``outcome-router route``), deciding
exactly as ``POST /route`` does: the same scorer, the same policy defaults
(`serving.service.policy_params`) and the same answer (`serving.decision`).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from serving.bundle import load_bundle
from serving.decision import routing_decisions
from serving.schemas import RouteRequest
from serving.scoring import BundleScorer
from serving.service import policy_params


def _describe(error: Any) -> str:
    """``field.path: message`` of one pydantic error (no path for whole-line errors)."""
    message = error["msg"].removeprefix("Value error, ")
    path = ".".join(map(str, error["loc"]))
    return f"{path}: {message}" if path else message


def read_prompts(path: Path) -> Iterator[tuple[int, Any, str | None, list | None]]:
    """``(line number, prompt_id, prompt, messages)`` per non-blank line, validated.

    Raises
    ------
    ValueError
        Naming the file and line of the first bad line.
    """
    seen: dict[Any, int] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc}).") from None
            if not isinstance(row, dict):
                raise ValueError(
                    f"{where}: expected a JSON object {{prompt_id, prompt | messages}}, "
                    f"got {type(row).__name__}."
                )
            prompt_id = row.get("prompt_id")
            if isinstance(prompt_id, bool) or not isinstance(prompt_id, str | int):
                raise ValueError(
                    f"{where}: `prompt_id` must be a string or an integer, got {prompt_id!r}."
                )
            if prompt_id in seen:
                raise ValueError(
                    f"{where}: prompt_id {prompt_id!r} repeats line {seen[prompt_id]}; "
                    "prompt ids must be unique."
                )
            seen[prompt_id] = lineno
            try:
                request = RouteRequest.model_validate(
                    {"prompt": row.get("prompt"), "messages": row.get("messages")}
                )
            except ValidationError as exc:
                problems = "; ".join(_describe(e) for e in exc.errors())
                raise ValueError(f"{where}: {problems}.") from None
            prompt, messages = request.routing_input()
            yield lineno, prompt_id, prompt, messages


def route_file(
    bundle: str | Path,
    input_path: str | Path,
    out_path: str | Path,
    *,
    value_usd: float | None = None,
    min_success: float | None = None,
    max_cost_usd: float | None = None,
    batch_size: int = 64,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Counter[str]:
    """Decide for every prompt of a JSONL file and write one decision per line.

    Parameters
    ----------
    bundle : path
        Bundle folder.
    input_path : path
        JSONL lines ``{prompt_id, prompt | messages}`` (blank lines are skipped).
    out_path : path
        Written in input order via a temporary file, so a run that fails on a bad
        line leaves no partial output behind.
    value_usd, min_success, max_cost_usd : float, optional
        Policy knobs; None takes the bundle's defaults, as ``POST /route`` does.
    batch_size : int
        Prompts read and scored per chunk (bounds memory; every prompt is still
        encoded on its own, exactly as /route encodes it).
    workers : int
        Prompts encoded in parallel threads.
    progress : callable, optional
        Called with the number of prompts routed so far after each batch.

    Returns
    -------
    collections.Counter
        Decisions per chosen model.

    Raises
    ------
    ValueError
        For a bad input line (with its line number) or a bundle that fails
        verification.
    """
    loaded = load_bundle(bundle)
    params = policy_params(
        loaded.policy,
        value_usd=value_usd,
        min_success=min_success,
        max_cost_usd=max_cost_usd,
        candidates=loaded.candidate_names,
    )
    scorer = BundleScorer(loaded, intra_op_threads=1, workers=workers)
    names = scorer.candidates
    counts: Counter[str] = Counter()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out_path.with_name(out_path.name + ".tmp")

    def flush(ids: list[Any], texts: list[str], out: Any) -> None:
        scores = scorer.score_texts(texts)
        decisions = routing_decisions(scores.p_success, scores.expected_cost_usd, names, params)
        for prompt_id, decided in zip(ids, decisions, strict=True):
            counts[decided.model] += 1
            record = {
                "prompt_id": prompt_id,
                "model": decided.model,
                "reason": decided.reason,
                "propensity": decided.propensity,
                "scores": decided.scores,
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        if progress is not None:
            progress(counts.total())

    try:
        with open(tmp_path, "w", encoding="utf-8") as out:
            ids: list[Any] = []
            texts: list[str] = []
            for _, prompt_id, prompt, messages in read_prompts(Path(input_path)):
                ids.append(prompt_id)
                texts.append(scorer.featurizer.text_of(prompt, messages))
                if len(ids) == batch_size:
                    flush(ids, texts, out)
                    ids, texts = [], []
            if ids:
                flush(ids, texts, out)
        os.replace(tmp_path, out_path)
    finally:
        tmp_path.unlink(missing_ok=True)
    return counts

"""Route a JSONL file of prompts offline (``outcome-router route``), deciding
exactly as ``POST /route`` does: the same scorer, the same policy defaults
(`serving.service.policy_params`) and the same answer (`serving.decision`).

Lines with a ``session_id`` are routed cache-aware, as ``/route`` routes them
(`serving.session_cache`): in file order, each session's earlier lines leave its
last model's prompt cache warm. An optional ``timestamp`` (ISO 8601) on such lines is
the clock the cache TTL runs on; a line without one is taken to follow the previous
line at once.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from features.context import RequestContext
from serving.bundle import load_bundle
from serving.decision import routing_decisions
from serving.schemas import RouteRequest
from serving.scoring import BundleScorer
from serving.service import policy_params
from serving.session_cache import CacheRules, SessionCache, prompt_chars


def _describe(error: Any) -> str:
    """``field.path: message`` of one pydantic error (no path for whole-line errors)."""
    message = error["msg"].removeprefix("Value error, ")
    path = ".".join(map(str, error["loc"]))
    return f"{path}: {message}" if path else message


class PromptLine(NamedTuple):
    """One validated input line; ``timestamp`` in seconds since the epoch."""

    lineno: int
    prompt_id: Any
    prompt: str | None
    messages: list | None
    session_id: str | None = None
    timestamp: float | None = None
    #: The line's optional ``task`` and ``team`` and its number of messages, as `/route`
    #: reads them (`features.context`).
    context: RequestContext | None = None


def _timestamp(value: Any, where: str) -> float | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except (TypeError, ValueError):
        raise ValueError(
            f"{where}: `timestamp` must be an ISO 8601 string such as "
            f"2026-12-02T16:00:00Z, got {value!r}."
        ) from None


def read_prompts(path: Path) -> Iterator[PromptLine]:
    """One `PromptLine` per non-blank line, validated.

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
                    {key: row.get(key) for key in ("prompt", "messages", "task", "team")}
                )
            except ValidationError as exc:
                problems = "; ".join(_describe(e) for e in exc.errors())
                raise ValueError(f"{where}: {problems}.") from None
            prompt, messages = request.routing_input()
            session_id = row.get("session_id")
            if session_id is not None and not isinstance(session_id, str):
                raise ValueError(f"{where}: `session_id` must be a string, got {session_id!r}.")
            timestamp = _timestamp(row.get("timestamp"), where)
            context = RequestContext.of(task=request.task, team=request.team, messages=messages)
            yield PromptLine(lineno, prompt_id, prompt, messages, session_id, timestamp, context)


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
    cache_rules: CacheRules | None = None,
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
    cache_rules : CacheRules, optional
        Cache TTL and minimum prompt per model for lines with a ``session_id``
        (default: `CacheRules` defaults, as ``serve``'s).

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
    rules = cache_rules if cache_rules is not None else CacheRules()
    scorer = BundleScorer(loaded, intra_op_threads=1, workers=workers, cache_rules=rules)
    names = scorer.candidates
    now = [0.0]  # the clock of the session state: the latest line's timestamp
    sessions = SessionCache(rules=rules, clock=lambda: now[0])
    counts: Counter[str] = Counter()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out_path.with_name(out_path.name + ".tmp")

    def flush(ids: list[Any], texts: list[str], contexts: list[RequestContext], out: Any) -> None:
        scores = scorer.score_texts(texts, contexts)
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

    def route_in_session(line: PromptLine, text: str, out: Any) -> None:
        """One line of a session, alone and in order: as ``/route`` with a session_id."""
        if line.timestamp is not None:
            now[0] = line.timestamp
        chars = prompt_chars(line.prompt, line.messages)
        prefix = sessions.lookup(line.session_id, names, chars)
        scores = scorer.score_text(text, None, prefix, context=line.context)
        [decided] = routing_decisions(scores.p_success, scores.expected_cost_usd, names, params)
        sessions.remember(
            line.session_id, decided.model, scores.prompt_tokens_of(names.index(decided.model))
        )
        counts[decided.model] += 1
        record = {
            "prompt_id": line.prompt_id,
            "model": decided.model,
            "reason": decided.reason,
            "propensity": decided.propensity,
            "scores": decided.scores,
            "session_id": line.session_id,
            "cache_assumed": scores.cache_assumed.to_dict() if scores.cache_assumed else None,
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        if progress is not None:
            progress(counts.total())

    try:
        with open(tmp_path, "w", encoding="utf-8") as out:
            ids: list[Any] = []
            texts: list[str] = []
            contexts: list[RequestContext] = []
            for line in read_prompts(Path(input_path)):
                text = scorer.featurizer.text_of(line.prompt, line.messages)
                if line.session_id is not None:
                    if ids:  # keep the output in input order
                        flush(ids, texts, contexts, out)
                        ids, texts, contexts = [], [], []
                    route_in_session(line, text, out)
                    continue
                ids.append(line.prompt_id)
                texts.append(text)
                contexts.append(line.context)
                if len(ids) == batch_size:
                    flush(ids, texts, contexts, out)
                    ids, texts, contexts = [], [], []
            if ids:
                flush(ids, texts, contexts, out)
        os.replace(tmp_path, out_path)
    finally:
        tmp_path.unlink(missing_ok=True)
    return counts

"""Training sets built from call logs: one feature row per prompt, one outcome row
per logged call.

Works the same for full-information benchmarks (every candidate answered each
``prompt_id``) and for production logs (one row per prompt, only the chosen
model's outcome seen): learners fit each candidate on the rows it answered.
`log_kind` tells them apart, because on a production ("bandit") log the rows a
candidate answered were chosen by a logging policy, and `training.propensity`
corrects for it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from features.context import CONTEXT_KINDS, RequestContext, frequent_values
from features.featurizer import Featurizer
from features.prices import PriceCatalog
from features.routing_text import routing_text
from features.spec import FeatureSpec
from serving.manifest import ExcludedCandidate

#: Graded calls a model needs to be a candidate (``train --min-calls``). Twenty is
#: where a learner starts fitting a candidate rather than predicting its prior
#: (`training.learners.DEFAULT_MIN_ROWS`), and where a success rate is known to
#: about +-0.2 (95% Wilson interval at p = 0.5); every model of the shipped logs
#: has about 500 (SWE-bench) or 600 (RouteProfile) graded calls, so it leaves them
#: all in, while a model seen once or twice in a gateway log is left out.
DEFAULT_MIN_CALLS = 20
#: The kinds of log `log_kind` tells apart.
LOG_KINDS = ("full_information", "bandit", "partial")
#: Share of graded prompts answered by a single candidate above which a log is a
#: bandit log: a gateway log where a few prompts were retried on another model is
#: still one call per prompt in all but name.
BANDIT_SHARE = 0.9
#: z of the two-sided 95% interval used for the success-rate lower bound.
_Z95 = 1.959964


@dataclass(frozen=True)
class TrainingSet:
    """Prompts, their features, and the logged calls that answered them.

    Attributes
    ----------
    candidates : tuple of str, length n_candidates
    prompt_ids : ndarray of str, shape (n_prompts,)
    texts : list of str, length n_prompts
        Routing text of each prompt (`features.routing_text`).
    features : ndarray of float32, shape (n_prompts, n_features)
    prompt : ndarray of int, shape (n_rows,)
        Index into the prompts of each logged call.
    candidate : ndarray of int, shape (n_rows,)
    outcome : ndarray of float, shape (n_rows,)
        Graded outcome in [0, 1]; NaN where pending or unknown.
    cost_usd, input_tokens, output_tokens : ndarray of float, shape (n_rows,)
        NaN where not logged.
    segments : dict of str -> ndarray of str, shape (n_prompts,)
        ``task`` and ``team`` of each prompt, for per-segment reports.
    propensity : ndarray of float, shape (n_rows,)
        Logged probability that the logging policy chose the row's model; NaN where
        not logged (a log without the column is all NaN).
    """

    candidates: tuple[str, ...]
    prompt_ids: np.ndarray
    texts: list[str]
    features: np.ndarray
    prompt: np.ndarray
    candidate: np.ndarray
    outcome: np.ndarray
    cost_usd: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    segments: dict[str, np.ndarray]
    propensity: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.propensity is None:
            object.__setattr__(self, "propensity", np.full(len(self.prompt), np.nan))

    @property
    def n_prompts(self) -> int:
        return len(self.prompt_ids)

    @property
    def labelled(self) -> np.ndarray:
        """Rows with a known outcome, shape ``(n_rows,)`` bool."""
        return ~np.isnan(self.outcome)

    def full_information(self) -> np.ndarray:
        """Prompts whose every candidate has a labelled, costed row, shape ``(n_prompts,)``."""
        seen = np.zeros((self.n_prompts, len(self.candidates)), dtype=bool)
        ok = self.labelled & ~np.isnan(self.cost_usd)
        seen[self.prompt[ok], self.candidate[ok]] = True
        return seen.all(axis=1)

    def subset(self, prompts: np.ndarray) -> TrainingSet:
        """The prompts where ``prompts`` (bool, shape ``(n_prompts,)``) is True, and their rows."""
        prompts = np.asarray(prompts, dtype=bool)
        new_index = np.cumsum(prompts) - 1
        rows = prompts[self.prompt]
        return TrainingSet(
            candidates=self.candidates,
            prompt_ids=self.prompt_ids[prompts],
            texts=[t for t, keep in zip(self.texts, prompts, strict=True) if keep],
            features=self.features[prompts],
            prompt=new_index[self.prompt[rows]],
            candidate=self.candidate[rows],
            outcome=self.outcome[rows],
            cost_usd=self.cost_usd[rows],
            input_tokens=self.input_tokens[rows],
            output_tokens=self.output_tokens[rows],
            segments={k: v[prompts] for k, v in self.segments.items()},
            propensity=self.propensity[rows],
        )

    def matrix(self, values: np.ndarray) -> np.ndarray:
        """Row values as ``(n_prompts, n_candidates)`` (mean of duplicates, NaN if none)."""
        total = np.zeros((self.n_prompts, len(self.candidates)))
        count = np.zeros_like(total)
        ok = ~np.isnan(values)
        np.add.at(total, (self.prompt[ok], self.candidate[ok]), values[ok])
        np.add.at(count, (self.prompt[ok], self.candidate[ok]), 1)
        with np.errstate(invalid="ignore"):
            return total / np.where(count > 0, count, np.nan)


def default_candidates(frame: pd.DataFrame) -> list[str]:
    """Models with at least one graded call, sorted."""
    return sorted(frame.loc[frame["outcome"].notna(), "model"].unique().tolist())


def exclusion_reason(
    model: str, rows: pd.DataFrame, prices: PriceCatalog, min_calls: int
) -> str | None:
    """Why ``model`` (its logged ``rows``) cannot be a candidate, or None if it can.

    A candidate needs evidence of quality, ``min_calls`` graded calls, and a known
    cost: a logged ``cost_usd`` or tokens priced by the catalog on some of its
    rows. Without them its success rate is a guess (one lucky call reads as 100%)
    and its cost reads as $0, so the router would send it traffic on no evidence.
    """
    n_graded = int(rows["outcome"].notna().sum())
    if n_graded < min_calls:
        calls = "call" if n_graded == 1 else "calls"
        return (
            f"{n_graded} graded {calls}, fewer than --min-calls {min_calls}: too little "
            "evidence of its success rate"
        )
    # The reader fills cost_usd from the catalog where a row logs tokens, so a
    # row without it has neither a logged cost nor priced tokens.
    if not rows["cost_usd"].notna().any():
        if prices.get(model) is None:
            return (
                "no price in the catalog and no logged cost_usd: its cost is unknown "
                "(add it to --prices or log cost_usd)"
            )
        return (
            "priced in the catalog, but none of its rows logs tokens or cost_usd: its "
            "cost is unknown (log input_tokens and output_tokens, or cost_usd)"
        )
    return None


def screen_candidates(
    frame: pd.DataFrame,
    prices: PriceCatalog,
    *,
    min_calls: int = DEFAULT_MIN_CALLS,
    requested: Sequence[str] | None = None,
) -> tuple[list[str], list[ExcludedCandidate]]:
    """Split the models of a validated call-log frame into candidates and excluded ones.

    Parameters
    ----------
    frame : DataFrame
        Validated call log (`features.call_log.read_call_logs`).
    prices : PriceCatalog
    min_calls : int
        Graded calls a candidate needs (see `DEFAULT_MIN_CALLS`).
    requested : sequence of str, optional
        Candidates asked for by name (``--candidates``); the other models are not
        considered, and a requested one that fails the rule is an error.

    Returns
    -------
    candidates : list of str, sorted unless requested
    excluded : list of ExcludedCandidate, sorted by model

    Raises
    ------
    ValueError
        If a requested model has no rows or fails the rule (naming why), or no
        model is left.
    """
    present = sorted(frame["model"].unique().tolist())
    if requested:
        unknown = sorted(set(requested) - set(present))
        if unknown:
            raise ValueError(
                f"Candidates {unknown} have no rows in the logs; models present: {present}."
            )
    groups = dict(tuple(frame.groupby("model", sort=True)))
    considered = list(requested) if requested else present
    candidates, excluded = [], []
    for model in considered:
        reason = exclusion_reason(model, groups[model], prices, min_calls)
        if reason is None:
            candidates.append(model)
        else:
            n = int(groups[model]["outcome"].notna().sum())
            excluded.append(ExcludedCandidate(model=model, reason=reason, n_graded_calls=n))
    if requested and excluded:
        raise ValueError(
            "Requested candidates cannot be routed to: "
            + "; ".join(f"{e.model}: {e.reason}" for e in excluded)
            + "."
        )
    if not candidates:
        raise ValueError(
            "No model of the logs can be a candidate: "
            + "; ".join(f"{e.model}: {e.reason}" for e in excluded)
            + ". Log more graded calls or lower --min-calls."
        )
    return candidates, excluded


def success_lower_bound(outcomes: np.ndarray, z: float = _Z95) -> float:
    """Wilson lower bound of the success rate of graded ``outcomes`` (shape ``(n,)``).

    Outcomes in [0, 1] count as fractional successes. The bound shrinks with few
    calls: one success of one call gives 0.21, 180 of 200 gives 0.85.

    >>> round(success_lower_bound(np.ones(1)), 2)
    0.21
    """
    n = len(outcomes)
    if n == 0:
        return 0.0
    p = float(np.mean(outcomes))
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def featurize(
    featurizer: Featurizer,
    texts: list[str],
    chunk: int = 256,
    contexts: Sequence[RequestContext] | None = None,
) -> np.ndarray:
    """Feature matrix of many texts, with progress on stderr.

    Plain-text progress, also in notebooks: ``tqdm.auto``'s widget needs ipywidgets,
    which the project does not install, and warns without it.
    """
    from tqdm import tqdm

    parts = []
    with tqdm(total=len(texts), desc="featurizing", unit="prompt", file=sys.stderr) as bar:
        for start in range(0, len(texts), chunk):
            part = None if contexts is None else contexts[start : start + chunk]
            parts.append(featurizer.transform_texts(texts[start : start + chunk], part))
            bar.update(min(chunk, len(texts) - start))
    if not parts:
        return np.zeros((0, featurizer.spec.n_features), dtype=np.float32)
    return np.vstack(parts)


def request_contexts(rows: pd.DataFrame) -> list[RequestContext]:
    """The request context of every row of a call-log frame (`features.context`):
    its ``task`` and ``team`` columns and its number of ``messages``, as `/route`
    reads them from a request."""
    n = len(rows)

    def column(name: str) -> list[Any]:
        return rows[name].tolist() if name in rows else [None] * n

    return [
        RequestContext.of(task=task, team=team, messages=messages)
        for task, team, messages in zip(
            column("task"), column("team"), column("messages"), strict=True
        )
    ]


def with_request_context(
    spec: FeatureSpec, frame: pd.DataFrame, kinds: Sequence[str]
) -> FeatureSpec:
    """``spec`` with the request-context columns ``kinds`` (`features.context`) on.

    The task and team values given a column are the frequent ones of the training
    log, counted once per prompt (`features.context.frequent_values`); they are
    stored in the spec, so serving builds the same columns.
    """
    unknown = sorted(set(kinds) - set(CONTEXT_KINDS))
    if unknown:
        raise ValueError(f"Unknown context {unknown}; choose from {list(CONTEXT_KINDS)}.")
    if not kinds:
        return spec
    firsts = frame.drop_duplicates("prompt_id")
    values = {
        key: frequent_values(c.task if key == "task" else c.team for c in request_contexts(firsts))
        for key in ("task", "team")
        if key in kinds
    }
    return replace(
        spec,
        context_tasks=values.get("task", ()),
        context_teams=values.get("team", ()),
        conversation_depth="depth" in kinds,
    )


def build_training_set(
    frame: pd.DataFrame, featurizer: Featurizer, candidates: Sequence[str] | None = None
) -> TrainingSet:
    """Build a `TrainingSet` from a validated call-log frame.

    Rows of models outside ``candidates`` (by default every model with a graded
    call; `train` passes the ones `screen_candidates` keeps) are left out; the
    first row of each ``prompt_id`` supplies its text.
    """
    candidates = list(candidates) if candidates else default_candidates(frame)
    unknown = sorted(set(candidates) - set(frame["model"].unique()))
    if unknown:
        raise ValueError(
            f"Candidates {unknown} have no rows in the logs; models present: "
            f"{sorted(frame['model'].unique())}."
        )
    frame = frame[frame["model"].isin(candidates)].reset_index(drop=True)
    firsts = frame.drop_duplicates("prompt_id")
    prompt_ids = firsts["prompt_id"].to_numpy()
    source = featurizer.spec.text_source
    texts = [
        routing_text(p if isinstance(p, str) else None, m, source=source)
        for p, m in zip(firsts["prompt"], firsts["messages"], strict=True)
    ]
    contexts = request_contexts(firsts)
    index = {pid: i for i, pid in enumerate(prompt_ids)}
    segments = {
        key: firsts[key].fillna("(none)").astype(str).to_numpy()
        for key in ("task", "team")
        if key in firsts and firsts[key].notna().any()
    }
    return TrainingSet(
        candidates=tuple(candidates),
        prompt_ids=prompt_ids,
        texts=texts,
        features=featurize(featurizer, texts, contexts=contexts),
        prompt=frame["prompt_id"].map(index).to_numpy(dtype=np.int64),
        candidate=frame["model"].map({c: i for i, c in enumerate(candidates)}).to_numpy(np.int64),
        outcome=frame["outcome"].to_numpy(dtype=np.float64),
        cost_usd=frame["cost_usd"].to_numpy(dtype=np.float64),
        input_tokens=frame["input_tokens"].to_numpy(dtype=np.float64),
        output_tokens=frame["output_tokens"].to_numpy(dtype=np.float64),
        segments=segments,
        propensity=frame["propensity"].to_numpy(dtype=np.float64)
        if "propensity" in frame
        else None,
    )


def log_kind(data: TrainingSet) -> str:
    """What kind of log ``data`` is: ``full_information``, ``bandit`` or ``partial``.

    - ``full_information``: every prompt has a graded, costed row of every candidate
      (a benchmark table); what a candidate answered says nothing about a policy.
    - ``bandit``: at least `BANDIT_SHARE` of the prompts with a graded row were
      graded for a single candidate, the one a logging policy chose (a gateway log).
    - ``partial``: anything between, e.g. a benchmark with holes or a gateway that
      often asks two models; its rows were chosen too, so it is corrected like a
      bandit log.

    Prompts without a graded row (pending) are left out of the count.
    """
    if data.n_prompts and data.full_information().all():
        return "full_information"
    labelled = data.labelled
    seen = np.zeros((data.n_prompts, len(data.candidates)), dtype=bool)
    seen[data.prompt[labelled], data.candidate[labelled]] = True
    answered = seen.sum(axis=1)
    graded = answered > 0
    if not graded.any():
        return "partial"
    return "bandit" if (answered[graded] == 1).mean() >= BANDIT_SHARE else "partial"

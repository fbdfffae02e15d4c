"""Offline evaluation of a router on full-information logs.

A full-information log knows, for every prompt, the graded outcome and the cost of
*every* candidate (a benchmark where each model answered each prompt). On such a log any
routing decision can be scored exactly, without off-policy estimation: we look up the
logged outcome and cost of the chosen candidate.

The decisions come from :func:`serving.policy.choose`, the function `/route` serves, so
what is evaluated here is exactly what is served. Sweeping the policy's ``value_usd``
(what one good outcome is worth) traces the router's cost-quality curve, which is
compared with the single models (always call one model) and the oracle (per prompt,
the cheapest candidate with the best outcome).

All figures are means per prompt: ``quality`` is the mean logged outcome in [0, 1] and
``cost_usd`` the mean logged cost in USD of the chosen candidates.

Beyond the curve the summary holds the baselines that need no learning (random,
cheapest, strongest), RouteLLM's two-model figures (APGR and CPT, routing between two
candidates through the policy's ``allowed`` mask) and the calibration of the predicted
``p_success`` (reliability bins, ECE, Brier).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from serving.policy import PolicyParams, choose

if TYPE_CHECKING:
    import pandas as pd

#: Two qualities closer than this count as equal (float noise of means over prompts).
QUALITY_TOL = 1e-9

#: Required columns of the call-log frame that :meth:`FullInfoLog.from_frame` reads.
FRAME_COLUMNS = ("prompt_id", "model", "outcome", "cost_usd")

#: Optional per-prompt tags that :meth:`FullInfoLog.from_frame` keeps as segments.
SEGMENT_COLUMNS = ("task", "team", "dataset")


@dataclass(frozen=True)
class FullInfoLog:
    """Per-prompt truth: every candidate's logged outcome and cost for each prompt.

    Validated once in ``__post_init__`` so every metric below can trust its shapes.

    Parameters
    ----------
    prompt_ids : ndarray of str, shape (n_prompts,)
        One id per prompt, unique.
    candidates : tuple of str, length n_candidates
        Candidate model names; column ``j`` of ``outcome`` and ``cost_usd`` is
        ``candidates[j]``.
    outcome : ndarray of float, shape (n_prompts, n_candidates)
        Graded outcome in [0, 1] of each candidate on each prompt.
    cost_usd : ndarray of float, shape (n_prompts, n_candidates)
        Cost in USD (>= 0) of each candidate on each prompt.
    segments : dict of str to ndarray of str, shape (n_prompts,) each, optional
        Per-prompt tags (e.g. ``{"task": ..., "team": ...}``) to break metrics down by.

    Examples
    --------
    >>> import numpy as np
    >>> log = FullInfoLog(
    ...     prompt_ids=np.array(["p1", "p2"]),
    ...     candidates=("small", "large"),
    ...     outcome=np.array([[1.0, 1.0], [0.0, 1.0]]),
    ...     cost_usd=np.array([[0.01, 0.10], [0.01, 0.10]]),
    ... )
    >>> log.n_prompts, log.n_candidates
    (2, 2)
    """

    prompt_ids: np.ndarray
    candidates: tuple[str, ...]
    outcome: np.ndarray
    cost_usd: np.ndarray
    segments: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        prompt_ids = np.asarray(self.prompt_ids).astype(str)
        candidates = tuple(str(c) for c in self.candidates)
        outcome = np.asarray(self.outcome, dtype=np.float64)
        cost = np.asarray(self.cost_usd, dtype=np.float64)

        if prompt_ids.ndim != 1:
            raise ValueError(
                f"Expected prompt_ids of shape (n_prompts,), got shape {prompt_ids.shape}."
            )
        n_prompts = prompt_ids.shape[0]
        if n_prompts == 0:
            raise ValueError("Expected at least one prompt, got an empty log.")
        if len(set(prompt_ids.tolist())) != n_prompts:
            raise ValueError(
                f"Expected unique prompt_ids, got {n_prompts - len(set(prompt_ids.tolist()))} "
                "duplicates; aggregate rows per prompt first (FullInfoLog.from_frame does)."
            )
        if not candidates:
            raise ValueError("Expected at least one candidate, got none.")
        if len(set(candidates)) != len(candidates):
            raise ValueError(f"Expected unique candidates, got {candidates}.")
        expected = (n_prompts, len(candidates))
        for name, arr in (("outcome", outcome), ("cost_usd", cost)):
            if arr.shape != expected:
                raise ValueError(
                    f"Expected {name} of shape (n_prompts, n_candidates) = {expected}, "
                    f"got {arr.shape}."
                )
            if not np.isfinite(arr).all():
                raise ValueError(
                    f"Expected finite {name}, got {int((~np.isfinite(arr)).sum())} NaN/inf "
                    "values; drop or fill incomplete prompts (FullInfoLog.from_frame drops them)."
                )
        if outcome.min() < 0.0 or outcome.max() > 1.0:
            raise ValueError(
                f"Expected outcome in [0, 1], got values in [{outcome.min()}, {outcome.max()}]."
            )
        if cost.min() < 0.0:
            raise ValueError(f"Expected cost_usd >= 0, got a minimum of {cost.min()}.")

        segments: dict[str, np.ndarray] = {}
        for key, values in dict(self.segments).items():
            arr = np.asarray(values).astype(str)
            if arr.shape != (n_prompts,):
                raise ValueError(
                    f"Expected segment {key!r} of shape (n_prompts,) = ({n_prompts},), "
                    f"got {arr.shape}."
                )
            segments[str(key)] = arr

        object.__setattr__(self, "prompt_ids", prompt_ids)
        object.__setattr__(self, "candidates", candidates)
        object.__setattr__(self, "outcome", outcome)
        object.__setattr__(self, "cost_usd", cost)
        object.__setattr__(self, "segments", segments)

    @property
    def n_prompts(self) -> int:
        """Number of prompts (rows)."""
        return int(self.outcome.shape[0])

    @property
    def n_candidates(self) -> int:
        """Number of candidates (columns)."""
        return int(self.outcome.shape[1])

    def subset(self, mask: np.ndarray) -> FullInfoLog:
        """The log restricted to some prompts, e.g. one segment.

        Parameters
        ----------
        mask : ndarray of bool, shape (n_prompts,)
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.n_prompts,):
            raise ValueError(
                f"Expected mask of shape (n_prompts,) = ({self.n_prompts},), got {mask.shape}."
            )
        return FullInfoLog(
            prompt_ids=self.prompt_ids[mask],
            candidates=self.candidates,
            outcome=self.outcome[mask],
            cost_usd=self.cost_usd[mask],
            segments={k: v[mask] for k, v in self.segments.items()},
        )

    @classmethod
    def from_frame(
        cls, df: pd.DataFrame, candidates: Sequence[str] | None = None
    ) -> tuple[FullInfoLog, int]:
        """Build the log from a call-log frame (one row per call).

        Only prompts that every candidate answered can be scored exactly, so the others
        are dropped, and counted so the caller can say how many.

        Parameters
        ----------
        df : pandas.DataFrame
            Call-log rows with columns ``prompt_id``, ``model``, ``outcome``, ``cost_usd``
            and optionally ``task``, ``team``, ``dataset`` (kept as segments). Rows with a missing
            outcome (unknown or pending) are ignored. Duplicate ``(prompt_id, model)``
            rows are averaged (outcome and cost).
        candidates : sequence of str, optional
            Models to evaluate, in this column order. Default: every model that has at
            least one row with an outcome, sorted. Rows of other models are ignored.

        Returns
        -------
        log : FullInfoLog
            The prompts where every candidate has an outcome and a cost.
        n_dropped : int
            Distinct ``prompt_id`` values of ``df`` not in ``log``.
        """
        missing = [c for c in FRAME_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(
                f"Expected columns {list(FRAME_COLUMNS)} in the call-log frame, "
                f"missing {missing}; got {list(df.columns)}."
            )
        all_prompts = df["prompt_id"].astype(str).unique()
        rows = df[df["outcome"].notna()].copy()
        rows["prompt_id"] = rows["prompt_id"].astype(str)
        rows["model"] = rows["model"].astype(str)
        if candidates is None:
            cands = tuple(sorted(rows["model"].unique().tolist()))
        else:
            cands = tuple(str(c) for c in candidates)
            absent = [c for c in cands if c not in set(rows["model"])]
            if absent:
                raise ValueError(
                    f"Candidates {absent} have no rows with an outcome; "
                    f"models with outcomes are {sorted(rows['model'].unique().tolist())}."
                )
            rows = rows[rows["model"].isin(cands)]
        if not cands:
            raise ValueError("Expected at least one row with an outcome, got none.")

        rows["outcome"] = rows["outcome"].astype(float)
        rows["cost_usd"] = rows["cost_usd"].astype(float)
        means = rows.groupby(["prompt_id", "model"])[["outcome", "cost_usd"]].mean()
        outcome = means["outcome"].unstack("model").reindex(columns=list(cands))
        cost = means["cost_usd"].unstack("model").reindex(columns=list(cands))
        complete = outcome.notna().all(axis=1) & cost.notna().all(axis=1)
        kept = outcome.index[complete.to_numpy()]
        if len(kept) == 0:
            raise ValueError(
                f"No prompt has an outcome and a cost for every candidate {list(cands)}; "
                "pass fewer candidates or a full-information log."
            )

        segments: dict[str, np.ndarray] = {}
        for key in SEGMENT_COLUMNS:
            if key in rows.columns:
                tags = rows.dropna(subset=[key]).groupby("prompt_id")[key].first()
                segments[key] = tags.reindex(kept).fillna("(none)").astype(str).to_numpy()

        log = cls(
            prompt_ids=np.asarray(kept, dtype=str),
            candidates=cands,
            outcome=outcome.loc[kept].to_numpy(dtype=np.float64),
            cost_usd=cost.loc[kept].to_numpy(dtype=np.float64),
            segments=segments,
        )
        return log, int(len(all_prompts) - len(kept))


@dataclass(frozen=True)
class Point:
    """One policy's mean quality and cost per prompt.

    Parameters
    ----------
    name : str
        Candidate name, or ``"oracle"``.
    quality : float
        Mean logged outcome of the chosen candidates, in [0, 1].
    cost_usd : float
        Mean logged cost in USD of the chosen candidates.
    """

    name: str
    quality: float
    cost_usd: float


@dataclass(frozen=True)
class CurvePoint:
    """The router at one ``value_usd``: mean quality and cost per prompt, and its mix.

    Parameters
    ----------
    value_usd : float
        Worth of one good outcome given to the policy.
    quality : float
        Mean logged outcome of the chosen candidates, in [0, 1].
    cost_usd : float
        Mean logged cost in USD of the chosen candidates.
    share : dict of str to float
        Fraction of prompts routed to each candidate (every candidate, summing to 1).
    """

    value_usd: float
    quality: float
    cost_usd: float
    share: dict[str, float]


def single_model_points(log: FullInfoLog) -> list[Point]:
    """Always calling one candidate: its mean outcome and cost, one point per candidate.

    ``quality_j = mean_i outcome[i, j]``, ``cost_j = mean_i cost_usd[i, j]``.
    """
    quality = log.outcome.mean(axis=0)
    cost = log.cost_usd.mean(axis=0)
    return [
        Point(name=name, quality=float(q), cost_usd=float(c))
        for name, q, c in zip(log.candidates, quality, cost, strict=True)
    ]


def best_single(log: FullInfoLog) -> Point:
    """The single model with the highest mean quality; ties go to the cheaper one.

    This is the "no router" choice a careful team makes, hence the baseline of the
    savings figures.
    """
    points = single_model_points(log)
    top = max(p.quality for p in points)
    tied = [p for p in points if p.quality >= top - QUALITY_TOL]
    return min(tied, key=lambda p: p.cost_usd)


def cheapest_single(log: FullInfoLog) -> Point:
    """The single model with the lowest mean cost; ties go to the better one."""
    points = single_model_points(log)
    low = min(p.cost_usd for p in points)
    tied = [p for p in points if p.cost_usd <= low]
    return max(tied, key=lambda p: p.quality)


def oracle_choice(log: FullInfoLog) -> np.ndarray:
    """Per prompt, the cheapest candidate among those with the best logged outcome.

    If every candidate scored 0 on a prompt, all are tied at the max, so the cheapest
    candidate overall is chosen: a perfect router would not pay for a failure.

    Returns
    -------
    action : ndarray of int, shape (n_prompts,)
    """
    best = log.outcome.max(axis=1, keepdims=True)
    at_best = log.outcome >= best - QUALITY_TOL
    return np.argmin(np.where(at_best, log.cost_usd, np.inf), axis=1)


def oracle_point(log: FullInfoLog) -> Point:
    """The oracle's mean quality and cost: an upper bound on quality for any router.

    ``quality = mean_i max_j outcome[i, j]``; ``cost = mean_i cost_usd[i, a_i]`` with
    ``a_i`` from :func:`oracle_choice`.
    """
    return _point("oracle", log, oracle_choice(log))


def value_grid(log: FullInfoLog, n: int = 64) -> np.ndarray:
    """Values of one good outcome to sweep, from "always cheapest" to "always most likely".

    The policy maximises ``value_usd * p - cost``. At ``value_usd = 0`` it picks the
    cheapest candidate; once ``value_usd * dp`` exceeds every cost gap it picks the most
    likely one. The grid is 0 followed by ``n`` geometric steps from
    ``min positive cost * 1e-2`` to ``max cost * 1e4``, which reaches "most likely" for
    probability gaps down to 1e-4.

    Parameters
    ----------
    log : FullInfoLog
    n : int, default=64
        Number of geometric steps (the grid has ``n + 1`` values).

    Returns
    -------
    values : ndarray of float, shape (n + 1,)
        Increasing, starting at 0.
    """
    if n < 1:
        raise ValueError(f"Expected n >= 1 geometric steps, got {n}.")
    positive = log.cost_usd[log.cost_usd > 0]
    if positive.size == 0:
        low, high = 1e-6, 1.0  # every call is free: any positive value picks the most likely
    else:
        low, high = float(positive.min()) * 1e-2, float(positive.max()) * 1e4
    return np.concatenate([[0.0], np.geomspace(low, high, n)])


def router_choice(
    log: FullInfoLog,
    p_success: np.ndarray,
    expected_cost_usd: np.ndarray,
    value_usd: float,
    *,
    min_success: float | None = None,
    max_cost_usd: float | None = None,
) -> np.ndarray:
    """The served policy's choice on every prompt, through :func:`serving.policy.choose`.

    Parameters
    ----------
    log : FullInfoLog
    p_success, expected_cost_usd : ndarray of float, shape (n_prompts, n_candidates)
        The router's predictions, columns in ``log.candidates`` order.
    value_usd : float
    min_success, max_cost_usd : float, optional
        Passed to the policy as in a request.

    Returns
    -------
    action : ndarray of int, shape (n_prompts,)
    """
    p, c = _check_predictions(log, p_success, expected_cost_usd)
    params = PolicyParams(
        value_usd=float(value_usd), min_success=min_success, max_cost_usd=max_cost_usd
    )
    action, _ = choose(p, c, params)
    return action


def router_point(
    log: FullInfoLog,
    p_success: np.ndarray,
    expected_cost_usd: np.ndarray,
    value_usd: float,
    *,
    min_success: float | None = None,
    max_cost_usd: float | None = None,
) -> CurvePoint:
    """The router at one ``value_usd``, scored on the logged truth.

    ``quality = mean_i outcome[i, a_i]``, ``cost = mean_i cost_usd[i, a_i]``,
    ``share_j = mean_i [a_i == j]`` with ``a_i`` the served policy's choice.
    """
    action = router_choice(
        log,
        p_success,
        expected_cost_usd,
        value_usd,
        min_success=min_success,
        max_cost_usd=max_cost_usd,
    )
    point = _point("router", log, action)
    return CurvePoint(
        value_usd=float(value_usd),
        quality=point.quality,
        cost_usd=point.cost_usd,
        share=_share(log, action),
    )


def router_curve(
    log: FullInfoLog,
    p_success: np.ndarray,
    expected_cost_usd: np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    min_success: float | None = None,
    max_cost_usd: float | None = None,
) -> list[CurvePoint]:
    """The router's cost-quality curve: one :func:`router_point` per ``value_usd``.

    Parameters
    ----------
    log : FullInfoLog
    p_success, expected_cost_usd : ndarray of float, shape (n_prompts, n_candidates)
        The router's predictions, columns in ``log.candidates`` order.
    values : sequence of float, shape (n_values,)
        Typically :func:`value_grid`.
    min_success, max_cost_usd : float, optional
        Fixed policy constraints applied at every value.

    Returns
    -------
    curve : list of CurvePoint, length n_values, in the order of ``values``
    """
    p, c = _check_predictions(log, p_success, expected_cost_usd)
    return [
        router_point(log, p, c, v, min_success=min_success, max_cost_usd=max_cost_usd)
        for v in np.asarray(values, dtype=np.float64).ravel()
    ]


def envelope_quality(costs: np.ndarray, qualities: np.ndarray, at: float) -> float:
    """Quality of the non-decreasing cost-quality curve at cost ``at``.

    ``q(at) = max{quality_k : cost_k <= at}``, and 0 when no point costs ``<= at``
    (conservative: we claim nothing below the cheapest observed point).

    Parameters
    ----------
    costs, qualities : ndarray of float, shape (n_points,)
    at : float
    """
    costs = np.asarray(costs, dtype=np.float64)
    qualities = np.asarray(qualities, dtype=np.float64)
    affordable = costs <= at
    return float(qualities[affordable].max()) if affordable.any() else 0.0


def envelope_area(costs: np.ndarray, qualities: np.ndarray, low: float, high: float) -> float:
    """Mean quality of the non-decreasing curve over log(cost) in ``[low, high]``.

    ``area = (1 / log(high / low)) * integral_{log low}^{log high} q(e^u) du`` with ``q``
    the step function of :func:`envelope_quality`. Being a mean of a quality, it lies in
    [0, 1], and a curve that reaches more quality for less money scores higher. The log
    axis weighs each doubling of budget alike. If ``high <= low``, ``area = q(low)``.

    Parameters
    ----------
    costs, qualities : ndarray of float, shape (n_points,)
    low, high : float
        Cost range; ``low`` must be > 0 unless ``high <= low``.
    """
    costs = np.asarray(costs, dtype=np.float64)
    qualities = np.asarray(qualities, dtype=np.float64)
    if high <= low:
        return envelope_quality(costs, qualities, low)
    if low <= 0:
        raise ValueError(f"Expected low > 0 for a log-cost area, got {low}.")
    inner = costs[(costs > low) & (costs < high)]
    edges = np.unique(np.concatenate([[low], inner, [high]]))
    widths = np.diff(np.log(edges))
    # q is right-continuous and constant on [edges[k], edges[k+1]).
    heights = np.array([envelope_quality(costs, qualities, e) for e in edges[:-1]])
    return float((heights * widths).sum() / math.log(high / low))


def _area_bounds(singles: list[Point]) -> tuple[float, float]:
    """Cost range of the area: from the cheapest to the dearest single model.

    A free single model (cost 0) has no log; the lower bound is then clipped to
    ``dearest * 1e-6`` (documented rather than hidden).
    """
    low = min(p.cost_usd for p in singles)
    high = max(p.cost_usd for p in singles)
    if low <= 0 < high:
        low = high * 1e-6
    return low, high


def _savings(
    costs: np.ndarray, qualities: np.ndarray, target_quality: float, baseline_cost: float
) -> float | None:
    """``1 - min{cost_k : quality_k >= target} / baseline_cost``, or None if unreached.

    None also when ``baseline_cost`` is 0 (nothing to save on).
    """
    reaching = costs[qualities >= target_quality - QUALITY_TOL]
    if reaching.size == 0 or baseline_cost <= 0:
        return None
    return float(1.0 - reaching.min() / baseline_cost)


def curve_figures(
    costs: Sequence[float] | np.ndarray,
    qualities: Sequence[float] | np.ndarray,
    best: Point,
    cost_range: tuple[float, float],
) -> dict[str, float | None]:
    """Headline figures of any set of (cost, quality) points against the best single model.

    The points may be a router's curve, one policy (a single point) or a baseline. With
    ``(c_k, q_k)`` the points and ``B`` the best single model (quality ``q_B``, cost
    ``c_B``):

    - ``savings_at_parity = 1 - min{c_k : q_k >= q_B} / c_B`` (None if unreached);
    - ``savings_at_95 = 1 - min{c_k : q_k >= 0.95 q_B} / c_B`` (None if unreached);
    - ``quality_at_quarter_cost = max{q_k : c_k <= c_B / 4}`` (None if no such point) and
      ``quality_at_quarter_cost_fraction`` = that ``/ q_B``;
    - ``area``: :func:`envelope_area` of the points over ``cost_range``.

    Parameters
    ----------
    costs, qualities : array-like of float, shape (n_points,)
    best : Point
        The reference single model, usually :func:`best_single`.
    cost_range : (float, float)
        ``(low, high)`` of the area, usually the cheapest and dearest single model.

    Returns
    -------
    figures : dict of str to float or None
    """
    c = np.asarray(costs, dtype=np.float64).ravel()
    q = np.asarray(qualities, dtype=np.float64).ravel()
    if c.shape != q.shape or c.size == 0:
        raise ValueError(
            f"Expected costs and qualities of one shape (n_points,) with n_points >= 1, "
            f"got {c.shape} and {q.shape}."
        )
    q_b, c_b = best.quality, best.cost_usd
    quarter = q[c <= 0.25 * c_b]
    q_quarter = float(quarter.max()) if quarter.size else None
    low, high = cost_range
    return {
        "savings_at_parity": _savings(c, q, q_b, c_b),
        "savings_at_95": _savings(c, q, 0.95 * q_b, c_b),
        "quality_at_quarter_cost": q_quarter,
        "quality_at_quarter_cost_fraction": (
            q_quarter / q_b if q_quarter is not None and q_b > 0 else None
        ),
        "area": envelope_area(c, q, low, high),
    }


def random_point(log: FullInfoLog) -> Point:
    """The random router: a candidate drawn uniformly per prompt, in expectation.

    ``quality = (1 / (n K)) sum_i sum_j outcome[i, j]`` and
    ``cost = (1 / (n K)) sum_i sum_j cost_usd[i, j]`` over ``n`` prompts and ``K``
    candidates: the mean of the single-model points.
    """
    return Point(
        name="random", quality=float(log.outcome.mean()), cost_usd=float(log.cost_usd.mean())
    )


def baseline_points(log: FullInfoLog) -> dict[str, Point]:
    """The routers that need no learning: ``random``, ``cheapest`` and ``strongest``.

    ``cheapest`` is :func:`cheapest_single` and ``strongest`` is :func:`best_single`
    (highest mean quality), each renamed; the model's name is kept in ``model`` of
    :func:`summarize`'s rows.
    """
    return {
        "random": random_point(log),
        "cheapest": cheapest_single(log),
        "strongest": best_single(log),
    }


def oracle_curve(
    log: FullInfoLog, values: Sequence[float] | np.ndarray | None = None
) -> list[CurvePoint]:
    """The served policy fed the logged truth (``p = outcome``, cost = logged cost).

    For each ``value_usd`` the policy maximises ``sum_i value_usd * outcome[i, a_i] -
    cost_usd[i, a_i]``, so the points lie on the upper convex hull of everything a
    per-prompt router could reach: no router's curve is above it at any cost (up to
    the hull's straight segments). Its last point is :func:`oracle_point`.

    Parameters
    ----------
    log : FullInfoLog
    values : array-like of float, optional
        Default :func:`value_grid`.
    """
    grid = value_grid(log) if values is None else values
    return router_curve(log, log.outcome, log.cost_usd, grid)


# --- two-model routing (RouteLLM's APGR and CPT) -------------------------------------


@dataclass(frozen=True)
class PairPoint:
    """Routing between two candidates at one ``value_usd``.

    Parameters
    ----------
    value_usd : float
    strong_share : float
        Fraction of prompts sent to the strong model, in [0, 1].
    quality, cost_usd : float
        Mean logged outcome and cost of the chosen candidates.
    """

    value_usd: float
    strong_share: float
    quality: float
    cost_usd: float


def order_pair(log: FullInfoLog, a: str, b: str) -> tuple[str, str]:
    """``(weak, strong)``: the strong model has the higher mean quality, ties go to the dearer.

    Raises
    ------
    ValueError
        If a name is not a candidate of ``log`` or both names are the same.
    """
    for name in (a, b):
        if name not in log.candidates:
            raise ValueError(
                f"Pair model {name!r} is not a candidate of the log; candidates are "
                f"{list(log.candidates)}."
            )
    if a == b:
        raise ValueError(f"A pair needs two different models, got {a!r} twice.")
    ja, jb = log.candidates.index(a), log.candidates.index(b)
    qa, qb = log.outcome[:, ja].mean(), log.outcome[:, jb].mean()
    ca, cb = log.cost_usd[:, ja].mean(), log.cost_usd[:, jb].mean()
    return (a, b) if (qa, ca) <= (qb, cb) else (b, a)


def default_pair(log: FullInfoLog) -> tuple[str, str] | None:
    """``(cheapest single, best single)``, or None when one model is both."""
    weak, strong = cheapest_single(log).name, best_single(log).name
    return None if weak == strong else (weak, strong)


def pair_values(
    p_success: np.ndarray, expected_cost_usd: np.ndarray, max_values: int = 256
) -> np.ndarray:
    """Values of ``value_usd`` that visit every distinct decision between two models.

    With two candidates the policy prefers the strong one on prompt ``i`` exactly when
    ``value_usd * (p_s - p_w) > c_s - c_w``, so the decision flips only at the
    breakpoints ``v_i = (c_s - c_w) / (p_s - p_w)`` (those > 0). Sweeping 0, half the
    smallest breakpoint, the geometric midpoints of consecutive breakpoints and twice
    the largest visits every decision between them, without ever sitting on a tie. Above
    ``max_values`` breakpoints their quantiles are used instead.

    Parameters
    ----------
    p_success, expected_cost_usd : ndarray of float, shape (n_prompts, 2)
        Columns ``[weak, strong]``.
    max_values : int, default=256

    Returns
    -------
    values : ndarray of float, increasing, starting at 0
    """
    p = np.asarray(p_success, dtype=np.float64)
    c = np.asarray(expected_cost_usd, dtype=np.float64)
    dp, dc = p[:, 1] - p[:, 0], c[:, 1] - c[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        v = dc / dp
    v = np.unique(v[np.isfinite(v) & (v > 0)])
    if v.size > max_values:
        v = np.unique(np.quantile(v, np.linspace(0.0, 1.0, max_values)))
    if v.size == 0:
        return np.array([0.0, 1.0])
    mids = np.sqrt(v[:-1] * v[1:])
    return np.unique(np.concatenate([[0.0, 0.5 * v[0]], mids, [2.0 * v[-1]]]))


def pair_curve(
    log: FullInfoLog,
    p_success: np.ndarray,
    expected_cost_usd: np.ndarray,
    weak: str,
    strong: str,
    values: Sequence[float] | np.ndarray | None = None,
) -> list[PairPoint]:
    """Route between ``weak`` and ``strong`` only, with the router's own scores.

    Every decision is :func:`serving.policy.choose` with ``allowed`` set to the two
    models, exactly as a request naming ``candidates: [weak, strong]`` is served.

    Parameters
    ----------
    log : FullInfoLog
    p_success, expected_cost_usd : ndarray of float, shape (n_prompts, n_candidates)
        Columns in ``log.candidates`` order.
    weak, strong : str
        Candidate names.
    values : array-like of float, optional
        Default :func:`pair_values` of the two models' scores.

    Returns
    -------
    curve : list of PairPoint, in the order of ``values``
    """
    p, c = _check_predictions(log, p_success, expected_cost_usd)
    w, s = log.candidates.index(weak), log.candidates.index(strong)
    if values is None:
        values = pair_values(p[:, [w, s]], c[:, [w, s]])
    allowed = np.zeros(log.n_candidates, dtype=bool)
    allowed[[w, s]] = True
    rows = np.arange(log.n_prompts)
    curve = []
    for v in np.asarray(values, dtype=np.float64).ravel():
        action, _ = choose(p, c, PolicyParams(value_usd=float(v)), allowed=allowed)
        curve.append(
            PairPoint(
                value_usd=float(v),
                strong_share=float((action == s).mean()),
                quality=float(log.outcome[rows, action].mean()),
                cost_usd=float(log.cost_usd[rows, action].mean()),
            )
        )
    return curve


def _pair_frontier(
    curve: list[PairPoint], q_weak: float, q_strong: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(x, q)`` sorted by strong-call share, with both ends, one ``q`` per ``x``.

    ``(0, q_weak)`` (always weak) and ``(1, q_strong)`` (always strong) are added, as
    RouteLLM's threshold sweep always reaches both; where several values give the same
    share, the best quality counts.
    """
    best: dict[float, float] = {0.0: q_weak, 1.0: q_strong}
    for pt in curve:
        x = round(pt.strong_share, 12)
        best[x] = max(best.get(x, -math.inf), pt.quality)
    xs = np.array(sorted(best))
    return xs, np.array([best[x] for x in xs])


def _calls_to_reach(xs: np.ndarray, qs: np.ndarray, target: float) -> float:
    """Least ``x`` where the piecewise-linear curve through ``(xs, qs)`` reaches ``target``."""
    reached = np.nonzero(qs >= target - QUALITY_TOL)[0]
    k = int(reached[0])
    if k == 0:
        return float(xs[0])
    x0, x1, q0, q1 = xs[k - 1], xs[k], qs[k - 1], qs[k]
    return float(x0 + (target - q0) / (q1 - q0) * (x1 - x0))


def pair_metrics(
    log: FullInfoLog,
    p_success: np.ndarray,
    expected_cost_usd: np.ndarray,
    weak: str,
    strong: str,
    values: Sequence[float] | np.ndarray | None = None,
) -> dict[str, Any]:
    """RouteLLM's two-model figures: APGR and CPT(50%), CPT(80%).

    With ``q_w``, ``q_s`` the two models' mean quality, ``x`` the share of calls sent
    to the strong model and ``q(x)`` the router's quality, piecewise linear through the
    points of :func:`pair_curve` plus ``(0, q_w)`` and ``(1, q_s)``:

    - performance gap recovered ``PGR(x) = (q(x) - q_w) / (q_s - q_w)``;
    - ``APGR = integral_0^1 PGR(x) dx = (integral_0^1 q(x) dx - q_w) / (q_s - q_w)``,
      by the trapezoid rule, as RouteLLM's ``(AUC - weak_auc) / (strong_auc - weak_auc)``.
      Routing at random (or with scores that are the same for every prompt) traces the
      straight line from ``(0, q_w)`` to ``(1, q_s)``: APGR = 0.5;
    - ``CPT(t) = min{x : q(x) >= q_w + t (q_s - q_w)}``, the share of strong calls needed
      to recover a fraction ``t`` of the gap (RouteLLM interpolates the same curve);
      random routing needs ``CPT(t) = t``.

    Parameters
    ----------
    log : FullInfoLog
    p_success, expected_cost_usd : ndarray of float, shape (n_prompts, n_candidates)
    weak, strong : str
        ``strong`` should have the higher mean quality (see :func:`order_pair`).
    values : array-like of float, optional
        Passed to :func:`pair_curve`.

    Returns
    -------
    metrics : dict
        ``weak``, ``strong``, ``weak_quality``, ``strong_quality``, ``weak_cost_usd``,
        ``strong_cost_usd``, ``apgr``, ``cpt_50``, ``cpt_80`` (fractions in [0, 1]; None
        when ``q_s <= q_w``: no gap to recover) and ``curve`` (list of
        ``{value_usd, strong_share, quality, cost_usd}``).
    """
    w, s = log.candidates.index(weak), log.candidates.index(strong)
    q_w, q_s = float(log.outcome[:, w].mean()), float(log.outcome[:, s].mean())
    curve = pair_curve(log, p_success, expected_cost_usd, weak, strong, values)
    out: dict[str, Any] = {
        "weak": weak,
        "strong": strong,
        "weak_quality": q_w,
        "strong_quality": q_s,
        "weak_cost_usd": float(log.cost_usd[:, w].mean()),
        "strong_cost_usd": float(log.cost_usd[:, s].mean()),
        "apgr": None,
        "cpt_50": None,
        "cpt_80": None,
    }
    gap = q_s - q_w
    if gap > QUALITY_TOL:
        xs, qs = _pair_frontier(curve, q_w, q_s)
        auc = float(np.sum(np.diff(xs) * (qs[1:] + qs[:-1]) / 2.0))
        out["apgr"] = (auc - q_w) / gap
        out["cpt_50"] = _calls_to_reach(xs, qs, q_w + 0.5 * gap)
        out["cpt_80"] = _calls_to_reach(xs, qs, q_w + 0.8 * gap)
    out["curve"] = [asdict(pt) for pt in _dedupe_pair_curve(curve)]
    return out


def _dedupe_pair_curve(curve: list[PairPoint]) -> list[PairPoint]:
    """Drop consecutive points with the same decision summary (keeps the JSON small)."""
    out: list[PairPoint] = []
    for pt in curve:
        if out and (out[-1].strong_share, out[-1].quality, out[-1].cost_usd) == (
            pt.strong_share,
            pt.quality,
            pt.cost_usd,
        ):
            continue
        out.append(pt)
    return out


# --- calibration ------------------------------------------------------------------------


def reliability(outcome: np.ndarray, p_success: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Reliability table of predicted ``p_success`` against observed outcomes.

    Predictions fall in ``n_bins`` equal-width bins of [0, 1] (the last one closed).
    For bin ``b`` with ``n_b`` predictions, ``p_b`` is their mean prediction and ``y_b``
    the mean observed outcome; over ``N`` predictions:

    - expected calibration error ``ECE = sum_b (n_b / N) |p_b - y_b|``;
    - Brier score ``mean (p - y)^2`` (for fractional outcomes, the soft-label version).

    A calibrated predictor has ``p_b = y_b`` in every bin: ECE 0.

    Parameters
    ----------
    outcome, p_success : ndarray of float, same shape
        Observed outcomes in [0, 1] and predictions in [0, 1].
    n_bins : int, default=10

    Returns
    -------
    table : dict
        ``n``, ``ece``, ``brier``, ``mean_p_success``, ``mean_outcome`` and ``bins``: a
        list of ``{lower, upper, n, mean_p_success, mean_outcome}`` over non-empty bins.
    """
    y = np.asarray(outcome, dtype=np.float64).ravel()
    p = np.asarray(p_success, dtype=np.float64).ravel()
    if y.shape != p.shape or y.size == 0:
        raise ValueError(
            f"Expected outcome and p_success of one non-empty shape, got {y.shape} and {p.shape}."
        )
    if n_bins < 1:
        raise ValueError(f"Expected n_bins >= 1, got {n_bins}.")
    idx = np.clip(np.floor(p * n_bins).astype(np.int64), 0, n_bins - 1)
    bins = []
    ece = 0.0
    for b in range(n_bins):
        mask = idx == b
        n_b = int(mask.sum())
        if n_b == 0:
            continue
        p_b, y_b = float(p[mask].mean()), float(y[mask].mean())
        ece += n_b / y.size * abs(p_b - y_b)
        bins.append(
            {
                "lower": b / n_bins,
                "upper": (b + 1) / n_bins,
                "n": n_b,
                "mean_p_success": p_b,
                "mean_outcome": y_b,
            }
        )
    return {
        "n": int(y.size),
        "ece": float(ece),
        "brier": float(np.mean((p - y) ** 2)),
        "mean_p_success": float(p.mean()),
        "mean_outcome": float(y.mean()),
        "bins": bins,
    }


def calibration_report(log: FullInfoLog, p_success: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """:func:`reliability` pooled over every (prompt, candidate) and per candidate.

    Returns
    -------
    report : dict
        ``{"n_bins", "pooled": table, "candidates": {name: table}}``.
    """
    p = np.asarray(p_success, dtype=np.float64)
    if p.shape != log.outcome.shape:
        raise ValueError(
            f"Expected p_success of shape (n_prompts, n_candidates) = {log.outcome.shape}, "
            f"got {p.shape}."
        )
    return {
        "n_bins": int(n_bins),
        "pooled": reliability(log.outcome, p, n_bins),
        "candidates": {
            name: reliability(log.outcome[:, k], p[:, k], n_bins)
            for k, name in enumerate(log.candidates)
        },
    }


# --- the summary ------------------------------------------------------------------------


def summarize(
    log: FullInfoLog,
    curve: list[CurvePoint],
    *,
    default_value_usd: float | None = None,
    p_success: np.ndarray | None = None,
    expected_cost_usd: np.ndarray | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    n_calibration_bins: int = 10,
) -> dict[str, Any]:
    """Headline figures of a router against single models, baselines and the oracle.

    All figures are per prompt and computed from the logged truth. ``B`` is
    :func:`best_single` (quality ``q_B``, cost ``c_B``); ``(c_k, q_k)`` are the router's
    curve points.

    Parameters
    ----------
    log : FullInfoLog
    curve : list of CurvePoint
        From :func:`router_curve` on the same ``log``.
    default_value_usd : float, optional
        The value the router would be served with; its point (and, if ``log.segments``
        is set, a per-segment breakdown) is reported. Needs ``p_success`` and
        ``expected_cost_usd``.
    p_success, expected_cost_usd : ndarray of float, shape (n_prompts, n_candidates), optional
        The router's predictions. With them the summary also holds the two-model
        figures (``pairs``) and the calibration.
    pairs : sequence of (str, str), optional
        Extra model pairs for :func:`pair_metrics`, each ordered by :func:`order_pair`.
        The pair (cheapest single, best single) is always included first.
    n_calibration_bins : int, default=10

    Returns
    -------
    summary : dict
        JSON-serialisable (no NaN; missing figures are None):

        - ``n_prompts``, ``candidates``;
        - ``single_models`` (list), ``best_single``, ``cheapest_single``, ``oracle``:
          ``{name, quality, cost_usd}``;
        - ``router_curve``: list of ``{value_usd, quality, cost_usd, share}``;
        - ``savings_at_parity = 1 - min{c_k : q_k >= q_B} / c_B`` (None if unreached);
        - ``savings_at_95 = 1 - min{c_k : q_k >= 0.95 q_B} / c_B`` (None if unreached);
        - ``quality_at_quarter_cost = max{q_k : c_k <= 0.25 c_B}`` (None if no such
          point) and ``quality_at_quarter_cost_fraction`` = that ``/ q_B``;
        - ``area``: :func:`envelope_area` of the router's points between the cheapest and
          the dearest single model's cost; ``area_single_models``: the same for the
          single-model points (no router: the best single model one can afford);
          ``area_cost_range``: those two costs;
        - ``baselines``: ``{random, cheapest, strongest}`` (:func:`baseline_points`),
          each ``{name, model, quality, cost_usd}`` plus its :func:`curve_figures`;
        - ``oracle_curve`` (:func:`oracle_curve`, ``{value_usd, quality, cost_usd}``) and
          ``area_oracle``;
        - ``table``: one row per router, baseline, single model and the oracle, each
          ``{name, kind, quality, cost_usd}`` + :func:`curve_figures` + ``apgr``
          (``kind`` is ``router``, ``baseline``, ``single`` or ``oracle``; the router's
          quality and cost are its default point's, if any; the oracle's APGR is the
          perfect predictor's on the default pair);
        - with ``default_value_usd``: ``default_point`` = ``{value_usd, quality,
          cost_usd, share}``, ``model_share`` (per candidate: share of prompts, mean
          outcome and cost on them) and ``segments`` =
          ``{key: [{value, n, best_single, oracle, router}]}`` if the log has segments;
        - with predictions: ``default_pair`` (``[weak, strong]`` or None), ``pairs``
          (list of :func:`pair_metrics`), ``apgr``, ``cpt_50``, ``cpt_80`` (of the
          default pair, None without one), ``oracle_pairs`` (the perfect predictor's
          :func:`pair_metrics` without curves) and ``calibration``
          (:func:`calibration_report`).
    """
    if not curve:
        raise ValueError("Expected a router curve with at least one point, got none.")
    if default_value_usd is not None and (p_success is None or expected_cost_usd is None):
        raise ValueError(
            "default_value_usd needs the router's predictions: pass p_success and "
            "expected_cost_usd of shape (n_prompts, n_candidates)."
        )
    singles = single_model_points(log)
    best = best_single(log)
    cost_range = _area_bounds(singles)
    low, high = cost_range
    r_costs = np.array([p.cost_usd for p in curve])
    r_quals = np.array([p.quality for p in curve])
    s_costs = np.array([p.cost_usd for p in singles])
    s_quals = np.array([p.quality for p in singles])
    figures = curve_figures(r_costs, r_quals, best, cost_range)
    oracle = oracle_curve(log)
    o_costs = np.array([p.cost_usd for p in oracle])
    o_quals = np.array([p.quality for p in oracle])

    summary: dict[str, Any] = {
        "n_prompts": log.n_prompts,
        "candidates": list(log.candidates),
        "single_models": [asdict(p) for p in singles],
        "best_single": asdict(best),
        "cheapest_single": asdict(cheapest_single(log)),
        "oracle": asdict(oracle_point(log)),
        "router_curve": [_curve_dict(p) for p in curve],
        "savings_at_parity": figures["savings_at_parity"],
        "savings_at_95": figures["savings_at_95"],
        "quality_at_quarter_cost": figures["quality_at_quarter_cost"],
        "quality_at_quarter_cost_fraction": figures["quality_at_quarter_cost_fraction"],
        "area": figures["area"],
        "area_single_models": envelope_area(s_costs, s_quals, low, high),
        "area_cost_range": [float(low), float(high)],
        "area_oracle": envelope_area(o_costs, o_quals, low, high),
        "oracle_curve": [
            {"value_usd": float(p.value_usd), "quality": p.quality, "cost_usd": p.cost_usd}
            for p in oracle
        ],
    }
    baselines = {}
    for key, point in baseline_points(log).items():
        row = {"name": key, "model": point.name, "quality": point.quality}
        row["cost_usd"] = point.cost_usd
        row.update(curve_figures([point.cost_usd], [point.quality], best, cost_range))
        baselines[key] = row
    summary["baselines"] = baselines

    router_row: dict[str, Any] = {"name": "router", "kind": "router", "quality": None}
    router_row["cost_usd"] = None
    router_row.update(figures)
    router_row["apgr"] = None
    oracle_row = {"name": "oracle", "kind": "oracle", **asdict(oracle_point(log))}
    oracle_row["name"] = "oracle"
    oracle_row.update(curve_figures(o_costs, o_quals, best, cost_range))
    oracle_row["apgr"] = None

    if default_value_usd is not None:
        action = router_choice(log, p_success, expected_cost_usd, default_value_usd)
        summary["default_point"] = _choice_dict(log, action, default_value_usd)
        summary["model_share"] = _model_share(log, action)
        router_row["quality"] = summary["default_point"]["quality"]
        router_row["cost_usd"] = summary["default_point"]["cost_usd"]
        if log.segments:
            summary["segments"] = _segment_table(log, action, default_value_usd)

    if p_success is not None and expected_cost_usd is not None:
        p, c = _check_predictions(log, p_success, expected_cost_usd)
        chosen = default_pair(log)
        wanted: list[tuple[str, str]] = [chosen] if chosen else []
        for a, b in pairs or ():
            pair = order_pair(log, a, b)
            if pair not in wanted:
                wanted.append(pair)
        summary["default_pair"] = list(chosen) if chosen else None
        summary["pairs"] = [pair_metrics(log, p, c, w, s) for w, s in wanted]
        summary["oracle_pairs"] = [
            {
                k: v
                for k, v in pair_metrics(log, log.outcome, log.cost_usd, w, s).items()
                if k != "curve"
            }
            for w, s in wanted
        ]
        head = summary["pairs"][0] if chosen else {}
        for key in ("apgr", "cpt_50", "cpt_80"):
            summary[key] = head.get(key)
        router_row["apgr"] = summary["apgr"]
        if chosen:
            oracle_row["apgr"] = summary["oracle_pairs"][0]["apgr"]
        summary["calibration"] = calibration_report(log, p, n_calibration_bins)

    table = [router_row]
    for key, row in baselines.items():
        table.append({"kind": "baseline", **row, "name": key, "apgr": None})
    for point in singles:
        row = {"name": point.name, "kind": "single", "quality": point.quality}
        row["cost_usd"] = point.cost_usd
        row.update(curve_figures([point.cost_usd], [point.quality], best, cost_range))
        row["apgr"] = None
        table.append(row)
    table.append(oracle_row)
    summary["table"] = table
    return summary


def _model_share(log: FullInfoLog, action: np.ndarray) -> list[dict[str, Any]]:
    """Per candidate: share of prompts routed to it and how those calls went.

    ``quality`` and ``cost_usd`` are means over the prompts routed to the candidate
    (None if none); ``single_quality`` is the candidate's mean over every prompt.
    """
    rows = []
    for k, name in enumerate(log.candidates):
        mask = action == k
        n = int(mask.sum())
        rows.append(
            {
                "model": name,
                "share": n / log.n_prompts,
                "n": n,
                "quality": float(log.outcome[mask, k].mean()) if n else None,
                "cost_usd": float(log.cost_usd[mask, k].mean()) if n else None,
                "single_quality": float(log.outcome[:, k].mean()),
                "single_cost_usd": float(log.cost_usd[:, k].mean()),
            }
        )
    return rows


def _segment_table(
    log: FullInfoLog, action: np.ndarray, value_usd: float
) -> dict[str, list[dict[str, Any]]]:
    """Per segment value: size, best single model, oracle and the router's choice."""
    table: dict[str, list[dict[str, Any]]] = {}
    for key, tags in log.segments.items():
        rows = []
        for tag in sorted(np.unique(tags).tolist()):
            mask = tags == tag
            sub = log.subset(mask)
            rows.append(
                {
                    "value": tag,
                    "n": int(mask.sum()),
                    "best_single": asdict(best_single(sub)),
                    "oracle": asdict(oracle_point(sub)),
                    "router": _choice_dict(sub, action[mask], value_usd),
                }
            )
        table[key] = rows
    return table


def _check_predictions(
    log: FullInfoLog, p_success: np.ndarray, expected_cost_usd: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p_success, dtype=np.float64)
    c = np.asarray(expected_cost_usd, dtype=np.float64)
    expected = (log.n_prompts, log.n_candidates)
    for name, arr in (("p_success", p), ("expected_cost_usd", c)):
        if arr.shape != expected:
            raise ValueError(
                f"Expected {name} of shape (n_prompts, n_candidates) = {expected} "
                f"(columns in log.candidates order), got {arr.shape}."
            )
    return p, c


def _point(name: str, log: FullInfoLog, action: np.ndarray) -> Point:
    rows = np.arange(log.n_prompts)
    return Point(
        name=name,
        quality=float(log.outcome[rows, action].mean()),
        cost_usd=float(log.cost_usd[rows, action].mean()),
    )


def _share(log: FullInfoLog, action: np.ndarray) -> dict[str, float]:
    counts = np.bincount(action, minlength=log.n_candidates) / log.n_prompts
    return {name: float(s) for name, s in zip(log.candidates, counts, strict=True)}


def _choice_dict(log: FullInfoLog, action: np.ndarray, value_usd: float) -> dict[str, Any]:
    point = _point("router", log, action)
    return {
        "value_usd": float(value_usd),
        "quality": point.quality,
        "cost_usd": point.cost_usd,
        "share": _share(log, action),
    }


def _curve_dict(point: CurvePoint) -> dict[str, Any]:
    return {
        "value_usd": float(point.value_usd),
        "quality": float(point.quality),
        "cost_usd": float(point.cost_usd),
        "share": {k: float(v) for k, v in point.share.items()},
    }

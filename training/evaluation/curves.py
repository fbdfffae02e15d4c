"""Cost-quality points and curves: single models, baselines, the oracle and the router.

All figures are means per prompt of a :class:`~training.evaluation.log.FullInfoLog`:
``quality`` is the mean logged outcome in [0, 1] and ``cost_usd`` the mean logged cost
in USD of the chosen candidates.

The router's decisions come from :func:`serving.policy.choose`, the function `/route`
serves. Sweeping the policy's ``value_usd`` (what one good outcome is worth) traces the
router's curve; its area and savings compare it with the single models (always call one
model) and the oracle (per prompt, the cheapest candidate with the best outcome).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from serving.policy import PolicyParams, choose
from training.evaluation.log import QUALITY_TOL, FullInfoLog


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

    def to_dict(self) -> dict[str, Any]:
        """``{name, quality, cost_usd}``, as in ``metrics.json``."""
        return asdict(self)


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

    def to_dict(self, *, share: bool = True) -> dict[str, Any]:
        """``{value_usd, quality, cost_usd, share}`` (``share=False`` leaves the mix out)."""
        out: dict[str, Any] = {
            "value_usd": float(self.value_usd),
            "quality": float(self.quality),
            "cost_usd": float(self.cost_usd),
        }
        if share:
            out["share"] = {k: float(v) for k, v in self.share.items()}
        return out


@dataclass(frozen=True)
class CurveFigures:
    """Headline figures of a set of (cost, quality) points against the best single model.

    See :func:`curve_figures` for the definitions; None where a figure is not reached.
    """

    savings_at_parity: float | None
    savings_at_95: float | None
    quality_at_quarter_cost: float | None
    quality_at_quarter_cost_fraction: float | None
    area: float

    def to_dict(self) -> dict[str, float | None]:
        """The five figures under their own names, as in ``metrics.json``."""
        return asdict(self)


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
    return choice_point_of("oracle", log, oracle_choice(log))


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
    reference: int | None = None,
    reference_margin: float = 0.0,
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
    reference, reference_margin : int or None, float
        The bundle's reference model (column index) and margin (`PolicyParams`).

    Returns
    -------
    action : ndarray of int, shape (n_prompts,)
    """
    p, c = check_predictions(log, p_success, expected_cost_usd)
    params = PolicyParams(
        value_usd=float(value_usd),
        min_success=min_success,
        max_cost_usd=max_cost_usd,
        reference=reference,
        reference_margin=reference_margin,
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
    reference: int | None = None,
    reference_margin: float = 0.0,
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
        reference=reference,
        reference_margin=reference_margin,
    )
    return choice_curve_point(log, action, value_usd)


def router_curve(
    log: FullInfoLog,
    p_success: np.ndarray,
    expected_cost_usd: np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    min_success: float | None = None,
    max_cost_usd: float | None = None,
    reference: int | None = None,
    reference_margin: float = 0.0,
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
    reference, reference_margin : int or None, float
        The reference anchor applied at every value (`PolicyParams`).

    Returns
    -------
    curve : list of CurvePoint, length n_values, in the order of ``values``
    """
    p, c = check_predictions(log, p_success, expected_cost_usd)
    return [
        router_point(
            log,
            p,
            c,
            v,
            min_success=min_success,
            max_cost_usd=max_cost_usd,
            reference=reference,
            reference_margin=reference_margin,
        )
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


def area_bounds(singles: list[Point]) -> tuple[float, float]:
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
) -> CurveFigures:
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
    figures : CurveFigures
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
    return CurveFigures(
        savings_at_parity=_savings(c, q, q_b, c_b),
        savings_at_95=_savings(c, q, 0.95 * q_b, c_b),
        quality_at_quarter_cost=q_quarter,
        quality_at_quarter_cost_fraction=(
            q_quarter / q_b if q_quarter is not None and q_b > 0 else None
        ),
        area=envelope_area(c, q, low, high),
    )


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


def check_predictions(
    log: FullInfoLog, p_success: np.ndarray, expected_cost_usd: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The predictions as float arrays, checked to be ``(n_prompts, n_candidates)``."""
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


def choice_point_of(name: str, log: FullInfoLog, action: np.ndarray) -> Point:
    """Mean logged quality and cost of the candidates ``action`` (shape (n_prompts,)) picks."""
    rows = np.arange(log.n_prompts)
    return Point(
        name=name,
        quality=float(log.outcome[rows, action].mean()),
        cost_usd=float(log.cost_usd[rows, action].mean()),
    )


def share_of(log: FullInfoLog, action: np.ndarray) -> dict[str, float]:
    """Fraction of prompts ``action`` sends to each candidate (all of them, summing to 1)."""
    counts = np.bincount(action, minlength=log.n_candidates) / log.n_prompts
    return {name: float(s) for name, s in zip(log.candidates, counts, strict=True)}


def choice_curve_point(log: FullInfoLog, action: np.ndarray, value_usd: float) -> CurvePoint:
    """The router's choices ``action`` at ``value_usd`` as a :class:`CurvePoint`."""
    point = choice_point_of("router", log, action)
    return CurvePoint(
        value_usd=float(value_usd),
        quality=point.quality,
        cost_usd=point.cost_usd,
        share=share_of(log, action),
    )

"""Two-model routing: RouteLLM's APGR and CPT for a (weak, strong) pair of candidates.

Every decision is :func:`serving.policy.choose` with ``allowed`` set to the two models,
exactly as a request naming ``candidates: [weak, strong]`` is served, so these figures
compare with RouteLLM's published ones on the same footing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from serving.policy import PolicyParams, choose
from training.evaluation.curves import best_single, cheapest_single, check_predictions
from training.evaluation.log import QUALITY_TOL, FullInfoLog


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


@dataclass(frozen=True)
class PairMetrics:
    """RouteLLM's figures of one (weak, strong) pair; see :func:`pair_metrics`.

    Parameters
    ----------
    weak, strong : str
    weak_quality, strong_quality, weak_cost_usd, strong_cost_usd : float
        Each model's mean logged outcome and cost.
    apgr, cpt_50, cpt_80 : float or None
        None when ``strong_quality <= weak_quality``: no gap to recover.
    curve : tuple of PairPoint
        The sweep, consecutive equal points merged.
    """

    weak: str
    strong: str
    weak_quality: float
    strong_quality: float
    weak_cost_usd: float
    strong_cost_usd: float
    apgr: float | None
    cpt_50: float | None
    cpt_80: float | None
    curve: tuple[PairPoint, ...]

    def to_dict(self, *, curve: bool = True) -> dict[str, Any]:
        """As in ``metrics.json``; ``curve=False`` leaves the sweep out."""
        out = {k: v for k, v in asdict(self).items() if k != "curve"}
        if curve:
            out["curve"] = [asdict(pt) for pt in self.curve]
        return out


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
    p, c = check_predictions(log, p_success, expected_cost_usd)
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
) -> PairMetrics:
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
    metrics : PairMetrics
        ``apgr``, ``cpt_50``, ``cpt_80`` are fractions in [0, 1], None when
        ``q_s <= q_w`` (no gap to recover).
    """
    w, s = log.candidates.index(weak), log.candidates.index(strong)
    q_w, q_s = float(log.outcome[:, w].mean()), float(log.outcome[:, s].mean())
    curve = pair_curve(log, p_success, expected_cost_usd, weak, strong, values)
    apgr = cpt_50 = cpt_80 = None
    gap = q_s - q_w
    if gap > QUALITY_TOL:
        xs, qs = _pair_frontier(curve, q_w, q_s)
        auc = float(np.sum(np.diff(xs) * (qs[1:] + qs[:-1]) / 2.0))
        apgr = (auc - q_w) / gap
        cpt_50 = _calls_to_reach(xs, qs, q_w + 0.5 * gap)
        cpt_80 = _calls_to_reach(xs, qs, q_w + 0.8 * gap)
    return PairMetrics(
        weak=weak,
        strong=strong,
        weak_quality=q_w,
        strong_quality=q_s,
        weak_cost_usd=float(log.cost_usd[:, w].mean()),
        strong_cost_usd=float(log.cost_usd[:, s].mean()),
        apgr=apgr,
        cpt_50=cpt_50,
        cpt_80=cpt_80,
        curve=tuple(_dedupe_pair_curve(curve)),
    )


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

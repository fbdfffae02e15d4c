"""Logging policies: who chose the model of each simulated call, with what probability.

Each policy returns its whole action distribution, shape ``(n_prompts, n_candidates)``
(``action_dist`` in Open Bandit Pipeline's terms, without the position axis), so the
simulated log carries the exact propensity of every choice and an off-policy
estimator can use the distribution itself. Policies see the prompts and who sent them
(`PromptContext`), never the outcomes of the prompts they choose for.

Specs, as ``outcome-router simulate --policy`` takes them (`parse_policy`):

- ``uniform``: every candidate with probability 1/K.
- ``epsilon:BUNDLE:EPS``: a trained bundle's greedy choice at its default knobs, with
  probability ``1 - EPS``, else any candidate uniformly (`serving.policy`'s
  epsilon-greedy, what ``OUTCOME_ROUTER_EXPLORE=epsilon`` serves).
- ``softmax:BUNDLE:TEMP``: candidates with probability proportional to
  ``exp(utility / TEMP)``, utility in USD (``OUTCOME_ROUTER_EXPLORE=softmax``).
- ``biased[:LONG_SHARE[:TARGET]]`` (alias ``human``): people choosing by habit and by
  size (`BiasedHumanPolicy`).
"""

from __future__ import annotations

import abc
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from features.routing_text import routing_text


@dataclass(frozen=True)
class PromptContext:
    """What a logging policy may look at: the prompts, who sent them, and the
    candidates' typical cost and quality over the whole log (what people know of a
    model by reputation and price list), never the per-prompt outcomes.

    Attributes
    ----------
    prompt_ids : ndarray of str, shape (n_prompts,)
    prompts : list of (str or None), length n_prompts
    messages : list of (list of dict or None), length n_prompts
    teams : ndarray of str, shape (n_prompts,)
    candidates : tuple of str, length n_candidates
    typical_cost_usd : ndarray of float, shape (n_candidates,)
        Mean cost per call of each candidate in the log.
    typical_outcome : ndarray of float, shape (n_candidates,)
        Mean outcome of each candidate in the log (a public leaderboard's view).
    """

    prompt_ids: np.ndarray
    prompts: list
    messages: list
    teams: np.ndarray
    candidates: tuple[str, ...]
    typical_cost_usd: np.ndarray
    typical_outcome: np.ndarray

    @property
    def n_prompts(self) -> int:
        return len(self.prompt_ids)

    @property
    def n_candidates(self) -> int:
        return len(self.candidates)

    def texts(self, source: str = "all") -> list[str]:
        """Routing text of every prompt (`features.routing_text.routing_text`)."""
        pairs = zip(self.prompts, self.messages, strict=True)
        return [routing_text(p, m, source=source) for p, m in pairs]


class LoggingPolicy(abc.ABC):
    """A policy that chose the logged calls; it gives every candidate's probability."""

    policy_name: ClassVar[str]

    @abc.abstractmethod
    def action_dist(self, context: PromptContext) -> np.ndarray:
        """Probability of each candidate per prompt, shape ``(n_prompts, n_candidates)``;
        rows sum to 1."""

    def describe(self, context: PromptContext | None = None) -> dict[str, Any]:
        """The policy's name and parameters, for ``policy.json``."""
        return {"name": self.policy_name}


@dataclass(frozen=True)
class UniformPolicy(LoggingPolicy):
    """Every candidate with probability ``1 / n_candidates``: the A/B-test logger.

    Examples
    --------
    >>> ctx = PromptContext(np.array(["p"]), ["hi"], [None], np.array(["t"]), ("a", "b"),
    ...                     np.array([0.1, 1.0]), np.array([0.5, 0.7]))
    >>> UniformPolicy().action_dist(ctx)
    array([[0.5, 0.5]])
    """

    policy_name: ClassVar[str] = "uniform"

    def action_dist(self, context: PromptContext) -> np.ndarray:
        k = context.n_candidates
        return np.full((context.n_prompts, k), 1.0 / k)


@dataclass(frozen=True)
class _BundlePolicy(LoggingPolicy):
    """A trained bundle served with exploration: `serving.scoring.BundleScorer` scores
    the prompts (through `training.evaluation.served.ServedPolicy`, what offline
    evaluation runs) and `serving.policy.action_distribution` gives the probabilities
    at the bundle's default knobs, exactly as `/route` would draw them."""

    bundle: str | Path = ""

    def _exploration(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def action_dist(self, context: PromptContext) -> np.ndarray:
        from serving.bundle import load_bundle
        from serving.policy import action_distribution
        from training.evaluation.served import ServedPolicy

        bundle = load_bundle(self.bundle)
        unknown = [c for c in context.candidates if c not in bundle.candidate_names]
        if unknown:
            raise ValueError(
                f"The bundle {self.bundle} does not route to {unknown}; it routes between "
                f"{list(bundle.candidate_names)}. Pass --candidates among those."
            )
        served = ServedPolicy(bundle, candidates=list(context.candidates))
        texts = context.texts(bundle.feature_spec.text_source)
        print(f"scoring {len(texts)} prompts with {bundle.path}", file=sys.stderr, flush=True)
        p, cost = served.score(served.featurize(texts))
        dist = action_distribution(p, cost, served.params, self._exploration())
        order = [served.candidates.index(c) for c in context.candidates]
        return dist[:, order]

    def describe(self, context: PromptContext | None = None) -> dict[str, Any]:
        from serving.bundle import load_bundle

        bundle = load_bundle(self.bundle)
        return {
            "name": self.policy_name,
            "bundle": str(self.bundle),
            "router_version": bundle.router_version,
            "policy_defaults": bundle.policy,
            "exploration": self._exploration().describe(),
        }


@dataclass(frozen=True)
class EpsilonGreedyPolicy(_BundlePolicy):
    """A bundle's greedy choice with probability ``1 - epsilon + epsilon / K``, any other
    candidate with ``epsilon / K`` (`serving.policy.Exploration` ``"epsilon"``).

    Parameters
    ----------
    bundle : path
        A trained bundle folder whose candidates include the simulated ones.
    epsilon : float in (0, 1], default=0.1
    """

    policy_name: ClassVar[str] = "epsilon"
    epsilon: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in (0, 1], got {self.epsilon!r}.")

    def _exploration(self):
        from serving.policy import Exploration

        return Exploration("epsilon", epsilon=self.epsilon)


@dataclass(frozen=True)
class SoftmaxPolicy(_BundlePolicy):
    """Candidates drawn with probability proportional to ``exp(utility / temperature)``,
    utility ``value_usd * p_success - expected_cost_usd`` at the bundle's default
    ``value_usd`` (`serving.policy.Exploration` ``"softmax"``).

    Parameters
    ----------
    bundle : path
    temperature : float > 0, default=0.05
        In USD of utility: a candidate ``temperature`` worse than the best is drawn
        ``e`` times less often.
    """

    policy_name: ClassVar[str] = "softmax"
    temperature: float = 0.05

    def __post_init__(self) -> None:
        if not (0.0 < self.temperature < np.inf):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature!r}.")

    def _exploration(self):
        from serving.policy import Exploration

        return Exploration("softmax", temperature=self.temperature)


@dataclass(frozen=True, eq=False)
class PrecomputedPolicy(LoggingPolicy):
    """A distribution computed once and replayed, e.g. a bundle policy's over many seeds
    (scoring the prompts is the slow part; the draws are what the seed changes).

    Parameters
    ----------
    dist : ndarray of float, shape (n_prompts, n_candidates)
        Rows in the simulated table's prompt order (sorted ``prompt_id``), columns in
        its candidate order, e.g. ``SimulationResult.action_dist`` of an earlier run.
    description : dict, optional
        What ``describe`` reports (default: ``{"name": "precomputed"}``).
    """

    policy_name: ClassVar[str] = "precomputed"
    dist: np.ndarray = None  # type: ignore[assignment]
    description: dict | None = None

    def action_dist(self, context: PromptContext) -> np.ndarray:
        dist = np.asarray(self.dist, dtype=np.float64)
        if dist.shape != (context.n_prompts, context.n_candidates):
            raise ValueError(
                f"The precomputed distribution has shape {dist.shape}; these prompts need "
                f"(n_prompts, n_candidates) = ({context.n_prompts}, {context.n_candidates})."
            )
        return dist

    def describe(self, context: PromptContext | None = None) -> dict[str, Any]:
        return dict(self.description or {"name": self.policy_name})


#: What "the big model" of `BiasedHumanPolicy` is: the dearest per call, or the best on
#: average (any other value names a candidate).
LARGE_TARGETS = ("expensive", "strongest")


@dataclass(frozen=True)
class BiasedHumanPolicy(LoggingPolicy):
    """People choosing the model themselves: by team habit, and the big model for big work.

    Every team has a habitual model, drawn (with ``random_state``) among the
    candidates other than the big one. A prompt longer than the log's
    ``long_quantile`` quantile of prompt lengths (characters of the whole text) is
    *long*. Then, per prompt:

    - short: the team's habit with probability ``habit_share``, else any candidate
      uniformly: ``habit_share * onehot(habit) + (1 - habit_share) * uniform``;
    - long: the big model with probability ``long_share``, else as a short prompt:
      ``long_share * onehot(big) + (1 - long_share) * short``.

    With the defaults (0.7, 0.8, median) and K candidates, a long prompt goes to the
    big model with probability ``0.7 + 0.06 / K`` and a short one to the team's habit
    with ``0.8 + 0.2 / K``; every candidate keeps at least ``0.06 / K``, so
    importance weights stay finite. ``habit_share=0`` leaves only the size bias (long
    prompts to the big model, the rest uniform). This is the bias that misleads naive
    training:
    the big model answers the hard, long prompts, the habits answer what each team
    asks, and a per-candidate fit on the rows each model happened to answer learns
    the traffic, not the model.

    Parameters
    ----------
    long_share : float in [0, 1], default=0.7
    habit_share : float in [0, 1], default=0.8
    large : str, default="expensive"
        The big model: ``"expensive"`` (highest mean cost per call in the log, what
        people take for the strongest), ``"strongest"`` (highest mean outcome) or a
        candidate's name.
    long_quantile : float in [0, 1), default=0.5
    random_state : int, default=0
        Seed of the teams' habits (`simulate` passes its seed).
    """

    policy_name: ClassVar[str] = "biased"
    long_share: float = 0.7
    habit_share: float = 0.8
    large: str = "expensive"
    long_quantile: float = 0.5
    random_state: int = 0

    def __post_init__(self) -> None:
        for name in ("long_share", "habit_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}.")
        if not 0.0 <= self.long_quantile < 1.0:
            raise ValueError(f"long_quantile must be in [0, 1), got {self.long_quantile!r}.")

    def large_model(self, context: PromptContext) -> int:
        """Index of the big model among ``context.candidates``."""
        if self.large == "expensive":
            return int(np.argmax(context.typical_cost_usd))
        if self.large == "strongest":
            return int(np.argmax(context.typical_outcome))
        if self.large not in context.candidates:
            raise ValueError(
                f"The biased policy's big model {self.large!r} is not a candidate; expected "
                f"one of {list(LARGE_TARGETS)} or {list(context.candidates)}."
            )
        return context.candidates.index(self.large)

    def habits(self, context: PromptContext) -> dict[str, int]:
        """Each team's habitual candidate (index), drawn among the others than the big one."""
        big = self.large_model(context)
        others = [j for j in range(context.n_candidates) if j != big] or [big]
        rng = np.random.default_rng([self.random_state, 7])
        teams = sorted(set(context.teams.tolist()))
        picks = rng.integers(len(others), size=len(teams))
        return {team: int(others[i]) for team, i in zip(teams, picks, strict=True)}

    def long_threshold(self, context: PromptContext) -> float:
        """Prompts longer than this many characters are long."""
        return float(np.quantile(self._lengths(context), self.long_quantile))

    def _lengths(self, context: PromptContext) -> np.ndarray:
        return np.array([len(t) for t in context.texts("all")], dtype=np.float64)

    def action_dist(self, context: PromptContext) -> np.ndarray:
        n, k = context.n_prompts, context.n_candidates
        rows = np.arange(n)
        habits = self.habits(context)
        habit = np.array([habits[t] for t in context.teams], dtype=np.int64)
        dist = np.full((n, k), (1.0 - self.habit_share) / k)
        dist[rows, habit] += self.habit_share
        lengths = self._lengths(context)
        long = lengths > np.quantile(lengths, self.long_quantile)
        big = np.zeros(k)
        big[self.large_model(context)] = 1.0
        dist[long] = self.long_share * big + (1.0 - self.long_share) * dist[long]
        return dist

    def describe(self, context: PromptContext | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.policy_name,
            "long_share": self.long_share,
            "habit_share": self.habit_share,
            "large": self.large,
            "long_quantile": self.long_quantile,
            "random_state": self.random_state,
        }
        if context is not None:
            out["large_model"] = context.candidates[self.large_model(context)]
            out["long_threshold_chars"] = self.long_threshold(context)
            out["habits"] = {t: context.candidates[j] for t, j in self.habits(context).items()}
        return out


#: Policy names of ``--policy`` specs and their classes.
POLICIES: dict[str, type[LoggingPolicy]] = {
    "uniform": UniformPolicy,
    "epsilon": EpsilonGreedyPolicy,
    "softmax": SoftmaxPolicy,
    "biased": BiasedHumanPolicy,
    "human": BiasedHumanPolicy,
}

POLICY_SPECS = (
    "uniform",
    "epsilon:BUNDLE:EPS",
    "softmax:BUNDLE:TEMP",
    "biased[:LONG_SHARE[:TARGET]]",
    "human (= biased)",
)


def parse_policy(spec: str, *, random_state: int = 0) -> LoggingPolicy:
    """The policy a ``--policy`` spec names (grammar in the module docstring).

    Examples
    --------
    >>> parse_policy("biased:0.9:strongest")
    BiasedHumanPolicy(long_share=0.9, habit_share=0.8, large='strongest', long_quantile=0.5, random_state=0)
    """  # noqa: E501
    name, _, rest = spec.partition(":")
    if name not in POLICIES:
        raise ValueError(f"Unknown logging policy {spec!r}; expected one of {list(POLICY_SPECS)}.")
    try:
        if name == "uniform":
            if rest:
                raise ValueError("uniform takes no parameters")
            return UniformPolicy()
        if name in ("epsilon", "softmax"):
            bundle, sep, number = rest.rpartition(":")
            if not sep or not bundle:
                raise ValueError(f"expected {name}:BUNDLE:NUMBER")
            if name == "epsilon":
                return EpsilonGreedyPolicy(bundle=bundle, epsilon=float(number))
            return SoftmaxPolicy(bundle=bundle, temperature=float(number))
        share, _, large = rest.partition(":")
        return BiasedHumanPolicy(
            long_share=float(share) if share else 0.7,
            large=large or "expensive",
            random_state=random_state,
        )
    except ValueError as exc:
        raise ValueError(
            f"Bad logging policy {spec!r}: {exc}. Expected one of {list(POLICY_SPECS)}, "
            "e.g. epsilon:bundle:0.1, softmax:bundle:0.05, biased:0.7."
        ) from None


@dataclass(frozen=True, eq=False)
class HardPromptPolicy(LoggingPolicy):
    """People who know which tasks are hard sending them to the big model.

    A prompt is *hard* when more candidates fail it than fail the median prompt
    (``1 - mean outcome over candidates`` above its ``hard_quantile`` quantile); a hard
    prompt goes to the big model with probability ``to_large``, the rest spread
    uniformly, and the other prompts are uniform. Unlike the other policies this one
    reads the hidden truth (``outcome``, the full table's): a simulator may, and it
    stands for what an experienced team knows and the prompt's text does not show.
    Because the choice tracks success, it is the bias that misleads naive training
    most, and the one an estimated logging policy cannot undo (the features do not
    reveal it): only logged propensities can.

    Parameters
    ----------
    outcome : ndarray of float, shape (n_prompts, n_candidates)
        The full table's outcomes (`FullInformationTable.outcome`), rows in the
        simulated prompts' order.
    to_large : float in [0, 1], default=0.7
    large : str, default="expensive"
        The big model, as for `BiasedHumanPolicy`.
    hard_quantile : float in [0, 1), default=0.5

    Examples
    --------
    >>> ctx = PromptContext(np.array(["p", "q"]), ["a", "b"], [None, None],
    ...                     np.array(["t", "t"]), ("small", "big"),
    ...                     np.array([0.1, 1.0]), np.array([0.5, 0.5]))
    >>> HardPromptPolicy(np.array([[0.0, 0.0], [1.0, 1.0]]), to_large=0.6).action_dist(ctx)
    array([[0.2, 0.8],
           [0.5, 0.5]])
    """

    policy_name: ClassVar[str] = "hard"
    outcome: np.ndarray = None  # type: ignore[assignment]
    to_large: float = 0.7
    large: str = "expensive"
    hard_quantile: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.to_large <= 1.0:
            raise ValueError(f"to_large must be in [0, 1], got {self.to_large!r}.")
        if not 0.0 <= self.hard_quantile < 1.0:
            raise ValueError(f"hard_quantile must be in [0, 1), got {self.hard_quantile!r}.")

    def hard(self, context: PromptContext) -> np.ndarray:
        """Which prompts are hard, shape (n_prompts,)."""
        outcome = np.asarray(self.outcome, dtype=np.float64)
        if outcome.shape != (context.n_prompts, context.n_candidates):
            raise ValueError(
                f"The hard policy's outcome table has shape {outcome.shape}; these prompts "
                f"need (n_prompts, n_candidates) = ({context.n_prompts}, "
                f"{context.n_candidates})."
            )
        failing = 1.0 - outcome.mean(axis=1)
        return failing > np.quantile(failing, self.hard_quantile)

    def action_dist(self, context: PromptContext) -> np.ndarray:
        k = context.n_candidates
        dist = np.full((context.n_prompts, k), 1.0 / k)
        big = BiasedHumanPolicy(large=self.large).large_model(context)
        hard = self.hard(context)
        dist[hard] *= 1.0 - self.to_large
        dist[hard, big] += self.to_large
        return dist

    def describe(self, context: PromptContext | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.policy_name,
            "to_large": self.to_large,
            "large": self.large,
            "hard_quantile": self.hard_quantile,
            "reads_truth": True,
        }
        if context is not None:
            big = BiasedHumanPolicy(large=self.large).large_model(context)
            out["large_model"] = context.candidates[big]
            out["hard_share"] = float(self.hard(context).mean())
        return out


@dataclass(frozen=True)
class CheapFirstPolicy(LoggingPolicy):
    """A team on a budget: every prompt draws a model with probability proportional to
    ``typical_cost_usd ** (-1 / temperature)``, the same for every prompt (it looks at
    the price list, not at the prompt), so cheap models answer most calls and the
    dear ones stay rare but possible.

    Parameters
    ----------
    temperature : float > 0, default=1.5
        In log-cost units: a model ``e`` times dearer is drawn ``e ** (1 / T)`` times
        less often.

    Examples
    --------
    >>> ctx = PromptContext(np.array(["p"]), ["hi"], [None], np.array(["t"]), ("a", "b"),
    ...                     np.array([0.1, 0.1 * np.e]), np.array([0.5, 0.7]))
    >>> CheapFirstPolicy(temperature=1.0).action_dist(ctx).round(3)
    array([[0.731, 0.269]])
    """

    policy_name: ClassVar[str] = "cheap-first"
    temperature: float = 1.5

    def __post_init__(self) -> None:
        if not (0.0 < self.temperature < np.inf):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature!r}.")

    def action_dist(self, context: PromptContext) -> np.ndarray:
        score = -np.log(np.maximum(np.asarray(context.typical_cost_usd, dtype=np.float64), 1e-12))
        w = np.exp((score - score.max()) / self.temperature)
        return np.tile(w / w.sum(), (context.n_prompts, 1))

    def describe(self, context: PromptContext | None = None) -> dict[str, Any]:
        return {"name": self.policy_name, "temperature": self.temperature}

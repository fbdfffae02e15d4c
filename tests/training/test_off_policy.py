"""Off-policy estimators: exact numbers on a hand-computed log, input checks, and
coverage of the truth on bandit logs sampled from the shipped SWE-bench table."""

from __future__ import annotations

import numpy as np
import pytest

from serving.bundle import load_bundle
from training.evaluation import FullInfoLog
from training.evaluation.off_policy import routing_texts
from training.evaluation.served import ServedPolicy
from training.off_policy import (
    ESTIMATORS,
    BanditFeedback,
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    OffPolicyEvaluation,
    SelfNormalizedInverseProbabilityWeighting,
    effective_sample_size,
    make_estimator,
)
from training.propensity import fit_logging_policy

# Three rounds, two actions. Weights w = pi_e(a_i) / pscore_i = [2, 0, 2].
ACTION_DIST = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
ACTION = np.array([0, 0, 1])
REWARD = np.array([1.0, 0.0, 1.0])
PSCORE = np.array([0.5, 0.5, 0.25])
Q = np.array([[0.8, 0.2], [0.6, 0.4], [0.5, 0.5]])
TINY = {
    "action_dist": ACTION_DIST,
    "action": ACTION,
    "reward": REWARD,
    "pscore": PSCORE,
    "estimated_rewards_by_reg_model": Q,
}


@pytest.mark.parametrize(
    ("estimator", "expected"),
    [
        # mean(w r) = (2 + 0 + 2) / 3
        (InverseProbabilityWeighting(), 4 / 3),
        # sum(w r) / sum(w) = 4 / 4
        (SelfNormalizedInverseProbabilityWeighting(), 1.0),
        # mean_i sum_a pi q = (0.8 + 0.4 + 0.5) / 3
        (DirectMethod(), 1.7 / 3),
        # DM rows + w (r - q(a_i)): (0.8 + 0.4) + (0.4 + 0) + (0.5 + 1.0) = 3.1
        (DoublyRobust(), 3.1 / 3),
        # weights clipped at 1.5: (1.5 + 0 + 1.5) / 3
        (InverseProbabilityWeighting(lambda_=1.5), 1.0),
    ],
)
def test_estimators_on_a_hand_computed_log(estimator, expected: float) -> None:
    assert estimator.estimate_policy_value(**TINY) == pytest.approx(expected, abs=1e-12)
    interval = estimator.estimate_interval(**TINY, n_bootstrap=200, random_state=0)
    assert interval.estimate == pytest.approx(expected, abs=1e-12)
    assert interval.low <= interval.high
    again = estimator.estimate_interval(**TINY, n_bootstrap=200, random_state=0)
    assert again == interval


def test_estimator_registry_names_match() -> None:
    assert [make_estimator(name).estimator_name for name in ESTIMATORS] == list(ESTIMATORS)
    with pytest.raises(ValueError, match=r"Unknown estimator 'switch'; available: \['dr'"):
        make_estimator("switch")


def test_effective_sample_size() -> None:
    # (2 + 0 + 2)^2 / (4 + 0 + 4)
    assert effective_sample_size(np.array([2.0, 0.0, 2.0])) == 2.0
    assert effective_sample_size(np.full(7, 0.3)) == pytest.approx(7.0)
    assert effective_sample_size(np.zeros(4)) == 0.0
    fb = BanditFeedback(
        n_rounds=3,
        n_actions=2,
        action=ACTION,
        reward=REWARD,
        cost_usd=np.array([0.1, 0.2, 0.3]),
        pscore=PSCORE,
        estimated_reward=Q,
        estimated_cost_usd=np.full((3, 2), 0.2),
    )
    result = OffPolicyEvaluation(fb, n_bootstrap=50).estimate(ACTION_DIST)
    assert result.ess == 2.0 and result.n == 3
    # cost: IPS = mean(w c) = (0.2 + 0 + 0.6) / 3
    assert result.estimators["ips"].cost_usd.estimate == pytest.approx(0.8 / 3)
    assert result.estimators["dm"].cost_usd.estimate == pytest.approx(0.2)
    assert result.estimators["snips"].to_dict()["quality"] == 1.0


def _replace(**changes):
    return {**TINY, **changes}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (_replace(action_dist=np.array([[0.6, 0.6], [0, 1], [0.5, 0.5]])), "sum to 1"),
        (_replace(action_dist=ACTION_DIST[:, :, None]), r"shape \(n_rounds, n_actions\)"),
        (_replace(pscore=np.array([0.5, 0.0, 0.25])), r"`pscore` in \(0, 1\]"),
        (_replace(pscore=np.array([0.5, 1.5, 0.25])), r"`pscore` in \(0, 1\]"),
        (_replace(reward=REWARD[:2]), r"`reward.shape\[0\] == action_dist.shape\[0\]`"),
        (_replace(action=np.array([0, 2, 1])), r"`action` in \[0, n_actions\)"),
        (_replace(action=np.array([0.0, 1.0, 1.0])), "Expected integer `action`"),
        (_replace(estimated_rewards_by_reg_model=Q[:, :1]), "estimated_rewards_by_reg_model"),
        (_replace(pscore=None), "`pscore` must be given: DR"),
    ],
)
def test_bad_inputs_raise_with_a_message(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DoublyRobust().estimate_policy_value(**kwargs)


def test_dm_needs_a_regression_and_bootstrap_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="`estimated_rewards_by_reg_model` must be given: DM"):
        DirectMethod().estimate_policy_value(**_replace(estimated_rewards_by_reg_model=None))
    with pytest.raises(ValueError, match="n_bootstrap an integer >= 1"):
        DirectMethod().estimate_interval(**TINY, n_bootstrap=0)
    with pytest.raises(ValueError, match=r"alpha in \(0, 1\)"):
        DirectMethod().estimate_interval(**TINY, alpha=1.5)
    with pytest.raises(ValueError, match="lambda_ a number > 0"):
        DoublyRobust(lambda_=0.0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reward": np.array([1.0, 0.0, 2.0])}, r"`reward` \(outcome\) in \[0, 1\]"),
        ({"cost_usd": np.array([0.1, -0.2, 0.3])}, "`cost_usd` >= 0"),
        ({"pscore": np.array([0.5, 0.0, 0.2])}, r"`pscore` in \(0, 1\]"),
        ({"action": np.array([0, 1, 5])}, r"`action` in \[0, n_actions\) = \[0, 2\)"),
        ({"estimated_reward": np.zeros((3, 3))}, r"`estimated_reward` of shape .* \(3, 2\)"),
        ({"reward": np.array([1.0, np.nan, 0.0])}, "finite `reward`"),
    ],
)
def test_bandit_feedback_checks_its_arrays(changes: dict, message: str) -> None:
    base = {
        "n_rounds": 3,
        "n_actions": 2,
        "action": ACTION,
        "reward": REWARD,
        "cost_usd": np.array([0.1, 0.2, 0.3]),
        "pscore": PSCORE,
    }
    with pytest.raises(ValueError, match=message):
        BanditFeedback(**{**base, **changes})


def test_logging_policy_estimate_of_a_uniform_logger_is_near_uniform() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 40))
    action = rng.integers(0, 4, size=400)
    estimate = fit_logging_policy(features, action, n_actions=5)
    pi_b = estimate.action_dist
    assert pi_b.shape == (400, 5)
    np.testing.assert_allclose(pi_b.sum(axis=1), 1.0)
    # action 4 was never logged: only the clip floor
    assert pi_b[:, 4].max() == pytest.approx(0.01)
    # each fold's held-out frequencies: near the log's own
    frequencies = np.bincount(action, minlength=5)[:4] / 400 * 0.99
    assert np.abs(pi_b[:, :4] - frequencies).max() < 0.04
    # the prompts say nothing of the choice: the logged frequencies win
    assert estimate.calibration["model"] == "frequencies"
    # a large log is fitted on a subset and predicted on every round
    subset = fit_logging_policy(features, action, n_actions=5, max_fit_rounds=100)
    assert subset.action_dist.shape == (400, 5) and not np.allclose(subset.action_dist, pi_b)
    assert subset.calibration["n_fit_rounds"] == 100
    np.testing.assert_allclose(subset.action_dist.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match=r"min_propensity in \(0, 1/n_actions\]"):
        fit_logging_policy(features, action, n_actions=5, min_propensity=0.5)


# --- ground truth: bandit logs sampled from the shipped full-information table ---

N_SEEDS = 30


@pytest.fixture(scope="module")
def swebench_truth(shipped_calls, bundle_dir):
    """Every complete shipped prompt, the bundle's scores on it and its default choice."""
    served = ServedPolicy(load_bundle(bundle_dir))
    log, _ = FullInfoLog.from_frame(shipped_calls, served.candidates)
    texts = routing_texts(shipped_calls, list(log.prompt_ids), "last_user")
    p, c = served.score(served.featurize(texts))
    from serving.policy import action_distribution

    target = action_distribution(p, c, served.params)
    rows = np.arange(log.n_prompts)
    chosen = target.argmax(axis=1)
    return {
        "log": log,
        "p": p,
        "c": c,
        "target": target,
        "quality": float(log.outcome[rows, chosen].mean()),
        "cost_usd": float(log.cost_usd[rows, chosen].mean()),
    }


def _logging_policies(log: FullInfoLog) -> dict[str, np.ndarray]:
    k = log.n_candidates
    uniform = np.full((log.n_prompts, k), 1.0 / k)
    # softmax over -log(mean cost): cheaper models are tried more, none rarely
    score = -np.log(log.cost_usd.mean(axis=0))
    weights = np.exp((score - score.max()) / 1.5)
    softmax = np.tile(weights / weights.sum(), (log.n_prompts, 1))
    return {"uniform": uniform, "softmax": softmax}


@pytest.mark.parametrize("logging", ["uniform", "softmax"])
def test_estimates_cover_the_true_value_of_the_default_policy(swebench_truth, logging) -> None:
    """On ~500 prompts x 30 seeds, IPS/SNIPS/DR 95% intervals cover the truth of the
    full table at least 80% of the time (91-98% measured over 100 seeds), and their mean
    over seeds is near it."""
    truth = swebench_truth
    log: FullInfoLog = truth["log"]
    pi_b = _logging_policies(log)[logging]
    assert pi_b.min() > 0.02
    rows = np.arange(log.n_prompts)
    covered = {(n, q): 0 for n in ("ips", "snips", "dr") for q in ("quality", "cost_usd")}
    means = {key: [] for key in covered}
    for seed in range(N_SEEDS):
        rng = np.random.default_rng(seed)
        action = (pi_b.cumsum(axis=1) < rng.random(log.n_prompts)[:, None]).sum(axis=1)
        action = np.minimum(action, log.n_candidates - 1)
        fb = BanditFeedback(
            n_rounds=log.n_prompts,
            n_actions=log.n_candidates,
            action=action,
            reward=log.outcome[rows, action],
            cost_usd=log.cost_usd[rows, action],
            pscore=pi_b[rows, action],
            estimated_reward=truth["p"],
            estimated_cost_usd=truth["c"],
        )
        ope = OffPolicyEvaluation(fb, ("ips", "snips", "dr"), n_bootstrap=300, random_state=seed)
        result = ope.estimate(truth["target"])
        for name, q in covered:
            interval = getattr(result.estimators[name], q)
            covered[name, q] += interval.covers(truth[q])
            means[name, q].append(interval.estimate)
    coverage = {key: hits / N_SEEDS for key, hits in covered.items()}
    assert min(coverage.values()) >= 0.8, coverage
    for (_, q), values in means.items():
        tolerance = 0.04 if q == "quality" else 0.1 * truth["cost_usd"]
        assert abs(np.mean(values) - truth[q]) < tolerance, (q, np.mean(values), truth[q])

"""Training on bandit logs: one call per prompt, chosen by a biased logging policy.

The logs are simulated (`training.simulation.simulate`) from the shipped
full-information SWE-bench table (495 prompts x 5 models), so every candidate's true
success rate is known. Two policies send prompts above the median to the dearest
model 70% of the time, the rest uniformly: long prompts (`BiasedHumanPolicy` without
team habits, the issue's setting) and hard ones (`HardPromptPolicy`, which reads the
truth).
"""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from training.dataset import log_kind
from training.learners import LEARNERS, make_learner
from training.propensity import (
    estimate_logging_policy,
    importance_weights,
    logged_policy,
    weighted_mean_outcome,
)
from training.simulation import (
    BiasedHumanPolicy,
    HardPromptPolicy,
    SimulationResult,
    read_full_information,
    simulate,
)

SHIPPED = "data/swebench_verified/calls.parquet"


@pytest.fixture(scope="module")
def full_table(shipped_calls, static_encoder_dir):
    """Every shipped prompt with every candidate's outcome, static-encoder features."""
    from features.call_log import read_call_logs
    from features.featurizer import Featurizer
    from features.spec import FeatureSpec
    from training.dataset import build_training_set

    frame = read_call_logs([SHIPPED]).frame
    data = build_training_set(
        frame, Featurizer(FeatureSpec.for_encoder("static"), static_encoder_dir)
    )
    return data.subset(data.full_information())


@pytest.fixture(scope="module")
def truth_table():
    """The shipped log as the simulator's full-information table."""
    return read_full_information(SHIPPED)[0]


def _simulated(truth_table, by: str, seed: int) -> SimulationResult:
    """One call per prompt, prompts above the median length (``by="long"``) or failure
    share (``by="hard"``) sent to the dearest model 70% of the time."""
    if by == "long":
        policy = BiasedHumanPolicy(long_share=0.7, habit_share=0.0, large="expensive")
    else:
        policy = HardPromptPolicy(truth_table.outcome, to_large=0.7, large="expensive")
    return simulate(truth_table, policy, seed=seed)


def _policy(data, sim: SimulationResult) -> np.ndarray:
    """The logging probabilities in ``data``'s prompt and candidate order."""
    rows = [list(sim.prompt_ids).index(pid) for pid in data.prompt_ids]
    cols = [sim.candidates.index(name) for name in data.candidates]
    return sim.action_dist[np.ix_(rows, cols)]


def _bandit_cut(data, sim: SimulationResult):
    """``data`` cut to the simulated calls: one per prompt, with its exact propensity."""
    probs = _policy(data, sim)
    chosen_of = dict(zip(sim.prompt_ids, np.asarray(sim.candidates)[sim.action], strict=True))
    chosen = np.array([data.candidates.index(chosen_of[pid]) for pid in data.prompt_ids])
    index = {(p, c): i for i, (p, c) in enumerate(zip(data.prompt, data.candidate, strict=True))}
    rows = np.array([index[(i, c)] for i, c in enumerate(chosen)])
    return replace(
        data,
        prompt=data.prompt[rows],
        candidate=data.candidate[rows],
        outcome=data.outcome[rows],
        cost_usd=data.cost_usd[rows],
        input_tokens=data.input_tokens[rows],
        output_tokens=data.output_tokens[rows],
        propensity=probs[np.arange(data.n_prompts), chosen],
    )


def test_the_simulated_policies_are_the_biased_loggers(full_table, truth_table):
    """70% of the above-median prompts' mass on the dearest model, the rest uniform."""
    assert tuple(truth_table.prompt_ids) == tuple(full_table.prompt_ids)
    dearest = int(np.argmax(truth_table.cost_usd.mean(axis=0)))
    for by in ("long", "hard"):
        dist = _simulated(truth_table, by, seed=0).action_dist
        biased = dist[:, dearest] > 0.5
        assert 0.4 < biased.mean() <= 0.5
        np.testing.assert_allclose(dist[biased, dearest], 0.7 + 0.3 / 5)
        np.testing.assert_allclose(dist[~biased], 0.2)
    hard = _simulated(truth_table, "hard", seed=0).action_dist[:, dearest] > 0.5
    assert truth_table.outcome[hard].mean() < truth_table.outcome[~hard].mean() - 0.3


def test_the_log_kind_is_detected(full_table, truth_table):
    assert log_kind(full_table) == "full_information"
    bandit = _bandit_cut(full_table, _simulated(truth_table, "long", seed=0))
    assert log_kind(bandit) == "bandit"
    # A fifth of the prompts answered by two models: neither kind.
    second = _bandit_cut(full_table, _simulated(truth_table, "long", seed=1))
    twice = (second.prompt % 5 == 0) & (second.candidate != bandit.candidate)
    mixed = replace(
        bandit,
        **{
            key: np.concatenate([getattr(bandit, key), getattr(second, key)[twice]])
            for key in (
                "prompt",
                "candidate",
                "outcome",
                "cost_usd",
                "input_tokens",
                "output_tokens",
                "propensity",
            )
        },
    )
    assert log_kind(mixed) == "partial"


def test_estimated_propensities_are_sane_and_near_the_true_ones(full_table, truth_table):
    sim = _simulated(truth_table, "long", seed=3)
    probs = _policy(full_table, sim)
    bandit = _bandit_cut(full_table, sim)
    estimate = estimate_logging_policy(bandit, seed=0)
    assert estimate.source == "estimated"
    assert np.allclose(estimate.action_dist.sum(axis=1), 1.0)
    assert ((estimate.propensity >= 0.01) & (estimate.propensity <= 1.0)).all()
    # Measured: mean |estimated - true| 0.087-0.092 over four simulated logs (seeds 0-3),
    # against 0.112 for the logged frequencies alone (which ignore the prompt).
    error = np.abs(estimate.action_dist - probs).mean()
    frequencies = np.bincount(bandit.candidate, minlength=probs.shape[1]) / bandit.n_prompts
    assert error < 0.1
    assert error < 0.9 * np.abs(frequencies[None] - probs).mean()
    calibration = estimate.calibration
    assert calibration["log_loss"] < calibration["log_loss_marginal"]
    assert 0 <= calibration["ece"] < 0.1
    assert calibration["mean_abs_error_vs_logged"] == pytest.approx(
        np.abs(estimate.action_dist[bandit.prompt, bandit.candidate] - bandit.propensity).mean()
    )


def test_logged_propensities_are_used_only_when_every_graded_row_has_one(full_table, truth_table):
    bandit = _bandit_cut(full_table, _simulated(truth_table, "long", seed=0))
    assert logged_policy(bandit).source == "logged"
    missing = bandit.propensity.copy()
    missing[0] = np.nan
    assert logged_policy(replace(bandit, propensity=missing)) is None


def test_weights_are_clipped_and_normalised_per_candidate(full_table, truth_table):
    bandit = _bandit_cut(full_table, _simulated(truth_table, "long", seed=0))
    propensity = bandit.propensity.copy()
    propensity[0] = 0.01  # raw weight 100, clipped to 20
    weights = importance_weights(bandit, propensity, max_weight=20.0)
    assert weights.n_clipped == 1
    for k in range(len(bandit.candidates)):
        assert weights.weights[bandit.candidate == k].mean() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="max_weight must be >= 1"):
        importance_weights(bandit, propensity, max_weight=0.5)


def test_correction_brings_per_candidate_means_closer_to_the_full_table(full_table, truth_table):
    """Hard prompts sent to the dearest model make it look weak on the logged rows."""
    truth = full_table.matrix(full_table.outcome).mean(axis=0)
    bandit = _bandit_cut(full_table, _simulated(truth_table, "hard", seed=0))
    weights = importance_weights(bandit, bandit.propensity).weights
    naive = np.array(list(weighted_mean_outcome(bandit, None).values()))
    corrected = np.array(list(weighted_mean_outcome(bandit, weights).values()))
    # Measured over four simulated logs: total |error| 0.65-0.82 naive, 0.15-0.29 weighted.
    assert np.abs(corrected - truth).sum() < 0.5 * np.abs(naive - truth).sum()
    rows = bandit.labelled
    fits = {
        label: make_learner("logistic", C=0.003).fit(
            bandit.features[bandit.prompt[rows]],
            bandit.outcome[rows],
            candidate=bandit.candidate[rows],
            n_candidates=len(bandit.candidates),
            sample_weight=w,
        )
        for label, w in (("naive", None), ("corrected", weights[rows]))
    }
    error = {
        label: np.abs(fit.predict_proba(full_table.features).mean(axis=0) - truth).sum()
        for label, fit in fits.items()
    }
    assert error["corrected"] < 0.5 * error["naive"]


#: Fast settings of each learner: the comparison is exact, not a quality test.
FAST = {
    "mlp": {"max_epochs": 5},
    "mf": {"max_epochs": 5},
    "lightgbm": {"n_estimators": 20},
    "shared": {"n_estimators": 20},
    "ensemble": {"members": (("logistic", {}), ("knn", {}), ("mlp", {"max_epochs": 5}))},
}


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_weights_of_one_give_the_unweighted_fit(name, training_set):
    data = training_set
    rows = np.flatnonzero(data.labelled)
    rows = rows[np.random.default_rng(0).permutation(len(rows))[: len(rows) // 2]]
    args = (data.features[data.prompt[rows]], data.outcome[rows])
    kwargs = {
        "candidate": data.candidate[rows],
        "n_candidates": len(data.candidates),
        "usage": {
            "input_tokens": data.input_tokens[rows],
            "output_tokens": data.output_tokens[rows],
            "cost_usd": data.cost_usd[rows],
        },
    }
    plain = make_learner(name, **FAST.get(name, {})).fit(*args, **kwargs)
    ones = make_learner(name, **FAST.get(name, {})).fit(
        *args, **kwargs, sample_weight=np.ones(len(rows))
    )
    X = data.features[:40]
    np.testing.assert_allclose(ones.predict_proba(X), plain.predict_proba(X), rtol=0, atol=1e-9)
    # Weights count: doubling a candidate's successes moves its prediction up.
    heavier = np.where(args[1] > 0.5, 3.0, 1.0)
    weighted = make_learner(name, **FAST.get(name, {})).fit(*args, **kwargs, sample_weight=heavier)
    assert weighted.predict_proba(X).mean() > plain.predict_proba(X).mean()
    with pytest.raises(ValueError, match="sample_weight must be finite and > 0"):
        make_learner(name).fit(*args, **kwargs, sample_weight=np.zeros(len(rows)))


def _bandit_frame(shipped_calls: pd.DataFrame, truth_table, seed: int) -> pd.DataFrame:
    """The shipped call of each simulated choice (hard prompts to the dearest model),
    with its propensity."""
    sim = _simulated(truth_table, "hard", seed)
    chosen = pd.DataFrame(
        {
            "prompt_id": sim.prompt_ids,
            "model": np.asarray(sim.candidates)[sim.action],
            "propensity": sim.pscore,
        }
    )
    return shipped_calls.merge(chosen, on=["prompt_id", "model"], how="inner")


def test_train_records_the_log_kind_and_propensity_source(
    shipped_calls, truth_table, tmp_path, trained
):
    from features.spec import FeatureSpec
    from training.train import TrainConfig, train

    assert trained.bundle.contents.training.log["kind"] == "full_information"
    frame = _bandit_frame(shipped_calls, truth_table, seed=0)
    truth = shipped_calls.groupby("model")["outcome"].mean()
    sources = {}
    for source, log in (("logged", frame), ("estimated", frame.drop(columns="propensity"))):
        path = tmp_path / f"{source}.parquet"
        log.to_parquet(path, index=False)
        result = train(
            TrainConfig(
                logs=[str(path)],
                out=str(tmp_path / f"bundle-{source}"),
                learners=[("logistic-C0.003", "logistic", {"C": 0.003})],
                spec=FeatureSpec.for_encoder("static"),
                track=False,
            )
        )
        summary = result.bundle.contents.training.log
        sources[source] = summary
        assert summary["kind"] == "bandit"
        assert summary["correction"] == "ips"
        assert summary["propensity_source"] == source
        assert summary["weights"]["max_weight"] == 20.0
    means = sources["logged"]["mean_outcome_per_candidate"]
    error = {
        kind: sum(abs(means[kind][m] - truth[m]) for m in means[kind])
        for kind in ("naive", "weighted")
    }
    assert error["weighted"] < 0.5 * error["naive"]
    assert "log_loss_marginal" in sources["estimated"]["propensity_calibration"]


def test_the_correction_can_be_turned_off_and_never_touches_full_information(
    full_table, truth_table
):
    from training.train import bandit_correction

    weights, summary = bandit_correction(full_table, "ips", 20.0, seed=0)
    assert weights is None and summary["kind"] == "full_information"
    bandit = _bandit_cut(full_table, _simulated(truth_table, "hard", seed=0))
    weights, summary = bandit_correction(bandit, "none", 20.0, seed=0)
    assert weights is None and summary["correction"] == "none (asked for)"
    weights, summary = bandit_correction(bandit, "ips", 20.0, seed=0)
    assert summary["propensity_source"] == "logged"
    assert np.isfinite(weights[bandit.labelled]).all()
    with pytest.raises(ValueError, match="correction must be one of"):
        bandit_correction(bandit, "dr", 20.0, seed=0)

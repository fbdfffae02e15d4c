"""One contract suite over every registered learner, on real prompt features."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from training.learners import (
    LEARNERS,
    CandidateInfo,
    PerCandidateLearner,
    SharedLearner,
    candidate_features,
    make_learner,
    soft_label_rows,
)

ROUTEPROFILE = Path(__file__).resolve().parents[2] / "data" / "routeprofile"


def _info(names) -> CandidateInfo:
    """Families (the organisation prefix) and catalog prices of the shipped models."""
    from features.prices import PriceCatalog

    catalog = PriceCatalog.load(None)
    return CandidateInfo.from_prices(
        names, {n: n.split("/")[0].lower() for n in names}, {n: catalog.get(n) for n in names}
    )


def _usage(data, rows=slice(None)):
    """Each row's logged token counts and cost (`training.selection.units`)."""
    from training.selection import units

    return {unit: values[rows] for unit, values in units(data).items()}


def _one_row_per_prompt(data, seed=0):
    """Production-like rows: one randomly chosen candidate's outcome per prompt."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.prompt))
    _, first = np.unique(data.prompt[order], return_index=True)
    return np.sort(order[first])


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_learner_contract(name, training_set):
    learner = make_learner(name)
    assert clone(learner).get_params() == learner.get_params()
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        learner.predict_proba(training_set.features[:2])
    X = training_set.features[training_set.prompt]
    k = len(training_set.candidates)
    fitted = learner.fit(
        X,
        training_set.outcome,
        candidate=training_set.candidate,
        n_candidates=k,
        candidate_info=_info(training_set.candidates),
        usage=_usage(training_set),
    )
    assert fitted is learner
    assert learner.n_features_in_ == X.shape[1] and learner.n_candidates_ == k
    p = learner.predict_proba(training_set.features)
    assert p.shape == (training_set.n_prompts, k)
    assert ((p > 0) & (p < 1)).all()
    # Candidates that succeed more often get higher predictions on average.
    rates = [training_set.outcome[training_set.candidate == j].mean() for j in range(k)]
    assert np.argmax(p.mean(axis=0)) == np.argmax(rates)
    # Refitting a clone gives the same predictions: no hidden randomness.
    again = clone(learner).fit(
        X,
        training_set.outcome,
        candidate=training_set.candidate,
        n_candidates=k,
        candidate_info=_info(training_set.candidates),
        usage=_usage(training_set),
    )
    np.testing.assert_allclose(again.predict_proba(training_set.features[:10]), p[:10])


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_one_row_per_prompt_logs_fit_and_predict(name, training_set):
    data = training_set
    rows = _one_row_per_prompt(data)
    assert len(rows) == data.n_prompts
    k = len(data.candidates)
    learner = make_learner(name).fit(
        data.features[data.prompt[rows]],
        data.outcome[rows],
        candidate=data.candidate[rows],
        n_candidates=k,
        usage=_usage(data, rows),
    )
    p = learner.predict_proba(data.features)
    assert p.shape == (data.n_prompts, k)
    assert ((p > 0) & (p < 1)).all()


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_candidate_without_rows_still_gets_a_probability(name, training_set):
    data = training_set
    k = len(data.candidates)
    learner = make_learner(name).fit(
        data.features[data.prompt],
        data.outcome,
        candidate=data.candidate,
        n_candidates=k + 1,
        usage=_usage(data),
    )
    p = learner.predict_proba(data.features[:5])
    assert p.shape == (5, k + 1)
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()


@pytest.mark.parametrize(
    "name", sorted(n for n, cls in LEARNERS.items() if issubclass(cls, PerCandidateLearner))
)
def test_thin_candidates_get_their_smoothed_rate(name, training_set):
    X = training_set.features[training_set.prompt]
    candidate = training_set.candidate.copy()
    thin = np.flatnonzero(candidate == 0)[:5]
    keep = (candidate != 0) | np.isin(np.arange(len(candidate)), thin)
    learner = make_learner(name).fit(
        X[keep],
        training_set.outcome[keep],
        candidate=candidate[keep],
        n_candidates=len(training_set.candidates),
    )
    expected = (training_set.outcome[thin].sum() + 1) / (len(thin) + 2)
    np.testing.assert_allclose(learner.predict_proba(training_set.features[:3])[:, 0], expected)


@pytest.fixture(scope="module")
def heldout_rates(shipped_calls, training_set) -> pd.Series:
    """Each model's success rate on shipped prompts outside the training set."""
    held = shipped_calls[~shipped_calls["prompt_id"].isin(set(training_set.prompt_ids))]
    return held.groupby("model")["outcome"].mean()


def test_shared_learner_borrows_strength_for_a_thin_candidate(training_set, heldout_rates):
    """A new deployment of a known model, logged 5 times, is predicted like its peer.

    For each shipped model (the peer), a new candidate ``peer + "-new"`` gets the
    peer's family and price and five of the peer's real logged rows. A
    per-candidate learner can only give it the smoothed mean of those five rows
    (the constant prior); the shared learner predicts it from the family and
    price it shares with the peer. Over every peer and two draws of the five rows,
    the shared learner lands nearer the peer's success rate on held-out shipped
    prompts than the constant prior, and nearer than the pooled mean of all rows.
    """
    data = training_set
    base = _info(data.candidates)
    new = len(data.candidates)
    shared_error, constant_error, pooled_error = [], [], []
    for j, peer in enumerate(data.candidates):
        info = CandidateInfo(
            names=(*data.candidates, f"{peer}-new"),
            families=(*base.families, base.families[j]),
            input_price=np.append(base.input_price, base.input_price[j]),
            output_price=np.append(base.output_price, base.output_price[j]),
        )
        truth = heldout_rates[peer]
        for seed in range(2):
            rng = np.random.default_rng(seed)
            five = rng.choice(np.flatnonzero(data.candidate == j), 5, replace=False)
            learner = SharedLearner().fit(
                data.features[np.concatenate([data.prompt, data.prompt[five]])],
                np.concatenate([data.outcome, data.outcome[five]]),
                candidate=np.concatenate([data.candidate, np.full(5, new)]),
                n_candidates=new + 1,
                candidate_info=info,
            )
            p_new = learner.predict_proba(data.features)[:, new].mean()
            shared_error.append(abs(p_new - truth))
            constant_error.append(abs((data.outcome[five].sum() + 1) / 7 - truth))
            pooled_error.append(abs(data.outcome.mean() - truth))
    assert np.mean(shared_error) < 0.6 * np.mean(constant_error)
    assert np.mean(shared_error) < 0.6 * np.mean(pooled_error)


def test_knn_counts_only_answered_prompts_once_each():
    """Neighbours come from the candidate's own rows; a prompt logged twice is one."""
    X = np.array([[1.0, 0.0], [1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], dtype=np.float32)
    knn = make_learner("knn", n_neighbors=1, prior_weight=1.0, embedding_dim=2).fit(
        X,
        np.array([1.0, 0.0, 1.0, 1.0]),
        candidate=np.array([0, 0, 0, 1]),
        n_candidates=2,
    )
    p = knn.predict_proba(X[:1])
    prior = [(2 + 1) / (3 + 2), (1 + 1) / (1 + 2)]
    # Candidate 0: the nearest prompt, logged twice, has mean outcome 0.5.
    np.testing.assert_allclose(p[0, 0], (0.5 + prior[0]) / 2)
    # Candidate 1 answered only the far prompt, which is still its nearest.
    np.testing.assert_allclose(p[0, 1], (1.0 + prior[1]) / 2)


def test_importing_learners_does_not_import_torch_or_lightgbm():
    code = (
        "import sys, training.learners; "
        "assert 'torch' not in sys.modules and 'lightgbm' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_candidate_features_describe_identity_family_and_price():
    info = CandidateInfo(
        names=("a-small", "a-large", "b"),
        families=("a", "a", "b"),
        input_price=np.array([1e-7, 1e-6, np.nan]),
        output_price=np.array([2e-7, 2e-6, np.nan]),
    )
    features, names = candidate_features(info)
    assert names[:5] == [
        "candidate=a-small",
        "candidate=a-large",
        "candidate=b",
        "family=a",
        "family=b",
    ]
    assert names[5:] == ["log_input_price", "log_output_price", "price_unknown"]
    np.testing.assert_array_equal(features[:, 3], [1, 1, 0])
    assert features[0, 5] < features[1, 5]
    assert features[2, 7] == 1 and np.isfinite(features).all()
    identity, names = candidate_features(CandidateInfo.identity(3))
    np.testing.assert_array_equal(identity, np.eye(3))


def test_soft_labels_expand_to_weighted_rows():
    X = np.arange(6, dtype=np.float32).reshape(3, 2)
    X2, labels, weights = soft_label_rows(X, np.array([1.0, 0.0, 0.25]))
    assert labels.tolist() == [1, 1, 0, 0]
    np.testing.assert_allclose(weights, [1.0, 0.25, 1.0, 0.75])
    np.testing.assert_array_equal(X2[1], X[2])


@pytest.mark.parametrize("name", sorted(LEARNERS))
@pytest.mark.parametrize(
    ("y", "candidate", "fit_params", "match"),
    [
        (np.array([0.5, 1.2]), np.array([0, 1]), {}, r"\[0, 1\]"),
        (np.array([0.5, np.nan]), np.array([0, 1]), {}, "NaN"),
        (np.array([0.5, 1.0]), np.array([0, 7]), {}, "candidate indices"),
        (np.array([0.5]), np.array([0, 1]), {}, "Expected X"),
        (
            np.array([0.5, 1.0]),
            np.array([0, 1]),
            {"candidate_info": CandidateInfo.identity(3)},
            "describes 3 candidates",
        ),
    ],
)
def test_bad_training_rows_raise(name, y, candidate, fit_params, match):
    X = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=match):
        make_learner(name).fit(X, y, candidate=candidate, n_candidates=2, **fit_params)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"families": ("a",)}, "one family"),
        ({"input_price": np.array([1.0, -1.0])}, ">= 0"),
    ],
)
def test_bad_candidate_info_raises(kwargs, match):
    fields = {
        "names": ("a", "b"),
        "families": ("a", "b"),
        "input_price": np.array([1.0, 2.0]),
        "output_price": np.array([1.0, 2.0]),
        **kwargs,
    }
    with pytest.raises(ValueError, match=match):
        CandidateInfo(**fields)


def test_unknown_learner_lists_the_registry():
    with pytest.raises(ValueError, match=r"available: \['ensemble', 'knn', 'lightgbm', 'logistic'"):
        make_learner("forest")


def test_usage_learner_projects_the_prompt_onto_predicted_usage(training_set):
    from scipy.special import expit

    data = training_set
    X = data.features[data.prompt]
    k = len(data.candidates)
    learner = make_learner("usage", C=0.1).fit(
        X, data.outcome, candidate=data.candidate, n_candidates=k, usage=_usage(data)
    )
    # The shipped log has both token counts for every candidate: two regressions each.
    units = sorted((c.candidate, c.name) for c in learner.usage_components_)
    assert units == sorted((j, u) for j in range(k) for u in ("input_tokens", "output_tokens"))
    # The exported linear model is the logistic regression on the standardised
    # projection: cross-fitted usage predictions at fit time, the full fit's here.
    projected = np.hstack(
        [learner.usage_model_.predict_log_units(data.features), data.features[:, 384:]]
    )
    z = (projected - learner.projection_mean_) / learner.projection_scale_
    direct = expit(z @ learner.weights_.T + learner.bias_)
    np.testing.assert_allclose(learner.predict_proba(data.features), direct, rtol=1e-6)
    # It reads the embedding through the usage regressions, unlike a fit without usage.
    assert np.abs(learner.coef_[:, :384]).sum() > 0
    blind = make_learner("usage", C=0.1).fit(
        X, data.outcome, candidate=data.candidate, n_candidates=k
    )
    assert blind.usage_model_ is None and not blind.coef_[:, :384].any()


def test_usage_components_prefer_tokens_and_fall_back_to_cost():
    from training.learners.usage import usage_components

    candidate = np.repeat([0, 1, 2], 30)
    tokens = np.where(candidate == 0, 100.0, np.nan)
    cost = np.where(candidate == 2, np.nan, 0.01)
    units = {"input_tokens": tokens, "output_tokens": tokens, "cost_usd": cost}
    components = usage_components(units, candidate, 3, min_rows=20)
    # Candidate 0 logs tokens, 1 only cost, 2 nothing: it is not regressed.
    assert [(c.candidate, c.name) for c in components] == [
        (0, "input_tokens"),
        (0, "output_tokens"),
        (1, "cost_usd"),
    ]
    assert components[2].offset == pytest.approx(1e-5)


@pytest.fixture(scope="module")
def routeprofile_with_task(static_encoder_dir):
    """RouteProfile (shipped) featurized with its ``task`` one-hot after the embedding."""
    from features.call_log import read_call_logs
    from features.featurizer import Featurizer
    from features.spec import FeatureSpec
    from training.dataset import build_training_set, with_request_context

    frame = read_call_logs(ROUTEPROFILE / "calls.jsonl.gz").frame
    spec = with_request_context(FeatureSpec.for_encoder("static"), frame, ("task",))
    return build_training_set(frame, Featurizer(spec, static_encoder_dir, workers=2)), spec


def test_logistic_meta_penalty_lets_the_task_columns_speak(routeprofile_with_task):
    """With a weaker penalty on the columns after the embedding, the per-task mean of
    the predictions follows each candidate's per-task success rate; with one penalty
    for all columns (hundreds of embedding columns) it stays near the overall rate."""
    data, spec = routeprofile_with_task
    rows = data.labelled
    X, y, cand = data.features[data.prompt[rows]], data.outcome[rows], data.candidate[rows]
    task = np.array([pid.split(":")[0] for pid in data.prompt_ids])
    k = len(data.candidates)

    def fit(**params):
        learner = make_learner("logistic", embedding_dim=spec.embedding_dim, **params)
        return learner.fit(X, y, candidate=cand, n_candidates=k)

    plain, same, meta = fit(C=0.0003), fit(C=0.0003, C_meta=0.0003), fit(C=0.0003, C_meta=1.0)
    np.testing.assert_allclose(same.coef_, plain.coef_, atol=1e-8)
    outcome = data.matrix(data.outcome)
    tasks = np.unique(task)
    observed = np.array([outcome[task == t].mean(axis=0) for t in tasks])

    def error(learner):
        p = learner.predict_proba(data.features)
        predicted = np.array([p[task == t].mean(axis=0) for t in tasks])
        return float(np.abs(predicted - observed).mean())

    assert error(meta) < 0.5 * error(plain)
    # The embedding's own penalty is unchanged: its weights stay as small as before.
    emb = slice(0, spec.embedding_dim)
    assert np.abs(meta.coef_[:, emb]).max() < 3 * np.abs(plain.coef_[:, emb]).max()

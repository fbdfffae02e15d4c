"""One contract suite over every registered learner, on real prompt features."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from training.learners import LEARNERS, make_learner, soft_label_rows


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_learner_contract(name, training_set):
    learner = make_learner(name)
    assert clone(learner).get_params() == learner.get_params()
    with pytest.raises(NotFittedError):
        learner.predict_proba(training_set.features[:2])
    X = training_set.features[training_set.prompt]
    k = len(training_set.candidates)
    fitted = learner.fit(X, training_set.outcome, candidate=training_set.candidate, n_candidates=k)
    assert fitted is learner
    p = learner.predict_proba(training_set.features)
    assert p.shape == (training_set.n_prompts, k)
    assert ((p > 0) & (p < 1)).all()
    # Candidates that succeed more often get higher predictions on average.
    rates = [training_set.outcome[training_set.candidate == j].mean() for j in range(k)]
    assert np.argmax(p.mean(axis=0)) == np.argmax(rates)


@pytest.mark.parametrize("name", sorted(LEARNERS))
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


def test_soft_labels_expand_to_weighted_rows():
    X = np.arange(6, dtype=np.float32).reshape(3, 2)
    X2, labels, weights = soft_label_rows(X, np.array([1.0, 0.0, 0.25]))
    assert labels.tolist() == [1, 1, 0, 0]
    np.testing.assert_allclose(weights, [1.0, 0.25, 1.0, 0.75])
    np.testing.assert_array_equal(X2[1], X[2])


@pytest.mark.parametrize(
    ("y", "candidate", "match"),
    [
        (np.array([0.5, 1.2]), np.array([0, 1]), r"\[0, 1\]"),
        (np.array([0.5, np.nan]), np.array([0, 1]), "NaN"),
        (np.array([0.5, 1.0]), np.array([0, 7]), "candidate indices"),
        (np.array([0.5]), np.array([0, 1]), "Expected X"),
    ],
)
def test_bad_training_rows_raise(y, candidate, match):
    X = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=match):
        make_learner("logistic").fit(X, y, candidate=candidate, n_candidates=2)


def test_unknown_learner_lists_the_registry():
    with pytest.raises(ValueError, match="available: \\['lightgbm', 'logistic'\\]"):
        make_learner("knn")

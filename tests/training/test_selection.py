"""Cross-validated selection, and the averaging ensemble inside it."""

from __future__ import annotations

import numpy as np
import pytest

from features.spec import FeatureSpec
from training.learners import make_learner
from training.learners.ensemble import DEFAULT_MEMBERS
from training.selection import cross_validate, ensembles_of_configs
from training.train import DEFAULT_LEARNERS, cost_components, learners_for_spec

LOGISTIC = ("logistic", {"C": 0.0003})
KNN = ("knn", {"n_neighbors": 10})
PAIR = {"members": (LOGISTIC, KNN)}


def _cv(data, configs):
    components = cost_components(data, {c: None for c in data.candidates})
    return cross_validate(data, configs, components, n_folds=3, seed=0)


def test_an_ensemble_of_grid_settings_is_the_mean_of_their_predictions(training_set):
    configs = [("lr", *LOGISTIC), ("knn", *KNN), ("mean", "ensemble", PAIR)]
    assert ensembles_of_configs(configs) == {"mean": ["lr", "knn"]}
    cv = _cv(training_set, configs)
    np.testing.assert_allclose(cv.p_oof["mean"], (cv.p_oof["lr"] + cv.p_oof["knn"]) / 2)
    # Fit for real on every fold (its members are not in the grid): the same numbers.
    alone = _cv(training_set, [("mean", "ensemble", PAIR)])
    np.testing.assert_allclose(alone.p_oof["mean"], cv.p_oof["mean"], atol=1e-9)
    assert "area" in cv.scores["mean"] and cv.scores["mean"]["learner"] == "ensemble"


def _grid_with_ensemble():
    return [*DEFAULT_LEARNERS, ("ensemble", "ensemble", {"members": DEFAULT_MEMBERS})]


def test_the_default_members_are_settings_of_the_default_grid():
    # So `train --learner` with the grid and the ensemble derives its predictions.
    labels = {(n, repr(p)): label for label, n, p in DEFAULT_LEARNERS}
    expected = [labels[(n, repr(p))] for n, p in DEFAULT_MEMBERS]
    assert ensembles_of_configs(_grid_with_ensemble()) == {"ensemble": expected}


def test_members_get_the_spec_embedding_width_like_the_grid():
    static = FeatureSpec.for_encoder("static")
    adapted = learners_for_spec(_grid_with_ensemble(), static)
    members = dict(adapted[-1][2]["members"])
    assert members["knn"]["embedding_dim"] == static.embedding_dim == 256
    # Still settings of the grid, so the ensemble's predictions are still derived.
    assert list(ensembles_of_configs(adapted)) == ["ensemble"]


def test_ensembles_do_not_nest(training_set):
    nested = make_learner("ensemble", members=(LOGISTIC, ("ensemble", PAIR)))
    X = training_set.features[training_set.prompt]
    with pytest.raises(ValueError, match="do not nest"):
        nested.fit(
            X,
            training_set.outcome,
            candidate=training_set.candidate,
            n_candidates=len(training_set.candidates),
        )


def test_an_ensemble_with_default_members_gets_the_width_too():
    (adapted,) = learners_for_spec([("e", "ensemble", {})], FeatureSpec.for_encoder("static"))
    assert dict(adapted[2]["members"])["knn"]["embedding_dim"] == 256


def test_repeated_cross_validation_averages_scores_over_fresh_cuts(training_set):
    from training.selection import prompt_folds

    configs = [("lr", *LOGISTIC), ("knn", *KNN)]
    components = cost_components(training_set, {c: None for c in training_set.candidates})
    once = cross_validate(training_set, configs, components, n_folds=3, seed=4)
    twice = cross_validate(training_set, configs, components, n_folds=3, n_repeats=2, seed=4)
    again = cross_validate(training_set, configs, components, n_folds=3, seed=5)
    # The predictions kept are the first cut's; the scores are means over both cuts.
    np.testing.assert_array_equal(twice.folds, prompt_folds(training_set.n_prompts, 3, 4))
    np.testing.assert_allclose(twice.p_oof["lr"], once.p_oof["lr"])
    for label in ("lr", "knn"):
        areas = [once.scores[label]["area"], again.scores[label]["area"]]
        assert twice.scores[label]["area_repeats"] == pytest.approx(areas)
        assert twice.scores[label]["area"] == pytest.approx(np.mean(areas))
    with pytest.raises(ValueError, match="n_repeats"):
        cross_validate(training_set, configs, components, n_repeats=0)


def test_learners_get_the_logged_usage_of_their_training_rows(training_set):
    from training.selection import units

    data = training_set
    cv = _cv(data, [("usage", "usage", {"C": 0.1})])
    # One fold by hand: fit on the other folds' rows with their usage.
    rows = data.labelled & (cv.folds[data.prompt] != 0)
    learner = make_learner("usage", C=0.1).fit(
        data.features[data.prompt[rows]],
        data.outcome[rows],
        candidate=data.candidate[rows],
        n_candidates=len(data.candidates),
        usage={unit: values[rows] for unit, values in units(data).items()},
    )
    assert learner.usage_model_ is not None
    held = cv.folds == 0
    np.testing.assert_allclose(cv.p_oof["usage"][held], learner.predict_proba(data.features[held]))

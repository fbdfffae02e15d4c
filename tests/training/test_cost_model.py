"""The cost model's regressions, fit together where they share prompts."""

import numpy as np

from training.cost_model import CostComponent, LogLinearCostModel
from training.selection import units


def test_components_fit_together_equal_components_fit_alone(training_set):
    # Every candidate answered the same prompts in the same order, and each logs
    # two token counts: one shared fit for all ten components.
    data = training_set
    X = data.features[data.prompt]
    first, second = (data.candidate == 0), (data.candidate == 1)
    np.testing.assert_array_equal(X[first], X[second])
    components = [
        CostComponent(k, name, 1.0, 1.0)
        for k in range(len(data.candidates))
        for name in ("input_tokens", "output_tokens")
    ]
    together = LogLinearCostModel().fit(
        X, units(data), components=components, candidate=data.candidate
    )
    for j, component in enumerate(components):
        alone = LogLinearCostModel().fit(
            X, units(data), components=[component], candidate=data.candidate
        )
        np.testing.assert_allclose(together.coef_[j], alone.coef_[0], rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(together.intercept_[j], alone.intercept_[0], rtol=1e-8)
        np.testing.assert_allclose(together.smearing_[j], alone.smearing_[0], rtol=1e-8)


def test_thin_components_are_predicted_by_their_mean():
    X = np.random.default_rng(0).normal(size=(30, 4))
    candidate = np.repeat([0, 1], 15)
    cost = np.where(candidate == 0, 2.0, np.nan)
    model = LogLinearCostModel(min_rows=20).fit(
        X,
        {"cost_usd": cost},
        components=[CostComponent(0, "cost_usd", 1.0, 0.0)],
        candidate=candidate,
    )
    assert not model.coef_.any()
    np.testing.assert_allclose(model.predict_cost(X[:2], 2), [[2.0, 0.0], [2.0, 0.0]])


def test_unit_weights_equal_the_unweighted_fit_and_other_weights_move_it(training_set):
    data = training_set
    X = data.features[data.prompt]
    components = [CostComponent(0, "output_tokens", 1.0, 1.0)]
    plain = LogLinearCostModel().fit(
        X, units(data), components=components, candidate=data.candidate
    )
    ones = LogLinearCostModel().fit(
        X,
        units(data),
        components=components,
        candidate=data.candidate,
        sample_weight=np.ones(len(data.candidate)),
    )
    np.testing.assert_allclose(ones.coef_, plain.coef_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ones.smearing_, plain.smearing_, rtol=1e-10)
    # Weighting the long prompts up moves the fit towards them.
    length = np.log1p(np.array([len(t) for t in data.texts]))[data.prompt]
    heavy = np.where(length > np.median(length), 10.0, 1.0)
    weighted = LogLinearCostModel().fit(
        X, units(data), components=components, candidate=data.candidate, sample_weight=heavy
    )
    assert not np.allclose(weighted.intercept_, plain.intercept_)

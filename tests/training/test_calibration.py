"""Calibration maps: fit in training, applied by serving's numpy code."""

import numpy as np
import pytest

from serving.calibration import apply_calibration, calibrate_column
from training.calibration import fit_calibration, fit_isotonic, fit_platt
from training.selection import prompt_folds


@pytest.fixture(scope="module")
def outcomes(training_set):
    rows = np.flatnonzero(training_set.labelled)
    return training_set.outcome[rows]


def test_platt_undoes_a_known_distortion():
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0.05, 0.95, 4000)
    y = (rng.uniform(size=true_p.size) < true_p).astype(float)
    logit = np.log(true_p / (1 - true_p))
    squashed = 1 / (1 + np.exp(-(0.4 * logit - 0.5)))
    spec = fit_platt(squashed, y)
    assert spec["a"] == pytest.approx(2.5, rel=0.15)
    np.testing.assert_allclose(calibrate_column(squashed, spec), true_p, atol=0.06)


def test_isotonic_is_monotone_and_bounded():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=500)
    y = (rng.uniform(size=500) < p**2).astype(float)
    spec = fit_isotonic(p, y)
    grid = np.linspace(-0.5, 1.5, 101)
    out = calibrate_column(grid, spec)
    assert (np.diff(out) >= 0).all() and out.min() >= 0.01 and out.max() <= 0.99


def test_apply_calibration_per_candidate():
    p = np.array([[0.2, 0.7], [0.5, 0.5]])
    calibration = {
        "method": "platt",
        "per_candidate": [{"method": "platt", "a": 1.0, "b": 0.0}, {"method": "none"}],
    }
    np.testing.assert_allclose(apply_calibration(p, calibration), p)
    assert apply_calibration(p, None) is p
    with pytest.raises(ValueError, match="2 candidates"):
        apply_calibration(np.zeros((1, 3)), calibration)
    with pytest.raises(ValueError, match="Unknown calibration method"):
        calibrate_column(p[:, 0], {"method": "beta"})


def test_fit_calibration_prefers_a_map_for_distorted_scores(training_set):
    """Squash true-ish predictions toward 0.5: a cross-fitted map must win over none."""
    data = training_set
    folds = prompt_folds(data.n_prompts, 5, seed=0)
    rates = np.array([data.outcome[data.candidate == k].mean() for k in range(5)])
    p_oof = np.tile(0.5 + 0.1 * (rates - 0.5), (data.n_prompts, 1))
    calibration, report = fit_calibration(data, p_oof, folds)
    assert report["chosen"] in ("platt", "isotonic")
    losses = report["cross_fitted_log_loss"]
    assert losses[report["chosen"]] < losses["none"]
    calibrated = apply_calibration(p_oof[:1], calibration)[0]
    np.testing.assert_allclose(calibrated, rates, atol=0.08)

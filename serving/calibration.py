"""Apply a bundle's probability calibration: pure numpy, run after the ONNX scorer.

The map is fit offline (`training.calibration`) on out-of-fold predictions and
stored in the manifest as plain numbers, so serving needs neither sklearn nor a
pickle. Per candidate it is one of:

- ``{"method": "platt", "a": float, "b": float}``: ``sigmoid(a * logit(p) + b)``;
- ``{"method": "isotonic", "x": [...], "y": [...]}``: piecewise-linear interpolation
  through the isotonic fit's thresholds (``numpy.interp``, clipped at the ends);
- ``{"method": "none"}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

METHODS = ("none", "platt", "isotonic")
_EPS = 1e-6


def calibrate_column(p: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Calibrated probabilities of one candidate, same shape as ``p``."""
    method = spec.get("method", "none")
    if method == "none":
        return p
    if method == "platt":
        q = np.clip(p, _EPS, 1 - _EPS)
        z = spec["a"] * np.log(q / (1 - q)) + spec["b"]
        return 1.0 / (1.0 + np.exp(-z))
    if method == "isotonic":
        return np.interp(p, spec["x"], spec["y"])
    raise ValueError(f"Unknown calibration method {method!r}; expected one of {METHODS}.")


def apply_calibration(p_success: np.ndarray, calibration: dict[str, Any] | None) -> np.ndarray:
    """Calibrate ``p_success`` of shape ``(n_rounds, n_candidates)``.

    ``calibration`` is the manifest's ``scorer.calibration``: None, or
    ``{"method": ..., "per_candidate": [spec, ...]}`` with one spec per candidate.
    """
    if not calibration or calibration.get("method", "none") == "none":
        return p_success
    specs = calibration["per_candidate"]
    if len(specs) != p_success.shape[1]:
        raise ValueError(
            f"The calibration has {len(specs)} candidates, the scores have {p_success.shape[1]}."
        )
    out = np.empty_like(p_success, dtype=np.float64)
    for k, spec in enumerate(specs):
        out[:, k] = calibrate_column(p_success[:, k], spec)
    return out

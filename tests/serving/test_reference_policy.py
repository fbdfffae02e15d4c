"""A bundle whose default policy anchors to a reference model: `/route`'s service
decides with the anchor (tests/training/test_reference_policy.py checks that offline
evaluation does too: what is evaluated is what is served)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.config import Settings
from serving.policy import PolicyParams, choose
from serving.service import RouterService, policy_params

PROMPTS = ["Fix the failing test in utils/dates.py", "Add a --verbose flag", "Refactor the parser"]


def anchor_to_first(manifest):
    manifest["policy"]["reference_model"] = manifest["candidates"][0]["name"]
    manifest["policy"]["reference_margin"] = 1.0


@pytest.fixture(scope="module")
def anchored(bundle_dir: Path, copy_bundle, tmp_path_factory) -> Path:
    return copy_bundle(bundle_dir, tmp_path_factory.mktemp("anchored") / "b", anchor_to_first)


def test_service_decides_with_the_bundle_reference(anchored: Path):
    service = RouterService.load(Settings(bundle=str(anchored)))
    try:
        params = service.policy()
        assert params.reference == 0 and params.reference_margin == 1.0
        scores = service.scorer.score_texts(PROMPTS)
        action, _ = choose(scores.p_success, scores.expected_cost_usd, params)
        shifted = scores.p_success.copy()
        shifted[:, 0] += 1.0
        plain = PolicyParams(params.value_usd)
        assert action.tolist() == choose(shifted, scores.expected_cost_usd, plain)[0].tolist()
        # A request's own value_usd keeps the bundle's anchor.
        assert service.policy(value_usd=0.5).reference == 0
    finally:
        service.close()


def test_policy_params_needs_the_candidates_to_place_the_reference():
    defaults = {"value_usd": 1.0, "reference_model": "b", "reference_margin": 0.1}
    assert policy_params(defaults, candidates=["a", "b"]).reference == 1
    with pytest.raises(ValueError, match="reference_model 'b' is not among the candidates"):
        policy_params(defaults, candidates=["a", "c"])
    with pytest.raises(ValueError, match="pass the bundle's candidates"):
        policy_params(defaults)

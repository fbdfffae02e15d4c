"""The reference anchor end to end on the training side: the target search picks a
margin the served policy applies, and offline evaluation serves the bundle's anchor."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from serving.bundle import MANIFEST_FILE, load_bundle, router_version_of
from training.evaluation import FullInfoLog, best_single, router_choice
from training.evaluation.served import ServedPolicy
from training.policy_target import REFERENCE_MARGINS, PolicyTarget, fit_policy_target


def test_evaluation_serves_the_bundle_anchor(bundle_dir: Path, tmp_path: Path):
    anchored = tmp_path / "anchored"
    shutil.copytree(bundle_dir, anchored)
    manifest = json.loads((anchored / MANIFEST_FILE).read_text())
    manifest["policy"]["reference_model"] = manifest["candidates"][1]["name"]
    manifest["policy"]["reference_margin"] = 0.2
    manifest["router_version"] = router_version_of(manifest)
    (anchored / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    bundle = load_bundle(str(anchored))
    served = ServedPolicy(bundle)
    assert served.params.reference == 1 and served.params.reference_margin == 0.2
    # Restricted to candidates without the reference, there is nothing to anchor to.
    others = [bundle.candidate_names[0]]
    assert ServedPolicy(bundle, others).params.reference is None


def test_noisy_argmax_is_anchored_to_the_reference(shipped_calls):
    """Predictions that are the truth plus noise: the plain argmax chases the noise;
    the target search may pick a margin, and its choice is what `router_choice` (the
    served decision code) then makes."""
    log, _ = FullInfoLog.from_frame(shipped_calls)
    rng = np.random.default_rng(0)
    p = np.clip(log.outcome.mean(axis=0) + rng.normal(0, 0.2, log.outcome.shape), 0, 1)
    fit = fit_policy_target(PolicyTarget("parity"), log, p, log.cost_usd, n_bootstrap=50)
    assert fit["reference_margin"] in REFERENCE_MARGINS
    plain = fit_policy_target(
        PolicyTarget("parity"), log, p, log.cost_usd, n_bootstrap=50, margins=(0.0,)
    )
    assert plain["reference_margin"] == 0.0
    ref = log.candidates.index(best_single(log).name)
    action = router_choice(
        log,
        p,
        log.cost_usd,
        fit["value_usd"],
        reference=ref,
        reference_margin=fit["reference_margin"],
    )
    quality = log.outcome[np.arange(log.n_prompts), action].mean()
    assert abs(quality - fit["in_sample"]["quality"]) < 1e-9
    # The anchored search never does worse on the prompts it chose on.
    assert fit["in_sample"]["cost_usd"] <= plain["in_sample"]["cost_usd"] + 1e-12 or (
        fit["met"] and not plain["met"]
    )

"""`train --cluster` gives the bundle `train` gives, on a 2-worker LocalCluster.

Same logs (a day-partitioned cut of the shipped SWE-bench log, one bad row in it),
static encoder, a two-setting grid: with and without a cluster the bundle has the
same candidates, quarantine count, cross-validated scores and chosen learner, and
serving's scorer gives the same ``p_success`` and ``expected_cost_usd`` on the same
prompts, within `SCORE_TOLERANCE` and `COST_RTOL`.

Tolerances: cross-validation runs in the driver on the same gathered features, so
its scores agree to float rounding. The cost model is fit from chunked sufficient
statistics on a cluster (`training.cost_model_stats`), the same ridge solved in a
different order: relative gaps near 1e-12. LightGBM on the workers builds its
histograms per worker (data-parallel), so with rows spread over both workers its
trees split on different bins: on the shipped SWE-bench log (about 250 calls per
worker and candidate) ``p_success`` moved by 0.022 on average and 0.12 at most
(`LGBM_MEAN_TOLERANCE`, `LGBM_TOLERANCE`); with a candidate's rows on one worker
the trees are the single-process ones exactly. The end-to-end bundle test keeps
each candidate's rows in one block, so its LightGBM is exact too.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.call_log_dataset import write_partitioned_call_log
from features.context import RequestContext
from features.encoder_export import ensure_encoder
from features.spec import FeatureSpec
from serving.scoring import BundleScorer
from training.cluster_training import fit_lightgbm_on_cluster
from training.learners import LightGBMLearner
from training.train import DEFAULT_LEARNERS, TrainConfig, train

distributed = pytest.importorskip("distributed")

SHIPPED = "data/swebench_verified/calls.parquet"
#: Largest allowed |p_success| gap, chosen learner fit in the driver both ways.
SCORE_TOLERANCE = 1e-6
#: Largest allowed relative expected-cost gap (chunked vs in-memory ridge).
COST_RTOL = 1e-6
#: Largest allowed mean and max |p_success| gap of LightGBM trained data-parallel
#: on 2 workers, ~250 calls per worker and candidate (measured: 0.022 and 0.12).
LGBM_MEAN_TOLERANCE, LGBM_TOLERANCE = 0.05, 0.25
GRID = [c for c in DEFAULT_LEARNERS if c[0] in ("logistic-C0.003", "lightgbm-small")]


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes, one thread each (as ``--cluster local:2``)."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local


@pytest.fixture(scope="module")
def calls(tmp_path_factory):
    """80 prompts of the shipped log over 4 days, plus one row with outcome 7 (bad)."""
    frame = pd.read_parquet(SHIPPED)
    ids = sorted(frame["prompt_id"].unique())[:80]
    frame = frame[frame["prompt_id"].isin(ids)].copy()
    days = [f"2026-03-0{d}T12:00:00Z" for d in range(1, 5)]
    frame["timestamp"] = [days[ids.index(p) % 4] for p in frame["prompt_id"]]
    # Request context, counted on the whole log in both modes (task per prompt, team per day).
    frame["task"] = [("review", "debug", "docs")[ids.index(p) % 3] for p in frame["prompt_id"]]
    frame["team"] = [("pay", "search")[ids.index(p) % 4 // 2] for p in frame["prompt_id"]]
    bad = frame.iloc[[0]].copy()
    bad["request_id"], bad["outcome"] = "bad-row", 7.0
    root = tmp_path_factory.mktemp("calls") / "calls"
    write_partitioned_call_log(pd.concat([frame, bad]), root)
    return root


def _train(calls, out, learners, cluster=None):
    return train(
        TrainConfig(
            logs=[str(calls)],
            out=str(out),
            learners=learners,
            spec=FeatureSpec.for_encoder("static"),
            context=("task", "team", "depth"),
            track=False,
            cluster=cluster,
        )
    )


@pytest.fixture(scope="module")
def bundles(calls, cluster, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundles")
    alone = _train(calls, folder / "alone", GRID)
    on_cluster = _train(calls, folder / "cluster", GRID, cluster.scheduler_address)
    return alone, on_cluster


def _scores(result, firsts):
    contexts = [
        RequestContext.of(task=t, team=m) for t, m in zip(firsts.task, firsts.team, strict=True)
    ]
    return BundleScorer(result.bundle).score_texts(firsts["prompt"].tolist(), contexts)


def test_same_bundle_with_and_without_a_cluster(bundles, calls):
    alone, on_cluster = bundles
    a, b = alone.bundle.manifest, on_cluster.bundle.manifest
    assert a["candidates"] == b["candidates"]
    assert a["training"]["n_calls"] == b["training"]["n_calls"] == 399
    assert a["training"]["n_quarantined"] == b["training"]["n_quarantined"] == 1
    assert a["training"]["n_prompts"] == b["training"]["n_prompts"] == 80
    sel_a, sel_b = a["training"]["selection"], b["training"]["selection"]
    assert sel_a["chosen"] == sel_b["chosen"]
    for label in sel_a["learners"]:
        assert sel_b["learners"][label]["log_loss"] == pytest.approx(
            sel_a["learners"][label]["log_loss"], abs=1e-9
        )
        assert sel_b["learners"][label]["area"] == pytest.approx(
            sel_a["learners"][label]["area"], abs=1e-9
        )
    assert a["policy"]["fallback_model"] == b["policy"]["fallback_model"]
    assert b["policy"]["value_usd"] == pytest.approx(a["policy"]["value_usd"], rel=1e-6)
    assert a["feature_spec"] == b["feature_spec"]
    assert a["feature_spec"]["context_tasks"] == ["debug", "docs", "review"]
    firsts = pd.read_parquet(calls).drop_duplicates("prompt_id")
    sa, sb = _scores(alone, firsts), _scores(on_cluster, firsts)
    np.testing.assert_allclose(sb.p_success, sa.p_success, atol=SCORE_TOLERANCE)
    np.testing.assert_allclose(sb.expected_cost_usd, sa.expected_cost_usd, rtol=COST_RTOL)


def test_the_manifest_says_how_the_cluster_was_used(bundles):
    alone, on_cluster = bundles
    assert "scale" not in alone.bundle.manifest["training"]["selection"]
    scale = on_cluster.bundle.manifest["training"]["selection"]["scale"]
    assert scale["n_workers"] == 2 and scale["n_partitions"] == 4
    assert scale["selection"].startswith("cross-validated on 80 of 80 prompts")
    assert "sufficient statistics" in scale["cost_model"]
    json.dumps(scale)  # stays JSON


def test_lightgbm_on_two_workers_scores_within_tolerance(cluster):
    """Each candidate's ~500 calls in two blocks, one per worker (data-parallel LightGBM)."""
    from features.call_log import read_call_logs
    from features.featurizer import Featurizer
    from training.dataset import build_training_set

    frame = read_call_logs([SHIPPED]).frame
    spec = FeatureSpec.for_encoder("static")
    data = build_training_set(frame, Featurizer(spec, ensure_encoder(kind="static")))
    params = dict(GRID[1][2])
    labelled = data.labelled
    alone = LightGBMLearner(**params).fit(
        data.features[data.prompt[labelled]],
        data.outcome[labelled],
        candidate=data.candidate[labelled],
        n_candidates=len(data.candidates),
    )
    with distributed.Client(cluster) as client:
        spread = fit_lightgbm_on_cluster(client, params, data, block_rows=250)
        whole = fit_lightgbm_on_cluster(client, params, data, block_rows=100_000)
    p_alone = alone.predict_proba(data.features)
    gap = np.abs(spread.predict_proba(data.features) - p_alone)
    assert gap.mean() < LGBM_MEAN_TOLERANCE and gap.max() < LGBM_TOLERANCE
    # All of a candidate's rows on one worker: the single-process trees exactly.
    np.testing.assert_array_equal(whole.predict_proba(data.features), p_alone)
    np.testing.assert_allclose(spread.constant_, alone.constant_)
    assert [m is None for m in spread.models_] == [m is None for m in alone.models_]

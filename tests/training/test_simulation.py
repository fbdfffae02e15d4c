"""`outcome-router simulate`: gateway logs from full-information logs, with the truth.

Real data only: the shipped SWE-bench log (agent style: PR events), RouteProfile
(tests and judge scores) and AlpacaEval (fractional judge preferences) from
../shared/data, and a real bundle trained on shipped SWE-bench prompts for the
epsilon and softmax policies.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from features.call_log import read_call_logs
from serving.bundle import load_bundle
from serving.policy import decision_utility
from serving.scoring import BundleScorer
from serving.service import policy_params
from training.cli import main
from training.simulation import (
    BiasedHumanPolicy,
    EpsilonGreedyPolicy,
    PrecomputedPolicy,
    SoftmaxPolicy,
    UniformPolicy,
    parse_policy,
    read_full_information,
    simulate,
    write_simulation,
)
from training.simulation.run import OUTPUT_FILES

ROOT = Path(__file__).resolve().parents[2]
SWEBENCH = ROOT / "data" / "swebench_verified" / "calls.parquet"
ROUTEPROFILE = ROOT / "data" / "routeprofile" / "calls.jsonl.gz"
#: AlpacaEval is non-commercial: read from the data folder beside the checkout, never shipped.
ALPACAEVAL = ROOT.parent / "shared" / "data" / "alpacaeval"
KEYS = ("request_id", "decision_id", "session_id", "pr")


def _events(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def _calls(folder: Path) -> pd.DataFrame:
    return pd.read_json(folder / "calls.jsonl", lines=True, dtype=False)


def _check_event_shape(events: list[dict]) -> None:
    """DESIGN.md section 3: timestamp, event, one key (pr_opened: session_id and pr),
    value for judge_score only, a unique event_id."""
    assert events
    for e in events:
        assert {"timestamp", "event", "event_id"} <= set(e), e
        keys = {k for k in KEYS if k in e}
        if e["event"] == "pr_opened":
            assert keys == {"session_id", "pr"}, e
        else:
            assert len(keys) == 1, e
        assert ("value" in e) == (e["event"] == "judge_score"), e
        if "value" in e:
            assert 0.0 <= e["value"] <= 1.0
        assert set(e) <= {"timestamp", "event", "event_id", "value", *KEYS}, e
        assert e["timestamp"].endswith("Z")
    assert len({e["event_id"] for e in events}) == len(events)


def _outcomes_from_events(calls: pd.DataFrame, events: list[dict]) -> pd.Series:
    """What grading must find: tests_passed 1, tests_failed 0, judge_score its value,
    pr_merged on first review 1, pr_closed_unmerged 0, onto the calls."""
    outcome: dict[str, float] = {}
    session_of_pr: dict[str, str] = {}
    changes_requested: set[str] = set()
    calls_of_session = calls.groupby("session_id")["request_id"].apply(list).to_dict()
    for e in sorted(events, key=lambda e: e["timestamp"]):
        kind = e["event"]
        if kind in ("tests_passed", "tests_failed", "judge_score"):
            value = {"tests_passed": 1.0, "tests_failed": 0.0}.get(kind, e.get("value"))
            assert e["request_id"] not in outcome, "one decisive event per call"
            outcome[e["request_id"]] = value
        elif kind == "pr_opened":
            session_of_pr[e["pr"]] = e["session_id"]
        elif kind == "review_changes_requested":
            changes_requested.add(e["pr"])
        elif kind in ("pr_merged", "pr_closed_unmerged"):
            if kind == "pr_merged":
                assert e["pr"] not in changes_requested, "merged on first review"
            for request in calls_of_session[session_of_pr[e["pr"]]]:
                outcome[request] = 1.0 if kind == "pr_merged" else 0.0
    return pd.Series(outcome)


def _true_outcome_of_calls(folder: Path) -> pd.Series:
    truth = pd.read_parquet(folder / "truth.parquet")
    chosen = truth[truth["chosen"]]
    return chosen.set_index("request_id")["outcome"]


@pytest.fixture(scope="module")
def routeprofile_sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("routeprofile") / "sim"
    result = simulate(ROUTEPROFILE, "uniform", seed=3)
    write_simulation(result, out)
    return result, out


@pytest.fixture(scope="module")
def swebench_sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("swebench") / "sim"
    result = simulate(SWEBENCH, "biased", seed=4)
    write_simulation(result, out)
    return result, out


@pytest.mark.parametrize("which", ["routeprofile_sim", "swebench_sim"])
def test_propensity_is_the_policy_probability_of_the_chosen_model(which, request):
    result, out = request.getfixturevalue(which)
    dist = pd.read_parquet(out / "logging_distribution.parquet").set_index("prompt_id")
    np.testing.assert_allclose(dist.sum(axis=1), 1.0, atol=1e-12)
    calls = _calls(out)
    assert len(calls) == result.table.n_prompts == calls["prompt_id"].nunique()
    logged = dist.to_numpy()[
        dist.index.get_indexer(calls["prompt_id"]),
        [list(dist.columns).index(m) for m in calls["model"]],
    ]
    np.testing.assert_allclose(calls["propensity"], logged, rtol=1e-12)
    assert (calls["propensity"] > 0).all()
    np.testing.assert_allclose(
        result.pscore, result.action_dist[np.arange(len(result.action)), result.action]
    )


def test_calls_are_a_valid_gateway_log_without_outcomes(swebench_sim, routeprofile_sim):
    for _, out in (swebench_sim, routeprofile_sim):
        read = read_call_logs(out / "calls.jsonl")
        assert read.n_quarantined == 0
        frame = read.frame
        assert frame["outcome"].isna().all()
        for column in ("decision_id", "user", "team", "session_id", "timestamp", "cost_usd"):
            assert frame[column].notna().all(), column
        assert frame["decision_id"].is_unique and frame["request_id"].is_unique
        stamps = pd.to_datetime(frame["timestamp"])
        assert (stamps.max() - stamps.min()) > pd.Timedelta(days=7)
        assert "outcome" not in _calls(out).columns
    # chat-style traffic: several calls per session, one user per session
    calls = _calls(routeprofile_sim[1])
    per_session = calls.groupby("session_id").size()
    assert per_session.max() > 1 and per_session.mean() > 1.5
    assert (calls.groupby("session_id")["user"].nunique() == 1).all()
    assert (calls.groupby("user")["team"].nunique() == 1).all()
    # RouteProfile has no teams: synthetic ones, each task mostly sent by its home team
    home_share = calls.groupby("task")["team"].agg(lambda t: t.value_counts().iloc[0] / len(t))
    assert calls["team"].nunique() == 5 and home_share.mean() > 0.75
    # SWE-bench keeps its own teams (the repositories)
    assert set(_calls(swebench_sim[1])["team"]) <= set(swebench_sim[0].table.prompts["team"])


@pytest.mark.parametrize("which", ["routeprofile_sim", "swebench_sim"])
def test_events_give_back_the_chosen_model_true_outcome(which, request):
    _, out = request.getfixturevalue(which)
    events = _events(out)
    _check_event_shape(events)
    calls = _calls(out)
    recovered = _outcomes_from_events(calls, events)
    truth = _true_outcome_of_calls(out)
    assert set(recovered.index) == set(calls["request_id"])
    pd.testing.assert_series_equal(
        recovered.sort_index(), truth.sort_index(), check_names=False, check_exact=True
    )
    # every event comes after its call
    stamps = pd.to_datetime(calls["timestamp"])
    when = dict(zip(calls["request_id"], stamps, strict=True))
    session_end = stamps.groupby(calls["session_id"]).max()
    for e in events:
        t = pd.Timestamp(e["timestamp"])
        if "request_id" in e:
            assert t > when[e["request_id"]]
        if "session_id" in e:
            assert t > session_end[e["session_id"]]


def test_swebench_outcomes_arrive_as_pull_requests_days_later(swebench_sim):
    result, out = swebench_sim
    assert result.event_style == "pr"
    events = pd.DataFrame(_events(out))
    calls = _calls(out)
    assert calls["session_id"].is_unique  # one agent session per issue, one PR each
    kinds = set(events["event"])
    assert {"pr_opened", "pr_merged", "pr_closed_unmerged"} <= kinds
    stamps = events.assign(t=pd.to_datetime(events["timestamp"]))
    opened = stamps[stamps["event"] == "pr_opened"].set_index("pr")["t"]
    closed = stamps[stamps["event"].isin(["pr_merged", "pr_closed_unmerged"])].set_index("pr")["t"]
    delay = (closed - opened.reindex(closed.index)).dt.total_seconds() / 3600
    assert delay.min() > 1 and delay.max() > 48


def test_routeprofile_fractional_outcomes_are_judge_scores(routeprofile_sim):
    _, out = routeprofile_sim
    events = pd.DataFrame(_events(out))
    truth = _true_outcome_of_calls(out)
    fractional = set(truth[(truth > 0) & (truth < 1)].index)
    judged = set(events.loc[events["event"] == "judge_score", "request_id"])
    assert fractional and judged == fractional
    retries = events[events["event"] == "retry"]
    assert len(retries) > 0 and (truth.loc[retries["request_id"]] == 0).all()


@pytest.mark.skipif(
    not ALPACAEVAL.is_dir(), reason="AlpacaEval (non-commercial) is not shipped; absent here"
)
def test_alpacaeval_judge_preferences_round_trip(tmp_path):
    """A frame from benchmarks/datasets.py (AlpacaEval, quick subset) is read through
    the same validated reader, and its preferences come back as judge scores."""
    from benchmarks.datasets import alpacaeval_calls

    frame = alpacaeval_calls(quick=True, seed=0)
    result = simulate(frame, "uniform", seed=1, event_style="judge")
    write_simulation(result, tmp_path)
    events = _events(tmp_path)
    _check_event_shape(events)
    assert {e["event"] for e in events} == {"judge_score"}
    recovered = _outcomes_from_events(_calls(tmp_path), events)
    truth = _true_outcome_of_calls(tmp_path)
    pd.testing.assert_series_equal(
        recovered.sort_index(), truth.sort_index(), check_names=False, check_exact=True
    )
    assert len(result.candidates) == frame["model"].nunique()


def test_truth_matches_the_input_table(swebench_sim, shipped_calls):
    result, out = swebench_sim
    truth = pd.read_parquet(out / "truth.parquet")
    source = shipped_calls.set_index(["prompt_id", "model"])
    kept = truth.set_index(["prompt_id", "model"])
    assert len(kept) == result.table.n_prompts * len(result.candidates)
    np.testing.assert_array_equal(kept["outcome"], source.loc[kept.index, "outcome"])
    np.testing.assert_allclose(kept["cost_usd"], source.loc[kept.index, "cost_usd"], rtol=1e-12)
    np.testing.assert_array_equal(kept["input_tokens"], source.loc[kept.index, "input_tokens"])
    # prompts some candidate did not answer are left out and counted
    complete = shipped_calls.groupby("prompt_id")["model"].nunique()
    assert result.table.n_prompts == int((complete == 5).sum())
    assert result.table.n_dropped == int((complete < 5).sum()) > 0
    # the calls carry the chosen model's own tokens and cost
    calls = _calls(out).set_index(["prompt_id", "model"])
    np.testing.assert_allclose(calls["cost_usd"], source.loc[calls.index, "cost_usd"], rtol=1e-12)
    np.testing.assert_array_equal(calls["output_tokens"], source.loc[calls.index, "output_tokens"])


def test_chat_messages_are_kept_and_routed_on(tmp_path):
    """A log of OpenAI chat messages: the calls keep them, the biased policy measures
    their whole text, and the OBP-style arrays line up with the calls."""
    frame = pd.read_json(ROUTEPROFILE, lines=True)
    frame = frame[frame["task"].isin(["gsm8k", "mmlu"])].copy()
    frame["messages"] = [
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": p}]
        for p in frame.pop("prompt")
    ]
    result = simulate(frame, "biased", seed=0)
    write_simulation(result, tmp_path)
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert all("prompt" not in c and c["messages"][0]["role"] == "system" for c in calls)
    feedback = result.bandit_feedback()
    assert feedback["pi_b"].shape == (100, 8, 1)
    np.testing.assert_array_equal(
        feedback["reward"], result.table.outcome[np.arange(100), feedback["action"]]
    )
    value = result.policy_value(result.action_dist)
    assert value == result.to_dict()["logging_policy_value"]
    one_hot = np.eye(8)[np.argmax(result.table.outcome, axis=1)]
    assert result.policy_value(one_hot)["quality"] == result.table.outcome.max(axis=1).mean()


def test_a_table_read_once_and_a_precomputed_distribution_replay_a_run():
    """What benchmarks do over many seeds: read the log once, score the prompts once."""
    first = simulate(SWEBENCH, "biased", seed=11)
    table, _ = read_full_information(SWEBENCH)
    again = simulate(table, PrecomputedPolicy(first.action_dist, first.policy_spec), seed=11)
    np.testing.assert_array_equal(again.action, first.action)
    pd.testing.assert_frame_equal(again.calls, first.calls)
    pd.testing.assert_frame_equal(again.events, first.events)
    assert again.policy_spec == {**first.policy_spec, "seed": 11}
    with pytest.raises(ValueError, match=r"precomputed distribution has shape \(2, 5\)"):
        simulate(table, PrecomputedPolicy(first.action_dist[:2]), seed=0)


def test_uniform_choices_are_uniform():
    """Pooled over seeds (3000 calls, 8 models), counts fit 1/K (chi-square)."""
    counts = pd.Series(dtype=float)
    for seed in range(5):
        result = simulate(ROUTEPROFILE, UniformPolicy(), seed=seed)
        np.testing.assert_allclose(result.action_dist, 1.0 / 8)
        counts = counts.add(pd.Series(result.action).value_counts(), fill_value=0)
    assert len(counts) == 8
    assert stats.chisquare(counts.to_numpy()).pvalue > 0.01
    assert (counts / counts.sum()).sub(1 / 8).abs().max() < 0.03


def test_biased_policy_sends_long_prompts_to_the_big_model(swebench_sim):
    result, out = swebench_sim
    spec = json.loads((out / "policy.json").read_text())["policy"]
    assert spec["name"] == "biased" and spec["large"] == "expensive"
    cands = list(result.candidates)
    k = len(cands)
    big = cands.index(spec["large_model"])
    assert big == int(np.argmax(result.table.cost_usd.mean(axis=0)))
    lengths = np.array([len(p) for p in result.table.prompts["prompt"]])
    long = lengths > spec["long_threshold_chars"]
    assert 0.4 < long.mean() < 0.6  # the median splits the prompts
    dist = result.action_dist
    np.testing.assert_allclose(dist[long, big], 0.7 + 0.3 * 0.2 / k)
    # short prompts go to their team's habit with 0.8 + 0.2 / K
    teams = _calls(out).set_index("prompt_id").loc[result.prompt_ids, "team"].to_numpy()
    habit = np.array([cands.index(spec["habits"][t]) for t in teams])
    rows = np.flatnonzero(~long)
    np.testing.assert_allclose(dist[rows, habit[rows]], 0.8 + 0.2 / k)
    assert big not in set(habit.tolist())
    # and what was logged follows: most long prompts went to the big model
    chosen_big = result.action == big
    assert 0.6 < chosen_big[long].mean() < 0.8 and chosen_big[~long].mean() < 0.05
    assert dist.min() == pytest.approx(0.3 * 0.2 / k)  # every model keeps some support


def test_biased_policy_can_target_the_strongest_model():
    result = simulate(SWEBENCH, "biased:0.9:strongest", seed=0)
    big = int(np.argmax(result.table.outcome.mean(axis=0)))
    assert result.policy_spec["large_model"] == result.candidates[big]
    assert result.action_dist[:, big].max() == pytest.approx(0.9 + 0.1 * 0.2 / 5)


@pytest.mark.parametrize("method", ["epsilon", "softmax"])
def test_bundle_policies_explore_around_the_served_choice(method, bundle_dir, small_logs):
    """The distribution is serving's own: the bundle's scores (BundleScorer) at its
    default knobs, then epsilon-greedy or softmax over every candidate."""
    spec = f"{method}:{bundle_dir}:{0.2 if method == 'epsilon' else 0.05}"
    result = simulate(small_logs["test"], spec, seed=0)
    bundle = load_bundle(bundle_dir)
    assert result.candidates == tuple(sorted(bundle.candidate_names))
    scorer = BundleScorer(bundle)
    texts = [str(p) for p in result.table.prompts["prompt"]]
    scores = scorer.score_texts(texts)
    order = [bundle.candidate_names.index(c) for c in result.candidates]
    # What the policy ranks by: the bundle's reference anchor included.
    params = policy_params(bundle.policy, candidates=bundle.candidate_names)
    u = decision_utility(scores.p_success, scores.expected_cost_usd, params)
    u = u[:, order]
    dist = result.action_dist
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    k = len(result.candidates)
    if method == "epsilon":
        greedy = np.argmax(u, axis=1)
        np.testing.assert_allclose(dist[np.arange(len(dist)), greedy], 1 - 0.2 + 0.2 / k)
        np.testing.assert_allclose(np.sort(dist, axis=1)[:, :-1], 0.2 / k)
    else:
        expected = np.exp((u - u.max(axis=1, keepdims=True)) / 0.05)
        np.testing.assert_allclose(dist, expected / expected.sum(axis=1, keepdims=True), atol=1e-9)
    assert result.policy_spec["router_version"] == bundle.router_version
    assert result.policy_spec["exploration"]["method"] == method


def test_a_bundle_policy_needs_the_bundle_to_know_every_candidate(bundle_dir):
    with pytest.raises(ValueError, match=r"does not route to \['gemma-2-9b-it'"):
        simulate(ROUTEPROFILE, f"epsilon:{bundle_dir}:0.1")


def test_cli_runs_end_to_end_and_drops_propensity(tmp_path, capsys):
    out = tmp_path / "sim"
    code = main(
        [
            "simulate",
            "--logs",
            str(ROUTEPROFILE),
            "--policy",
            "human",
            "--out",
            str(out),
            "--seed",
            "2",
            "--drop-propensity",
            "--candidates",
            "gemma-2-9b-it,llama-3.3-70b-instruct,qwen2.5-7b-instruct",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n_calls"] == 600 and printed["has_propensity"] is False
    assert printed["policy"]["spec"] == "human"
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    calls = _calls(out)
    assert "propensity" not in calls.columns
    assert set(calls["model"]) <= {"gemma-2-9b-it", "llama-3.3-70b-instruct", "qwen2.5-7b-instruct"}
    # the hidden distribution is still written, for checks
    assert pd.read_parquet(out / "logging_distribution.parquet").shape == (600, 4)
    summary = json.loads((out / "summary.json").read_text())
    assert summary == {k: v for k, v in printed.items() if k != "out"}


def test_same_seed_same_files(tmp_path):
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        main(
            [
                "simulate",
                "--logs",
                str(SWEBENCH),
                "--policy",
                "biased",
                "--out",
                str(tmp_path / name),
                "--seed",
                str(seed),
            ]
        )
    for file in OUTPUT_FILES:
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    other = (tmp_path / "c" / "calls.jsonl").read_bytes()
    assert (tmp_path / "a" / "calls.jsonl").read_bytes() != other


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bandit", "Unknown logging policy 'bandit'"),
        ("uniform:3", "uniform takes no parameters"),
        ("epsilon:0.1", r"expected epsilon:BUNDLE:NUMBER"),
        ("epsilon:bundle:2", r"epsilon must be in \(0, 1\]"),
        ("softmax:bundle:-1", "temperature must be a finite number > 0"),
        ("softmax:bundle:hot", "could not convert string to float"),
        ("biased:1.5", r"long_share must be in \[0, 1\]"),
    ],
)
def test_bad_policy_specs_say_what_is_expected(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_policy(spec)


def test_policies_parse_to_their_classes():
    assert isinstance(parse_policy("uniform"), UniformPolicy)
    assert parse_policy("epsilon:/a:b/bundle:0.3") == EpsilonGreedyPolicy("/a:b/bundle", 0.3)
    assert parse_policy("softmax:b:0.1") == SoftmaxPolicy("b", 0.1)
    assert parse_policy("human", random_state=5) == BiasedHumanPolicy(random_state=5)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--start", "last tuesday", "start must be an ISO 8601 date-time"),
        ("--teams", "12", r"n_teams must be in \[1, 8\]"),
        ("--session-calls", "0.5", r"mean_session_calls must be in \[1, max_session_calls\]"),
        ("--task-affinity", "2", r"task_affinity must be in \[0, 1\]"),
        ("--retry-share", "-0.1", r"retry_share must be in \[0, 1\]"),
        ("--candidates", "gpt-9", r"Candidates \['gpt-9'\] have no row"),
    ],
)
def test_bad_options_are_one_error_line(option, value, message, tmp_path, capsys):
    argv = ["simulate", "--logs", str(ROUTEPROFILE), "--policy", "uniform"]
    assert main([*argv, "--out", str(tmp_path / "sim"), option, value]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "sim").exists()


def test_biased_policy_refuses_an_unknown_big_model():
    with pytest.raises(ValueError, match="big model 'gpt-9' is not a candidate"):
        simulate(SWEBENCH, "biased:0.7:gpt-9")


def test_a_log_that_is_not_full_information_is_refused(tmp_path, shipped_calls):
    one_each = shipped_calls.drop_duplicates("prompt_id")
    path = tmp_path / "bandit.parquet"
    one_each.to_parquet(path, index=False)
    with pytest.raises(ValueError, match="needs a full-information log"):
        simulate(path, "uniform")


@pytest.mark.parametrize("which", ["routeprofile_sim", "swebench_sim"])
def test_grade_turns_the_simulated_events_back_into_the_true_outcomes(which, request, tmp_path):
    """The round trip a user runs: simulate, then `outcome-router grade` on what it wrote,
    once every attribution window has closed, gives each call its model's true outcome."""
    from training.cli import main

    _, out = request.getfixturevalue(which)
    last_event = max(pd.Timestamp(e["timestamp"]) for e in _events(out))
    graded_path = tmp_path / "graded.parquet"
    code = main(
        [
            "grade",
            "--logs", str(out / "calls.jsonl"),
            "--events", str(out / "events.jsonl"),
            "--as-of", (last_event + pd.Timedelta(days=60)).isoformat(),
            "--out", str(graded_path),
        ]
    )  # fmt: skip
    assert code == 0
    graded = pd.read_parquet(graded_path).set_index("request_id")
    truth = _true_outcome_of_calls(out)
    assert graded["outcome"].notna().all()
    pd.testing.assert_series_equal(
        graded["outcome"].sort_index(), truth.sort_index(), check_names=False
    )

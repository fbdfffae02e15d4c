"""`outcome-router report spend` (issue 11, section 3): a small hand-written log whose
figures are worked out by hand below, the shipped SWE-bench table, and a simulated
gateway log graded with --events and estimated with --bundle.

The page (spend.html) is another module's; these tests read spend.json and the CSVs.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from features.call_log import read_call_logs
from features.prices import PriceCatalog
from training import cli
from training.report.spend import METRIC_KEYS, SpendSettings, aggregate_spend
from training.report.spend_counterfactual import estimate_counterfactual

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CALLS = ROOT / "data" / "swebench_verified" / "calls.parquet"

# Default catalog prices (USD per token) the hand-worked figures use:
# gpt-4o: input 2.5e-6, cache read 1.25e-6, output 1e-5
# claude-haiku-4-5: input 1e-6, cache read 1e-7, cache write 1.25e-6, output 5e-6
GPT4O_SAVING = 2.5e-6 - 1.25e-6
HAIKU_SAVING = 1e-6 - 1e-7


def _call(rid, model, ts, prompt, **kw):
    return {"request_id": rid, "model": model, "timestamp": ts, "prompt": prompt, **kw}


#: Three teams (payments, search, mobile) and one call with no team, user or price.
#: Session A (payments, gpt-4o) grows 1000 -> 4000 input tokens without a fresh start,
#: a3 re-sends a2's context with no cache read (cold), a4 is pending.
#: Session B (search, haiku) grows 5000 -> 9000, starts fresh at b3 (1000 < 0.5 x
#: 9000), and b4 re-sends b3's context cold.
#: c1 is retried by c2 (same user, near-identical prompt 2 minutes later); c2 and c3
#: are pending; d1 is a model the catalog does not price, failed.
HAND_LOG = [
    # a1: 1000 x 2.5e-6 + 100 x 1e-5 = 0.0035 (logged)
    _call("a1", "gpt-4o", "2026-03-01T10:00:00Z", "Read paginate.py and explain it",
          session_id="A", user="ana", team="payments", task="code-fix",
          input_tokens=1000, output_tokens=100, cost_usd=0.0035, outcome=1),
    # a2: no cost_usd, computed: 1100 x 2.5e-6 + 900 x 1.25e-6 + 100 x 1e-5 = 0.004875
    _call("a2", "gpt-4o", "2026-03-01T10:01:00Z", "Now find the off-by-one bug there",
          session_id="A", user="ana", team="payments", task="code-fix",
          input_tokens=2000, cached_input_tokens=900, output_tokens=100, outcome=1),
    # a3: cold re-send of a2's 2000 tokens: 3000 x 2.5e-6 + 100 x 1e-5 = 0.0085
    _call("a3", "gpt-4o", "2026-03-01T10:02:00Z", "Write the fix as a unified diff",
          session_id="A", user="ana", team="payments", task="code-fix",
          input_tokens=3000, cached_input_tokens=0, output_tokens=100, cost_usd=0.0085,
          outcome=0),
    # a4: warm (2900 >= 0.5 x 3000): 1100 x 2.5e-6 + 2900 x 1.25e-6 + 0.001 = 0.007375
    _call("a4", "gpt-4o", "2026-03-01T10:03:00Z", "Add a regression test for it",
          session_id="A", user="ana", team="payments", task="code-fix",
          input_tokens=4000, cached_input_tokens=2900, output_tokens=100, cost_usd=0.007375),
    _call("b1", "claude-haiku-4-5", "2026-03-01T11:00:00Z", "Summarise the search ranking doc",
          session_id="B", user="ben", team="search", task="summary",
          input_tokens=5000, cache_write_tokens=4000, output_tokens=200, cost_usd=0.007,
          outcome=1),
    _call("b2", "claude-haiku-4-5", "2026-03-01T11:05:00Z", "List its open questions as bullets",
          session_id="B", user="ben", team="search", task="summary",
          input_tokens=9000, cached_input_tokens=4000, cache_write_tokens=4000,
          output_tokens=200, cost_usd=0.0074, outcome=1),
    _call("b3", "claude-haiku-4-5", "2026-03-01T11:10:00Z", "New topic: what is BM25?",
          session_id="B", user="ben", team="search", task="summary",
          input_tokens=1000, output_tokens=100, cost_usd=0.0015, outcome=0.3),
    _call("b4", "claude-haiku-4-5", "2026-03-01T11:11:00Z", "And how does it handle stopwords",
          session_id="B", user="ben", team="search", task="summary",
          input_tokens=1500, cached_input_tokens=0, output_tokens=100, cost_usd=0.002,
          outcome=1),
    _call("c1", "openai/gpt-oss-20b", "2026-03-01T12:00:00Z", "Write a haiku about rain",
          user="chen", team="mobile", input_tokens=50, output_tokens=20, cost_usd=0.0001,
          outcome=1),
    _call("c2", "openai/gpt-oss-20b", "2026-03-01T12:02:00Z", "write a haiku about rain!",
          user="chen", team="mobile", input_tokens=52, output_tokens=20, cost_usd=0.0002),
    _call("c3", "openai/gpt-oss-20b", "2026-03-02T15:00:00Z", "Translate the release notes",
          user="chen", team="mobile", input_tokens=1000, output_tokens=50, cost_usd=0.0003),
    _call("d1", "mystery-model", "2026-03-02T09:00:00Z", "Hello?",
          input_tokens=100, output_tokens=10, outcome=0),
]  # fmt: skip

A_SPEND = 0.0035 + 0.004875 + 0.0085 + 0.007375
B_SPEND = 0.007 + 0.0074 + 0.0015 + 0.002
C_SPEND = 0.0001 + 0.0002 + 0.0003
INPUT = 1000 + 2000 + 3000 + 4000 + 5000 + 9000 + 1000 + 1500 + 50 + 52 + 1000 + 100
CACHED = 900 + 2900 + 4000
GRADED_SPEND = 0.0035 + 0.004875 + 0.0085 + 0.007 + 0.0074 + 0.0015 + 0.002 + 0.0001
HAND_TOTAL = {
    "calls": 12,
    "spend_usd": A_SPEND + B_SPEND + C_SPEND,
    "input_tokens": INPUT,
    "output_tokens": 400 + 600 + 20 + 20 + 50 + 10,
    "cached_input_tokens": CACHED,
    "cache_write_tokens": 8000,
    "cache_hit_rate": CACHED / INPUT,
    "cache_saved_usd": (900 + 2900) * GPT4O_SAVING + 4000 * HAIKU_SAVING,
    "graded_calls": 9,  # a1 a2 a3 b1 b2 b3 b4 c1 d1
    "good_outcomes": 6,  # a1 a2 b1 b2 b4 c1
    "cost_per_good_outcome_usd": GRADED_SPEND / 6,
    "wasted_usd": 0.0085 + 0.0015 + 0.0 + 0.0001,  # failed a3 b3 d1 (unpriced), retried c1
    "retried_calls": 1,
    "failed_calls": 3,
    "graded_spend_usd": GRADED_SPEND,
    "unpriced_calls": 1,
}


@pytest.fixture(scope="module")
def hand_log(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hand") / "calls.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in HAND_LOG))
    return path


@pytest.fixture(scope="module")
def hand_report(hand_log, tmp_path_factory) -> tuple[dict, Path, str]:
    out = tmp_path_factory.mktemp("hand-report")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(["report", "spend", "--logs", str(hand_log), "--out", str(out)])
    assert code == 0
    return json.loads((out / "spend.json").read_text()), out, printed.getvalue()


def _approx(expected: dict) -> dict:
    return {k: pytest.approx(v) if isinstance(v, float) else v for k, v in expected.items()}


def test_totals_match_the_hand_worked_figures(hand_report):
    spend, _, _ = hand_report
    assert list(spend["total"]) == list(METRIC_KEYS)
    assert spend["total"] == _approx(HAND_TOTAL)
    assert spend["currency"] == "USD"
    assert spend["window"] == {"start": "2026-03-01T10:00:00Z", "end": "2026-03-02T15:00:00Z"}
    assert spend["counterfactual"] is None


def test_groups_split_the_totals_and_name_missing_values(hand_report):
    spend, _, _ = hand_report
    teams = {row["team"]: row for row in spend["by"]["team"]}
    assert [row["team"] for row in spend["by"]["team"]] == [
        "payments",
        "search",
        "mobile",
        "(none)",
    ]  # by spend, most first
    assert teams["payments"]["spend_usd"] == pytest.approx(A_SPEND)
    assert teams["payments"]["wasted_usd"] == pytest.approx(0.0085)
    assert teams["payments"]["cache_hit_rate"] == pytest.approx(3800 / 10000)
    assert teams["search"]["cost_per_good_outcome_usd"] == pytest.approx(B_SPEND / 3)
    assert teams["mobile"]["retried_calls"] == 1
    assert teams["mobile"]["cost_per_good_outcome_usd"] == pytest.approx(0.0001)
    assert teams["(none)"]["unpriced_calls"] == 1
    assert teams["(none)"]["cost_per_good_outcome_usd"] is None  # no good outcome
    for name in ("team", "user", "model", "task", "day"):
        rows = spend["by"][name]
        assert sum(r["calls"] for r in rows) == 12, name
        assert sum(r["spend_usd"] for r in rows) == pytest.approx(HAND_TOTAL["spend_usd"])
        assert all(set(r) == {name, *METRIC_KEYS} for r in rows)
    days = {row["day"]: row["calls"] for row in spend["by"]["day"]}
    assert days == {"2026-03-01": 10, "2026-03-02": 2}
    models = {row["model"]: row for row in spend["by"]["model"]}
    assert models["gpt-4o"]["cache_saved_usd"] == pytest.approx(3800 * GPT4O_SAVING)
    assert models["mystery-model"]["spend_usd"] == 0.0
    mix = {(r["day"], r["model"]): r["calls"] for r in spend["model_mix"]}
    assert mix == {
        ("2026-03-01", "gpt-4o"): 4,
        ("2026-03-01", "claude-haiku-4-5"): 4,
        ("2026-03-01", "openai/gpt-oss-20b"): 2,
        ("2026-03-02", "openai/gpt-oss-20b"): 1,
        ("2026-03-02", "mystery-model"): 1,
    }


def test_sessions_context_growth_and_cold_cache(hand_report):
    spend, _, _ = hand_report
    by_spend = spend["sessions"]["by_spend"]
    assert [s["session_id"] for s in by_spend] == ["A", "B"]
    assert by_spend[0] == _approx(
        {
            "session_id": "A",
            "user": "ana",
            "team": "payments",
            "calls": 4,
            "spend_usd": A_SPEND,
            "good_outcomes": 2,
            "first": "2026-03-01T10:00:00Z",
            "last": "2026-03-01T10:03:00Z",
        }
    )
    growth = spend["sessions"]["by_context_growth"]
    assert [s["session_id"] for s in growth] == ["B", "A"]
    b, a = growth
    # B: 5000 -> 9000 over 2 turns, then a fresh start at b3 (1000 < 0.5 x 9000)
    assert (b["start_input_tokens"], b["end_input_tokens"], b["growth_tokens"]) == (
        5000,
        9000,
        4000,
    )
    assert b["turns_without_fresh_start"] == 2 and b["calls"] == 4
    assert b["run_spend_usd"] == pytest.approx(0.007 + 0.0074)
    assert (a["growth_tokens"], a["turns_without_fresh_start"]) == (3000, 4)
    cold = spend["cold_cache"]
    a3_extra = 2000 * GPT4O_SAVING  # a2's prompt read from the cache
    b4_extra = 1000 * HAIKU_SAVING  # b3's prompt
    assert cold["resends"] == 2 and cold["sessions"] == 2
    assert cold["spend_usd"] == pytest.approx(0.0085 + 0.002)
    assert cold["extra_usd"] == pytest.approx(a3_extra + b4_extra)
    assert cold["top"] == [
        {"session_id": "A", "model": "gpt-4o", "resends": 1, "extra_usd": pytest.approx(a3_extra)},
        {
            "session_id": "B",
            "model": "claude-haiku-4-5",
            "resends": 1,
            "extra_usd": pytest.approx(b4_extra),
        },
    ]


def test_csvs_and_printed_summary(hand_report):
    _, out, printed = hand_report
    summary = json.loads(printed)
    assert summary["total"]["spend_usd"] == pytest.approx(HAND_TOTAL["spend_usd"])
    assert summary["spend_json"] == str(out / "spend.json")
    assert (out / "spend.html").exists()
    with (out / "by_team.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["team"] for r in rows] == ["payments", "search", "mobile", "(none)"]
    assert float(rows[0]["spend_usd"]) == pytest.approx(A_SPEND)
    assert rows[3]["cost_per_good_outcome_usd"] == ""  # null
    for name in summary["csv"]:
        assert (out / name).exists(), name
    with (out / "sessions_by_context_growth.csv").open() as handle:
        assert [r["session_id"] for r in csv.DictReader(handle)] == ["B", "A"]
    with (out / "model_mix.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 5


def test_settings_change_what_counts_as_a_fresh_start(hand_log):
    frame = read_call_logs(hand_log).frame
    from training.report_command import calls_table

    table = calls_table(frame, [False] * len(frame))
    strict = aggregate_spend(table, PriceCatalog.load(), SpendSettings(fresh_start_fraction=1.0))
    # every drop is a fresh start now: B's best run is still 5000 -> 9000
    growth = {s["session_id"]: s for s in strict["sessions"]["by_context_growth"]}
    assert growth["B"]["growth_tokens"] == 4000
    top1 = aggregate_spend(table, PriceCatalog.load(), SpendSettings(top=1))
    assert len(top1["sessions"]["by_spend"]) == 1 and len(top1["cold_cache"]["top"]) == 1
    with pytest.raises(ValueError, match="fresh_start_fraction must be in"):
        SpendSettings(fresh_start_fraction=0)
    with pytest.raises(ValueError, match="needs a 'model' column"):
        aggregate_spend(pa.table({"request_id": ["x"]}), PriceCatalog.load())


def test_source_cost_is_reported_beside_the_recomputed_one():
    table = pa.table(
        {
            "request_id": ["1", "2", "3"],
            "model": ["gpt-4o", "gpt-4o", "claude-haiku-4-5"],
            "cost_usd": [0.01, 0.02, 0.005],
            "source_cost_usd": [0.015, 0.02, None],
        }
    )
    figures = aggregate_spend(table, PriceCatalog.load())
    source = figures["source_cost"]
    assert source["calls"] == 2
    assert source["source_spend_usd"] == pytest.approx(0.035)
    assert source["recomputed_spend_usd"] == pytest.approx(0.03)
    assert source["difference_usd"] == pytest.approx(0.005)
    assert [r["model"] for r in source["by_model"]] == ["gpt-4o"]
    assert figures["window"] == {"start": None, "end": None}


def test_as_of_without_events_is_refused(hand_log, tmp_path, capsys):
    argv = ["report", "spend", "--logs", str(hand_log), "--out", str(tmp_path)]
    assert cli.main([*argv, "--as-of", "2026-03-05T00:00:00Z"]) == 2
    assert "give --events too" in capsys.readouterr().err


def test_swebench_table_totals(tmp_path, capsys):
    cut = pd.read_parquet(SHIPPED_CALLS).iloc[:300]
    path = tmp_path / "calls.parquet"
    cut.to_parquet(path, index=False)
    out = tmp_path / "report"
    assert cli.main(["report", "spend", "--logs", str(path), "--out", str(out)]) == 0
    spend = json.loads((out / "spend.json").read_text())
    total = spend["total"]
    assert total["calls"] == 300
    assert total["spend_usd"] == pytest.approx(cut["cost_usd"].sum())
    assert total["input_tokens"] == int(cut["input_tokens"].sum())
    assert total["good_outcomes"] == int((cut["outcome"] >= 0.5).sum())
    failed = cut["outcome"] < 0.5
    assert total["wasted_usd"] == pytest.approx(cut.loc[failed, "cost_usd"].sum())
    models = {r["model"]: r["spend_usd"] for r in spend["by"]["model"]}
    assert models == pytest.approx(cut.groupby("model")["cost_usd"].sum().to_dict())
    assert {r["team"] for r in spend["by"]["team"]} == set(cut["team"])
    assert spend["sessions"] == {"by_spend": [], "by_context_growth": []}  # no sessions
    assert spend["window"] == {"start": None, "end": None}


# ------------------------------------------------------- simulated gateway log, --bundle
@pytest.fixture(scope="module")
def tiny_bundle(small_logs, static_encoder_dir, tmp_path_factory) -> Path:
    """A bundle trained fast: static encoder, one logistic setting, no MLflow."""
    out = tmp_path_factory.mktemp("spend-bundle") / "bundle"
    argv = ["train", "--logs", str(small_logs["train"]), "--out", str(out)]
    argv += ["--encoder", "static", "--learner", "logistic-C0.0003", "--no-mlflow"]
    argv += ["--folds", "2", "--cv-max-prompts", "60"]
    assert cli.main(argv) == 0
    return out


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Path:
    """A gateway log simulated from the shipped table (uniform logging, propensities)."""
    out = tmp_path_factory.mktemp("gateway")
    argv = ["simulate", "--logs", str(SHIPPED_CALLS), "--policy", "uniform", "--out", str(out)]
    assert cli.main([*argv, "--seed", "0"]) == 0
    return out


def test_simulated_gateway_with_events_and_bundle(gateway, tiny_bundle, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "report"
    argv = ["report", "spend", "--logs", str(gateway / "calls.jsonl"), "--out", str(out)]
    argv += ["--events", str(gateway / "events.jsonl"), "--as-of", "2026-03-01T00:00:00Z"]
    argv += ["--bundle", str(tiny_bundle), "--n-bootstrap", "100"]
    assert cli.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    spend = json.loads((out / "spend.json").read_text())
    calls = pd.read_json(gateway / "calls.jsonl", lines=True)
    total = spend["total"]
    assert total["calls"] == len(calls)
    assert total["spend_usd"] == pytest.approx(calls["cost_usd"].sum())
    assert spend["grading"]["graded"] == total["graded_calls"] > 0
    assert sum(r["calls"] for r in spend["by"]["user"]) == len(calls)
    assert len(spend["by"]["day"]) > 1 and spend["window"]["start"].startswith("2026-01-05")
    cf = spend["counterfactual"]
    assert cf["estimator"] == "dr"  # the simulated log carries propensities
    assert cf["propensity_source"] == "logged"
    assert cf["calls"] == total["graded_calls"]
    assert cf["traffic_calls"] == len(calls)
    for key in ("quality", "spend_usd"):
        interval = cf["router"][key]
        assert interval["low"] <= interval["estimate"] <= interval["high"], key
    per_call = cf["router"]["cost_per_call_usd"]["estimate"]
    assert cf["router"]["spend_usd"]["estimate"] == pytest.approx(per_call * len(calls))
    assert cf["logged"]["spend_usd"] == pytest.approx(
        cf["logged"]["cost_per_call_usd"] * len(calls)
    )
    assert cf["ess"] > 0
    assert printed["counterfactual"]["router"]["spend_usd"] == cf["router"]["spend_usd"]


def test_counterfactual_warns_when_the_logs_cannot_support_it(gateway, tiny_bundle):
    frame = read_call_logs(gateway / "calls.jsonl").frame  # no outcomes: not graded
    pending = estimate_counterfactual(tiny_bundle, frame, n_bootstrap=50).to_dict()
    assert pending["estimator"] is None and pending["calls"] == 0
    assert pending["router"]["quality"] is None
    assert any("cannot be estimated" in w for w in pending["warnings"])
    one = frame[frame["model"] == frame["model"].iloc[0]].assign(outcome=1.0)
    single = estimate_counterfactual(tiny_bundle, one, n_bootstrap=50).to_dict()
    assert single["estimator"] is None and single["calls"] == len(one)
    assert any("one model" in w for w in single["warnings"])


def test_events_grade_first_and_retries_count_as_waste(hand_log, tmp_path, capsys):
    events = tmp_path / "events.jsonl"
    retry = {"timestamp": "2026-03-01T11:12:00Z", "event": "retry", "request_id": "b4"}
    events.write_text(json.dumps(retry) + "\n")
    out = tmp_path / "report"
    argv = ["report", "spend", "--logs", str(hand_log), "--events", str(events)]
    assert cli.main([*argv, "--as-of", "2026-04-01T00:00:00Z", "--out", str(out)]) == 0
    total = json.loads((out / "spend.json").read_text())["total"]
    # b4 (retry event) and c1 (retried in the log) are graded 0: retried and failed
    assert total["retried_calls"] == 2
    assert total["good_outcomes"] == 4  # a1 a2 b1 b2
    assert total["failed_calls"] == 5  # a3 b3 d1 b4 c1
    assert total["wasted_usd"] == pytest.approx(0.0085 + 0.0015 + 0.002 + 0.0001)
    assert total["graded_calls"] == 9
    assert not (out / "events-quarantine.jsonl").exists()


def test_an_unreadable_log_is_one_error_line(tmp_path, capsys):
    log = tmp_path / "calls.jsonl"
    log.write_text(json.dumps({"request_id": "r1", "prompt": "hi"}) + "\n")
    assert cli.main(["report", "spend", "--logs", str(log), "--out", str(tmp_path / "o")]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith(f"error: {log}: ") and "`model`" in last


def test_a_prompt_less_spend_log_reports_source_cost_and_no_estimate(tiny_bundle, tmp_path, capsys):
    """LiteLLM spend logs keep no prompt: the report reads them; the estimate says why not."""
    fixture = ROOT / "tests" / "features" / "fixtures" / "litellm_spend" / "spend_logs.csv"
    calls = tmp_path / "calls.jsonl"
    assert cli.main(["import", "litellm-spend", str(fixture), "--out", str(calls)]) == 0
    imported = json.loads(capsys.readouterr().out)
    out = tmp_path / "report"
    argv = ["report", "spend", "--logs", str(calls), "--out", str(out)]
    assert cli.main([*argv, "--bundle", str(tiny_bundle), "--n-bootstrap", "50"]) == 0
    spend = json.loads((out / "spend.json").read_text())
    source = spend["source_cost"]
    assert source["calls"] == imported["calls_written"]
    assert source["source_spend_usd"] == pytest.approx(imported["source_spend_usd"])
    assert source["recomputed_spend_usd"] == pytest.approx(spend["total"]["spend_usd"])
    # the report's difference is what the source stated minus what the tokens cost
    assert source["difference_usd"] == pytest.approx(
        source["source_spend_usd"] - source["recomputed_spend_usd"]
    )
    assert source["difference_usd"] > 0  # LiteLLM overstated the cached Anthropic call
    assert source["by_model"][0]["model"] == "claude-sonnet-4-5"  # the largest difference
    cf = spend["counterfactual"]
    assert cf["estimator"] is None and cf["calls"] == 0
    assert cf["left_out"]["no_prompt"] == imported["calls_written"]
    assert any("carry no prompt" in w for w in cf["warnings"])


def test_a_wrong_bundle_fails_before_the_work(hand_log, tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["report", "spend", "--logs", str(hand_log), "--out", str(out)]
    assert cli.main([*argv, "--bundle", str(tmp_path / "nothing")]) == 2
    assert "No manifest.json" in capsys.readouterr().err
    assert not out.exists()

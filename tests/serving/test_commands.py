"""``outcome-router route`` and ``serve``, called through their argparse parsers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.batch_routing import route_file
from serving.bundle import BundleError, load_bundle
from serving.commands import add_route_parser, add_serve_parser
from serving.config import Settings

PROMPTS = [
    {"prompt_id": "p1", "prompt": "What is the capital of France?"},
    {
        "prompt_id": 2,
        "messages": [{"role": "user", "content": "Prove that sqrt(2) is irrational."}],
    },
    {
        "prompt_id": "p3",
        "messages": [
            {"role": "system", "content": "You are a senior engineer."},
            {"role": "user", "content": [{"type": "text", "text": "Fix this race condition."}]},
        ],
    },
    {"prompt_id": "p4", "prompt": "def f(x):\n    return x +\n# SyntaxError: invalid syntax"},
    {"prompt_id": "p5", "prompt": "Translate 'good morning' to Japanese.", "extra": "ignored"},
]


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="outcome-router")
    sub = root.add_subparsers(dest="command", required=True)
    add_route_parser(sub)
    add_serve_parser(sub)
    return root


def write_jsonl(path: Path, rows: list, blank_lines: bool = False) -> Path:
    lines = [json.dumps(r) if not isinstance(r, str) else r for r in rows]
    if blank_lines:
        lines.insert(1, "")
    path.write_text("\n".join(lines) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def prompts_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "prompts.jsonl", PROMPTS, blank_lines=True)


def test_route_writes_one_decision_per_prompt_in_order(bundle_dir, prompts_file, tmp_path, capsys):
    out = tmp_path / "out" / "decisions.jsonl"
    argv = ["--bundle", str(bundle_dir), "--input", str(prompts_file), "--out", str(out)]
    args = parser().parse_args(["route", *argv, "--batch-size", "2"])
    assert args.func(args) == 0
    assert f"Routed {len(PROMPTS)} prompts" in capsys.readouterr().out
    rows = read_jsonl(out)
    assert [r["prompt_id"] for r in rows] == [p["prompt_id"] for p in PROMPTS]
    bundle = load_bundle(bundle_dir)
    value = bundle.policy["value_usd"]
    # The reference model (if the target anchored the policy to one) ranks with its
    # utility raised by value_usd * reference_margin (serving.policy.PolicyParams).
    reference = bundle.policy.get("reference_model")
    bonus = value * (bundle.policy.get("reference_margin") or 0.0)
    for row in rows:
        assert [s["model"] for s in row["scores"]] == list(bundle.candidate_names)
        assert set(row["scores"][0]) == {"model", "p_success", "expected_cost_usd", "utility"}
        best = max(
            row["scores"],
            key=lambda s: (
                value * s["p_success"]
                - s["expected_cost_usd"]
                + (bonus if s["model"] == reference else 0.0),
                -s["expected_cost_usd"],
            ),
        )
        assert row["model"] == best["model"]
        assert row["reason"] == "max_utility" and row["propensity"] == 1.0
    assert not list(out.parent.glob("*.tmp"))


def test_route_agrees_with_the_service(bundle_dir, prompts_file, tmp_path):
    # Batched and threaded offline, one request at a time online: the scores must
    # still match, since every text is encoded on its own (features.encoder).
    out = tmp_path / "decisions.jsonl"
    route_file(bundle_dir, prompts_file, out, value_usd=0.05, batch_size=3, workers=2)
    rows = {r["prompt_id"]: r for r in read_jsonl(out)}
    settings = Settings(bundle=str(bundle_dir), time_budget_ms=60_000)
    with TestClient(create_app(settings)) as client:
        for prompt in PROMPTS:
            request = {k: v for k, v in prompt.items() if k in ("prompt", "messages")}
            served = client.post("/route", json={**request, "value_usd": 0.05}).json()
            offline = rows[prompt["prompt_id"]]
            assert (served["model"], served["reason"], served["propensity"]) == (
                offline["model"],
                offline["reason"],
                offline["propensity"],
            )
            for s_served, s_offline in zip(served["scores"], offline["scores"], strict=True):
                assert s_served["p_success"] == pytest.approx(s_offline["p_success"], abs=1e-6)
                assert s_served["expected_cost_usd"] == pytest.approx(
                    s_offline["expected_cost_usd"], rel=1e-6
                )


def test_route_knobs_change_decisions(bundle_dir, prompts_file, tmp_path):
    free = route_file(bundle_dir, prompts_file, tmp_path / "a.jsonl", value_usd=0.0)
    rows = read_jsonl(tmp_path / "a.jsonl")
    for row in rows:
        assert row["model"] == min(row["scores"], key=lambda s: s["expected_cost_usd"])["model"]
    assert sum(free.values()) == len(PROMPTS)
    top = max(s["p_success"] for row in rows for s in row["scores"])
    assert top < 1.0
    route_file(bundle_dir, prompts_file, tmp_path / "b.jsonl", min_success=(top + 1) / 2)
    for row in read_jsonl(tmp_path / "b.jsonl"):
        assert row["reason"] == "no_candidate_met_constraints"
        assert row["model"] == max(row["scores"], key=lambda s: s["p_success"])["model"]


BAD_LINES = [
    ("not json", "{oops", "not valid JSON"),
    ("not an object", "[1, 2]", "expected a JSON object"),
    ("no prompt_id", json.dumps({"prompt": "hi"}), "prompt_id"),
    ("bool prompt_id", json.dumps({"prompt_id": True, "prompt": "hi"}), "prompt_id"),
    ("no text", json.dumps({"prompt_id": "x"}), "non-empty `prompt`"),
    ("empty prompt", json.dumps({"prompt_id": "x", "prompt": ""}), "non-empty `prompt`"),
    ("messages not a list", json.dumps({"prompt_id": "x", "messages": "hi"}), "messages"),
    ("duplicate prompt_id", json.dumps({"prompt_id": "p1", "prompt": "again"}), "repeats line 1"),
]


@pytest.mark.parametrize(
    ("line", "message"), [c[1:] for c in BAD_LINES], ids=[c[0] for c in BAD_LINES]
)
def test_route_reports_a_bad_line_with_its_number(bundle_dir, tmp_path, line, message):
    rows = [PROMPTS[0], PROMPTS[1], line, PROMPTS[2]]
    path = write_jsonl(tmp_path / "prompts.jsonl", rows)
    out = tmp_path / "decisions.jsonl"
    with pytest.raises(ValueError, match=r"prompts\.jsonl:3: ") as info:
        route_file(bundle_dir, path, out, batch_size=1)
    assert message in str(info.value)
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    "argv",
    [
        ["--value-usd", "-1"],
        ["--value-usd", "nan"],
        ["--min-success", "1.5"],
        ["--max-cost-usd", "0"],
        ["--batch-size", "0"],
    ],
)
def test_route_refuses_bad_knobs(argv, capsys):
    with pytest.raises(SystemExit, match=r"^2$"):  # argparse's usage-error exit code
        parser().parse_args(["route", "--bundle", "b", "--input", "i", "--out", "o", *argv])
    err = capsys.readouterr().err
    assert argv[0] in err and ("expects" in err or "positive integer" in err)


def test_route_refuses_a_missing_bundle(tmp_path, prompts_file):
    with pytest.raises(BundleError, match=r"No manifest\.json"):
        route_file(tmp_path / "nowhere", prompts_file, tmp_path / "out.jsonl")


def test_serve_refuses_a_registry_uri_without_a_store(tmp_path):
    args = parser().parse_args(
        ["serve", "--bundle", "models:/router@champion", "--mlruns", str(tmp_path / "mlruns")]
    )
    with pytest.raises(ValueError, match="No MLflow store at"):
        args.func(args)


def test_serve_refuses_a_broken_bundle(tmp_path):
    args = parser().parse_args(["serve", "--bundle", str(tmp_path)])
    with pytest.raises(BundleError, match=r"No manifest\.json"):
        args.func(args)


def test_serve_runs_uvicorn_in_process(bundle_dir, monkeypatch):
    import uvicorn

    calls = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.update(app=app, **kw))
    args = parser().parse_args(
        ["serve", "--bundle", str(bundle_dir), "--port", "8123", "--time-budget-ms", "20"]
    )
    assert args.func(args) == 0
    assert calls["host"] == "127.0.0.1" and calls["port"] == 8123
    assert "workers" not in calls
    with TestClient(calls["app"]) as client:
        assert client.get("/health").json()["status"] == "ok"


def test_serve_help_states_the_settings_defaults(capsys):
    with pytest.raises(SystemExit, match=r"^0$"):
        parser().parse_args(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    budget = Settings.model_fields["time_budget_ms"].default
    assert f"$OUTCOME_ROUTER_TIME_BUDGET_MS, else {budget:g})" in text
    assert Settings.model_fields["decision_log"].default is None
    assert "$OUTCOME_ROUTER_DECISION_LOG, else none)" in text
    assert Settings.model_fields["fallback_model"].default is None
    assert "$OUTCOME_ROUTER_FALLBACK_MODEL, else the bundle's policy.fallback_model)" in text


def test_serve_flags_override_the_environment(bundle_dir, monkeypatch):
    """The help says the flags default to the environment: check both directions."""
    import uvicorn

    calls = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.update(app=app))
    monkeypatch.setenv("OUTCOME_ROUTER_TIME_BUDGET_MS", "75")
    for argv, expected in (([], 75.0), (["--time-budget-ms", "20"], 20.0)):
        args = parser().parse_args(["serve", "--bundle", str(bundle_dir), *argv])
        assert args.func(args) == 0
        assert calls["app"].state.given_settings.time_budget_ms == expected

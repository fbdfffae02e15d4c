"""`outcome-router evaluate` end to end: a real bundle on held-out SWE-bench prompts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serving.bundle import load_bundle
from serving.policy import choose
from serving.scoring import BundleScorer
from serving.service import policy_params
from training.cli import main
from training.evaluation import FullInfoLog, curve_figures
from training.evaluation.results import Evaluation
from training.evaluation.run import evaluate

TOL = 1e-12


@pytest.fixture(scope="module")
def evaluated(bundle_dir: Path, small_logs: dict[str, Path], tmp_path_factory) -> dict:
    """The bundle evaluated once, compared with a copy of itself under another name."""
    root = tmp_path_factory.mktemp("evaluate")
    twin = root / "twin-bundle"
    shutil.copytree(bundle_dir, twin)
    result = evaluate(bundle_dir, [str(small_logs["test"])], root / "out", compare=[twin])
    return {"result": result, "out": root / "out", "twin": twin}


def _served_actions(bundle_dir: Path, frame: pd.DataFrame, log: FullInfoLog, allowed=None):
    """What `/route` decides on each prompt of ``log``, computed with serving's code only:
    the bundle's scorer on every candidate, its policy defaults, the allowed mask."""
    bundle = load_bundle(bundle_dir)
    firsts = frame.drop_duplicates("prompt_id").set_index("prompt_id")
    texts = [str(firsts.loc[pid, "prompt"]) for pid in log.prompt_ids]
    scores = BundleScorer(bundle).score_texts(texts)
    params = policy_params(bundle.policy, candidates=bundle.candidate_names)
    action, _ = choose(scores.p_success, scores.expected_cost_usd, params, allowed=allowed)
    names = [bundle.candidate_names[a] for a in action]
    return [log.candidates.index(n) for n in names]


def test_metrics_json_is_the_returned_evaluation(evaluated: dict) -> None:
    result, out = evaluated["result"], evaluated["out"]
    assert isinstance(result, Evaluation)
    assert json.loads((out / "metrics.json").read_text()) == result.to_dict()
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3
    assert result.summary.table[0].name == result.label
    assert result.n_quarantined == 0 and not (out / "quarantine.jsonl").exists()


def test_served_point_is_what_route_decides(
    evaluated: dict, bundle_dir: Path, small_logs: dict[str, Path]
) -> None:
    s = evaluated["result"].summary
    frame = pd.read_parquet(small_logs["test"])
    log, _ = FullInfoLog.from_frame(frame, s.candidates)
    action = _served_actions(bundle_dir, frame, log)
    rows = np.arange(log.n_prompts)
    assert s.default_point.quality == pytest.approx(log.outcome[rows, action].mean())
    assert s.default_point.cost_usd == pytest.approx(log.cost_usd[rows, action].mean())
    assert s.default_point.value_usd == load_bundle(bundle_dir).policy["value_usd"]


def test_figures_hold_their_definitions(evaluated: dict) -> None:
    result = evaluated["result"]
    s = result.summary
    assert s.n_prompts == 40 and s.candidates == load_bundle(result.bundle).candidate_names
    best, cheap, oracle = s.best_single, s.cheapest_single, s.oracle
    assert oracle.quality >= best.quality >= cheap.quality - TOL
    assert cheap.cost_usd == min(p.cost_usd for p in s.single_models)
    # No router point beats the oracle on quality; the oracle curve's area bounds the rest.
    assert max(p.quality for p in s.router_curve) <= oracle.quality + TOL
    assert 0.0 <= s.area <= s.area_oracle + TOL <= 1.0 + TOL
    assert s.area_single_models <= s.area_oracle + TOL
    # Savings recomputed from the curve, by definition.
    reaching = [p.cost_usd for p in s.router_curve if p.quality >= best.quality - 1e-9]
    expected = 1 - min(reaching) / best.cost_usd if reaching else None
    assert s.savings_at_parity == pytest.approx(expected)
    assert s.savings_at_parity is None or s.savings_at_parity < 1.0
    assert s.savings_at_95 is None or s.savings_at_95 >= (s.savings_at_parity or -np.inf)
    # The served point is one of the router's choices, with a share per candidate.
    assert sum(s.default_point.share.values()) == pytest.approx(1.0)
    assert sum(r.n for r in s.model_share) == s.n_prompts
    assert s.default_pair == (cheap.name, best.name)
    assert 0.0 <= s.cpt_50 <= s.cpt_80 <= 1.0
    assert s.oracle_pairs[0].apgr >= s.apgr - TOL
    assert set(s.calibration.candidates) == set(s.candidates)
    for name, q in result.prediction_quality.items():
        assert 0.0 <= q.brier <= 1.0, name
        assert q.mean_outcome == pytest.approx(s.single_models[s.candidates.index(name)].quality)


def test_compare_scores_the_same_router_identically(evaluated: dict) -> None:
    result = evaluated["result"]
    s = result.summary
    (comp,) = result.comparisons
    assert comp.label.startswith("twin-bundle")
    assert comp.router_version == result.router_version
    assert comp.row.figures == s.figures
    assert comp.row.apgr == pytest.approx(s.apgr)
    assert comp.row.quality == pytest.approx(s.default_point.quality)
    assert comp.summary.router_curve == s.router_curve
    assert comp.summary.calibration.pooled.ece == pytest.approx(s.calibration.pooled.ece)
    page = (evaluated["out"] / "report.html").read_text(encoding="utf-8")
    assert comp.label in page


def test_cli_evaluate_with_compare_pair_and_team_segments(
    evaluated: dict, bundle_dir: Path, small_logs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    calls = pd.read_parquet(small_logs["test"])
    first_half = sorted(calls["prompt_id"].unique())[: calls["prompt_id"].nunique() // 2]
    calls["team"] = calls["prompt_id"].isin(first_half).map({True: "part-a", False: "part-b"})
    logs = tmp_path / "tagged.parquet"
    calls.to_parquet(logs, index=False)
    weak, strong = "openai/gpt-oss-20b", evaluated["result"].summary.best_single.name
    code = main(
        [
            "evaluate",
            "--bundle",
            str(bundle_dir),
            "--logs",
            str(logs),
            "--out",
            str(tmp_path / "out"),
            "--compare",
            str(evaluated["twin"]),
            "--pair",
            f"{strong},{weak}",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["apgr"] == pytest.approx(evaluated["result"].summary.apgr)
    assert len(printed["comparisons"]) == 1
    s = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert [(p["weak"], p["strong"]) for p in s["pairs"]][1] == (weak, strong)
    assert [r["value"] for r in s["segments"]["team"]] == ["part-a", "part-b"]
    assert sum(r["n"] for r in s["segments"]["team"]) == s["n_prompts"]
    assert "by team" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")


def test_cli_rejects_a_bad_pair(
    bundle_dir: Path, small_logs: dict[str, Path], tmp_path, capsys
) -> None:
    args = ["evaluate", "--bundle", str(bundle_dir), "--logs", str(small_logs["test"])]
    assert main([*args, "--out", str(tmp_path), "--pair", "only-one"]) == 2
    assert "--pair takes two comma-separated models" in capsys.readouterr().err


# --- bad rows go through the one validated reader ---------------------------------------


def _plain(value):
    """numpy scalars as Python numbers, for json.dumps."""
    return value.item()


def test_bad_rows_are_quarantined_not_fatal(
    bundle_dir: Path, small_logs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    calls = pd.read_parquet(small_logs["test"])
    keep = sorted(calls["prompt_id"].unique())[:10]
    rows = calls[calls["prompt_id"].isin(keep)]
    logs = tmp_path / "calls.jsonl"
    with open(logs, "w", encoding="utf-8") as fh:
        for row in rows.to_dict(orient="records"):
            fh.write(json.dumps(row, default=_plain) + "\n")
        fh.write('{"request_id": "broken", "model": \n')  # not JSON
        merged = dict(rows.iloc[0], request_id="merged-1", outcome="merged")
        fh.write(json.dumps(merged, default=_plain) + "\n")
    out = tmp_path / "out"
    code = main(["evaluate", "--bundle", str(bundle_dir), "--logs", str(logs), "--out", str(out)])
    assert code == 0
    assert "2 rows quarantined" in capsys.readouterr().err
    quarantined = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    assert len(quarantined) == 2
    # The reasons are the reader's own (features.call_log); they name the fault.
    (merged_row,) = [q for q in quarantined if q.get("request_id") == "merged-1"]
    (broken,) = [q for q in quarantined if q is not merged_row]
    assert "json" in broken["quarantine_reason"].lower()
    reason = merged_row["quarantine_reason"]
    assert "merged" in reason or "outcome" in reason
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_quarantined"] == 2 and metrics["n_prompts"] == 10


# --- --candidates: the bundle restricted as a request's `candidates` restricts it --------


def test_candidates_restrict_the_served_policy(
    bundle_dir: Path, small_logs: dict[str, Path], tmp_path: Path
) -> None:
    bundle = load_bundle(bundle_dir)
    wanted = ["openai/gpt-oss-20b", "MiniMaxAI/MiniMax-M2"]
    result = evaluate(bundle_dir, [str(small_logs["test"])], tmp_path, candidates=wanted)
    s = result.summary
    assert set(s.candidates) == set(wanted)
    assert s.candidates == tuple(c for c in bundle.candidate_names if c in wanted)
    assert result.bundle_candidates == bundle.candidate_names
    assert set(s.default_point.share) == set(wanted)
    frame = pd.read_parquet(small_logs["test"])
    log, _ = FullInfoLog.from_frame(frame, s.candidates)
    allowed = np.array([c in wanted for c in bundle.candidate_names])
    action = _served_actions(bundle_dir, frame, log, allowed=allowed)
    rows = np.arange(log.n_prompts)
    assert s.default_point.quality == pytest.approx(log.outcome[rows, action].mean())
    assert s.default_point.cost_usd == pytest.approx(log.cost_usd[rows, action].mean())
    figures = curve_figures(
        [p.cost_usd for p in s.router_curve],
        [p.quality for p in s.router_curve],
        s.best_single,
        s.area_cost_range,
    )
    assert figures == s.figures


def test_unknown_candidates_name_the_bundles(
    bundle_dir: Path, small_logs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    bundle = load_bundle(bundle_dir)
    with pytest.raises(ValueError, match=r"Unknown candidates \['nope'\].*routes between"):
        evaluate(bundle_dir, [str(small_logs["test"])], tmp_path, candidates=["nope"])
    args = ["evaluate", "--bundle", str(bundle_dir), "--logs", str(small_logs["test"])]
    assert main([*args, "--out", str(tmp_path), "--candidates", "nope,openai/gpt-oss-20b"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and all(name in err for name in bundle.candidate_names)
    assert main([*args, "--out", str(tmp_path), "--candidates", " , "]) == 2
    assert "--candidates takes comma-separated model names" in capsys.readouterr().err


def test_logs_without_a_candidate_ask_for_candidates(
    bundle_dir: Path, small_logs: dict[str, Path], tmp_path: Path
) -> None:
    calls = pd.read_parquet(small_logs["test"])
    logs = tmp_path / "four.parquet"
    calls[calls["model"] != "openai/gpt-oss-120b"].to_parquet(logs, index=False)
    with pytest.raises(ValueError, match=r"'openai/gpt-oss-120b'\].*pass --candidates"):
        evaluate(bundle_dir, [str(logs)], tmp_path / "out")

"""The HTML report and metrics.json, built from a real full-information log."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from training.evaluation import FullInfoLog, router_curve, summarize, value_grid
from training.report import cost_quality_figure, write_report

OWN_RUNS = Path("/work/shared/data/swebench_verified/own_runs_tokens.csv.gz")
# One illustrative price for every model (USD per million input, output tokens).
PRICE_IN, PRICE_OUT = 0.30, 1.20
VOID = {"meta", "img", "br", "hr", "link", "input"}


@pytest.fixture(scope="module")
def summary() -> dict:
    raw = pd.read_csv(OWN_RUNS)
    frame = pd.DataFrame(
        {
            "prompt_id": raw["instance_id"],
            "model": raw["model"],
            "outcome": raw["resolved"].astype(float),
            "cost_usd": (raw["input_tokens"] * PRICE_IN + raw["output_tokens"] * PRICE_OUT) / 1e6,
            "task": raw["instance_id"].str.split("__").str[0],
        }
    )
    log, _ = FullInfoLog.from_frame(frame)
    p, c = log.outcome, log.cost_usd  # a perfect predictor
    curve = router_curve(log, p, c, value_grid(log, n=24))
    return summarize(log, curve, default_value_usd=2.0, p_success=p, expected_cost_usd=c)


class _Checker(HTMLParser):
    """Collects images and checks that non-void tags are balanced."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_writes_html_with_numbers_and_image(summary: dict, tmp_path: Path) -> None:
    extra = {"cheapest-first": [{"cost_usd": 0.1, "quality": 0.2}, {"cost_usd": 1, "quality": 0.5}]}
    path = write_report(summary, tmp_path / "out", title="eval <b>&", extra_curves=extra)
    assert path == tmp_path / "out" / "report.html"
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")

    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    # The cost-quality plot, the two-model plot and the reliability plot.
    assert len(checker.images) == 3
    prefix = "data:image/png;base64,"
    for image in checker.images:
        assert image.startswith(prefix)
        assert base64.b64decode(image[len(prefix) :])[:8] == b"\x89PNG\r\n\x1a\n"

    text = " ".join(checker.text)
    assert f"{100 * summary['savings_at_parity']:.1f}%" in text
    assert f"{100 * summary['savings_at_95']:.1f}%" in text
    assert f"{summary['area']:.3f}" in text and f"{summary['area_single_models']:.3f}" in text
    for model in summary["candidates"]:
        assert model in text
    assert "by task" in text and "django" in text
    # The title is escaped, not interpreted.
    assert "eval &lt;b&gt;&amp;" in page and "<b>" not in page


def test_metrics_json_round_trips(summary: dict, tmp_path: Path) -> None:
    write_report(summary, tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text()) == summary


def test_report_without_segments_or_default(summary: dict, tmp_path: Path) -> None:
    bare = {
        k: v
        for k, v in summary.items()
        if k not in {"segments", "default_point", "pairs", "calibration", "model_share"}
    }
    bare["savings_at_parity"] = None
    page = write_report(bare, tmp_path).read_text(encoding="utf-8")
    assert "n/a" in page and "Segments" not in page
    assert "Calibration" not in page and "Two-model routing" not in page


def test_report_sections_apgr_share_calibration(summary: dict, tmp_path: Path) -> None:
    checker = _Checker()
    checker.feed(write_report(summary, tmp_path).read_text(encoding="utf-8"))
    text = " ".join(checker.text)
    for heading in (
        "Routers and baselines",
        "Two-model routing (RouteLLM)",
        "Model share at the default policy",
        "Calibration",
        "Reliability bins (pooled)",
    ):
        assert heading in text
    pair = summary["pairs"][0]
    assert f"{pair['apgr']:.3f}" in text
    assert f"{100 * pair['cpt_50']:.1f}%" in text and f"{100 * pair['cpt_80']:.1f}%" in text
    for name in ("random", "cheapest", "strongest", "oracle"):
        assert name in text
    assert f"{summary['calibration']['pooled']['ece']:.3f}" in text


def _comparison(summary: dict, label: str, scale: float) -> dict:
    """A compared router: the same curve at ``scale`` times the cost."""
    curve = [
        {"value_usd": p["value_usd"], "quality": p["quality"], "cost_usd": scale * p["cost_usd"]}
        for p in summary["router_curve"]
    ]
    return {
        "label": label,
        "bundle": f"/tmp/{label}",
        "router_version": "0" * 16,
        "candidates": summary["candidates"],
        "note": "",
        "row": {**summary["table"][0], "name": label, "area": 0.123456},
        "router_curve": curve,
        "default_point": summary["default_point"],
        "pairs": summary["pairs"][:1],
        "calibration": {"ece": 0.0, "brier": 0.0, "n": 1},
    }


def test_plot_draws_every_curve_and_baseline(summary: dict) -> None:
    s = dict(summary, label="mine", comparisons=[_comparison(summary, "knn-bundle", 2.0)])
    extra = {"hand-made": [{"cost_usd": 0.1, "quality": 0.2}]}
    fig = cost_quality_figure(s, {**extra, "knn-bundle": s["comparisons"][0]["router_curve"]})
    _, labels = fig.axes[0].get_legend_handles_labels()
    expected = [
        "oracle curve",
        "mine (envelope)",
        "hand-made",
        "knn-bundle",
        "single models",
        "random (expected)",
        f"cheapest: {summary['cheapest_single']['name']}",
        f"strongest: {summary['best_single']['name']}",
        "oracle",
    ]
    for label in expected:
        assert label in labels
    assert any(label.startswith("served (value $") for label in labels)


def test_comparisons_appear_in_table_and_plot(summary: dict, tmp_path: Path) -> None:
    s = dict(summary, comparisons=[_comparison(summary, "mlp <bundle>", 3.0)])
    page = write_report(s, tmp_path).read_text(encoding="utf-8")
    checker = _Checker()
    checker.feed(page)
    text = " ".join(checker.text)
    assert "mlp <bundle>" in text and "mlp &lt;bundle&gt;" in page
    assert "0.123" in text  # the compared row's area
    assert "Compared: mlp <bundle>." in text
    assert json.loads((tmp_path / "metrics.json").read_text())["comparisons"][0]["label"] == (
        "mlp <bundle>"
    )

"""The HTML report and metrics.json, built from a real full-information log."""

from __future__ import annotations

import base64
import dataclasses
import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from serving.policy import PolicyParams
from training.evaluation import (
    CurvePoint,
    FullInfoLog,
    Point,
    Summary,
    router_curve,
    summarize,
    value_grid,
)
from training.evaluation.results import Comparison, Evaluation
from training.report import cost_quality_figure, write_report

OWN_RUNS = Path("/work/shared/data/swebench_verified/own_runs_tokens.csv.gz")
# One illustrative price for every model (USD per million input, output tokens).
PRICE_IN, PRICE_OUT = 0.30, 1.20
VOID = {"meta", "img", "br", "hr", "link", "input"}


@pytest.fixture(scope="module")
def summary() -> Summary:
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
    return summarize(
        log, curve, policy=PolicyParams(value_usd=2.0), p_success=p, expected_cost_usd=c
    )


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


def test_report_writes_html_with_numbers_and_image(summary: Summary, tmp_path: Path) -> None:
    extra = {"cheapest-first": [Point("a", cost_usd=0.1, quality=0.2), Point("b", 0.5, 1.0)]}
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
    assert f"{100 * summary.savings_at_parity:.1f}%" in text
    assert f"{100 * summary.savings_at_95:.1f}%" in text
    assert f"{summary.area:.3f}" in text and f"{summary.area_single_models:.3f}" in text
    for model in summary.candidates:
        assert model in text
    assert "by task" in text and "django" in text
    # The title is escaped, not interpreted.
    assert "eval &lt;b&gt;&amp;" in page and "<b>" not in page


def test_metrics_json_round_trips(summary: Summary, tmp_path: Path) -> None:
    write_report(summary, tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text()) == summary.to_dict()


def test_report_without_segments_or_default(summary: Summary, tmp_path: Path) -> None:
    bare = dataclasses.replace(
        summary,
        segments=None,
        default_point=None,
        model_share=None,
        pairs=None,
        oracle_pairs=None,
        default_pair=None,
        calibration=None,
        figures=dataclasses.replace(summary.figures, savings_at_parity=None),
    )
    page = write_report(bare, tmp_path).read_text(encoding="utf-8")
    assert "n/a" in page and "Segments" not in page
    assert "Calibration" not in page and "Two-model routing" not in page


def test_report_sections_apgr_share_calibration(summary: Summary, tmp_path: Path) -> None:
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
    pair = summary.pairs[0]
    assert f"{pair.apgr:.3f}" in text
    assert f"{100 * pair.cpt_50:.1f}%" in text and f"{100 * pair.cpt_80:.1f}%" in text
    for name in ("random", "cheapest", "strongest", "oracle"):
        assert name in text
    assert f"{summary.calibration.pooled.ece:.3f}" in text


def _comparison(summary: Summary, label: str, scale: float) -> Comparison:
    """A compared router: the same curve at ``scale`` times the cost."""
    curve = tuple(
        CurvePoint(p.value_usd, p.quality, scale * p.cost_usd, p.share)
        for p in summary.router_curve
    )
    row = dataclasses.replace(
        summary.table[0],
        name=label,
        figures=dataclasses.replace(summary.table[0].figures, area=0.123456),
    )
    return Comparison(
        label=label,
        bundle=f"/tmp/{label}",
        router_version="0" * 16,
        note="",
        row=row,
        summary=dataclasses.replace(summary, router_curve=curve),
    )


def _evaluation(summary: Summary, comparisons: tuple[Comparison, ...]) -> Evaluation:
    return Evaluation(
        summary=summary,
        label="mine",
        router_version="1" * 16,
        bundle="/tmp/mine",
        bundle_candidates=summary.candidates,
        n_prompts_dropped=0,
        n_quarantined=0,
        prediction_quality={},
        comparisons=comparisons,
    )


def test_plot_draws_every_curve_and_baseline(summary: Summary) -> None:
    comp = _comparison(summary, "knn-bundle", 2.0)
    extra = {"hand-made": [Point("x", quality=0.2, cost_usd=0.1)]}
    fig = cost_quality_figure(
        summary, {**extra, "knn-bundle": comp.summary.router_curve}, label="mine"
    )
    _, labels = fig.axes[0].get_legend_handles_labels()
    expected = [
        "oracle curve",
        "mine (envelope)",
        "hand-made",
        "knn-bundle",
        "single models",
        "random (expected)",
        f"cheapest: {summary.cheapest_single.name}",
        f"strongest: {summary.best_single.name}",
        "oracle",
    ]
    for label in expected:
        assert label in labels
    assert any(label.startswith("served (value $") for label in labels)


def test_comparisons_appear_in_table_and_plot(summary: Summary, tmp_path: Path) -> None:
    evaluation = _evaluation(summary, (_comparison(summary, "mlp <bundle>", 3.0),))
    page = write_report(evaluation, tmp_path).read_text(encoding="utf-8")
    checker = _Checker()
    checker.feed(page)
    text = " ".join(checker.text)
    assert "mlp <bundle>" in text and "mlp &lt;bundle&gt;" in page
    assert "0.123" in text  # the compared row's area
    assert "Compared: mlp <bundle>." in text
    assert "Router version 1111111111111111." in text
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == evaluation.to_dict()
    assert metrics["comparisons"][0]["label"] == "mlp <bundle>"
    assert metrics["comparisons"][0]["row"]["area"] == 0.123456

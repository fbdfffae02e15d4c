"""The HTML report and metrics.json, built from a real full-information log."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from training.evaluation import FullInfoLog, router_curve, summarize, value_grid
from training.report import write_report

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
    assert len(checker.images) == 1
    prefix = "data:image/png;base64,"
    assert checker.images[0].startswith(prefix)
    assert base64.b64decode(checker.images[0][len(prefix) :])[:8] == b"\x89PNG\r\n\x1a\n"

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
    bare = {k: v for k, v in summary.items() if k not in {"segments", "default_point"}}
    bare["savings_at_parity"] = None
    page = write_report(bare, tmp_path).read_text(encoding="utf-8")
    assert "n/a" in page and "Segments" not in page

"""spend.html opened in a real headless Chromium (Debian's, driven by Playwright).

The page is built from a hand-written spend.json (fixtures/spend.json: 3 teams, 4 users,
3 models, 5 days, sessions, a router estimate) that follows the contract of
``outcome-router report spend``. ``make test`` installs /usr/bin/chromium; without it
these tests fail with the command that installs it (Playwright's own browser download
is never used: the machine may have no internet).
"""

from __future__ import annotations

import copy
import json
import re
import struct
from pathlib import Path

import pytest

from training.report.spend_page import render_spend_html, spend_images, write_spend_page

FIXTURE = Path(__file__).parent / "fixtures" / "spend.json"
CHROMIUM = Path("/usr/bin/chromium")
# No GPU, no network of its own, no first-run or update chatter: a quiet, offline browser.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TABLES = [
    "model-mix",
    "by-team",
    "by-user",
    "by-model",
    "by-task",
    "by-day",
    "cold-cache",
    "sessions-by-spend",
    "sessions-by-growth",
    "source-by-model",
    "counterfactual",
]
HOSTILE_TEAM = "<img src=x onerror=alert(1)>"
HOSTILE_USER = "</script><script>alert(2)</script>"
MATHTEXT_MODEL = "gpt-$\\frac{1}{0}"  # an unbalanced mathtext would crash a naive plot


@pytest.fixture
def spend() -> dict:
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test needs Debian's chromium. "
            "`make test` installs it; by hand: apt-get install -y --no-install-recommends chromium"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class Opened:
    """A page opened in the browser with every console error, page error and dialog kept."""

    def __init__(self, browser, path: Path) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        self.page.on("dialog", self._dialog)
        self.page.goto(path.as_uri(), wait_until="load")

    def _console(self, msg) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text}")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def column(self, table_id: str, header: str) -> list[str]:
        """The ``data-v`` (or text) of one column, top to bottom, as the page shows it."""
        return self.page.evaluate(
            """([id, header]) => {
                const t = document.getElementById(id);
                const col = [...t.tHead.rows[0].cells].findIndex(h => h.textContent === header);
                if (col < 0) { throw new Error("no header " + header + " in " + id); }
                return [...t.tBodies[0].rows].map(r => {
                    const c = r.cells[col];
                    return c.hasAttribute("data-v") ? c.getAttribute("data-v") : c.textContent;
                });
            }""",
            [table_id, header],
        )

    def click_header(self, table_id: str, header: str) -> str:
        th = self.page.locator(f"#{table_id} thead th", has_text=re.compile(f"^{header}$"))
        th.click()
        return th.get_attribute("aria-sort")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_fixture_follows_the_spend_json_contract(spend):
    total_keys = {
        "calls",
        "spend_usd",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "cache_write_tokens",
        "cache_hit_rate",
        "cache_saved_usd",
        "graded_calls",
        "good_outcomes",
        "cost_per_good_outcome_usd",
        "wasted_usd",
        "retried_calls",
        "failed_calls",
    }
    assert set(spend["total"]) == total_keys
    sizes = {k: len(v) for k, v in spend["by"].items()}
    assert sizes == {"team": 3, "user": 4, "model": 3, "task": 3, "day": 5}
    for key, rows in spend["by"].items():
        assert all(set(r) == total_keys | {key} for r in rows)
        assert sum(r["calls"] for r in rows) == spend["total"]["calls"]
        assert sum(r["spend_usd"] for r in rows) == pytest.approx(
            spend["total"]["spend_usd"], abs=0.01
        )
    mix = spend["model_mix"]
    assert sum(r["spend_usd"] for r in mix) == pytest.approx(spend["total"]["spend_usd"], abs=0.01)
    source = spend["source_cost"]
    assert source["difference_usd"] == pytest.approx(
        source["source_spend_usd"] - source["recomputed_spend_usd"], abs=1e-4
    )
    router_spend = spend["counterfactual"]["router"]["spend_usd"]
    assert router_spend["low"] < router_spend["estimate"] < router_spend["high"]


def test_page_renders_in_chromium_with_its_plots_and_tables(spend, browser, tmp_path):
    path = write_spend_page(spend, tmp_path)
    assert path == tmp_path / "spend.html"
    html = path.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the page must work offline"
    opened = Opened(browser, path)
    page = opened.page

    images = page.evaluate(
        "[...document.images].map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert [alt for alt, *_ in images] == [
        "spend per day, stacked by model",
        "spend and good outcomes per team",
        "router against logged spend and quality",
        "cache hit rate per model",
    ]
    for alt, complete, width, height in images:
        assert complete and width > 0 and height > 0, alt
    for table_id in TABLES:
        assert page.locator(f"table#{table_id}").count() == 1, table_id
    # One body row per grouping value; the total sits in tfoot, out of the sorting.
    for key, rows in spend["by"].items():
        assert page.locator(f"#by-{key} tbody tr").count() == len(rows)
        assert page.locator(f"#by-{key} tfoot td").first.inner_text() == "total"
    assert page.locator("#sessions-by-spend tbody tr").count() == 10

    router = page.locator("#router ~ table#counterfactual")
    assert router.count() == 1
    text = page.locator("body").inner_text()
    assert "$5.52" in text and "[$4.70, $6.51] vs logged $9.04" in text
    assert "effective sample size 31.6 is below 50" in text
    assert "3db8520ce53047dc" in text
    assert "+$1.35" in text  # source vs recomputed, signed
    assert "$9.32 over 85 calls bought 49 good outcomes ($0.148 each)" in text
    assert "Most spend by team: payments (66.3%, $0.195 per good outcome)" in text
    assert "2026-11-23 11:10 to 2026-11-27 16:25 UTC" in text
    first_calls = opened.column("sessions-by-spend", "first call (UTC)")
    assert first_calls[0] == "2026-11-26 10:10"

    shot = tmp_path / "spend.png"
    page.screenshot(path=str(shot), full_page=True)
    width, height = _png_size(shot.read_bytes())
    assert width == 1280 and height > 3000  # the whole page, not the first screen
    assert not page.locator("table#model-mix").is_visible()  # folded under the plot
    page.locator("details summary").click()
    assert page.locator("table#model-mix").is_visible()
    page.close()
    assert opened.errors == []


def test_numeric_header_sorts_rows_by_value_both_ways(spend, browser, tmp_path):
    opened = Opened(browser, write_spend_page(spend, tmp_path))
    cached = [r["cached_input_tokens"] for r in spend["by"]["team"]]
    shown = sorted((f"{c / 1e3:.3g}k" if c < 1e6 else f"{c / 1e6:.3g}M") for c in cached)
    # Sorting the shown text ("1.52M" < "711k" < "909k") would give another order.
    assert [float(v[:-1]) * (1e6 if v.endswith("M") else 1e3) for v in shown] != sorted(cached)

    assert opened.click_header("by-team", "cached input") == "descending"
    assert [float(v) for v in opened.column("by-team", "cached input")] == sorted(
        cached, reverse=True
    )
    assert opened.click_header("by-team", "cached input") == "ascending"
    assert [float(v) for v in opened.column("by-team", "cached input")] == sorted(cached)
    # The other columns moved with their rows.
    by_cached = sorted(spend["by"]["team"], key=lambda r: r["cached_input_tokens"])
    assert opened.column("by-team", "team") == [r["team"] for r in by_cached]

    spends = [r["spend_usd"] for r in spend["sessions"]["by_spend"]]
    assert opened.click_header("sessions-by-spend", "spend") == "descending"
    assert [float(v) for v in opened.column("sessions-by-spend", "spend")] == sorted(
        spends, reverse=True
    )
    assert opened.click_header("sessions-by-spend", "spend") == "ascending"
    assert [float(v) for v in opened.column("sessions-by-spend", "spend")] == sorted(spends)

    assert opened.click_header("by-user", "user") == "ascending"  # text: A to Z first
    assert opened.column("by-user", "user") == sorted(r["user"] for r in spend["by"]["user"])
    assert opened.errors == []


def test_untrusted_names_are_shown_as_text_and_never_run(spend, browser, tmp_path):
    spend = copy.deepcopy(spend)
    spend["by"]["team"][0]["team"] = HOSTILE_TEAM
    spend["by"]["user"][0]["user"] = HOSTILE_USER
    spend["by"]["model"][0]["model"] = MATHTEXT_MODEL
    spend["model_mix"][0]["model"] = MATHTEXT_MODEL
    spend["sessions"]["by_spend"][0]["team"] = HOSTILE_TEAM
    opened = Opened(browser, write_spend_page(spend, tmp_path))
    page = opened.page
    page.wait_for_timeout(200)  # an injected onerror would have fired by now
    assert opened.dialogs == []
    assert opened.errors == []
    assert page.locator("#by-team tbody td.l", has_text=HOSTILE_TEAM).count() == 1
    assert page.locator("#by-user tbody td.l", has_text=HOSTILE_USER).count() == 1
    assert page.locator("#by-model tbody td.l", has_text=MATHTEXT_MODEL).count() == 1
    assert page.evaluate("document.querySelectorAll('script').length") == 1
    assert page.evaluate("document.images.length") == 4


def empty_spend() -> dict:
    """What ``report spend`` writes for logs with no calls in the window and no bundle."""
    zero_total = {
        "calls": 0,
        "spend_usd": 0.0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "cache_hit_rate": None,
        "cache_saved_usd": 0.0,
        "graded_calls": 0,
        "good_outcomes": 0,
        "cost_per_good_outcome_usd": None,
        "wasted_usd": 0.0,
        "retried_calls": 0,
        "failed_calls": 0,
    }
    return {
        "generated_at": "2026-11-30T08:00:00Z",
        "logs": ["logs/empty.parquet"],
        "window": {"start": None, "end": None},
        "currency": "USD",
        "total": zero_total,
        "by": {"team": [], "user": [], "model": [], "task": [], "day": []},
        "sessions": {"by_spend": [], "by_context_growth": []},
        "cold_cache": {"resends": 0, "spend_usd": 0.0, "extra_usd": 0.0, "top": []},
        "model_mix": [],
        "source_cost": {
            "calls": 0,
            "source_spend_usd": 0.0,
            "recomputed_spend_usd": 0.0,
            "difference_usd": 0.0,
            "by_model": [],
        },
        "counterfactual": None,
    }


def test_empty_lists_and_no_router_say_none(browser, tmp_path):
    opened = Opened(browser, write_spend_page(empty_spend(), tmp_path))
    page = opened.page
    assert opened.errors == []
    assert page.evaluate("document.images.length") == 0
    assert page.locator("table").count() == 0
    for table_id in TABLES:
        assert page.locator(f"p.none#{table_id}").inner_text().startswith("none"), table_id
    nones = page.locator("p.none").all_inner_texts()
    assert len(nones) == len(TABLES) + 3  # and three plots (the router has one note)
    assert "--bundle BUNDLE" in page.locator("#counterfactual").inner_text()
    assert page.locator(".card .v").all_inner_texts()[:2] == ["$0.00", "n/a"]
    text = page.locator("body").inner_text()
    assert "No calls in the window." in text
    assert "the logs state no spend of their own" in text
    assert "None" not in text and "nan" not in text


def test_extra_keys_become_columns_and_missing_ones_show_na(spend):
    spend = copy.deepcopy(spend)
    spend["by"]["model"][0]["p50_latency_ms"] = 812.5
    spend["by"]["model"][1]["provider"] = "anthropic"
    del spend["by"]["model"][2]["cache_saved_usd"]
    spend["by"]["project"] = [{"project": "checkout", "calls": 3, "spend_usd": 0.5}]
    spend["a_future_key"] = {"anything": [1, 2]}
    html = render_spend_html(spend, spend_images(spend))
    model_table = html.split('id="by-model"')[1].split("</table>")[0]
    assert '<th data-type="num" data-key="p50_latency_ms">p50 latency ms</th>' in model_table
    assert '<td data-v="812.5">812.5</td>' in model_table
    assert '<td class="l">anthropic</td>' in model_table
    assert '<td class="na" data-v="">n/a</td>' in model_table
    assert 'id="by-project"' in html and "checkout" in html


def test_plots_are_pngs_and_one_is_left_out_when_empty(spend):
    images = spend_images(spend)
    assert set(images) == {"spend_by_day", "team_value", "cache_by_model", "counterfactual"}
    for name, data in images.items():
        width, height = _png_size(data)
        assert width > 500 and height > 200, name
    spend["counterfactual"] = None
    spend["model_mix"] = []
    assert set(spend_images(spend)) == {"team_value", "cache_by_model"}


def test_figures_beyond_the_contract_are_shown(spend):
    """Keys `report spend` may add: optional columns, router extras, settings."""
    spend = copy.deepcopy(spend)
    for row in spend["by"]["team"]:
        row["graded_spend_usd"] = row["spend_usd"] / 2
    spend["sessions"]["by_context_growth"][0]["run_spend_usd"] = 0.75
    spend["window"] = {"start": None, "end": None}
    spend["cold_cache"]["sessions"] = 4
    cf = spend["counterfactual"]
    cf |= {"traffic_calls": 85, "left_out": {"no_prompt": 17, "no_cost": 0}, "confidence": 0.9}
    cf["logged"]["cost_per_call_usd"] = 0.0851
    cf["router"]["cost_per_call_usd"] = {"estimate": 0.0519, "low": 0.0443, "high": 0.0613}
    cf["router"]["quality"] = None  # an estimate that failed leaves nulls
    spend["settings"] = {"top": 20, "cold_cache_max_gap": "1 hour"}
    spend["calls_quarantined"] = 2
    html = render_spend_html(spend, spend_images(spend))
    team_table = html.split('id="by-team"')[1].split("</table>")[0]
    assert ">graded spend</th>" in team_table
    assert ">graded spend</th>" not in html.split('id="by-user"')[1].split("</table>")[0]
    assert ">spend in that run</th>" in html and "$0.750" in html
    assert "no timestamps in the logs" in html
    assert "would not have been spent with a warm cache, in 4 sessions" in html
    assert "on 68 graded calls of the 85 in the window" in html
    assert "left out (no prompt: 17)" in html
    assert "<th>90% low</th>" in html
    assert '<td class="l">cost per call</td><td>$0.0851</td><td>$0.0519</td>' in html
    assert '<td class="l">quality (mean outcome)</td><td>0.7206</td><td>n/a</td>' in html
    assert "<dt>settings</dt><dd>top: 20, cold_cache_max_gap: 1 hour</dd>" in html
    assert "<dt>calls quarantined</dt><dd>2</dd>" in html

"""`benchmarks/cache.py`: the provider cache it bills with, and a tiny run end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cache import STAND_INS, ProviderCaches, cost_at_quality, stand_in_prices
from features.prices import ModelPrice

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "cache.py"
CLAUDE = "llama-3.3-70b-instruct"  # priced as claude-haiku-4-5: write fee, 4,096 minimum
OPENAI = "mistral-small-24b-instruct-2501-bf16"  # priced as gpt-4.1-nano: no write fee


@pytest.fixture
def caches() -> ProviderCaches:
    prices = {m: ModelPrice.from_dict(e) for m, e in stand_in_prices().items()}
    return ProviderCaches(prices, {m: s.min_tokens for m, s in STAND_INS.items()}, ttl_s=300)


def test_a_claude_session_writes_then_reads_its_prefix(caches):
    """Worked bill at claude-haiku-4-5's prices: input 1e-6, output 5e-6, read 1e-7,
    write 1.25e-6 USD per token."""
    cost, read, written = caches.call("s", CLAUDE, 5000, 100, at=0.0)
    assert (read, written) == (0.0, 5000.0)
    assert cost == pytest.approx(5000 * 1.25e-6 + 100 * 5e-6)
    cost, read, written = caches.call("s", CLAUDE, 6000, 100, at=60.0)
    assert (read, written) == (5000.0, 1000.0)
    assert cost == pytest.approx(5000 * 1e-7 + 1000 * 1.25e-6 + 100 * 5e-6)
    # Expired: 301 s after its last use the prefix is gone and written again.
    _, read, written = caches.call("s", CLAUDE, 7000, 100, at=361.0)
    assert (read, written) == (0.0, 7000.0)


def test_openai_reads_without_a_write_fee_and_short_prompts_are_not_cached(caches):
    cost, read, written = caches.call("s", OPENAI, 800, 10, at=0.0)  # below 1,024
    assert (read, written) == (0.0, 0.0)
    _, read, _ = caches.call("s", OPENAI, 1500, 10, at=10.0)
    assert read == 0.0  # nothing was cached at 800 tokens
    cost, read, written = caches.call("s", OPENAI, 2000, 10, at=20.0)
    assert (read, written) == (1500.0, 0.0)
    assert cost == pytest.approx(1500 * 2.5e-8 + 500 * 1e-7 + 10 * 4e-7)
    _, read, _ = caches.call("other session", OPENAI, 2000, 10, at=30.0)
    assert read == 0.0


def test_cost_at_quality_interpolates_on_the_curve():
    curve = [(0.6, 1.0), (0.5, 0.5), (0.7, 3.0)]
    assert cost_at_quality(curve, 0.55) == pytest.approx(0.75)
    assert cost_at_quality(curve, 0.65) == pytest.approx(2.0)
    assert cost_at_quality(curve, 0.8) is None


def test_a_tiny_run_reports_both_routers_and_every_single_model(static_encoder_dir, tmp_path):
    out = tmp_path / "cache"
    run = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--max-prompts",
            "120",
            "--sessions",
            "6",
            "--max-turns",
            "5",
            "--learner",
            "logistic-C0.003",
            "--folds",
            "2",
            "--n-boot",
            "50",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads((out / "cache.json").read_text())
    policies = [row["policy"] for row in result["rows"]]
    assert policies[:2] == ["cache-blind x1", "cache-aware x1"]
    assert policies[3] == f"always {result['best_single_model']}"
    assert policies[2] == "size-aware, cache-blind"
    assert len(policies) == 3 + len(STAND_INS)
    assert result["sessions"] == 6 and 6 * 3 <= result["turns"] <= 6 * 5
    for row in result["rows"]:
        assert row["turns"] == result["turns"]
        assert row["cost_usd"] > 0 and 0 <= row["quality"] <= 1
        assert row["quality_ci"][0] <= row["quality"] <= row["quality_ci"][1]
    assert result["cost_ratio_aware_to_blind"] == pytest.approx(
        result["rows"][1]["cost_usd"] / result["rows"][0]["cost_usd"]
    )
    assert len(result["sweep"]["cache-aware"]) == 5
    assert "| cache-aware x1 |" in run.stdout
    assert (out / "cache.md").read_text().strip() == run.stdout.strip()

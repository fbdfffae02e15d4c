"""`outcome-router import claude-code`: Claude Code transcripts -> call log, on the
hand-written project folder of fixtures/claude_code (features/importers/claude_code.py).

The fixture is one session of ``~/.claude/projects/-home-ana-src-payments``: a user
ask, one response streamed as three lines (thinking, text, tool_use) that repeat one
``message.id`` and ``requestId`` and write the cache with a 1-hour lifetime, a tool
result, a response from an older Claude Code that states ``costUSD``, a
``<synthetic>`` line, an ``isMeta`` caveat, a second ask answered by Haiku; and one
subagent file whose first line replays the parent's second response under a new
``requestId``, then gets its own task and answers it, and whose last line was cut off
mid-write.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from features.call_log import read_call_logs
from features.importers.claude_code import import_claude_code
from features.prices import PriceCatalog
from training.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "claude_code"
PROJECT = FIXTURE / "projects" / "-home-ana-src-payments"
SESSION = "5d0c1b7e-8f2a-4c3e-9b1a-2f6e7d8c9a01"

#: Prices of the fixture's models as LiteLLM's catalog lists them (USD per token).
CATALOG = {
    "claude-sonnet-4-5-20250929": {
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_read_input_token_cost": 3e-07,
        "cache_creation_input_token_cost": 3.75e-06,
        "cache_creation_input_token_cost_above_1hr": 6e-06,
    },
    "claude-haiku-4-5-20251001": {
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 5e-06,
        "cache_read_input_token_cost": 1e-07,
        "cache_creation_input_token_cost": 1.25e-06,
        "cache_creation_input_token_cost_above_1hr": 2e-06,
    },
}

# The worked bill. Anthropic's input_tokens leaves cache reads and writes out; ours
# counts them: input = input_tokens + cache_read + cache_creation.
#   req_..01 (sonnet, streamed; the last chunk's usage): 4 fresh, 8000 reads, 12000 written
#       with a 1-hour lifetime, 340 out:
#       4 * 3e-6 + 8000 * 3e-7 + 12000 * 6e-6 + 340 * 1.5e-5
#       = 0.000012 + 0.0024 + 0.072 + 0.0051                          = 0.079512
#   req_..02 (sonnet, costUSD 0.0152): 6 fresh, 20000 reads, 1500 written (no breakdown:
#       5 minutes), 220 out:
#       6 * 3e-6 + 20000 * 3e-7 + 1500 * 3.75e-6 + 220 * 1.5e-5
#       = 0.000018 + 0.006 + 0.005625 + 0.0033                        = 0.014943
#   req_..03 (haiku): 10 fresh, 50 out: 10 * 1e-6 + 50 * 5e-6         = 0.00026
#   req_..04 (haiku, subagent): 8 fresh, 3000 reads, 2000 written (5 minutes), 150 out:
#       8 * 1e-6 + 3000 * 1e-7 + 2000 * 1.25e-6 + 150 * 5e-6
#       = 0.000008 + 0.0003 + 0.0025 + 0.00075                        = 0.003558
BILL = {
    "req_011CAbCdEf0000000000001": (20004, 8000, 12000, 12000, 340, 0.079512),
    "req_011CBcDeFg0000000000002": (21506, 20000, 1500, 0, 220, 0.014943),
    "req_011CCdEfGh0000000000003": (10, 0, 0, 0, 50, 0.00026),
    "req_011CSdEfGh0000000000004": (5008, 3000, 2000, 0, 150, 0.003558),
}
TOKENS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
)


@pytest.fixture
def prices() -> PriceCatalog:
    return PriceCatalog.from_entries(CATALOG)


@pytest.fixture
def result(prices):
    return import_claude_code(FIXTURE, prices=prices)


def test_every_call_matches_the_worked_bill(result):
    calls = result.frame.set_index("request_id")
    assert sorted(calls.index) == sorted(BILL)
    for request_id, (*tokens, cost) in BILL.items():
        assert calls.loc[request_id, list(TOKENS)].tolist() == tokens, request_id
        assert calls.loc[request_id, "cost_usd"] == pytest.approx(cost, abs=1e-12), request_id
    summary = result.to_dict()
    assert summary["recomputed_spend_usd"] == pytest.approx(0.098273)
    # The transcript's own figure sits beside ours, on the one call that has it.
    assert calls["source_cost_usd"].dropna().to_dict() == {"req_011CBcDeFg0000000000002": 0.0152}
    assert summary["calls_stating_spend"] == {
        "calls": 1,
        "source_spend_usd": 0.0152,
        "recomputed_spend_usd": 0.014943,
    }
    assert set(calls["source"]) == {"claude-code"}


def test_streamed_chunks_and_sidechain_replays_are_counted_once(result):
    counts = result.counts
    assert counts["duplicates_collapsed"] == {"streamed_chunks": 2, "sidechain_replays": 1}
    assert counts["usage_lines"] == 8 and counts["synthetic_skipped"] == 1
    assert (counts["session_files"], counts["subagent_files"]) == (1, 1)
    calls = result.frame.set_index("request_id")
    # the streamed call starts at its first chunk; the replayed call stays the parent's
    assert calls.loc["req_011CAbCdEf0000000000001", "timestamp"] == "2026-01-09T10:00:05+00:00"
    assert not calls.loc["req_011CBcDeFg0000000000002", "is_sidechain"]
    assert "<synthetic>" not in set(calls["model"])


def test_subagent_calls_count_with_their_session_and_a_flag(result):
    calls = result.frame.set_index("request_id")
    assert calls["is_sidechain"].to_dict() == {
        "req_011CAbCdEf0000000000001": False,
        "req_011CBcDeFg0000000000002": False,
        "req_011CCdEfGh0000000000003": False,
        "req_011CSdEfGh0000000000004": True,
    }
    assert calls.loc["req_011CSdEfGh0000000000004", "agent_id"] == "a1b2c3d"
    assert set(calls["session_id"]) == {SESSION}
    assert result.counts["sidechain_calls"] == 1


def test_the_prompt_is_the_last_user_text_before_the_call(result):
    prompts = result.frame.set_index("request_id")["prompt"].to_dict()
    ask = "Fix the rounding bug in convert() and add a test for it"
    assert prompts == {
        "req_011CAbCdEf0000000000001": ask,
        "req_011CBcDeFg0000000000002": ask,  # a tool result is not a prompt
        "req_011CCdEfGh0000000000003": "Now run the tests",  # the isMeta caveat is not
        "req_011CSdEfGh0000000000004": (
            "Find every caller of convert() in the repository and list the files"
        ),
    }


def test_the_user_is_the_home_folder_of_the_sessions_cwd(result, tmp_path, prices):
    assert set(result.frame["user"]) == {"ana"}  # cwd /home/ana/src/payments
    assert result.frame["team"].isna().all()
    path = tmp_path / "s1.jsonl"
    lines = [_assistant(cwd="/workspace/app"), _assistant(cwd="/Users/bo/app", requestId="r2")]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    users = import_claude_code(path, prices=prices).frame["user"]
    assert users.isna().tolist() == [True, False] and users[1] == "bo"


def test_claude_codes_own_notices_are_not_prompts(tmp_path, prices):
    def user(text, **flags):
        return {"type": "user", "message": {"role": "user", "content": text}, **flags}

    lines = [
        user("Refactor the retry loop"),
        user("[Request interrupted by user for tool use]"),
        user("This session is being continued from a previous conversation", isCompactSummary=True),
        user("<command-name>/model</command-name>"),
        _assistant(),
    ]
    path = tmp_path / "s1.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    frame = import_claude_code(path, prices=prices).frame
    assert frame["prompt"].tolist() == ["Refactor the retry loop"]


def test_project_branch_and_attribution(prices):
    frame = import_claude_code(PROJECT, prices=prices, user="ana", team="payments").frame
    assert set(frame["project"]) == {"-home-ana-src-payments"}
    assert set(frame["git_branch"]) == {"fix-rounding"}
    assert set(frame["cwd"]) == {"/home/ana/src/payments"}
    assert (set(frame["user"]), set(frame["team"])) == ({"ana"}, {"payments"})
    assert frame["task"].isna().all()


def test_a_cut_off_line_is_quarantined_not_dropped(result):
    (bad,) = result.quarantined
    assert bad["quarantine_reason"].startswith("invalid JSON: Unterminated string")
    subagent = PROJECT / SESSION / "subagents" / "agent-a1b2c3d.jsonl"
    assert bad["source"] == f"{subagent}:4"


def _assistant(**changes):
    line = {
        "type": "assistant",
        "sessionId": "s1",
        "requestId": "req_1",
        "timestamp": "2026-01-09T10:00:00Z",
        "message": {
            "id": "msg_1",
            "model": "claude-haiku-4-5-20251001",
            "usage": {"input_tokens": 5, "output_tokens": 7},
        },
    }
    for key, value in changes.items():
        if key.startswith("usage_"):
            line["message"]["usage"][key[6:]] = value
        elif key.startswith("message_"):
            line["message"][key[8:]] = value
        else:
            line[key] = value
    return line


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"requestId": ""}, "requestId must be a non-empty string, got ''"),
        ({"message_model": ""}, "message.model must be a non-empty string, got ''"),
        ({"usage_input_tokens": None}, "message.usage.input_tokens must be a whole number >= 0"),
        ({"usage_output_tokens": -1}, "message.usage.output_tokens must be a whole number >= 0"),
        ({"costUSD": "0.1"}, "costUSD must be a number >= 0, got '0.1'"),
        ({"timestamp": "yesterday"}, "timestamp must be an ISO 8601 date-time"),
    ],
)
def test_a_bad_assistant_line_is_quarantined_with_its_reason(tmp_path, prices, changes, reason):
    path = tmp_path / "s1.jsonl"
    good = _assistant(requestId="req_2", message_id="msg_2")
    path.write_text(json.dumps(_assistant(**changes)) + "\n" + json.dumps(good) + "\n")
    result = import_claude_code(path, prices=prices)
    assert result.frame["request_id"].tolist() == ["req_2"]
    (bad,) = result.quarantined
    assert bad["quarantine_reason"].startswith(reason)
    assert bad["source"] == f"{path}:1"


def test_lines_without_a_message_id_are_not_collapsed(tmp_path, prices):
    path = tmp_path / "s1.jsonl"
    lines = [_assistant(message_id=None, requestId=None, uuid=f"u{i}") for i in (1, 2)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    frame = import_claude_code(path, prices=prices).frame
    assert frame["request_id"].tolist() == ["u1", "u2"]


def test_a_folder_without_transcripts_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FileNotFoundError, match=r"folder holds no \.jsonl transcripts"):
        import_claude_code(tmp_path)
    (tmp_path / "s1.jsonl").write_text(json.dumps({"type": "summary", "summary": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"no assistant line with message\.usage"):
        import_claude_code(tmp_path)


def test_the_command_writes_the_call_log_and_the_quarantine(tmp_path, capsys):
    catalog = tmp_path / "prices.json"
    catalog.write_text(json.dumps(CATALOG))
    copy = tmp_path / "projects"
    shutil.copytree(FIXTURE / "projects", copy)
    calls = tmp_path / "calls.parquet"
    argv = ["import", "claude-code", str(copy), "--out", str(calls), "--prices", str(catalog)]
    assert main([*argv, "--user", "ana"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["calls_written"] == 4 and printed["files"] == 2
    assert printed["duplicates_collapsed"] == {"streamed_chunks": 2, "sidechain_replays": 1}
    assert printed["quarantined"] == 1 and printed["rows_read"] == 15
    (reason,) = printed["quarantine_reasons"]
    assert reason.startswith("invalid JSON")
    assert printed["recomputed_spend_usd"] == pytest.approx(0.098273)
    assert printed["source_spend_usd"] == 0.0152
    quarantine = tmp_path / "calls.quarantine.jsonl"
    assert printed["quarantine"] == str(quarantine) and quarantine.is_file()

    back = read_call_logs(calls, compute_costs=False).frame.set_index("request_id")
    assert back["cost_usd"].to_dict() == pytest.approx({k: v[-1] for k, v in BILL.items()})
    assert set(back["user"]) == {"ana"}
    assert back.loc["req_011CAbCdEf0000000000001", "input_tokens"] == 20004


def test_a_dated_snapshot_is_priced_under_its_alias_when_the_catalog_lacks_it():
    """Claude Code logs ``claude-sonnet-4-5-20250929``; a catalog may list only the alias
    ``claude-sonnet-4-5``. An exact key still wins (the tests above)."""
    aliases = PriceCatalog.from_entries(
        {
            "claude-sonnet-4-5": CATALOG["claude-sonnet-4-5-20250929"],
            "claude-haiku-4-5": CATALOG["claude-haiku-4-5-20251001"],
        }
    )
    result = import_claude_code(FIXTURE, prices=aliases)
    calls = result.frame.set_index("request_id")
    assert set(zip(calls["model"], calls["priced_as"], strict=True)) == {
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
    }
    for request_id, (*_, cost) in BILL.items():
        assert calls.loc[request_id, "cost_usd"] == pytest.approx(cost, abs=1e-12)
    summary = result.to_dict()
    assert summary["models_priced_as"] == {
        "claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
        "claude-haiku-4-5-20251001": "claude-haiku-4-5",
    }
    assert summary["calls_not_in_catalog"] == 0


def test_the_shipped_catalog_prices_every_fixture_call():
    result = import_claude_code(FIXTURE)
    assert result.to_dict()["calls_not_in_catalog"] == 0
    assert result.frame["cost_usd"].notna().all()


def test_a_model_the_catalog_cannot_price_keeps_the_transcripts_cost(tmp_path, prices):
    path = tmp_path / "s1.jsonl"
    lines = [
        _assistant(message_model="claude-next-1", costUSD=0.25),
        _assistant(message_model="claude-next-1", requestId="req_2", message_id="msg_2"),
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = import_claude_code(path, prices=prices)
    assert result.frame["cost_usd"].tolist()[0] == 0.25
    assert result.frame["cost_usd"].isna().tolist() == [False, True]
    summary = result.to_dict()
    assert summary["models_not_in_catalog"] == {"claude-next-1": 2}
    assert summary["calls_not_in_catalog"] == 2

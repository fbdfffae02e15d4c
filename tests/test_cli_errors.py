"""A call log that cannot be read stops `train` and `split` with one ``error:`` line
naming the file and what to do, and exit status 2: never a traceback from pandas,
pyarrow or gzip.

Each case writes its own small broken log; the commands run through the real CLI.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from training.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
CALLS = [
    {"request_id": f"r{i}", "model": "gpt-4o", "prompt": f"q{i}", "outcome": i % 2}
    for i in range(6)
]
JSONL = "".join(json.dumps(row) + "\n" for row in CALLS)


def missing(folder: Path) -> Path:
    return folder / "calls.jsonl"


def empty(folder: Path) -> Path:
    path = folder / "calls.jsonl"
    path.write_text("")
    return path


def without_model(folder: Path) -> Path:
    path = folder / "calls.jsonl"
    path.write_text("".join(json.dumps({**r, "model": None}) + "\n" for r in CALLS))
    return path


def truncated_gzip(folder: Path) -> Path:
    path = folder / "calls.jsonl.gz"
    data = gzip.compress(JSONL.encode())
    path.write_bytes(data[: len(data) // 2])
    return path


def corrupt_gzip(folder: Path) -> Path:
    path = folder / "calls.jsonl.gz"
    data = bytearray(gzip.compress(JSONL.encode()))
    data[12:40] = b"x" * 28
    path.write_bytes(bytes(data))
    return path


def gz_not_gzip(folder: Path) -> Path:
    path = folder / "calls.jsonl.gz"
    path.write_text(JSONL)
    return path


def bad_parquet(folder: Path) -> Path:
    path = folder / "calls.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    return path


def csv_tokens_abc(folder: Path) -> Path:
    path = folder / "calls.csv"
    path.write_text("request_id,model,prompt,input_tokens\nr1,gpt-4o,hi,abc\nr2,gpt-4o,ho,abc\n")
    return path


#: (case, writes the log, what the message must say: problem and fix)
CASES = [
    (missing, r"no such file or folder\. Check the path"),
    (empty, r"is empty: no call-log rows\. Check the path"),
    (without_model, r"no row has the required column `model`.*rename the column"),
    (truncated_gzip, r"is a corrupt or truncated gzip file.*Copy or export it again"),
    (corrupt_gzip, r"is a corrupt or truncated gzip file \((zlib\.error|BadGzipFile|EOFError)"),
    (gz_not_gzip, r"is named \.gz but is not gzip-compressed.*rename it to calls\.jsonl"),
    (bad_parquet, r"is not a readable Parquet file.*Write it again"),
    (csv_tokens_abc, r"none of its 2 rows is valid: input_tokens must be a number.*Fix"),
]


def command(name: str, log: Path, out: Path) -> list[str]:
    extra = ["--no-mlflow"] if name == "train" else []
    return [name, "--logs", str(log), "--out", str(out), *extra]


@pytest.mark.parametrize("name", ["train", "split"])
@pytest.mark.parametrize(("write", "message"), CASES, ids=[c[0].__name__ for c in CASES])
def test_a_log_that_cannot_be_read_is_one_clear_error(tmp_path, capsys, name, write, message):
    log = write(tmp_path)
    code = main(command(name, log, tmp_path / "out"))
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    (line,) = [x for x in captured.err.splitlines() if x.startswith("error:")]
    assert line.startswith(f"error: {log}: ")
    assert re.search(message, line), line
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("write", [gz_not_gzip, bad_parquet], ids=["gz-not-gzip", "parquet"])
def test_the_installed_command_prints_no_traceback(tmp_path, write):
    log = write(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "training.cli", *command("split", log, tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: {log}: ")


def test_every_logs_option_and_the_readme_point_to_the_format_page():
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {
        name: action.help
        for name, sub in commands.choices.items()
        for action in sub._actions
        if "--logs" in action.option_strings
    }
    assert {"train", "split", "evaluate"} <= set(helps)
    assert all("docs/call-log.md" in text for text in helps.values()), helps
    assert (ROOT / "docs" / "call-log.md").is_file()
    readme = (ROOT / "README.md").read_text()
    assert "](docs/call-log.md)" in readme
    assert "shared/DESIGN.md" not in readme

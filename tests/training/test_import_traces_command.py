"""`outcome-router import otel` and `import claude-code` on the command line
(training/import_traces_command.py): their help, and a parser that loads no importer."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from features.importers.genai_semconv import CACHE_TOKEN_MODES
from training.cli import build_parser


def _source_parser(name: str) -> argparse.ArgumentParser:
    (sub,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    (sources,) = (
        a for a in sub.choices["import"]._actions if isinstance(a, argparse._SubParsersAction)
    )
    return sources.choices[name]


@pytest.mark.parametrize("name", ["otel", "claude-code"])
def test_every_argument_has_help_and_shows_its_default(name):
    parser = _source_parser(name)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        text = parser._get_formatter()._expand_help(action)
        assert text.strip(), action.dest
        if action.default not in (None, False):
            assert str(action.default) in text, action.dest


def test_cache_modes_are_the_importers():
    parser = _source_parser("otel")
    (mode,) = (a for a in parser._actions if a.dest == "cache_tokens_in_input")
    assert tuple(mode.choices) == CACHE_TOKEN_MODES and mode.default == "auto"


def test_building_the_command_line_loads_no_importer():
    """`outcome-router serve --help` must stay light: the importers (pandas) load when run."""
    code = (
        "import sys; from training.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('pandas', 'features.importers.otel', "
        "'features.importers.claude_code') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

"""Every command's ``--help`` describes every argument and shows its default, so a
user never has to read the code to learn what an option does or what it is when unset."""

from __future__ import annotations

import argparse

import pytest

from training.cli import build_parser


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_argument_has_help(name):
    parser = _subcommands()[name]
    assert parser.description or parser.format_usage()
    missing = [a.dest for a in _options(parser) if not (a.help or "").strip()]
    assert not missing, f"`outcome-router {name}` arguments without help: {missing}"


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_default_is_shown(name):
    """An option with a default value says it in its help text."""
    parser = _subcommands()[name]
    hidden = []
    for action in _options(parser):
        default = action.default
        if default in (None, False, argparse.SUPPRESS) or action.nargs == 0:
            continue
        text = parser._get_formatter()._expand_help(action)
        if str(default) not in text:
            hidden.append(f"{action.option_strings or action.dest}: default {default!r}")
    assert not hidden, f"`outcome-router {name}` --help hides defaults: {hidden}"


def test_help_check_catches_a_missing_description():
    """The checks above can fail: an option without help is reported."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quiet-option", default=3)
    assert [a.dest for a in _options(parser) if not (a.help or "").strip()] == ["quiet_option"]

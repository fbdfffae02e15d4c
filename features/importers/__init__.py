"""Importers: other systems' exports -> our call log or outcome events.

`IMPORTERS` is the registry that ``outcome-router import SOURCE ...`` reads: one entry
per source, each naming what it produces and the function that does it. A new source
(otel, claude-code) adds a module here and one entry below, and its command-line parser
as one line of ``SOURCE_PARSERS`` in ``training/grade_command.py``. A source that writes
a call log returns a `features.importers.call_import.CallImport` from
``import_x(paths, *, prices)`` and builds its parser with
``training.import_calls_command.add_call_import_arguments`` and ``run_call_import``
(``PATH...``, ``--out CALLS``, ``--prices FILE``, the quarantine and the printed summary),
as ``litellm-spend`` does. ``otel`` and ``claude-code``, which have options and columns
of their own, return `features.importers.imported_calls.CallsImport` (the same summary,
extended) and run from ``training/import_traces_command.py`` with the same arguments.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["IMPORTERS", "Importer"]


@dataclass(frozen=True)
class Importer:
    """One import source.

    Attributes
    ----------
    name : str
        The SOURCE word of ``outcome-router import``.
    produces : {"events", "calls"}
        Whether it writes outcome events (docs/grading.md) or a call log
        (docs/call-log.md).
    summary : str
        One line for ``--help``.
    target : str
        ``module:function`` that reads the source's files and returns its result (with
        ``frame`` and ``to_dict()``); imported only when run, so building the command
        line never loads pandas.
    """

    name: str
    produces: str
    summary: str
    target: str

    def load(self) -> Callable:
        """The import function itself."""
        module, _, function = self.target.partition(":")
        return getattr(importlib.import_module(module), function)


IMPORTERS: dict[str, Importer] = {
    "github": Importer(
        name="github",
        produces="events",
        summary="pull requests and reviews from the GitHub REST API (gh api) -> outcome events",
        target="features.importers.github:import_github",
    ),
    "litellm-spend": Importer(
        name="litellm-spend",
        produces="calls",
        summary="LiteLLM proxy spend logs (LiteLLM_SpendLogs CSV/JSON export) -> call log",
        target="features.importers.litellm_spend:import_litellm_spend",
    ),
    "otel": Importer(
        name="otel",
        produces="calls",
        summary="OpenTelemetry GenAI spans (OTLP/JSON) -> call log, evaluations -> judge_score",
        target="features.importers.otel:import_otel",
    ),
    "claude-code": Importer(
        name="claude-code",
        produces="calls",
        summary="Claude Code session transcripts (~/.claude/projects) -> call log",
        target="features.importers.claude_code:import_claude_code",
    ),
}

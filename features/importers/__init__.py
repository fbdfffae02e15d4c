"""Importers: other systems' exports -> our call log or outcome events.

`IMPORTERS` is the registry that ``outcome-router import SOURCE ...`` reads: one entry
per source, each naming what it produces and the function that does it. A new source
(litellm-spend, otel, claude-code) adds a module here and one entry below, and its
command-line options in ``training/import_command.py``.
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
}

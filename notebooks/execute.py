"""Run every notebook top to bottom on the shipped logs and save it with its outputs.

The notebooks are committed with the outputs of such a run, so a reader sees results
without running them (`make notebooks` after changing one). MLflow goes to a
temporary store: re-running never registers versions in the project's ``mlruns/``.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def tidy(notebook: nbformat.NotebookNode) -> None:
    """Merge consecutive stream outputs and keep only the last state of each
    carriage-returned progress line, as a notebook front end shows them."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.outputs:
            previous = merged[-1] if merged else None
            if (
                previous is not None
                and out.output_type == previous.output_type == "stream"
                and out.name == previous.name
            ):
                previous.text += out.text
            else:
                merged.append(out)
        for out in merged:
            if out.output_type == "stream":
                lines = (line.rsplit("\r", 1)[-1] for line in out.text.split("\n"))
                out.text = re.sub(r"\n{2,}", "\n", "\n".join(lines))
        cell.outputs = merged


def execute(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
    ).execute()
    tidy(notebook)
    nbformat.write(notebook, path)
    print(f"executed {path}")


def main(names: list[str]) -> None:
    for key in [k for k in os.environ if k.startswith("OUTCOME_ROUTER_NB_")]:
        del os.environ[key]
    os.environ["OUTCOME_ROUTER_NB_MLRUNS"] = str(Path(tempfile.mkdtemp()) / "mlruns")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    for name in names or sorted(p.name for p in HERE.glob("*.ipynb")):
        execute(HERE / name)


if __name__ == "__main__":
    main(sys.argv[1:])

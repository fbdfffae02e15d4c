"""The files an importer reads: those named, and the matching ones under named folders.

Standard library only: the trace readers that use it stay importable without pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def source_files(
    paths: Sequence[str | Path], suffixes: tuple[str, ...], what: str, hint: str
) -> list[Path]:
    """Files named, and files ending in one of ``suffixes`` under folders (recursively),
    in path order, each once.

    Parameters
    ----------
    paths : sequence of str or Path
    suffixes : tuple of str
        Name endings that mark a source file inside a folder (a file named directly is
        read whatever its name).
    what : str
        What the files are, for the message (".jsonl transcripts").
    hint : str
        What to point to instead, said when a folder holds no such file.

    Raises
    ------
    FileNotFoundError
        If a path does not exist, or a folder holds no such file.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(suffixes))
            if not found:
                raise FileNotFoundError(f"{p}: folder holds no {what}. {hint}")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(
                f"{p}: no such file or folder. Check the path (a relative path starts "
                f"from {Path.cwd()})."
            )
    return sorted(dict.fromkeys(files), key=str)

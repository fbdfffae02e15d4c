"""Bundles named by a ``models:/`` URI of the MLflow registry, fetched into a local folder.

``serve``, ``route`` and ``POST /admin/reload`` accept ``models:/NAME@ALIAS`` or
``models:/NAME/VERSION`` as well as a folder. The download runs in a child process
(``python -m training.registry download``): the serving process must never import
mlflow nor its dependencies (DESIGN.md section 1), and it still verifies the
folder's hashes itself when it loads it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: How a bundle source names a registered model version rather than a folder; the
#: one definition, also used by `training.registry` to parse such URIs.
MODELS_URI_PREFIX = "models:/"


def is_registry_uri(source: str | Path) -> bool:
    """Whether ``source`` names a registry version (``models:/...``) rather than a folder.

    Examples
    --------
    >>> is_registry_uri("models:/outcome-router@champion"), is_registry_uri("build/bundle")
    (True, False)
    """
    return str(source).startswith(MODELS_URI_PREFIX)


def fetch_registry_bundle(
    uri: str, mlruns: str | Path = "mlruns", *, timeout_s: float | None = None
) -> Path:
    """Download a ``models:/`` bundle through a child process; return its local folder.

    The child, ``python -m training.registry download``, talks to MLflow, copies the
    version into ``<mlruns>/served/<name>-<version>`` (reused when already there
    and intact) and prints the folder. This process only reads that line.

    Parameters
    ----------
    uri : str
        ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.
    mlruns : path
        The MLflow store folder (``$MLFLOW_TRACKING_URI`` overrides it in the child).
    timeout_s : float, optional
        Give up on a child that runs longer (a hung store must not hold a running
        server's reload lock forever). None waits as long as it takes.

    Raises
    ------
    ValueError
        With the child's one-line reason (unknown alias or version, no store, no
        training extra installed, ...), or when it ran out of time.
    """
    cmd = [sys.executable, "-m", "training.registry", "download", uri, "--mlruns", str(mlruns)]
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, check=False, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise ValueError(
            f"Could not fetch {uri} from the MLflow registry within {timeout_s:g} s."
        ) from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        errors = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
        reason = errors[-1].removeprefix("error: ") if errors else proc.stderr.strip()[-2000:]
        raise ValueError(f"Could not fetch {uri} from the MLflow registry: {reason}")
    return Path(lines[-1])


def local_bundle(
    source: str | Path, mlruns: str | Path = "mlruns", *, timeout_s: float | None = None
) -> Path:
    """The local folder of a bundle source: the folder itself, or a URI's download."""
    if is_registry_uri(source):
        return fetch_registry_bundle(str(source), mlruns, timeout_s=timeout_s)
    return Path(source)

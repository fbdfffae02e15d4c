"""``--cluster``: where `train`, `grade`, `evaluate` and `report spend` run their
per-partition work (README "Beyond one machine").

Without ``--cluster`` every command runs in its own process, as it always has: the
embedded default needs no scheduler. ``--cluster local[:N]`` starts a Dask
``LocalCluster`` of N worker *processes* (one thread each: featurizing and grading are
pure-Python/GIL-bound, so threads would not run in parallel) for the length of the
command; ``--cluster tcp://HOST:PORT`` connects to a scheduler someone already runs
(``dask scheduler`` and ``dask worker tcp://HOST:PORT`` on other machines), and leaves
it running.

The shape of the spec follows Dask's own addresses (``tcp://`` is what
``distributed.Client`` takes; ``LocalCluster(n_workers, threads_per_worker,
processes, dashboard_address)`` from distributed/deploy/local.py). Dask is imported
only when a cluster is asked for, so the commands and their ``--help`` do not need it.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = [
    "CLUSTER_DOC",
    "ClusterSpec",
    "ClusterSpecError",
    "add_cluster_argument",
    "connect",
    "parse_cluster_spec",
]

#: Where the README explains schedulers, workers and where the logs live.
CLUSTER_DOC = 'README.md "Beyond one machine"'

_LOCAL = re.compile(r"^local(?::(?P<n>\d+))?$")


class ClusterSpecError(ValueError):
    """A ``--cluster`` value that is neither ``local[:N]`` nor ``tcp://HOST:PORT``."""


@dataclass(frozen=True)
class ClusterSpec:
    """A parsed ``--cluster`` value.

    Attributes
    ----------
    kind : {"local", "remote"}
        ``local``: start a LocalCluster for this command; ``remote``: connect to a
        running scheduler.
    n_workers : int or None
        Worker processes of a local cluster (None for a remote one).
    address : str or None
        The scheduler address of a remote cluster, e.g. ``tcp://10.0.0.5:8786``.
    """

    kind: str
    n_workers: int | None = None
    address: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "n_workers": self.n_workers, "address": self.address}


def parse_cluster_spec(spec: str) -> ClusterSpec:
    """``local``, ``local:N`` or a scheduler address (``tcp://HOST:PORT``, ``tls://...``).

    ``local`` alone starts one worker per core (``os.cpu_count()``).

    Raises
    ------
    ClusterSpecError
        Naming the accepted forms.
    """
    text = spec.strip()
    match = _LOCAL.match(text)
    if match:
        n = int(match["n"]) if match["n"] else max(1, os.cpu_count() or 1)
        if n < 1:
            raise ClusterSpecError(f"--cluster {spec!r}: a local cluster needs at least 1 worker")
        return ClusterSpec(kind="local", n_workers=n)
    if re.match(r"^(tcp|tls|ucx|inproc)://[^\s:/]+(:\d+)?$", text):
        return ClusterSpec(kind="remote", address=text)
    raise ClusterSpecError(
        f"--cluster {spec!r} is not a cluster: give `local` (one worker process per core), "
        f"`local:N` (N worker processes) or a running scheduler's address such as "
        f"`tcp://HOST:8786` (see {CLUSTER_DOC})"
    )


def _spec_type(value: str) -> str:
    try:
        parse_cluster_spec(value)
    except ClusterSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def add_cluster_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--cluster local[:N]|tcp://HOST:PORT`` (default: none, in one process)."""
    parser.add_argument(
        "--cluster",
        default=None,
        type=_spec_type,
        metavar="local[:N]|tcp://HOST:PORT",
        help="run the per-partition work on Dask workers: `local[:N]` starts N worker "
        "processes on this machine for this command (default N: one per core), "
        "`tcp://HOST:PORT` uses a running `dask scheduler` whose workers can read the logs "
        f"(see {CLUSTER_DOC}). Default: none, everything in this one process",
    )


@contextmanager
def connect(
    spec: str | None,
    *,
    threads_per_worker: int = 1,
    memory_limit: str | float | None = "auto",
) -> Iterator[Client | None]:
    """A Dask client for ``--cluster``, or None without one.

    Parameters
    ----------
    spec : str or None
        The ``--cluster`` value; None runs in-process (yields None).
    threads_per_worker : int, default=1
        Threads of each local worker process. One: the per-partition work holds the
        GIL, and one thread per process keeps a worker's memory to one partition.
    memory_limit : str, float or None, default="auto"
        Per-worker memory limit of a local cluster (Dask's ``"auto"`` shares the
        machine's memory between the workers).

    Yields
    ------
    distributed.Client or None
        Closed (and a local cluster shut down) when the block ends, even on error. A
        remote scheduler is left running: only the connection is closed.

    Raises
    ------
    ClusterSpecError
        If ``spec`` is not a cluster.
    RuntimeError
        If Dask is not installed (``pip install outcome-router[train]``).
    """
    if spec is None:
        yield None
        return
    parsed = parse_cluster_spec(spec)
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - train extra installs it
        raise RuntimeError(
            "--cluster needs Dask: pip install 'outcome-router[train]' (dask[dataframe], "
            "distributed)"
        ) from exc
    if parsed.kind == "remote":
        client = Client(parsed.address, timeout="30s")
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=parsed.n_workers,
        threads_per_worker=threads_per_worker,
        processes=True,
        dashboard_address=None,
        memory_limit=memory_limit,
    )
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()

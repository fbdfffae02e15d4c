"""`training.cluster`: the ``--cluster`` values, and their errors."""

from __future__ import annotations

import argparse
import os

import pytest

from training.cluster import (
    ClusterSpec,
    ClusterSpecError,
    add_cluster_argument,
    connect,
    parse_cluster_spec,
)


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("local:3", ClusterSpec("local", n_workers=3)),
        ("local", ClusterSpec("local", n_workers=max(1, os.cpu_count() or 1))),
        ("tcp://10.0.0.5:8786", ClusterSpec("remote", address="tcp://10.0.0.5:8786")),
        ("tls://scheduler.internal:8786", ClusterSpec("remote", address="tls://scheduler.internal:8786")),
    ],
)  # fmt: skip
def test_cluster_specs(text: str, spec: ClusterSpec) -> None:
    assert parse_cluster_spec(text) == spec


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("local:0", "at least 1 worker"),
        ("yarn", "is not a cluster"),
        ("10.0.0.5:8786", "is not a cluster"),
        ("local:two", "is not a cluster"),
    ],
)
def test_bad_cluster_specs_say_what_is_accepted(text: str, match: str) -> None:
    with pytest.raises(ClusterSpecError, match=match):
        parse_cluster_spec(text)


def test_the_argument_defaults_to_one_process_and_refuses_bad_values(capsys) -> None:
    parser = argparse.ArgumentParser()
    add_cluster_argument(parser)
    assert parser.parse_args([]).cluster is None
    assert parser.parse_args(["--cluster", "local:2"]).cluster == "local:2"
    with pytest.raises(SystemExit):
        parser.parse_args(["--cluster", "spark"])
    assert "tcp://HOST:8786" in capsys.readouterr().err


def test_no_cluster_is_no_client() -> None:
    with connect(None) as client:
        assert client is None


def test_a_local_cluster_runs_work_in_worker_processes_and_shuts_down() -> None:
    pytest.importorskip("distributed")
    with connect("local:1") as client:
        workers = client.scheduler_info()["workers"]
        assert [w["nthreads"] for w in workers.values()] == [1]
        assert client.submit(os.getpid).result() != os.getpid()
    assert client.status == "closed"

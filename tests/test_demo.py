"""`make demo` runs on the shipped routeprofile logs, where routing pays, and keeps
SWE-bench as the agent example (`make demo-swebench`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from features.call_log import read_call_logs
from features.prices import PriceCatalog
from serving.schemas import RouteRequest
from training.split import in_train_split

ROOT = Path(__file__).resolve().parents[1]
ROUTEPROFILE = ROOT / "data" / "routeprofile"


def _recipe(target: str) -> str:
    """The command lines of one Makefile target, continuation lines joined."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, re.M)
    assert match, f"no target {target!r} in the Makefile"
    variables = dict(re.findall(r"^(\w+) :?= (.*)$", text, re.M))
    return re.sub(r"\$\((\w+)\)", lambda m: variables.get(m[1], m[0]), match[1])


@pytest.fixture(scope="module")
def calls() -> pd.DataFrame:
    return pd.read_json(ROUTEPROFILE / "calls.jsonl.gz", lines=True)


def test_make_demo_trains_evaluates_and_serves_routeprofile_with_its_prices():
    recipe = _recipe("demo")
    for command in ("split", "train", "evaluate", "demo-request"):
        assert f"outcome-router {command}" in recipe
    assert "data/routeprofile/calls.jsonl.gz" in recipe and "swebench" not in recipe
    assert recipe.count("--prices data/routeprofile/prices.json") == 2  # train, evaluate
    assert "--request data/routeprofile/example_request.json" in recipe


def test_swebench_stays_as_the_agent_example():
    recipe = _recipe("demo-swebench")
    assert "data/swebench_verified/calls.parquet" in recipe
    assert "--request data/swebench_verified/example_request.json" in recipe
    assert "build/demo-swebench/" in recipe


def test_routeprofile_ships_with_its_licence_and_a_price_for_every_model(calls):
    assert "MIT License" in (ROUTEPROFILE / "LICENSE").read_text()
    catalog = PriceCatalog.load(ROUTEPROFILE / "prices.json")
    assert all(catalog.get(model) is not None for model in calls["model"].unique())
    read = read_call_logs(ROUTEPROFILE / "calls.jsonl.gz", prices=catalog)
    assert read.n_quarantined == 0 and read.frame["prompt_id"].nunique() == 600


def test_example_request_is_a_held_out_routeprofile_prompt(calls):
    body = json.loads((ROUTEPROFILE / "example_request.json").read_text())
    request = RouteRequest.model_validate(body)
    _, messages = request.routing_input()
    text = messages[-1]["content"]
    (row,) = calls[(calls["prompt"] == text)].drop_duplicates("prompt_id").itertuples()
    assert request.task == row.task  # the tag the request-context columns read
    # `make demo` splits with the defaults (70%, seed 0): the demo routes an unseen prompt.
    assert not in_train_split(row.prompt_id, 0.7, 0)

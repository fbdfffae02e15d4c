"""Request-context columns (task, team, conversation depth): one definition, built
the same from a call-log row and from a /route body."""

from __future__ import annotations

import math

import numpy as np
import pytest

from features.context import (
    OTHER,
    RequestContext,
    context_feature_names,
    context_features,
    frequent_values,
)
from features.spec import FeatureSpec


def test_frequent_values_keep_common_tags_sorted_and_drop_rare_ones():
    values = ["mmlu"] * 30 + ["gsm8k"] * 12 + ["rare"] * 3 + [None] * 50
    assert frequent_values(values) == ("gsm8k", "mmlu")
    assert frequent_values(values, max_values=1) == ("mmlu",)
    assert frequent_values(values, min_count=1) == ("gsm8k", "mmlu", "rare")
    assert frequent_values([None, None]) == ()


def test_one_hot_with_an_other_bucket_and_log_depth():
    contexts = [
        RequestContext(task="gsm8k", team="a"),
        RequestContext(task="unseen", n_messages=5),
        RequestContext(),
    ]
    matrix = context_features(
        contexts, tasks=("gsm8k", "mmlu"), teams=("a",), conversation_depth=True
    )
    names = context_feature_names(("gsm8k", "mmlu"), ("a",), True)
    assert names == [
        "task=gsm8k",
        "task=mmlu",
        f"task={OTHER}",
        "team=a",
        f"team={OTHER}",
        "log_messages",
    ]
    assert matrix.dtype == np.float32 and matrix.shape == (3, len(names))
    np.testing.assert_array_equal(
        matrix[:, :5], [[1, 0, 0, 1, 0], [0, 0, 1, 0, 1], [0, 0, 1, 0, 1]]
    )
    np.testing.assert_allclose(matrix[:, 5], [math.log1p(1), math.log1p(5), math.log1p(1)])


def test_no_context_columns_give_an_empty_block():
    matrix = context_features([RequestContext()] * 2, tasks=(), teams=(), conversation_depth=False)
    assert matrix.shape == (2, 0)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"task": float("nan"), "team": ""}, RequestContext()),
        (
            {"task": "qa", "messages": np.array([{}, {}, {}], dtype=object)},
            RequestContext("qa", None, 3),
        ),
        ({"messages": float("nan")}, RequestContext()),
        ({"messages": []}, RequestContext()),
    ],
)
def test_context_of_a_call_log_row_or_request(kwargs, expected):
    # Parquet hands messages back as numpy arrays and absent tags as NaN.
    assert RequestContext.of(**kwargs) == expected


def test_spec_round_trips_its_context_and_names_the_columns():
    spec = FeatureSpec.for_encoder(
        "static", context_tasks=("gsm8k", "mmlu"), conversation_depth=True
    )
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert spec.n_features == 256 + len(spec.text_stats) + 4
    assert spec.feature_names[-4:] == ["task=gsm8k", "task=mmlu", f"task={OTHER}", "log_messages"]


def test_an_older_spec_version_cannot_carry_context():
    with pytest.raises(ValueError, match="predates the request context"):
        FeatureSpec(version=2, context_tasks=("gsm8k",))
    # A version-2 manifest (no context keys) still loads, with no context columns.
    old = FeatureSpec.from_dict({**FeatureSpec().to_dict(), "version": 2})
    assert old.context_names == [] and old.n_features == 384 + len(old.text_stats)

"""Request context a gateway knows before any model answers: the caller's ``task``
and ``team`` tags and the conversation depth. One definition for training (from
call-log columns) and serving (from the `/route` body), so both build the same
columns.

The columns, in order, appended after the text statistics:

- ``task=<value>`` for every value of `FeatureSpec.context_tasks`, then
  ``task=(other)``: a one-hot of the request's task; a task not in the list, or
  none, sets ``(other)``. The list is the tasks seen most often in training
  (`frequent_values`), stored in the bundle's feature spec, so serving never meets
  a column it does not know.
- ``team=<value>`` ... ``team=(other)``: the same for `FeatureSpec.context_teams`.
- ``log_messages``: ``log(1 + number of messages)`` when
  `FeatureSpec.conversation_depth` is on; a bare ``prompt`` counts as one message.

Nothing here reads an outcome: only what the request carries when it is routed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

#: The bucket of a value outside the spec's list (or of a missing value).
OTHER = "(other)"
#: What `train --context` can switch on.
CONTEXT_KINDS = ("task", "team", "depth")


@dataclass(frozen=True)
class RequestContext:
    """What the gateway knows about one request besides its text.

    Parameters
    ----------
    task, team : str or None
        The request's free tags (call-log columns, `/route` fields).
    n_messages : int
        Messages in the conversation (1 for a bare prompt).

    Examples
    --------
    >>> RequestContext.of(task="gsm8k", messages=[{"role": "user", "content": "2+2?"}])
    RequestContext(task='gsm8k', team=None, n_messages=1)
    """

    task: str | None = None
    team: str | None = None
    n_messages: int = 1

    @classmethod
    def of(
        cls,
        *,
        task: object = None,
        team: object = None,
        messages: Sequence[object] | None = None,
    ) -> RequestContext:
        """The context of one request or call-log row (``NaN`` tags count as absent)."""
        return cls(
            task=_tag(task),
            team=_tag(team),
            n_messages=max(1, len(messages)) if _is_list(messages) else 1,
        )


def _tag(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value)
    return text or None


def _is_list(value: object) -> bool:
    # A call-log frame holds messages as lists or numpy arrays (Parquet); NaN when absent.
    return isinstance(value, list | tuple | np.ndarray)


def frequent_values(
    values: Iterable[str | None], *, max_values: int = 20, min_count: int = 10
) -> tuple[str, ...]:
    """The values worth a column: seen at least ``min_count`` times, the
    ``max_values`` most frequent (ties by name), sorted by name.

    ``values`` holds one entry per prompt, so a chatty tag does not outweigh a
    rare one by repeating calls. Rare values fall in ``(other)``, where a few
    prompts cannot give a learner a column to over-fit.

    Examples
    --------
    >>> frequent_values(["a"] * 12 + ["b"] * 3 + [None] * 20)
    ('a',)
    """
    counts = Counter(v for v in values if v is not None)
    kept = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_values]
    return tuple(sorted(v for v, n in kept if n >= min_count))


def context_feature_names(
    tasks: Sequence[str], teams: Sequence[str], conversation_depth: bool
) -> list[str]:
    """Names of the context columns, in vector order (see the module docstring)."""
    names = []
    for key, values in (("task", tasks), ("team", teams)):
        if values:
            names += [f"{key}={v}" for v in values] + [f"{key}={OTHER}"]
    if conversation_depth:
        names.append("log_messages")
    return names


def context_features(
    contexts: Sequence[RequestContext],
    *,
    tasks: Sequence[str],
    teams: Sequence[str],
    conversation_depth: bool,
) -> np.ndarray:
    """Context columns, shape ``(len(contexts), len(context_feature_names(...)))``, float32."""
    blocks = []
    for values, pick in ((tasks, lambda c: c.task), (teams, lambda c: c.team)):
        if not values:
            continue
        index = {v: i for i, v in enumerate(values)}
        block = np.zeros((len(contexts), len(values) + 1), dtype=np.float32)
        for row, context in enumerate(contexts):
            block[row, index.get(pick(context), len(values))] = 1.0
        blocks.append(block)
    if conversation_depth:
        depth = [math.log1p(c.n_messages) for c in contexts]
        blocks.append(np.asarray(depth, dtype=np.float32).reshape(-1, 1))
    if not blocks:
        return np.zeros((len(contexts), 0), dtype=np.float32)
    return np.hstack(blocks)

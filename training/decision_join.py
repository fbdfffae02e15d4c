"""Join gateway call logs to the router's decision logs by ``decision_id``.

A gateway asks ``POST /route``, calls the model it was told and writes a call-log
row (DESIGN.md section 2) carrying the answer's ``decision_id``. The router wrote
the same ``decision_id`` to its decision log with the *propensity*, the probability
its policy gave the chosen model. Off-policy evaluation of a new router on these
calls needs that probability on each call row, and this module puts it there.

The decision log is the authority: on a joined row its propensity replaces the
call log's. A row whose ``model`` is not the model the router chose (the gateway
failed over, or a user pinned a model) gets no propensity: the router did not
choose that call, so its probability under the router's policy says nothing about
it. Nothing is dropped: the counts of each case come back with the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from serving.decision_log import read_decision_log

#: Decision-log fields copied onto call rows, under these names.
JOINED_COLUMNS = {
    "router_version": "router_version",
    "model": "decision_model",
    "reason": "decision_reason",
    "timestamp": "decision_timestamp",
}


@dataclass(frozen=True)
class DecisionLogFrame:
    """Decision logs read into one frame.

    Attributes
    ----------
    frame : DataFrame
        One row per decision: ``decision_id``, ``timestamp``, ``router_version``,
        ``model``, ``propensity``, ``reason`` and the other logged fields.
    n_bad_lines : int
        Lines that are not decisions (a torn last line after a crash included);
        see `serving.decision_log.read_decision_log`.
    n_duplicates : int
        Decisions logged more than once (the same file passed twice, a copied
        log); the first is kept.
    """

    frame: pd.DataFrame
    n_bad_lines: int
    n_duplicates: int


def read_decision_logs(paths: str | Path | Sequence[str | Path]) -> DecisionLogFrame:
    """Read one or more decision logs (one per replica), rotated files included.

    Parameters
    ----------
    paths : path or list of paths
        Each the live file a server was configured with
        (``OUTCOME_ROUTER_DECISION_LOG``); its rotated files are found next to it.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    records, n_bad = [], 0
    for path in paths:
        read = read_decision_log(path)
        records.extend(read.records)
        n_bad += len(read.bad)
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        frame = pd.DataFrame(columns=["decision_id", "propensity", *JOINED_COLUMNS])
    duplicated = frame["decision_id"].duplicated()
    frame = frame[~duplicated].reset_index(drop=True)
    return DecisionLogFrame(frame=frame, n_bad_lines=n_bad, n_duplicates=int(duplicated.sum()))


@dataclass(frozen=True)
class DecisionJoin:
    """Call-log rows with the router's propensities attached.

    Attributes
    ----------
    frame : DataFrame
        The call rows in their order, with ``propensity`` from the decision log
        where joined, plus ``router_version``, ``decision_model``,
        ``decision_reason`` and ``decision_timestamp`` (missing where no decision
        was found).
    n_joined : int
        Rows whose decision was found and whose model is the chosen one.
    n_model_mismatch : int
        Rows whose decision was found but which called another model; their
        propensity is set to NaN.
    n_unknown_decision : int
        Rows with a ``decision_id`` that no decision log holds (a log not passed,
        rotated away, or lost to a power cut); left as they were.
    n_without_decision : int
        Rows without a ``decision_id`` (not routed); left as they were.
    n_bad_log_lines, n_duplicate_decisions : int
        See `DecisionLogFrame`.
    """

    frame: pd.DataFrame
    n_joined: int
    n_model_mismatch: int
    n_unknown_decision: int
    n_without_decision: int
    n_bad_log_lines: int = 0
    n_duplicate_decisions: int = 0


def attach_propensities(
    calls: pd.DataFrame,
    decisions: str | Path | Sequence[str | Path] | DecisionLogFrame,
) -> DecisionJoin:
    """Attach the router's propensity (and version) to call rows by ``decision_id``.

    Parameters
    ----------
    calls : DataFrame
        Call-log rows, e.g. ``features.call_log.read_call_logs(...).frame``; needs
        ``model`` and ``decision_id``.
    decisions : path, list of paths or DecisionLogFrame
        The decision logs of every replica that served these calls.

    Returns
    -------
    DecisionJoin

    Raises
    ------
    ValueError
        If ``calls`` lacks ``model`` or ``decision_id``.
    """
    missing = {"model", "decision_id"} - set(calls.columns)
    if missing:
        raise ValueError(
            f"The call log lacks the columns {sorted(missing)}; gateways write "
            "`decision_id` (the /route answer's) next to the `model` they called."
        )
    log = decisions if isinstance(decisions, DecisionLogFrame) else read_decision_logs(decisions)
    by_id = log.frame.set_index("decision_id")
    ids = calls["decision_id"]
    has_id = (ids.notna() & (ids.astype("string").str.len() > 0)).fillna(False).astype(bool)
    found = has_id & ids.isin(by_id.index)
    matched = by_id.reindex(ids.where(found))

    out = calls.copy()
    for source, target in JOINED_COLUMNS.items():
        values = matched[source].to_numpy() if source in matched else np.full(len(out), None)
        out[target] = pd.Series(values, index=out.index).where(found.to_numpy(), None)
    same_model = found & (out["decision_model"] == out["model"])
    mismatch = found & ~same_model
    propensity = (
        out["propensity"].astype("float64")
        if "propensity" in out
        else pd.Series(np.nan, index=out.index)
    )
    logged = pd.Series(matched["propensity"].to_numpy(dtype="float64"), index=out.index)
    propensity = propensity.where(~same_model, logged).where(~mismatch, np.nan)
    out["propensity"] = propensity
    return DecisionJoin(
        frame=out,
        n_joined=int(same_model.sum()),
        n_model_mismatch=int(mismatch.sum()),
        n_unknown_decision=int((has_id & ~found).sum()),
        n_without_decision=int((~has_id).sum()),
        n_bad_log_lines=log.n_bad_lines,
        n_duplicate_decisions=log.n_duplicates,
    )

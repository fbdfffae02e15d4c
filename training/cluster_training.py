"""`train --cluster`: featurize on Dask workers, gather only what the learners need.

Without ``--cluster`` `training.train` reads every call into one pandas frame
(prompts and messages included) and featurizes in its own process. With a Dask
client it works on the call log's partitions instead (one per file of a
day-partitioned Parquet dataset):

1. **Call columns** (pass 1, on the workers): each partition is read and
   validated where it lives, and only the small per-call columns come back
   (`CALL_COLUMNS`: ids, model, outcome, cost, tokens, propensity, task, team),
   never the prompt text. Candidates are screened on them as today
   (`training.dataset.screen_candidates`).
2. **Features** (pass 2, on the workers): each partition keeps its candidates'
   rows, takes each prompt's first row, builds its routing text and featurizes it
   with the worker's own `features.featurizer.Featurizer`, opened once per worker
   process (`worker_featurizer`, cached) and reused by every partition: the ONNX
   session of MiniLM takes seconds to open. Only ``(prompt_ids, features)`` come
   back; a prompt seen in two partitions keeps its first one, as
   `training.dataset.build_training_set` keeps its first row.
3. The driver fills the feature matrix one partition result at a time
   (`_fill_features`: the matrix plus one partition in memory) and holds a
   `training.dataset.TrainingSet` whose ``texts`` are left empty (they stay on
   the workers; nothing in `train` reads them).

What must fit in the driver's memory, per million calls (n_prompts distinct
prompts, d features: 264 for the static encoder, 392 for MiniLM):

- the feature matrix, ``n_prompts x d`` float32: 1.06 GB per million distinct
  prompts (static encoder); 0 extra for repeated prompts;
- the per-call arrays of `TrainingSet` (prompt, candidate, outcome, cost, two
  token counts, propensity: 7 x 8 bytes) and the pass-1 frame they are built
  from (``prompt_id`` strings): about 0.2 GB per million calls;
- the final fit: the cost model is fit from chunked sufficient statistics
  (`training.cost_model_stats`, 65536 rows at a time); LightGBM trains on the
  workers with ``lightgbm.dask`` (`fit_lightgbm_on_cluster`), the driver sending
  row blocks of 65536 calls; any other chosen learner (logistic, kNN, MLP, mf,
  shared, ensembles) is refit on the driver on the gathered features
  (``rows x d`` float32 plus the learner's own copies: about 4 GB per million
  rows for the logistic learner, which standardises in float64 and doubles soft
  labels), so past a few million calls choose among LightGBM settings.

Learner selection always runs on a seeded sample of ``--cv-max-prompts`` prompts
(`training.train`), which is what makes kNN and the MLP affordable; the manifest's
``training.selection.scale`` says how each part was fit.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.call_log import COLUMNS
from features.call_log_dataset import CallLogDataset
from features.featurizer import Featurizer
from features.prices import PriceCatalog
from features.routing_text import routing_text
from features.spec import FeatureSpec
from serving.manifest import ExcludedCandidate
from training.dataset import (
    TrainingSet,
    request_contexts,
    screen_candidates,
    with_request_context,
)
from training.learners import LightGBMLearner
from training.learners._base import candidate_means, learnable, soft_label_rows

#: The per-call columns the driver gathers (pass 1); the prompt text stays on the workers.
CALL_COLUMNS = (
    "prompt_id",
    "model",
    "outcome",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "propensity",
    "task",
    "team",
)
#: Calls per block sent to the workers for the LightGBM fit.
BLOCK_ROWS = 65536


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@lru_cache(maxsize=4)
def worker_featurizer(spec: FeatureSpec, encoder_dir: str) -> Featurizer:
    """The featurizer of this process, opened on first use and kept.

    Runs on a Dask worker: every partition task of one worker process gets the same
    ONNX session (one intra-op thread: a worker is one core).
    """
    return Featurizer(spec, encoder_dir, intra_op_threads=1, workers=1)


def call_columns(part: pd.DataFrame) -> pd.DataFrame:
    """The `CALL_COLUMNS` of one validated partition (absent ones as missing)."""
    out = pd.DataFrame(index=part.index)
    for name in CALL_COLUMNS:
        out[name] = part.get(name, None)
    for name in ("outcome", "cost_usd", "input_tokens", "output_tokens", "propensity"):
        out[name] = out[name].astype("float64")
    return out.reset_index(drop=True)


def featurize_partition(
    part: pd.DataFrame,
    candidates: Sequence[str],
    spec: FeatureSpec,
    encoder_dir: str,
    chunk: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """``(prompt_ids, features)`` of the prompts one partition's candidate rows answer.

    Returns
    -------
    prompt_ids : ndarray of object, shape (n,)
        In order of first appearance in the partition.
    features : ndarray of float32, shape (n, spec.n_features)
    """
    part = part[part["model"].isin(list(candidates))]
    firsts = part.drop_duplicates("prompt_id")
    texts = [
        routing_text(p if isinstance(p, str) else None, m, source=spec.text_source)
        for p, m in zip(
            firsts["prompt"] if "prompt" in firsts else [None] * len(firsts),
            firsts["messages"] if "messages" in firsts else [None] * len(firsts),
            strict=True,
        )
    ]
    contexts = request_contexts(firsts) if spec.context_names else None
    featurizer = worker_featurizer(spec, encoder_dir)
    parts = [
        featurizer.transform_texts(
            texts[start : start + chunk],
            None if contexts is None else contexts[start : start + chunk],
        )
        for start in range(0, len(texts), chunk)
    ]
    features = np.vstack(parts) if parts else np.zeros((0, spec.n_features), dtype=np.float32)
    return firsts["prompt_id"].to_numpy(dtype=object), features


@dataclass(frozen=True)
class ClusterRead:
    """What `read_training_set` gathered.

    Attributes
    ----------
    data : TrainingSet
        ``texts`` all empty strings (the texts stay on the workers).
    excluded : list of ExcludedCandidate
    n_calls : int
        Valid calls read, every model.
    n_quarantined : int
    n_partitions : int
    n_workers : int
    spec : FeatureSpec
        The feature spec the partitions were featurized with, request context included.
    """

    data: TrainingSet
    excluded: list[ExcludedCandidate]
    n_calls: int
    n_quarantined: int
    n_partitions: int
    n_workers: int
    spec: FeatureSpec


def _gather_in_order(client, futures: list, what: str) -> list:
    """Results of ``futures`` in their order, with progress on stderr as they finish."""
    from distributed import as_completed
    from tqdm import tqdm

    with tqdm(total=len(futures), desc=what, unit="partition", file=sys.stderr) as bar:
        for _ in as_completed(futures):
            bar.update(1)
    return client.gather(futures)


def read_training_set(
    client,
    dataset: CallLogDataset,
    *,
    catalog: PriceCatalog,
    spec: FeatureSpec,
    encoder_dir: str | Path,
    min_calls: int,
    requested: Sequence[str] | None = None,
    quarantine: str | Path | None = None,
    context: Sequence[str] = (),
) -> ClusterRead:
    """A `TrainingSet` built on the cluster from a call-log dataset's partitions.

    Parameters
    ----------
    client : distributed.Client
    dataset : CallLogDataset
        `features.call_log_dataset.open_call_log_dataset` of the logs; its
        partition order fixes the prompts' order (first appearance), as the file
        order does for `training.dataset.build_training_set`.
    catalog, min_calls, requested
        As `training.dataset.screen_candidates`.
    spec : FeatureSpec
        Before the request context: the ``context`` columns' task and team values are
        counted on the gathered calls, as `train` counts them in one process
        (`training.dataset.with_request_context`); ``ClusterRead.spec`` is the result.
    encoder_dir : path
        The encoder folder, readable at the same path on every worker (a shared
        volume, or the same image: `features.encoder_export.ensure_encoder`).
    quarantine : path, optional
        Where the rejected rows of every partition are gathered (JSONL); the
        partitions' own files go to a folder next to it, which the workers must be
        able to write.
    """
    from dask import delayed

    from features.call_log_dataset import collect_quarantine

    n_workers = len(client.scheduler_info()["workers"])
    folder = None if quarantine is None else Path(str(quarantine) + ".partitions")
    columns = [c for c in CALL_COLUMNS if c in COLUMNS]
    rows = dataset.to_dask(prices=catalog, quarantine_dir=folder, columns=columns)
    calls = _gather_in_order(
        client,
        client.compute([delayed(call_columns)(p) for p in rows.to_delayed()]),
        "reading",
    )
    calls = pd.concat(calls, ignore_index=True)
    n_calls = len(calls)
    n_quarantined = 0 if folder is None else collect_quarantine(folder, quarantine)
    _say(
        f"read {n_calls} calls in {dataset.n_partitions} partitions on {n_workers} workers; "
        f"quarantined {n_quarantined}" + (f" -> {quarantine}" if n_quarantined else "")
    )
    spec = with_request_context(spec, calls, context)
    candidates, excluded = screen_candidates(
        calls, catalog, min_calls=min_calls, requested=requested
    )
    calls = calls[calls["model"].isin(candidates)].reset_index(drop=True)
    firsts = calls.drop_duplicates("prompt_id")
    prompt_ids = firsts["prompt_id"].to_numpy(dtype=object)
    futures = client.compute(
        [
            delayed(featurize_partition)(p, tuple(candidates), spec, str(encoder_dir))
            for p in dataset.to_dask(
                prices=catalog,
                columns=["prompt_id", "model", "prompt", "messages", "task", "team"],
            ).to_delayed()
        ]
    )
    features = _fill_features(futures, prompt_ids, spec.n_features)
    index = pd.Index(prompt_ids)
    segments = {
        key: firsts[key].fillna("(none)").astype(str).to_numpy()
        for key in ("task", "team")
        if firsts[key].notna().any()
    }
    data = TrainingSet(
        candidates=tuple(candidates),
        prompt_ids=prompt_ids,
        texts=[""] * len(prompt_ids),
        features=features,
        prompt=index.get_indexer(calls["prompt_id"]).astype(np.int64),
        candidate=calls["model"]
        .map({c: i for i, c in enumerate(candidates)})
        .to_numpy(dtype=np.int64),
        outcome=calls["outcome"].to_numpy(dtype=np.float64),
        cost_usd=calls["cost_usd"].to_numpy(dtype=np.float64),
        input_tokens=calls["input_tokens"].to_numpy(dtype=np.float64),
        output_tokens=calls["output_tokens"].to_numpy(dtype=np.float64),
        segments=segments,
        propensity=calls["propensity"].to_numpy(dtype=np.float64),
    )
    return ClusterRead(
        data=data,
        spec=spec,
        excluded=excluded,
        n_calls=n_calls,
        n_quarantined=n_quarantined,
        n_partitions=dataset.n_partitions,
        n_workers=n_workers,
    )


def _fill_features(futures: list, prompt_ids: np.ndarray, n_features: int) -> np.ndarray:
    """The feature matrix in ``prompt_ids`` order, filled one partition at a time.

    Partitions are taken in order and a prompt keeps the features of the first
    partition that holds it; each partition's result is dropped (here and on its
    worker) once copied, so this process holds the matrix plus one partition.
    """
    from tqdm import tqdm

    index = pd.Index(prompt_ids)
    features = np.empty((len(prompt_ids), n_features), dtype=np.float32)
    filled = np.zeros(len(prompt_ids), dtype=bool)
    with tqdm(total=len(futures), desc="featurizing", unit="partition", file=sys.stderr) as bar:
        for future in futures:
            ids, part = future.result()
            future.release()
            where = index.get_indexer(ids)
            new = where >= 0
            new[new] = ~filled[where[new]]
            features[where[new]] = part[new]
            filled[where[new]] = True
            bar.update(1)
    if not filled.all():
        raise RuntimeError(
            f"{int((~filled).sum())} prompts came back from no partition; the partitions "
            "changed between the two passes (was the dataset written to meanwhile?)."
        )
    return features


def fit_lightgbm_on_cluster(
    client,
    params: dict[str, Any],
    data: TrainingSet,
    sample_weight: np.ndarray | None = None,
    *,
    block_rows: int = BLOCK_ROWS,
) -> LightGBMLearner:
    """A `LightGBMLearner` on every graded call, each candidate's trees grown by
    ``lightgbm.dask.DaskLGBMClassifier`` on the workers.

    The driver expands ``features[prompt]`` one block of ``block_rows`` calls at a
    time, splits soft labels as `LightGBMLearner` does
    (`training.learners.soft_label_rows`) and scatters the block; the workers
    build their histograms on their blocks (LightGBM's data-parallel mode), and
    the booster comes back as a plain ``LGBMClassifier`` (``to_local``), so the
    bundle exports exactly as a single-process one. With a candidate's rows in
    one block (one worker) the trees are the single-process ones; spread over
    workers they differ a little (bins are found per worker), hence the
    tolerance in `tests/training/test_train_cluster.py`.

    Parameters
    ----------
    client : distributed.Client
    params : dict
        `LightGBMLearner` hyperparameters (``n_jobs`` is left to lightgbm.dask).
    data : TrainingSet
    sample_weight : ndarray of shape (n_rows,), optional
        Importance weights of every row of ``data`` (None: unweighted).
    block_rows : int, default=BLOCK_ROWS
        Calls per scattered block.
    """
    from lightgbm import DaskLGBMClassifier

    learner = LightGBMLearner(**params)
    labelled = data.labelled
    X_rows = data.prompt[labelled]
    y = data.outcome[labelled]
    candidate = data.candidate[labelled]
    w = None if sample_weight is None else sample_weight[labelled]
    k_total = len(data.candidates)
    learner.n_candidates_ = k_total
    learner.n_features_in_ = data.features.shape[1]
    learner.constant_ = candidate_means(y, candidate, k_total, w)
    learner.n_rows_ = np.bincount(candidate, minlength=k_total)
    learner.models_ = []
    for k in range(k_total):
        rows = np.flatnonzero(candidate == k)
        if not learnable(y[rows], learner.min_rows):
            learner.models_.append(None)
            continue
        X, labels, weights, futures = _scattered_rows(
            client,
            data.features,
            X_rows[rows],
            y[rows],
            None if w is None else w[rows],
            block_rows,
        )
        model = DaskLGBMClassifier(
            client=client,
            n_estimators=learner.n_estimators,
            learning_rate=learner.learning_rate,
            num_leaves=learner.num_leaves,
            min_child_samples=learner.min_child_samples,
            colsample_bytree=learner.colsample_bytree,
            reg_lambda=learner.reg_lambda,
            random_state=learner.random_state,
            verbose=-1,
        ).fit(X, labels, sample_weight=weights)
        learner.models_.append(model.to_local())
        del X, labels, weights, futures
    return learner


def _scattered_rows(
    client, features: np.ndarray, prompt: np.ndarray, y: np.ndarray, w, block_rows: int
):
    """One candidate's soft-label rows as Dask arrays of scattered blocks.

    Returns ``X`` (float32, ``(n, d)``), ``labels`` (int64) and ``weights``
    (float64), chunked alike in blocks of at most ``2 * block_rows`` rows; only
    one block is expanded in this process at a time. The scattered futures come
    back too: the arrays only name their keys, so the caller keeps them alive
    until the fit is done.
    """
    import dask.array as da
    from dask import delayed

    d = features.shape[1]
    Xs, ls, ws, futures = [], [], [], []
    for start in range(0, len(prompt), block_rows):
        part = slice(start, start + block_rows)
        X, labels, weights = soft_label_rows(
            features[prompt[part]], y[part], None if w is None else w[part]
        )
        n = len(labels)
        X_f, l_f, w_f = client.scatter(
            [X.astype(np.float32), labels.astype(np.int64), weights.astype(np.float64)],
            hash=False,  # equal blocks (all-ones weights) must not share a key
        )
        futures += [X_f, l_f, w_f]
        Xs.append(da.from_delayed(delayed(X_f), shape=(n, d), dtype=np.float32))
        ls.append(da.from_delayed(delayed(l_f), shape=(n,), dtype=np.int64))
        ws.append(da.from_delayed(delayed(w_f), shape=(n,), dtype=np.float64))
    return da.concatenate(Xs), da.concatenate(ls), da.concatenate(ws), futures

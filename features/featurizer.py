"""Request -> feature vector: the single definition used offline and online."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from features.context import RequestContext, context_features
from features.encoder import make_encoder
from features.routing_text import routing_text
from features.spec import FeatureSpec
from features.text_stats import TEXT_STATS, text_stats_batch


class Featurizer:
    """Build ``[embedding, text statistics, context]`` vectors as declared by a `FeatureSpec`.

    Parameters
    ----------
    spec : FeatureSpec
    model_dir : path
        Folder with the spec's encoder files (`features.encoder.ENCODER_FILES`): a
        bundle or the encoder cache.
    intra_op_threads : int
        onnxruntime threads per encoder call.
    workers : int
        Texts encoded in parallel by `transform_texts` (batch featurizing).
    """

    def __init__(
        self,
        spec: FeatureSpec,
        model_dir: str | Path,
        *,
        intra_op_threads: int = 1,
        workers: int = 1,
    ):
        self.spec = spec
        self.workers = workers
        self.encoder = make_encoder(
            spec.encoder,
            model_dir,
            max_tokens=spec.max_tokens,
            head_tokens=spec.head_tokens,
            intra_op_threads=intra_op_threads,
        )
        if self.encoder.dim != spec.embedding_dim:
            raise ValueError(
                f"The encoder in {model_dir} gives {self.encoder.dim}-d embeddings; "
                f"the feature spec expects {spec.embedding_dim}."
            )
        self._stat_index = [TEXT_STATS.index(name) for name in spec.text_stats]
        self._context_width = len(spec.context_names)

    def text_of(
        self, prompt: str | None = None, messages: Sequence[Mapping[str, Any]] | None = None
    ) -> str:
        """The routing text of one request (see `features.routing_text`)."""
        return routing_text(prompt, messages, source=self.spec.text_source)

    def transform_texts(
        self, texts: list[str], contexts: Sequence[RequestContext] | None = None
    ) -> np.ndarray:
        """Feature matrix, shape ``(len(texts), spec.n_features)``, float32.

        ``contexts`` (one per text) feed the spec's request-context columns; left
        out, every text gets an empty context (no task, no team, one message), which
        is also what a spec without context columns ignores.
        """
        embedding = self.encoder.encode(texts, workers=self.workers)
        stats = text_stats_batch(texts)[:, self._stat_index]
        parts = [embedding, stats]
        if self._context_width:
            if contexts is None:
                contexts = [RequestContext()] * len(texts)
            if len(contexts) != len(texts):
                raise ValueError(f"Got {len(contexts)} contexts for {len(texts)} texts.")
            parts.append(
                context_features(
                    contexts,
                    tasks=self.spec.context_tasks,
                    teams=self.spec.context_teams,
                    conversation_depth=self.spec.conversation_depth,
                )
            )
        return np.hstack(parts).astype(np.float32, copy=False)

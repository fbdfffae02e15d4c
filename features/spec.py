"""The declared feature set: one versioned spec written into every bundle and read
back by serving, so training and serving build the same vector from the same text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from features.context import context_feature_names
from features.routing_text import TEXT_SOURCES
from features.text_stats import TEXT_STATS

#: Version 2 added ``encoder``; version-1 specs (older bundles) still load, as MiniLM.
#: Version 3 added the request context (``context_tasks``, ``context_teams``,
#: ``conversation_depth``); older specs load with none.
FEATURE_SPEC_VERSION = 3
SUPPORTED_FEATURE_SPEC_VERSIONS = (1, 2, 3)
#: Sentence encoders a spec can name, with the width of their embeddings:
#: ``minilm`` is all-MiniLM-L6-v2 as int8 ONNX; ``static`` its distilled static token
#: vectors (`features.encoder.StaticEncoder`), about 50x faster on a long prompt.
ENCODER_DIMS = {"minilm": 384, "static": 256}


@dataclass(frozen=True)
class FeatureSpec:
    """How a request becomes a feature vector.

    Parameters
    ----------
    text_source : {"last_user", "all"}
        Which part of ``messages`` is embedded (see `features.routing_text`).
    max_tokens : int
        Token cap of the encoder input, special tokens included.
    head_tokens : int
        Tokens kept from the start of a long text; the rest of the cap is filled
        from its end, where a long prompt's question usually is.
    text_stats : tuple of str
        Names of the `features.text_stats` statistics appended after the embedding.
    embedding_dim : int
        Width of the sentence embedding.
    encoder : {"minilm", "static"}
        Which sentence encoder embeds the text (see `ENCODER_DIMS`).
    context_tasks, context_teams : tuple of str
        Task (team) tags one-hot encoded, plus an ``(other)`` column; empty: no
        task (team) columns. Chosen from the training log (`features.context`).
    conversation_depth : bool
        Append ``log(1 + number of messages)``.

    The vector is ``[embedding (embedding_dim), text statistics (len(text_stats)),
    context (features.context)]``.
    """

    text_source: str = "last_user"
    max_tokens: int = 256
    head_tokens: int = 64
    text_stats: tuple[str, ...] = field(default=TEXT_STATS)
    embedding_dim: int = 384
    version: int = FEATURE_SPEC_VERSION
    encoder: str = "minilm"
    context_tasks: tuple[str, ...] = ()
    context_teams: tuple[str, ...] = ()
    conversation_depth: bool = False

    def __post_init__(self) -> None:
        if self.text_source not in TEXT_SOURCES:
            raise ValueError(
                f"text_source must be one of {TEXT_SOURCES}, got {self.text_source!r}."
            )
        if not 8 <= self.max_tokens <= 512:
            raise ValueError(f"max_tokens must be in [8, 512] (MiniLM), got {self.max_tokens}.")
        if not 0 <= self.head_tokens <= self.max_tokens - 2:
            raise ValueError(
                f"head_tokens must be in [0, max_tokens - 2 = {self.max_tokens - 2}], "
                f"got {self.head_tokens}."
            )
        unknown = set(self.text_stats) - set(TEXT_STATS)
        if unknown:
            raise ValueError(f"Unknown text statistics {sorted(unknown)}; known: {TEXT_STATS}.")
        if self.version not in SUPPORTED_FEATURE_SPEC_VERSIONS:
            raise ValueError(
                f"Feature spec version {self.version} is not supported by this code "
                f"(versions {SUPPORTED_FEATURE_SPEC_VERSIONS}); retrain the bundle."
            )
        if self.encoder not in ENCODER_DIMS:
            raise ValueError(
                f"encoder must be one of {sorted(ENCODER_DIMS)}, got {self.encoder!r}."
            )
        if self.version < 2 and self.encoder != "minilm":
            raise ValueError(
                f"Feature spec version {self.version} predates the `encoder` field and "
                f"only knows MiniLM, got encoder={self.encoder!r}; write version 2."
            )
        has_context = self.context_tasks or self.context_teams or self.conversation_depth
        if self.version < 3 and has_context:
            raise ValueError(
                f"Feature spec version {self.version} predates the request context; "
                "write version 3."
            )

    @cached_property
    def context_names(self) -> list[str]:
        """Names of the request-context columns (`features.context`)."""
        return context_feature_names(
            self.context_tasks, self.context_teams, self.conversation_depth
        )

    @property
    def n_features(self) -> int:
        return self.embedding_dim + len(self.text_stats) + len(self.context_names)

    @property
    def feature_names(self) -> list[str]:
        embedding = [f"emb_{i}" for i in range(self.embedding_dim)]
        return embedding + list(self.text_stats) + self.context_names

    def to_dict(self) -> dict[str, Any]:
        """The manifest's form. A spec older than version 3 has no context fields, and
        writes none: the manifest it came from must hash to its router version."""
        d = asdict(self)
        for key in ("text_stats", "context_tasks", "context_teams"):
            d[key] = list(getattr(self, key))
        if self.version < 3:
            for key in ("context_tasks", "context_teams", "conversation_depth"):
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        """Parse a manifest's spec; a version-1 spec (no ``encoder``) is MiniLM."""
        d = dict(d)
        d["text_stats"] = tuple(d.get("text_stats", TEXT_STATS))
        for key in ("context_tasks", "context_teams"):
            d[key] = tuple(d.get(key, ()))
        return cls(**d)

    @classmethod
    def for_encoder(cls, encoder: str, **kwargs: Any) -> FeatureSpec:
        """A spec for ``encoder`` with its embedding width.

        Examples
        --------
        >>> FeatureSpec.for_encoder("static").embedding_dim
        256
        """
        if encoder not in ENCODER_DIMS:
            raise ValueError(f"encoder must be one of {sorted(ENCODER_DIMS)}, got {encoder!r}.")
        return cls(encoder=encoder, embedding_dim=ENCODER_DIMS[encoder], **kwargs)

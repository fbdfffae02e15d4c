"""A bundle's policy as `/route` serves it, for offline evaluation.

`/route` scores every candidate of the bundle with :class:`serving.scoring.BundleScorer`,
fills the knobs a request leaves out from the manifest's ``policy`` and lets
:func:`serving.policy.choose` pick among the allowed candidates (all of them, or the
request's ``candidates``). :class:`ServedPolicy` does the same on a batch of texts, so
an offline figure describes the router a gateway would get, not a variant of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from features.context import RequestContext
from serving.bundle import Bundle
from serving.scoring import BundleScorer
from serving.service import policy_params


class ServedPolicy:
    """A loaded bundle with its own policy defaults, over all or some of its candidates.

    Parameters
    ----------
    bundle : Bundle
        A verified bundle (:func:`serving.bundle.load_bundle`).
    candidates : sequence of str, optional
        Restrict the decisions to these candidates, as a `/route` request with
        ``candidates`` does. Default: every candidate of the bundle.
    workers : int, default=2
        Texts encoded in parallel.

    Attributes
    ----------
    params : PolicyParams
        The manifest's ``value_usd``, ``min_success`` and ``max_cost_usd``: what a
        request that sets no knob is served with.
    candidates : tuple of str
        The allowed candidates, in the bundle's order (the order of the columns of
        :meth:`score`).
    allowed : ndarray of bool, shape (n_bundle_candidates,)
        The mask `/route` passes to :func:`serving.policy.choose`.

    Raises
    ------
    ValueError
        If a requested candidate is not in the bundle (the message lists the bundle's).
    """

    def __init__(
        self, bundle: Bundle, candidates: Sequence[str] | None = None, *, workers: int = 2
    ) -> None:
        names = bundle.candidate_names
        if candidates is not None:
            unknown = [c for c in candidates if c not in names]
            if unknown or not candidates:
                raise ValueError(
                    f"Unknown candidates {unknown or list(candidates)}: the bundle "
                    f"{bundle.path} routes between {list(names)}. Pass a subset of those "
                    "(comma-separated), or leave --candidates out to evaluate all of them."
                )
        wanted = set(names if candidates is None else candidates)
        self.bundle = bundle
        self.allowed = np.array([name in wanted for name in names], dtype=bool)
        self.candidates = tuple(name for name in names if name in wanted)
        policy = dict(bundle.policy)
        if policy.get("reference_model") not in self.candidates:
            # Served without its reference, the policy has no model to anchor to.
            policy["reference_model"], policy["reference_margin"] = None, 0.0
        self.params = policy_params(policy, candidates=self.candidates)
        self._scorer = BundleScorer(bundle, workers=workers)

    @property
    def feature_key(self) -> tuple[str, ...]:
        """Bundles with equal keys featurize a text identically (same encoder and spec),
        so one feature matrix serves them all."""
        files = self.bundle.manifest.get("files", {})
        encoder_files = tuple(f"{k}={v}" for k, v in sorted(files.items()) if "encoder" in k)
        spec = repr(sorted(self.bundle.manifest["feature_spec"].items()))
        return (spec, files.get("tokenizer.json", ""), *encoder_files)

    def featurize(
        self, texts: list[str], contexts: Sequence[RequestContext] | None = None
    ) -> np.ndarray:
        """Feature matrix of routing texts and their request contexts (task, team,
        depth: `features.context`), shape (n_texts, n_features)."""
        return self._scorer.featurizer.transform_texts(texts, contexts)

    def score(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``p_success`` and ``expected_cost_usd`` of the allowed candidates.

        Parameters
        ----------
        features : ndarray of float, shape (n_prompts, n_features)
            From :meth:`featurize` (of this or any bundle with the same
            :attr:`feature_key`).

        Returns
        -------
        p_success, expected_cost_usd : ndarray of float, shape (n_prompts, n_allowed)
            Columns in :attr:`candidates` order. Deciding on these columns is deciding
            on every candidate with :attr:`allowed` as the mask: the policy's choice,
            its ties (first best, cheaper first) and its fallbacks only ever look at
            allowed candidates.
        """
        scores = self._scorer.score_features(features)
        return scores.p_success[:, self.allowed], scores.expected_cost_usd[:, self.allowed]


def bundle_label(bundle: Bundle) -> str:
    """``folder (chosen learner setting)``, e.g. ``bundle-knn (knn-k20)``: how reports
    name a bundle."""
    training = bundle.manifest.get("training") or {}
    chosen = (training.get("selection") or {}).get("chosen") or (
        bundle.manifest.get("scorer") or {}
    ).get("learner")
    return f"{bundle.path.name} ({chosen})" if chosen else bundle.path.name

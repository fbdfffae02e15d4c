"""The bundle manifest: one typed, versioned schema, read and written here only.

`training.export` writes a manifest through `write_manifest`; `serving.bundle`
reads it through `read_manifest`. Both go through `Manifest.to_dict` and
`Manifest.from_dict`, so a field added on one side cannot be missed on the other,
and a manifest of an unknown version is refused with a message instead of half read.

Versions
--------
1
    The first layout.
2
    Adds ``excluded_candidates`` (models of the logs left out, with the reason)
    and ``training.min_calls``. Version-1 manifests still load; they read as
    having excluded nothing.
3
    Adds the optional ``training.log``: the kind of log trained on
    (``full_information``, ``bandit`` or ``partial``), and on the latter two where
    the propensities came from (``logged`` or ``estimated``, with how well the
    estimate calibrates) and how the rows were weighted. Version-1 and -2
    manifests still load; they read as ``log`` None (not recorded).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from features.prices import ModelPrice
from features.spec import FeatureSpec

MANIFEST_FILE = "manifest.json"
#: The version `write_manifest` writes.
SCHEMA_VERSION = 3
#: The versions `read_manifest` reads (see the module docstring).
SUPPORTED_SCHEMA_VERSIONS = (1, 2, 3)
#: Manifest keys left out of the router version: they do not change behaviour.
_UNVERSIONED_KEYS = ("router_version", "created_at")


class BundleError(ValueError):
    """The bundle is missing, malformed or does not match its hashes."""


def router_version_of(manifest: Mapping[str, Any]) -> str:
    """Content hash of a manifest's JSON form (file hashes included), 16 hex characters."""
    content = {k: v for k, v in manifest.items() if k not in _UNVERSIONED_KEYS}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _fields(
    d: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``d`` checked to be a mapping with every ``required`` key and no unknown one."""
    label = f"Manifest section {where!r}" if where else "The manifest"
    if not isinstance(d, Mapping):
        raise BundleError(f"{label} must be an object, got {type(d).__name__}.")
    missing = [k for k in required if k not in d]
    if missing:
        raise BundleError(f"{label} lacks the keys {missing}.")
    unknown = sorted(set(d) - set(required) - set(optional))
    if unknown:
        raise BundleError(
            f"{label} has unknown keys {unknown} (known: "
            f"{sorted((*required, *optional))}); was it written by a newer outcome-router?"
        )
    return dict(d)


@dataclass(frozen=True)
class Candidate:
    """One model the router can pick, with its catalog price when known."""

    name: str
    family: str
    price: ModelPrice | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "price": self.price.to_dict() if self.price else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Candidate:
        d = _fields(d, "candidate", ("name",), ("family", "price"))
        return cls(
            name=d["name"],
            family=d.get("family") or d["name"],
            price=ModelPrice.from_dict(d["price"]) if d.get("price") else None,
        )


@dataclass(frozen=True)
class ExcludedCandidate:
    """A model of the logs that is not a candidate, and why (``train --min-calls``)."""

    model: str
    reason: str
    n_graded_calls: int

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "reason": self.reason, "n_graded_calls": self.n_graded_calls}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExcludedCandidate:
        d = _fields(d, "excluded candidate", ("model", "reason", "n_graded_calls"))
        return cls(model=d["model"], reason=d["reason"], n_graded_calls=int(d["n_graded_calls"]))


@dataclass(frozen=True)
class ScorerGraph:
    """``scorer.onnx``: ``input (N, n_features) -> output (N, n_candidates)`` p_success.

    Attributes
    ----------
    file, input, output : str
        The ONNX file and its input and output tensor names (checked at load).
    learner : str
        Registered learner name (`training.learners.LEARNERS`).
    params : dict
        The learner's hyperparameters, as JSON.
    calibration : dict or None
        Per-candidate calibration applied by `serving.calibration`.
    """

    file: str
    input: str
    output: str
    learner: str
    params: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "input": self.input,
            "output": self.output,
            "learner": self.learner,
            "params": dict(self.params),
            "calibration": self.calibration,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScorerGraph:
        keys = ("file", "input", "output", "learner")
        d = _fields(d, "scorer", keys, ("params", "calibration"))
        return cls(**d)


@dataclass(frozen=True)
class CostComponent:
    """One priced unit of a candidate's cost: ``price * (exp(log_units) * smearing - offset)``."""

    candidate: int
    name: str
    price: float
    offset: float
    smearing: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "name": self.name,
            "price": self.price,
            "offset": self.offset,
            "smearing": self.smearing,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CostComponent:
        return cls(
            **_fields(d, "cost component", ("candidate", "name", "price", "offset", "smearing"))
        )


@dataclass(frozen=True)
class CostGraph:
    """``cost.onnx``: ``input (N, n_features) -> output (N, n_components)`` log units."""

    file: str
    input: str
    output: str
    components: tuple[CostComponent, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "input": self.input,
            "output": self.output,
            "components": [c.to_dict() for c in self.components],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CostGraph:
        d = _fields(d, "cost_model", ("file", "input", "output", "components"))
        return cls(
            file=d["file"],
            input=d["input"],
            output=d["output"],
            components=tuple(CostComponent.from_dict(c) for c in d["components"]),
        )


@dataclass(frozen=True)
class PolicyDefaults:
    """The decision knobs a request does not set, and the fallback model.

    ``target_fit`` records how ``value_usd`` was fit to the ``--target``
    (`training.policy_target`).
    """

    value_usd: float
    fallback_model: str
    min_success: float | None = None
    max_cost_usd: float | None = None
    target: str | None = None
    target_fit: dict[str, Any] | None = None
    reference_model: str | None = None
    reference_margin: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = {
            "value_usd": self.value_usd,
            "fallback_model": self.fallback_model,
            "min_success": self.min_success,
            "max_cost_usd": self.max_cost_usd,
            "target": self.target,
            "target_fit": self.target_fit,
        }
        # Written only when set, so a manifest without an anchor (all before issue 12)
        # reads and hashes exactly as it was written.
        if self.reference_model is not None:
            out["reference_model"] = self.reference_model
            out["reference_margin"] = self.reference_margin
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PolicyDefaults:
        optional = (
            "min_success",
            "max_cost_usd",
            "target",
            "target_fit",
            "reference_model",
            "reference_margin",
        )
        return cls(**_fields(d, "policy", ("value_usd", "fallback_model"), optional))


@dataclass(frozen=True)
class TrainingSummary:
    """What the bundle was trained on and how it scored.

    Attributes
    ----------
    n_calls, n_quarantined, n_prompts, n_graded_calls : int
    min_calls : int or None
        Graded calls a candidate needed (None in version-1 manifests).
    rows_per_candidate, mean_outcome_per_candidate : dict of str
    selection : dict
        Learner selection: ``chosen``, ``criterion``, every setting's scores.
    calibration : dict
        The calibration choice and its cross-fitted log-losses.
    metrics : dict of str -> float
        The flat metrics also logged to MLflow.
    log : dict or None
        What kind of log it was and how training corrected for its logging policy
        (`training.train`): ``kind``, ``correction`` and, when corrected,
        ``propensity_source`` (``logged`` or ``estimated``),
        ``propensity_calibration``, ``weights`` and the per-candidate mean outcome
        naive and weighted. None in manifests before version 3.
    """

    n_calls: int
    n_quarantined: int
    n_prompts: int
    n_graded_calls: int
    rows_per_candidate: dict[str, int]
    mean_outcome_per_candidate: dict[str, float | None]
    selection: dict[str, Any]
    calibration: dict[str, Any]
    metrics: dict[str, float]
    min_calls: int | None = None
    log: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {
            "n_calls": self.n_calls,
            "n_quarantined": self.n_quarantined,
            "n_prompts": self.n_prompts,
            "n_graded_calls": self.n_graded_calls,
            "rows_per_candidate": dict(self.rows_per_candidate),
            "mean_outcome_per_candidate": dict(self.mean_outcome_per_candidate),
            "selection": self.selection,
            "calibration": self.calibration,
            "metrics": dict(self.metrics),
        }
        if self.min_calls is not None:
            d["min_calls"] = self.min_calls
        if self.log is not None:
            d["log"] = self.log
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingSummary:
        optional = ("min_calls", "log")
        required = tuple(f for f in cls.__dataclass_fields__ if f not in optional)
        return cls(**_fields(d, "training", required, optional))


@dataclass(frozen=True)
class Manifest:
    """The contents of ``manifest.json`` (DESIGN.md section 5).

    Attributes
    ----------
    schema_version : int
        Layout version, one of `SUPPORTED_SCHEMA_VERSIONS`.
    router_version : str
        Content hash of the manifest (`router_version_of`); "" until written.
    created_at : str
        ISO 8601 time of writing; not part of the router version.
    candidates : tuple of Candidate
        In the column order of the graphs' outputs.
    feature_spec : FeatureSpec
    scorer : ScorerGraph
    cost_model : CostGraph
    policy : PolicyDefaults
    training : TrainingSummary
    files : dict of str -> str
        sha256 of every bundle file but the manifest.
    excluded_candidates : tuple of ExcludedCandidate
        Models of the logs left out of ``candidates`` (version 2).
    """

    candidates: tuple[Candidate, ...]
    feature_spec: FeatureSpec
    scorer: ScorerGraph
    cost_model: CostGraph
    policy: PolicyDefaults
    training: TrainingSummary
    files: dict[str, str]
    excluded_candidates: tuple[ExcludedCandidate, ...] = ()
    schema_version: int = SCHEMA_VERSION
    router_version: str = ""
    created_at: str = ""

    @property
    def candidate_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.candidates)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; a version-1 manifest keeps its version-1 layout."""
        d: dict[str, Any] = {
            "schema_version": self.schema_version,
            "router_version": self.router_version,
            "created_at": self.created_at,
            "candidates": [c.to_dict() for c in self.candidates],
            "feature_spec": self.feature_spec.to_dict(),
            "scorer": self.scorer.to_dict(),
            "cost_model": self.cost_model.to_dict(),
            "policy": self.policy.to_dict(),
            "training": self.training.to_dict(),
            "files": dict(self.files),
        }
        if self.schema_version >= 2:
            d["excluded_candidates"] = [e.to_dict() for e in self.excluded_candidates]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Manifest:
        """Parse and check a manifest's JSON form.

        Raises
        ------
        BundleError
            If its schema version is unknown, or a key is missing, unknown or of
            the wrong shape (the message names it).
        """
        if not isinstance(d, Mapping):
            raise BundleError(f"A manifest must be a JSON object, got {type(d).__name__}.")
        version = d.get("schema_version")
        if version not in SUPPORTED_SCHEMA_VERSIONS:
            raise BundleError(
                f"Bundle schema version {version!r} is not supported (this code reads "
                f"versions {list(SUPPORTED_SCHEMA_VERSIONS)}); retrain the bundle with this "
                "version of outcome-router, or serve it with the version that wrote it."
            )
        required = (
            "schema_version",
            "router_version",
            "candidates",
            "feature_spec",
            "scorer",
            "cost_model",
            "policy",
            "training",
            "files",
        )
        if version >= 2:
            required = (*required, "excluded_candidates")
        d = _fields(d, "", required, ("created_at",))
        try:
            feature_spec = FeatureSpec.from_dict(d["feature_spec"])
        except (TypeError, ValueError) as exc:
            raise BundleError(f"Manifest feature_spec is invalid: {exc}") from exc
        return cls(
            schema_version=version,
            router_version=d["router_version"],
            created_at=d.get("created_at", ""),
            candidates=tuple(Candidate.from_dict(c) for c in d["candidates"]),
            feature_spec=feature_spec,
            scorer=ScorerGraph.from_dict(d["scorer"]),
            cost_model=CostGraph.from_dict(d["cost_model"]),
            policy=PolicyDefaults.from_dict(d["policy"]),
            training=TrainingSummary.from_dict(d["training"]),
            files=dict(d["files"]),
            excluded_candidates=tuple(
                ExcludedCandidate.from_dict(e) for e in d.get("excluded_candidates", ())
            ),
        )


def write_manifest(folder: str | Path, manifest: Manifest) -> Manifest:
    """Write ``manifest`` into ``folder`` with its router version set; return what was written."""
    content = manifest.to_dict()
    content["router_version"] = router_version_of(content)
    (Path(folder) / MANIFEST_FILE).write_text(json.dumps(content, indent=2, sort_keys=True))
    return Manifest.from_dict(content)


def read_manifest(folder: str | Path) -> Manifest:
    """Read and check ``folder``'s manifest (not the files it lists: `serving.bundle`).

    Raises
    ------
    BundleError
        If the manifest is missing, not JSON, of an unknown version or shape, or
        does not hash to its router version (it was edited after training).
    """
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(
            f"No {MANIFEST_FILE} in {folder}: expected a bundle folder written by "
            "`outcome-router train --out`."
        )
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path} is not valid JSON: {exc}") from exc
    try:
        manifest = Manifest.from_dict(content)
    except BundleError as exc:
        raise BundleError(f"{path}: {exc}") from exc
    expected = router_version_of(content)
    if manifest.router_version != expected:
        raise BundleError(
            f"The manifest hashes to router version {expected}, but says "
            f"{manifest.router_version}: the manifest was edited after training."
        )
    return manifest

"""The MLflow model registry for bundles: register, promote, download.

`training.tracking.log_training_run` logs each bundle folder as run artifacts under
``bundle/``. `register_bundle` turns that folder into a version of a registered
model (default ``outcome-router``) whose source is the folder itself: no ``MLmodel``
wrapper and no pickles, the version is the bundle exactly as `train` wrote it
(ONNX + JSON), and its sha256 manifest is checked again on the way out. Versions
are tagged with the bundle's ``router_version`` and the validation area, so the
registry can be read (and champions compared) without downloading anything.

`promote` points an alias (default ``champion``) at a version; serving then names
the alias rather than a folder: ``outcome-router serve --bundle
models:/outcome-router@champion``. Serving never imports mlflow, so it resolves such
a URI by running this module in a child process::

    python -m training.registry download models:/outcome-router@champion --mlruns mlruns

which copies the version into ``<mlruns>/served/<name>-<version>``, verifies it with
`serving.bundle.load_bundle` and prints the folder on stdout (see
`serving.registry_fetch.fetch_registry_bundle`).

The store is `training.tracking.default_tracking_uri`: ``$MLFLOW_TRACKING_URI`` or
``sqlite:///<mlruns>/mlflow.db``; ``$MLFLOW_REGISTRY_URI`` overrides the registry.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from serving.registry_fetch import MODELS_URI_PREFIX
from training.tracking import default_tracking_uri

DEFAULT_MODEL_NAME = "outcome-router"
DEFAULT_ALIAS = "champion"
#: Run artifact folder holding the bundle (see `training.tracking.log_training_run`).
BUNDLE_ARTIFACT_PATH = "bundle"
#: Version tag <- the first run metric present (cross-validated, else held-out), so
#: versions compare without a download.
METRIC_TAGS = {
    "val_area": ("cv_area", "val_area"),
    "val_log_loss": ("cv_log_loss", "val_log_loss"),
}
_VERSION_RE = re.compile(r"^[1-9]\d*$")
_ALIAS_RE = re.compile(r"^[A-Za-z_][\w-]*$")


class RegistryError(ValueError):
    """A registry request names something that does not exist or cannot be served.

    A `ValueError`, so ``outcome-router`` prints it as one ``error:`` line.
    """


@dataclass(frozen=True)
class ModelRef:
    """A parsed ``models:/`` URI: a registered model and one version or one alias.

    Parameters
    ----------
    name : str
        Registered model name.
    version : str or None
        Version number (digits), for ``models:/NAME/VERSION``.
    alias : str or None
        Alias, for ``models:/NAME@ALIAS``.

    Examples
    --------
    >>> ModelRef.parse("models:/outcome-router@champion")
    ModelRef(name='outcome-router', version=None, alias='champion')
    >>> ModelRef.parse("models:/outcome-router/3").version
    '3'
    """

    name: str
    version: str | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, uri: str) -> ModelRef:
        """Parse ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.

        Raises
        ------
        RegistryError
            For any other form (stages such as ``/Production`` are deprecated in
            MLflow 3 and not accepted).
        """
        forms = "models:/NAME@ALIAS or models:/NAME/VERSION (e.g. models:/outcome-router@champion)"
        if not uri.startswith(MODELS_URI_PREFIX):
            raise RegistryError(f"Expected a registry URI {forms}, got {uri!r}.")
        rest = uri[len(MODELS_URI_PREFIX) :].strip("/")
        if "@" in rest:
            name, _, alias = rest.rpartition("@")
            if name and "/" not in name and _ALIAS_RE.match(alias):
                return cls(name=name, alias=alias)
        else:
            name, _, version = rest.rpartition("/")
            if name and "/" not in name and _VERSION_RE.match(version):
                return cls(name=name, version=version)
        raise RegistryError(f"Expected a registry URI {forms}, got {uri!r}.")

    @property
    def uri(self) -> str:
        """The ``models:/`` URI this reference was parsed from (normalised)."""
        if self.alias is not None:
            return f"{MODELS_URI_PREFIX}{self.name}@{self.alias}"
        return f"{MODELS_URI_PREFIX}{self.name}/{self.version}"


@dataclass(frozen=True)
class VersionInfo:
    """What the registry knows about one bundle version, without downloading it.

    Parameters
    ----------
    name, version : str
        Registered model name and version number.
    aliases : list of str
        Aliases pointing at this version (``champion``, ...).
    router_version : str or None
        The bundle's content hash (its ``manifest.json`` ``router_version``).
    val_area : float or None
        Area under the validation cost-quality curve of the run that trained it
        (None when validation had too few full-information prompts).
    run_id : str or None
        MLflow run that logged the bundle.
    source : str
        Where the version's files live (the run's ``bundle/`` artifact folder).
    """

    name: str
    version: str
    aliases: list[str]
    router_version: str | None
    val_area: float | None
    run_id: str | None
    source: str

    @classmethod
    def from_mlflow(cls, mv: Any) -> VersionInfo:
        tags = dict(mv.tags or {})
        area = tags.get("val_area")
        return cls(
            name=mv.name,
            version=str(mv.version),
            aliases=sorted(mv.aliases or []),
            router_version=tags.get("router_version"),
            val_area=float(area) if area not in (None, "", "None") else None,
            run_id=mv.run_id,
            source=mv.source,
        )

    def describe(self) -> str:
        """One line for error messages and listings."""
        aliases = f" @{',@'.join(self.aliases)}" if self.aliases else ""
        area = f", val_area {self.val_area:.4g}" if self.val_area is not None else ""
        return f"{self.version}{aliases} (router_version {self.router_version}{area})"


# --------------------------------------------------------------------------- store


def _store_uris(tracking_uri: str | None, root: str | Path) -> tuple[str, str]:
    tracking = tracking_uri or default_tracking_uri(root)
    return tracking, os.environ.get("MLFLOW_REGISTRY_URI") or tracking


def _client(tracking_uri: str | None, root: str | Path) -> Any:
    """An `mlflow.MlflowClient` on the store; refuse to conjure an empty default store.

    Reading from a sqlite file that does not exist would silently create an empty
    database and then report "model not found", hiding the real mistake (a wrong
    ``--mlruns`` or working directory).
    """
    from mlflow import MlflowClient

    tracking, registry = _store_uris(tracking_uri, root)
    if registry.startswith("sqlite:///"):
        db = Path(registry.removeprefix("sqlite:///"))
        if not db.is_file():
            raise RegistryError(
                f"No MLflow store at {db}: train with tracking first (outcome-router train "
                "without --no-mlflow), or point --mlruns / MLFLOW_TRACKING_URI at the store "
                "that holds the registered model."
            )
    return MlflowClient(tracking_uri=tracking, registry_uri=registry)


def _mlflow_errors() -> type[Exception]:
    """`mlflow.exceptions.MlflowException`, imported only when the registry is used."""
    from mlflow.exceptions import MlflowException

    return MlflowException


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "error_code", ""))


def list_versions(
    name: str = DEFAULT_MODEL_NAME,
    *,
    tracking_uri: str | None = None,
    root: str | Path = "mlruns",
) -> list[VersionInfo]:
    """Every version of a registered model, oldest first.

    Raises
    ------
    RegistryError
        If the store or the registered model does not exist (the message lists the
        registered models there are).
    """
    client = _client(tracking_uri, root)
    _registered_model(client, name)
    versions = client.search_model_versions(f"name = '{_quote(name)}'")
    infos = [VersionInfo.from_mlflow(_with_aliases(client, mv)) for mv in versions]
    return sorted(infos, key=lambda v: int(v.version))


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def _with_aliases(client: Any, mv: Any) -> Any:
    """``search_model_versions`` may leave aliases out; ``get_model_version`` fills them."""
    return mv if mv.aliases else client.get_model_version(mv.name, mv.version)


def _registered_model(client: Any, name: str) -> Any:
    try:
        return client.get_registered_model(name)
    except _mlflow_errors() as exc:
        if _error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
            raise
        names = sorted(m.name for m in client.search_registered_models())
        raise RegistryError(
            f"No registered model {name!r} in the MLflow store; registered models: "
            f"{names or 'none'}. Each `outcome-router train` registers one (default name "
            f"{DEFAULT_MODEL_NAME!r})."
        ) from None


def _unknown(client: Any, ref: ModelRef) -> RegistryError:
    versions = [
        VersionInfo.from_mlflow(_with_aliases(client, mv))
        for mv in client.search_model_versions(f"name = '{_quote(ref.name)}'")
    ]
    versions.sort(key=lambda v: int(v.version))
    what = f"alias {ref.alias!r}" if ref.alias else f"version {ref.version}"
    listing = "; ".join(v.describe() for v in versions) or "none"
    hint = (
        f" Set it with `outcome-router promote VERSION --name {ref.name} --alias {ref.alias}`."
        if ref.alias
        else ""
    )
    return RegistryError(
        f"Registered model {ref.name!r} has no {what}; its versions: {listing}.{hint}"
    )


def resolve_version(
    uri: str | ModelRef,
    *,
    tracking_uri: str | None = None,
    root: str | Path = "mlruns",
) -> VersionInfo:
    """The version a ``models:/`` URI names (following an alias).

    Raises
    ------
    RegistryError
        For a malformed URI, or an unknown model, version or alias (the message
        lists the versions there are, with their aliases).
    """
    ref = uri if isinstance(uri, ModelRef) else ModelRef.parse(uri)
    client = _client(tracking_uri, root)
    return VersionInfo.from_mlflow(_get_version(client, ref))


def _get_version(client: Any, ref: ModelRef) -> Any:
    _registered_model(client, ref.name)
    try:
        if ref.alias is not None:
            return client.get_model_version_by_alias(ref.name, ref.alias)
        return client.get_model_version(ref.name, ref.version)
    except _mlflow_errors() as exc:
        if _error_code(exc) not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        raise _unknown(client, ref) from None


# --------------------------------------------------------------------------- register


def register_bundle(
    run_id: str,
    *,
    name: str = DEFAULT_MODEL_NAME,
    tracking_uri: str | None = None,
    root: str | Path = "mlruns",
) -> str:
    """Register the bundle a training run logged as a new version; return the version.

    The version's source is the run's ``bundle/`` artifact folder, so nothing is
    copied or wrapped. It is tagged with the bundle's ``router_version`` (read from
    the logged ``manifest.json``, the one authority on it) and the run's validation
    metrics (`METRIC_TAGS`; ``val_area`` is the figure champions and challengers
    compare on).

    Idempotent per run: registering a run that already has a version of ``name``
    returns that version, so `train` and a notebook may both call it.

    Parameters
    ----------
    run_id : str
        Run returned by `training.tracking.log_training_run`.
    name : str
        Registered model name; created on first use.
    tracking_uri : str, optional
        Default `training.tracking.default_tracking_uri` of ``root``.
    root : path
        The ``mlruns`` folder of the default store.

    Returns
    -------
    version : str
        The registered version number, e.g. ``"3"``.

    Raises
    ------
    RegistryError
        If the run does not exist or logged no bundle.
    """
    client = _client(tracking_uri, root)
    MlflowException = _mlflow_errors()
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise RegistryError(f"No MLflow run {run_id!r} in the store: {exc.message}") from None
    try:
        client.create_registered_model(
            name,
            description="outcome-router bundles (ONNX + JSON, sha256-verified); "
            "serve one with `outcome-router serve --bundle models:/NAME@ALIAS`.",
        )
    except MlflowException as exc:
        if _error_code(exc) not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    existing = client.search_model_versions(f"name = '{_quote(name)}' and run_id = '{run_id}'")
    if existing:
        return str(min(int(mv.version) for mv in existing))

    manifest = _run_manifest(client, run_id)
    tags = {"router_version": manifest["router_version"]}
    for tag, names in METRIC_TAGS.items():
        found = [run.data.metrics[n] for n in names if n in run.data.metrics]
        if found:
            tags[tag] = repr(float(found[0]))
    if "learner" in run.data.params:
        tags["learner"] = run.data.params["learner"]
    source = f"{run.info.artifact_uri.rstrip('/')}/{BUNDLE_ARTIFACT_PATH}"
    mv = client.create_model_version(
        name,
        source=source,
        run_id=run_id,
        tags=tags,
        description=f"bundle {manifest['router_version']}",
    )
    return str(mv.version)


@contextmanager
def _quiet_downloads() -> Iterator[None]:
    """No MLflow download progress bars: they flood notebooks and server logs."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def _run_manifest(client: Any, run_id: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, _quiet_downloads():
        try:
            path = client.download_artifacts(run_id, f"{BUNDLE_ARTIFACT_PATH}/manifest.json", tmp)
        except Exception as exc:  # the artifact store raises OSError or MlflowException
            raise RegistryError(
                f"Run {run_id} logged no {BUNDLE_ARTIFACT_PATH}/manifest.json artifact, so it "
                "holds no bundle to register; log one with training.tracking.log_training_run."
            ) from exc
        return json.loads(Path(path).read_text())


# --------------------------------------------------------------------------- promote


class PromotionRefused(RegistryError):
    """The challenger's evaluation says it is worth less than the champion (or does not
    say anything about the champion); ``--force`` promotes it anyway."""


#: metrics.json's file name inside an evaluation folder.
EVALUATION_FILE = "metrics.json"


def read_evaluation(path: str | Path) -> dict[str, Any]:
    """``metrics.json`` of `outcome-router evaluate`, given as the file or its folder.

    Raises
    ------
    RegistryError
        If it does not exist or is not an evaluation's JSON.
    """
    path = Path(path)
    file = path / EVALUATION_FILE if path.is_dir() else path
    try:
        metrics = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RegistryError(
            f"Cannot read the evaluation {file}: {exc}. Pass the --out folder (or its "
            "metrics.json) of `outcome-router evaluate --bundle CHALLENGER --compare CHAMPION "
            "--logs CHAMPION_LOGS`."
        ) from None
    if not isinstance(metrics, dict) or "router_version" not in metrics:
        raise RegistryError(f"{file} is not the metrics.json of `outcome-router evaluate`.")
    return metrics


def check_promotion(
    evaluation: dict[str, Any],
    target: VersionInfo,
    champion: VersionInfo | None,
    *,
    source: str = EVALUATION_FILE,
) -> dict[str, Any]:
    """The evidence for promoting ``target`` over ``champion`` in an evaluation.

    The evaluation must be of ``target``'s bundle (same ``router_version``) and, when a
    champion exists and differs, hold a paired comparison with it, written by
    ``evaluate --compare CHAMPION``: off-policy on gateway logs (an
    ``off_policy.comparisons`` entry of the champion's ``router_version``), or read off
    the table on full-information logs (a ``comparisons`` entry).

    Returns
    -------
    evidence : dict
        ``{evaluation, refused, reason}`` plus the comparison's figures
        (``net_value_diff``, ``net_value_diff_ci``, ``quality_diff``...) when one was
        found. ``refused`` is True when the net-value interval lies wholly below 0
        or no comparison with the champion was found; ``reason`` says why in numbers.

    Raises
    ------
    RegistryError
        If the evaluation is of another bundle than ``target`` (not overridable:
        it is evidence about something else).
    """
    evaluated = evaluation.get("router_version")
    if evaluated != target.router_version:
        raise RegistryError(
            f"The evaluation {source} is of router_version {evaluated} "
            f"({evaluation.get('bundle')}), but version {target.version} is router_version "
            f"{target.router_version}: evaluate version {target.version}'s bundle."
        )
    evidence: dict[str, Any] = {"evaluation": source, "refused": False}
    if champion is None or champion.router_version == target.router_version:
        evidence["reason"] = "no other champion to compare with"
        return evidence
    # Gateway logs: the off-policy paired comparison; full-information logs: the
    # comparison read off the table (both carry net_value_diff_ci).
    comparisons = [
        c
        for c in [
            *((evaluation.get("off_policy") or {}).get("comparisons") or []),
            *(evaluation.get("comparisons") or []),
        ]
        if "net_value_diff_ci" in c
    ]
    found = [c for c in comparisons if c.get("router_version") == champion.router_version]
    if not found:
        compared = [c.get("router_version") for c in comparisons] or "nothing"
        evidence.update(
            refused=True,
            reason=f"the evaluation {source} holds no paired comparison with the champion, "
            f"version {champion.version} (router_version {champion.router_version}); it "
            f"compares with {compared}. Run `outcome-router evaluate --bundle CHALLENGER "
            "--compare CHAMPION --logs LOGS` on the champion's gateway logs (or on a "
            "full-information benchmark)",
        )
        return evidence
    entry = found[0]
    low, high = entry["net_value_diff_ci"]
    level = 100 * (1 - float(entry.get("alpha", 0.05)))

    def signed(x: float | None) -> str:
        return "n/a" if x is None else f"{x:+.4g}"

    figures = (
        f"net value per call {signed(entry['net_value_diff'])} USD, {level:.0f}% interval "
        f"[{signed(low)}, {signed(high)}] (value_usd {entry['value_usd']:.4g}, estimator "
        f"{entry['estimator']}; quality {signed(entry['quality_diff'])}, cost "
        f"{signed(entry['cost_usd_diff'])} USD)"
    )
    evidence.update(
        {
            key: entry.get(key)
            for key in (
                "label",
                "router_version",
                "quality_diff",
                "quality_diff_ci",
                "cost_usd_diff",
                "cost_usd_diff_ci",
                "net_value_diff",
                "net_value_diff_ci",
                "value_usd",
                "estimator",
            )
        }
    )
    if high is not None and high < 0:
        evidence.update(
            refused=True,
            reason=f"against the champion, version {champion.version}: {figures}; the "
            "interval lies wholly below 0",
        )
    elif high is None or low is None:
        evidence.update(
            refused=True,
            reason=f"against the champion, version {champion.version}: {figures}; the "
            "interval is undefined (no logged call the challenger's choices could be "
            "weighed on), so there is no evidence",
        )
    else:
        evidence["reason"] = f"against the champion, version {champion.version}: {figures}"
    return evidence


def promote(
    version: str | int,
    *,
    name: str = DEFAULT_MODEL_NAME,
    alias: str = DEFAULT_ALIAS,
    tracking_uri: str | None = None,
    root: str | Path = "mlruns",
    evaluation: str | Path | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Point ``alias`` at ``version``; what ``models:/NAME@ALIAS`` serves from then on.

    With ``evaluation`` (the ``evaluate --bundle CHALLENGER --compare CHAMPION`` output
    on the champion's gateway logs), the challenger is refused when its net-value
    difference with the version ``alias`` points at has an interval wholly below 0,
    or when the evaluation holds no comparison with it (:func:`check_promotion`),
    unless ``force``.

    Parameters
    ----------
    version : str or int
    name, alias : str
    tracking_uri : str, optional
    root : path
    evaluation : path, optional
        An evaluation folder or its ``metrics.json``. Default: promote without
        evidence (the result's ``evidence`` is None).
    force : bool, default=False
        Promote even when the evidence says no (the result records it).

    Returns
    -------
    dict
        ``{name, alias, version, router_version, val_area, previous, evidence,
        forced}`` where ``previous`` is the version the alias pointed at before (None
        if it was new) and ``evidence`` what :func:`check_promotion` found.

    Raises
    ------
    PromotionRefused
        If the evidence refuses the challenger and ``force`` is False; the message
        gives the net-value difference and its interval.
    RegistryError
        For a malformed alias or version, an unknown model or version (the
        message lists the versions there are), or an evaluation of another bundle.
    """
    version = str(version).strip()
    if not _VERSION_RE.match(version):
        raise RegistryError(f"Expected a version number such as 3, got {version!r}.")
    if not _ALIAS_RE.match(alias) or re.fullmatch(r"latest|[vV]\d+", alias):
        raise RegistryError(
            "Expected an alias of letters, digits, '_' or '-' starting with a letter, "
            f"other than 'latest' and 'v<digits>' (MLflow reserves those), got {alias!r}."
        )
    client = _client(tracking_uri, root)
    target = VersionInfo.from_mlflow(_get_version(client, ModelRef(name=name, version=version)))
    champion = None
    try:
        champion = VersionInfo.from_mlflow(client.get_model_version_by_alias(name, alias))
    except _mlflow_errors():
        champion = None
    evidence = None
    if evaluation is not None:
        evidence = check_promotion(
            read_evaluation(evaluation), target, champion, source=str(evaluation)
        )
        if evidence["refused"] and not force:
            raise PromotionRefused(
                f"Refusing to promote version {version} to @{alias}: {evidence['reason']}. "
                f"Pass --force to promote it anyway."
            )
    client.set_registered_model_alias(name, alias, version)
    return {
        "name": name,
        "alias": alias,
        "version": version,
        "router_version": target.router_version,
        "val_area": target.val_area,
        "previous": champion.version if champion is not None else None,
        "evidence": evidence,
        "forced": bool(force and evidence is not None and evidence["refused"]),
    }


# --------------------------------------------------------------------------- download


def _cache_name(name: str, version: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}-{version}"


def download_bundle(
    uri: str | ModelRef,
    dst: str | Path | None = None,
    *,
    tracking_uri: str | None = None,
    root: str | Path = "mlruns",
) -> Path:
    """Copy the bundle a ``models:/`` URI names into a local folder and verify it.

    The folder is ``<dst>/<name>-<version>``: a version never changes, so a folder
    that is there and verifies is reused (restarts do not download again), and one
    that does not verify is replaced. The copy lands in a temporary folder first and
    is renamed into place, so a crash or a concurrent server never sees half a
    bundle.

    Parameters
    ----------
    uri : str or ModelRef
        ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.
    dst : path, optional
        Cache folder; default ``<root>/served``.
    tracking_uri : str, optional
        Default `training.tracking.default_tracking_uri` of ``root``.
    root : path
        The ``mlruns`` folder of the default store.

    Returns
    -------
    Path
        The verified bundle folder.

    Raises
    ------
    RegistryError
        For an unknown model, version or alias, or a downloaded bundle that fails
        verification or whose router_version differs from the version's tag.
    """
    import mlflow

    from serving.bundle import BundleError, load_bundle

    ref = uri if isinstance(uri, ModelRef) else ModelRef.parse(uri)
    tracking, registry = _store_uris(tracking_uri, root)
    client = _client(tracking_uri, root)
    info = VersionInfo.from_mlflow(_get_version(client, ref))
    cache = Path(dst) if dst is not None else Path(root) / "served"
    target = cache / _cache_name(info.name, info.version)

    def verified(folder: Path) -> bool:
        try:
            bundle = load_bundle(folder)
        except BundleError:
            return False
        return info.router_version in (None, bundle.router_version)

    if target.is_dir() and verified(target):
        return target.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache))
    try:
        # Not artifact_uri="models:/...": MLflow resolves that through the *global*
        # registry URI, not the one passed here. The client's download URI is exact.
        with _quiet_downloads():
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=client.get_model_version_download_uri(info.name, info.version),
                    dst_path=str(tmp),
                    tracking_uri=tracking,
                    registry_uri=registry,
                )
            )
        try:
            bundle = load_bundle(local)
        except BundleError as exc:
            raise RegistryError(
                f"{ref.uri} (version {info.version}, source {info.source}) does not hold a "
                f"valid bundle: {exc}"
            ) from None
        if info.router_version is not None and bundle.router_version != info.router_version:
            raise RegistryError(
                f"{ref.uri} is tagged router_version {info.router_version} but its files "
                f"hash to {bundle.router_version}: the artifacts changed after registration."
            )
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            local.rename(target)
        except OSError:
            # Another process put a copy in place first; keep it if it verifies.
            if not verified(target):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target.resolve()


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.registry",
        description="Bundles in the MLflow model registry. `download` is what "
        "`outcome-router serve --bundle models:/...` runs in a child process, so the "
        "server never imports mlflow.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    download = sub.add_parser(
        "download", help="copy a registered bundle into a local folder; print the folder"
    )
    download.add_argument("uri", help="models:/NAME@ALIAS or models:/NAME/VERSION")
    download.add_argument("--dst", help="cache folder (default: <mlruns>/served)")
    download.add_argument("--mlruns", default="mlruns", help="MLflow store folder")
    versions = sub.add_parser("versions", help="list a registered model's versions as JSON")
    versions.add_argument("--name", default=DEFAULT_MODEL_NAME)
    versions.add_argument("--mlruns", default="mlruns", help="MLflow store folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``download`` or ``versions``; errors are one ``error:`` line on stderr."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "download":
            print(download_bundle(args.uri, args.dst, root=args.mlruns))
        else:
            infos = list_versions(args.name, root=args.mlruns)
            print(json.dumps([asdict(v) for v in infos], indent=2))
    except ModuleNotFoundError as exc:
        print(
            f"error: models:/ URIs need the training extra ({exc}); "
            "install it with pip install 'outcome-router[train]'.",
            file=sys.stderr,
        )
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""MLflow tracking: one parent run per invocation, one nested child run per fold.

The driver does all the logging: it creates the parent run and the store
before any worker starts (MLflow creates its SQLite schema on first use, and
concurrent first use races), creates each fold's child run when the fold is
submitted, and logs the fold's history, metrics and weights the moment its
result arrives. Workers never need to reach the tracking store.
"""
from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moodops.components.errors import ConfigError
from moodops.components.types import Fold, FoldResult

logger = logging.getLogger(__name__)

DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"


def default_tracking_uri(workdir: Path | None = None) -> str:
    return f"sqlite:///{(workdir or Path.cwd()).resolve() / DEFAULT_DB}"


def git_commit() -> str:
    """The git commit of the moodops source tree, or 'unknown'."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def _probe_server(uri: str, timeout_s: float = 5.0) -> None:
    """One request to the server's ``/health`` before a run starts: a server that refuses the connection,
    or a host that does not resolve, is a one-line error within seconds. Any HTTP answer (even 401 or 404
    from a proxy) means someone is there; MLflow's own retries then cover outages during the run."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as e:
        import ssl

        reason = getattr(e, "reason", e)
        if isinstance(reason, ssl.SSLError):  # a server is there; MLflow's own TLS settings decide the rest
            return
        raise ConfigError(f"tracking server {uri} cannot be reached: {reason} (is `mlflow server` running "
                          "there? --tracking-uri names the server)") from None


@contextlib.contextmanager
def _sqlite_store_lock(uri: str):
    """An exclusive ``flock`` on ``<db>.lock`` while a process opens a local SQLite store: MLflow creates
    and migrates the schema on first use, and two processes doing that at once on a fresh file fail with
    "duplicate column name". Other stores (servers, databases) need none."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    db = Path(uri[len("sqlite:///"):])
    try:
        lock = open(db.with_name(db.name + ".lock"), "a")
    except OSError:  # no folder, or not writable: MLflow's own error says so
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


#: OS errors that come from a local file system (a full disk, a read-only or broken folder), never from a
#: tracking server being away: retrying them for minutes cannot help.
LOCAL_ERRNOS = frozenset({"ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "ENOTDIR", "EISDIR"})


def local_storage_error(e: BaseException) -> OSError | None:
    """``e`` (or its cause) when it is an OS error of the local file system (:data:`LOCAL_ERRNOS`)."""
    import errno

    while e is not None:
        if isinstance(e, OSError) and e.errno is not None and errno.errorcode.get(e.errno) in LOCAL_ERRNOS:
            return e
        e = e.__cause__ or e.__context__
    return None


def describe_os_error(e: OSError) -> str:
    """An OS error as its reason and path, with the free space when the disk is full."""
    import errno
    import shutil

    where = str(e.filename2 or e.filename or "")  # a copy's error names its source, then its destination
    text = f"{e.strerror or e} ({where})" if where else str(e.strerror or e)
    if e.errno == errno.ENOSPC and where:
        probe = Path(where)
        while (not probe.exists() or probe.is_file()) and probe != probe.parent:
            probe = probe.parent
        text += f"; {shutil.disk_usage(probe).free / 2**20:.1f} MiB free in {probe}"
    return text


def _now_ms() -> int:
    return int(time.time() * 1000)


#: MLflow 3's UI opens an experiment in its GenAI view (traces, "evaluation runs") unless the experiment says
#: it holds model training: every experiment moodops creates or uses carries this tag.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
#: Where `moodops ui` serves the UI by default (`--host`, `--port`).
DEFAULT_UI = "http://127.0.0.1:5000"


def ensure_experiment(client, name: str, artifact_location: str | None) -> str:
    """The id of experiment ``name``, created (with ``artifact_location``) when missing; tagged as model
    development unless someone set a kind of their own (the UI's inferred kinds are replaced)."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name, artifact_location=artifact_location,
                                        tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    kind = exp.tags.get(EXPERIMENT_KIND_TAG)
    if kind is None or kind.endswith("_inferred"):
        client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return exp.experiment_id


def runs_table_url(tracking_uri: str, experiment_id: str, ui: str | None = None) -> str:
    """The MLflow UI's runs table of an experiment, in its machine-learning view: on the tracking server
    itself for an http(s) store, else on ``ui`` (default: where `moodops ui` serves)."""
    base = ui or (tracking_uri.rstrip("/") if tracking_uri.startswith(("http:", "https:")) else DEFAULT_UI)
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


class Tracker:
    """Thin wrapper around ``MlflowClient`` for the run layout above."""

    def __init__(self, tracking_uri: str | None, experiment: str, workdir: Path | None = None) -> None:
        from mlflow import MlflowClient

        workdir = (workdir or Path.cwd()).resolve()
        self.uri = tracking_uri or default_tracking_uri(workdir)
        if not self.uri.startswith(("sqlite:", "http:", "https:", "file:", "postgresql", "mysql", "databricks")):
            raise ConfigError(f"--tracking-uri '{self.uri}' is not a URI MLflow understands (e.g. http://host:5000)")
        if self.uri.startswith(("http:", "https:")):
            _probe_server(self.uri)  # a refused connection fails now, not after MLflow's minutes of retries
        try:
            with _sqlite_store_lock(self.uri):  # schema creation and the experiment: one process at a time
                self.client = MlflowClient(tracking_uri=self.uri)
                location = (workdir / DEFAULT_ARTIFACTS).as_uri() if tracking_uri is None else None
                self.experiment_id = ensure_experiment(self.client, experiment, location)
        except Exception as e:  # noqa: BLE001 - any failure to reach the store is one clear line
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(f"tracking store {self.uri} is not usable: {str(e).splitlines()[0]}") from None
        self.parent_id: str | None = None

    # -- parent -------------------------------------------------------------------------
    def start_parent(self, run_name: str, config: dict[str, Any], tags: dict[str, str]) -> str:
        from mlflow.entities import Param

        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
        self.parent_id = run.info.run_id
        try:
            params = [Param(k, _param_value(v)) for k, v in sorted(config.items())]
            for start in range(0, len(params), 100):
                self.client.log_batch(self.parent_id, params=params[start:start + 100])
            self.client.log_dict(self.parent_id, config, "config.json")
        except BaseException as e:  # the run exists: it must not stay RUNNING
            self.close_failed(e)
            if isinstance(e, OSError):
                raise ConfigError(f"artifact store {run.info.artifact_uri}: cannot write the run's config.json: "
                                  f"{describe_os_error(e)}") from None
            raise
        return self.parent_id

    def close_failed(self, error: BaseException) -> None:
        """End the parent run FAILED (KILLED for Ctrl-C) with the error as a tag; quietly, since the
        store may be what failed."""
        try:
            self.client.set_tag(self.parent_id, "moodops.error", f"{type(error).__name__}: {error}"[:4000])
            self.end_parent("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        except Exception:  # noqa: BLE001
            logger.warning("could not mark MLflow run %s as failed", self.parent_id)

    def log_dataset(self, name: str, digest: str, source: str, context: str = "training") -> None:
        """The run's data as an MLflow dataset input (the runs table's Dataset column)."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(name=name, digest=digest, source_type="local", source=json.dumps({"uri": source}))
        self.client.log_inputs(self.parent_id, datasets=[
            DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)])])

    def set_parent_note(self, markdown: str) -> None:
        """The parent run's description in the UI (``mlflow.note.content``)."""
        self.client.set_tag(self.parent_id, "mlflow.note.content", markdown[:60000])

    def set_parent_tags(self, tags: dict[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.parent_id, k, v)

    def log_parent_metrics(self, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        ts = _now_ms()
        self.client.log_batch(self.parent_id, metrics=[Metric(k, float(v), ts, 0) for k, v in metrics.items()])

    def log_parent_artifacts(self, folder: Path) -> None:
        self.client.log_artifacts(self.parent_id, str(folder))

    def end_parent(self, status: str) -> None:
        if self.parent_id is not None:
            self.client.set_terminated(self.parent_id, status)

    # -- children -----------------------------------------------------------------------
    def create_child(self, fold: Fold, tags: dict[str, str]) -> str:
        run = self.client.create_run(
            self.experiment_id,
            run_name=fold.name,
            tags={
                "mlflow.parentRunId": self.parent_id,
                "moodops.fold": fold.name,
                "moodops.test_subjects": ",".join(map(str, fold.test_subjects)),
                **tags,
            },
        )
        return run.info.run_id

    def log_fold(self, run_id: str, result: FoldResult, params: dict[str, Any],
                 extra: Callable[[FoldResult, Path], list[Path]] | None = None) -> None:
        """Log a fold's metrics, params, weights and confusion; ``extra(result, folder)`` may write more
        files into a folder of its own, logged under the same relative paths (e.g. ``attention/``)."""
        from mlflow.entities import Metric, Param, RunTag

        ts = _now_ms()
        metrics = [Metric(k, float(v), ts, epoch) for epoch, row in enumerate(result.history, start=1)
                   for k, v in row.items()]
        for k, v in result.metrics.items():
            name = k if k.startswith(("n_", "best_")) else f"test_{k}"
            metrics.append(Metric(name, float(v), ts, 0))
        for k, v in result.timing.items():
            metrics.append(Metric(f"time_{k}", float(v), ts, 0))
        all_params = {**params, **result.params, "test_subjects": ",".join(map(str, result.test_subjects))}
        tags = [RunTag("moodops.ray_node_id", result.node_id or "local"), RunTag("moodops.device", result.device)]
        for start in range(0, len(metrics), 900):
            self.client.log_batch(run_id, metrics=metrics[start:start + 900])
        self.client.log_batch(run_id, params=[Param(k, _param_value(v)) for k, v in all_params.items()], tags=tags)
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / "weights.pt"
            weights.write_bytes(result.weights)
            self.client.log_artifact(run_id, str(weights), "model")
            (Path(tmp) / "confusion.json").write_text(json.dumps(result.confusion.tolist()))
            self.client.log_artifact(run_id, str(Path(tmp) / "confusion.json"))
            if extra is not None:
                folder = Path(tmp) / "extra"
                folder.mkdir()
                for path in extra(result, folder):
                    rel = path.parent.relative_to(folder)
                    self.client.log_artifact(run_id, str(path), None if str(rel) == "." else rel.as_posix())
        self.client.set_terminated(run_id, "FINISHED")

    def fail_child(self, run_id: str, message: str, status: str = "FAILED") -> None:
        self.client.set_tag(run_id, "moodops.error", message[:4000])
        self.client.set_terminated(run_id, status)


def _param_value(value: Any) -> str:
    text = json.dumps(value, default=str) if isinstance(value, (dict, list, tuple)) else str(value)
    return text[:6000]

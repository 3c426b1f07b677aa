"""`moodops pretrain`: load an unlabelled corpus, pretrain, track in MLflow, register the encoder.

Two methods (:mod:`moodops.pipelines.pretrain`):

- ``mbsm`` on ``eegmmidb`` raw EEG: files verified against the published
  SHA-256 list, band-pass / notch / resampling through MNE (Mood Reader's
  defaults), cut into fixed-length segments;
- ``mv_sstma`` on a DE dataset (``seed-iv``, ``seed-v``, …): the same
  windows ``moodops run`` feeds MV-SSTMA, labels ignored.

One MLflow run per pretraining: parameters, the per-epoch masked
reconstruction loss, a figure of a reconstructed segment, and the encoder
logged as an MLflow model (weights read back with ``weights_only=True``, an
input contract in its metadata) registered as ``moodops-<method>`` (or
``--register-as``) with an optional alias; ``models:/NAME@latest`` always
names the newest version. With ``workers > 1`` (or GPUs) training runs
data-parallel through Ray Train's ``TorchTrainer``.
"""
from __future__ import annotations

import dataclasses
import io
import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moodops.components.errors import ConfigError, invalid_choice

logger = logging.getLogger(__name__)

#: Corpora each method accepts (eegmmidb for raw-EEG MBSM; DE datasets for MV-SSTMA).
#: Pretraining learning rates: MV-SSTMA's paper pretrains at 1.5e-4 and fine-tunes at 1e-3 (§3.2).
DEFAULT_LR = {"mbsm": 1e-3, "mv_sstma": 1.5e-4}
CORPORA = {"mbsm": ("eegmmidb",), "mv_sstma": ("seed-iv", "seed-v", "seed", "deap")}
SYNTHETIC_EEGMMIDB = {"subjects": 3, "seconds": 60.0}


@dataclass
class PretrainJob:
    """Every setting of ``moodops pretrain`` (also a pipeline spec's pretrain stage)."""

    method: str = "mbsm"
    corpus: str | None = None  # None: eegmmidb for mbsm, seed-iv for mv_sstma
    root: str | None = None
    synthetic: bool = False
    synthetic_subjects: int | None = None  # --synthetic DE corpora (seed-iv, seed-v …): None: the release's count
    subjects: list[int] | None = None
    runs: list[int] | None = None  # eegmmidb runs (None: every run present)
    verify: bool = True
    l_freq: float = 0.1
    h_freq: float = 70.0
    notch: float | None = 50.0
    sfreq: float = 200.0
    segment_s: float = 4.0
    seq_len: int | None = None  # mv_sstma: windows per sample (None: the model's run default)
    eye_scaling: str = "zscore"  # mv_sstma eye features: zscore | range ([10, 100], MV-SSTMA §3.2), as the run's
    mask_ratio: float | None = None
    epochs: int = 20
    batch_size: int = 64
    lr: float | None = None  # None: the method's (mbsm 1e-3; mv_sstma 1.5e-4, MV-SSTMA §3.2)
    weight_decay: float = 0.05
    seed: int = 0
    model_params: dict[str, Any] = field(default_factory=dict)
    workers: int = 1
    use_gpu: bool = False
    precision: str = "fp32"  # bf16: autocast on GPUs
    address: str | None = None
    register_as: str | None = None  # None: moodops-<method>; "" skips registration
    alias: str | None = None
    tracking_uri: str | None = None
    experiment: str = "moodops-pretrain"
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.corpus is None:
            self.corpus = CORPORA.get(self.method, ("eegmmidb",))[0]
        if self.lr is None:
            self.lr = DEFAULT_LR.get(self.method, 1e-3)
        if self.method not in CORPORA:
            raise ConfigError(invalid_choice("method", self.method, tuple(CORPORA)))
        if self.corpus not in CORPORA[self.method]:
            raise ConfigError(f"method '{self.method}' pretrains on {', '.join(CORPORA[self.method])}, "
                              f"not '{self.corpus}'")
        if self.root is None and not self.synthetic:
            raise ConfigError("no data: pass --root DIR (the corpus on disk) or --synthetic")
        if self.root is not None and self.synthetic:
            raise ConfigError("--root and --synthetic exclude each other")
        if self.eye_scaling not in ("zscore", "range"):
            raise ConfigError(invalid_choice("eye_scaling", self.eye_scaling, ("zscore", "range")))
        if self.workers < 1:
            raise ConfigError(f"The 'workers' parameter must be >= 1. Got {self.workers} instead.")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"The '{name}' parameter must be >= 1. Got {getattr(self, name)} instead.")
        if self.lr <= 0:
            raise ConfigError(f"The 'lr' parameter must be > 0. Got {self.lr} instead.")
        if self.mask_ratio is not None and not 0 < self.mask_ratio < 1:
            raise ConfigError(f"The 'mask_ratio' parameter must be in (0, 1). Got {self.mask_ratio} instead.")
        if self.segment_s <= 0:
            raise ConfigError(f"The 'segment_s' parameter must be > 0. Got {self.segment_s} instead.")

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str) -> PretrainJob:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            import difflib

            near = difflib.get_close_matches(unknown[0], sorted(known), n=1)
            raise ConfigError(f"{source}: unknown pretrain key '{unknown[0]}'"
                              + (f" (did you mean '{near[0]}'?)" if near else ""))
        import typing

        from moodops.orchestrator.config import coerce_value

        hints = typing.get_type_hints(cls)
        try:
            return cls(**{k: coerce_value(k, hints[k], v, source) for k, v in values.items()})
        except ConfigError as e:
            text = str(e)
            raise ConfigError(text if text.startswith(source) else f"{source}: {text}") from None

    def train_config(self):
        from moodops.pipelines.pretrain import PretrainConfig

        return PretrainConfig(method=self.method, mask_ratio=self.mask_ratio, epochs=self.epochs,
                              batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay, seed=self.seed,
                              model_params=dict(self.model_params), device="cuda" if self.use_gpu else "auto",
                              precision=self.precision)


@dataclass
class PretrainSummary:
    run_id: str
    experiment_id: str
    tracking_uri: str
    model_uri: str | None
    registered_model: str | None
    version: str | None
    alias: str | None
    history: list[dict[str, float]]
    initial_val_loss: float | None
    segments: int
    segments_per_s: float
    train_s: float
    workers: int
    contract: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- data


def _cache(job: PretrainJob) -> Path:
    from moodops.orchestrator.config import default_cache_dir

    return Path(job.cache_dir).expanduser() if job.cache_dir else default_cache_dir()


def _synthetic_eegmmidb(job: PretrainJob, reporter) -> Path:
    import os
    import shutil

    from moodops.components.datasets.eegmmidb.synthetic_eegmmidb import write_synthetic_eegmmidb

    n, seconds = SYNTHETIC_EEGMMIDB["subjects"], SYNTHETIC_EEGMMIDB["seconds"]
    final = _cache(job) / "synthetic" / f"eegmmidb-s{n}-{seconds:g}s"
    if (final / ".complete").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".eegmmidb.", dir=final.parent))
    reporter.status(f"generating synthetic eegmmidb ({n} subjects, runs 3-14, {seconds:g}-s runs) into {final}")
    try:
        write_synthetic_eegmmidb(tmp, n, range(3, 15), seconds, seed=0)
        (tmp / ".complete").write_text("ok\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except FileExistsError:
        shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_eegmmidb(job: PretrainJob, reporter) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Verified, preprocessed, segmented EEGMMIDB → ({"raw": (N, C, S)}, data info for the contract)."""
    from moodops.components.datasets.eegmmidb.eegmmidb import Eegmmidb, Preprocess, preprocess, segments

    root = _synthetic_eegmmidb(job, reporter) if job.synthetic else Path(job.root)
    dataset = Eegmmidb(root, subjects=job.subjects, runs=job.runs, verify=job.verify)
    settings = Preprocess(l_freq=job.l_freq, h_freq=job.h_freq, notch=job.notch, sfreq=job.sfreq)
    parts, runs, ch_names = [], set(), None
    subjects = dataset.subjects()
    for k, subject in enumerate(subjects, start=1):  # one subject's runs in memory at a time
        reporter.transient(f"eegmmidb: subject {subject} ({k}/{len(subjects)}): verify, filter, resample")
        recordings = [preprocess(r, settings) for r in dataset.load_subject(subject)]
        if ch_names is None:
            ch_names = list(recordings[0].ch_names)
        elif list(recordings[0].ch_names) != ch_names:
            raise ConfigError(f"eegmmidb subject {subject}: channels differ from the first subject's")
        runs |= {int(r.trial) for r in recordings}
        parts.append(segments(recordings, job.segment_s)[0])
        del recordings
    raw = np.concatenate(parts) if len(parts) > 1 else parts[0]
    reporter.status(f"eegmmidb: {len(subjects)} subject(s), runs {sorted(runs)} → {len(raw)} segments of "
                    f"{job.segment_s:g} s ({raw.shape[1]} channels × {raw.shape[2]} samples at {job.sfreq:g} Hz)")
    info = {"corpus": "eegmmidb", "ch_names": ch_names, "sfreq": float(job.sfreq),
            "segment_s": float(job.segment_s), "subjects": [int(s) for s in subjects],
            "runs": sorted(runs), "synthetic": job.synthetic, "preprocess": dataclasses.asdict(settings)}
    return {"raw": raw}, info


def load_de_corpus(job: PretrainJob, reporter) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The windows `moodops run --model mv_sstma` would use, labels ignored, z-scored per feature (eye features
    mapped onto [10, 100] instead with ``eye_scaling: range``, as the fine-tuning run then does); a missing value
    becomes the corpus mean."""
    from moodops.pipelines.evaluate import fit_range
    from moodops.orchestrator.config import RunConfig
    from moodops.orchestrator.run import prepare_features, resolve_model_defaults

    config = RunConfig(dataset=job.corpus, model="mv_sstma", root=job.root, synthetic=job.synthetic,
                       subjects=job.subjects, seq_len=job.seq_len, cache_dir=job.cache_dir,
                       synthetic_subjects=job.synthetic_subjects)
    config = resolve_model_defaults(config)
    samples = prepare_features(config, reporter)
    data = {"x": samples.x}
    if "eye" in samples.extra:
        data["eye"] = samples.extra["eye"]
    for k, v in data.items():
        flat = v.reshape(-1, *v.shape[2:])
        mean = np.nanmean(flat, axis=0)
        std = np.nanstd(flat, axis=0)
        std[~(std > 1e-8)] = 1.0
        if k == "eye" and job.eye_scaling == "range":
            shift, scale = fit_range(v, np.arange(len(v)), "eye")
            z, fill = (v - shift) / scale, (np.nan_to_num(mean) - shift) / scale
        else:
            z, fill = (v - mean) / std, np.zeros_like(mean)
        data[k] = np.where(np.isnan(z), np.broadcast_to(fill, z.shape[1:]), z).astype(np.float32)
    reporter.status(f"{job.corpus}: {len(data['x'])} samples of {config.seq_len} windows "
                    f"({', '.join(f'{k} {tuple(v.shape[1:])}' for k, v in data.items())}); labels ignored")
    info = {"corpus": job.corpus, "variant": config.variant, "seq_len": config.seq_len,
            "feature": config.feature, "precomputed": config.precomputed, "synthetic": job.synthetic,
            "subjects": [int(s) for s in samples.info["subjects"]], "eye_scaling": job.eye_scaling}
    return data, info


# --------------------------------------------------------------------------- training


def _train_local(job: PretrainJob, data, info, hooks):
    from moodops.pipelines.pretrain import pretrain

    return pretrain(data, job.train_config(), hooks, info)


def _ray_worker(cfg: dict[str, Any]) -> None:
    """Ray Train worker: one rank of data-parallel pretraining; rank 0 reports the result as a checkpoint."""
    import os

    import ray
    import ray.train
    import ray.train.torch

    from moodops.pipelines.hooks import Hooks
    from moodops.pipelines.pretrain import Distributed, pretrain

    data = ray.get(cfg["data"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    kwargs = {"find_unused_parameters": True} if cfg["config"].method == "mv_sstma" else {}

    class Report(Hooks):
        def on_epoch_end(self, fold, epoch, metrics):
            if epoch < cfg["config"].epochs:
                ray.train.report({"epoch": epoch, **metrics})

    distributed = Distributed(rank, world, lambda m: ray.train.torch.prepare_model(m, parallel_strategy_kwargs=kwargs),
                              device=ray.train.torch.get_device())
    result = pretrain(data, cfg["config"], Report(), cfg["info"], distributed)
    metrics = {"epoch": cfg["config"].epochs, **result.history[-1]}
    if rank == 0:
        from moodops.pipelines.evaluate import torch_save

        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "result.pt"), "wb") as f:
                torch_save({"state_dict": result.state_dict, "history": result.history,
                            "contract_json": json.dumps(result.contract),
                            "initial_val_loss": -1.0 if result.initial_val_loss is None else result.initial_val_loss,
                            "example": result.example or {}, "timing": result.timing}, f)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
    else:
        ray.train.report(metrics)


def _train_ray(job: PretrainJob, data, info, reporter):
    import ray
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    from moodops.orchestrator.fanout import init_ray
    from moodops.pipelines.pretrain import PretrainResult

    started = init_ray(job.address)
    try:
        with tempfile.TemporaryDirectory(prefix="moodops-train-") as storage:
            trainer = TorchTrainer(
                _ray_worker,
                train_loop_config={"data": ray.put(data), "config": job.train_config(), "info": info},
                torch_config=TorchConfig(backend="nccl" if job.use_gpu else "gloo"),
                scaling_config=ray.train.ScalingConfig(num_workers=job.workers, use_gpu=job.use_gpu),
                run_config=ray.train.RunConfig(storage_path=storage, name=f"pretrain-{job.method}"),
            )
            reporter.status(f"Ray Train: {job.workers} worker(s), {'GPU (nccl)' if job.use_gpu else 'CPU (gloo)'}")
            try:
                result = trainer.fit()
            except Exception as e:  # noqa: BLE001 - Ray wraps worker errors; show the cause in one line
                cause = e.__cause__ or e
                raise ConfigError(f"Ray Train pretraining failed: {type(cause).__name__}: "
                                  f"{str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}") from e
            import torch

            with result.checkpoint.as_directory() as folder:
                saved = torch.load(Path(folder) / "result.pt", map_location="cpu", weights_only=True)
    finally:
        if started:
            ray.shutdown()
    initial = float(saved["initial_val_loss"])
    return PretrainResult(
        state_dict=saved["state_dict"], contract=json.loads(saved["contract_json"]), history=saved["history"],
        initial_val_loss=None if initial < 0 else initial,
        example={k: v.numpy() if hasattr(v, "numpy") else v for k, v in saved["example"].items()} or None, timing=saved["timing"],
    )


# --------------------------------------------------------------------------- tracking


def plot_reconstruction(example: dict[str, np.ndarray], sfreq: float, path: Path, channels: list[str],
                        title: str) -> None:
    """A few channels of one segment: original, reconstruction, hidden tokens shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    original, rebuilt, mask = example["original"], example["reconstruction"], example["mask"]
    token = int(example["token_len"])
    picks = np.linspace(0, original.shape[0] - 1, min(4, original.shape[0])).astype(int)
    t = np.arange(original.shape[1]) / sfreq
    fig, axes = plt.subplots(len(picks), 1, figsize=(10, 1.8 * len(picks)), sharex=True, squeeze=False)
    for ax, ch in zip(axes[:, 0], picks):
        for k in np.flatnonzero(mask):
            ax.axvspan(k * token / sfreq, (k + 1) * token / sfreq, color="0.9", lw=0)
        ax.plot(t, original[ch], lw=0.8, color="0.2", label="original")
        ax.plot(t, rebuilt[ch], lw=0.8, color="tab:red", label="reconstruction (hidden tokens)")
        ax.set_ylabel(channels[ch] if ch < len(channels) else f"ch {ch}")
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("time (s); shaded: masked tokens")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def log_encoder(run_id: str, tracking_uri: str, result, register_as: str | None, alias: str | None,
                tags: dict[str, str]) -> tuple[str, str | None]:
    """Log the pretrained part as an MLflow model in ``run_id`` and register it; return (model URI, version)."""
    import mlflow

    from moodops.pipelines.evaluate import torch_save

    mlflow.set_tracking_uri(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        weights, contract = Path(tmp) / "weights.pt", Path(tmp) / "contract.json"
        with open(weights, "wb") as f:
            torch_save(result.state_dict, f)
        contract.write_text(json.dumps(result.contract, indent=2))
        quiet = logging.getLogger().getEffectiveLevel() > logging.INFO
        for name in ("mlflow", "mlflow.tracking._model_registry.fluent", "mlflow.store.model_registry"):
            if quiet:
                logging.getLogger(name).setLevel(logging.WARNING)
        with mlflow.start_run(run_id=run_id):
            info = mlflow.pyfunc.log_model(
                name="encoder", python_model=str(Path(__file__).with_name("encoder_model.py")),
                artifacts={"weights": str(weights), "contract": str(contract)},
                pip_requirements=["moodops", "torch", "mlflow"],
                metadata={"moodops_contract": result.contract},
                registered_model_name=register_as or None, await_registration_for=60,
            )
    version = None
    if register_as:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri)
        version = str(info.registered_model_version)
        for k, v in tags.items():
            client.set_model_version_tag(register_as, version, k, v)
        if alias:
            client.set_registered_model_alias(register_as, alias, version)
    return info.model_uri, version


def run_pretrain(job: PretrainJob, reporter=None, parent_run_id: str | None = None) -> PretrainSummary:
    """Load the corpus, pretrain (locally or on Ray Train), log and register; see the module doc."""
    import os

    from moodops.orchestrator.run import Reporter
    from moodops.orchestrator.tracking import Tracker, git_commit
    from moodops.pipelines.hooks import Hooks

    reporter = reporter or Reporter()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if job.alias and job.alias.lower() == "latest":
        raise ConfigError("alias 'latest' is reserved by MLflow: models:/NAME@latest already names the newest "
                          "version; choose another alias (e.g. champion)")
    register_as = f"moodops-{job.method.replace('_', '-')}" if job.register_as is None else job.register_as
    tracker = Tracker(job.tracking_uri, job.experiment)
    t0 = time.perf_counter()
    data, info = load_eegmmidb(job, reporter) if job.method == "mbsm" else load_de_corpus(job, reporter)
    n = len(next(iter(data.values())))
    config = {k: v for k, v in dataclasses.asdict(job).items() if k not in ("tracking_uri", "cache_dir")}
    tags = {"moodops.kind": "pretrain", "moodops.method": job.method, "moodops.corpus": job.corpus,
            "moodops.git_commit": git_commit()}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run_id = tracker.start_parent(f"pretrain-{job.method}-{job.corpus}", {**config, "segments": n}, tags)
    reporter.status(f"MLflow run {run_id} in experiment '{job.experiment}' ({tracker.uri})")
    status = "FAILED"
    try:
        class Progress(Hooks):
            def on_epoch_end(self, fold, epoch, metrics):
                reporter.status(f"  epoch {epoch}/{job.epochs}  masked loss {metrics['train_loss']:.4f}"
                                + (f"  val {metrics['val_loss']:.4f}" if "val_loss" in metrics else "")
                                + f"  ({metrics['segments_per_s']:.0f} segments/s)")
                tracker.client.log_batch(run_id, metrics=_metrics(metrics, epoch))

        distributed = job.workers > 1 or job.use_gpu
        if distributed:
            result = _train_ray(job, data, info, reporter)
            for epoch, metrics in enumerate(result.history, start=1):
                Progress().on_epoch_end("pretrain", epoch, metrics)
        else:
            result = _train_local(job, data, info, Progress())
        if result.initial_val_loss is not None:
            tracker.client.log_batch(run_id, metrics=_metrics({"val_loss": result.initial_val_loss}, 0))
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "history.json").write_text(json.dumps(result.history, indent=1))
            if result.example is not None:
                plot_reconstruction(result.example, info["sfreq"], Path(tmp) / "reconstruction.png",
                                    info.get("ch_names", []),
                                    f"MBSM reconstruction of a held-out segment (mask ratio {result.contract['mask_ratio']})")
            tracker.client.log_artifacts(run_id, tmp)
        model_uri, version = log_encoder(run_id, tracker.uri, result, register_as, job.alias,
                                         {"moodops.pretrain_run_id": run_id, "moodops.corpus": job.corpus})
        if version:
            reporter.status(f"registered {register_as} version {version}: models:/{register_as}/{version}"
                            f"{f' = models:/{register_as}@{job.alias}' if job.alias else ''}"
                            f" (models:/{register_as}@latest names the newest version)")
        status = "FINISHED"
    finally:
        tracker.end_parent(status)
    return PretrainSummary(
        run_id=run_id, experiment_id=tracker.experiment_id, tracking_uri=tracker.uri, model_uri=model_uri,
        registered_model=register_as or None, version=version, alias=job.alias, history=result.history,
        initial_val_loss=result.initial_val_loss, segments=n, segments_per_s=result.timing["segments_per_s"],
        train_s=time.perf_counter() - t0, workers=job.workers, contract=result.contract,
    )


def _metrics(values: dict[str, float], step: int):
    from mlflow.entities import Metric

    ts = int(time.time() * 1000)
    return [Metric(k, float(v), ts, step) for k, v in values.items()]


# --------------------------------------------------------------------------- fine-tuning side


@dataclass
class Encoder:
    """A pretrained part resolved from MLflow, ready to ship to folds."""

    uri: str
    weights: bytes
    contract: dict[str, Any]
    lineage: dict[str, str]

    def state_dict(self):
        import torch

        return torch.load(io.BytesIO(self.weights), map_location="cpu", weights_only=True)


def resolve_encoder(uri: str, tracking_uri: str) -> Encoder:
    """Download ``models:/NAME@ALIAS`` / ``models:/NAME/VERSION`` / ``runs:/ID/PATH`` and read it safely."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    if not uri.startswith(("models:/", "runs:/")):
        raise ConfigError(f"--encoder '{uri}' is not an MLflow model URI (models:/NAME@ALIAS, models:/NAME/VERSION "
                          f"or runs:/RUN_ID/encoder)")
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    lineage: dict[str, str] = {"moodops.encoder_uri": uri}
    try:
        if uri.startswith("models:/"):
            name, version = _model_version(client, uri[len("models:/"):])
            mv = client.get_model_version(name, version)
            lineage.update({"moodops.encoder_model": name, "moodops.encoder_version": str(version),
                            "moodops.pretrain_run_id": mv.run_id or ""})
        else:
            lineage["moodops.pretrain_run_id"] = uri[len("runs:/"):].split("/", 1)[0]
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp,
                                                              tracking_uri=tracking_uri))
            weights_path, contract_path = folder / "artifacts" / "weights.pt", folder / "artifacts" / "contract.json"
            if not weights_path.is_file() or not contract_path.is_file():
                raise ConfigError(f"--encoder {uri}: not a moodops encoder (no artifacts/weights.pt and "
                                  f"artifacts/contract.json); log one with `moodops pretrain`")
            weights = weights_path.read_bytes()
            contract = json.loads(contract_path.read_text())
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - MLflow raises many types; one line naming the URI
        raise ConfigError(f"--encoder {uri}: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}"
                          f" (tracking store {tracking_uri})") from None
    import torch

    try:
        torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a weights file that is not plain tensors is refused, never run
        raise ConfigError(f"--encoder {uri}: weights.pt is not a plain tensor file ({type(e).__name__}); "
                          f"refusing to load it") from None
    return Encoder(uri, weights, contract, lineage)


def _model_version(client, ref: str) -> tuple[str, str]:
    if "@" in ref:
        name, alias = ref.split("@", 1)
        if alias.lower() == "latest":
            versions = client.search_model_versions(f"name='{name}'")
            if not versions:
                raise ConfigError(f"registered model '{name}' has no versions")
            return name, str(max(int(v.version) for v in versions))
        return name, str(client.get_model_version_by_alias(name, alias).version)
    name, _, version = ref.partition("/")
    if not version:
        raise ConfigError(f"models:/{ref}: name a version or alias (models:/{name}@latest, models:/{name}/1)")
    return name, version

"""`moodops run`: dataset → features → folds → Ray → MLflow → summary."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np

from moodops.components.datasets import DATASETS
from moodops.components.errors import ConfigError, DataError, Interrupted, MoodopsError
from moodops.components.features import FeatureConfig, build_features, dataset_fingerprint, make_sequences
from moodops.components.features.build import COMPUTED_EXTRAS
from moodops.components.models import MODELS
from moodops.components.protocols import (PROTOCOLS, CrossSession, PerSubject, TrainTestSplit, leakage_fraction,
                                          trial_groups)
from moodops.components.types import FeatureSet, Fold, FoldResult
from moodops.orchestrator.attention import mean_attention, save_attention
from moodops.orchestrator.config import MODEL_DEFAULTS, RunConfig, default_cache_dir, model_default
from moodops.orchestrator.fanout import Progress
from moodops.orchestrator.ledger import Ledger, pid_alive
from moodops.orchestrator.tracking import describe_os_error, local_storage_error
from moodops.pipelines.train import TrainConfig

logger = logging.getLogger(__name__)

SYNTHETIC_VERSION = 5  # 5: synthetic DEAP networks couple with affect (and synthetic_face_layout=deap writes the release's faces)
#: Trial length of the ``--synthetic`` datasets: DEAP's real 60 s; shorter than the real
#: SEED family (~4 min) so a first run stays light (``synthetic_seconds`` changes it).
#: Protocols whose folds train on one subject's trials, and the default batch size there.
WITHIN_SUBJECT = ("per-subject", "cross-session")
WITHIN_SUBJECT_BATCH = 32
SYNTHETIC_SECONDS = {"deap": 60.0, "seed": 60.0, "seed-iv": 160.0, "seed-v": 160.0}


class TrackingUnavailableError(MoodopsError):
    """Fold results are safe on disk but could not be logged to the tracking store."""


class Reporter:
    """What the user sees while a run goes on; the CLI supplies a real one."""

    def status(self, message: str) -> None:
        logger.info(message)

    def transient(self, message: str) -> None:
        """A step of a longer phase (shown in place on a terminal, else skipped)."""
        logger.debug(message)

    def progress(self, progress: Progress) -> None:
        logger.info("folds %d/%d", progress.done, progress.total)

    def fold_done(self, fold: Fold, result: FoldResult) -> None:
        logger.info("%s accuracy %.3f", fold.name, result.metrics["accuracy"])


@dataclass
class RunSummary:
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    folds: list[dict[str, Any]]
    aggregate: dict[str, float]
    leakage: float
    config_hash: str
    dataset_fingerprint: str
    wall_s: float
    chance: float
    class_names: list[str] = field(default_factory=list)
    variant: str = ""
    label: str = ""
    resumed_folds: list[str] = field(default_factory=list)
    val_strategy: str = "stratified"
    fold_notes: dict[str, list[str]] = field(default_factory=dict)  # what a protocol could not do per fold

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: SEED-V's synthetic raw EEG shrinks the published clip timeline by this factor (clips of 30-60 s
#: instead of 2-4 min), so a copy with raw EEG stays a few hundred MB.
SYNTHETIC_SEED_V_TIME_SCALE = 0.25
#: SEED-IV's synthetic trials when raw EEG is written too: 64 s (16 windows of 4 s, four 16-s SWC samples),
#: about 230 MB per subject at 200 Hz instead of 570 MB at the 160-s default.
SYNTHETIC_SEED_IV_RAW_SECONDS = 64.0


#: In a synthetic dataset being generated: who generates it (host, pid), so a leftover can be told from work.
OWNER_FILE = ".owner.json"


def sweep_leftovers(folder: Path, legacy_age_s: float = 86400.0) -> list[tuple[Path, str]]:
    """Remove the temporary folders of generations whose process is gone (killed mid-way): those whose
    owner file names a pid of this host that no longer runs, and owner-less ones older than a day.
    Returns (folder, why) for each removed."""
    removed = []
    host = socket.gethostname()
    for tmp in folder.glob(".*"):
        if not tmp.is_dir():
            continue
        try:
            owner = json.loads((tmp / OWNER_FILE).read_text())
        except (OSError, ValueError):
            owner = None
        if owner is None:
            if time.time() - tmp.stat().st_mtime < legacy_age_s:
                continue
            why = "no owner, older than a day"
        elif owner.get("host") != host or pid_alive(int(owner.get("pid", 0))):
            continue
        else:
            why = f"its generator, pid {owner.get('pid')}, is gone"
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append((tmp, why))
    return removed


def ensure_synthetic(cache_dir: Path, config: RunConfig, reporter: Reporter, with_face: bool = False,
                     with_raw: bool = False) -> Path:
    """The synthetic dataset for ``--synthetic``: generated once into the cache dir, atomically.
    ``with_raw``: SEED-IV / SEED-V with their raw EEG too (features computed from it)."""
    from moodops.orchestrator.datacmd import REAL_SUBJECTS, synthesize

    subjects = config.synthetic_subjects or REAL_SUBJECTS[config.dataset]
    seconds = config.synthetic_seconds or SYNTHETIC_SECONDS[config.dataset]
    if with_raw and config.dataset == "seed-iv" and config.synthetic_seconds is None:
        seconds = SYNTHETIC_SEED_IV_RAW_SECONDS
    trials = config.synthetic_trials if config.dataset == "deap" else None
    name = (f"{config.dataset}-v{SYNTHETIC_VERSION}-s{subjects}{f'-t{trials}' if trials else ''}-{seconds:g}s"
            f"-e{config.synthetic_effect:g}{'-face' if with_face else ''}"
            f"{'-deapfaces' if with_face and config.synthetic_face_layout == 'deap' else ''}{'-raw' if with_raw else ''}")
    final = cache_dir / "synthetic" / name
    if (final / ".complete").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    for leftover, owner in sweep_leftovers(final.parent):
        reporter.status(f"removed {leftover} ({owner}): an interrupted generation's leftover")
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=final.parent))
    (tmp / OWNER_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    reporter.status(f"generating synthetic {config.dataset} ({subjects} subjects"
                    f"{f' × {trials} trials' if trials else ''}, {seconds:g}-s trials"
                    f"{', with face features' if with_face else ''}{', with raw EEG' if with_raw else ''}) into {final}")
    try:
        synthesize(config.dataset, tmp, subjects, seed=0, effect=config.synthetic_effect,
                   progress=lambda done, total: reporter.transient(f"synthetic {config.dataset}: subject {done}/{total}"),
                   trials=trials, seconds=seconds, with_face=with_face, with_raw=with_raw,
                   raw_time_scale=SYNTHETIC_SEED_V_TIME_SCALE if config.dataset == "seed-v" else 1.0,
                   face_layout=config.synthetic_face_layout)
        (tmp / OWNER_FILE).unlink()
        (tmp / ".complete").write_text("ok\n")
        if final.exists():  # an incomplete leftover from an interrupted build
            shutil.rmtree(final)
        os.replace(tmp, final)
    except FileExistsError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _protocol(config: RunConfig):
    cls = PROTOCOLS.get(config.protocol)
    common = {"val_fraction": config.val_fraction, "seed": config.seed,
              "val_strategy": config.val_strategy or model_default("val_strategy", config.model)}
    if cls is TrainTestSplit:
        return cls(ratio=config.ratio, split_level=config.split_level, **common)
    if cls is PerSubject:
        train_trials = config.train_trials or DATASETS.get(config.dataset).per_subject_train_trials
        return cls(train_trials=train_trials, **common)
    if cls is CrossSession:
        return cls(test_session=config.test_session, **common)
    return cls(**common)


def first_labelled(fold: Fold, features, n: int, unit: str = "sample") -> Fold:
    """The fold with its training part cut to its first ``n`` samples (``unit="trial"``: the samples of its first
    ``n`` trials) in recording order (MV-SSTMA's Table 3: "10 labeled data from the beginning of the training
    dataset are used for calibration"). A note names the classes those samples leave out, and a part shorter
    than ``n`` is kept whole (with a note).

    Which unit the paper counts is not stated. Read as samples, SEED-IV's first 10 samples of a training part
    lie in its first trial, so they hold one class and a classifier can only predict that class; read as trials
    (10 of SEED-IV's 16), four classes are present, but SEED-V's training part has only 9 trials."""
    train = np.sort(fold.train)
    if unit == "trial":
        groups = trial_groups(features)[train]
        _, first_seen = np.unique(groups, return_index=True)
        chosen = groups[np.sort(first_seen)][:n]
        kept, available = train[np.isin(groups, chosen)], len(first_seen)
    else:
        kept, available = train[:n], len(train)
    notes = list(fold.notes)
    if available < n:
        notes.append(f"labelled_samples={n} ({unit}s): the training part has only {available}, all used")
    names = features.class_names or [str(k) for k in range(int(features.y.max()) + 1)]
    left_out = sorted(set(features.y[train].tolist()) - set(features.y[kept].tolist()))
    if left_out:
        notes.append(f"labelled_samples={n}: the first {len(kept)} training samples hold no "
                     f"{', '.join(names[k] for k in left_out)}")
    return dataclasses.replace(fold, train=kept, notes=tuple(notes))


def validate_names(config: RunConfig) -> None:
    """Fail before any work for unknown names or a modality the dataset lacks."""
    dataset_cls = DATASETS.get(config.dataset)
    if not dataset_cls.targets:
        raise ConfigError(f"dataset '{config.dataset}' has no emotion labels (an unlabelled pretraining corpus); "
                          f"use `moodops pretrain --corpus {config.dataset}`, then `moodops run … --encoder`")
    PROTOCOLS.get(config.protocol)
    info = MODELS.get(config.model)
    if config.label is not None:
        dataset_cls.check_target(config.label)
    if config.feature is not None and config.feature not in info.features:
        raise ConfigError(f"model '{config.model}' takes feature {' or '.join(info.features)}, not "
                          f"'{config.feature}'")
    if config.feature == "precomputed" and not dataset_cls.precomputed:
        raise ConfigError(f"dataset '{config.dataset}' ships no precomputed features; use --feature de, psd or dfc")
    if config.feature not in (None, "precomputed") and "raw_eeg" not in dataset_cls.modalities:
        raise ConfigError(f"dataset '{config.dataset}' has no raw EEG to compute '{config.feature}' from; "
                          "it ships precomputed features (--feature precomputed)")
    if "raw_eeg" not in dataset_cls.modalities and "precomputed" not in info.features:
        raise ConfigError(f"model '{config.model}' needs feature {' or '.join(info.features)}, computed from raw "
                          f"EEG, which dataset '{config.dataset}' does not ship")
    fitting = info.variants_for(dataset_cls.modalities)
    if config.variant == "auto":
        if not fitting:
            raise ConfigError(f"no variant of model '{config.model}' runs on dataset '{config.dataset}' (it has "
                              f"modalities {', '.join(dataset_cls.modalities)}; the model needs "
                              f"{' or '.join('+'.join(v.modalities) for v in info.variants)})")
        return
    variant = info.variant(config.variant)
    missing = [m for m in variant.modalities if m not in dataset_cls.modalities]
    if missing:
        hint = f"; variants that run on it: {', '.join(v.name for v in fitting)}" if fitting else ""
        raise ConfigError(f"model '{config.model}' variant '{variant.name}' needs modality {', '.join(missing)}, "
                          f"which dataset '{config.dataset}' does not have (it has "
                          f"{', '.join(dataset_cls.modalities)}){hint}")


def synthetic_modalities(dataset_cls) -> tuple[str, ...]:
    """What ``--synthetic`` can generate: everything, though a features-first release (SEED-IV, SEED-V) is
    generated with its raw EEG only when a variant needs it, so ``auto`` does not ask for it."""
    if dataset_cls.default_feature == "precomputed":
        return tuple(m for m in dataset_cls.modalities if m != "raw_eeg")
    return dataset_cls.modalities


def resolve_model_defaults(config: RunConfig) -> RunConfig:
    """Fill what the user left to the model: the variant ('auto': the first of the model's variants,
    in its order of completeness, whose modalities the dataset has), feature, window, sequence
    length, batch size (at most 32 in within-subject protocols), learning rate, optimizer and
    model selection (``val_strategy``)."""
    validate_names(config)
    info = MODELS.get(config.model)
    changes: dict[str, Any] = {}
    dataset_cls = DATASETS.get(config.dataset)
    present = synthetic_modalities(dataset_cls) if config.synthetic else dataset_cls.present_modalities(config.root)
    if config.variant == "auto":
        # --synthetic generates every modality (a features-first release's raw EEG only when a variant
        # needs it); a copy on disk may lack an optional one.
        fitting = info.variants_for(present)
        if not fitting:
            raise ConfigError(f"no variant of model '{config.model}' runs on the {config.dataset} copy at "
                              f"{config.root}: it has {', '.join(present)}")
        changes["variant"] = fitting[0].name
    variant = info.variant(changes.get("variant", config.variant))
    needs_raw = "raw_eeg" in variant.modalities
    if needs_raw and not config.synthetic and "raw_eeg" not in present:
        raise ConfigError(f"model '{config.model}' variant '{variant.name}' needs raw EEG, which the "
                          f"{config.dataset} copy at {config.root} does not have (it has {', '.join(present)})")
    if config.label is None:
        changes["label"] = dataset_cls.targets[0]
    if config.feature is None:
        computed = next((f for f in info.features if f != "precomputed"), info.features[0])
        feature_only = "raw_eeg" not in (dataset_cls.modalities if config.synthetic else present)
        first = dataset_cls.default_feature == "precomputed" and "precomputed" in info.features
        changes["feature"] = "precomputed" if (feature_only or first) and not needs_raw else computed
    feature = changes.get("feature", config.feature)
    if (config.window_s is None and feature != "precomputed" and dataset_cls.eye_window_s
            and "eye" in variant.modalities):
        changes["window_s"] = dataset_cls.eye_window_s  # computed EEG windows beside the release's eye windows
    if (changes.get("feature", config.feature) == "precomputed") and config.precomputed is None:
        changes["precomputed"] = dataset_cls.precomputed[0]
    for key, default in MODEL_DEFAULTS.items():
        if getattr(config, key) is None and key not in changes:
            changes[key] = info.run_defaults.get(key, default)
    if config.feature_params is not None:  # the model's per-feature settings, under the user's (per kind)
        defaults = info.run_defaults.get("feature_params", {})
        changes["feature_params"] = {k: {**defaults.get(k, {}), **config.feature_params.get(k, {})}
                                     for k in (*defaults, *(k for k in config.feature_params if k not in defaults))}
    if config.batch_size is None and config.protocol in WITHIN_SUBJECT:
        # A within-subject fold trains on a few hundred samples: large batches would leave a handful of steps.
        changes["batch_size"] = min(changes["batch_size"], WITHIN_SUBJECT_BATCH)
    return dataclasses.replace(config, **changes)


def _open_ledger(ledger: Ledger, lock: Any, tracker: Any, config: RunConfig, folds: list[Fold],
                 start_parent: Callable[[], str], reporter: Reporter) -> tuple[str, dict[str, FoldResult]]:
    """The run's parent and the folds already finished: the ledger's parent re-opened when the same run
    did not finish (``--resume``), else a new parent and an empty ledger."""
    previous = ledger.state()
    parent = None
    if previous and previous.get("status") != "FINISHED" and config.resume:
        if lock.stale and previous.get("status") == "RUNNING":
            reporter.status(f"the last driver of this run (pid {lock.stale.get('pid')} on {lock.stale.get('host')}) "
                            "stopped without finishing; taking its ledger over")
        parent = _reopen_parent(tracker, previous, reporter)
        if parent is None:  # the parent is in another store (or gone): keep the folds, log them here
            done = {k: v for k, v in ledger.results().items() if k in {f.name for f in folds}}
            parent = start_parent()
            ledger.save_state({"parent_run_id": parent, "tracking_uri": tracker.uri, "status": "RUNNING",
                               "children": {}, "logged": [], "started": time.time(),
                               "previous_tracking_uri": previous.get("tracking_uri")})
            reporter.status(f"MLflow parent run {parent} in experiment '{config.experiment}' ({tracker.uri}); "
                            f"{len(done)} of {len(folds)} fold(s) of this run finished before (logged to "
                            f"{previous.get('tracking_uri')}; kept in {ledger.folder}) are reused and logged "
                            "here; --fresh starts over")
            return parent, done
    if parent is None:
        ledger.clear()
        parent = start_parent()
        ledger.save_state({"parent_run_id": parent, "tracking_uri": tracker.uri, "status": "RUNNING",
                           "children": {}, "logged": [], "started": time.time()})
        reporter.status(f"MLflow parent run {parent} in experiment '{config.experiment}' ({tracker.uri})")
        return parent, {}
    done = {k: v for k, v in ledger.results().items() if k in {f.name for f in folds}}
    ledger.update(status="RUNNING", resumes=int(previous.get("resumes", 0)) + 1)
    reporter.status(f"resuming MLflow parent run {parent} ({tracker.uri}): {len(done)} of {len(folds)} fold(s) "
                    f"already finished (kept in {ledger.folder}); --fresh starts over")
    return parent, done


def train_config(config: RunConfig, pretrained: bytes | None = None) -> TrainConfig:
    params = dict(config.model_params)
    if config.mask_ratio_eval is not None:  # Table 4: fine-tuning and test inputs masked alike
        params.update(train_mask_ratio=config.mask_ratio_eval, eval_mask_ratio=config.mask_ratio_eval)
    return TrainConfig(model=config.model, variant=config.variant, model_params=params, eye_scaling=config.eye_scaling,
                       epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                       weight_decay=config.weight_decay, optimizer=config.optimizer, patience=config.patience,
                       min_epochs=config.min_epochs,
                       val_strategy=config.val_strategy or model_default("val_strategy", config.model),
                       inner_folds=config.inner_folds, seed=config.seed, pretrained=pretrained,
                       freeze_pretrained=config.freeze_encoder, attention_maps=config.attention_maps,
                       precision=config.precision)


def apply_encoder_params(config: RunConfig, contract: dict[str, Any]) -> RunConfig:
    """The model widths a pretrained part fixes (token length, encoder width …) merged into ``model_params``;
    a conflicting explicit value is an error."""
    if contract.get("model") != config.model:
        raise ConfigError(f"--encoder {config.encoder}: pretrained for model '{contract.get('model')}', "
                          f"but this run uses '{config.model}'")
    fixed = dict(contract.get("model_params", {}))
    for k, v in fixed.items():
        if k in config.model_params and config.model_params[k] != v:
            raise ConfigError(f"--encoder {config.encoder}: model_params {k}={config.model_params[k]!r} conflicts "
                              f"with the pretrained encoder's {k}={v!r}")
    return dataclasses.replace(config, model_params={**config.model_params, **fixed})


def adapt_raw_for_encoder(features: FeatureSet, config: RunConfig, contract: dict[str, Any],
                          reporter: Reporter) -> tuple[FeatureSet, dict[str, Any]]:
    """Map the raw EEG's channels onto an MBSM encoder's by name and/or resample it, when the config asks.

    Returns the features (raw replaced) and a record of what was done (logged with the run)."""
    if contract.get("method") != "mbsm" or "raw" not in features.extra:
        return features, {}
    dataset_cls = DATASETS.get(config.dataset)
    raw = features.extra["raw"]
    record: dict[str, Any] = {}
    source_sfreq = dataset_cls.eeg_sfreq
    target_sfreq = float(contract.get("sfreq") or 0) or None
    if config.encoder_resample and source_sfreq and target_sfreq and abs(source_sfreq - target_sfreq) > 1e-6:
        from fractions import Fraction

        from scipy.signal import resample_poly

        ratio = Fraction(target_sfreq / source_sfreq).limit_denominator(1000)
        raw = resample_poly(raw, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)
        record["resample"] = {"from_hz": source_sfreq, "to_hz": target_sfreq, "up": ratio.numerator,
                              "down": ratio.denominator}
        reporter.status(f"encoder: raw EEG resampled {source_sfreq:g} → {target_sfreq:g} Hz")
    want = [c.upper() for c in contract.get("ch_names", [])]
    if config.encoder_channels == "by-name" and want:
        have = [c.upper() for c in dataset_cls.eeg_channels]
        if not have:
            raise ConfigError(f"encoder_channels=by-name: dataset '{config.dataset}' does not name its raw channels")
        index = {c: i for i, c in enumerate(have)}
        mapped = np.zeros((*raw.shape[:-2], len(want), raw.shape[-1]), dtype=np.float32)
        used = [(j, index[c]) for j, c in enumerate(want) if c in index]
        if not used:
            raise ConfigError(f"encoder_channels=by-name: no channel of {config.dataset} is among the encoder's "
                              f"({', '.join(want[:8])} …)")
        for j, i in used:
            mapped[..., j, :] = raw[..., i, :]
        raw = mapped
        record["channels"] = {"mapped": [want[j] for j, _ in used],
                              "zero_filled": [c for c in want if c not in index],
                              "dropped": [c for c in have if c not in set(want)]}
        reporter.status(f"encoder: {len(used)} of the encoder's {len(want)} channels mapped by name from "
                        f"{config.dataset}; {len(want) - len(used)} zero-filled, "
                        f"{len(record['channels']['dropped'])} dataset channel(s) unused")
    if not record:
        return features, {}
    return dataclasses.replace(features, extra={**features.extra, "raw": raw}), record


def prepare_features(config: RunConfig, reporter: Reporter) -> FeatureSet:
    """Load (or generate) the dataset and build the labelled model-input feature set."""
    cache_dir = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
    variant = MODELS.get(config.model).variant(config.variant)
    dataset_cls = DATASETS.get(config.dataset)
    options = {k: getattr(config, k) for k in dataset_cls.option_names}
    if config.synthetic:
        with_raw = dataset_cls.default_feature == "precomputed" and config.feature != "precomputed"
        root = ensure_synthetic(cache_dir, config, reporter, with_face="face" in variant.modalities,
                                with_raw=with_raw)
        if with_raw and "raw_time_scale" in options:
            options["raw_time_scale"] = SYNTHETIC_SEED_V_TIME_SCALE
    else:
        root = Path(config.root)
    dataset = dataset_cls(root, subjects=config.subjects, modalities=[m for m in variant.extras if m not in COMPUTED_EXTRAS],
                          **options)
    method = config.precomputed if config.feature == "precomputed" else config.de_method
    feature_config = FeatureConfig(kind=config.feature, method=method, window_s=config.window_s,
                                   baseline_removal=config.baseline_removal, extras=variant.extras,
                                   window_origin=config.window_origin, params=config.feature_params)
    t0 = time.perf_counter()
    windows = build_features(
        dataset, feature_config, cache_dir / "features",
        progress=lambda done, total, subject, hit: reporter.transient(
            f"features: subject {subject} ({done}/{total}){' from cache' if hit else ''}"),
    )
    reporter.status(f"features ready: {windows.x.shape[0]} windows × {windows.x.shape[1:]} "
                    f"in {time.perf_counter() - t0:.1f} s ({windows.info['cache_hits']} subjects from cache)")
    samples = make_sequences(windows, config.seq_len, config.seq_step, config.window_origin)
    labels = {k: samples.column(k) for k in dataset.label_names}
    y, names = dataset.make_targets(labels, config.label)
    samples = dataclasses.replace(samples, y=y, class_names=names)
    samples.info["fingerprint"] = dataset_fingerprint(dataset)
    samples.info["root"] = str(root)
    return samples


def run_experiment(config: RunConfig, reporter: Reporter | None = None,
                   tags: dict[str, str] | None = None) -> RunSummary:
    """Run one protocol end to end and return its summary (also in MLflow).

    ``tags`` are added to the run (a pipeline passes ``mlflow.parentRunId`` and its stage key).
    """
    from moodops.orchestrator.fanout import check_resources, init_ray, run_folds
    from moodops.orchestrator.report import (aggregate, plot_confusion, plot_fold_accuracy, summary_markdown,
                                             write_fold_table)
    from moodops.orchestrator.tracking import Tracker, git_commit

    reporter = reporter or Reporter()
    requested_variant = config.variant
    config = resolve_model_defaults(config)
    from moodops.orchestrator.fanout import precheck_gpus

    precheck_gpus(config.gpus_per_fold, config.address)
    t_start = time.perf_counter()
    tracker = Tracker(config.tracking_uri, config.experiment)
    encoder = None
    if config.encoder:
        from moodops.orchestrator.pretrain import resolve_encoder

        encoder = resolve_encoder(config.encoder, tracker.uri)
        config = apply_encoder_params(config, encoder.contract)
        reporter.status(f"encoder {config.encoder} ({encoder.contract['method']} on "
                        f"{encoder.contract.get('corpus', '?')}, pretrain run "
                        f"{encoder.lineage.get('moodops.pretrain_run_id', '?')})"
                        f"{', frozen' if config.freeze_encoder else ', fine-tuned'}")
    run_name = f"{config.protocol}-{config.dataset}-{config.label}-{config.model}.{config.variant}"
    describe = (f"model {config.model}, variant {config.variant}"
                f"{' (auto: the fullest variant this dataset supports; --variant to choose)' if requested_variant == 'auto' else ''}"
                f"; feature {config.feature}"
                + (f" ({config.de_method})" if config.feature == "de" and config.de_method != "bandpass" else "")
                + (f" {config.precomputed} (the release's windows)" if config.feature == "precomputed"
                   else f", {config.window_s:g}-s windows"
                   + (" cut from each trial's end" if config.window_origin == "end" else ""))
                + f", {config.seq_len} per sample"
                + (f" every {config.seq_step}" if config.seq_step and config.seq_step != config.seq_len else "")
                + (f"; no validation part: all {config.epochs} epochs, the last kept (val_strategy none)"
                   if config.val_strategy == "none" else ""))
    reporter.status(describe)

    def start_parent() -> str:
        return tracker.start_parent(run_name, config.to_dict(), {
            "moodops.config_hash": config.config_hash(), "moodops.git_commit": git_commit(),
            "moodops.protocol": config.protocol, "moodops.dataset": config.dataset, "moodops.model": config.model,
            "moodops.variant": config.variant,
            "moodops.label": config.label, "moodops.seed": str(config.seed),
            **(encoder.lineage if encoder else {}), **(tags or {}),
        })

    try:
        features = prepare_features(config, reporter)
        adapted: dict[str, Any] = {}
        if encoder is not None:
            from moodops.pipelines.pretrain import check_contract, unused_inputs

            features, adapted = adapt_raw_for_encoder(features, config, encoder.contract, reporter)
            sfreq = (encoder.contract.get("sfreq") if "resample" in adapted
                     else DATASETS.get(config.dataset).eeg_sfreq)
            inputs = MODELS.get(config.model).variant(config.variant).inputs
            used = {k: v for k, v in features.shapes().items() if k in inputs}  # eye-only: x is not read
            check_contract(encoder.contract, config.model, used, config.encoder, sfreq)
            unused = unused_inputs(encoder.contract, used)
            if unused:
                reporter.status(f"the encoder's part for input(s) {', '.join(unused)} is left out: variant "
                                f"{config.variant} does not use {'it' if len(unused) == 1 else 'them'}")
        folds = _protocol(config).split(features)
        if config.labelled_samples is not None:
            folds = [first_labelled(fold, features, config.labelled_samples, config.labelled_unit) for fold in folds]
    except BaseException as e:  # bad data or config: the attempt is still on record, as a FAILED run
        failed = start_parent()
        tracker.client.set_tag(failed, "moodops.error", f"{type(e).__name__}: {e}"[:4000])
        tracker.end_parent("KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        raise

    # Resume: the same config and data after a driver that did not finish → reuse its parent run and folds.
    cache_dir = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
    ledger = Ledger.for_run(cache_dir, config.config_hash(), features.info["fingerprint"])
    lock = ledger.lock()  # one live process per run: a second one is refused, naming the holder
    try:
        parent, done = _open_ledger(ledger, lock, tracker, config, folds, start_parent, reporter)
    except BaseException:
        lock.release()
        raise
    state = ledger.state()

    children: dict[str, str] = dict(state.get("children", {}))
    logged: set[str] = set(state.get("logged", []))
    started_ray = False
    fold_params = {"model": config.model, "variant": config.variant, "model_params": config.model_params,
                   "epochs": config.epochs, "lr": config.lr, "batch_size": config.batch_size, "label": config.label}
    by_name = {f.name: f for f in folds}
    ch_names = tuple(DATASETS.get(config.dataset).eeg_channels)
    run_title = f"{config.protocol} · {config.dataset} · {config.label} · {config.model} ({config.variant})"

    def draw_attention(result: FoldResult, folder: Path) -> list[Path]:
        """The fold's electrode attention (Mood Reader §3.5) as arrays and scalp maps, under attention/."""
        if not result.attention:
            return []
        return _attention_files(result.attention, ch_names, features.class_names, folder / "attention",
                                f"{result.fold}: electrode attention on its test part\n{run_title}")

    def log_result(result: FoldResult) -> bool:
        """Log one fold to MLflow; False (result kept in the ledger) when the tracking store is away."""
        try:
            run_id = children.get(result.fold)
            if run_id is None:
                run_id = children[result.fold] = tracker.create_child(by_name[result.fold], {
                    "moodops.config_hash": config.config_hash(), **_note_tags(by_name[result.fold])})
            tracker.log_fold(run_id, result, {**fold_params, "fold": result.fold}, draw_attention)
        except Exception as e:  # noqa: BLE001 - any tracking failure: keep the result, log it later
            if isinstance(e, KeyboardInterrupt):
                raise
            local = local_storage_error(e)
            if local is not None:  # a full or broken local disk is no outage to wait out
                raise DataError(f"fold {result.fold}: MLflow's artifacts cannot be written on this machine: "
                                f"{describe_os_error(local)}; the fold results are kept in {ledger.folder}, and "
                                "re-running the command logs them without training again") from None
            logger.warning("fold %s: tracking store unavailable (%s); result kept in %s", result.fold,
                           str(e).splitlines()[0] if str(e) else type(e).__name__, ledger.folder)
            return False
        logged.add(result.fold)
        ledger.update(children=children, logged=sorted(logged))
        return True

    try:
        if adapted:
            tracker.client.log_dict(parent, adapted, "encoder_input_mapping.json")
        leakage = {f.name: leakage_fraction(features, f) for f in folds}
        fold_notes = {f.name: list(f.notes) for f in folds if f.notes}
        mean_leak = float(np.mean(list(leakage.values())))
        tracker.set_parent_tags({"moodops.dataset_fingerprint": features.info["fingerprint"],
                                 "moodops.n_folds": str(len(folds)), "moodops.ledger": str(ledger.folder),
                                 **_shape_tags(features)})
        tracker.log_dataset(config.dataset + ("-synthetic" if config.synthetic else ""),
                            features.info["fingerprint"], features.info.get("root") or str(config.root))
        tracker.log_parent_metrics({"leakage_test_in_train_fraction": mean_leak,
                                    "n_samples": float(features.n_samples)})
        tracker.client.log_dict(parent, {"test_samples_whose_trial_is_in_training": leakage,
                                         "mean": mean_leak}, "leakage_audit.json")
        if mean_leak > 0:
            reporter.status(f"warning: {mean_leak:.0%} of test samples share a trial with training samples (leaks)")
        if fold_notes:
            tracker.client.log_dict(parent, fold_notes, "fold_notes.json")
            tracker.set_parent_tags({"moodops.folds_with_notes": str(len(fold_notes))})
            first = next(iter(fold_notes))
            reporter.status(f"warning: {len(fold_notes)} of {len(folds)} fold(s) have notes (what the protocol "
                            f"could not do), e.g. {first}: {fold_notes[first][0]} (all in fold_notes.json)")
        for name in sorted(set(done) - logged):  # finished before, but never reached the tracking store
            log_result(done[name])
        missing = [f for f in folds if f.name not in done]
        for fold in missing:  # child runs of a driver that died mid-fold
            old = children.pop(fold.name, None)
            if old is not None:
                _fail_if_running(tracker, old, "driver stopped before this fold finished; re-run by a resume")
        results = list(done.values())
        if missing:
            started_ray = init_ray(config.address)
            check_resources(config.cpus_per_fold, config.gpus_per_fold, local=started_ray and not config.address)
            tconf = train_config(config, encoder.weights if encoder else None)
            for fold in missing:
                try:
                    children[fold.name] = tracker.create_child(fold, {"moodops.config_hash": config.config_hash(),
                                                                      **_note_tags(fold)})
                except Exception as e:  # noqa: BLE001 - created when its result is logged instead
                    logger.warning("fold %s: could not create its MLflow run yet (%s)", fold.name, e)
            ledger.update(children=children)
            per_task = resolve_folds_per_task(config, tconf, features)
            packing = (f", packed {per_task} per task ({-(-len(missing) // per_task)} tasks)" if per_task > 1 else "")
            reporter.status(f"running {len(missing)} fold(s) on Ray{packing}: {config.cpus_per_fold:g} CPU"
                            f"{f', {config.gpus_per_fold:g} GPU' if config.gpus_per_fold else ''} per "
                            f"{'task' if per_task > 1 else 'fold'}")

            def on_result(fold: Fold, result: FoldResult) -> None:
                ledger.record(result)  # first: on disk the moment it finishes
                log_result(result)
                reporter.fold_done(fold, result)

            def on_abandon(fold: Fold, reason: str) -> None:
                run_id = children.pop(fold.name, None)
                if run_id is not None:
                    tracker.fail_child(run_id, reason, "KILLED")

            results += run_folds(missing, features, tconf, cpus_per_fold=config.cpus_per_fold,
                                 gpus_per_fold=config.gpus_per_fold, max_retries=config.max_retries,
                                 on_result=on_result, on_progress=reporter.progress, on_abandon=on_abandon,
                                 folds_per_task=per_task)
        _log_pending(results, logged, log_result, ledger, config.tracking_retry_s, reporter)

        summary_metrics = aggregate(results)
        tracker.log_parent_metrics(summary_metrics)
        chance = 1.0 / len(features.class_names)
        confusion = sum(r.confusion for r in results)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            write_fold_table(results, out / "per_subject.csv")
            title = f"{config.protocol} · {config.dataset} · {config.label} · {config.model} ({config.variant})"
            plot_fold_accuracy(results, chance, out / "per_subject_accuracy.png", title)
            plot_confusion(confusion, features.class_names, out / "confusion_matrix.png", title)
            averaged = mean_attention(results)
            if averaged is not None:
                _attention_files(averaged, ch_names, features.class_names, out / "attention",
                                 f"electrode attention, mean of {int(averaged['n_folds'])} folds\n{title}")
            tracker.log_parent_artifacts(out)
        tracker.set_parent_note(summary_markdown(title, results, summary_metrics, chance))
        tracker.end_parent("FINISHED")
        ledger.update(status="FINISHED")
        summary = RunSummary(
            parent_run_id=parent, experiment_id=tracker.experiment_id, tracking_uri=tracker.uri,
            folds=[{"fold": r.fold, "test_subjects": list(r.test_subjects), "node_id": r.node_id,
                    "device": r.device, "seconds": r.timing.get("total_s"), "epochs_run": len(r.history or []),
                    **r.metrics} for r in sorted(results, key=lambda r: r.fold)],
            aggregate=summary_metrics, leakage=mean_leak, config_hash=config.config_hash(),
            dataset_fingerprint=features.info["fingerprint"], wall_s=time.perf_counter() - t_start,
            chance=chance, class_names=list(features.class_names), variant=config.variant,
            label=config.label, resumed_folds=sorted(done), val_strategy=config.val_strategy,
            fold_notes=fold_notes,
        )
        if config.output_json:
            write_json_atomic(Path(config.output_json), summary.to_dict())
        return summary
    except BaseException as e:
        status = "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED"
        try:
            for name, run_id in children.items():
                if name not in logged:
                    tracker.fail_child(run_id, f"{type(e).__name__}: {e}", status)
            tracker.client.set_tag(parent, "moodops.error", f"{type(e).__name__}: {e}"[:4000])
            tracker.end_parent(status)
        except Exception:  # noqa: BLE001 - the tracking store may be the problem; the ledger keeps results
            logger.warning("could not mark the MLflow runs %s; finished folds are kept in %s", status, ledger.folder)
        ledger.update(status=status, children=children, logged=sorted(logged))
        local = None if isinstance(e, MoodopsError) else local_storage_error(e)
        if local is not None:
            raise DataError(f"MLflow's artifacts cannot be written on this machine: {describe_os_error(local)}; "
                            f"the fold results are kept in {ledger.folder}, and re-running the command logs "
                            "them without training again") from None
        if isinstance(e, KeyboardInterrupt):
            saved = sum(1 for _ in ledger.folds_dir.glob("*/result.json"))
            raise Interrupted(f"interrupted ({saved} of {len(folds)} fold(s) saved in {ledger.folder}; "
                              "re-run the same command to resume)") from e
        raise
    finally:
        lock.release()
        if started_ray:
            import ray

            ray.shutdown()


def _attention_files(attention: dict[str, np.ndarray], ch_names: tuple[str, ...], class_names, folder: Path,
                     title: str) -> list[Path]:
    """Arrays always; the topomap when the dataset's channel names cover the attention's channels."""
    if len(ch_names) != np.asarray(attention["test"]).shape[-1]:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "electrode_attention.npz", classes=np.array(list(class_names)), **attention)
        logger.warning("electrode attention over %d channels, but the dataset names %d: arrays saved, no "
                       "topomap drawn", np.asarray(attention["test"]).shape[-1], len(ch_names))
        return [folder / "electrode_attention.npz"]
    return save_attention(attention, ch_names, class_names, folder, title)


def _shape_tags(features: FeatureSet) -> dict[str, str]:
    """EEG channels and sessions of the run's data (MOABB's ``channels`` and ``n_sessions`` columns)."""
    tags = {"moodops.n_sessions": str(len(np.unique(features.column("session"))))}
    if "channel" in features.axes:
        tags["moodops.n_channels"] = str(features.x.shape[1 + features.axes.index("channel")])
    return tags


def _note_tags(fold: Fold) -> dict[str, str]:
    return {"moodops.fold_notes": "; ".join(fold.notes)[:4000]} if fold.notes else {}


def _reopen_parent(tracker, previous: dict[str, Any], reporter: Reporter) -> str | None:
    """The previous parent run, set RUNNING again, if it is in this tracking store."""
    parent = previous.get("parent_run_id")
    if not parent or previous.get("tracking_uri") != tracker.uri:
        return None
    try:
        tracker.client.get_run(parent)
    except Exception:  # noqa: BLE001 - deleted or unknown: start a new run
        return None
    tracker.client.update_run(parent, status="RUNNING")
    tracker.parent_id = parent
    tracker.client.set_tag(parent, "moodops.resumed", str(int(previous.get("resumes", 0)) + 1))
    return parent


def _fail_if_running(tracker, run_id: str, reason: str) -> None:
    try:
        if tracker.client.get_run(run_id).info.status == "RUNNING":
            tracker.fail_child(run_id, reason, "FAILED")
    except Exception:  # noqa: BLE001 - a run that no longer exists needs nothing
        logger.debug("child run %s not found", run_id)


def _log_pending(results: list[FoldResult], logged: set[str], log_result, ledger: Ledger, retry_s: float,
                 reporter: Reporter) -> None:
    """Retry logging folds the tracking store missed; after ``retry_s`` fail loudly (results stay on disk)."""
    pending = [r for r in results if r.fold not in logged]
    if not pending:
        return
    reporter.status(f"{len(pending)} fold result(s) not yet in the tracking store; retrying for up to "
                    f"{retry_s:.0f} s (kept in {ledger.folder})")
    deadline = time.monotonic() + retry_s
    delay = 1.0
    while pending and time.monotonic() < deadline:
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        pending = [r for r in pending if not log_result(r)]
        delay = min(delay * 2, 5.0)  # a store back up is used within 5 s
    if pending:
        raise TrackingUnavailableError(
            f"tracking store unreachable: {len(pending)} fold result(s) "
            f"({', '.join(r.fold for r in pending[:5])}{' …' if len(pending) > 5 else ''}) are saved in "
            f"{ledger.folder} but not logged; re-run the same command when the server is back to log them")


def resolve_folds_per_task(config: RunConfig, tconf: TrainConfig, features: FeatureSet) -> int:
    """``folds_per_task`` as a number: as given, or for ``auto`` what
    :func:`moodops.pipelines.packed.auto_folds_per_task` picks for this model's size on the tasks' device
    (1 for models that cannot pack)."""
    from moodops.pipelines.packed import auto_folds_per_task, packable

    if not packable(tconf):
        return 1
    if config.folds_per_task != "auto":
        return int(config.folds_per_task)
    if config.gpus_per_fold <= 0 or tconf.device == "cpu":
        return 1
    from moodops.components.models import MODELS, create_model

    variant = MODELS.get(tconf.model).variant(tconf.variant)
    shapes = {"x": features.x.shape[1:], **{k: features.extra[k].shape[1:] for k in variant.extras}}
    model = create_model(tconf.model, shapes, max(2, len(features.class_names)), variant=tconf.variant,
                         **tconf.model_params)
    return auto_folds_per_task(sum(p.numel() for p in model.parameters()), on_gpu=True)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, default=float)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

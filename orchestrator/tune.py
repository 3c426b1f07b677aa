"""`moodops tune`: Optuna studies on Ray whose objective never sees a test subject.

Honesty first. Each *outer* fold holds its test part out completely: the
study for it is built from a :meth:`FeatureSet.subset` of the outer training
rows only (the test rows are not even shipped to the workers), split into
*inner* folds whose held-out part is the validation the objective scores.
Only when the study is done are the best parameters trained on the whole
outer training part and tested, once, on the outer test part.

- ``loso --nested``: one study per outer test subject on the remaining
  subjects; the reported score is the outer mean ± std.
- ``loso --holdout 1,2,3``: the cheaper mode: those subjects are the test
  part, declared up front; one study on the rest.
- ``split``: the split's test part is held out; one study on its training part.

Inner folds: ``--inner subjects`` (default for ``loso``: 20 % of the training
subjects validate), ``--inner loso`` (every training subject in turn) or, for
``split``, a trial-level 8:2 split of the training trials.

The driver owns the study. It creates it (TPE, multivariate, constant liar
when trials run in parallel, seeded; median or Hyperband pruning) in the
storage before any worker starts — a local Optuna journal file by default
(``moodops-optuna.journal``), or ``--storage postgresql://…`` — asks for
trials, fans each trial's inner folds out as Ray tasks (``--parallel``
trials at once), and tells the results. Workers send each epoch's
validation accuracy to a small Ray actor; the driver reports the mean over
inner folds per epoch to the trial and, when the pruner says so, the
workers stop at their next epoch.

Resume: ``--study NAME`` again continues to ``--trials`` finished (complete or
pruned) trials in total. The driver keeps a heartbeat in the study; trials
left RUNNING by a driver whose heartbeat stopped are marked FAILED and their
parameters retried first.

MLflow: one parent run per invocation (one run per study beneath it when
nested), one child run per trial (parameters, objective, state), the inner
fold runs beneath each trial, and the optimisation history, parameter
importances and parallel-coordinate plots as PNG artifacts.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moodops.components.errors import ConfigError, MoodopsError, invalid_choice
from moodops.components.types import FeatureSet, Fold, FoldResult
from moodops.orchestrator import interrupts
from moodops.orchestrator.ledger import pid_alive
from moodops.orchestrator.config import RunConfig
from moodops.pipelines.train import TrainConfig

logger = logging.getLogger(__name__)

DEFAULT_STORAGE_FILE = "moodops-optuna.journal"
PRUNERS = ("median", "hyperband", "none")
INNER = ("subjects", "loso", "split")
HEARTBEAT_KEY = "moodops_driver_heartbeat"
OUTER_KEY = "moodops_outer_result"


@dataclass
class TuneOptions:
    trials: int = 20
    parallel: int = 1
    space: str | None = None
    study: str | None = None
    storage: str | None = None
    timeout_s: float | None = None
    nested: bool = False
    holdout: list[int] | None = None
    inner: str | None = None  # None: subjects (loso) / split (split)
    pruner: str = "median"
    seed: int = 0
    export: str | None = None
    heartbeat_s: float = 5.0
    grace_s: float = 30.0

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ConfigError(f"The 'trials' parameter must be >= 1. Got {self.trials} instead.")
        if self.parallel < 1:
            raise ConfigError(f"The 'parallel' parameter must be >= 1. Got {self.parallel} instead.")
        if self.pruner not in PRUNERS:
            raise ConfigError(invalid_choice("pruner", self.pruner, PRUNERS))
        if self.inner is not None and self.inner not in INNER:
            raise ConfigError(invalid_choice("inner", self.inner, INNER))
        if self.nested and self.holdout:
            raise ConfigError("--nested and --holdout exclude each other: nested tunes for every outer subject, "
                              "--holdout declares the test subjects once")


class TrialPruned(MoodopsError):
    """Raised inside a fold task when the driver decided to prune its trial."""


@dataclass
class StudyResult:
    name: str
    outer_fold: str
    best_value: float
    best_params: dict[str, Any]
    n_complete: int
    n_pruned: int
    n_failed: int
    outer_metrics: dict[str, float]
    outer_test_subjects: tuple[int, ...]
    wall_s: float
    trial_seconds: list[dict[str, Any]] = field(default_factory=list)  # wall vs the folds' own compute


@dataclass
class TuneSummary:
    parent_run_id: str
    tracking_uri: str
    storage: str
    studies: list[StudyResult]
    outer_accuracy_mean: float
    outer_accuracy_std: float
    best_params: dict[str, Any]
    export: str | None
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- storage


def storage_url(options: TuneOptions) -> str:
    return options.storage or str(Path(DEFAULT_STORAGE_FILE).resolve())


def open_storage(url: str):
    """A journal file (a path, or ``journal:PATH``) or an RDB URL (``postgresql://…``, ``sqlite:///…``)."""
    import optuna

    if "://" in url and not url.startswith("journal:"):
        try:
            return optuna.storages.RDBStorage(url)
        except Exception as e:  # noqa: BLE001 - SQLAlchemy/driver errors: one line naming the URL
            raise ConfigError(f"--storage {url}: cannot open ({str(e).splitlines()[0]})") from None
    from optuna.storages.journal import JournalFileBackend

    path = Path(url.removeprefix("journal:")).expanduser()
    if not path.parent.is_dir():
        raise ConfigError(f"--storage {path}: folder {path.parent} does not exist")
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def _make_study(name: str, storage, options: TuneOptions, max_epochs: int):
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    def sampler(told: int):
        # Seeded from the seed *and* the trials the study already holds: a resumed study's sampler does
        # not restart the sequence it drew from (with seed alone its first draws repeat trial 0's
        # parameters).
        return optuna.samplers.TPESampler(seed=options.seed + told, multivariate=True, group=True,
                                          constant_liar=options.parallel > 1,
                                          n_startup_trials=min(10, max(2, options.trials // 3)))

    if options.pruner == "median":
        pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    elif options.pruner == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(min_resource=2, max_resource=max(max_epochs, 3), reduction_factor=3)
    else:
        pruner = optuna.pruners.NopPruner()
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", sampler=sampler(0),
                                pruner=pruner, load_if_exists=True)
    told = len(study.get_trials(deepcopy=False))
    if told:
        study.sampler = sampler(told)
    return study


def _heartbeat(study, runs: list[str] | None = None) -> None:
    """The driver's mark on the study: when, who, and (``runs``) the MLflow runs it has open for it."""
    beat = {"time": time.time(), "host": socket.gethostname(), "pid": os.getpid()}
    runs = runs if runs is not None else (study.user_attrs.get(HEARTBEAT_KEY) or {}).get("runs")
    if runs:
        beat["runs"] = runs
    study.set_user_attr(HEARTBEAT_KEY, beat)


def _driver_gone(beat: dict[str, Any], grace_s: float) -> bool:
    """Whether the driver that left ``beat`` has stopped: a pid of this host that no longer runs, or a
    heartbeat older than ``grace_s`` (the rule :func:`recover_stale_trials` uses)."""
    if not beat:
        return False
    if beat.get("host") == socket.gethostname():
        return not pid_alive(int(beat.get("pid", 0)))
    return time.time() - float(beat.get("time", 0)) >= grace_s


def close_abandoned_runs(client, run_ids: list[str], keep: set[str]) -> list[str]:
    """End KILLED the runs a stopped driver left RUNNING: each of ``run_ids`` (but ``keep``) and its
    RUNNING descendants (outer folds, trials). Returns the ids it closed."""
    closed = []

    def close(run_id: str, depth: int) -> None:
        try:
            run = client.get_run(run_id)
        except Exception:  # noqa: BLE001 - deleted: nothing to close
            return
        if depth < 2:
            for child in client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'"):
                close(child.info.run_id, depth + 1)
        if run.info.status == "RUNNING":
            client.set_tag(run_id, "moodops.error", "driver stopped before this run ended; closed by a resume")
            client.set_terminated(run_id, "KILLED")
            closed.append(run_id)

    for run_id in run_ids:
        if run_id not in keep:
            close(run_id, 0)
    return closed


def recover_stale_trials(study, storage, grace_s: float) -> list[int]:
    """Trials left RUNNING by a driver that is gone → FAILED, their parameters queued to run again.

    Raises when another driver's heartbeat is fresh (the study is in use)."""
    from optuna.trial import TrialState

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running:
        return []
    beat = study.user_attrs.get(HEARTBEAT_KEY)
    if beat and time.time() - float(beat["time"]) < grace_s and not (
            beat["host"] == socket.gethostname() and not pid_alive(int(beat["pid"]))):
        raise ConfigError(f"study '{study.study_name}' is in use by process {beat['pid']} on {beat['host']} "
                          f"(heartbeat {time.time() - float(beat['time']):.0f} s ago); wait for it or pick another "
                          f"--study name")
    study_id = storage.get_study_id_from_name(study.study_name)
    failed = []
    for t in running:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        storage.set_trial_user_attr(trial_id, "moodops_failed_reason", "driver stopped (stale heartbeat)")
        storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"moodops_retry_of": t.number}, skip_if_exists=False)
        failed.append(t.number)
    return failed


# --------------------------------------------------------------------------- workers


def _control_actor():
    import ray

    @ray.remote(num_cpus=0)
    class TrialControl:
        """Epoch reports from fold tasks to the driver, and the driver's stop orders back."""

        def __init__(self) -> None:
            self.reports: list[tuple[int, int, int, float]] = []
            self.stopped: set[int] = set()

        def report(self, trial: int, fold: int, epoch: int, value: float) -> None:
            self.reports.append((trial, fold, epoch, value))

        def drain(self) -> list[tuple[int, int, int, float]]:
            out, self.reports = self.reports, []
            return out

        def stop(self, trial: int) -> None:
            self.stopped.add(trial)

        def should_stop(self, trial: int) -> bool:
            return trial in self.stopped

    return TrialControl.options(name=None).remote()


def _tune_fold_task(config: TrainConfig, fold: Fold, features: FeatureSet, num_threads: int, control,
                    trial: int, index: int) -> FoldResult:
    """One inner fold of one trial inside a Ray worker; reports epochs, stops when pruned."""
    import ray
    import torch

    from moodops.pipelines.evaluate import run_fold
    from moodops.pipelines.hooks import Hooks

    class Report(Hooks):
        def on_epoch_end(self, name, epoch, metrics):
            value = metrics.get("val_accuracy", metrics.get("train_accuracy"))
            if value is not None:
                control.report.remote(trial, index, epoch, float(value))
            if ray.get(control.should_stop.remote(trial)):
                raise TrialPruned(f"trial {trial} pruned at epoch {epoch}")

    torch.set_num_threads(num_threads)
    result = run_fold(dataclasses.replace(config, num_threads=num_threads), fold, features, Report())
    result.node_id = ray.get_runtime_context().get_node_id()
    return result


# --------------------------------------------------------------------------- the study loop


@dataclass
class _Running:
    trial: Any
    params: dict[str, Any]
    config: TrainConfig
    run_id: str
    refs: dict[Any, int]
    started: float
    values: dict[int, float] = field(default_factory=dict)
    epochs: dict[int, dict[int, float]] = field(default_factory=dict)  # fold → epoch → value
    finished_folds: set[int] = field(default_factory=set)
    reported_step: int = 0
    intermediate: dict[int, float] = field(default_factory=dict)
    compute_s: float = 0.0  # the inner folds' own time (inside the workers)
    pruned: bool = False


def apply_params(config: RunConfig, values: dict[str, Any], space) -> RunConfig:
    run, model = space.split(values)
    return dataclasses.replace(config, **run, model_params={**config.model_params, **model})


def run_study(name: str, storage, features: FeatureSet, inner_folds: list[Fold], config: RunConfig, space,
              options: TuneOptions, tracker, parent_run_id: str, reporter,
              deadline: float | None) -> tuple[Any, list[dict[str, Any]]]:
    """Run one study to ``options.trials`` finished trials; returns (study, per-trial seconds)."""
    import ray
    from optuna.trial import TrialState
    from ray.exceptions import RayTaskError

    from moodops.orchestrator.run import train_config

    max_epochs = max([int(p.high) for p in space.params if p.name == "epochs"] + [config.epochs])
    study = _make_study(name, storage, options, max_epochs)
    beat = study.user_attrs.get(HEARTBEAT_KEY) or {}
    retried = recover_stale_trials(study, storage, options.grace_s)
    if retried:
        reporter.status(f"study {name}: trial(s) {', '.join(map(str, retried))} were left running by a stopped "
                        f"driver: marked FAILED, their parameters queued again")
    mine = [r for r in (tracker.parent_id, parent_run_id) if r]
    if beat.get("runs") and _driver_gone(beat, options.grace_s):
        closed = close_abandoned_runs(tracker.client, beat["runs"], set(mine))
        if closed:
            reporter.status(f"study {name}: closed {len(closed)} MLflow run(s) the stopped driver (pid "
                            f"{beat.get('pid')}) left RUNNING, as KILLED")
    _heartbeat(study, mine)
    finished = lambda: len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))  # noqa: E731
    if finished() >= options.trials:
        reporter.status(f"study {name}: already has {finished()} finished trial(s) (asked for {options.trials})")
        return study, []
    features_ref = ray.put(features)
    control = _control_actor()
    threads = max(1, int(math.floor(config.cpus_per_fold)))
    remote = ray.remote(_tune_fold_task).options(num_cpus=config.cpus_per_fold, num_gpus=config.gpus_per_fold,
                                                 max_retries=config.max_retries, retry_exceptions=False)
    running: dict[int, _Running] = {}
    seconds: list[dict[str, Any]] = []
    last_beat = time.monotonic()
    failures = 0
    try:
        with interrupts.deferred():  # Ctrl-C raised at the loop's turn, not inside a store write
            while True:
                timed_out = deadline is not None and time.monotonic() > deadline
                while (not timed_out and len(running) < options.parallel
                       and finished() + len(running) < options.trials):
                    t_trial = time.monotonic()
                    trial = study.ask()
                    fixed = {"variant": config.variant, "model_params": config.model_params}
                    values = space.suggest(trial, fixed)
                    trial_config = apply_params(config, values, space)
                    tconf = train_config(trial_config)
                    run_id = tracker.client.create_run(tracker.experiment_id, run_name=f"trial-{trial.number}", tags={
                        "mlflow.parentRunId": parent_run_id, "moodops.kind": "trial", "moodops.study": name,
                        "moodops.trial": str(trial.number)}).info.run_id
                    tracker.client.log_batch(run_id, params=_params(values))
                    refs = {remote.remote(tconf, fold, features_ref, threads, control, trial.number, i): i
                            for i, fold in enumerate(inner_folds)}
                    running[trial.number] = _Running(trial, values, tconf, run_id, refs, t_trial)
                    reporter.status(f"  trial {trial.number} started: "
                                    + ", ".join(f"{k}={_short(v)}" for k, v in values.items()))
                if not running:
                    break
                all_refs = [r for t in running.values() for r in t.refs]
                interrupts.check()
                ready, _ = ray.wait(all_refs, num_returns=1, timeout=0.5)
                for report in ray.get(control.drain.remote()):
                    number, fold, epoch, value = report
                    if number in running:
                        running[number].epochs.setdefault(fold, {})[epoch] = value
                for ref in ready:
                    number = next(n for n, t in running.items() if ref in t.refs)
                    state = running[number]
                    index = state.refs.pop(ref)
                    fold = inner_folds[index]
                    try:
                        result = ray.get(ref)
                    except RayTaskError as e:
                        cause = e.cause if getattr(e, "cause", None) is not None else e
                        if isinstance(cause, TrialPruned) or state.pruned:
                            state.pruned = True
                            continue
                        failures += 1
                        _finish(study, tracker, state, TrialState.FAIL, None, name, seconds, reporter,
                                f"{fold.name}: {type(cause).__name__}: {str(cause).strip().splitlines()[-1]}")
                        for other in state.refs:
                            ray.cancel(other, force=True)
                        del running[number]
                        if failures > options.trials:
                            last = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
                            raise ConfigError(f"study {name}: {failures} trials failed; the last: {last}") from None
                        continue
                    state.values[index] = result.metrics["accuracy"]
                    state.compute_s += float(result.timing["total_s"])
                    state.finished_folds.add(index)
                    _log_inner_fold(tracker, state.run_id, fold, result)
                for number in list(running):
                    state = running[number]
                    if not state.pruned:
                        _report_epochs(study, state, len(inner_folds), control)
                    if not state.refs:
                        if state.pruned:
                            _finish(study, tracker, state, TrialState.PRUNED, None, name, seconds, reporter)
                        else:
                            value = float(np.mean([state.values[i] for i in range(len(inner_folds))]))
                            _finish(study, tracker, state, TrialState.COMPLETE, value, name, seconds, reporter)
                        del running[number]
                if time.monotonic() - last_beat > options.heartbeat_s:
                    _heartbeat(study)
                    last_beat = time.monotonic()
    except BaseException:
        for state in running.values():
            for ref in state.refs:
                ray.cancel(ref, force=True)
            tracker.client.set_terminated(state.run_id, "KILLED")
        raise
    finally:
        ray.kill(control)
    return study, seconds


def _report_epochs(study, state: _Running, n_folds: int, control) -> None:
    """Report epoch e's mean validation accuracy once every inner fold reached it (or ended)."""
    import ray

    while True:
        step = state.reported_step + 1
        if not any(step in state.epochs.get(i, {}) for i in range(n_folds)):
            return  # no fold has reached this epoch (yet, or at all)
        values = []
        for i in range(n_folds):
            epochs = state.epochs.get(i, {})
            if step in epochs:
                values.append(epochs[step])
            elif i in state.finished_folds and epochs:
                values.append(epochs[max(epochs)])  # stopped early: its last value stands
            else:
                return
        state.trial.report(float(np.mean(values)), step)
        state.intermediate[step] = float(np.mean(values))
        state.reported_step = step
        if state.trial.should_prune():
            state.pruned = True
            ray.get(control.stop.remote(state.trial.number))
            return


def _finish(study, tracker, state: _Running, trial_state, value, name, seconds, reporter, error: str = "") -> None:
    from mlflow.entities import Metric

    study.tell(state.trial, value, state=trial_state)
    elapsed = time.monotonic() - state.started
    metrics = [Metric("trial_seconds", elapsed, int(time.time() * 1000), 0),
               Metric("fold_compute_seconds", state.compute_s, int(time.time() * 1000), 0)]
    if value is not None:
        metrics.append(Metric("objective", value, int(time.time() * 1000), 0))
    metrics += [Metric("val_accuracy_mean_inner", v, int(time.time() * 1000), step)
                for step, v in state.intermediate.items()]
    tracker.client.log_batch(state.run_id, metrics=metrics)
    tracker.client.set_tag(state.run_id, "moodops.trial_state", trial_state.name)
    if error:
        tracker.client.set_tag(state.run_id, "moodops.error", error[:4000])
    tracker.client.set_terminated(state.run_id, "FAILED" if trial_state.name == "FAIL" else "FINISHED")
    # wall: from asking for the trial to its last record, storage and tracking included
    seconds.append({"trial": state.trial.number, "state": trial_state.name,
                    "wall_s": time.monotonic() - state.started, "fold_compute_s": state.compute_s})
    shown = f"objective {value:.4f}" if value is not None else trial_state.name.lower()
    reporter.status(f"  trial {state.trial.number} {shown} ({elapsed:.0f} s){f' — {error}' if error else ''}")


def _log_inner_fold(tracker, trial_run: str, fold: Fold, result: FoldResult) -> None:
    from mlflow.entities import Metric

    run = tracker.client.create_run(tracker.experiment_id, run_name=fold.name, tags={
        "mlflow.parentRunId": trial_run, "moodops.kind": "inner-fold", "moodops.fold": fold.name,
        "moodops.validation_subjects": ",".join(map(str, fold.test_subjects))})
    ts = int(time.time() * 1000)
    metrics = [Metric(k, float(v), ts, epoch) for epoch, row in enumerate(result.history, start=1)
               for k, v in row.items()]
    metrics += [Metric(f"inner_{k}", float(v), ts, 0) for k, v in result.metrics.items()]
    tracker.client.log_batch(run.info.run_id, metrics=metrics)
    tracker.client.set_terminated(run.info.run_id, "FINISHED")


def _params(values: dict[str, Any]):
    from mlflow.entities import Param

    return [Param(k, str(v)[:6000]) for k, v in values.items()]


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


# --------------------------------------------------------------------------- outer folds


def outer_folds(config: RunConfig, options: TuneOptions, features: FeatureSet) -> list[Fold]:
    from moodops.components.protocols import LeaveOneSubjectOut, SubjectHoldout, TrainTestSplit

    if config.protocol == "loso":
        if options.nested:
            return LeaveOneSubjectOut(config.val_fraction, config.seed, config.val_strategy).split(features)
        if options.holdout:
            return SubjectHoldout(options.holdout, val_fraction=config.val_fraction, seed=config.seed,
                                  val_strategy=config.val_strategy).split(features)
        raise ConfigError("tuning on a LOSO protocol needs an honest outer split: --nested (a study per held-out "
                          "subject) or --holdout SUBJECTS (declared test subjects, tuned on the rest)")
    if config.protocol == "split":
        if options.nested or options.holdout:
            raise ConfigError("split already holds its test part out; --nested / --holdout are for loso")
        return TrainTestSplit(config.ratio, config.split_level, config.val_fraction, config.seed,
                              config.val_strategy).split(features)
    raise ConfigError(f"moodops tune supports --protocol loso or split, not '{config.protocol}'")


def inner_folds(config: RunConfig, options: TuneOptions, inner: FeatureSet) -> list[Fold]:
    from moodops.components.protocols import LeaveOneSubjectOut, SubjectHoldout, TrainTestSplit

    kind = options.inner or ("subjects" if config.protocol == "loso" else "split")
    if kind == "loso":
        return LeaveOneSubjectOut(config.val_fraction, config.seed + 1, config.val_strategy).split(inner)
    if kind == "subjects":
        return SubjectHoldout(None, 0.2, config.val_fraction, config.seed + 1, config.val_strategy).split(inner)
    return TrainTestSplit(0.8, "trial", config.val_fraction, config.seed + 1, config.val_strategy).split(inner)


def _final_fold(fold: Fold, features: FeatureSet, tconf: TrainConfig, config: RunConfig) -> FoldResult:
    """Train the best parameters on the outer training part, test once on the outer test part (Ray task)."""
    import ray

    from moodops.orchestrator.fanout import _fold_task

    remote = ray.remote(_fold_task).options(num_cpus=config.cpus_per_fold, num_gpus=config.gpus_per_fold,
                                            max_retries=config.max_retries, retry_exceptions=False)
    from ray.exceptions import RayTaskError

    from moodops.orchestrator.fanout import FoldFailedError

    try:
        return ray.get(remote.remote(tconf, fold, ray.put(features), max(1, int(math.floor(config.cpus_per_fold)))))
    except RayTaskError as e:
        raise FoldFailedError(fold.name, e.cause if getattr(e, "cause", None) is not None else str(e)) from None


# --------------------------------------------------------------------------- plots, export


def plot_study(study, folder: Path) -> list[str]:
    """Optimisation history, parameter importances and parallel coordinates as PNG (what the data allows)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vis
    from optuna.trial import TrialState

    made = []
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    plots = [("optimization_history.png", vis.plot_optimization_history)]
    if len(complete) >= 2:
        plots += [("param_importances.png", vis.plot_param_importances),
                  ("parallel_coordinate.png", vis.plot_parallel_coordinate)]
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        plots.append(("intermediate_values.png", vis.plot_intermediate_values))
    for filename, plot in plots:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = plot(study)
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            fig.set_size_inches(9, 5)
            fig.tight_layout()
            fig.savefig(folder / filename, dpi=100)
            plt.close(fig)
            made.append(filename)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:  # e.g. importances of a single-valued param
            logger.info("plot %s skipped: %s", filename, e)
    return made


def export_params(path: Path, params: dict[str, Any], space, note: str) -> None:
    """Write best parameters as RunConfig keys (``moodops run --params FILE``), atomically."""
    import yaml

    run, model = space.split(params)
    data: dict[str, Any] = {k: _plain(v) for k, v in run.items()}
    if model:
        data["model_params"] = {k: _plain(v) for k, v in model.items()}
    text = f"# {note}\n" + yaml.safe_dump(data, sort_keys=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


# --------------------------------------------------------------------------- entry point


def run_tune(config: RunConfig, options: TuneOptions, reporter=None) -> TuneSummary:
    """Tune, honestly; see the module doc."""
    import ray

    from moodops.orchestrator.fanout import check_resources, init_ray
    from moodops.orchestrator.run import Reporter, prepare_features, resolve_model_defaults
    from moodops.orchestrator.space import load_space
    from moodops.orchestrator.tracking import Tracker, git_commit

    reporter = reporter or Reporter()
    t_start = time.perf_counter()
    config = resolve_model_defaults(config)
    from moodops.orchestrator.fanout import precheck_gpus

    precheck_gpus(config.gpus_per_fold, config.address)
    space = load_space(options.space, config.model, config.variant, config.model_params)
    url = storage_url(options)
    storage = open_storage(url)
    study_name = options.study or f"{config.dataset}-{config.model}-{config.variant}-{config.protocol}"
    tracker = Tracker(config.tracking_uri, config.experiment)
    features = prepare_features(config, reporter)
    outers = outer_folds(config, options, features)
    parent = tracker.start_parent(f"tune-{study_name}", {**config.to_dict(), **{
        f"tune_{k}": v for k, v in dataclasses.asdict(options).items()}}, {
        "moodops.kind": "tune", "moodops.study": study_name, "moodops.storage": url,
        "moodops.git_commit": git_commit(), "moodops.dataset": config.dataset, "moodops.model": config.model})
    tracker.client.log_text(parent, Path(space.source).read_text(), "search_space.yaml")
    reporter.status(f"MLflow parent run {parent} ({tracker.uri}); Optuna storage {url}")
    reporter.status(f"{len(outers)} outer fold(s); {options.trials} trials each, {options.parallel} at a time; "
                    f"space {space.source}")
    deadline = time.monotonic() + options.timeout_s if options.timeout_s else None
    started = init_ray(config.address)
    results: list[StudyResult] = []
    status = "FAILED"
    try:
        check_resources(config.cpus_per_fold, config.gpus_per_fold, local=started and not config.address)
        for k, outer in enumerate(outers, start=1):
            name = study_name if len(outers) == 1 else f"{study_name}.{outer.name}"
            outer_run = parent if len(outers) == 1 else tracker.client.create_run(
                tracker.experiment_id, run_name=f"outer-{outer.name}", tags={
                    "mlflow.parentRunId": parent, "moodops.kind": "outer-fold", "moodops.study": name}).info.run_id
            inner_rows = np.sort(np.concatenate([outer.train, outer.validation]))
            inner = features.subset(inner_rows)  # the outer test rows are not in it
            folds = inner_folds(config, options, inner)
            reporter.status(f"outer {k}/{len(outers)} {outer.name}: study '{name}' on {inner.n_samples} samples of "
                            f"subjects {_subjects(inner)}; {len(folds)} inner fold(s) validate on "
                            + "; ".join(",".join(map(str, f.test_subjects)) for f in folds))
            t0 = time.perf_counter()
            study, seconds = run_study(name, storage, inner, folds, config, space, options, tracker, outer_run,
                                       reporter, deadline)
            results.append(_outer_result(study, name, outer, features, config, space, tracker, outer_run, reporter,
                                         time.perf_counter() - t0, seconds))
            _heartbeat(study)
            with tempfile.TemporaryDirectory() as tmp:
                made = plot_study(study, Path(tmp))
                (Path(tmp) / "trials.json").write_text(json.dumps(
                    [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params}
                     for t in study.get_trials(deepcopy=False)], indent=1, default=str))
                tracker.client.log_artifacts(outer_run, tmp, "study" if len(outers) == 1 else None)
                reporter.status(f"study '{name}': {', '.join(made)} logged")
            if outer_run != parent:
                tracker.client.set_terminated(outer_run, "FINISHED")
        accuracies = [r.outer_metrics["accuracy"] for r in results]
        best = max(results, key=lambda r: r.best_value)
        export = None
        if options.export:
            note = ("best inner-validation trial of study " + best.name + (
                "; nested: the outer score estimates the tuning procedure, not these exact parameters"
                if len(results) > 1 else ""))
            export_params(Path(options.export), best.best_params, space, note)
            export = str(Path(options.export).resolve())
            tracker.client.log_artifact(parent, export)
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        tracker.client.log_batch(parent, metrics=[
            Metric("outer_accuracy_mean", float(np.mean(accuracies)), ts, 0),
            Metric("outer_accuracy_std", float(np.std(accuracies)), ts, 0),
            Metric("outer_macro_f1_mean", float(np.mean([r.outer_metrics["macro_f1"] for r in results])), ts, 0)]
            + _outer_f1(results, ts))
        status = "FINISHED"
    finally:
        tracker.end_parent(status)
        if started:
            ray.shutdown()
    return TuneSummary(parent, tracker.uri, url, results, float(np.mean(accuracies)), float(np.std(accuracies)),
                       best.best_params, export, time.perf_counter() - t_start)


def _outer_f1(results: list[StudyResult], ts: int) -> list:
    """``outer_f1_mean`` (the positive class's F1, binary targets only) over the outer folds whose F1 is
    defined, and ``outer_f1_n_undefined`` when some are not; nothing for a multi-class target."""
    from mlflow.entities import Metric

    if not results or not all("f1" in r.outer_metrics for r in results):
        return []
    values = np.array([r.outer_metrics["f1"] for r in results], dtype=float)
    defined = values[~np.isnan(values)]
    out = [Metric("outer_f1_mean", float(np.mean(defined)) if len(defined) else float("nan"), ts, 0)]
    if len(defined) < len(values):
        out.append(Metric("outer_f1_n_undefined", float(len(values) - len(defined)), ts, 0))
    return out


def _subjects(features: FeatureSet) -> str:
    from moodops.components.datasets.base import _ranges

    return _ranges(sorted(int(s) for s in np.unique(features.column("subject"))))


def _outer_result(study, name: str, outer: Fold, features: FeatureSet, config: RunConfig, space, tracker,
                  outer_run: str, reporter, wall: float, seconds: list[dict[str, Any]]) -> StudyResult:
    """Train the study's best parameters on the outer training part and test once (reused on resume)."""
    from optuna.trial import TrialState

    from moodops.orchestrator.run import train_config

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise ConfigError(f"study {name}: no trial completed (all pruned or failed); raise --trials or relax the "
                          f"pruner (--pruner none)")
    best = study.best_trial
    saved = study.user_attrs.get(OUTER_KEY)
    if saved and saved.get("best_trial") == best.number:
        metrics = saved["metrics"]
        reporter.status(f"  outer test of best trial {best.number} already done: accuracy {metrics['accuracy']:.3f}")
    else:
        tconf = train_config(apply_params(config, best.params, space))
        result = _final_fold(outer, features, tconf, config)
        metrics = {k: float(v) for k, v in result.metrics.items()}
        study.set_user_attr(OUTER_KEY, {"best_trial": best.number, "metrics": metrics})
        reporter.status(f"  best trial {best.number} (inner {best.value:.3f}) trained on the outer training part, "
                        f"tested once on {outer.name}: accuracy {metrics['accuracy']:.3f}")
    from mlflow.entities import Metric

    ts = int(time.time() * 1000)
    tracker.client.log_batch(outer_run, metrics=[Metric(f"outer_test_{k}", v, ts, 0) for k, v in metrics.items()]
                             + [Metric("best_inner_objective", float(best.value), ts, 0)])
    tracker.client.log_dict(outer_run, {"best_trial": best.number, "params": best.params}, f"best_params-{outer.name}.json")
    states = [t.state for t in study.get_trials(deepcopy=False)]
    return StudyResult(name, outer.name, float(best.value), dict(best.params), states.count(TrialState.COMPLETE),
                       states.count(TrialState.PRUNED), states.count(TrialState.FAIL), metrics,
                       tuple(outer.test_subjects), wall, seconds)

"""The `moodops` command line: parse, build a config, call one orchestrator
function, turn errors into one clear line and an exit code."""
from __future__ import annotations

import logging
import os
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    name="moodops",
    help="Experiment orchestration for multimodal EEG emotion recognition.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
data_app = typer.Typer(help="Generate and validate datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
pipeline_app = typer.Typer(help="Multi-stage pipelines (pretrain → fine-tune) from YAML specs.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")

_state = {"debug": False}


def _err(text: str = "", nl: bool = True) -> None:
    typer.echo(text, err=True, nl=nl)


class Protocol(str, Enum):
    loso = "loso"
    split = "split"
    per_subject = "per-subject"
    cross_session = "cross-session"


class Kind(str, Enum):
    datasets = "datasets"
    models = "models"
    protocols = "protocols"
    features = "features"


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv for debug).")] = 0,
) -> None:
    _state["debug"] = debug or os.environ.get("MOODOPS_DEBUG", "") not in ("", "0")
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbose == 0:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for name in ("mlflow", "alembic", "ray", "urllib3", "matplotlib"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    import warnings

    # The CLI reports leakage in its own status lines.
    warnings.filterwarnings("ignore", message=r".*shuffles windows across train and test.*")


class _CliReporter:
    """Status lines and a live progress line on stderr."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._live = False

    def _clear(self) -> None:
        if self._live:
            _err("\r\033[K", nl=False)
            self._live = False

    def status(self, message: str) -> None:
        self._clear()
        _err(f"· {message}")

    def transient(self, message: str) -> None:
        if self.tty:
            _err(f"\r\033[K{message}", nl=False)
            self._live = True

    def progress(self, p) -> None:
        acc = "–" if p.mean_accuracy is None else f"{p.mean_accuracy:.3f}"
        eta = "–" if p.eta_s is None else _duration(p.eta_s)
        line = (f"folds {p.done}/{p.total} ({p.running} running) | elapsed {_duration(p.elapsed_s)} | "
                f"ETA {eta} | mean accuracy {acc}")
        if self.tty:
            _err(f"\r\033[K{line}", nl=False)
            self._live = True

    def fold_done(self, fold, result) -> None:
        self._clear()
        subjects = ",".join(map(str, result.test_subjects))
        subjects = subjects if len(subjects) <= 20 else f"{len(result.test_subjects)} subjects"
        f1 = f"F1 {result.metrics['f1']:.3f}  " if "f1" in result.metrics else ""  # binary targets only
        _err(f"  {fold.name:<14} test {subjects:<8} accuracy {result.metrics['accuracy']:.3f}  "
             f"macro-F1 {result.metrics['macro_f1']:.3f}  {f1}({result.timing['total_s']:.1f} s, {result.device})")


def _print_repeats(cfg, seed_list: list[int]) -> None:
    from moodops.orchestrator.repeats import run_repeats, spread_line
    from moodops.orchestrator.tracking import runs_table_url

    summary = run_repeats(cfg, seed_list, _CliReporter())
    agg = summary.aggregate
    n_folds = len(summary.runs[0]["folds"])
    typer.echo("")
    typer.echo(f"{cfg.protocol} · {cfg.dataset} · {summary.label} · {cfg.model} ({summary.variant}): "
               f"{len(seed_list)} seeds × {n_folds} fold(s) in {_duration(summary.wall_s)}")
    typer.echo(f"accuracy {spread_line(agg)}   (chance {summary.chance:.3f})")
    typer.echo(f"macro-F1 {spread_line(agg, 'macro_f1')}")
    if "test_f1_mean" in agg:  # binary targets: the positive ("high") class's F1
        typer.echo(f"F1 (positive class) {spread_line(agg, 'f1')}")
    typer.echo("(± over subjects: population std of each subject's score averaged over the seeds; "
               "± over seeds: population std of the seeds' means)")
    for r in summary.seed_runs:
        typer.echo(f"  seed {r['seed']:<4} accuracy {r['test_accuracy_mean']:.3f} ± {r['test_accuracy_std']:.3f} "
                   f"over subjects   run {r['run_id']}")
    typer.echo(f"MLflow parent run {summary.parent_run_id} (experiment {summary.experiment_id}) in {summary.tracking_uri}")
    url = runs_table_url(summary.tracking_uri, summary.experiment_id)
    typer.echo(f"runs table: {url}" if summary.tracking_uri.startswith(("http:", "https:"))
               else f"view it: moodops ui   then open {url}")
    if cfg.output_json:
        typer.echo(f"results written to {cfg.output_json}")


def _apply_set(values: dict, items: list[str] | None) -> None:
    """``--set KEY=VALUE`` into ``values`` (a flag given explicitly wins over --set)."""
    from moodops.components.errors import ConfigError

    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got '{item}'")
        key = key.strip().replace("-", "_")
        if values.get(key) is None:
            values[key] = value


def _yaml_set(items: list[str] | None, flag: str) -> dict:
    """``KEY=VALUE`` items of a pretrain option (``flag``) as a mapping, each value read as YAML (``1`` an int,
    ``{"dim": 64}`` a mapping), as the same key written in a pipeline spec's pretrain stage would be."""
    import yaml

    from moodops.components.errors import ConfigError

    values = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} expects KEY=VALUE, got '{item}'")
        values[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return values


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@app.command()
def run(
    protocol: Annotated[Protocol, typer.Argument(help="loso: one fold per subject; split: one train/test split; per-subject: first trials of each session train, the rest test; cross-session: leave one session out per subject.")],
    dataset: Annotated[Optional[str], typer.Option(help="Dataset name (see `moodops list datasets`).")] = None,
    root: Annotated[Optional[Path], typer.Option(help="The dataset on disk.")] = None,
    synthetic: Annotated[Optional[bool], typer.Option("--synthetic", help="Use (and on first use generate) a full-size synthetic dataset in the real format.")] = None,
    synthetic_subjects: Annotated[Optional[int], typer.Option(help="With --synthetic: a copy with this many subjects (default: as many as the real release).")] = None,
    label: Annotated[Optional[str], typer.Option(help="Target: valence, arousal, dominance, liking or quadrant.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Model name (see `moodops list models`).")] = None,
    variant: Annotated[Optional[str], typer.Option(help="Model variant (ablation); 'auto': the fullest one the dataset's modalities allow.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Maximum training epochs per fold.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for splits, initialisation and shuffling.")] = None,
    subjects: Annotated[Optional[str], typer.Option(help="Subjects to use, e.g. 1,2,5-8.")] = None,
    ratio: Annotated[Optional[float], typer.Option(help="split: training share (0.8).")] = None,
    split_level: Annotated[Optional[str], typer.Option(help="split: 'trial' (default) or 'window' (leaks; reproduces papers).")] = None,
    train_trials: Annotated[Optional[int], typer.Option(help="per-subject: training trials per session (default: the dataset's papers', else 60 %).")] = None,
    test_session: Annotated[Optional[int], typer.Option(help="cross-session: test on this session only (default: leave each session out).")] = None,
    feature: Annotated[Optional[str], typer.Option(help="de, psd, dfc or precomputed (default: the model's; precomputed for feature-only releases).")] = None,
    encoder: Annotated[Optional[str], typer.Option(help="Pretrained weights to start from: models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/encoder (see `moodops pretrain`).")] = None,
    freeze_encoder: Annotated[Optional[bool], typer.Option("--freeze-encoder/--finetune-encoder", help="Keep the pretrained weights fixed, or fine-tune them with the rest (default).")] = None,
    cpus_per_fold: Annotated[Optional[float], typer.Option(help="CPUs per fold task (also its torch threads).")] = None,
    gpus_per_fold: Annotated[Optional[float], typer.Option(help="GPUs per fold task; fractions share a GPU.")] = None,
    folds_per_task: Annotated[Optional[str], typer.Option(help="Folds trained together as one packed model per Ray task (the task asks for --cpus/--gpus-per-fold): an int, or auto (1 on CPUs; on GPUs up to 8, by model size).")] = None,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray).")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI (default: ./mlflow.db).")] = None,
    experiment: Annotated[Optional[str], typer.Option(help="MLflow experiment name.")] = None,
    output_json: Annotated[Optional[Path], typer.Option(help="Write per-fold metrics, mean/std and the parent run id here.")] = None,
    resume: Annotated[Optional[bool], typer.Option("--resume/--fresh", help="Re-use the folds an interrupted run of the same command finished (default), or start over.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML file with any RunConfig keys.")] = None,
    params: Annotated[Optional[Path], typer.Option("--params", help="YAML of tuned parameters (`moodops tune --export`); over --config, under flags.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Any RunConfig key as KEY=VALUE (repeatable).")] = None,
    repeats: Annotated[Optional[int], typer.Option(help="Run the protocol under K seeds (--seed, --seed+1, …) as one parent run with a child run per seed; reports the spread over subjects and over seeds.")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="The seeds to repeat the protocol under, e.g. 0,1,2 (instead of --repeats).")] = None,
) -> None:
    """Run an evaluation protocol: features, one Ray task per fold, MLflow tracking."""
    from moodops.orchestrator.config import resolve_config
    from moodops.orchestrator.run import run_experiment

    cli = dict(protocol=protocol.value, dataset=dataset, root=str(root) if root else None, synthetic=synthetic,
               synthetic_subjects=synthetic_subjects,
               label=label, model=model, variant=variant, epochs=epochs, seed=seed, subjects=subjects, ratio=ratio,
               split_level=split_level, train_trials=train_trials, test_session=test_session, feature=feature,
               encoder=encoder, freeze_encoder=freeze_encoder, cpus_per_fold=cpus_per_fold, gpus_per_fold=gpus_per_fold,
               folds_per_task=folds_per_task, address=address, tracking_uri=tracking_uri, experiment=experiment,
               output_json=str(output_json) if output_json else None, resume=resume)
    _apply_set(cli, set_)
    cfg = resolve_config(cli, config, params_path=params)
    from moodops.orchestrator.repeats import parse_seeds

    seed_list = parse_seeds(repeats, seeds, cfg.seed)
    if seed_list is not None:
        _print_repeats(cfg, seed_list)
        return
    summary = run_experiment(cfg, _CliReporter())
    agg = summary.aggregate
    typer.echo("")
    typer.echo(f"{cfg.protocol} · {cfg.dataset} · {summary.label} · {cfg.model} ({summary.variant}): "
               f"{int(agg['n_folds'])} fold(s) "
               f"in {_duration(summary.wall_s)}")
    from moodops.orchestrator.report import summary_metrics_line

    # accuracy, macro-F1 and, on a binary target, the positive class's F1 (what binary DEAP papers call F1)
    typer.echo(f"{summary_metrics_line(agg, sep='   ')}   (chance {summary.chance:.3f})")
    typer.echo(f"leakage audit: {summary.leakage:.1%} of test samples share a trial with training samples")
    if summary.fold_notes:
        typer.echo(f"validation: {len(summary.fold_notes)} fold(s) without a stratified validation part "
                   f"({', '.join(list(summary.fold_notes)[:3])}{' …' if len(summary.fold_notes) > 3 else ''}); "
                   "see fold_notes.json in the parent run")
    if summary.resumed_folds:
        typer.echo(f"resumed: {len(summary.resumed_folds)} fold(s) re-used from the interrupted run")
    from moodops.orchestrator.tracking import runs_table_url

    typer.echo(f"MLflow parent run {summary.parent_run_id} (experiment {summary.experiment_id}) in {summary.tracking_uri}")
    url = runs_table_url(summary.tracking_uri, summary.experiment_id)
    if summary.tracking_uri.startswith(("http:", "https:")):
        typer.echo(f"runs table: {url}")
    else:
        typer.echo(f"view it: moodops ui   then open {url}")
    if cfg.output_json:
        typer.echo(f"results written to {cfg.output_json}")


@app.command()
def pretrain(
    method: Annotated[str, typer.Option(help="mbsm (Mood Reader's masked brain signal modelling on raw EEG) or mv_sstma (masked autoencoding of DE + eye features).")] = "mbsm",
    corpus: Annotated[Optional[str], typer.Option("--corpus", "--dataset", help="mbsm: eegmmidb; mv_sstma: seed-iv (default), seed-v, seed or deap.")] = None,
    root: Annotated[Optional[Path], typer.Option(help="The corpus on disk (e.g. the folder holding S001/ … for eegmmidb).")] = None,
    synthetic: Annotated[bool, typer.Option("--synthetic", help="Use (and on first use generate) a synthetic corpus in the real format.")] = False,
    subjects: Annotated[Optional[str], typer.Option(help="Subjects to use, e.g. 1-20.")] = None,
    runs: Annotated[Optional[str], typer.Option(help="eegmmidb runs, e.g. 3-14 (default: every run present).")] = None,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Check each EEGMMIDB file against the published SHA-256 list before reading it.")] = True,
    notch: Annotated[Optional[float], typer.Option(help="Notch frequency in Hz (50; 60 for US mains; 0 for none).")] = 50.0,
    segment_s: Annotated[float, typer.Option(help="mbsm: segment length in seconds (4 s = Mood Reader's 4 × 1-s windows).")] = 4.0,
    mask_ratio: Annotated[Optional[float], typer.Option(help="Share of tokens (mbsm, default 0.75) or channels (mv_sstma, 0.3) hidden.")] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Segments per batch (per worker).")] = 64,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (one-cycle schedule); default mbsm 1e-3, mv_sstma 1.5e-4 (the MV-SSTMA paper's §3.2).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: Annotated[int, typer.Option(help="Data-parallel workers through Ray Train (1: one local process).")] = 1,
    use_gpu: Annotated[bool, typer.Option("--gpu", help="One GPU per worker (Ray Train, NCCL).")] = False,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster to join for --workers > 1.")] = None,
    register_as: Annotated[Optional[str], typer.Option(help="Registered model name (default moodops-mbsm / moodops-mv-sstma; '' to skip).")] = None,
    alias: Annotated[Optional[str], typer.Option(help="Alias to point at the new version (e.g. champion); @latest always names the newest).")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI (default: ./mlflow.db).")] = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "moodops-pretrain",
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Any other pretrain key as KEY=VALUE, e.g. model_params={\"dim\": 64}.")] = None,
    output_json: Annotated[Optional[Path], typer.Option(help="Write the run id, model URI, version and loss history here.")] = None,
) -> None:
    """Masked pretraining, tracked in MLflow; the encoder is registered for `moodops run --encoder`."""
    from moodops.orchestrator.config import parse_int_list
    from moodops.orchestrator.pretrain import PretrainJob, run_pretrain
    from moodops.orchestrator.run import write_json_atomic

    values = dict(method=method, corpus=corpus, root=str(root) if root else None, synthetic=synthetic,
                  subjects=parse_int_list(subjects) if subjects else None,
                  runs=parse_int_list(runs) if runs else None, verify=verify, notch=notch or None,
                  segment_s=segment_s, mask_ratio=mask_ratio, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                  workers=workers, use_gpu=use_gpu, address=address, register_as=register_as, alias=alias,
                  tracking_uri=tracking_uri, experiment=experiment)
    values.update(_yaml_set(set_, "--set"))
    job = PretrainJob.from_dict(values, "moodops pretrain")
    summary = run_pretrain(job, _CliReporter())
    last = summary.history[-1]
    typer.echo("")
    typer.echo(f"pretrain {job.method} on {job.corpus}: {summary.segments} samples, {job.epochs} epochs in "
               f"{_duration(summary.train_s)} ({summary.segments_per_s:.0f} samples/s, {summary.workers} worker(s))")
    first = summary.initial_val_loss
    typer.echo(f"masked reconstruction loss: train {last['train_loss']:.4f}"
               + (f", validation {first:.4f} before training → {last['val_loss']:.4f}" if first is not None
                  and "val_loss" in last else ""))
    typer.echo(f"MLflow run {summary.run_id} (experiment {summary.experiment_id}) in {summary.tracking_uri}")
    if summary.version:
        uri = f"models:/{summary.registered_model}@{summary.alias or 'latest'}"
        typer.echo(f"encoder: {summary.registered_model} version {summary.version}; fine-tune with "
                   f"`moodops run … --encoder {uri}`")
    else:
        typer.echo(f"encoder: {summary.model_uri}")
    if output_json:
        write_json_atomic(output_json, summary.to_dict())


@app.command()
def tune(
    dataset: Annotated[Optional[str], typer.Option(help="Dataset name (see `moodops list datasets`).")] = None,
    model: Annotated[Optional[str], typer.Option(help="Model name (see `moodops list models`).")] = None,
    protocol: Annotated[str, typer.Option(help="Outer protocol: loso (with --nested or --holdout) or split.")] = "loso",
    root: Annotated[Optional[Path], typer.Option(help="The dataset on disk.")] = None,
    synthetic: Annotated[Optional[bool], typer.Option("--synthetic", help="Use (and on first use generate) a synthetic dataset in the real format.")] = None,
    variant: Annotated[Optional[str], typer.Option(help="Model variant; 'auto': the fullest the dataset allows.")] = None,
    label: Annotated[Optional[str], typer.Option(help="Target (e.g. valence).")] = None,
    subjects: Annotated[Optional[str], typer.Option(help="Subjects to use, e.g. 1-10.")] = None,
    trials: Annotated[int, typer.Option(help="Finished (complete or pruned) trials per study, in total across resumes.")] = 20,
    parallel: Annotated[int, typer.Option(help="Trials running at once (each fans out its inner folds on Ray).")] = 1,
    space: Annotated[Optional[Path], typer.Option(help="Search space YAML (default: the model's, see orchestrator/spaces/).")] = None,
    study: Annotated[Optional[str], typer.Option(help="Study name; the same name resumes the study.")] = None,
    storage: Annotated[Optional[str], typer.Option(help="Optuna storage: a journal file path (default ./moodops-optuna.journal) or postgresql://…")] = None,
    timeout: Annotated[Optional[float], typer.Option(help="Stop starting new trials after this many seconds.")] = None,
    nested: Annotated[bool, typer.Option("--nested", help="loso: a study per held-out subject on the others; reports the outer mean ± std.")] = False,
    holdout: Annotated[Optional[str], typer.Option(help="loso: these subjects are the test part, declared up front; one study on the rest.")] = None,
    inner: Annotated[Optional[str], typer.Option(help="Inner validation: subjects (20 % of training subjects; loso default), loso, or split (trial-level 8:2; split default).")] = None,
    pruner: Annotated[str, typer.Option(help="median, hyperband or none (on per-epoch validation accuracy, mean over inner folds).")] = "median",
    seed: Annotated[int, typer.Option(help="Seed of the sampler (and of splits and training).")] = 0,
    export: Annotated[Optional[Path], typer.Option(help="Write the best parameters here (YAML for `moodops run --params`).")] = None,
    cpus_per_fold: Annotated[Optional[float], typer.Option(help="CPUs per inner-fold task.")] = None,
    gpus_per_fold: Annotated[Optional[float], typer.Option(help="GPUs per inner-fold task; fractions share a GPU.")] = None,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster to join.")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI (default: ./mlflow.db).")] = None,
    experiment: Annotated[Optional[str], typer.Option(help="MLflow experiment name.")] = None,
    output_json: Annotated[Optional[Path], typer.Option(help="Write the studies, best parameters and outer scores here.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML file with any RunConfig keys.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Any RunConfig key as KEY=VALUE (repeatable).")] = None,
) -> None:
    """Hyperparameter search with Optuna on Ray; the test subjects never reach the objective."""
    from moodops.orchestrator.config import parse_int_list, resolve_config
    from moodops.orchestrator.run import write_json_atomic
    from moodops.orchestrator.tune import TuneOptions, run_tune

    cli = dict(protocol=protocol, dataset=dataset, root=str(root) if root else None, synthetic=synthetic,
               label=label, model=model, variant=variant, subjects=subjects, seed=seed,
               cpus_per_fold=cpus_per_fold, gpus_per_fold=gpus_per_fold, address=address,
               tracking_uri=tracking_uri, experiment=experiment)
    _apply_set(cli, set_)
    cfg = resolve_config(cli, config)
    options = TuneOptions(trials=trials, parallel=parallel, space=str(space) if space else None, study=study,
                          storage=storage, timeout_s=timeout, nested=nested,
                          holdout=parse_int_list(holdout) if holdout else None, inner=inner, pruner=pruner,
                          seed=seed, export=str(export) if export else None)
    summary = run_tune(cfg, options, _CliReporter())
    typer.echo("")
    for r in summary.studies:
        typer.echo(f"study {r.name}: {r.n_complete} complete, {r.n_pruned} pruned, {r.n_failed} failed; best inner "
                   f"{r.best_value:.3f}; outer test ({','.join(map(str, r.outer_test_subjects))}) accuracy "
                   f"{r.outer_metrics['accuracy']:.3f}"
                   + (f", F1 (positive class) {r.outer_metrics['f1']:.3f}" if "f1" in r.outer_metrics else ""))
    typer.echo(f"outer accuracy {summary.outer_accuracy_mean:.3f} ± {summary.outer_accuracy_std:.3f} over "
               f"{len(summary.studies)} outer fold(s) (test subjects never seen while tuning)")
    typer.echo("best parameters: " + ", ".join(f"{k}={v}" for k, v in summary.best_params.items()))
    typer.echo(f"MLflow parent run {summary.parent_run_id} in {summary.tracking_uri}; Optuna storage {summary.storage}")
    if summary.export:
        typer.echo(f"exported to {summary.export}: use it with `moodops run … --params {summary.export}`")
    if output_json:
        write_json_atomic(output_json, summary.to_dict())


@pipeline_app.command("run")
def pipeline_run(
    spec: Annotated[str, typer.Argument(help="A pipeline spec (YAML file) or a preset name (see `moodops pipeline list`).")],
    synthetic: Annotated[bool, typer.Option("--synthetic", help="Every stage on (generated once) synthetic data in the real formats.")] = False,
    root: Annotated[Optional[list[str]], typer.Option("--root", help="Where a dataset or corpus lives, as NAME=DIR (repeatable), e.g. seed=/data/SEED.")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI (default: ./mlflow.db).")] = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "moodops-pipelines",
    force: Annotated[bool, typer.Option("--force", help="Run every stage even when a cached result exists.")] = False,
    output_json: Annotated[Optional[Path], typer.Option(help="Write each stage's key, run id, reuse and metrics here.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="A RunConfig key as KEY=VALUE for every run stage, e.g. epochs=2 for a quick try of a preset (repeatable).")] = None,
    set_pretrain: Annotated[Optional[list[str]], typer.Option("--set-pretrain", help="A pretrain key as KEY=VALUE (value read as YAML) for every pretrain stage, e.g. epochs=1 (repeatable).")] = None,
) -> None:
    """Run a pipeline's stages in order; unchanged stages are reused from the tracking store."""
    import dataclasses

    from moodops.components.errors import ConfigError
    from moodops.orchestrator.pipeline import load_spec, run_pipeline, with_overrides
    from moodops.orchestrator.run import write_json_atomic

    roots = {}
    for item in root or []:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise ConfigError(f"--root expects NAME=DIR (e.g. seed=/data/SEED), got '{item}'")
        roots[name.strip()] = folder.strip()
    if synthetic and roots:
        raise ConfigError("--root and --synthetic exclude each other")
    overrides: dict = {}
    _apply_set(overrides, set_)
    pretrain_overrides = _yaml_set(set_pretrain, "--set-pretrain")
    parsed = with_overrides(load_spec(spec), overrides, pretrain_overrides)
    if overrides:
        typer.echo("every run stage with " + ", ".join(f"{k}={v}" for k, v in overrides.items()), err=True)
    if pretrain_overrides:
        typer.echo("every pretrain stage with " + ", ".join(f"{k}={v}" for k, v in pretrain_overrides.items()),
                   err=True)
    parent, outcomes = run_pipeline(parsed, synthetic, roots, tracking_uri, experiment, force, _CliReporter())
    typer.echo("")
    typer.echo(f"pipeline {parsed.name}: {len(outcomes)} stage(s), MLflow parent run {parent}")
    width = max([18, *(len(o.name) for o in outcomes)])
    for o in outcomes:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in o.metrics.items()
                          if k in ("test_accuracy_mean", "test_accuracy_std", "test_f1_mean", "train_loss",
                                   "val_loss"))
        typer.echo(f"  {o.name:<{width}} {'reused' if o.cached else 'ran   '} run {o.run_id}  {shown}"
                   + (f"  encoder {o.encoder}" if o.encoder else ""))
    from moodops.orchestrator.pipeline import paper_report

    report = paper_report(parsed, outcomes, synthetic)
    if report:
        typer.echo("")
        for line in report:
            typer.echo(line)
        typer.echo("(also paper_comparison.md and paper_comparison.csv in the pipeline's parent run)")
    if output_json:
        write_json_atomic(output_json, {"parent_run_id": parent, "stages": [dataclasses.asdict(o) for o in outcomes]})


@pipeline_app.command("list")
def pipeline_list() -> None:
    """The preset specs shipped with moodops (each reproduces a paper's protocol)."""
    from moodops.orchestrator.pipeline import PRESETS_DIR, load_spec

    for path in sorted(PRESETS_DIR.glob("*.yaml")):
        spec = load_spec(path)
        typer.echo(f"{path.stem:<22} {spec.description}")
        typer.echo(f"{'':<22} stages: {' → '.join(f'{s.name} ({s.kind})' for s in spec.stages)}")


@data_app.command("synth")
def data_synth(
    name: Annotated[str, typer.Argument(help="Dataset layout to write: deap, seed, seed-iv, seed-v or eegmmidb.")],
    out: Annotated[Path, typer.Option(help="Folder to write into.")],
    subjects: Annotated[Optional[int], typer.Option(help="Number of subjects (default: as the real release).")] = None,
    trials: Annotated[Optional[int], typer.Option(help="deap: trials per subject (40).")] = None,
    seconds: Annotated[Optional[float], typer.Option(help="Trial length in seconds (deap 60 + 3-s baseline; seed 240).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    effect: Annotated[float, typer.Option(help="Strength of the label-dependent signal.")] = 1.0,
    with_face: Annotated[bool, typer.Option("--with-face", help="deap: also write OpenFace CSVs and participant_ratings.csv.")] = False,
    with_raw: Annotated[bool, typer.Option("--with-raw", help="seed-iv, seed-v: also write the raw EEG (eeg_raw_data/, EEG_raw/*.cnt).")] = False,
    raw_time_scale: Annotated[float, typer.Option(help="seed-v --with-raw: shrink the published clip timeline by this factor (read back with --set raw_time_scale=...).")] = 1.0,
    face_layout: Annotated[str, typer.Option(help="deap --with-face: 'complete' (every subject, every trial) or 'deap' (the release's: participants 1-22, the last trials of 3, 5, 11, 14 missing).")] = "complete",
) -> None:
    """Write a synthetic dataset in the dataset's real on-disk format."""
    from moodops.orchestrator.datacmd import synthesize

    t0 = time.perf_counter()
    folder = synthesize(name, out, subjects, seed, effect,
                        progress=lambda d, t: _err(f"\r\033[Kwriting subject {d}/{t}", nl=d == t),
                        trials=trials, seconds=seconds, with_face=with_face, with_raw=with_raw,
                        raw_time_scale=raw_time_scale, face_layout=face_layout)
    typer.echo(f"wrote synthetic {name} to {folder} in {time.perf_counter() - t0:.1f} s "
               f"(read it with --dataset {name} --root {folder})")


@data_app.command("check")
def data_check(
    name: Annotated[str, typer.Argument(help="Dataset name: deap, seed, seed-iv, seed-v or eegmmidb.")],
    root: Annotated[Path, typer.Option(help="The dataset on disk.")],
    subjects: Annotated[Optional[str], typer.Option(help="Subjects to check, e.g. 1-5.")] = None,
) -> None:
    """Validate every file of a dataset and print a summary table."""
    from moodops.orchestrator.datacmd import check

    report = check(name, root, subjects)
    typer.echo(_table(report.rows))
    summary = report.summary_lines()
    if summary:
        typer.echo("\n" + "\n".join(summary))
    typer.echo(f"{len(report.rows)} subject file(s) OK")


def _table(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    fmt = {c: (lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)) for c in cols}
    cells = [[fmt[c](r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


@app.command()
def compare(
    runs: Annotated[Optional[list[str]], typer.Argument(help="Parent run ids (two or more) of runs over the same subjects.")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI (default: ./mlflow.db).")] = None,
    metric: Annotated[str, typer.Option(help="Fold metric to compare (test_<metric> of each fold run): accuracy, macro_f1, or f1 (the positive class's F1; binary targets only).")] = "accuracy",
    experiment: Annotated[Optional[str], typer.Option(help="Compare the finished moodops runs of this experiment (with --filter to choose).")] = None,
    filter_: Annotated[Optional[str], typer.Option("--filter", help="MLflow search filter for --experiment, e.g. \"tags.`moodops.model` = 'linear'\".")] = None,
    pipeline: Annotated[Optional[str], typer.Option(help="Compare the run stages of this pipeline parent run (`moodops pipeline run`).")] = None,
) -> None:
    """Paired statistics across runs: per pair the mean difference, an exact sign-flip permutation test
    (<= 20 subjects) or Wilcoxon, d_z and Holm-corrected p; with runs of several datasets, Stouffer's
    meta-analysis; logged as a comparison run with figures."""
    import numpy as np

    from moodops.orchestrator.compare import run_compare, select_runs

    ids = select_runs(runs or [], experiment, filter_, pipeline, tracking_uri)
    rows, run_id, loaded, meta = run_compare(ids, tracking_uri, metric)
    for r in loaded:
        undefined = int(np.isnan(r.scores).sum())
        _err(f"· {r.run_id}  {r.name} ({r.tags.get('moodops.dataset')}): {len(r.subjects)} subjects, {metric} "
             f"{np.nanmean(r.scores) if undefined < len(r.scores) else float('nan'):.3f} ± "
             f"{np.nanstd(r.scores) if undefined < len(r.scores) else float('nan'):.3f} (std over subjects, as "
             "the run's summary" + (f"; undefined for {undefined} subject(s), left out of the pairs" if undefined
                                   else "") + ")")
    several = len({r["dataset"] for r in rows}) > 1
    typer.echo(_table([{**({"dataset": r["dataset"]} if several else {}), "A": r["a"], "B": r["b"],
                        "n": r["n_subjects"], "A-B": f"{r['mean_diff']:+.3f}", "test": r["test"],
                        "p": f"{r['p']:.4g}", "p_holm": f"{r['p_holm']:.4g}", "d_z": f"{r['smd']:.2f}"}
                       for r in rows]))
    if meta:
        typer.echo("meta-analysis over datasets (Stouffer, weights sqrt(n); pooled d_z):")
        typer.echo(_table([{"A": m["a"], "B": m["b"], "datasets": m["n_datasets"], "subjects": m["n_subjects"],
                            "d_z": f"{m['smd']:.2f}", "z": f"{m['z']:+.2f}", "p": f"{m['p']:.4g}",
                            "p_holm": f"{m['p_holm']:.4g}"} for m in meta]))
    typer.echo(f"comparison run {run_id} (comparison.csv, comparison.md, paired_subjects.png, effect_sizes.png"
               + (", meta_analysis.csv" if meta else "") + ")")


class ExportFormat(str, Enum):
    moabb = "moabb"
    csv = "csv"


@app.command()
def export(
    runs: Annotated[list[str], typer.Argument(help="Parent run ids of subject-level runs (loso, per-subject, "
                                                   "cross-session).")],
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
    format: Annotated[ExportFormat, typer.Option(help="moabb: MOABB's results columns, one row per subject and "
                                                      "session; csv: one row per fold with every test metric.")]
    = ExportFormat.moabb,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI (default: ./mlflow.db).")] = None,
    metric: Annotated[str, typer.Option(help="Fold metric in MOABB's score column (test_<metric>): accuracy, macro_f1, or f1 (the positive class's F1; binary targets only).")] = "accuracy",
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Per-subject results of runs as MOABB's results table (score, time, samples, subject, session, channels,
    n_sessions, dataset, pipeline) or as a per-fold CSV; written atomically."""
    from moodops.orchestrator.export import run_export

    path, n = run_export(runs, str(out), format.value, tracking_uri, metric, overwrite)
    typer.echo(f"{path}: {n} rows ({format.value}) from {len(runs)} run(s)")


@app.command("list")
def list_(kind: Annotated[Kind, typer.Argument(help="What to list.")]) -> None:
    """List registered datasets, models, protocols or features."""
    from moodops.orchestrator.datacmd import registry_rows

    for name, description in registry_rows(kind.value):
        first, *rest = description.splitlines()
        typer.echo(f"{name:<12} {first}")
        for line in rest:
            typer.echo(f"{'':<12} {line}")


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port for the MLflow UI.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = "127.0.0.1",
    tracking_uri: Annotated[Optional[str], typer.Option(help="Store to show (default: ./mlflow.db).")] = None,
) -> None:
    """Open the MLflow UI on the default local store (./mlflow.db, ./mlartifacts)."""
    from moodops.orchestrator.datacmd import mlflow_ui_command

    from moodops.orchestrator.datacmd import experiment_urls

    cmd = mlflow_ui_command(tracking_uri, host, port)
    _err(f"MLflow UI on http://{host}:{port}  (Ctrl-C to stop); runs tables:")
    for name, url in experiment_urls(tracking_uri, f"http://{host}:{port}"):
        _err(f"  {name:<22} {url}")
    os.execvp(cmd[0], cmd)


def main() -> None:
    # typer bundles its own click: its exceptions are these, not the `click` package's.
    from typer import Abort, Exit
    from typer._click.exceptions import ClickException

    from moodops.components.errors import Interrupted, MoodopsError
    from moodops.orchestrator import interrupts

    interrupts.install()
    try:
        # standalone_mode=False: typer raises usage errors (shown below) and *returns* the exit code of
        # typer.Exit and of Ctrl-C (130: it turns KeyboardInterrupt into Exit(130)).
        code = app(standalone_mode=False)
    except Exit as e:
        sys.exit(e.exit_code)
    except ClickException as e:  # usage errors: click's usage line, exit 2
        e.show()
        sys.exit(e.exit_code)
    except (Abort, KeyboardInterrupt):
        _err("moodops: interrupted")
        sys.exit(130)
    except Interrupted as e:  # a run stopped by Ctrl-C: what was saved, how to resume
        _err(f"moodops: {e}")
        sys.exit(130)
    except MoodopsError as e:
        if _state["debug"]:
            raise
        _err(f"moodops: error: {e}")
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if _state["debug"]:
            raise
        _err(f"moodops: error: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
             "  (run with --debug for the traceback)")
        sys.exit(1)
    if code == 130:
        _err("moodops: interrupted")
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()

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
        _err(f"  {fold.name:<14} test {subjects:<8} accuracy {result.metrics['accuracy']:.3f}  "
             f"macro-F1 {result.metrics['macro_f1']:.3f}  ({result.timing['total_s']:.1f} s, {result.device})")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@app.command()
def run(
    protocol: Annotated[Protocol, typer.Argument(help="loso: one fold per subject; split: one train/test split; per-subject: first trials of each session train, the rest test; cross-session: leave one session out per subject.")],
    dataset: Annotated[Optional[str], typer.Option(help="Dataset name (see `moodops list datasets`).")] = None,
    root: Annotated[Optional[Path], typer.Option(help="The dataset on disk.")] = None,
    synthetic: Annotated[Optional[bool], typer.Option("--synthetic", help="Use (and on first use generate) a full-size synthetic dataset in the real format.")] = None,
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
    cpus_per_fold: Annotated[Optional[float], typer.Option(help="CPUs per fold task (also its torch threads).")] = None,
    gpus_per_fold: Annotated[Optional[float], typer.Option(help="GPUs per fold task; fractions share a GPU.")] = None,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray).")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI (default: ./mlflow.db).")] = None,
    experiment: Annotated[Optional[str], typer.Option(help="MLflow experiment name.")] = None,
    output_json: Annotated[Optional[Path], typer.Option(help="Write per-fold metrics, mean/std and the parent run id here.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML file with any RunConfig keys.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Any RunConfig key as KEY=VALUE (repeatable).")] = None,
) -> None:
    """Run an evaluation protocol: features, one Ray task per fold, MLflow tracking."""
    from moodops.components.errors import ConfigError
    from moodops.orchestrator.config import resolve_config
    from moodops.orchestrator.run import run_experiment

    cli = dict(protocol=protocol.value, dataset=dataset, root=str(root) if root else None, synthetic=synthetic,
               label=label, model=model, variant=variant, epochs=epochs, seed=seed, subjects=subjects, ratio=ratio,
               split_level=split_level, train_trials=train_trials, test_session=test_session, feature=feature,
               cpus_per_fold=cpus_per_fold, gpus_per_fold=gpus_per_fold,
               address=address, tracking_uri=tracking_uri, experiment=experiment,
               output_json=str(output_json) if output_json else None)
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got '{item}'")
        key = key.strip().replace("-", "_")
        if cli.get(key) is None:
            cli[key] = value
    cfg = resolve_config(cli, config)
    summary = run_experiment(cfg, _CliReporter())
    agg = summary.aggregate
    typer.echo("")
    typer.echo(f"{cfg.protocol} · {cfg.dataset} · {summary.label} · {cfg.model} ({summary.variant}): "
               f"{int(agg['n_folds'])} fold(s) "
               f"in {_duration(summary.wall_s)}")
    typer.echo(f"accuracy {agg['test_accuracy_mean']:.3f} ± {agg['test_accuracy_std']:.3f}   "
               f"macro-F1 {agg['test_macro_f1_mean']:.3f} ± {agg['test_macro_f1_std']:.3f}   "
               f"(chance {summary.chance:.3f})")
    typer.echo(f"leakage audit: {summary.leakage:.1%} of test samples share a trial with training samples")
    typer.echo(f"MLflow parent run {summary.parent_run_id} (experiment {summary.experiment_id}) in {summary.tracking_uri}")
    if summary.tracking_uri.startswith("sqlite:"):
        typer.echo("view it: moodops ui   then open http://127.0.0.1:5000")
    if cfg.output_json:
        typer.echo(f"results written to {cfg.output_json}")


@data_app.command("synth")
def data_synth(
    name: Annotated[str, typer.Argument(help="Dataset layout to write: deap, seed, seed-iv or seed-v.")],
    out: Annotated[Path, typer.Option(help="Folder to write into.")],
    subjects: Annotated[Optional[int], typer.Option(help="Number of subjects (default: as the real release).")] = None,
    trials: Annotated[Optional[int], typer.Option(help="deap: trials per subject (40).")] = None,
    seconds: Annotated[Optional[float], typer.Option(help="Trial length in seconds (deap 60 + 3-s baseline; seed 240).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    effect: Annotated[float, typer.Option(help="Strength of the label-dependent signal.")] = 1.0,
    with_face: Annotated[bool, typer.Option("--with-face", help="deap: also write OpenFace CSVs and participant_ratings.csv.")] = False,
) -> None:
    """Write a synthetic dataset in the dataset's real on-disk format."""
    from moodops.orchestrator.datacmd import synthesize

    t0 = time.perf_counter()
    folder = synthesize(name, out, subjects, seed, effect,
                        progress=lambda d, t: _err(f"\r\033[Kwriting subject {d}/{t}", nl=d == t),
                        trials=trials, seconds=seconds, with_face=with_face)
    typer.echo(f"wrote synthetic {name} to {folder} in {time.perf_counter() - t0:.1f} s "
               f"(read it with --dataset {name} --root {folder})")


@data_app.command("check")
def data_check(
    name: Annotated[str, typer.Argument(help="Dataset name: deap, seed, seed-iv or seed-v.")],
    root: Annotated[Path, typer.Option(help="The dataset on disk.")],
    subjects: Annotated[Optional[str], typer.Option(help="Subjects to check, e.g. 1-5.")] = None,
) -> None:
    """Validate every file of a dataset and print a summary table."""
    from moodops.orchestrator.datacmd import check

    rows = check(name, root, subjects)
    typer.echo(_table(rows))
    typer.echo(f"{len(rows)} subject file(s) OK")


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

    cmd = mlflow_ui_command(tracking_uri, host, port)
    _err(f"MLflow UI on http://{host}:{port}  (Ctrl-C to stop)")
    os.execvp(cmd[0], cmd)


def main() -> None:
    import click

    from moodops.components.errors import MoodopsError

    try:
        app(standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _err("moodops: interrupted")
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


if __name__ == "__main__":
    main()

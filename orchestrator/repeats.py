"""`moodops run … --repeats K` / `--seeds 0,1,2`: one protocol under several seeds, as one parent run.

The layout in MLflow: a repeats parent (tag ``moodops.kind = repeats``), one child
per seed that is an ordinary moodops run (its folds beneath it), so every seed can
be opened, resumed and compared like any run. The seed changes what the seed
changes in a run: the validation draw, the initialisation and the shuffling (the
test parts of LOSO, per-subject and cross-session folds stay the same; an 8:2
split draws other trials).

Two spreads are reported, and each ± says which it is:

- over subjects: each subject's score averaged over the seeds (a subject's folds
  averaged first, as a run's summary does), then the population std over
  subjects — what the papers' "mean ± std over subjects" is;
- over seeds: each seed's mean over subjects, then the population std over seeds
  — how much the number moves when only the seed changes.

A single split has one test group: no spread over subjects, only over seeds.

The metrics are accuracy and macro-F1, and on a binary target the positive
class's F1 (``f1``). An undefined score (NaN: ``f1`` of a test part without a
positive sample, none predicted) is left out of every mean it would enter and
counted in ``test_<metric>_n_undefined``, as a run's own summary does.
"""
from __future__ import annotations

import csv
import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moodops.components.errors import ConfigError

#: Summarised when every fold of every seed has them (``f1``: binary targets only).
METRICS = ("accuracy", "macro_f1", "f1")


@dataclass
class RepeatSummary:
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    seeds: list[int]
    seed_runs: list[dict[str, Any]]  # seed, run id, mean and std over subjects, per metric
    per_subject: dict[str, dict[str, list[float]]]  # metric -> subject group -> score per seed
    aggregate: dict[str, float]
    wall_s: float
    variant: str = ""
    label: str = ""
    chance: float = 0.0
    runs: list[dict[str, Any]] = field(default_factory=list)  # each seed's RunSummary

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_seeds(repeats: int | None, seeds: str | None, first: int) -> list[int] | None:
    """``--repeats K`` (seeds first … first+K-1) or ``--seeds 0,1,2``; None when neither is given."""
    if repeats is not None and seeds is not None:
        raise ConfigError("--repeats and --seeds exclude each other: choose one")
    if repeats is not None:
        if repeats < 2:
            raise ConfigError(f"--repeats must be an int >= 2. Got {repeats} instead.")
        return [first + i for i in range(repeats)]
    if seeds is None:
        return None
    try:
        values = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds expects integers separated by commas, e.g. 0,1,2. Got '{seeds}' instead.") from None
    if len(values) < 2 or len(set(values)) != len(values):
        raise ConfigError(f"--seeds needs at least two different seeds. Got '{seeds}' instead.")
    return values


def _group_scores(folds: list[dict[str, Any]], metric: str) -> dict[str, float]:
    """Per test-subject group (a subject, or a split's whole test part): the mean over its folds."""
    groups: dict[str, list[float]] = {}
    for f in folds:
        groups.setdefault(",".join(map(str, f["test_subjects"])), []).append(f[metric])
    return {k: _nanmean(np.asarray(v, float)) for k, v in groups.items()}


def _nanmean(values: np.ndarray, axis: int | None = None):
    """``np.mean`` when every value is defined (bit for bit); else the mean of the defined ones (NaN if none)."""
    if not np.isnan(values).any():
        return values.mean(axis=axis) if axis is not None else float(values.mean())
    defined = ~np.isnan(values)
    count = defined.sum(axis=axis)
    mean = np.where(count > 0, np.nansum(values, axis=axis) / np.maximum(count, 1), np.nan)
    return mean if axis is not None else float(mean)


def _nanstd(values: np.ndarray) -> float:
    defined = values[~np.isnan(values)]
    return float(defined.std()) if len(defined) else float("nan")


def combine(per_seed_folds: list[list[dict[str, Any]]]) -> tuple[dict[str, float], dict[str, dict[str, list[float]]],
                                                                   list[dict[str, float]]]:
    """(aggregate, per-subject scores per seed, per-seed mean/std) of K seeds' fold results."""
    aggregate: dict[str, float] = {"n_seeds": float(len(per_seed_folds))}
    per_subject: dict[str, dict[str, list[float]]] = {}
    per_seed: list[dict[str, float]] = [{} for _ in per_seed_folds]
    from moodops.orchestrator.report import present_metrics

    for metric in present_metrics((f for folds in per_seed_folds for f in folds), METRICS):
        scores = [_group_scores(folds, metric) for folds in per_seed_folds]
        keys = sorted(scores[0], key=lambda k: [int(s) for s in k.split(",")])
        if any(sorted(s) != sorted(keys) for s in scores):
            raise ConfigError("the seeds' runs tested different subjects; they cannot be combined")
        matrix = np.array([[s[k] for k in keys] for s in scores])  # (seeds, subject groups)
        seed_means = _nanmean(matrix, axis=1)
        subject_means = _nanmean(matrix, axis=0)
        for i, row in enumerate(matrix):
            per_seed[i][f"test_{metric}_mean"] = _nanmean(row)
            per_seed[i][f"test_{metric}_std"] = _nanstd(row)
        aggregate[f"test_{metric}_mean"] = _nanmean(matrix)
        aggregate[f"test_{metric}_std_over_subjects"] = _nanstd(subject_means)
        aggregate[f"test_{metric}_std_over_seeds"] = _nanstd(seed_means)
        undefined = sum(1 for folds in per_seed_folds for f in folds if np.isnan(float(f[metric])))
        if undefined:
            aggregate[f"test_{metric}_n_undefined"] = float(undefined)
        per_subject[metric] = {k: matrix[:, j].tolist() for j, k in enumerate(keys)}
    aggregate["n_subject_groups"] = float(len(per_subject["accuracy"]))
    return aggregate, per_subject, per_seed


def spread_line(aggregate: dict[str, float], metric: str = "accuracy") -> str:
    """'0.903 ± 0.045 over 4 subjects (seed-averaged), ± 0.004 over 3 seeds' — each ± named."""
    groups, seeds = int(aggregate["n_subject_groups"]), int(aggregate["n_seeds"])
    over_subjects = (f" ± {aggregate[f'test_{metric}_std_over_subjects']:.3f} over {groups} subjects (seed-averaged)"
                     if groups > 1 else " (one split: no spread over subjects)")
    n = int(aggregate.get(f"test_{metric}_n_undefined", 0))
    return (f"{aggregate[f'test_{metric}_mean']:.3f}{over_subjects}, "
            f"± {aggregate[f'test_{metric}_std_over_seeds']:.3f} over {seeds} seeds"
            + (f" (undefined in {n} fold(s), left out)" if n else ""))


def _plot(per_subject: dict[str, list[float]], seeds: list[int], path: Path, title: str, chance: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(per_subject)
    matrix = np.array([per_subject[k] for k in keys])  # (subjects, seeds)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(keys) + 2), 3.6), layout="constrained")
    x = np.arange(len(keys))
    for j, seed in enumerate(seeds):
        ax.plot(x + (j - (len(seeds) - 1) / 2) * 0.08, matrix[:, j], "o", ms=4, alpha=0.8, label=f"seed {seed}")
    ax.plot(x, matrix.mean(axis=1), "_", color="k", ms=18, mew=2, label="mean over seeds")
    ax.axhline(chance, color="grey", ls="--", lw=1, label=f"chance {chance:.2f}")
    ax.set_xticks(x, keys if len(keys) <= 40 else [str(i + 1) for i in x], fontsize=8,
                  rotation=90 if len(keys) > 12 else 0)
    ax.set_xlabel("test subject")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=7, ncol=2)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_repeats(config, seeds: list[int], reporter=None) -> RepeatSummary:
    """Run ``config`` once per seed under one repeats parent run; returns the combined summary."""
    from moodops.orchestrator.run import Reporter, run_experiment, write_json_atomic
    from moodops.orchestrator.tracking import Tracker, git_commit

    reporter = reporter or Reporter()
    t0 = time.perf_counter()
    tracker = Tracker(config.tracking_uri, config.experiment)
    name = f"{config.protocol}-{config.dataset}-{config.model}.{config.variant} × {len(seeds)} seeds"
    tags = {"moodops.kind": "repeats", "moodops.protocol": config.protocol, "moodops.dataset": config.dataset,
            "moodops.model": config.model, "moodops.variant": config.variant, "moodops.label": config.label,
            "moodops.seeds": ",".join(map(str, seeds)), "moodops.git_commit": git_commit()}
    parent = tracker.start_parent(name, {**config.to_dict(), "seeds": seeds},
                                  {k: str(v) for k, v in tags.items() if v is not None})
    reporter.status(f"repeats: {len(seeds)} seeds ({', '.join(map(str, seeds))}) under MLflow parent run {parent}")
    summaries = []
    try:
        for i, seed in enumerate(seeds, start=1):
            reporter.status(f"seed {seed} ({i}/{len(seeds)})")
            summary = run_experiment(dataclasses.replace(config, seed=seed, output_json=None), reporter,
                                     tags={"mlflow.parentRunId": parent, "moodops.repeat_seed": str(seed)})
            # a seed resumed from an earlier invocation keeps its run: it belongs to this parent now
            tracker.client.set_tag(summary.parent_run_id, "mlflow.parentRunId", parent)
            summaries.append(summary)
            acc = summary.aggregate
            reporter.status(f"seed {seed}: accuracy {acc['test_accuracy_mean']:.3f} ± {acc['test_accuracy_std']:.3f} "
                            f"over subjects (run {summary.parent_run_id})")
        aggregate, per_subject, per_seed = combine([s.folds for s in summaries])
        seed_runs = [{"seed": seed, "run_id": s.parent_run_id, **m} for seed, s, m in zip(seeds, summaries, per_seed)]
        variant = summaries[0].variant
        tracker.set_parent_tags({"moodops.variant": variant, "moodops.label": summaries[0].label,
                                 "moodops.seed_runs": ",".join(s.parent_run_id for s in summaries)})
        tracker.log_parent_metrics(aggregate)
        title = f"{config.protocol} · {config.dataset} · {summaries[0].label} · {config.model} ({variant})"
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            with (out / "seeds.csv").open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(seed_runs[0]), lineterminator="\n")
                writer.writeheader()
                writer.writerows(seed_runs)
            with (out / "per_subject_over_seeds.csv").open("w", newline="") as f:
                writer = csv.writer(f, lineterminator="\n")
                writer.writerow(["test_subjects", *[f"accuracy_seed_{s}" for s in seeds], "accuracy_mean"])
                for k, values in per_subject["accuracy"].items():
                    writer.writerow([k, *[f"{v:.4f}" for v in values], f"{np.mean(values):.4f}"])
            _plot(per_subject["accuracy"], seeds, out / "per_subject_over_seeds.png",
                  f"{title}\n{len(seeds)} seeds", summaries[0].chance)
            tracker.log_parent_artifacts(out)
        tracker.set_parent_note(
            f"**{title}**, {len(seeds)} seeds: accuracy {spread_line(aggregate)}; macro-F1 "
            f"{spread_line(aggregate, 'macro_f1')}"
            + (f"; F1 (positive class) {spread_line(aggregate, 'f1')}" if "test_f1_mean" in aggregate else "")
            + " (population std in each)\n\n| seed | run | accuracy (mean ± std "
            "over subjects) |\n| ---: | --- | ---: |\n" + "".join(
                f"| {r['seed']} | {r['run_id']} | {r['test_accuracy_mean']:.3f} ± {r['test_accuracy_std']:.3f} |\n"
                for r in seed_runs))
        result = RepeatSummary(parent, tracker.experiment_id, tracker.uri, list(seeds), seed_runs, per_subject,
                               aggregate, time.perf_counter() - t0, variant, summaries[0].label, summaries[0].chance,
                               [s.to_dict() for s in summaries])
    except BaseException as e:  # a seed failed, or Ctrl-C: the parent ends FAILED (KILLED) with the error
        from moodops.components.errors import Interrupted

        killed = isinstance(e, (KeyboardInterrupt, Interrupted))
        try:
            tracker.client.set_tag(parent, "moodops.error", f"{type(e).__name__}: {e}"[:4000])
            tracker.end_parent("KILLED" if killed else "FAILED")
        except Exception:  # noqa: BLE001 - the store may be what failed; the original error is what matters
            pass
        raise
    tracker.end_parent("FINISHED")
    if config.output_json:
        write_json_atomic(Path(config.output_json), result.to_dict())
    return result

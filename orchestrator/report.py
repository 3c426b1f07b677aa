"""Summaries of a finished run: aggregate metrics, per-subject table, figures."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from moodops.components.types import FoldResult

#: The fold metrics a run summarises, each one that every fold has: ``accuracy`` and ``macro_f1`` always,
#: ``f1`` (the positive-class F1, :func:`moodops.components.metrics.positive_f1`) for binary targets only.
SUMMARY_METRICS = ("accuracy", "macro_f1", "f1")
#: Shown names of the metrics (summary lines, tables).
METRIC_LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1", "f1": "F1 (positive class)"}


def present_metrics(fold_metrics: Iterable[Mapping[str, Any]], names: Iterable[str] = SUMMARY_METRICS) -> list[str]:
    """The metrics of ``names`` that every fold's metrics hold (``f1`` only on a binary target; a run
    resumed from folds logged before ``f1`` existed has it in some folds only, and so not at all)."""
    folds = list(fold_metrics)
    return [name for name in names if folds and all(name in m for m in folds)]


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and population std of the defined (non-NaN) values; NaN, NaN when none is defined. With every
    value defined this is exactly ``np.mean``/``np.std`` (the same summation, to the last bit)."""
    defined = values[~np.isnan(values)]
    if not len(defined):
        return float("nan"), float("nan")
    return float(np.mean(defined)), float(np.std(defined))


def _group_mean(values: list[float]) -> float:
    values = np.asarray(values, dtype=float)
    defined = values[~np.isnan(values)]
    return float(np.mean(defined)) if len(defined) else float("nan")


def aggregate(results: list[FoldResult]) -> dict[str, float]:
    """Mean and (population) standard deviation of each test metric over subjects.

    Folds that test the same subject(s) (``per-subject`` and ``cross-session``
    give one per session) are averaged first, so every subject weighs the
    same; with one fold per subject this is the mean over folds. Folds are
    summed in name order, so a resumed run (folds finishing in another
    order) gives the same numbers to the last bit.

    ``test_f1_mean``/``test_f1_std`` are there only when every fold has ``f1``
    (a binary target). A fold's metric can be undefined (NaN: ``f1`` of a test
    part with no positive sample that the model never predicts positive either).
    The rule: a subject's score is the mean of its defined folds, the summary is
    over the subjects with a defined score, and ``test_<metric>_n_undefined``
    counts the undefined folds (present only when there are some); with none
    defined, mean and std are NaN.
    """
    groups: dict[tuple[int, ...], list[FoldResult]] = {}
    for r in sorted(results, key=lambda r: (tuple(r.test_subjects), r.fold)):
        groups.setdefault(tuple(r.test_subjects), []).append(r)
    out: dict[str, float] = {}
    for name in present_metrics(r.metrics for r in results):
        values = np.array([_group_mean([r.metrics[name] for r in g]) for g in groups.values()], dtype=float)
        out[f"test_{name}_mean"], out[f"test_{name}_std"] = _mean_std(values)
        undefined = sum(1 for r in results if np.isnan(float(r.metrics[name])))
        if undefined:
            out[f"test_{name}_n_undefined"] = float(undefined)
    out["n_folds"] = float(len(results))
    out["n_subject_groups"] = float(len(groups))
    return out


def undefined_note(aggregated: Mapping[str, float], name: str) -> str:
    """' (undefined in 2 fold(s), left out)' when some folds' ``name`` is NaN, else ''."""
    n = int(aggregated.get(f"test_{name}_n_undefined", 0))
    return f" (undefined in {n} fold(s), left out)" if n else ""


def summary_metrics_line(aggregated: Mapping[str, float], sep: str = ", ") -> str:
    """'accuracy 0.700 ± 0.050, macro-F1 … ± …[, F1 (positive class) … ± …]': every summarised metric."""
    return sep.join(f"{METRIC_LABELS[name]} {aggregated[f'test_{name}_mean']:.3f} ± "
                    f"{aggregated[f'test_{name}_std']:.3f}{undefined_note(aggregated, name)}"
                    for name in SUMMARY_METRICS if f"test_{name}_mean" in aggregated)


def _cell(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if not np.isnan(value) else "nan"


def summary_markdown(title: str, results: list[FoldResult], aggregated: dict[str, float], chance: float) -> str:
    """The run's summary as Markdown (the parent run's description in the MLflow UI): the aggregate line
    and one row per fold (an F1 column on a binary target)."""
    names = [n for n in SUMMARY_METRICS if f"test_{n}_mean" in aggregated]
    lines = [f"**{title}**: {len(results)} fold(s); {summary_metrics_line(aggregated)} (± is the population std "
             f"over {int(aggregated['n_subject_groups'])} test-subject group(s); chance {chance:.3f})", "",
             "| fold | test subjects | " + " | ".join(METRIC_LABELS[n] for n in names) + " | best epoch | seconds |",
             "| --- | --- | " + "---: | " * len(names) + "---: | ---: |"]
    for r in sorted(results, key=lambda r: r.fold):
        subjects = ",".join(map(str, r.test_subjects)) if len(r.test_subjects) <= 6 else f"{len(r.test_subjects)}"
        lines.append(f"| {r.fold} | {subjects} | " + " | ".join(_cell(float(r.metrics[n]), 3) for n in names)
                     + f" | {int(r.metrics.get('best_epoch', 0))} | {r.timing['total_s']:.1f} |")
    return "\n".join(lines) + "\n"


def write_fold_table(results: list[FoldResult], path: Path) -> None:
    """``per_subject.csv``: one row per fold; an ``f1`` column after ``macro_f1`` on a binary target
    (``nan`` where a fold's F1 is undefined)."""
    names = present_metrics(r.metrics for r in results)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["fold", "test_subjects", "n_test", *names, "best_epoch", "seconds", "node_id"])
        for r in sorted(results, key=lambda r: r.fold):
            writer.writerow([r.fold, " ".join(map(str, r.test_subjects)), int(r.metrics["n_test"]),
                             *[_cell(float(r.metrics[n]), 4) for n in names],
                             int(r.metrics.get("best_epoch", 0)), f"{r.timing['total_s']:.1f}", r.node_id])


def plot_fold_accuracy(results: list[FoldResult], chance: float, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = sorted(results, key=lambda r: r.fold)
    acc = [r.metrics["accuracy"] for r in results]
    labels = [",".join(map(str, r.test_subjects)) if len(r.test_subjects) <= 2 else r.fold for r in results]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.32 * len(results) + 2), 3.6), layout="constrained")
    ax.bar(range(len(acc)), acc, color="#4c72b0")
    ax.axhline(float(np.mean(acc)), color="#dd8452", lw=1.5, label=f"mean {np.mean(acc):.3f} ± {np.std(acc):.3f}")
    ax.axhline(chance, color="grey", ls="--", lw=1, label=f"chance {chance:.2f}")
    ax.set_xticks(range(len(acc)), labels, rotation=90 if len(acc) > 12 else 0, fontsize=8)
    ax.set_xlabel("test subject" if all(len(r.test_subjects) == 1 for r in results) else "fold")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_confusion(confusion: np.ndarray, class_names: tuple[str, ...], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros(confusion.shape, float), where=rows > 0)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.2 * n + 2.5, 1.1 * n + 2), layout="constrained")
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{share[i, j]:.2f}\n({confusion[i, j]})", ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(n), class_names, rotation=30, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.05)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)

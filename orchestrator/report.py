"""Summaries of a finished run: aggregate metrics, per-subject table, figures."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from moodops.components.types import FoldResult

SUMMARY_METRICS = ("accuracy", "macro_f1")


def aggregate(results: list[FoldResult]) -> dict[str, float]:
    """Mean and (population) standard deviation of each test metric over subjects.

    Folds that test the same subject(s) (``per-subject`` and ``cross-session``
    give one per session) are averaged first, so every subject weighs the
    same; with one fold per subject this is the mean over folds. Folds are
    summed in name order, so a resumed run (folds finishing in another
    order) gives the same numbers to the last bit.
    """
    groups: dict[tuple[int, ...], list[FoldResult]] = {}
    for r in sorted(results, key=lambda r: (tuple(r.test_subjects), r.fold)):
        groups.setdefault(tuple(r.test_subjects), []).append(r)
    out: dict[str, float] = {}
    for name in SUMMARY_METRICS:
        values = np.array([np.mean([r.metrics[name] for r in g]) for g in groups.values()], dtype=float)
        out[f"test_{name}_mean"] = float(np.mean(values))
        out[f"test_{name}_std"] = float(np.std(values))
    out["n_folds"] = float(len(results))
    out["n_subject_groups"] = float(len(groups))
    return out


def summary_markdown(title: str, results: list[FoldResult], aggregated: dict[str, float], chance: float) -> str:
    """The run's summary as Markdown (the parent run's description in the MLflow UI): the aggregate line
    and one row per fold."""
    lines = [f"**{title}**: {len(results)} fold(s); accuracy {aggregated['test_accuracy_mean']:.3f} ± "
             f"{aggregated['test_accuracy_std']:.3f}, macro-F1 {aggregated['test_macro_f1_mean']:.3f} ± "
             f"{aggregated['test_macro_f1_std']:.3f} (± is the population std over "
             f"{int(aggregated['n_subject_groups'])} test-subject group(s); chance {chance:.3f})", "",
             "| fold | test subjects | accuracy | macro-F1 | best epoch | seconds |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in sorted(results, key=lambda r: r.fold):
        subjects = ",".join(map(str, r.test_subjects)) if len(r.test_subjects) <= 6 else f"{len(r.test_subjects)}"
        lines.append(f"| {r.fold} | {subjects} | {r.metrics['accuracy']:.3f} | {r.metrics['macro_f1']:.3f} | "
                     f"{int(r.metrics.get('best_epoch', 0))} | {r.timing['total_s']:.1f} |")
    return "\n".join(lines) + "\n"


def write_fold_table(results: list[FoldResult], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["fold", "test_subjects", "n_test", "accuracy", "macro_f1", "best_epoch", "seconds", "node_id"])
        for r in sorted(results, key=lambda r: r.fold):
            writer.writerow([r.fold, " ".join(map(str, r.test_subjects)), int(r.metrics["n_test"]),
                             f"{r.metrics['accuracy']:.4f}", f"{r.metrics['macro_f1']:.4f}",
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

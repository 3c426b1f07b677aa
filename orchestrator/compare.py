"""`moodops compare`: paired statistics across runs over the same subjects, logged as a comparison run.

Each run is a moodops parent run; its FINISHED fold runs give one score per test
subject (a subject's folds, e.g. its sessions, are averaged). Runs are compared
only when they share dataset, protocol, label and subjects; every pair gets the
mean difference, a paired test (:mod:`moodops.components.stats`), the
standardised mean difference and a Holm-corrected p-value across pairs.
"""
from __future__ import annotations

import csv
import io
import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moodops.components.errors import ConfigError

ALIGN = ("moodops.dataset", "moodops.protocol", "moodops.label")


@dataclass
class RunScores:
    run_id: str
    name: str  # model/variant, or the run name
    tags: dict[str, str]
    subjects: list[int]
    scores: np.ndarray  # per subject, the order of ``subjects``


def load_scores(client, run_id: str, metric: str = "accuracy") -> RunScores:
    """Per-subject scores of a parent run from its FINISHED fold runs (single-subject test parts only)."""
    try:
        run = client.get_run(run_id)
    except Exception as e:  # noqa: BLE001 - MLflow raises its own error types per store
        raise ConfigError(f"run {run_id}: not in this tracking store ({type(e).__name__})") from None
    tags = run.data.tags
    if "moodops.protocol" not in tags:
        raise ConfigError(f"run {run_id}: not a moodops parent run (no moodops.protocol tag)")
    folds = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'",
                               max_results=10000)
    per_subject: dict[int, list[float]] = {}
    key = f"test_{metric}"
    for fold in folds:
        if fold.info.status != "FINISHED" or key not in fold.data.metrics:
            continue
        subjects = [s for s in fold.data.tags.get("moodops.test_subjects", "").split(",") if s]
        if len(subjects) != 1:
            raise ConfigError(f"run {run_id} ({tags['moodops.protocol']}): fold {fold.data.tags.get('moodops.fold')} "
                              f"tests {len(subjects)} subjects at once; a paired comparison needs one score per "
                              "subject (loso, per-subject or cross-session runs)")
        per_subject.setdefault(int(subjects[0]), []).append(fold.data.metrics[key])
    if not per_subject:
        raise ConfigError(f"run {run_id}: no finished fold with metric test_{metric}")
    subjects = sorted(per_subject)
    name = "/".join(v for v in (tags.get("moodops.model"), tags.get("moodops.variant")) if v) or run.info.run_name
    return RunScores(run_id, name, dict(tags), subjects, np.array([np.mean(per_subject[s]) for s in subjects]))


def align(runs: list[RunScores]) -> None:
    """Refuse runs that do not score the same thing on the same subjects (one line naming the mismatch)."""
    first = runs[0]
    for other in runs[1:]:
        for tag in ALIGN:
            if first.tags.get(tag) != other.tags.get(tag):
                raise ConfigError(f"runs {first.run_id} and {other.run_id} differ in {tag.split('.')[1]}: "
                                  f"{first.tags.get(tag)!r} vs {other.tags.get(tag)!r}")
        if first.subjects != other.subjects:
            only = sorted(set(first.subjects) ^ set(other.subjects))
            raise ConfigError(f"runs {first.run_id} and {other.run_id} score different subjects (only one of them "
                              f"has {', '.join(map(str, only))}); re-run with the same --subjects")


def compare(runs: list[RunScores]) -> list[dict]:
    """One row per pair (i < j): A, B, n, mean A, mean B, mean difference, test, p, Holm p, d_z."""
    from moodops.components.stats import holm, paired_test

    if len(runs) < 2:
        raise ConfigError("compare needs at least two runs")
    align(runs)
    rows = []
    for a, b in itertools.combinations(runs, 2):
        r = paired_test(a.scores, b.scores)
        rows.append({"a": a.name, "b": b.name, "run_a": a.run_id, "run_b": b.run_id, "n_subjects": r.n,
                     "mean_a": r.mean_a, "mean_b": r.mean_b, "mean_diff": r.mean_diff, "test": r.test,
                     "p": r.p, "smd": r.smd})
    for row, p in zip(rows, holm([r["p"] for r in rows])):
        row["p_holm"] = float(p)
    return rows


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_markdown(rows: list[dict], metric: str) -> str:
    lines = [f"| A | B | n | {metric} A | {metric} B | A - B | test | p | p (Holm) | d_z |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['a']} | {r['b']} | {r['n_subjects']} | {r['mean_a']:.3f} | {r['mean_b']:.3f} | "
                     f"{r['mean_diff']:+.3f} | {r['test']} | {r['p']:.4f} | {r['p_holm']:.4f} | {r['smd']:.2f} |")
    return "\n".join(lines) + "\n"


def plot_paired(runs: list[RunScores], path: Path, metric: str) -> None:
    """Per-subject scores, one dot per run, one line per subject (the pairing is visible)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(runs), 4))
    x = np.arange(len(runs))
    matrix = np.stack([r.scores for r in runs])  # (runs, subjects)
    for k in range(len(runs[0].subjects)):
        ax.plot(x, matrix[:, k], "-o", color="0.6", lw=0.8, ms=4)
    ax.plot(x, matrix.mean(axis=1), "s", color="C3", ms=9, label="mean over subjects")
    ax.set_xticks(x, [r.name for r in runs], rotation=20, ha="right")
    ax.set_ylabel(f"test {metric} per subject")
    ax.set_title(f"{len(runs[0].subjects)} subjects, paired")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_forest(rows: list[dict], path: Path) -> None:
    """Effect size (d_z) of every pair with an approximate 95 % interval, its Holm p-value above it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 1.2 + 0.5 * len(rows)))
    y = np.arange(len(rows))[::-1]
    smd = np.array([r["smd"] for r in rows])
    ax.axvline(0, color="0.5", lw=0.8)
    n = np.array([r["n_subjects"] for r in rows], float)
    half = 1.96 * np.sqrt(1 / n + np.nan_to_num(smd) ** 2 / (2 * n))  # normal approximation to d_z's SE
    ax.errorbar(np.nan_to_num(smd), y, xerr=half, fmt="D", color="C0", capsize=3)
    for yi, d, r in zip(y, np.nan_to_num(smd), rows):
        ax.annotate(f"p_Holm={r['p_holm']:.3g}", (d, yi), xytext=(0, 7), textcoords="offset points", fontsize=8,
                    ha="center")
    ax.set_yticks(y, [f"{r['a']} − {r['b']}" for r in rows])
    ax.set_xlabel("standardised mean difference d_z (A − B)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_compare(run_ids: list[str], tracking_uri: str | None, metric: str = "accuracy",
                experiment: str = "moodops-comparisons") -> tuple[list[dict], str, list[RunScores]]:
    """Load, align and compare ``run_ids``; log a comparison run (tags naming the runs, the table as csv/md and
    both figures). Returns the rows, the comparison run id and the loaded runs."""
    from mlflow import MlflowClient

    from moodops.orchestrator.tracking import DEFAULT_ARTIFACTS, default_tracking_uri, ensure_experiment

    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        raise ConfigError(f"{uri[len('sqlite:///'):]}: no tracking store here (pass --tracking-uri)")
    repeated = sorted({r for r in run_ids if run_ids.count(r) > 1})
    if repeated:
        raise ConfigError(f"run {repeated[0]} is named twice; compare different runs")
    client = MlflowClient(tracking_uri=uri)
    runs = [load_scores(client, run_id, metric) for run_id in run_ids]
    rows = compare(runs)
    # the default store keeps artifacts in ./mlartifacts, as the runs' own experiment does
    location = (Path.cwd() / DEFAULT_ARTIFACTS).resolve().as_uri() if tracking_uri is None else None
    exp_id = ensure_experiment(client, experiment, location)
    tags = {"moodops.kind": "comparison", "moodops.compared_runs": ",".join(run_ids), "moodops.metric": metric,
            **{t: runs[0].tags.get(t, "") for t in ALIGN}}
    run_id = client.create_run(exp_id, run_name="compare " + " vs ".join(r.name for r in runs), tags=tags).info.run_id
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "comparison.csv").write_text(to_csv(rows))
            (folder / "comparison.md").write_text(to_markdown(rows, metric))
            plot_paired(runs, folder / "paired_subjects.png", metric)
            plot_forest(rows, folder / "effect_sizes.png")
            for path in sorted(folder.iterdir()):
                client.log_artifact(run_id, str(path))
    except BaseException as e:
        client.set_tag(run_id, "moodops.error", f"{type(e).__name__}: {e}"[:4000])
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return rows, run_id, runs

"""`moodops compare`: paired statistics across runs over the same subjects, logged as a comparison run.

Each run is a moodops parent run; its FINISHED fold runs give one score per test
subject (a subject's folds, e.g. its sessions, are averaged). Runs are compared
only when they share dataset, protocol, label and subjects; every pair gets the
mean difference, a paired test (:mod:`moodops.components.stats`), the
standardised mean difference and a Holm-corrected p-value across pairs.

``--metric`` names the fold metric ``test_<metric>``: ``accuracy``, ``macro_f1``,
or ``f1`` (the positive class's F1), which only binary targets have; asking a
multi-class run for ``f1`` is a one-line error. A subject whose score is
undefined (NaN: its folds' ``f1`` with no positive sample, none predicted) is
left out of the pairs it is in, and each row's ``n`` says how many were paired.
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


def fold_runs(client, run) -> list:
    """The fold runs of a moodops parent run; of a repeats parent (``--repeats``), every seed's folds."""
    def children(parent_id: str) -> list:
        return client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'",
                                  max_results=10000)

    if run.data.tags.get("moodops.kind") != "repeats":
        return children(run.info.run_id)
    return [fold for seed_run in children(run.info.run_id) for fold in children(seed_run.info.run_id)]


#: Fold metrics only binary targets have (:func:`moodops.components.metrics.classification_metrics`).
BINARY_ONLY = ("f1",)


def missing_metric_error(run_id: str, tags: dict[str, str], metric: str, folds: list) -> ConfigError:
    """The one-line error for a parent run none of whose finished folds has ``test_<metric>``; for ``f1`` on a
    run whose folds have the other metrics, it says the target is not binary."""
    finished = [f for f in folds if f.info.status == "FINISHED"]
    if metric in BINARY_ONLY and any("test_accuracy" in f.data.metrics for f in finished):
        return ConfigError(f"run {run_id}: its folds have no test_{metric}: {metric} (the positive class's F1) "
                           f"exists only for binary targets, and label '{tags.get('moodops.label', '?')}' of "
                           f"{tags.get('moodops.dataset', '?')} is not binary (use --metric macro_f1)")
    return ConfigError(f"run {run_id}: no finished fold with metric test_{metric}")


def _subject_score(values: list[float]) -> float:
    """Mean of a subject's folds, over those whose score is defined (NaN when none is)."""
    values = np.asarray(values, float)
    defined = values[~np.isnan(values)]
    return float(np.mean(defined)) if len(defined) else float("nan")


def load_scores(client, run_id: str, metric: str = "accuracy") -> RunScores:
    """Per-subject scores of a parent run from its FINISHED fold runs (single-subject test parts only). A
    repeats parent gives the seed-averaged scores: a subject's folds of every seed, averaged (each seed
    holds the same folds, so this is the mean over seeds of the per-seed scores)."""
    try:
        run = client.get_run(run_id)
    except Exception as e:  # noqa: BLE001 - MLflow raises its own error types per store
        raise ConfigError(f"run {run_id}: not in this tracking store ({type(e).__name__})") from None
    tags = run.data.tags
    if "moodops.protocol" not in tags:
        raise ConfigError(f"run {run_id}: not a moodops parent run (no moodops.protocol tag)")
    folds = fold_runs(client, run)
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
        raise missing_metric_error(run_id, tags, metric, folds)
    subjects = sorted(per_subject)
    name = "/".join(v for v in (tags.get("moodops.model"), tags.get("moodops.variant")) if v) or run.info.run_name
    return RunScores(run_id, name, dict(tags), subjects, np.array([_subject_score(per_subject[s]) for s in subjects]))


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


def dataset_groups(runs: list[RunScores]) -> dict[str, list[RunScores]]:
    """The runs by dataset, in the order given."""
    groups: dict[str, list[RunScores]] = {}
    for r in runs:
        groups.setdefault(r.tags.get("moodops.dataset", ""), []).append(r)
    return groups


def compare(runs: list[RunScores]) -> list[dict]:
    """One row per pair (i < j) within each dataset: dataset, A, B, n, mean A, mean B, mean difference, test,
    p, Holm p (across every pair), d_z. Runs from several datasets must name the same pipelines in each
    (one run per pipeline and dataset): their pairs are then meta-analysed by :func:`meta_rows`."""
    from moodops.components.stats import holm, paired_test

    if len(runs) < 2:
        raise ConfigError("compare needs at least two runs")
    groups = dataset_groups(runs)
    order = [r.name for r in next(iter(groups.values()))]
    if len(groups) > 1:
        first = next(iter(groups))
        for dataset, group in groups.items():
            names = [r.name for r in group]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ConfigError(f"dataset {dataset}: pipeline {twice[0]} is named by two runs; across datasets "
                                  "each pipeline is one run per dataset")
            if sorted(names) != sorted(order):
                raise ConfigError(f"runs from several datasets are compared pipeline by pipeline: {first} has "
                                  f"{', '.join(sorted(order))}, {dataset} has {', '.join(sorted(names))}")
            if len(group) < 2:
                raise ConfigError(f"dataset {dataset}: one run; each dataset needs the same two or more pipelines")
    rows = []
    for dataset, group in groups.items():
        align(group)
        group = sorted(group, key=lambda r: order.index(r.name)) if len(groups) > 1 else group
        for a, b in itertools.combinations(group, 2):
            defined = ~(np.isnan(a.scores) | np.isnan(b.scores))  # a subject undefined in either is left out
            if defined.sum() < 2:
                raise ConfigError(f"runs {a.run_id} and {b.run_id}: {int(defined.sum())} subject(s) with a defined "
                                  "score in both; a paired test needs at least 2")
            r = paired_test(a.scores[defined], b.scores[defined])
            rows.append({"dataset": dataset, "a": a.name, "b": b.name, "run_a": a.run_id, "run_b": b.run_id,
                         "n_subjects": r.n, "mean_a": r.mean_a, "mean_b": r.mean_b, "mean_diff": r.mean_diff,
                         "test": r.test, "p": r.p, "smd": r.smd})
    for row, p in zip(rows, holm([r["p"] for r in rows])):
        row["p_holm"] = float(p)
    return rows


def meta_rows(rows: list[dict]) -> list[dict]:
    """Per pair compared on two or more datasets: Stouffer's combination and the pooled d_z
    (:func:`moodops.components.stats.meta_analysis`), Holm-corrected across pairs."""
    from moodops.components.stats import PairedResult, holm, meta_analysis

    pairs: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        pairs.setdefault((r["a"], r["b"]), []).append(r)
    out = []
    for (a, b), group in pairs.items():
        if len(group) < 2:
            continue
        m = meta_analysis([PairedResult(r["n_subjects"], r["mean_a"], r["mean_b"], r["mean_diff"], r["p"], r["test"],
                                        r["smd"]) for r in group])
        out.append({"a": a, "b": b, "datasets": ",".join(r["dataset"] for r in group), "n_datasets": m.n_datasets,
                    "n_subjects": m.n_subjects, "smd": m.smd, "z": m.z, "p": m.p, "p_one_sided": m.p_one_sided})
    for row, p in zip(out, holm([r["p"] for r in out])):
        row["p_holm"] = float(p)
    return out


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_markdown(rows: list[dict], metric: str, meta: list[dict] | None = None) -> str:
    lines = [f"| dataset | A | B | n | {metric} A | {metric} B | A - B | test | p | p (Holm) | d_z |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['a']} | {r['b']} | {r['n_subjects']} | {r['mean_a']:.3f} | "
                     f"{r['mean_b']:.3f} | {r['mean_diff']:+.3f} | {r['test']} | {r['p']:.4f} | {r['p_holm']:.4f} | "
                     f"{r['smd']:.2f} |")
    if meta:
        lines += ["", "Meta-analysis across datasets (Stouffer's combination of the one-sided p for A > B, "
                  "weighted by sqrt(n subjects); pooled d_z weighted alike; p two-sided):", "",
                  "| A | B | datasets | subjects | pooled d_z | z | p | p (Holm) | p (A > B) |",
                  "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for m in meta:
            lines.append(f"| {m['a']} | {m['b']} | {m['datasets']} | {m['n_subjects']} | {m['smd']:.2f} | "
                         f"{m['z']:+.2f} | {m['p']:.4f} | {m['p_holm']:.4f} | {m['p_one_sided']:.4f} |")
    return "\n".join(lines) + "\n"


def plot_paired(runs: list[RunScores], path: Path, metric: str) -> None:
    """Per-subject scores, one dot per run, one line per subject (the pairing is visible); a panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = dataset_groups(runs)
    width = max(len(g) for g in groups.values())
    fig, axes = plt.subplots(1, len(groups), figsize=((1.6 + 1.4 * width) * len(groups), 4), squeeze=False,
                             sharey=True)
    for ax, (dataset, group) in zip(axes[0], groups.items()):
        x = np.arange(len(group))
        matrix = np.stack([r.scores for r in group])  # (runs, subjects)
        for k in range(len(group[0].subjects)):
            ax.plot(x, matrix[:, k], "-o", color="0.6", lw=0.8, ms=4)
        defined = ~np.isnan(matrix)
        means = np.where(defined.any(axis=1), np.nansum(matrix, axis=1) / np.maximum(defined.sum(axis=1), 1), np.nan)
        ax.plot(x, means, "s", color="C3", ms=9, label="mean over subjects")
        ax.set_xticks(x, [r.name for r in group], rotation=20, ha="right")
        ax.set_title(f"{dataset}: {len(group[0].subjects)} subjects, paired", fontsize=10)
        ax.legend(loc="best", fontsize=8)
    axes[0][0].set_ylabel(f"test {metric} per subject")
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
    several = len({r.get("dataset") for r in rows}) > 1
    ax.set_yticks(y, [f"{r['a']} − {r['b']}" + (f" ({r['dataset']})" if several else "") for r in rows])
    ax.set_xlabel("standardised mean difference d_z (A − B)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def store_client(tracking_uri: str | None):
    """An MlflowClient on an existing store (default ./mlflow.db); a missing SQLite file is a one-line error."""
    from mlflow import MlflowClient

    from moodops.orchestrator.tracking import default_tracking_uri

    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        raise ConfigError(f"{uri[len('sqlite:///'):]}: no tracking store here (pass --tracking-uri)")
    return MlflowClient(tracking_uri=uri)


def select_runs(run_ids: list[str], experiment: str | None, filter_string: str | None, pipeline: str | None,
                tracking_uri: str | None) -> list[str]:
    """The parent run ids to compare: those named, plus the FINISHED moodops runs of ``experiment`` that
    match ``filter_string`` (MLflow search syntax), plus the run stages of pipeline parent ``pipeline``."""
    if filter_string and not experiment:
        raise ConfigError("--filter needs --experiment NAME: the experiment to search")
    if not (experiment or pipeline):
        return list(run_ids)
    client = store_client(tracking_uri)
    uri = client.tracking_uri
    ids = list(run_ids)
    if experiment:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            raise ConfigError(f"--experiment {experiment}: no such experiment in {uri}")
        clauses = ["attributes.status = 'FINISHED'", "tags.`moodops.protocol` != ''"]
        try:
            found = client.search_runs([exp.experiment_id], " and ".join(clauses + ([filter_string] if filter_string
                                                                                     else [])), max_results=1000,
                                       order_by=["attributes.start_time ASC"])
        except Exception as e:  # noqa: BLE001 - MLflow's parse errors carry the reason
            raise ConfigError(f"--filter {filter_string!r}: {str(e).splitlines()[0]}") from None
        # moodops runs (fold runs carry no protocol tag); a repeats parent's seeds count through their parent
        ids += [r.info.run_id for r in found if "moodops.repeat_seed" not in r.data.tags]
    if pipeline:
        try:
            run = client.get_run(pipeline)
        except Exception as e:  # noqa: BLE001
            raise ConfigError(f"--pipeline {pipeline}: not in this tracking store ({type(e).__name__})") from None
        if run.data.tags.get("moodops.kind") != "pipeline":
            raise ConfigError(f"--pipeline {pipeline}: not a pipeline run (moodops pipeline run)")
        stages = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{pipeline}'",
                                    max_results=1000)
        ids += [r.data.tags.get("moodops.cached_from", r.info.run_id) for r in stages
                if "moodops.protocol" in r.data.tags or "moodops.cached_from" in r.data.tags]
        ids = [i for i in ids if "moodops.protocol" in client.get_run(i).data.tags]
    unique = list(dict.fromkeys(ids))
    if len(unique) < 2:
        raise ConfigError(f"found {len(unique)} run(s) to compare; compare needs at least two")
    return unique


def run_compare(run_ids: list[str], tracking_uri: str | None, metric: str = "accuracy",
                experiment: str = "moodops-comparisons") -> tuple[list[dict], str, list[RunScores], list[dict]]:
    """Load, align and compare ``run_ids``; log a comparison run (tags naming the runs, the table as csv/md and
    both figures; with several datasets the meta-analysis too). Returns the rows, the comparison run id, the
    loaded runs and the meta-analysis rows."""
    from moodops.orchestrator.tracking import DEFAULT_ARTIFACTS, ensure_experiment

    client = store_client(tracking_uri)
    repeated = sorted({r for r in run_ids if run_ids.count(r) > 1})
    if repeated:
        raise ConfigError(f"run {repeated[0]} is named twice; compare different runs")
    runs = [load_scores(client, run_id, metric) for run_id in run_ids]
    if len(dataset_groups(runs)) == 1:  # two runs of one pipeline (other settings, seeds): tell them apart
        names = [r.name for r in runs]
        for r in runs:
            if names.count(r.name) > 1:
                r.name = f"{r.name}#{r.run_id[:8]}"
    rows = compare(runs)
    meta = meta_rows(rows)
    # the default store keeps artifacts in ./mlartifacts, as the runs' own experiment does
    location = (Path.cwd() / DEFAULT_ARTIFACTS).resolve().as_uri() if tracking_uri is None else None
    exp_id = ensure_experiment(client, experiment, location)
    tags = {"moodops.kind": "comparison", "moodops.compared_runs": ",".join(run_ids), "moodops.metric": metric,
            **{t: ",".join(dict.fromkeys(r.tags.get(t, "") for r in runs)) for t in ALIGN}}
    run_id = client.create_run(exp_id, run_name="compare " + " vs ".join(r.name for r in runs), tags=tags).info.run_id
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "comparison.csv").write_text(to_csv(rows))
            table = to_markdown(rows, metric, meta)
            (folder / "comparison.md").write_text(table)
            if meta:
                (folder / "meta_analysis.csv").write_text(to_csv(meta))
            plot_paired(runs, folder / "paired_subjects.png", metric)
            plot_forest(rows + [{**m, "dataset": f"meta, {m['n_datasets']} datasets"} for m in meta],
                        folder / "effect_sizes.png")
            for path in sorted(folder.iterdir()):
                client.log_artifact(run_id, str(path))
    except BaseException as e:
        client.set_tag(run_id, "moodops.error", f"{type(e).__name__}: {e}"[:4000])
        client.set_terminated(run_id, "FAILED")
        raise
    # the run's description in the UI: the table, and links to the compared runs' pages
    links = "\n".join(f"- [{r.name}](#/experiments/{client.get_run(r.run_id).info.experiment_id}/runs/{r.run_id})"
                      for r in runs)
    client.set_tag(run_id, "mlflow.note.content", f"{table}\n\nCompared runs:\n\n{links}\n"[:60000])
    client.set_terminated(run_id, "FINISHED")
    return rows, run_id, runs, meta

"""`moodops export`: per-subject (and per-session) results of parent runs as MOABB's results table or a CSV.

MOABB's ``Results.to_dataframe()`` has the columns ``score, time, samples,
subject, session, channels, n_sessions, dataset, pipeline`` (moabb/analysis/
results.py: ``score``, ``time`` and ``samples`` from the evaluation,
``subject`` and ``session`` as strings, ``channels`` and ``n_sessions`` from the
dataset); its statistics start from ``collapse_session_scores``, the mean score
per (pipeline, dataset, subject). ``--format moabb`` writes exactly those
columns, one row per fold of a subject-level protocol:

- ``score``: the fold's ``test_<metric>`` (accuracy by default; ``f1``, the
  positive class's F1, for binary targets only: a multi-class run asked for it
  is a one-line error; a fold whose F1 is undefined writes ``nan``);
- ``time``: the fold's wall time in seconds (``time_total_s``: training and test);
- ``samples``: its training samples (``n_train``);
- ``subject``: the test subject; ``session``: the test session for
  ``per-subject`` and ``cross-session`` folds (read from the fold's name,
  ``subject-NN-session-S``), ``all`` for a LOSO fold, which tests every session
  of the subject at once;
- ``channels``, ``n_sessions``: from the parent run's tags (runs logged before
  they existed leave them empty);
- ``dataset``: moodops' dataset name, with ``-synthetic`` for generated data, so
  synthetic results never pool with real ones;
- ``pipeline``: ``model/variant`` (``#`` and the run id's first 8 characters
  added when two exported runs would share a name).

``--format csv`` writes one row per fold with moodops' own columns: the run, the
fold, its tags, every ``test_*`` metric, time and sizes. Split protocols (an 8:2
split tests many subjects in one fold) have no per-subject row; they are refused.
"""
from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from pathlib import Path

from moodops.components.errors import ConfigError

#: MOABB's results columns, in ``Results.to_dataframe()``'s order.
MOABB_COLUMNS = ("score", "time", "samples", "subject", "session", "channels", "n_sessions", "dataset", "pipeline")
FORMATS = ("moabb", "csv")
_SESSION = re.compile(r"-session-(\d+)")


def _parent(client, run_id: str):
    try:
        run = client.get_run(run_id)
    except Exception as e:  # noqa: BLE001 - MLflow raises its own error types per store
        raise ConfigError(f"run {run_id}: not in this tracking store ({type(e).__name__})") from None
    if "moodops.protocol" not in run.data.tags:
        raise ConfigError(f"run {run_id}: not a moodops parent run (no moodops.protocol tag)")
    return run


def _own_parent_tags(client, fold, parent, cache: dict) -> dict:
    """The tags of the run a fold belongs to: the parent itself, or (under a repeats parent) its seed run."""
    owner = fold.data.tags.get("mlflow.parentRunId", parent.info.run_id)
    if owner == parent.info.run_id:
        return parent.data.tags
    if owner not in cache:
        cache[owner] = client.get_run(owner).data.tags
    return cache[owner]


def fold_records(client, run_id: str, metric: str = "accuracy") -> list[dict]:
    """One record per FINISHED fold of parent run ``run_id``: its subject, session, score, time, size and tags."""
    run = _parent(client, run_id)
    tags, params = run.data.tags, run.data.params
    from moodops.orchestrator.compare import fold_runs, missing_metric_error

    folds = fold_runs(client, run)  # a repeats parent: every seed's folds (MOABB's collapse averages them)
    owners: dict = {}
    key = f"test_{metric}"
    synthetic = params.get("synthetic", "False") == "True"
    records = []
    for fold in folds:
        if fold.info.status != "FINISHED" or key not in fold.data.metrics:
            continue
        name = fold.data.tags.get("moodops.fold", fold.info.run_name)
        subjects = [s for s in fold.data.tags.get("moodops.test_subjects", "").split(",") if s]
        if len(subjects) != 1:
            raise ConfigError(f"run {run_id} ({tags['moodops.protocol']}): fold {name} tests {len(subjects)} "
                              "subjects at once; the export has one row per subject (loso, per-subject or "
                              "cross-session runs)")
        session = _SESSION.search(name)
        own = _own_parent_tags(client, fold, run, owners)
        m = fold.data.metrics
        records.append({
            "run_id": run_id, "fold": name, "subject": subjects[0], "session": session[1] if session else "all",
            "score": m[key], "time": m.get("time_total_s", float("nan")), "samples": m.get("n_train", float("nan")),
            "dataset": tags["moodops.dataset"] + ("-synthetic" if synthetic else ""),
            "model": tags.get("moodops.model", ""), "variant": tags.get("moodops.variant", ""),
            "protocol": tags["moodops.protocol"], "label": tags.get("moodops.label", ""),
            "seed": own.get("moodops.seed", ""), "channels": own.get("moodops.n_channels", ""),
            "n_sessions": own.get("moodops.n_sessions", ""),
            "metrics": {k[len("test_"):]: v for k, v in sorted(m.items()) if k.startswith("test_")},
        })
    if not records:
        raise missing_metric_error(run_id, tags, metric, folds)
    return sorted(records, key=lambda r: (int(r["subject"]), r["session"], str(r["seed"])))


def _pipeline_names(per_run: list[list[dict]]) -> list[str]:
    names = ["/".join(v for v in (recs[0]["model"], recs[0]["variant"]) if v) or recs[0]["run_id"] for recs in per_run]
    return [f"{n}#{recs[0]['run_id'][:8]}" if names.count(n) > 1 else n for n, recs in zip(names, per_run)]


def to_moabb(per_run: list[list[dict]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MOABB_COLUMNS)
    for pipeline, records in zip(_pipeline_names(per_run), per_run):
        for r in records:
            writer.writerow([repr(float(r["score"])), repr(float(r["time"])), int(r["samples"]), r["subject"],
                             r["session"], r["channels"], r["n_sessions"], r["dataset"], pipeline])
    return out.getvalue()


def to_fold_csv(per_run: list[list[dict]]) -> str:
    metrics = sorted({k for records in per_run for r in records for k in r["metrics"]})
    columns = ["run_id", "pipeline", "dataset", "protocol", "label", "model", "variant", "seed", "fold", "subject",
               "session", *metrics, "time_s", "n_train", "channels", "n_sessions"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for pipeline, records in zip(_pipeline_names(per_run), per_run):
        for r in records:
            writer.writerow({**{k: r[k] for k in ("run_id", "dataset", "protocol", "label", "model", "variant", "seed",
                                                  "fold", "subject", "session", "channels", "n_sessions")},
                             "pipeline": pipeline, **{k: repr(float(v)) for k, v in r["metrics"].items()},
                             "time_s": repr(float(r["time"])), "n_train": int(r["samples"])})
    return out.getvalue()


def run_export(run_ids: list[str], out: str, fmt: str = "moabb", tracking_uri: str | None = None,
               metric: str = "accuracy", overwrite: bool = False) -> tuple[Path, int]:
    """Write the export of ``run_ids`` to ``out`` atomically; returns (path, rows written)."""
    from moodops.orchestrator.compare import fold_runs, store_client

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: unknown; choose one of {', '.join(FORMATS)}")
    path = Path(out)
    if path.exists() and not overwrite:
        raise ConfigError(f"{path}: exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: folder {path.parent} does not exist")
    repeated = sorted({r for r in run_ids if run_ids.count(r) > 1})
    if repeated:
        raise ConfigError(f"run {repeated[0]} is named twice")
    client = store_client(tracking_uri)
    per_run = [fold_records(client, run_id, metric) for run_id in run_ids]
    text = to_moabb(per_run) if fmt == "moabb" else to_fold_csv(per_run)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path, sum(len(r) for r in per_run)

"""`moodops compare` on two real LOSO runs over the same synthetic subjects."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _ray_cluster import moodops_env
from moodops.components.datasets.deap.synthetic_deap import write_synthetic_deap
from moodops.components.errors import ConfigError
from moodops.orchestrator.compare import RunScores, align

MOODOPS = str(Path(sys.executable).parent / "moodops")


def moodops(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([MOODOPS, *args], cwd=cwd, env=moodops_env(), capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_compare_two_loso_runs_prints_the_paired_table_and_logs_a_comparison_run(tmp_path, use_shared_ray):
    from mlflow import MlflowClient

    root = tmp_path / "deap"
    write_synthetic_deap(root, n_subjects=4, n_trials=16, seconds=30, seed=2, effect=3.0)
    ids = []
    for model in ("linear", "svm"):
        out = tmp_path / f"{model}.json"
        proc = moodops("run", "loso", "--dataset", "deap", "--root", str(root), "--model", model,
                       "--output-json", str(out), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        ids.append(json.loads(out.read_text())["parent_run_id"])

    proc = moodops("compare", *ids, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    header, row, last = proc.stdout.strip().splitlines()
    assert header.split() == ["A", "B", "n", "A-B", "test", "p", "p_holm", "d_z"]
    assert row.split()[:3] == ["linear/default", "svm/default", "4"] and "permutation (exact)" in row
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    scores = []
    for run_id in ids:  # the table's difference is the mean of the per-subject fold accuracies
        folds = client.search_runs([client.get_run(run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
        scores.append(np.mean([f.data.metrics["test_accuracy"] for f in folds]))
    assert float(row.split()[3]) == pytest.approx(scores[0] - scores[1], abs=6e-4)
    p = float(row.split()[-3])
    assert p >= 2 / 16  # 4 subjects: no exact two-sided p is smaller
    comparison = last.split()[2]
    run = client.get_run(comparison)
    assert run.info.status == "FINISHED" and run.data.tags["moodops.compared_runs"] == ",".join(ids)
    assert {a.path for a in client.list_artifacts(comparison)} == {
        "comparison.csv", "comparison.md", "paired_subjects.png", "effect_sizes.png"}
    assert (tmp_path / "mlartifacts").is_dir()  # the default store's artifacts stay beside it

    again = moodops("compare", ids[0], ids[0], cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.strip().splitlines()[-1] == (
        f"moodops: error: run {ids[0]} is named twice; compare different runs")

    # `moodops ui` names both experiments' runs tables, in the UI's machine-learning view, and serves the store.
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ui = subprocess.Popen([MOODOPS, "ui", "--port", str(port)], cwd=tmp_path, env=moodops_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [ui.stderr.readline() for _ in range(3)]
        experiments = {e.name: e for e in client.search_experiments()}
        for name in ("moodops", "moodops-comparisons"):
            url = (f"http://127.0.0.1:{port}/#/experiments/{experiments[name].experiment_id}/runs"
                   "?workflowType=machine_learning")
            assert any(line.split() == [name, url] for line in lines), lines
            assert experiments[name].tags["mlflow.experimentKind"] == "custom_model_development"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name"
                                            "?experiment_name=moodops-comparisons", timeout=5) as response:
                    served = json.loads(response.read())
                break
            except OSError:
                assert time.monotonic() < deadline and ui.poll() is None, ui.stderr.read()
                time.sleep(0.5)
        assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in served["experiment"]["tags"]
    finally:
        ui.terminate()
        ui.wait(timeout=30)

    # The same runs exported as MOABB's results table: MOABB's first step (collapse_session_scores: the mean
    # score per pipeline, dataset and subject) gives back each run's per-subject scores.
    import pandas as pd

    from moodops.orchestrator.export import MOABB_COLUMNS

    proc = moodops("export", *ids, "--format", "moabb", "--out", "results.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "8 rows" in proc.stdout
    df = pd.read_csv(tmp_path / "results.csv", dtype={"subject": str, "session": str})
    assert tuple(df.columns) == MOABB_COLUMNS
    assert set(df["pipeline"]) == {"linear/default", "svm/default"} and set(df["session"]) == {"all"}
    assert set(df["dataset"]) == {"deap"} and set(df["channels"]) == {32} and set(df["n_sessions"]) == {1}
    assert (df["time"] > 0).all() and (df["samples"] > 0).all()
    collapsed = df.groupby(["pipeline", "dataset", "subject"], sort=False).mean(numeric_only=True).reset_index()
    for run_id, pipeline, mean in zip(ids, ("linear/default", "svm/default"), scores):
        assert collapsed[collapsed.pipeline == pipeline]["score"].mean() == pytest.approx(mean, abs=1e-12)
    before = (tmp_path / "results.csv").read_bytes()
    again = moodops("export", ids[0], "--out", "results.csv", cwd=tmp_path)  # nothing overwritten unasked
    assert again.returncode == 2 and "results.csv: exists; pass --overwrite" in again.stderr
    assert (tmp_path / "results.csv").read_bytes() == before
    proc = moodops("export", *ids, "--format", "csv", "--out", "folds.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    folds = pd.read_csv(tmp_path / "folds.csv")
    assert len(folds) == 8 and {"accuracy", "macro_f1", "fold", "run_id", "n_train"} <= set(folds.columns)
    assert sorted(folds["fold"].unique()) == [f"subject-{s:02d}" for s in range(1, 5)]


def _scores(run_id: str, subjects: list[int], label: str = "valence") -> RunScores:
    tags = {"moodops.dataset": "deap", "moodops.protocol": "loso", "moodops.label": label}
    return RunScores(run_id, run_id, tags, subjects, np.linspace(0.5, 0.9, len(subjects)))


def test_runs_that_do_not_align_are_one_line_errors_naming_the_mismatch():
    with pytest.raises(ConfigError, match="differ in label: 'valence' vs 'arousal'"):
        align([_scores("a", [1, 2, 3]), _scores("b", [1, 2, 3], label="arousal")])
    with pytest.raises(ConfigError, match=r"only one of them has 4"):
        align([_scores("a", [1, 2, 3]), _scores("b", [1, 2, 3, 4])])

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


def _scores(run_id: str, subjects: list[int], label: str = "valence") -> RunScores:
    tags = {"moodops.dataset": "deap", "moodops.protocol": "loso", "moodops.label": label}
    return RunScores(run_id, run_id, tags, subjects, np.linspace(0.5, 0.9, len(subjects)))


def test_runs_that_do_not_align_are_one_line_errors_naming_the_mismatch():
    with pytest.raises(ConfigError, match="differ in label: 'valence' vs 'arousal'"):
        align([_scores("a", [1, 2, 3]), _scores("b", [1, 2, 3], label="arousal")])
    with pytest.raises(ConfigError, match=r"only one of them has 4"):
        align([_scores("a", [1, 2, 3]), _scores("b", [1, 2, 3, 4])])

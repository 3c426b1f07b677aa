"""Repeated seeds: `--repeats K` / `--seeds`, and the two spreads each ± names."""
from __future__ import annotations

import json

import numpy as np
import pytest

from moodops.components.datasets.deap.synthetic_deap import write_synthetic_deap
from moodops.components.errors import ConfigError
from moodops.orchestrator.repeats import combine, parse_seeds, spread_line

from test_compare import moodops


def test_seeds_come_from_repeats_or_a_list_and_bad_values_are_one_line_errors():
    assert parse_seeds(3, None, first=0) == [0, 1, 2]
    assert parse_seeds(2, None, first=7) == [7, 8]
    assert parse_seeds(None, "0,5,9", first=0) == [0, 5, 9]
    assert parse_seeds(None, None, first=0) is None
    for repeats, seeds, message in [(1, None, "--repeats must be an int >= 2"), (2, "0,1", "exclude each other"),
                                    (None, "0,x", "integers separated by commas"), (None, "3", "at least two"),
                                    (None, "1,1", "at least two different")]:
        with pytest.raises(ConfigError, match=message) as info:
            parse_seeds(repeats, seeds, first=0)
        assert "\n" not in str(info.value)


def folds(scores: dict[int, list[float]]) -> list[dict]:
    """Fold results as a RunSummary lists them: subject -> its folds' accuracies (macro-F1 alike)."""
    return [{"test_subjects": [s], "accuracy": a, "macro_f1": a} for s, values in scores.items() for a in values]


def test_combine_averages_a_subjects_folds_then_seeds_and_names_both_spreads():
    seed_a = folds({1: [0.6, 0.8], 2: [0.9], 3: [0.5]})  # subject 1 has two folds (sessions): 0.7
    seed_b = folds({1: [0.9, 0.9], 2: [0.7], 3: [0.5]})
    aggregate, per_subject, per_seed = combine([seed_a, seed_b])
    assert per_subject["accuracy"] == {"1": pytest.approx([0.7, 0.9]), "2": pytest.approx([0.9, 0.7]),
                                       "3": pytest.approx([0.5, 0.5])}
    assert per_seed[0]["test_accuracy_mean"] == pytest.approx(0.7) and per_seed[1]["test_accuracy_mean"] == pytest.approx(
        (0.9 + 0.7 + 0.5) / 3)
    seed_means = np.array([0.7, 0.7])
    subject_means = np.array([0.8, 0.8, 0.5])
    assert aggregate["test_accuracy_mean"] == pytest.approx(subject_means.mean())
    assert aggregate["test_accuracy_std_over_seeds"] == pytest.approx(seed_means.std())  # 0: both seeds average 0.7
    assert aggregate["test_accuracy_std_over_subjects"] == pytest.approx(subject_means.std())
    assert aggregate["n_seeds"] == 2 and aggregate["n_subject_groups"] == 3
    line = spread_line(aggregate)
    assert line == (f"{subject_means.mean():.3f} ± {subject_means.std():.3f} over 3 subjects (seed-averaged), "
                    "± 0.000 over 2 seeds")


def test_one_split_has_a_spread_over_seeds_only_and_mismatched_subjects_are_refused():
    split = [{"test_subjects": [1, 2, 3], "accuracy": a, "macro_f1": a} for a in (0.6,)]
    aggregate, _, _ = combine([split, [dict(split[0], accuracy=0.8, macro_f1=0.8)]])
    assert aggregate["test_accuracy_std_over_seeds"] == pytest.approx(0.1)
    assert "(one split: no spread over subjects)" in spread_line(aggregate)
    with pytest.raises(ConfigError, match="different subjects"):
        combine([folds({1: [0.5]}), folds({2: [0.5]})])


@pytest.mark.slow
def test_repeats_give_a_spread_over_seeds_and_compare_uses_the_seed_averaged_scores(tmp_path, use_shared_ray):
    from mlflow import MlflowClient

    root = tmp_path / "deap"
    write_synthetic_deap(root, n_subjects=3, n_trials=12, seconds=20, seed=5, effect=1.5)
    out = tmp_path / "repeats.json"
    proc = moodops("run", "loso", "--dataset", "deap", "--root", str(root), "--model", "linear", "--epochs", "8",
                   "--seeds", "3,4", "--output-json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(out.read_text())
    agg = summary["aggregate"]
    assert summary["seeds"] == [3, 4] and agg["n_seeds"] == 2
    seed_means = [r["test_accuracy_mean"] for r in summary["seed_runs"]]
    assert agg["test_accuracy_std_over_seeds"] == pytest.approx(np.std(seed_means))
    per_subject = {k: np.mean(v) for k, v in summary["per_subject"]["accuracy"].items()}
    assert agg["test_accuracy_std_over_subjects"] == pytest.approx(np.std(list(per_subject.values())))
    lines = proc.stdout.splitlines()
    assert f"2 seeds × 3 fold(s)" in lines[1]
    assert lines[2].startswith(f"accuracy {agg['test_accuracy_mean']:.3f} ± "
                               f"{agg['test_accuracy_std_over_subjects']:.3f} over 3 subjects (seed-averaged), ± "
                               f"{agg['test_accuracy_std_over_seeds']:.3f} over 2 seeds")
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    parent = client.get_run(summary["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["moodops.kind"] == "repeats"
    seed_runs = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(r.data.tags["moodops.seed"] for r in seed_runs) == ["3", "4"]
    for seed_run in seed_runs:  # each seed is an ordinary run with its folds beneath it
        folds = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{seed_run.info.run_id}'")
        assert len(folds) == 3
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {
        "seeds.csv", "per_subject_over_seeds.csv", "per_subject_over_seeds.png"}

    # compare sets the seed-averaged per-subject scores beside another run's
    other = tmp_path / "svm.json"
    proc = moodops("run", "loso", "--dataset", "deap", "--root", str(root), "--model", "svm", "--output-json",
                   str(other), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    svm = json.loads(other.read_text())
    proc = moodops("compare", summary["parent_run_id"], svm["parent_run_id"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    svm_mean = np.mean([f["accuracy"] for f in svm["folds"]])
    row = proc.stdout.strip().splitlines()[1]
    assert float(row.split()[3]) == pytest.approx(np.mean(list(per_subject.values())) - svm_mean, abs=6e-4)

    # the export has one row per subject and seed; MOABB's collapse averages them to the same scores
    import pandas as pd

    proc = moodops("export", summary["parent_run_id"], "--out", "r.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(tmp_path / "r.csv", dtype={"subject": str})
    assert len(df) == 6 and set(df["channels"]) == {32}
    collapsed = df.groupby(["pipeline", "dataset", "subject"]).mean(numeric_only=True)["score"]
    assert collapsed.to_dict() == pytest.approx({("linear/default", "deap", k): v for k, v in per_subject.items()})

"""The paper-vs-run table of `moodops pipeline run`."""
from __future__ import annotations

import csv
import io

import pytest

from moodops.orchestrator.paper_report import SYNTHETIC_WARNING, paper_rows, to_csv, to_markdown, to_terminal
from moodops.orchestrator.pipeline import StageOutcome

PAPER = {"source": "Gao et al. 2024, Table 2", "metric": "accuracy",
         "stages": {"loso": {"mean": 90.16, "std": 5.44, "row": "MMV-SSTMA-Att"},
                    "split": {"mean": 84.36, "std": 5.23, "row": "window 8:2"},
                    "far": {"mean": 95.0, "std": None, "row": "Table 4, no spread"}},
         "rows": [{"method": "SVM", "mean": 70.5, "std": 9.0}]}


def outcome(name, mean=None, std=None, groups=1, kind="run"):
    metrics = {} if mean is None else {"test_accuracy_mean": mean, "test_accuracy_std": std,
                                       "n_subject_groups": float(groups)}
    return StageOutcome(name, kind, "k", False, "r", None, metrics)


def test_rows_set_each_stage_beside_the_paper_and_judge_the_spread():
    outcomes = [outcome("pretrain", kind="pretrain"), outcome("loso", 0.88, 0.04, groups=15),
                outcome("split", 0.90, 0.0, groups=1), outcome("far", 0.70, 0.05, groups=15),
                outcome("unreported", 0.5, 0.1, groups=15)]
    rows = {r["stage"]: r for r in paper_rows(PAPER, outcomes, {"loso": True})}
    assert list(rows) == ["loso", "split", "far"]  # stages without a paper value or a score are left out
    loso = rows["loso"]
    assert loso["run_mean"] == pytest.approx(88.0) and loso["run_std"] == pytest.approx(4.0)
    assert loso["difference"] == pytest.approx(88.0 - 90.16)
    assert loso["paper_inside_run_spread"] is True  # |−2.16| <= 4.0
    assert rows["far"]["paper_inside_run_spread"] is False  # |70 − 95| > 5
    split = rows["split"]  # one split: no spread over subjects, so "inside" cannot be judged
    assert split["run_std"] is None and split["paper_inside_run_spread"] is None
    assert split["run_spread"] == "one split: no spread"
    one_subject = outcome("split", 0.90, 0.0, groups=1)
    one_subject.metrics["n_folds"] = 3.0  # per-subject on a one-subject copy: three sessions, one subject
    row = paper_rows(PAPER, [one_subject], {})[0]
    assert row["run_std"] is None and row["run_spread"] == "3 folds of one test subject: no spread over subjects"


def test_reports_say_first_when_the_data_were_synthetic():
    outcomes = [outcome("loso", 0.88, 0.04, groups=15)]
    synthetic = paper_rows(PAPER, outcomes, {"loso": True})
    real = paper_rows(PAPER, outcomes, {"loso": False})
    assert to_markdown(synthetic, PAPER).splitlines()[0] == SYNTHETIC_WARNING
    assert to_terminal(synthetic, PAPER)[0] == SYNTHETIC_WARNING
    assert SYNTHETIC_WARNING not in to_markdown(real, PAPER) and SYNTHETIC_WARNING not in to_terminal(real, PAPER)
    md = to_markdown(real, PAPER)
    assert "| loso | MMV-SSTMA-Att | 90.16 ± 5.44 | 88.00 ± 4.00 | -2.16 | yes |" in md
    assert "SVM 70.50 ± 9.00" in md  # the paper's rows without a stage, for context
    (row,) = list(csv.DictReader(io.StringIO(to_csv(real))))
    assert row["stage"] == "loso" and float(row["paper_mean"]) == 90.16 and row["paper_inside_run_spread"] == "True"


def test_a_stage_with_the_papers_acc_and_f1_gets_a_row_per_metric():
    """Zheng et al. report ACC and F1 per row: a stage's entry can be a list, one value per metric."""
    paper = {"source": "Zheng et al. 2023, Table 1", "metric": "accuracy",
             "stages": {"loso-arousal": [{"metric": "accuracy", "mean": 68.47, "std": 8.45, "row": "Ours"},
                                         {"metric": "f1", "mean": 74.68, "std": 13.36, "row": "Ours"}],
                        "multi": [{"metric": "f1", "mean": 50.0, "std": 1.0, "row": "x"}]}}
    metrics = {"test_accuracy_mean": 0.70, "test_accuracy_std": 0.05, "test_f1_mean": 0.60, "test_f1_std": 0.20,
               "n_subject_groups": 18.0}
    outcomes = [StageOutcome("loso-arousal", "run", "k", False, "r", None, metrics),
                outcome("multi", 0.5, 0.1, groups=15)]  # no test_f1 (a multi-class run): no row
    rows = paper_rows(paper, outcomes, {})
    assert [(r["stage"], r["metric"]) for r in rows] == [("loso-arousal", "accuracy"), ("loso-arousal", "f1")]
    assert rows[1]["run_mean"] == pytest.approx(60.0) and rows[1]["difference"] == pytest.approx(60.0 - 74.68)
    assert rows[1]["paper_inside_run_spread"] is True  # |−14.68| <= 20
    md = to_markdown(rows, paper)
    assert "| loso-arousal | F1 | Ours | 74.68 ± 13.36 | 60.00 ± 20.00 | -14.68 | yes |" in md
    assert "accuracy and f1 in %" in md
    terminal = to_terminal(rows, paper)
    assert terminal[0].startswith("paper vs this run (accuracy and f1 %") and "metric" in terminal[1]
    assert [r["metric"] for r in csv.DictReader(io.StringIO(to_csv(rows)))] == ["accuracy", "f1"]


def test_a_single_metric_table_has_no_metric_column():
    rows = paper_rows(PAPER, [outcome("loso", 0.88, 0.04, groups=15)], {})
    assert "metric" not in to_terminal(rows, PAPER)[1] and "| metric |" not in to_markdown(rows, PAPER)

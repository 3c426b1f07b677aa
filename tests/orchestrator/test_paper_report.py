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

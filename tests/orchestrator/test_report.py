from __future__ import annotations

import numpy as np
import pytest

from moodops.components.types import FoldResult
from moodops.orchestrator.report import aggregate


def result(name: str, subjects: tuple[int, ...], accuracy: float) -> FoldResult:
    return FoldResult(name, subjects, {"accuracy": accuracy, "macro_f1": accuracy / 2}, np.zeros((2, 2)),
                      np.zeros(1), np.zeros(1), [], b"", {"total_s": 1.0})


def test_sessions_of_a_subject_are_averaged_before_subjects():
    results = [result("s1-1", (1,), 1.0), result("s1-2", (1,), 0.0), result("s1-3", (1,), 0.5),
               result("s2-1", (2,), 0.9)]
    agg = aggregate(results)
    assert agg["test_accuracy_mean"] == pytest.approx((0.5 + 0.9) / 2)
    assert agg["test_accuracy_std"] == pytest.approx(0.2)
    assert agg["test_macro_f1_mean"] == pytest.approx((0.25 + 0.45) / 2)
    assert (agg["n_folds"], agg["n_subject_groups"]) == (4.0, 2.0)


def test_one_fold_per_subject_is_the_plain_mean():
    agg = aggregate([result("a", (1,), 0.6), result("b", (2,), 0.8), result("c", (3,), 1.0)])
    assert agg["test_accuracy_mean"] == pytest.approx(0.8)
    assert agg["test_accuracy_std"] == pytest.approx(np.std([0.6, 0.8, 1.0]))


def test_the_order_folds_finish_in_does_not_change_a_bit():
    values = [0.8660714285714286, 0.1, 0.7, 0.30000000000000004, 0.9999999, 0.123456789]
    folds = [result(f"subject-{k:02d}", (k,), v) for k, v in enumerate(values)]
    orders = [folds, folds[::-1], folds[2:] + folds[:2], folds[1::2] + folds[::2]]
    assert len({float(np.mean([f.metrics["accuracy"] for f in o])) for o in orders}) > 1  # a plain mean differs
    assert len({aggregate(o)["test_accuracy_mean"] for o in orders}) == 1


def binary(name: str, subjects: tuple[int, ...], accuracy: float, f1: float) -> FoldResult:
    return FoldResult(name, subjects, {"accuracy": accuracy, "macro_f1": accuracy / 2, "f1": f1, "n_test": 10.0},
                      np.zeros((2, 2)), np.zeros(1), np.zeros(1), [], b"", {"total_s": 1.0})


def test_binary_runs_summarise_the_positive_f1_and_leave_undefined_folds_out():
    from moodops.orchestrator.report import summary_markdown, summary_metrics_line

    folds = [binary("a", (1,), 0.6, 0.7), binary("b", (2,), 0.8, float("nan")), binary("c", (3,), 1.0, 0.9)]
    agg = aggregate(folds)
    assert agg["test_f1_mean"] == pytest.approx(0.8) and agg["test_f1_std"] == pytest.approx(0.1)
    assert agg["test_f1_n_undefined"] == 1.0 and "test_accuracy_n_undefined" not in agg
    line = summary_metrics_line(agg)
    assert line == ("accuracy 0.800 ± 0.163, macro-F1 0.400 ± 0.082, "
                    "F1 (positive class) 0.800 ± 0.100 (undefined in 1 fold(s), left out)")
    md = summary_markdown("t", folds, agg, 0.5)
    assert "| fold | test subjects | accuracy | macro-F1 | F1 (positive class) | best epoch | seconds |" in md
    assert "| b | 2 | 0.800 | 0.400 | nan | 0 | 1.0 |" in md


def test_multi_class_runs_have_no_f1_anywhere(tmp_path):
    from moodops.orchestrator.report import summary_metrics_line, write_fold_table

    folds = [result("a", (1,), 0.6), result("b", (2,), 0.8)]
    for f in folds:
        f.metrics["n_test"] = 5.0
    agg = aggregate(folds)
    assert not any("f1_" in k and "macro" not in k for k in agg)
    assert "F1 (positive class)" not in summary_metrics_line(agg)
    write_fold_table(folds, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines()[0] == \
        "fold,test_subjects,n_test,accuracy,macro_f1,best_epoch,seconds,node_id"


def test_per_subject_table_gets_the_f1_column(tmp_path):
    from moodops.orchestrator.report import write_fold_table

    write_fold_table([binary("a", (1,), 0.6, 0.7), binary("b", (2,), 0.8, float("nan"))], tmp_path / "t.csv")
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[0] == "fold,test_subjects,n_test,accuracy,macro_f1,f1,best_epoch,seconds,node_id"
    assert lines[2].startswith("b,2,10,0.8000,0.4000,nan,")

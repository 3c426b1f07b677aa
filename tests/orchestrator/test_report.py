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

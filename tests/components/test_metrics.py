"""Classification metrics: accuracy, macro-F1 and, for binary targets, the positive class's F1."""
from __future__ import annotations

import math

import numpy as np
import pytest

from moodops.components.metrics import classification_metrics, macro_f1, positive_f1


def test_positive_f1_by_hand():
    y_true = np.array([1, 1, 1, 1, 0, 0])
    y_pred = np.array([1, 1, 1, 0, 1, 0])  # TP 3, FP 1, FN 1
    assert positive_f1(y_true, y_pred) == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert positive_f1(y_true, y_pred, positive=0) == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))


def test_positive_f1_can_exceed_accuracy_and_macro_f1_cannot():
    """Zheng et al. report arousal ACC 68.47 and F1 74.68: the positive-class F1 of a model that calls the
    majority "high" class often does that; binary macro-F1 never exceeds accuracy."""
    y_true = np.array([1] * 7 + [0] * 3)
    y_pred = np.array([1] * 7 + [1, 1, 0])  # every high right, two lows called high
    m = classification_metrics(y_true, y_pred, 2)
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["f1"] == pytest.approx(14 / 16) and m["f1"] > m["accuracy"]
    assert m["macro_f1"] <= m["accuracy"]
    rng = np.random.default_rng(0)
    for _ in range(200):  # the bound holds for any binary predictions
        t, p = rng.integers(0, 2, 30), rng.integers(0, 2, 30)
        assert macro_f1(t, p, 2) <= classification_metrics(t, p, 2)["accuracy"] + 1e-12


def test_positive_f1_is_nan_only_when_the_class_is_never_true_nor_predicted():
    assert math.isnan(positive_f1(np.zeros(5, int), np.zeros(5, int)))
    assert positive_f1(np.zeros(5, int), np.array([0, 0, 0, 0, 1])) == 0.0  # predicted, never true
    assert positive_f1(np.ones(5, int), np.zeros(5, int)) == 0.0  # true, never predicted


def test_f1_only_for_binary_targets():
    t, p = np.array([0, 1, 2, 1]), np.array([0, 1, 1, 1])
    assert set(classification_metrics(t, p, 3)) == {"accuracy", "macro_f1"}
    assert set(classification_metrics(t[t < 2], p[t < 2], 2)) == {"accuracy", "macro_f1", "f1"}

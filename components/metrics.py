"""Classification metrics on integer labels (numpy only)."""
from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts, shape (n_classes, n_classes): rows true class, columns predicted."""
    idx = np.asarray(y_true, np.int64) * n_classes + np.asarray(y_pred, np.int64)
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true = np.asarray(y_true)
    return float((y_true == np.asarray(y_pred)).mean()) if len(y_true) else float("nan")


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Mean F1 over the classes present in ``y_true`` or ``y_pred``."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1) + cm.sum(axis=0)
    present = support > 0
    f1 = np.divide(2 * tp, support, out=np.zeros_like(tp), where=present)
    return float(f1[present].mean()) if present.any() else float("nan")


def positive_f1(y_true: np.ndarray, y_pred: np.ndarray, positive: int = 1) -> float:
    """F1 of the class ``positive`` (index 1 by default): ``2·TP / (2·TP + FP + FN)``.

    NaN when the class is neither in ``y_true`` nor in ``y_pred`` (TP + FP + FN = 0): precision and
    recall are both 0/0 there, and no value (0 or 1) would be honest. Callers that average it over
    folds skip such folds and count them (:func:`moodops.orchestrator.report.aggregate`). A class that
    is never true but is predicted gets 0.0 (every prediction of it is a false positive), and one that
    is true but never predicted gets 0.0 too.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    tp = int(np.sum((y_true == positive) & (y_pred == positive)))
    fp = int(np.sum((y_true != positive) & (y_pred == positive)))
    fn = int(np.sum((y_true == positive) & (y_pred != positive)))
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else float("nan")


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """``accuracy`` and ``macro_f1`` always; ``f1`` too when the target is binary (``n_classes == 2``).

    ``f1`` is :func:`positive_f1` of class index 1, the "high" class of a binary target (DEAP's
    valence/arousal/... thresholded at 5: ``low`` = 0, ``high`` = 1). It is what binary DEAP papers
    report as "F1": DFCN (Zheng et al. 2023) prints arousal ACC 68.47 and F1 74.68, an F1 above the
    accuracy. The positive-class F1 of a majority "high" class can be that; binary macro-F1 cannot:
    with ``E`` errors, each class's F1 is ``2c/(2c + E)`` (``c`` its correct predictions), a concave
    function of ``c``, so the mean of the two is at most ``(c0 + c1)/(c0 + c1 + E)``, the accuracy.
    Multi-class targets (SEED's 3 classes, SEED-IV's 4) have no positive class: the key is absent
    there, not NaN.
    """
    metrics = {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred, n_classes)}
    if n_classes == 2:
        metrics["f1"] = positive_f1(y_true, y_pred, positive=1)
    return metrics

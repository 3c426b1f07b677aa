"""Core value types. All are plain and picklable: they cross the Ray boundary."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Recording:
    """One trial of one subject.

    data : ndarray, shape (n_channels, n_times), or None
        EEG in volts or microvolts as the dataset stores it; None for a
        recording read from a feature-only release (see ``features``).
    labels : dict
        Every target the dataset has for this trial (raw values, e.g. ratings).
    extra : dict
        Other modalities aligned to the same trial (peripheral, eye, face), each
        an ndarray whose first axis is time or window. ``eye`` and ``face`` are
        per-window features ``(n_windows, n_features)`` aligned to the EEG
        feature windows (NaN where a window is missing).
    features : ndarray, shape (n_windows, n_channels, n_features), or None
        Precomputed EEG features shipped with the dataset (e.g. SEED's DE).
    annotations : tuple of (onset_s, duration_s, description)
        Events marked in the recording (e.g. eegmmidb's T0/T1/T2), onsets in
        seconds from the first sample.
    """

    subject: int
    session: int
    trial: int
    data: np.ndarray | None
    sfreq: float
    ch_names: tuple[str, ...]
    labels: dict[str, float]
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    features: np.ndarray | None = None
    annotations: tuple = ()


@dataclass
class FeatureSet:
    """A feature tensor plus one metadata row per sample.

    x : ndarray, shape (n_samples, ...)
        The axes are named in ``axes`` (e.g. ``("window", "channel", "band")``).
    meta : pyarrow.Table
        Columns ``subject``, ``session``, ``trial``, ``window`` and one column per
        raw label the dataset has.
    y : ndarray of int64, shape (n_samples,) or None
        Class indices once a target has been chosen.
    extra : dict
        Other model inputs aligned row by row with ``x``, each
        ``(n_samples, ...)``: ``raw`` (the EEG samples of each window),
        ``eye`` and ``face`` (other modalities' features per window).
    """

    x: np.ndarray
    meta: Any  # pyarrow.Table; typed loosely so this module does not import pyarrow
    axes: tuple[str, ...]
    y: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, values in self.extra.items():
            if len(values) != len(self.x):
                raise ValueError(f"extra input '{name}' has {len(values)} samples but x has {len(self.x)}")
        if len(self.x) != self.meta.num_rows:
            raise ValueError(f"x has {len(self.x)} samples but meta has {self.meta.num_rows} rows")
        if self.x.ndim - 1 != len(self.axes):
            raise ValueError(f"x has shape {self.x.shape} but axes name {len(self.axes)} sample axes")

    @property
    def n_samples(self) -> int:
        return len(self.x)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample shape of ``x`` and of every extra input (the model contract)."""
        return {"x": tuple(self.x.shape[1:]), **{k: tuple(v.shape[1:]) for k, v in self.extra.items()}}

    def column(self, name: str) -> np.ndarray:
        return self.meta.column(name).to_numpy()

    def subset(self, rows) -> FeatureSet:
        """A new FeatureSet of ``rows`` only (copies): what the rest of the data cannot reach."""
        rows = np.asarray(rows, dtype=np.int64)
        return FeatureSet(self.x[rows], self.meta.take(rows), self.axes, None if self.y is None else self.y[rows],
                          self.class_names, dict(self.info), {k: v[rows] for k, v in self.extra.items()})


@dataclass
class Fold:
    """Row indices into a FeatureSet, built deterministically from a seed."""

    name: str
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    test_subjects: tuple[int, ...]
    seed: int = 0
    notes: tuple[str, ...] = ()  # what the protocol could not do for this fold (e.g. stratify its validation)

    def __post_init__(self) -> None:
        self.notes = tuple(self.notes)
        for part in ("train", "validation", "test"):
            setattr(self, part, np.asarray(getattr(self, part), dtype=np.int64))


@dataclass
class FoldResult:
    """What one fold hands back to the driver."""

    fold: str
    test_subjects: tuple[int, ...]
    metrics: dict[str, float]
    confusion: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    history: list[dict[str, float]]
    weights: bytes
    timing: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)
    node_id: str = ""
    device: str = "cpu"
    #: Electrode attention of the test part, for models that have it (Mood Reader §3.5): ``epochs``
    #: (k,), ``during`` (k, n_classes, C) at those epochs of training, ``test`` (n_classes, C) of the
    #: model kept; class means, NaN for a class the test part lacks.
    attention: dict[str, np.ndarray] = field(default_factory=dict)

"""DEAP (Koelstra et al. 2012), preprocessed Python release.

On disk: ``data_preprocessed_python/sXX.dat``, one Python-2 pickle per
subject holding a dict with

- ``data``: shape (40 trials, 40 channels, 8064 samples) at 128 Hz; the first
  3 s of every trial are the pre-trial baseline, the last 60 s the video;
- ``labels``: shape (40 trials, 4): valence, arousal, dominance, liking, each a
  self-assessment rating in [1, 9].

Channels 0–31 are EEG in the Geneva order (:data:`EEG_CHANNELS`); 32–39 are
peripheral (hEOG, vEOG, zEMG, tEMG, GSR, respiration, plethysmograph,
temperature). Files are read through the restricted unpickler.

Targets. ``valence``, ``arousal``, ``dominance`` and ``liking`` are binarised
at ``threshold`` (5): with ``comparison=">"`` (default) a rating of exactly 5
is *low*, with ``">="`` it is *high*; published DEAP code uses both.
``quadrant`` crosses valence and arousal into four classes LVLA, LVHA, HVLA,
HVHA with the same comparison.

Baseline. Every :class:`Recording` holds the 60-s stimulus part as ``data``
and the 3-s baseline as ``extra["baseline"]``; feature extraction may
subtract the baseline's mean features (``baseline_removal``, off by default).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from moodops.components.datasets.base import Dataset
from moodops.components.datasets.safe_pickle import load_pickle
from moodops.components.errors import ConfigError, DataError, invalid_choice
from moodops.components.types import Recording

SFREQ = 128.0
BASELINE_S = 3.0
N_CHANNELS = 40
EEG_CHANNELS = (
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1",
    "Oz", "Pz", "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz", "C4", "T8", "CP6", "CP2",
    "P4", "P8", "PO4", "O2",
)
PERIPHERAL_CHANNELS = ("hEOG", "vEOG", "zEMG", "tEMG", "GSR", "Respiration", "Plethysmograph", "Temperature")
LABEL_NAMES = ("valence", "arousal", "dominance", "liking")
TARGETS = (*LABEL_NAMES, "quadrant")
QUADRANTS = ("LVLA", "LVHA", "HVLA", "HVHA")
COMPARISONS = (">", ">=")
_FILE_RE = re.compile(r"^s(\d{2})\.dat$")


class Deap(Dataset):
    """DEAP's ``data_preprocessed_python`` release.

    Parameters
    ----------
    root : path
        The folder holding ``data_preprocessed_python/`` or that folder itself.
    subjects : list of int, optional
        Subject numbers (1–32); all present subjects by default.
    threshold : float
        Ratings are split into low/high at this value (5).
    comparison : {">", ">="}
        Whether a rating equal to ``threshold`` counts as high (``">="``).
    """

    name: ClassVar[str] = "deap"
    modalities: ClassVar[tuple[str, ...]] = ("eeg", "raw_eeg", "peripheral")
    label_names: ClassVar[tuple[str, ...]] = LABEL_NAMES
    targets: ClassVar[tuple[str, ...]] = TARGETS

    option_names: ClassVar[tuple[str, ...]] = ("threshold", "comparison")

    def __init__(self, root: str | Path, subjects=None, modalities=(), threshold: float = 5.0,
                 comparison: str = ">") -> None:
        super().__init__(root, subjects, modalities)
        if comparison not in COMPARISONS:
            raise ConfigError(invalid_choice("comparison", comparison, COMPARISONS))
        if not 1.0 <= float(threshold) <= 9.0:
            raise ConfigError(f"The 'threshold' parameter must be in [1, 9]. Got {threshold} instead.")
        self.threshold = float(threshold)
        self.comparison = comparison
        self._available: dict[int, Path] | None = None

    @property
    def data_dir(self) -> Path:
        nested = self.root / "data_preprocessed_python"
        return nested if nested.is_dir() else self.root

    def available_subjects(self) -> dict[int, Path]:
        if self._available is None:
            if not self.root.exists():
                raise DataError(f"{self.root}: DEAP root does not exist")
            if not self.root.is_dir():
                raise DataError(f"{self.root}: DEAP root is not a directory")
            found = {}
            for p in self.data_dir.iterdir():
                m = _FILE_RE.match(p.name)
                if m and p.is_file():
                    found[int(m.group(1))] = p
            if not found:
                raise DataError(
                    f"{self.data_dir}: no DEAP subject files (sXX.dat) found; expected "
                    "data_preprocessed_python/s01.dat … s32.dat"
                )
            self._available = dict(sorted(found.items()))
        return self._available

    def read_arrays(self, subject: int) -> tuple[np.ndarray, np.ndarray]:
        """Load and validate one subject file → (data float32, labels float64)."""
        path = self.available_subjects()[subject]
        obj = load_pickle(path)
        if not isinstance(obj, dict):
            raise DataError(f"{path}: expected a dict with 'data' and 'labels', got {type(obj).__name__}")
        for key in ("data", "labels"):
            if key not in obj:
                raise DataError(f"{path}: missing key '{key}' (keys: {sorted(map(str, obj))})")
            if not isinstance(obj[key], np.ndarray):
                raise DataError(f"{path}: '{key}' is a {type(obj[key]).__name__}, not an array")
        data, labels = obj["data"], obj["labels"]
        if data.dtype not in (np.float32, np.float64):
            raise DataError(f"{path}: 'data' has dtype {data.dtype}, expected float32 or float64")
        if labels.dtype.kind not in "fiu":
            raise DataError(f"{path}: 'labels' has dtype {labels.dtype}, expected numbers")
        min_samples = int(BASELINE_S * SFREQ) + int(SFREQ)
        if data.ndim != 3 or data.shape[1] != N_CHANNELS or data.shape[2] < min_samples or data.shape[0] == 0:
            raise DataError(
                f"{path}: 'data' has shape {data.shape}, expected (trials, {N_CHANNELS}, samples) "
                f"with at least {min_samples} samples (3-s baseline + 1 s)"
            )
        if labels.ndim != 2 or labels.shape != (data.shape[0], len(LABEL_NAMES)):
            raise DataError(
                f"{path}: 'labels' has shape {labels.shape}, expected ({data.shape[0]}, {len(LABEL_NAMES)})"
            )
        bad = ~np.isfinite(data)
        if bad.any():
            t, c, s = np.argwhere(bad)[0]
            raise DataError(
                f"{path}: 'data' holds {int(bad.sum())} non-finite value(s), first {data[t, c, s]} "
                f"at trial {t + 1}, channel {c}, sample {s}"
            )
        labels = labels.astype(np.float64, copy=False)
        out = ~np.isfinite(labels) | (labels < 1.0) | (labels > 9.0)
        if out.any():
            t, k = np.argwhere(out)[0]
            raise DataError(
                f"{path}: label '{LABEL_NAMES[k]}' of trial {t + 1} is {labels[t, k]}, outside [1, 9]"
            )
        return data.astype(np.float32, copy=False), labels

    def load_subject(self, subject: int) -> list[Recording]:
        data, labels = self.read_arrays(subject)
        n_base = int(BASELINE_S * SFREQ)
        return [
            Recording(
                subject=subject,
                session=1,
                trial=t + 1,
                data=data[t, :32, n_base:],
                sfreq=SFREQ,
                ch_names=EEG_CHANNELS,
                labels=dict(zip(LABEL_NAMES, map(float, labels[t]))),
                extra={"baseline": data[t, :32, :n_base], "peripheral": data[t, 32:, :]},
            )
            for t in range(data.shape[0])
        ]

    def is_high(self, ratings: np.ndarray) -> np.ndarray:
        return ratings > self.threshold if self.comparison == ">" else ratings >= self.threshold

    def make_targets(self, labels: dict[str, np.ndarray], target: str) -> tuple[np.ndarray, tuple[str, ...]]:
        self.check_target(target)
        if target == "quadrant":
            v = self.is_high(np.asarray(labels["valence"]))
            a = self.is_high(np.asarray(labels["arousal"]))
            return (2 * v + a).astype(np.int64), QUADRANTS
        return self.is_high(np.asarray(labels[target])).astype(np.int64), (f"low_{target}", f"high_{target}")

    def check(self) -> list[dict[str, Any]]:
        """Validate every selected subject file; one summary row each."""
        rows = []
        for s in self.subjects():
            data, labels = self.read_arrays(s)
            row: dict[str, Any] = {
                "subject": s,
                "file": self.available_subjects()[s].name,
                "trials": data.shape[0],
                "channels": data.shape[1],
                "seconds": round(data.shape[2] / SFREQ, 2),
                "dtype": str(data.dtype),
            }
            for k, name in enumerate(LABEL_NAMES):
                row[f"{name}_high"] = float(self.is_high(labels[:, k]).mean())
            rows.append(row)
        return rows

"""A small labelled multimodal dataset for model tests, built through the real feature code.

Every sample is one synthetic trial of N one-second windows of 8-channel EEG
at 64 Hz plus per-window eye (6) and face (5) features. Class 1 differs from
class 0 in every modality, so any single input can be learned:

- EEG: stronger 10-Hz alpha on channels 0–3 (shows in DE and PSD) and a
  shared broadband source on channels 4–7 (raises their correlation, which
  is what the ``dfc`` connectivity sees, and their spectral correlation,
  which ``spectral_dfc`` sees); ``psd`` (the DFCN's node features) is the
  Welch band power of the same windows;
- eye and face: a mean shift of the first features, with missing (NaN) values
  sprinkled in so imputation is exercised.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from moodops.components.types import FeatureSet, Fold

SFREQ = 64.0
N_CHANNELS = 8
N_EYE, N_FACE = 6, 5


def synthetic_trials(n_samples: int, n_windows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                             np.ndarray]:
    """→ raw (n, C, n_windows·64), eye (n, N, 6), face (n, N, 5), y (n,)."""
    rng = np.random.default_rng(seed)
    n_times = int(n_windows * SFREQ)
    t = np.arange(n_times) / SFREQ
    y = np.arange(n_samples) % 2
    rng.shuffle(y)
    raw = rng.standard_normal((n_samples, N_CHANNELS, n_times))
    phase = rng.uniform(0, 2 * np.pi, (n_samples, 4, 1))
    alpha = np.sin(2 * np.pi * 10 * t + phase)
    raw[:, :4] += (0.6 + 1.4 * y[:, None, None]) * alpha
    shared = rng.standard_normal((n_samples, 1, n_times))
    raw[:, 4:] += 1.5 * y[:, None, None] * shared
    eye = rng.standard_normal((n_samples, n_windows, N_EYE))
    eye[..., :3] += 1.2 * y[:, None, None]
    face = rng.standard_normal((n_samples, n_windows, N_FACE))
    face[..., :2] -= 1.2 * y[:, None, None]
    for values in (eye, face):
        values[rng.random(values.shape) < 0.03] = np.nan
    return raw.astype(np.float32), eye.astype(np.float32), face.astype(np.float32), y.astype(np.int64)


def build_samples(feature: str, n_windows: int, n_samples: int = 240, seed: int = 0) -> FeatureSet:
    """A labelled FeatureSet: x from ``feature`` (de/psd/dfc), extras raw/eye/face, one sample per trial."""
    from moodops.components.features import FeatureConfig

    raw, eye, face, y = synthetic_trials(n_samples, n_windows, seed)
    config = FeatureConfig(kind=feature, window_s=1.0, bands={"theta": (4, 8), "alpha": (8, 13),
                                                              "beta": (14, 30)})
    x = config.compute(raw, SFREQ)  # (n, N, C, F)
    raw_windows = np.stack([config.raw_windows(r, SFREQ) for r in raw])  # (n, N, C, 64)
    meta = pa.table({"subject": np.arange(n_samples, dtype=np.int32) % 4 + 1,
                     "session": np.ones(n_samples, np.int32), "trial": np.arange(n_samples, dtype=np.int32),
                     "window": np.zeros(n_samples, np.int32), "label": y.astype(np.float64)})
    return FeatureSet(x=x, meta=meta, axes=("window", "channel", "band"), y=y, class_names=("low", "high"),
                      extra={"raw": raw_windows, "eye": eye, "face": face,
                             "psd": config.compute(raw, SFREQ, kind="psd")})


def holdout(n_samples: int, seed: int = 0) -> Fold:
    order = np.random.default_rng(seed).permutation(n_samples)
    n_test, n_val = n_samples // 4, n_samples // 8
    return Fold("holdout", train=np.sort(order[n_test + n_val:]), validation=np.sort(order[n_test:n_test + n_val]),
                test=np.sort(order[:n_test]), test_subjects=(0,))

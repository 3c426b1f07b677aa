"""Synthetic SEED-V in the release's on-disk format.

Files: ``EEG_DE_features/{s}_123.npz`` and ``Eye_movement_features/{s}_123.npz``
for subjects 1…n, each an ``.npz`` whose members ``data`` and ``label`` hold a
pickled dict keyed 0–44 (15 clips × 3 sessions). By default the pickle is
stored as a 0-d bytes array, as the release does (``pickle.loads(npz['data'])``
reads it); ``container="object"`` stores a 0-d object array instead (what
``np.savez`` with ``allow_pickle`` writes for a dict). Labels follow SEED-V's
clip order per session (:data:`~moodops.components.datasets.seed.seed_v.SESSION_LABELS`,
3 clips per emotion) and are repeated per window; each clip gets
``windows_per_trial`` 4-s windows (uniform in the inclusive range).

Signal model (per subject):

1. EEG DE ``(W, 62, 5)``: a realistic profile falling from delta to gamma
   (about 8.0, 7.0, 6.4, 5.6, 4.6), per-subject channel×band offsets
   (σ 0.3), a per-clip offset (σ 0.15) and per-window noise (σ 0.35, slightly
   autocorrelated over windows).
2. Eye ``(W, 33)``: SEED-V's 33 features (:data:`SEED_V_EYE_FEATURES`):
   SEED-IV's 31 (:data:`~moodops.components.datasets.seed.synthetic_seed.SEED_IV_EYE_FEATURES`)
   with the blink duration mean and SD after the fixation durations, the
   order of the eye-feature table of the SEED-IV and SEED-V papers (Zheng et
   al. 2019, Liu et al. 2021; 12 pupil, 4 dispersion, 2 fixation, 2 blink, 4
   saccade, 9 event statistics). This reading of the order is not confirmed
   against the release's files. They come from the same generator as
   SEED-IV's (:func:`~moodops.components.datasets.seed.synthetic_seed.synthesize_eye_session`):
   log-scale states with subject levels, session offsets, drift within each
   session (fatigue), offsets per film clip shared by every subject, AR(1)
   window noise; event counts per window; log-normal (right-skewed) window
   statistics; multiplicative per-feature offsets per subject and session.
   Missing values: ``eye_nan_rate`` of the windows (default 3 %) are lost to
   the tracker (every feature NaN); windows without a saccade (about 2 %)
   have NaN saccade statistics; windows without a blink (about a quarter, at
   15–30 blinks a minute) have NaN blink durations. About 5 % of the values
   are NaN by default.
3. Emotion, with each modality only partly informative so that fusing them
   helps. EEG tells apart three groups, {disgust, fear}, {sad, neutral} and
   {happy}: frontal theta/beta up for the first, parieto-occipital alpha up
   for the second, temporal beta/gamma up for happy (β = 0.45·effect·subject
   gain, gain 0.6–1.4, channel weights jittered per subject). Eye tells apart
   {disgust, sad}, {fear, neutral} and {happy}, in log units × effect × the
   subject's eye gain (0.6–1.4, times 0.7–1.3 per state): blink rate +0.9,
   blink duration +0.4, fixation duration +0.15 for the first; pupil size
   +0.1, pupil variability +0.9 for the second; saccade rate +0.45, saccade
   amplitude +0.45, gaze dispersion +0.6 for happy. Each modality alone
   separates at most 3 of the 5 classes (so at most 0.6 accuracy); together
   they identify every class. At ``effect=1``, a logistic regression on
   single windows (per subject and session: the first 9 clips train, the
   last 6 test; mean imputation and z-scores fit on the training clips)
   scores about 0.49 on the eye features (0.46–0.51 over seeds), 0.49 on EEG
   and 0.70 on both (6 subjects, 24–56 windows per clip; chance 0.20).

The 310 columns are written ``channel-major`` (index = channel·5 + band) or
``band-major`` (``layout``). Every file is written to a temporary name and
renamed, so a crash leaves no partial file.
"""
from __future__ import annotations

import io
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from moodops.components.datasets.seed.seed_v import (
    CHANNELS,
    DE_LAYOUTS,
    EEG_DIR,
    EYE_DIR,
    N_BANDS,
    N_CHANNELS,
    SESSION_LABELS,
    TRIALS_PER_SESSION,
)
from moodops.components.datasets.seed.synthetic_seed import (
    EYE_LATENTS,
    EYE_NAN_RATE,
    SEED_IV_EYE_FEATURES,
    EyeSubject,
    eye_clip_offsets,
    eye_shift_table,
    synthesize_eye_session,
)
from moodops.components.errors import ConfigError, invalid_choice

CONTAINERS = ("bytes", "object")
_BAND_PROFILE = np.array([8.0, 7.0, 6.4, 5.6, 4.6], dtype=np.float32)
_CH = {c: i for i, c in enumerate(CHANNELS)}
_FRONTAL = [_CH[c] for c in ("FP1", "FPZ", "FP2", "AF3", "AF4", "F3", "F1", "FZ", "F2", "F4")]
_PARIETO_OCCIPITAL = [_CH[c] for c in ("P3", "P1", "PZ", "P2", "P4", "PO5", "PO3", "POZ", "PO4", "PO6",
                                       "O1", "OZ", "O2")]
_TEMPORAL = [_CH[c] for c in ("FT7", "FT8", "T7", "T8", "TP7", "TP8", "C5", "C6", "CP5", "CP6")]
# EEG group of each class (0 disgust, 1 fear, 2 sad, 3 neutral, 4 happy) and its pattern:
# (channels, band weights delta..gamma)
_EEG_GROUP = (0, 0, 1, 1, 2)
_EEG_PATTERNS = (
    (_FRONTAL, np.array([0.0, 1.0, 0.2, 0.8, 0.0], dtype=np.float32)),
    (_PARIETO_OCCIPITAL, np.array([0.0, 0.1, 1.0, 0.1, 0.0], dtype=np.float32)),
    (_TEMPORAL, np.array([0.0, 0.0, 0.1, 0.7, 1.0], dtype=np.float32)),
)
#: SEED-V's 33 eye-movement features, in file order: SEED-IV's 31 with the blink duration mean and SD
#: after the fixation durations (the order of the feature table of Liu et al. 2021 and Zheng et al. 2019).
SEED_V_EYE_FEATURES: tuple[str, ...] = (*SEED_IV_EYE_FEATURES[:18], "blink_duration_mean", "blink_duration_sd",
                                        *SEED_IV_EYE_FEATURES[18:])
# Eye group of each class and the latent shifts of each group, per unit of effect · gain.
_EYE_GROUP = (0, 1, 0, 1, 2)
_EYE_PATTERNS = eye_shift_table({
    0: {"fixation": 0.15, "blink_rate": 0.9, "blink_duration": 0.4},            # disgust, sad
    1: {"pupil": 0.1, "pupil_variability": 0.9},                                # fear, neutral
    2: {"saccade_rate": 0.45, "saccade_amplitude": 0.45, "dispersion": 0.6},    # happy
})


def synthesize_subject_seed_v(
    subject: int, windows_per_trial: tuple[int, int] = (30, 60), seed: int = 0, effect: float = 1.0,
    eye_nan_rate: float = EYE_NAN_RATE,
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], dict[int, np.ndarray]]:
    """One subject → (DE ``{k: (W, 62, 5)}``, eye ``{k: (W, 33)}``, labels ``{k: (W,)}``), k = 0…44."""
    lo, hi = windows_per_trial
    rng = np.random.default_rng([seed, subject])
    gain = rng.uniform(0.6, 1.4)
    beta = 0.45 * effect * gain
    offsets = rng.normal(0.0, 0.3, (N_CHANNELS, N_BANDS)).astype(np.float32)
    eeg_patterns = []
    for channels, bands in _EEG_PATTERNS:
        pattern = np.zeros((N_CHANNELS, N_BANDS), dtype=np.float32)
        pattern[channels] = bands * rng.uniform(0.7, 1.3, (len(channels), 1)).astype(np.float32)
        eeg_patterns.append(pattern)
    de, labels = {}, {}
    for k in range(len(SESSION_LABELS) * TRIALS_PER_SESSION):
        label = SESSION_LABELS[k // TRIALS_PER_SESSION][k % TRIALS_PER_SESSION]
        n = int(rng.integers(lo, hi + 1))
        noise = rng.normal(0.0, 0.35, (n, N_CHANNELS, N_BANDS)).astype(np.float32)
        noise[1:] = 0.8 * noise[1:] + 0.6 * noise[:-1]  # neighbouring windows share some noise
        trial_offset = rng.normal(0.0, 0.15, (N_CHANNELS, N_BANDS)).astype(np.float32)
        de[k] = (_BAND_PROFILE + offsets + trial_offset + beta * eeg_patterns[_EEG_GROUP[label]] + noise)
        labels[k] = np.full(n, label, dtype=np.float64)
    eye_rng = np.random.default_rng([seed, subject, 2])
    eye_params = EyeSubject.draw(eye_rng, len(SEED_V_EYE_FEATURES))
    eye_gain = effect * eye_rng.uniform(0.6, 1.4) * eye_rng.uniform(0.7, 1.3, len(EYE_LATENTS))
    clips = eye_clip_offsets(np.random.default_rng([seed, 0, 2]), len(de))
    eye = {}
    for session in range(len(SESSION_LABELS)):
        keys = list(range(session * TRIALS_PER_SESSION, (session + 1) * TRIALS_PER_SESSION))
        shifts = [_EYE_PATTERNS[_EYE_GROUP[int(labels[k][0])]] * eye_gain for k in keys]
        trials = synthesize_eye_session(eye_rng, eye_params, [len(de[k]) for k in keys], shifts, clips[keys],
                                        eye_nan_rate, SEED_V_EYE_FEATURES)
        eye.update({k: x.astype(np.float32) for k, x in zip(keys, trials)})
    return de, eye, labels


def _flatten(de: np.ndarray, layout: str) -> np.ndarray:
    """(W, 62, 5) → (W, 310) in ``layout``."""
    if layout == "channel-major":
        return de.reshape(len(de), -1).astype(np.float64)
    return de.transpose(0, 2, 1).reshape(len(de), -1).astype(np.float64)


def write_pickle_npz(path: Path, members: dict[str, object], container: str = "bytes") -> None:
    """Write an ``.npz`` whose members each hold one pickled object, atomically.

    ``container="bytes"``: a 0-d bytes array holding the pickle (SEED-V's files);
    ``"object"``: a 0-d object array (the pickle follows the ``.npy`` header).
    """
    if container not in CONTAINERS:
        raise ConfigError(invalid_choice("container", container, CONTAINERS))
    fmt = np.lib.format
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
            for name, obj in members.items():
                if container == "bytes":
                    array = np.array(pickle.dumps(obj, protocol=4))
                else:
                    array = np.empty((), dtype=object)
                    array[()] = obj
                buf = io.BytesIO()
                fmt.write_array(buf, array, allow_pickle=container == "object")
                zf.writestr(f"{name}.npy", buf.getvalue())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_synthetic_seed_v(
    root: str | Path,
    n_subjects: int = 16,
    windows_per_trial: tuple[int, int] = (30, 60),
    seed: int = 0,
    effect: float = 1.0,
    layout: str = "channel-major",
    progress: Callable[[int, int], None] | None = None,
    container: str = "bytes",
    eye_nan_rate: float = EYE_NAN_RATE,
) -> Path:
    """Write ``root/EEG_DE_features/*_123.npz`` and ``root/Eye_movement_features/*_123.npz``; return ``root``.

    ``eye_nan_rate`` in [0, 1): the share of windows lost to the eye tracker
    (all 33 eye features NaN); windows without a saccade or a blink have NaN
    statistics of those whatever it is.
    """
    if not 1 <= n_subjects <= 99:
        raise ConfigError(f"The 'subjects' parameter must be an int in [1, 99]. Got {n_subjects} instead.")
    lo, hi = (int(v) for v in windows_per_trial)
    if not 1 <= lo <= hi:
        raise ConfigError(f"The 'windows_per_trial' parameter must be (lo, hi) with 1 <= lo <= hi. "
                          f"Got {windows_per_trial} instead.")
    if layout not in DE_LAYOUTS:
        raise ConfigError(invalid_choice("layout", layout, DE_LAYOUTS))
    if container not in CONTAINERS:
        raise ConfigError(invalid_choice("container", container, CONTAINERS))
    if not 0.0 <= eye_nan_rate < 1.0:
        raise ConfigError(f"The 'eye_nan_rate' parameter must be in [0, 1). Got {eye_nan_rate} instead.")
    root = Path(root).expanduser()
    eeg_dir, eye_dir = root / EEG_DIR, root / EYE_DIR
    eeg_dir.mkdir(parents=True, exist_ok=True)
    eye_dir.mkdir(parents=True, exist_ok=True)
    for n, subject in enumerate(range(1, n_subjects + 1)):
        de, eye, labels = synthesize_subject_seed_v(subject, (lo, hi), seed, effect, eye_nan_rate)
        flat = {k: _flatten(v, layout) for k, v in de.items()}
        write_pickle_npz(eeg_dir / f"{subject}_123.npz", {"data": flat, "label": labels}, container)
        eye64 = {k: v.astype(np.float64) for k, v in eye.items()}
        write_pickle_npz(eye_dir / f"{subject}_123.npz", {"data": eye64, "label": labels}, container)
        if progress is not None:
            progress(n + 1, n_subjects)
    return root

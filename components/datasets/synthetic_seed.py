"""Synthetic SEED and SEED-IV in the releases' real on-disk layouts.

SEED (:func:`write_synthetic_seed`), 3 sessions × 15 trials per subject, with
the real SEED clip labels ``1, 0, -1, -1, 0, 1, -1, 0, 1, 1, 0, -1, 0, 1, -1``
(the same in every session):

1. Raw EEG, 62 channels at 200 Hz, µV: 1/f noise per channel shaped in the
   frequency domain, about 15 µV RMS, with subject-specific leakage (5–20 %)
   from the neighbouring channels in the cap order (volume conduction) and
   channel gains. Trial k lasts
   ``round(seconds · f_k)`` s plus a fraction of a second, ``f_k`` in
   [0.9, 1.1], the same for every subject and session (the same clips).
2. Emotion: a spectral gain ``exp(β·bump(f))`` with ``β = 0.35 · effect ·
   g_subject`` (``g_subject`` in 0.6–1.4) on channel groups:

   - positive: beta and gamma up over the lateral temporal channels (FT7,
     FT8, T7, T8, TP7, TP8, C5, C6), the classic SEED finding;
   - negative: alpha up over the parieto-occipital channels, gamma down over
     the lateral temporal ones;
   - neutral: no change.

3. Subjects differ by band-power offsets per channel (±0.25 in log-amplitude),
   an individual band shift (±1 Hz), leakage and gains; sessions by smaller
   offsets (±0.1).
4. ``ExtractedFeatures``: DE of the same EEG with
   :func:`~moodops.components.features.spectral.differential_entropy`
   (1-s windows, ``method="stft"``, bands delta 1–4, theta 4–8, alpha 8–14,
   beta 14–31, gamma 31–50 Hz). ``de_movingAve`` is a centred moving average
   over 5 windows (:func:`moving_average`); ``de_LDS`` a Kalman
   (Rauch–Tung–Striebel) smoother of a local-level model with process/noise
   variance ratio 0.1 (:func:`lds_smooth`). Raw EEG is stored float32, the
   features float64 (as MATLAB writes them).

SEED-IV (:func:`write_synthetic_seed_iv`), 3 sessions × 24 trials with the
real per-session label sequences, written directly in the feature domain (the
release has no raw EEG):

1. DE ``(62, W, 5)`` per trial on 4-s windows, ``W`` drawn per session and
   trial from ``windows_per_trial`` (the same for every subject): a band level
   (falling with frequency) + subject offsets per channel and band (±0.25) +
   session offsets (±0.1) + AR(1) window noise (σ 0.35, ρ 0.6) + the class
   effect, then smoothed like SEED's (``de_movingAve``, ``de_LDS``).
2. Eye ``(31, W)`` per trial, the same windows: features grouped as pupil
   diameter (0–11), dispersion (12–15), fixation (16–17), blink (18–19),
   saccade (20–23) and event statistics (24–30), each with its own level and
   spread, subject offsets and AR(1) noise, plus the class effect.
3. Each modality is only partly informative, so fusing them helps:

   ============  ==========================================  ==================================
   class         EEG (DE, × 0.35 · effect · g_subject)        eye (× spread · effect · g_subject)
   ============  ==========================================  ==================================
   neutral       none                                        none
   sad           alpha, theta +1 parieto-occipital,          none
                 gamma -0.5 lateral temporal
   fear          none                                        pupil +1.2, blink +0.8
   happy         beta, gamma +1 lateral temporal,            pupil +0.6, saccade +1.0
                 alpha +0.5 right frontal
   ============  ==========================================  ==================================

   EEG cannot tell neutral from fear; the eye cannot tell neutral from sad.
4. ``eye_nan_rate`` > 0 blanks that share of windows' blink features with NaN
   (a window without a blink), for testing imputation.

Every file is written to a temporary name and renamed; output depends only on
the arguments (``seed`` and subject number seed every random draw).
"""
from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from moodops.components.datasets.seed import (
    BANDS,
    CHANNELS,
    N_CHANNELS,
    N_EYE_FEATURES,
    N_SESSIONS,
    SEED_FEATURE_DIR,
    SEED_IV_EEG_DIR,
    SEED_IV_EYE_DIR,
    SEED_IV_SESSION_LABELS,
    SEED_IV_TRIALS,
    SEED_RAW_DIR,
    SEED_SFREQ,
    SEED_TRIALS,
)
from moodops.components.errors import ConfigError

#: The real SEED clip labels (-1 negative, 0 neutral, 1 positive).
SEED_LABELS = (1, 0, -1, -1, 0, 1, -1, 0, 1, 1, 0, -1, 0, 1, -1)

_TEMPORAL = ("FT7", "FT8", "T7", "T8", "TP7", "TP8", "C5", "C6")
_PARIETO_OCCIPITAL = ("P7", "P5", "P3", "PZ", "P4", "P6", "P8", "PO7", "PO5", "PO3", "POZ", "PO4", "PO6", "PO8",
                      "CB1", "O1", "OZ", "O2", "CB2")
_RIGHT_FRONTAL = ("FP2", "AF4", "F4", "F6", "F8", "FC4", "FC6")
_BAND_INDEX = {name: k for k, name in enumerate(BANDS)}
_CH_INDEX = {c: i for i, c in enumerate(CHANNELS)}

# SEED: label value → [(band, channels, weight)], weights of the log-amplitude gain.
_SEED_EFFECTS: dict[int, tuple[tuple[str, tuple[str, ...], float], ...]] = {
    1: (("beta", _TEMPORAL, 0.7), ("gamma", _TEMPORAL, 1.0)),
    -1: (("alpha", _PARIETO_OCCIPITAL, 1.0), ("gamma", _TEMPORAL, -0.6)),
    0: (),
}
# SEED-IV EEG: label value → [(band, channels, weight)] in DE units of 0.35 · effect.
_SEED_IV_EEG_EFFECTS: dict[int, tuple[tuple[str, tuple[str, ...], float], ...]] = {
    0: (),
    1: (("alpha", _PARIETO_OCCIPITAL, 1.0), ("theta", _PARIETO_OCCIPITAL, 1.0), ("gamma", _TEMPORAL, -0.5)),
    2: (),
    3: (("beta", _TEMPORAL, 1.0), ("gamma", _TEMPORAL, 1.0), ("alpha", _RIGHT_FRONTAL, 0.5)),
}
# SEED-IV eye: (first, stop, level, spread) per feature group.
_EYE_GROUPS = {
    "pupil": (0, 12, 3.5, 0.3),
    "dispersion": (12, 16, 1.0, 0.2),
    "fixation": (16, 18, 0.3, 0.08),
    "blink": (18, 20, 0.15, 0.05),
    "saccade": (20, 24, 0.05, 0.015),
    "events": (24, 31, 1.0, 0.3),
}
# label value → [(group, weight in spreads)].
_SEED_IV_EYE_EFFECTS: dict[int, tuple[tuple[str, float], ...]] = {
    0: (),
    1: (),
    2: (("pupil", 1.2), ("blink", 0.8)),
    3: (("pupil", 0.6), ("saccade", 1.0)),
}
_DE_LEVEL = np.array([4.0, 3.2, 2.8, 2.0, 1.2], dtype=np.float64)  # delta … gamma


# --------------------------------------------------------------------------- smoothing


def moving_average(x: np.ndarray, width: int = 5, axis: int = 0) -> np.ndarray:
    """Centred moving average over ``width`` samples along ``axis`` (shorter at the ends)."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    n = len(x)
    half = width // 2
    csum = np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(x, axis=0)])
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    shape = (n,) + (1,) * (x.ndim - 1)
    out = (csum[hi] - csum[lo]) / (hi - lo).reshape(shape)
    return np.moveaxis(out, 0, axis)


def lds_smooth(x: np.ndarray, ratio: float = 0.1, axis: int = 0) -> np.ndarray:
    """Kalman + Rauch–Tung–Striebel smoothing of a local-level model along ``axis``.

    The model: ``z_t = z_{t-1} + w_t``, ``x_t = z_t + v_t`` with
    ``var(w) / var(v) = ratio``; the state starts at the first observation.
    Gains do not depend on the data, so every series is smoothed at once.
    """
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    n = len(x)
    q, r = float(ratio), 1.0
    m = np.empty_like(x)
    p = np.empty(n)
    m[0], p[0] = x[0], r
    for t in range(1, n):
        pred = p[t - 1] + q
        gain = pred / (pred + r)
        m[t] = m[t - 1] + gain * (x[t] - m[t - 1])
        p[t] = (1.0 - gain) * pred
    out = m.copy()
    for t in range(n - 2, -1, -1):
        c = p[t] / (p[t] + q)
        out[t] = m[t] + c * (out[t + 1] - m[t])
    return np.moveaxis(out, 0, axis)


# --------------------------------------------------------------------------- helpers


def _write_mat(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """savemat to a temporary name in the same folder, then rename."""
    import scipy.io

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            scipy.io.savemat(f, arrays, format="5", do_compression=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _initials(subject: int) -> str:
    """A three-letter prefix per subject, like SEED's ``djc_eeg1`` (fixed by the subject number)."""
    code = (subject * 2654435761) % (26 ** 3)
    return "".join(chr(ord("a") + (code // 26 ** i) % 26) for i in range(3))


def _dates(rng: np.random.Generator, start: dt.date, subject: int) -> list[str]:
    """Three increasing session dates (about a week apart) as YYYYMMDD."""
    day = start + dt.timedelta(days=int(3 * subject + rng.integers(0, 3)))
    out = []
    for _ in range(N_SESSIONS):
        out.append(day.strftime("%Y%m%d"))
        day += dt.timedelta(days=int(rng.integers(5, 15)))
    return out


def _bump(freqs: np.ndarray, lo: float, hi: float, edge: float = 1.0) -> np.ndarray:
    """A smooth band indicator with raised-cosine edges."""
    rise = np.clip((freqs - (lo - edge)) / edge, 0, 1)
    fall = np.clip(((hi + edge) - freqs) / edge, 0, 1)
    return (0.5 - 0.5 * np.cos(np.pi * rise)) * (0.5 - 0.5 * np.cos(np.pi * fall))


def _channel_map(effects, scale: float) -> dict[int, np.ndarray]:
    """label → (62, 5) offsets from an effects table."""
    out = {}
    for label, items in effects.items():
        m = np.zeros((N_CHANNELS, len(BANDS)))
        for band, channels, weight in items:
            m[[_CH_INDEX[c] for c in channels], _BAND_INDEX[band]] += scale * weight
        out[label] = m
    return out


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], sigma: float, rho: float) -> np.ndarray:
    """Stationary AR(1) noise along the first axis."""
    e = rng.standard_normal(shape) * sigma
    out = np.empty(shape)
    out[0] = e[0]
    innovation = np.sqrt(1.0 - rho ** 2)
    for t in range(1, shape[0]):
        out[t] = rho * out[t - 1] + innovation * e[t]
    return out


def _check_subjects(n_subjects: int) -> None:
    if not 1 <= n_subjects <= 99:
        raise ConfigError(f"The 'subjects' parameter must be an int in [1, 99]. Got {n_subjects} instead.")


# --------------------------------------------------------------------------- SEED


def _seed_trial(rng: np.random.Generator, bumps: np.ndarray, amp: np.ndarray, log_gain_bands: np.ndarray,
                label: int, beta: float) -> np.ndarray:
    """One trial's (62, n_times) float32 EEG before mixing, unit-ish RMS.

    ``bumps`` (5, F) are the band indicators and ``amp`` (F,) the 1/f
    amplitude on the trial's rfft grid, ``F = n_times // 2 + 1``.
    """
    n_times = 2 * (bumps.shape[1] - 1)
    coef = log_gain_bands.copy()  # (62, 5) log-amplitude per band
    for band, channels, weight in _SEED_EFFECTS[label]:
        coef[[_CH_INDEX[c] for c in channels], _BAND_INDEX[band]] += beta * weight
    shaped = np.exp(coef.astype(np.float32) @ bumps) * amp  # (62, F)
    spectrum = np.empty(shaped.shape, dtype=np.complex64)
    spectrum.real = rng.standard_normal(shaped.shape, dtype=np.float32) * shaped
    spectrum.imag = rng.standard_normal(shaped.shape, dtype=np.float32) * shaped
    import scipy.fft

    x = scipy.fft.irfft(spectrum, n=n_times, axis=-1)
    return x * np.float32(n_times / (2.0 * np.sqrt((amp.astype(np.float64) ** 2).sum())))


def synthesize_seed_subject(subject: int, samples: list[int], seed: int = 0, effect: float = 1.0
                            ) -> list[list[np.ndarray]]:
    """One subject → sessions → 15 trials of float32 (62, samples[k]) EEG in µV.

    Trials are generated at an even length (``samples[k]`` rounded up) and
    cut to ``samples[k]``.
    """
    rng = np.random.default_rng([seed, subject])
    beta = 0.35 * effect * rng.uniform(0.6, 1.4)
    shift = rng.uniform(-1.0, 1.0)
    subject_bands = rng.normal(0.0, 0.25, (N_CHANNELS, len(BANDS)))
    # Volume conduction: each channel picks up its neighbours in the cap order.
    leak = rng.uniform(0.05, 0.2, (2, N_CHANNELS, 1)).astype(np.float32)
    gains = (np.exp(rng.normal(0.0, 0.2, (N_CHANNELS, 1))) * 15.0).astype(np.float32)
    grids = {}
    for n in sorted(set(samples)):
        freqs = np.fft.rfftfreq(n + n % 2, 1.0 / SEED_SFREQ)
        amp = (1.0 / np.sqrt(np.maximum(freqs, 1.0))).astype(np.float32)
        amp[0] = 0.0
        bumps = np.stack([_bump(freqs, lo + shift, hi + shift) for lo, hi in BANDS.values()]).astype(np.float32)
        grids[n] = (bumps, amp)
    sessions = []
    for _ in range(N_SESSIONS):
        bands = subject_bands + rng.normal(0.0, 0.1, (N_CHANNELS, len(BANDS)))
        trials = []
        for k, n in enumerate(samples):
            x = _seed_trial(rng, *grids[n], bands, SEED_LABELS[k], beta)[:, :n]
            mixed = x.copy()
            mixed[1:] += leak[0, 1:] * x[:-1]
            mixed[:-1] += leak[1, :-1] * x[1:]
            trials.append(mixed * gains)
        sessions.append(trials)
    return sessions


def write_synthetic_seed(
    root: str | Path,
    n_subjects: int = 15,
    seconds: float = 240.0,
    seed: int = 0,
    effect: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``root/Preprocessed_EEG/*.mat`` (+ ``label.mat``) and ``root/ExtractedFeatures/*.mat``; return ``root``.

    ``seconds`` is the mean trial length (trials last 0.9–1.1 × that, whole
    seconds plus a fraction); every subject gets 3 date-named session files.
    """
    from moodops.components.features.spectral import differential_entropy

    _check_subjects(n_subjects)
    if seconds < 2.0:
        raise ConfigError(f"The 'seconds' parameter must be >= 2. Got {seconds} instead.")
    base = Path(root).expanduser()
    raw_dir, feature_dir = base / SEED_RAW_DIR, base / SEED_FEATURE_DIR
    raw_dir.mkdir(parents=True, exist_ok=True)
    feature_dir.mkdir(parents=True, exist_ok=True)
    layout = np.random.default_rng([seed, 0])
    lengths = np.maximum(1, np.round(seconds * layout.uniform(0.9, 1.1, SEED_TRIALS))).astype(int)
    samples = [int(s * SEED_SFREQ + layout.integers(0, int(SEED_SFREQ))) for s in lengths]
    label = np.asarray(SEED_LABELS, dtype=np.float64)[None, :]
    for folder in (raw_dir, feature_dir):
        _write_mat(folder / "label.mat", {"label": label})
    for done, subject in enumerate(range(1, n_subjects + 1), start=1):
        dates = _dates(np.random.default_rng([seed, subject, 1]), dt.date(2013, 4, 1), subject)
        prefix = _initials(subject)
        for date, trials in zip(dates, synthesize_seed_subject(subject, samples, seed, effect)):
            name = f"{subject}_{date}.mat"
            _write_mat(raw_dir / name, {f"{prefix}_eeg{k}": x for k, x in enumerate(trials, start=1)})
            features: dict[str, np.ndarray] = {}
            for k, x in enumerate(trials, start=1):
                de = differential_entropy(x, SEED_SFREQ, BANDS, window_s=1.0, method="stft")  # (W, 62, 5)
                features[f"de_movingAve{k}"] = moving_average(de).transpose(1, 0, 2)
                features[f"de_LDS{k}"] = lds_smooth(de).transpose(1, 0, 2)
            _write_mat(feature_dir / name, features)
        if progress is not None:
            progress(done, n_subjects)
    return base


# --------------------------------------------------------------------------- SEED-IV


def synthesize_seed_iv_subject(subject: int, windows: dict[int, list[int]], seed: int = 0, effect: float = 1.0,
                               eye_nan_rate: float = 0.0) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    """One subject → session → 24 trials of (raw DE (W, 62, 5), eye (W, 31)) float64."""
    rng = np.random.default_rng([seed, subject])
    g = effect * rng.uniform(0.6, 1.4)
    eeg_effect = _channel_map(_SEED_IV_EEG_EFFECTS, 0.35 * g)
    level = np.empty(N_EYE_FEATURES)
    spread = np.empty(N_EYE_FEATURES)
    for lo, hi, lv, sp in _EYE_GROUPS.values():
        level[lo:hi], spread[lo:hi] = lv, sp
    eye_effect = {}
    for label, items in _SEED_IV_EYE_EFFECTS.items():
        e = np.zeros(N_EYE_FEATURES)
        for group, weight in items:
            lo, hi = _EYE_GROUPS[group][:2]
            e[lo:hi] += weight * g * spread[lo:hi]
        eye_effect[label] = e
    de_subject = _DE_LEVEL[None, :] + rng.normal(0.0, 0.25, (N_CHANNELS, len(BANDS)))
    eye_subject = level + rng.normal(0.0, 0.5, N_EYE_FEATURES) * spread
    blink = slice(*_EYE_GROUPS["blink"][:2])
    out = {}
    for session in range(1, N_SESSIONS + 1):
        de_session = de_subject + rng.normal(0.0, 0.1, (N_CHANNELS, len(BANDS)))
        trials = []
        for k, w in enumerate(windows[session]):
            label = SEED_IV_SESSION_LABELS[session][k]
            de = de_session + eeg_effect[label] + _ar1(rng, (w, N_CHANNELS, len(BANDS)), 0.35, 0.6)
            eye = eye_subject + eye_effect[label] + _ar1(rng, (w, N_EYE_FEATURES), 1.0, 0.6) * spread
            if eye_nan_rate > 0:
                eye[rng.random(w) < eye_nan_rate, blink] = np.nan
            trials.append((de, eye))
        out[session] = trials
    return out


def write_synthetic_seed_iv(
    root: str | Path,
    n_subjects: int = 15,
    windows_per_trial: tuple[int, int] = (12, 64),
    seed: int = 0,
    effect: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
    eye_nan_rate: float = 0.0,
) -> Path:
    """Write ``root/eeg_feature_smooth/{1,2,3}/*.mat`` and ``root/eye_feature_smooth/{1,2,3}/*.mat``; return ``root``.

    ``windows_per_trial`` = (min, max) 4-s windows per trial, both inclusive.
    """
    _check_subjects(n_subjects)
    lo, hi = (int(v) for v in windows_per_trial)
    if not 1 <= lo <= hi:
        raise ConfigError(f"The 'windows_per_trial' parameter must be (min, max) with 1 <= min <= max. "
                          f"Got {tuple(windows_per_trial)} instead.")
    if not 0.0 <= eye_nan_rate < 1.0:
        raise ConfigError(f"The 'eye_nan_rate' parameter must be in [0, 1). Got {eye_nan_rate} instead.")
    base = Path(root).expanduser()
    for kind in (SEED_IV_EEG_DIR, SEED_IV_EYE_DIR):
        for session in range(1, N_SESSIONS + 1):
            (base / kind / str(session)).mkdir(parents=True, exist_ok=True)
    layout = np.random.default_rng([seed, 0])
    windows = {s: [int(w) for w in layout.integers(lo, hi + 1, SEED_IV_TRIALS)] for s in range(1, N_SESSIONS + 1)}
    for done, subject in enumerate(range(1, n_subjects + 1), start=1):
        dates = _dates(np.random.default_rng([seed, subject, 1]), dt.date(2016, 3, 1), subject)
        sessions = synthesize_seed_iv_subject(subject, windows, seed, effect, eye_nan_rate)
        for session, trials in sessions.items():
            name = f"{subject}_{dates[session - 1]}.mat"
            eeg: dict[str, np.ndarray] = {}
            eye: dict[str, np.ndarray] = {}
            for k, (de, eye_k) in enumerate(trials, start=1):
                eeg[f"de_movingAve{k}"] = moving_average(de).transpose(1, 0, 2)
                eeg[f"de_LDS{k}"] = lds_smooth(de).transpose(1, 0, 2)
                eye[f"eye_{k}"] = eye_k.T
            _write_mat(base / SEED_IV_EEG_DIR / str(session) / name, eeg)
            _write_mat(base / SEED_IV_EYE_DIR / str(session) / name, eye)
        if progress is not None:
            progress(done, n_subjects)
    return base

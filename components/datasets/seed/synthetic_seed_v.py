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

Raw EEG (``raw=True``): ``EEG_raw/{subject}_{session}_{date}.cnt``, one Neuroscan file per
session (:func:`~moodops.components.datasets.formats.cnt.write_cnt`, 32-bit by default) with
the 66 channels of :data:`CNT_CHANNELS` at ``raw_sfreq`` (1000 Hz, the release's), dates a
week or two apart. The clips lie at the published start and end seconds
(:data:`~moodops.components.datasets.seed.seed_v.TRIAL_SECONDS`) times ``raw_time_scale``;
the recording runs on for ``30 s × raw_time_scale`` after the last clip. ``raw_time_scale`` < 1
shrinks the whole timeline (0.1: sessions of about 5 minutes, clips of 5-30 s) for tests and
demos; the factor is written into each file's header label
(:func:`~moodops.components.datasets.seed.seed_v.time_scale_label`) and the reader needs
``SeedV(..., raw_time_scale=...)`` set to it. It must leave every clip at least one 4-s
window (``raw_time_scale`` >= 4 / 52: the shortest clip lasts 52 s). A full-length session at
1000 Hz is 66 × 3.4 M samples (about 0.9 GB on disk and in memory while written).

Signal (µV), per subject:

1. EEG, 62 channels: Gaussian noise shaped in the frequency domain, power ∝ 1/f, with a
   log-amplitude gain per channel and band (raised-cosine band edges, bands shifted by the
   subject's ±1 Hz): subject offsets (σ 0.25) plus an alpha rhythm over the
   parieto-occipital channels (+0.2–0.6), session offsets (σ 0.1), and during clips the
   class effect of the EEG features above (the same three groups and channel patterns,
   ``exp(β · weight)`` on the amplitude, β = 0.45 · effect · subject gain 0.6–1.4, so the DE
   of a band moves by about β · weight). Clips, and the rest between them (no class
   effect), are generated apart and joined by sine/cosine cross-fades (up to 0.5 s) inside
   the rest.
   Volume conduction (5–20 % of each neighbour in the cap order), channel gains
   (log-normal σ 0.2, times 0.1 per session: electrode impedance), about 12 µV RMS scaled by
   a subject factor 0.6–1.6 (skull and skin).
2. Mastoids M1, M2: the same background, half the amplitude, no class effect. VEO, HEO:
   small background noise.
3. Artefacts on every channel: a DC offset (±300 µV), slow drift (three sinusoids of
   0.005–0.05 Hz, 10–40 µV in all), 50 Hz mains (1–5 µV; one loose EEG electrode per session
   with 3× the background and 20 µV of mains). Blinks (0.2–0.4 per second, sin² bumps of
   200–400 ms, 80–200 µV on VEO, 0.8 of that on FP1/FPZ/FP2, 0.5 on AF3/AF4, 0.25 on the F
   row); horizontal saccades (0.5 per second) as ±20–60 µV jumps on HEO decaying with a
   0.3-s time constant.

With ``raw=True`` the EEG features are those of this EEG (the release's processing: 1–75 Hz
band-pass, 200 Hz, then DE on 4-s windows, ``method="stft"``), one window per whole 4 s of
each clip; the eye features get the same windows (``windows_per_trial`` is not used).
"""
from __future__ import annotations

import datetime as dt
import io
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from moodops.components.datasets.formats.cnt import DATA_FORMATS, write_cnt
from moodops.components.datasets.seed.seed import BANDS as BAND_EDGES
from moodops.components.datasets.seed.seed_v import (
    CHANNELS,
    DE_LAYOUTS,
    EEG_DIR,
    EYE_DIR,
    N_BANDS,
    N_CHANNELS,
    N_SESSIONS,
    RAW_DIR,
    RAW_SFREQ,
    SESSION_LABELS,
    TRIAL_SECONDS,
    TRIALS_PER_SESSION,
    WINDOW_S,
    time_scale_label,
    whole_windows,
)
from moodops.components.datasets.seed.synthetic_seed import (
    EYE_LATENTS,
    EYE_NAN_RATE,
    SEED_IV_EYE_FEATURES,
    EyeSubject,
    _bump,
    _dates,
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
    return de, _synthesize_eye(subject, {k: len(v) for k, v in de.items()}, seed, effect, eye_nan_rate), labels


def _synthesize_eye(subject: int, windows: dict[int, int], seed: int, effect: float, eye_nan_rate: float
                    ) -> dict[int, np.ndarray]:
    """One subject's eye features ``{k: (windows[k], 33) float32}``, k = 0…44 (streams of their own)."""
    eye_rng = np.random.default_rng([seed, subject, 2])
    eye_params = EyeSubject.draw(eye_rng, len(SEED_V_EYE_FEATURES))
    eye_gain = effect * eye_rng.uniform(0.6, 1.4) * eye_rng.uniform(0.7, 1.3, len(EYE_LATENTS))
    clips = eye_clip_offsets(np.random.default_rng([seed, 0, 2]), len(windows))
    eye = {}
    for session in range(len(SESSION_LABELS)):
        keys = list(range(session * TRIALS_PER_SESSION, (session + 1) * TRIALS_PER_SESSION))
        shifts = [_EYE_PATTERNS[_EYE_GROUP[SESSION_LABELS[session][k % TRIALS_PER_SESSION]]] * eye_gain
                  for k in keys]
        trials = synthesize_eye_session(eye_rng, eye_params, [windows[k] for k in keys], shifts, clips[keys],
                                        eye_nan_rate, SEED_V_EYE_FEATURES)
        eye.update({k: x.astype(np.float32) for k, x in zip(keys, trials)})
    return eye


# --------------------------------------------------------------------------- raw EEG (.cnt)

#: The 66 channels of the lab's NeuroScan recordings, in file order: the 62 EEG channels with the
#: mastoids M1 after T8 and M2 after TP8 and the EOG channels VEO, HEO last (the Quik-Cap order, as a
#: public loader of the lab's SEED .cnt files lists it; SEED-V loaders drop exactly M1, M2, VEO, HEO).
#: Not confirmed against SEED-V's own files: the reader picks the 62 channels by name, not position.
CNT_CHANNELS: tuple[str, ...] = (*CHANNELS[:32], "M1", *CHANNELS[32:41], "M2", *CHANNELS[41:], "VEO", "HEO")
#: The release's processing before its DE (SEED-V web page): 200 Hz, a 1–75 Hz band-pass.
RELEASE_SFREQ = 200.0
RELEASE_BAND = (1.0, 75.0)
#: The smallest ``raw_time_scale`` that leaves the shortest clip (52 s) one 4-s window.
MIN_RAW_TIME_SCALE = WINDOW_S / min(b - a for clips in TRIAL_SECONDS.values() for a, b in clips)
_RAW_TAIL_S = 30.0  # the recording runs on after the last clip (× raw_time_scale)
_FADE_S = 0.5
_RMS_UV = 12.0
_CNT = {c: i for i, c in enumerate(CNT_CHANNELS)}
_BLINK_SPREAD = {"VEO": 1.0, "FP1": 0.8, "FPZ": 0.8, "FP2": 0.8, "AF3": 0.5, "AF4": 0.5,
                 **{c: 0.25 for c in ("F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8")}}
_OCCIPITAL_ALPHA = [_CH[c] for c in ("P5", "P3", "P1", "PZ", "P2", "P4", "P6", "PO7", "PO5", "PO3", "POZ",
                                     "PO4", "PO6", "PO8", "CB1", "O1", "OZ", "O2", "CB2")]


class _RawSubject:
    """One subject's raw-signal parameters (drawn from ``rng`` in a fixed order)."""

    def __init__(self, rng: np.random.Generator, effect: float) -> None:
        self.beta = 0.45 * effect * rng.uniform(0.6, 1.4)
        self.shift = rng.uniform(-1.0, 1.0)
        self.bands = rng.normal(0.0, 0.25, (N_CHANNELS, N_BANDS))
        self.bands[_OCCIPITAL_ALPHA, 2] += rng.uniform(0.2, 0.6)
        self.patterns = []
        for channels, weights in _EEG_PATTERNS:
            pattern = np.zeros((N_CHANNELS, N_BANDS))
            pattern[channels] = weights * rng.uniform(0.7, 1.3, (len(channels), 1))
            self.patterns.append(pattern)
        self.leak = rng.uniform(0.05, 0.2, (2, N_CHANNELS, 1))
        self.gains = np.exp(rng.normal(0.0, 0.2, (N_CHANNELS, 1))) * _RMS_UV * rng.uniform(0.6, 1.6)


def _shaped_noise(rng: np.random.Generator, n_times: int, sfreq: float, coef: np.ndarray, shift: float
                  ) -> np.ndarray:
    """(C, n_times) Gaussian noise, power ∝ 1/f times ``exp(2 · coef @ bumps)``, about unit RMS at coef 0."""
    import scipy.fft

    n = n_times + n_times % 2
    freqs = np.fft.rfftfreq(n, 1.0 / sfreq)
    amp = 1.0 / np.sqrt(np.maximum(freqs, 1.0))
    amp[freqs < 0.5] = 0.0
    bumps = np.stack([_bump(freqs, lo + shift, hi + shift) for lo, hi in BAND_EDGES.values()]).astype(np.float32)
    shaped = np.exp(np.asarray(coef, dtype=np.float32) @ bumps) * amp.astype(np.float32)
    spectrum = np.empty(shaped.shape, dtype=np.complex64)
    spectrum.real = rng.standard_normal(shaped.shape, dtype=np.float32) * shaped
    spectrum.imag = rng.standard_normal(shaped.shape, dtype=np.float32) * shaped
    x = scipy.fft.irfft(spectrum, n=n, axis=-1)[:, :n_times]
    return x * np.float32(n / np.sqrt(2.0 * (amp[amp > 0] ** 2).sum()))


def _segments(clips: list[tuple[float, float]], total_s: float) -> list[tuple[float, float, int | None]]:
    """The session's timeline → (start, end, clip index or None for rest)."""
    out, t = [], 0.0
    for k, (a, b) in enumerate(clips):
        out.append((t, a, None))
        out.append((a, b, k))
        t = b
    out.append((t, total_s, None))
    return out


def synthesize_raw_session_seed_v(rng: np.random.Generator, subject: _RawSubject, session: int,
                                  time_scale: float, sfreq: float) -> np.ndarray:
    """One session's recording: float32 µV ``(66, n_times)`` in :data:`CNT_CHANNELS` order."""
    clips = [(a * time_scale, b * time_scale) for a, b in TRIAL_SECONDS[session]]
    total_s = clips[-1][1] + _RAW_TAIL_S * time_scale
    n_total = int(round(total_s * sfreq))
    fade = int(round(min(_FADE_S, 0.25 * min(b - a for (_, a), (b, _) in zip(clips, clips[1:]))) * sfreq))
    ramp = np.sin(0.5 * np.pi * (np.arange(fade) + 0.5) / fade).astype(np.float32)
    bands = subject.bands + rng.normal(0.0, 0.1, (N_CHANNELS, N_BANDS))
    labels = SESSION_LABELS[session - 1]
    eeg = np.zeros((N_CHANNELS, n_total), dtype=np.float32)
    for start_s, end_s, k in _segments(clips, total_s):
        a, b = int(round(start_s * sfreq)), int(round(end_s * sfreq))
        lo, hi = (a, b) if k is None else (max(a - fade, 0), min(b + fade, n_total))
        coef = bands if k is None else bands + subject.beta * subject.patterns[_EEG_GROUP[labels[k]]]
        x = _shaped_noise(rng, hi - lo, sfreq, coef, subject.shift)
        # Clips reach a fade into the rest on both sides; rest fades in and out over those samples.
        if lo > 0:
            x[:, :fade] *= ramp
        if hi < n_total:
            x[:, -fade:] *= ramp[::-1]
        eeg[:, lo:hi] += x
    mixed = eeg.copy()
    mixed[1:] += subject.leak[0, 1:] * eeg[:-1]
    mixed[:-1] += subject.leak[1, :-1] * eeg[1:]
    gains = subject.gains * np.exp(rng.normal(0.0, 0.1, (N_CHANNELS, 1)))
    out = np.zeros((len(CNT_CHANNELS), n_total), dtype=np.float32)
    out[[_CNT[c] for c in CHANNELS]] = mixed * gains.astype(np.float32)
    for name in ("M1", "M2"):
        out[_CNT[name]] = _shaped_noise(rng, n_total, sfreq, np.zeros((1, N_BANDS)), subject.shift)[0] \
            * np.float32(0.5 * _RMS_UV)
    for name in ("VEO", "HEO"):
        out[_CNT[name]] = rng.standard_normal(n_total, dtype=np.float32) * np.float32(3.0)
    _add_artefacts(rng, out, sfreq)
    return out


def _add_artefacts(rng: np.random.Generator, out: np.ndarray, sfreq: float) -> None:
    """DC offsets, slow drift, mains, one loose electrode, blinks and saccades, in place."""
    n_channels, n_times = out.shape
    eeg_rows = [_CNT[c] for c in CHANNELS]
    loose = eeg_rows[int(rng.integers(0, N_CHANNELS))]
    out[loose] *= np.float32(3.0)
    out += rng.uniform(-300.0, 300.0, (n_channels, 1)).astype(np.float32)
    # Drift: three slow sinusoids per channel, evaluated at 10 Hz and interpolated (smooth at that rate).
    t = np.arange(n_times) / sfreq
    coarse = np.arange(0.0, t[-1] + 0.2, 0.1)
    freq = rng.uniform(0.005, 0.05, (n_channels, 3, 1))
    phase = rng.uniform(0, 2 * np.pi, (n_channels, 3, 1))
    amplitude = rng.uniform(10.0, 40.0, (n_channels, 1, 1)) / 3
    drift = (amplitude * np.sin(2 * np.pi * freq * coarse + phase)).sum(axis=1)
    for c in range(n_channels):
        out[c] += np.interp(t, coarse, drift[c]).astype(np.float32)
    mains = rng.uniform(1.0, 5.0, n_channels)
    mains[loose] = 20.0
    if 50.0 < sfreq / 2:
        phase = rng.uniform(0, 2 * np.pi, n_channels)
        wave = 2 * np.pi * 50.0 * t
        out += np.outer(mains * np.cos(phase), np.sin(wave)).astype(np.float32)
        out += np.outer(mains * np.sin(phase), np.cos(wave)).astype(np.float32)
    blink_rows = [_CNT[c] for c in _BLINK_SPREAD]
    blink_weights = np.array(list(_BLINK_SPREAD.values()), dtype=np.float32)[:, None]
    for onset in np.flatnonzero(rng.random(n_times) < rng.uniform(0.2, 0.4) / sfreq):
        n = int(rng.uniform(0.2, 0.4) * sfreq)
        stop = min(onset + n, n_times)
        shape = (np.sin(np.pi * np.arange(stop - onset) / n) ** 2 * rng.uniform(80.0, 200.0)).astype(np.float32)
        out[blink_rows, onset:stop] += blink_weights * shape
    relax = np.exp(-np.arange(int(sfreq)) / (0.3 * sfreq))
    for onset in np.flatnonzero(rng.random(n_times) < 0.5 / sfreq):
        stop = min(onset + len(relax), n_times)
        amplitude = rng.choice((-1.0, 1.0)) * rng.uniform(20.0, 60.0)
        out[_CNT["HEO"], onset:stop] += (amplitude * relax[:stop - onset]).astype(np.float32)


def release_de(clip: np.ndarray, sfreq: float) -> np.ndarray:
    """A clip's 62-channel EEG (µV, ``sfreq`` >= 200 Hz) → DE ``(W, 62, 5)`` the release's way.

    The SEED-V page: 200 Hz, a 1–75 Hz band-pass, DE on 4-s windows. Its filter is not given;
    here a zero-phase order-4 Butterworth band-pass, polyphase resampling and ``method="stft"``.
    """
    from fractions import Fraction

    from scipy.signal import butter, resample_poly, sosfiltfilt

    from moodops.components.features.spectral import differential_entropy

    x = np.asarray(clip, dtype=np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    high = min(RELEASE_BAND[1], 0.45 * sfreq)
    x = sosfiltfilt(butter(4, (RELEASE_BAND[0], high), btype="bandpass", fs=sfreq, output="sos"), x, axis=-1)
    ratio = Fraction(RELEASE_SFREQ / sfreq).limit_denominator(1000)
    if ratio != 1:
        x = resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
    return differential_entropy(x, RELEASE_SFREQ, BAND_EDGES, window_s=WINDOW_S, method="stft")


def synthesize_raw_subject_seed_v(subject: int, time_scale: float = 1.0, sfreq: float = RAW_SFREQ, seed: int = 0,
                                  effect: float = 1.0, eye_nan_rate: float = EYE_NAN_RATE
                                  ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], dict[int, np.ndarray],
                                             dict[int, np.ndarray]]:
    """One subject → (recordings ``{session: (66, n) float32 µV}``, DE ``{k: (W, 62, 5)}``, eye ``{k: (W, 33)}``,
    labels ``{k: (W,)}``), k = 0…44, W the whole 4-s windows of each (scaled) clip."""
    rng = np.random.default_rng([seed, subject, 3])
    params = _RawSubject(rng, effect)
    eeg_rows = [_CNT[c] for c in CHANNELS]
    recordings, de, labels = {}, {}, {}
    for session in range(1, N_SESSIONS + 1):
        recordings[session] = synthesize_raw_session_seed_v(rng, params, session, time_scale, sfreq)
        for trial, (a, b) in enumerate(TRIAL_SECONDS[session]):
            k = (session - 1) * TRIALS_PER_SESSION + trial
            start, seconds = a * time_scale, whole_windows((b - a) * time_scale) * WINDOW_S
            first = int(round(start * sfreq))
            clip = recordings[session][eeg_rows, first:first + int(round(seconds * sfreq))]
            de[k] = release_de(clip, sfreq).astype(np.float32)
            labels[k] = np.full(len(de[k]), SESSION_LABELS[session - 1][trial], dtype=np.float64)
    return recordings, de, _synthesize_eye(subject, {k: len(v) for k, v in de.items()}, seed, effect,
                                           eye_nan_rate), labels


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
    raw: bool = False,
    raw_time_scale: float = 1.0,
    raw_sfreq: float = RAW_SFREQ,
    raw_format: str = "int32",
) -> Path:
    """Write ``root/EEG_DE_features/*_123.npz`` and ``root/Eye_movement_features/*_123.npz`` (and, with
    ``raw``, ``root/EEG_raw/*.cnt``); return ``root``.

    ``eye_nan_rate`` in [0, 1): the share of windows lost to the eye tracker
    (all 33 eye features NaN); windows without a saccade or a blink have NaN
    statistics of those whatever it is. ``raw``: also write the raw recordings
    (see the module docstring); the features are then computed from them and
    ``windows_per_trial`` is not used. ``raw_time_scale`` in
    [:data:`MIN_RAW_TIME_SCALE`, 1] shrinks the clip timeline (read back with
    ``SeedV(root, raw_time_scale=...)``), ``raw_sfreq`` a whole number of Hz, at
    least 200 (the release's feature rate), ``raw_format`` "int32" or "int16".
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
    if raw:
        if not MIN_RAW_TIME_SCALE - 1e-12 <= raw_time_scale <= 1.0:
            raise ConfigError(f"The 'raw_time_scale' parameter must be a float in [{MIN_RAW_TIME_SCALE:.4f}, 1] "
                              f"(every clip keeps a 4-s window). Got {raw_time_scale} instead.")
        if not (float(raw_sfreq).is_integer() and RELEASE_SFREQ <= raw_sfreq <= 65535):
            raise ConfigError(f"The 'raw_sfreq' parameter must be a whole number of Hz in [{RELEASE_SFREQ:g}, 65535]. "
                              f"Got {raw_sfreq} instead.")
        if raw_format not in DATA_FORMATS[1:]:
            raise ConfigError(invalid_choice("raw_format", raw_format, DATA_FORMATS[1:]))
    root = Path(root).expanduser()
    eeg_dir, eye_dir, raw_dir = root / EEG_DIR, root / EYE_DIR, root / RAW_DIR
    for folder in (eeg_dir, eye_dir, *((raw_dir,) if raw else ())):
        folder.mkdir(parents=True, exist_ok=True)
    for n, subject in enumerate(range(1, n_subjects + 1)):
        if raw:
            recordings, de, eye, labels = synthesize_raw_subject_seed_v(subject, raw_time_scale, raw_sfreq, seed,
                                                                        effect, eye_nan_rate)
            dates = _dates(np.random.default_rng([seed, subject, 1]), dt.date(2018, 4, 1), subject)
            for session, data in recordings.items():
                date = dates[session - 1]
                write_cnt(raw_dir / f"{subject}_{session}_{date}.cnt", data, raw_sfreq, CNT_CHANNELS,
                          data_format=raw_format, label=time_scale_label(raw_time_scale),
                          recorded=dt.datetime.strptime(date, "%Y%m%d").replace(hour=14))
            del recordings
        else:
            de, eye, labels = synthesize_subject_seed_v(subject, (lo, hi), seed, effect, eye_nan_rate)
        flat = {k: _flatten(v, layout) for k, v in de.items()}
        write_pickle_npz(eeg_dir / f"{subject}_123.npz", {"data": flat, "label": labels}, container)
        eye64 = {k: v.astype(np.float64) for k, v in eye.items()}
        write_pickle_npz(eye_dir / f"{subject}_123.npz", {"data": eye64, "label": labels}, container)
        if progress is not None:
            progress(n + 1, n_subjects)
    return root

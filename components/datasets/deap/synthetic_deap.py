"""Synthetic DEAP in the real on-disk format.

Signal model (per subject, per trial, 32 EEG channels at 128 Hz):

1. Background: independent 1/f ("pink") noise per channel, shaped in the
   frequency domain, about 15 µV RMS.
2. Affect: the stimulus part (the last ``seconds``) gets label-dependent
   band-power changes, applied as a spectral gain ``exp(β·s·bump(f))`` where
   ``s = (rating - 5) / 4`` in [-1, 1]:

   - valence: frontal alpha asymmetry (alpha up on right-frontal channels, down
     on left-frontal ones) and temporal gamma up;
   - arousal: central-parietal beta up, parieto-occipital alpha down;
   - dominance: frontal-midline theta up;
   - liking: frontal beta up (weaker).

   ``β = 0.35 · effect``; ``effect`` scales every change (1 by default).
   Affect also couples channels (the functional connectivity that Zheng et
   al. 2023's DFCN reads; a time-domain Pearson correlation sees nothing of
   the band-power changes above): in the stimulus part, each channel of a
   network is ``sqrt(1-ρ)·own + sqrt(ρ)·shared``, ``shared`` one 1/f source
   per trial and network with the background's spectrum, so the channels'
   power is unchanged and their pairwise correlation (before volume
   conduction) is ``ρ = ρ0 + 0.06·effect·g·s``: a frontal network with
   valence, a parieto-occipital one with arousal (:data:`_COUPLING`);
   ``ρ0`` is the subject's own (0.15–0.35) and ``g`` its effect gain. The
   coupling has a random generator of its own, so everything else is drawn
   as before.
3. Subjects differ: each has its own effect gain (0.6–1.4), individual
   frequency shift of the bands (±1 Hz), log-power offsets per channel and
   band, channel gains, and a channel-mixing matrix (volume conduction). So a
   model can learn across subjects, but leave-one-subject-out is harder than
   within-subject.
4. The 3-s pre-trial baseline is background only.
5. Peripheral channels 32–39 carry plausible slow signals (EOG blinks, EMG,
   GSR drift, respiration, pulse, temperature); no affect is encoded there.

6. Face (``with_face=True``): per subject a random presentation order of the
   videos; ``face/sXX/sXX_trialYY.csv`` (YY = presentation trial) in OpenFace
   ``FeatureExtraction`` format (header names after the first with a leading
   space, ``face_fps`` frames per second, 10 by default) covering the
   ``seconds`` of the stimulus (timestamp 0 = stimulus onset), and
   ``participant_ratings.csv`` in the root mapping presentation Trial to
   Experiment_id (the ``.dat`` row + 1), with the ratings of the ``.dat``
   labels. Affect in the face, with ``s = (rating - 5) / 4``: AU12 (lip corner
   puller) and AU06 (cheek raiser) rise with valence, AU04 (brow lowerer)
   falls with it; AU05 (upper lid raiser), AU25 and AU26 (lips part, jaw
   drop) rise with arousal — each ``0.6·effect·s`` on top of per-subject
   baselines, per-trial offsets (σ 0.3) and drifts, and frame noise
   (σ 0.25), so the face tells valence and arousal only in part (a trial's
   mean AU12 correlates about 0.8 with valence within a subject). Gaze and
   head pose are slow random walks with no affect. About 5 % of frames have
   ``success`` 0 (features 0, as OpenFace writes them) and about 5 % a low
   ``confidence`` (0.3–0.7). The face stream has its own random generator,
   so the ``.dat`` files are the same with or without faces.
   Which subjects have faces follows the DEAP release with
   ``face_layout="deap"`` (this function's default; ``--synthetic`` runs
   write ``complete`` unless ``synthetic_face_layout: deap`` is set, as the
   ``dfcn_deap`` preset does, so the README demo keeps its 32 subjects): frontal face video exists for participants 1–22 only, and
   "for participants 3, 5, 11 and 14, one or several of the last trials are
   missing" (DEAP's own description of its face videos); how many is not
   stated there, so the writer leaves out the last 1 (s03, s05, s14) and the
   last 3 (s11) presentation trials' CSVs. The loader's completeness rule then
   keeps the 18 subjects Zheng et al. 2023 (§3) ran on: 1, 2, 4, 6–10, 12, 13,
   15–22. ``face_layout="complete"`` writes every trial of every subject.

Files: ``data_preprocessed_python/sXX.dat`` written as Python-2 pickles (see
:mod:`legacy_pickle`), ``data`` float32 ``(trials, 40, samples)``, ``labels``
float64 ``(trials, 4)`` with ratings in [1, 9] rounded to 2 decimals. Every
file is written to a temporary name and renamed, so a crash leaves no partial
``sXX.dat``.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from moodops.components.datasets.deap.deap import (
    BASELINE_S,
    EEG_CHANNELS,
    FACE_AUS,
    FACE_DIR,
    FACE_GAZE,
    FACE_GAZE_ANGLES,
    FACE_POSE,
    RATINGS_FILE,
    SFREQ,
)
from moodops.components.datasets.formats.legacy_pickle import dump_py2
from moodops.components.errors import ConfigError, invalid_choice

# (label index, band (lo, hi) Hz, channels, sign, weight)
_EFFECTS = (
    (0, (8.0, 13.0), ("Fp2", "AF4", "F4", "F8", "FC6"), +1, 1.0),
    (0, (8.0, 13.0), ("Fp1", "AF3", "F3", "F7", "FC5"), -1, 1.0),
    (0, (31.0, 45.0), ("T7", "T8", "CP5", "CP6"), +1, 0.8),
    (1, (14.0, 30.0), ("C3", "Cz", "C4", "CP1", "CP2", "P3", "Pz", "P4"), +1, 1.0),
    (1, (8.0, 13.0), ("PO3", "PO4", "O1", "Oz", "O2"), -1, 1.0),
    (2, (4.0, 8.0), ("Fz", "FC1", "FC2", "AF3", "AF4"), +1, 0.8),
    (3, (14.0, 30.0), ("Fz", "F3", "F4"), +1, 0.5),
)
_BANDS = ((1, 4), (4, 8), (8, 14), (14, 31), (31, 50))
# (label index, channels): networks whose coupling rises with the rating (see the module docstring, 2.)
_COUPLING = (
    (0, ("Fp1", "Fp2", "AF3", "AF4", "F3", "Fz", "F4")),
    (1, ("P3", "Pz", "P4", "PO3", "PO4", "O1", "O2")),
)
_COUPLING_SLOPE = 0.06


def _bump(freqs: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """A smooth band indicator (raised-cosine edges of 1 Hz)."""
    edge = 1.0
    rise = np.clip((freqs - (lo - edge)) / edge, 0, 1)
    fall = np.clip(((hi + edge) - freqs) / edge, 0, 1)
    return (0.5 - 0.5 * np.cos(np.pi * rise)) * (0.5 - 0.5 * np.cos(np.pi * fall))


def _pink(rng: np.random.Generator, shape: tuple[int, ...], n_times: int, gain: np.ndarray | None = None) -> np.ndarray:
    """1/f noise of unit-ish RMS; ``gain`` (broadcast to the rfft) shapes it further."""
    freqs = np.fft.rfftfreq(n_times, 1 / SFREQ)
    spectrum = rng.standard_normal((*shape, len(freqs)), dtype=np.float32) + 1j * rng.standard_normal(
        (*shape, len(freqs)), dtype=np.float32
    )
    amp = 1.0 / np.sqrt(np.maximum(freqs, 1.0))
    amp[0] = 0.0
    amp = amp.astype(np.float32)
    spectrum *= amp if gain is None else amp * gain
    x = np.fft.irfft(spectrum, n=n_times, axis=-1)
    # irfft of unit complex normal bins has std 2·sqrt(Σ amp²)/n: scale that to 1.
    return (x * (n_times / (2.0 * np.sqrt((amp.astype(np.float64) ** 2).sum())))).astype(np.float32)


def _ratings(rng: np.random.Generator, n: int) -> np.ndarray:
    """Ratings in [1, 9] with both halves represented (like DEAP's spread)."""
    r = rng.uniform(1.0, 9.0, size=(n, 4))
    return np.round(r, 2)


def _peripheral(rng: np.random.Generator, n_trials: int, n_times: int) -> np.ndarray:
    t = np.arange(n_times) / SFREQ
    out = np.empty((n_trials, 8, n_times), dtype=np.float32)
    for k in range(n_trials):
        blinks = np.zeros(n_times)
        for onset in rng.uniform(0, t[-1], size=rng.integers(10, 30)):
            blinks += 150 * np.exp(-0.5 * ((t - onset) / 0.08) ** 2)
        walk = np.cumsum(rng.standard_normal((3, n_times)), axis=1) / np.sqrt(SFREQ)
        out[k, 0] = 20 * walk[0] + rng.normal(0, 5, n_times)
        out[k, 1] = blinks + 20 * walk[1]
        out[k, 2] = rng.normal(0, 10, n_times)
        out[k, 3] = rng.normal(0, 10, n_times)
        out[k, 4] = 1500 + 50 * walk[2]
        out[k, 5] = 300 * np.sin(2 * np.pi * rng.uniform(0.2, 0.35) * t)
        out[k, 6] = 800 * np.sin(2 * np.pi * rng.uniform(1.0, 1.5) * t) ** 8
        out[k, 7] = 32.0 + 0.01 * t
    return out


def synthesize_subject(
    subject: int, n_trials: int = 40, seconds: float = 60.0, seed: int = 0, effect: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """One subject → (data float32 (trials, 40, samples), labels float64 (trials, 4))."""
    rng = np.random.default_rng([seed, subject])
    n_base = int(BASELINE_S * SFREQ)
    n_stim = int(round(seconds * SFREQ))
    n_ch = len(EEG_CHANNELS)
    ch_index = {c: i for i, c in enumerate(EEG_CHANNELS)}
    labels = _ratings(rng, n_trials)
    s = ((labels - 5.0) / 4.0).astype(np.float32)

    beta = 0.35 * effect
    subject_gain = rng.uniform(0.6, 1.4)
    shift = rng.uniform(-1.0, 1.0)
    freqs = np.fft.rfftfreq(n_stim, 1 / SFREQ).astype(np.float32)
    log_gain = np.zeros((n_trials, n_ch, len(freqs)), dtype=np.float32)
    for label_k, (lo, hi), channels, sign, weight in _EFFECTS:
        bump = _bump(freqs, lo + shift, hi + shift).astype(np.float32)
        idx = [ch_index[c] for c in channels]
        amount = beta * subject_gain * weight * sign * s[:, label_k]
        log_gain[:, idx, :] += amount[:, None, None] * bump[None, None, :]
    # Subject-specific band-power offsets (fixed over trials) make LOSO harder.
    for lo, hi in _BANDS:
        offsets = rng.normal(0.0, 0.25, size=n_ch).astype(np.float32)
        log_gain += offsets[None, :, None] * _bump(freqs, lo, hi)[None, None, :]
    stim = _pink(rng, (n_trials, n_ch), n_stim, np.exp(log_gain))
    coupling_rng = np.random.default_rng([seed, subject, 11])  # its own stream: the draws above stay the same
    for label_k, channels in _COUPLING:
        rho0 = coupling_rng.uniform(0.15, 0.35)
        rho = np.clip(rho0 + _COUPLING_SLOPE * effect * subject_gain * s[:, label_k], 0.0, 0.95).astype(np.float32)
        shared = _pink(coupling_rng, (n_trials,), n_stim)  # (trials, samples), the background's 1/f spectrum
        idx = [ch_index[c] for c in channels]
        stim[:, idx] = (np.sqrt(1.0 - rho)[:, None, None] * stim[:, idx]
                        + np.sqrt(rho)[:, None, None] * shared[:, None, :])
    base = _pink(rng, (n_trials, n_ch), n_base)
    eeg = np.concatenate([base, stim], axis=-1)
    mixing = np.eye(n_ch, dtype=np.float32) + rng.normal(0, 0.15 / np.sqrt(n_ch), (n_ch, n_ch)).astype(np.float32)
    channel_gain = np.exp(rng.normal(0.0, 0.2, n_ch)).astype(np.float32)
    eeg = np.einsum("ij,tjs->tis", mixing * channel_gain[:, None] * 15.0, eeg, optimize=True)

    data = np.empty((n_trials, 40, n_base + n_stim), dtype=np.float32)
    data[:, :n_ch] = eeg
    data[:, n_ch:] = _peripheral(rng, n_trials, n_base + n_stim)
    return data, labels


#: OpenFace writes the gaze angles beside the gaze vectors.
_GAZE_ALL = (*FACE_GAZE, *FACE_GAZE_ANGLES)
#: DEAP's face videos: participants 1-22; these miss their last presentation trials (count: our choice).
FACE_VIDEO_SUBJECTS = tuple(range(1, 23))
FACE_MISSING_LAST_TRIALS = {3: 1, 5: 1, 11: 3, 14: 1}
FACE_LAYOUTS = ("deap", "complete")

#: OpenFace columns written besides the features: frame bookkeeping first, AU presence last.
_FACE_HEAD = ("frame", "face_id", "timestamp", "confidence", "success")
_FACE_AU_C = tuple(f"AU{n:02d}_c" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45))
# (AU column, label index, sign): valence 0, arousal 1
_FACE_EFFECTS = (("AU12_r", 0, +1), ("AU06_r", 0, +1), ("AU04_r", 0, -1),
                 ("AU05_r", 1, +1), ("AU25_r", 1, +1), ("AU26_r", 1, +1))


def synthesize_face(rng: np.random.Generator, rating: np.ndarray, seconds: float, fps: float, effect: float,
                    au_base: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """One trial's OpenFace table → (column names, values (frames, columns))."""
    n = int(np.floor(seconds * fps + 1e-9))
    columns = (*_FACE_HEAD, *_GAZE_ALL, *FACE_POSE, *FACE_AUS, *_FACE_AU_C)
    col = {c: i for i, c in enumerate(columns)}
    table = np.zeros((n, len(columns)))
    table[:, col["frame"]] = np.arange(1, n + 1)
    table[:, col["timestamp"]] = np.round(np.arange(n) / fps, 3)
    table[:, col["confidence"]] = rng.uniform(0.85, 0.98, n)
    low = rng.random(n) < 0.05
    table[low, col["confidence"]] = rng.uniform(0.3, 0.7, int(low.sum()))
    success = rng.random(n) >= 0.05
    table[:, col["success"]] = success
    walk = np.cumsum(rng.normal(0.0, 1.0, (n, len(_GAZE_ALL) + len(FACE_POSE))), axis=0) / np.sqrt(max(fps, 1.0))
    gaze = np.array([0.0, 0.1, -0.99, -0.05, 0.1, -0.99, 0.0, 0.1]) + 0.02 * walk[:, :len(_GAZE_ALL)]
    pose = np.array([20.0, 10.0, 550.0, 0.1, 0.0, 0.0]) + np.array([2.0, 2.0, 5.0, 0.02, 0.02, 0.02]) * walk[
        :, len(_GAZE_ALL):]
    s = (np.asarray(rating, dtype=np.float64) - 5.0) / 4.0
    aus = au_base[None, :] + rng.normal(0.0, 0.3, len(FACE_AUS))[None, :] + rng.normal(0.0, 0.25, (n, len(FACE_AUS)))
    aus += np.linspace(0.0, 1.0, n)[:, None] * rng.normal(0.0, 0.1, len(FACE_AUS))[None, :]
    for name, label_k, sign in _FACE_EFFECTS:
        aus[:, FACE_AUS.index(name)] += 0.6 * effect * sign * s[label_k]
    aus = np.clip(aus, 0.0, 5.0)
    first = col[_GAZE_ALL[0]]
    table[:, first:first + len(_GAZE_ALL)] = gaze
    first = col[FACE_POSE[0]]
    table[:, first:first + len(FACE_POSE)] = pose
    first = col[FACE_AUS[0]]
    table[:, first:first + len(FACE_AUS)] = aus
    first = col[_FACE_AU_C[0]]
    table[:, first:first + len(_FACE_AU_C)] = rng.random((n, len(_FACE_AU_C))) < 0.3
    table[~success, col["confidence"]:] = 0.0  # OpenFace zeroes a failed frame (confidence included)
    table[~success, col["success"]] = 0.0
    return columns, table


def _write_text(target: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_face_subject(root: Path, subject: int, labels: np.ndarray, seconds: float, seed: int, effect: float,
                       fps: float, missing_last: int = 0) -> list[list[str]]:
    """Write ``root/face/sXX/sXX_trialYY.csv`` for one subject (all but the last ``missing_last``
    presentation trials); return its participant_ratings rows (every trial: the ratings exist)."""
    rng = np.random.default_rng([seed, subject, 7])
    n_trials = len(labels)
    order = rng.permutation(n_trials)  # order[t]: the .dat row shown as presentation trial t + 1
    folder = root / FACE_DIR / f"s{subject:02d}"
    if missing_last < n_trials:  # a participant without face video has ratings only
        folder.mkdir(parents=True, exist_ok=True)
    au_base = rng.uniform(0.2, 1.2, len(FACE_AUS))
    rows = []
    start = int(rng.integers(1_000_000, 5_000_000))
    for t, row in enumerate(order):
        columns, table = synthesize_face(rng, labels[row], seconds, fps, effect, au_base)
        integer = {"frame", "face_id", "success"} | set(_FACE_AU_C)
        fmt = ["%d" if c in integer else "%.3f" if c in ("timestamp",) else "%.5f" for c in columns]
        if t < n_trials - missing_last:  # the draws above happen either way: the other trials stay the same
            lines = [", ".join(columns)]
            lines.extend(", ".join(f % v for f, v in zip(fmt, values)) for values in table)
            _write_text(folder / f"s{subject:02d}_trial{t + 1:02d}.csv", "\n".join(lines) + "\n")
        v, a, d, liking = labels[row]
        rows.append([str(subject), str(t + 1), str(row + 1), str(start), f"{v:g}", f"{a:g}", f"{d:g}",
                     f"{liking:g}", str(int(rng.integers(1, 6)))])
        start += int(rng.integers(70_000_000, 90_000_000))
    return rows


def write_synthetic_deap(
    out: str | Path,
    n_subjects: int = 32,
    n_trials: int = 40,
    seconds: float = 60.0,
    seed: int = 0,
    effect: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
    with_face: bool = False,
    face_fps: float = 10.0,
    face_layout: str = "deap",
) -> Path:
    """Write ``out/data_preprocessed_python/s01.dat …`` and return that folder.

    ``with_face`` also writes ``out/face/sXX/sXX_trialYY.csv`` (OpenFace format,
    ``face_fps`` frames per second) and ``out/participant_ratings.csv``, for the
    subjects and trials ``face_layout`` says (see the module docstring).
    """
    if face_layout not in FACE_LAYOUTS:
        raise ConfigError(invalid_choice("face_layout", face_layout, FACE_LAYOUTS))
    if not 1 <= n_subjects <= 99:
        raise ConfigError(f"The 'subjects' parameter must be an int in [1, 99]. Got {n_subjects} instead.")
    if n_trials < 1:
        raise ConfigError(f"The 'trials' parameter must be >= 1. Got {n_trials} instead.")
    if seconds < 1.0:
        raise ConfigError(f"The 'seconds' parameter must be >= 1. Got {seconds} instead.")
    if with_face and not face_fps > 0:
        raise ConfigError(f"The 'face_fps' parameter must be > 0. Got {face_fps} instead.")
    top = Path(out).expanduser()
    folder = top / "data_preprocessed_python"
    folder.mkdir(parents=True, exist_ok=True)
    ratings = [["Participant_id", "Trial", "Experiment_id", "Start_time", "Valence", "Arousal", "Dominance",
                "Liking", "Familiarity"]]
    for k, subject in enumerate(range(1, n_subjects + 1)):
        data, labels = synthesize_subject(subject, n_trials, seconds, seed, effect)
        if with_face:
            if face_layout == "complete":
                missing = 0
            elif subject in FACE_VIDEO_SUBJECTS:
                missing = min(FACE_MISSING_LAST_TRIALS.get(subject, 0), n_trials - 1)
            else:
                missing = n_trials
            ratings.extend(write_face_subject(top, subject, labels, seconds, seed, effect, face_fps, missing))
        target = folder / f"s{subject:02d}.dat"
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                dump_py2({"labels": labels, "data": data}, f)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if progress is not None:
            progress(k + 1, n_subjects)
    if with_face:
        _write_text(top / RATINGS_FILE, "".join(",".join(row) + "\n" for row in ratings))
    return folder

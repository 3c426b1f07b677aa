"""Synthetic EEG Motor Movement/Imagery data in the release's real layout.

Files ``ROOT/S###/S###R##.edf`` (EDF+C, 16-bit, 1-s records) with the 64
PhysioNet signal labels in the release's order and spelling (``Fc5.``,
``Cz..``, …), 160 Hz, µV. Subjects are numbered from 901 (``S901/``,
``S902/``, …, ``S1000/`` past 999): the published list has subjects 1–109
only, so a synthetic file can never pass for (or be checked against) a
published one — the adapter reads them as *unlisted*.

Events follow the real runs: ``T0`` (rest, 4.2 s) alternating with ``T1``
or ``T2`` (4.1 s; each pair of tasks one T1 and one T2 in a random
order), onsets at 0, 4.2, 8.3, …,
the last one cut at the end of the run; runs 1 and 2 (baseline, eyes open / closed) are one ``T0`` over the whole
run.

Signal, per channel, in µV:

1. Background: 1/f^α noise (α 1.0–1.6 per subject, flat below 1 Hz) mixed
   between neighbouring electrodes (Gaussian kernel on approximate 10-10
   positions: volume conduction), about 15 µV RMS, channel gains 0.8–1.2.
2. Posterior alpha (subject frequency 9–11 Hz) around Oz/POz, about 8 µV,
   twice as strong in run 2 (eyes closed).
3. Sensorimotor mu (10–12.5 Hz) and beta (18–24 Hz) rhythms from three
   sources at C3, C4 and Cz, desynchronised (event-related
   desynchronisation, ERD) while a movement is executed or imagined:
   runs 3/4/7/8/11/12 — ``T1`` left fist → C4, ``T2`` right fist → C3;
   runs 5/6/9/10/13/14 — ``T1`` both fists → C3 and C4, ``T2`` both feet →
   Cz. Depth ``0.5 · effect · g_subject`` (``g_subject`` in 0.7–1.3, at most
   0.9), 0.6 × that in imagery runs (4, 6, 8, 10, 12, 14), ramped over
   0.5 s.
4. 60 Hz mains interference (0.5–2 µV per channel), as in the US
   recordings.

Everything is drawn from generators seeded by ``(seed, subject, run)``, so
the same arguments write byte-identical files.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from moodops.components.datasets.formats.edf import write_edf
from moodops.components.datasets.eegmmidb.eegmmidb import (
    CHANNELS,
    EDF_LABELS,
    FIRST_SYNTHETIC_SUBJECT,
    RUNS,
    SFREQ,
    run_file,
)
from moodops.components.errors import ConfigError

REST_S = 4.2
TASK_S = 4.1
IMAGERY_RUNS = (4, 6, 8, 10, 12, 14)
FISTS_FEET_RUNS = (5, 6, 9, 10, 13, 14)
BASELINE_RUNS = (1, 2)
EYES_CLOSED_RUN = 2
LINE_HZ = 60.0

_ROW_Y = {"FP": 0.8, "AF": 0.6, "F": 0.4, "FC": 0.2, "FT": 0.2, "C": 0.0, "T": 0.0, "CP": -0.2, "TP": -0.2,
          "P": -0.4, "PO": -0.6, "O": -0.8, "I": -1.0}
_NAME_RE = re.compile(r"^([A-Z]+?)(Z|\d+)$")


def electrode_positions(names: Iterable[str] = CHANNELS) -> np.ndarray:
    """Approximate unit-sphere positions of 10-10 electrodes, shape (n, 3).

    Azimuthal-equidistant layout: rows 10 % apart on the midline (Cz at the
    vertex), columns 10 % apart to each side (odd left, even right), so
    ``T7``/``T8`` are 72° from the vertex and ``T9``/``T10``, ``Iz`` 90°.
    """
    out = []
    for name in names:
        m = _NAME_RE.match(name)
        if m is None or m.group(1) not in _ROW_Y:
            raise ConfigError(f"no 10-10 position for electrode '{name}'")
        column = m.group(2)
        x = 0.0 if column == "Z" else (int(column) + 1) // 2 * 0.2 * (1 if int(column) % 2 == 0 else -1)
        y = _ROW_Y[m.group(1)]
        theta, phi = np.hypot(x, y) * np.pi / 2, np.arctan2(y, x)
        out.append((np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)))
    return np.asarray(out)


def _spatial(positions: np.ndarray, centre: np.ndarray, width: float) -> np.ndarray:
    """A Gaussian scalp pattern around ``centre`` (peak 1)."""
    return np.exp(-np.sum((positions - centre) ** 2, axis=1) / (2 * width ** 2))


def _shaped_noise(rng: np.random.Generator, n_rows: int, n_times: int, amplitude: Callable[[np.ndarray], np.ndarray]
                  ) -> np.ndarray:
    """Gaussian noise with the spectral amplitude ``amplitude(freqs)``, unit RMS per row."""
    freqs = np.fft.rfftfreq(n_times, 1.0 / SFREQ)
    spectrum = rng.standard_normal((n_rows, len(freqs))) + 1j * rng.standard_normal((n_rows, len(freqs)))
    x = np.fft.irfft(spectrum * amplitude(freqs), n=n_times, axis=1)
    return x / np.maximum(x.std(axis=1, keepdims=True), 1e-12)


def _narrowband(rng: np.random.Generator, n_times: int, centre: float, width: float) -> np.ndarray:
    """A rhythm: noise in a Gaussian band around ``centre`` Hz (waxing and waning), unit RMS."""
    return _shaped_noise(rng, 1, n_times, lambda f: np.exp(-0.5 * ((f - centre) / width) ** 2))[0]


def run_events(rng: np.random.Generator, run: int, seconds: float) -> tuple[tuple[float, float, str], ...]:
    """The T0/T1/T2 annotations of one run, as the real runs time them."""
    if run in BASELINE_RUNS:
        return ((0.0, float(seconds), "T0"),)
    n_pairs = int(seconds // (2 * (REST_S + TASK_S))) + 1
    tasks = [task for _ in range(n_pairs) for task in rng.permutation(["T1", "T2"])]
    events, onset = [], 0.0
    for task in tasks:
        for description, duration in (("T0", REST_S), (str(task), TASK_S)):
            if onset >= seconds - 0.05:
                return tuple(events)
            events.append((onset, round(min(duration, seconds - onset), 1), description))
            onset = round(onset + duration, 1)
    return tuple(events)


def _erd_targets(run: int, description: str) -> tuple[str, ...]:
    """The sensorimotor sources an event desynchronises."""
    if run in BASELINE_RUNS or description == "T0":
        return ()
    if run in FISTS_FEET_RUNS:
        return ("C3", "C4") if description == "T1" else ("CZ",)
    return ("C4",) if description == "T1" else ("C3",)


def synthesize_run(subject: int, run: int, n_times: int, seed: int = 0, effect: float = 1.0
                   ) -> tuple[np.ndarray, tuple[tuple[float, float, str], ...]]:
    """One run's EEG in µV, shape (64, n_times), and its annotations."""
    positions = electrode_positions()
    subject_rng = np.random.default_rng([seed, subject, 0])
    alpha_exponent = subject_rng.uniform(1.0, 1.6)
    alpha_hz = subject_rng.uniform(9.0, 11.0)
    mu_hz = subject_rng.uniform(10.0, 12.5)
    beta_hz = subject_rng.uniform(18.0, 24.0)
    gain = subject_rng.uniform(0.8, 1.2, len(CHANNELS))
    depth = min(0.9, 0.5 * effect * subject_rng.uniform(0.7, 1.3)) * (0.6 if run in IMAGERY_RUNS else 1.0)
    line = subject_rng.uniform(0.5, 2.0, len(CHANNELS))

    rng = np.random.default_rng([seed, subject, run])
    seconds = n_times / SFREQ
    events = run_events(rng, run, seconds)
    background = _shaped_noise(rng, len(CHANNELS), n_times,
                               lambda f: np.maximum(f, 1.0) ** (-alpha_exponent / 2))
    distance2 = np.sum((positions[:, None] - positions[None]) ** 2, axis=2)
    mixing = np.exp(-distance2 / (2 * 0.2 ** 2))
    x = (mixing / mixing.sum(axis=1, keepdims=True)) @ background
    x /= np.maximum(x.std(axis=1, keepdims=True), 1e-12) / 15.0

    index = {name: i for i, name in enumerate(CHANNELS)}
    alpha_gain = 2.0 if run == EYES_CLOSED_RUN else 1.0
    posterior = _spatial(positions, (positions[index["OZ"]] + positions[index["POZ"]]) / 2, 0.3)
    x += 8.0 * alpha_gain * posterior[:, None] * _narrowband(rng, n_times, alpha_hz, 0.8)[None]

    t = np.arange(n_times) / SFREQ
    ramp = np.hanning(int(0.5 * SFREQ))
    ramp /= ramp.sum()
    for source in ("C3", "C4", "CZ"):
        active = np.zeros(n_times)
        for onset, duration, description in events:
            if source in _erd_targets(run, description):
                active[(t >= onset) & (t < onset + duration)] = 1.0
        envelope = 1.0 - depth * np.convolve(active, ramp, mode="same")
        rhythm = 6.0 * _narrowband(rng, n_times, mu_hz, 0.7) + 3.0 * _narrowband(rng, n_times, beta_hz, 1.5)
        x += _spatial(positions, positions[index[source]], 0.2)[:, None] * (envelope * rhythm)[None]

    x += line[:, None] * np.sin(2 * np.pi * LINE_HZ * t + rng.uniform(0, 2 * np.pi))[None]
    return gain[:, None] * x, events


def write_synthetic_eegmmidb(
    root: str | Path,
    subjects: int = 2,
    runs: Iterable[int] = range(3, 15),
    seconds: float = 60.0,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    effect: float = 1.0,
) -> Path:
    """Write ``root/S901/S901R03.edf`` … for ``subjects`` synthetic subjects; return ``root``.

    Parameters
    ----------
    root : path
        The folder to write the ``S###/`` folders into.
    subjects : int
        How many subjects, numbered 901, 902, … (``S1000/`` after ``S999/``).
    runs : iterable of int
        Run numbers (1–14) to write for each subject.
    seconds : float
        Run length, rounded to whole seconds (EDF records are 1 s).
    seed : int
        Random seed; the same arguments write the same files.
    progress : callable, optional
        Called as ``progress(done, subjects)`` after each subject.
    effect : float
        Scales the depth of the movement-related desynchronisation.
    """
    if int(subjects) < 1:
        raise ConfigError(f"The 'subjects' parameter must be at least 1. Got {subjects} instead.")
    runs = sorted({int(r) for r in runs})
    if not runs or any(r not in RUNS for r in runs):
        raise ConfigError(f"The 'runs' parameter must be run numbers in 1-14. Got {runs} instead.")
    n_seconds = int(round(float(seconds)))
    if n_seconds < 1:
        raise ConfigError(f"The 'seconds' parameter must be at least 1. Got {seconds} instead.")
    if effect < 0:
        raise ConfigError(f"The 'effect' parameter must be >= 0. Got {effect} instead.")
    base = Path(root).expanduser()
    n_times = n_seconds * int(SFREQ)
    for done, subject in enumerate(range(FIRST_SYNTHETIC_SUBJECT, FIRST_SYNTHETIC_SUBJECT + int(subjects)), 1):
        for run in runs:
            data, events = synthesize_run(subject, run, n_times, seed, effect)
            write_edf(base / run_file(subject, run), data, SFREQ, EDF_LABELS, events)
        if progress is not None:
            progress(done, int(subjects))
    return base

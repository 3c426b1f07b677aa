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

Face (modality ``face``, read only when requested). DEAP's frontal face
videos, run through OpenFace ``FeatureExtraction``, give one CSV per trial:
``face/sXX/sXX_trialYY.csv`` beside ``data_preprocessed_python/``, where YY
is the *presentation* order. The ``.dat`` rows are in video (Experiment_id)
order, so DEAP's ``participant_ratings.csv`` (in the root or in
``metadata_csv/``; columns ``Participant_id, Trial, Experiment_id, …``) maps
them: participant p saw video Experiment_id as presentation Trial. Of each
CSV (header names stripped of OpenFace's leading spaces) the columns
:data:`FACE_FEATURES` (Zheng et al. 2023's 29: head position and rotation,
the two gaze direction vectors, 17 AU intensities ``AU*_r``) are averaged per EEG feature window: window k holds the frames
with ``timestamp - face_offset_s`` in ``[k·w, (k+1)·w)``, ``w`` the window
length (``window_s`` rounded to whole samples, as the EEG windows are cut),
using only frames with ``success`` 1 and ``confidence >= face_confidence``.
A window without such a frame is NaN (imputed later on training data).
``extra["face"]`` is ``(n_windows, 29)`` float32 with ``n_windows`` the
trial's EEG window count. Subjects whose face data are incomplete (no folder,
a trial's CSV missing or unreadable, no rows in the ratings file) are left
out with a warning; a CSV without a needed column is a :class:`DataError`.
"""
from __future__ import annotations

import csv
import logging
import math
import os
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from moodops.components.datasets.base import Dataset
from moodops.components.datasets.missing import NAN_REFUSED, missing_counts
from moodops.components.datasets.formats.safe_pickle import load_pickle
from moodops.components.errors import ConfigError, DataError, invalid_choice
from moodops.components.types import Recording

logger = logging.getLogger(__name__)

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
FACE_DIR = "face"
RATINGS_FILE = "participant_ratings.csv"
RATINGS_COLUMNS = ("Participant_id", "Trial", "Experiment_id")
#: OpenFace 2 columns. The face features are Zheng et al. 2023's (§3: "3 face positions relative to the camera,
#: 3 head position, 6 eye gaze directions and 17 facial action units", 29 in all): the head's location
#: relative to the camera (pose_Tx/y/z, mm), its rotation (pose_Rx/y/z), the two eyes' gaze direction vectors
#: (gaze_0_*, gaze_1_*) and the 17 AU intensities (AU*_r). OpenFace's gaze_angle_x/y, which it derives from
#: the two gaze vectors, were read as well until 2026-12 (31 features); they are not among the paper's.
FACE_GAZE = ("gaze_0_x", "gaze_0_y", "gaze_0_z", "gaze_1_x", "gaze_1_y", "gaze_1_z")
FACE_GAZE_ANGLES = ("gaze_angle_x", "gaze_angle_y")  # written by OpenFace (and the synthetic writer), not read
FACE_POSE = ("pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz")
FACE_AUS = tuple(f"AU{n:02d}_r" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45))
FACE_FEATURES = (*FACE_POSE, *FACE_GAZE, *FACE_AUS)
FACE_FRAME_COLUMNS = ("timestamp", "confidence", "success")


def read_openface_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One OpenFace ``FeatureExtraction`` CSV → (frames (N, 3): timestamp, confidence, success;
    features (N, len(FACE_FEATURES)))."""
    try:
        with path.open("r", newline="", encoding="utf-8") as f:
            header = f.readline()
            body = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read face CSV ({e})") from None
    names = [h.strip() for h in header.strip().split(",")]
    index = {n: i for i, n in enumerate(names)}
    wanted = (*FACE_FRAME_COLUMNS, *FACE_FEATURES)
    for column in wanted:
        if column not in index:
            raise DataError(f"{path}: face CSV has no column '{column}' (an OpenFace FeatureExtraction CSV "
                            f"with gaze, pose and AU intensities is expected)")
    if not body.strip():
        table = np.empty((0, len(wanted)))
    else:
        try:
            table = np.loadtxt(body.splitlines(), delimiter=",", usecols=[index[c] for c in wanted],
                               ndmin=2, dtype=np.float64)
        except ValueError as e:
            raise DataError(f"{path}: face CSV has a non-numeric or short row ({e})") from None
    n_frame = len(FACE_FRAME_COLUMNS)
    return table[:, :n_frame], table[:, n_frame:]


def face_window_means(frames: np.ndarray, values: np.ndarray, n_windows: int, window_len: float,
                      min_confidence: float = 0.8, offset_s: float = 0.0) -> np.ndarray:
    """Average per window the good frames of one trial → (n_windows, D) float32, NaN where none.

    Window k holds frames with ``timestamp - offset_s`` in ``[k·window_len, (k+1)·window_len)``;
    good frames have ``success`` 1 and ``confidence >= min_confidence``. Non-finite
    values are left out of their column's mean.
    """
    t = frames[:, 0] - offset_s
    good = (frames[:, 2] >= 0.5) & (frames[:, 1] >= min_confidence) & np.isfinite(t)
    k = np.floor(np.where(good, t, -1.0) / window_len).astype(np.int64)
    keep = good & (k >= 0) & (k < n_windows)
    k, v = k[keep], values[keep]
    finite = np.isfinite(v)
    sums = np.zeros((n_windows, values.shape[1]))
    counts = np.zeros((n_windows, values.shape[1]))
    np.add.at(sums, k, np.where(finite, v, 0.0))
    np.add.at(counts, k, finite)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = sums / counts
    out[counts == 0] = np.nan
    return out.astype(np.float32)


def read_ratings(path: Path) -> dict[int, dict[int, int]]:
    """DEAP's ``participant_ratings.csv`` → {participant: {presentation trial: Experiment_id}}."""
    try:
        with path.open("r", newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ratings file ({e})") from None
    if not rows:
        raise DataError(f"{path}: ratings file is empty")
    header = [h.strip() for h in rows[0]]
    for column in RATINGS_COLUMNS:
        if column not in header:
            raise DataError(f"{path}: ratings file has no column '{column}' (columns: {', '.join(header)})")
    idx = [header.index(c) for c in RATINGS_COLUMNS]
    out: dict[int, dict[int, int]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            p, trial, video = (int(float(row[i])) for i in idx)
        except (ValueError, IndexError):
            raise DataError(f"{path}: line {line}: Participant_id, Trial and Experiment_id must be whole "
                            f"numbers, got {row}") from None
        trials = out.setdefault(p, {})
        if trial in trials:
            raise DataError(f"{path}: line {line}: participant {p} has presentation Trial {trial} twice")
        if video in trials.values():
            raise DataError(f"{path}: line {line}: participant {p} has Experiment_id {video} twice")
        trials[trial] = video
    return out


class Deap(Dataset):
    """DEAP's ``data_preprocessed_python`` release.

    Parameters
    ----------
    root : path
        The folder holding ``data_preprocessed_python/`` or that folder itself.
    subjects : list of int, optional
        Subject numbers (1–32); all present subjects by default.
    modalities : sequence of str
        ``face`` adds ``extra["face"]`` (see the module docstring) and leaves
        out subjects without complete face data.
    threshold : float
        Ratings are split into low/high at this value (5).
    comparison : {">", ">="}
        Whether a rating equal to ``threshold`` counts as high (``">="``).
    window_s : float
        Length of the EEG feature windows the face features are averaged
        over (1 s); only used for ``face``.
    face_confidence : float
        OpenFace frames below this confidence are not used (0.8).
    face_offset_s : float
        Seconds of face video before the stimulus starts (0).
    """

    name: ClassVar[str] = "deap"
    eeg_channels: ClassVar[tuple[str, ...]] = EEG_CHANNELS
    eeg_sfreq: ClassVar[float | None] = SFREQ
    modalities: ClassVar[tuple[str, ...]] = ("eeg", "raw_eeg", "peripheral", "face")
    label_names: ClassVar[tuple[str, ...]] = LABEL_NAMES
    targets: ClassVar[tuple[str, ...]] = TARGETS

    option_names: ClassVar[tuple[str, ...]] = ("threshold", "comparison", "window_s")

    def __init__(self, root: str | Path, subjects=None, modalities=(), threshold: float = 5.0,
                 comparison: str = ">", window_s: float | None = 1.0, face_confidence: float = 0.8,
                 face_offset_s: float = 0.0) -> None:
        super().__init__(root, subjects, modalities)
        if comparison not in COMPARISONS:
            raise ConfigError(invalid_choice("comparison", comparison, COMPARISONS))
        if not 1.0 <= float(threshold) <= 9.0:
            raise ConfigError(f"The 'threshold' parameter must be in [1, 9]. Got {threshold} instead.")
        window_s = 1.0 if window_s is None else float(window_s)
        if not math.isfinite(window_s) or int(round(window_s * SFREQ)) < 2:
            raise ConfigError(f"The 'window_s' parameter must give at least 2 samples at {SFREQ:g} Hz. "
                              f"Got {window_s} instead.")
        if not 0.0 <= float(face_confidence) <= 1.0:
            raise ConfigError(f"The 'face_confidence' parameter must be in [0, 1]. Got {face_confidence} instead.")
        self.threshold = float(threshold)
        self.comparison = comparison
        self.window_s = window_s
        self.face_confidence = float(face_confidence)
        self.face_offset_s = float(face_offset_s)
        self._available: dict[int, Path] | None = None
        self._ratings: dict[int, dict[int, int]] | None = None
        self._face_problems: dict[int, str | None] = {}
        self._warned: set[int] = set()

    @property
    def data_dir(self) -> Path:
        nested = self.root / "data_preprocessed_python"
        return nested if nested.is_dir() else self.root

    @property
    def top_dir(self) -> Path:
        """The folder holding ``data_preprocessed_python/`` (and ``face/``)."""
        if (self.root / "data_preprocessed_python").is_dir() or self.root.name != "data_preprocessed_python":
            return self.root
        return self.root.parent

    @classmethod
    def present_modalities(cls, root: str | Path) -> tuple[str, ...]:
        """Without a ``face/`` folder beside ``data_preprocessed_python/`` there is no face modality."""
        has_face = (cls(root).top_dir / FACE_DIR).is_dir()
        return tuple(m for m in cls.modalities if m != "face" or has_face)

    @property
    def wants_face(self) -> bool:
        return "face" in self.requested_modalities

    def face_dir(self, subject: int) -> Path:
        return self.top_dir / FACE_DIR / f"s{subject:02d}"

    def face_file(self, subject: int, presentation_trial: int) -> Path:
        return self.face_dir(subject) / f"s{subject:02d}_trial{presentation_trial:02d}.csv"

    @property
    def ratings_path(self) -> Path:
        """``participant_ratings.csv`` in the root, or in ``metadata_csv/`` (DEAP's zip)."""
        for candidate in (self.top_dir / RATINGS_FILE, self.top_dir / "metadata_csv" / RATINGS_FILE):
            if candidate.is_file():
                return candidate
        raise DataError(f"{self.top_dir / RATINGS_FILE}: DEAP's participant_ratings.csv not found (also looked "
                        f"in {self.top_dir / 'metadata_csv'}); the face modality needs it to map presentation "
                        "order to the .dat rows")

    def ratings(self) -> dict[int, dict[int, int]]:
        """{participant: {presentation trial: Experiment_id}} from ``participant_ratings.csv``."""
        if self._ratings is None:
            self._ratings = read_ratings(self.ratings_path)
        return self._ratings

    def face_problem(self, subject: int) -> str | None:
        """Why the subject's face data are incomplete, or None when every trial's CSV is there."""
        if subject not in self._face_problems:
            self._face_problems[subject] = self._find_face_problem(subject)
        return self._face_problems[subject]

    def _find_face_problem(self, subject: int) -> str | None:
        trials = self.ratings().get(subject)
        if not trials:
            return f"no rows for participant {subject} in {self.ratings_path}"
        folder = self.face_dir(subject)
        if not folder.is_dir():
            return f"no face folder {folder}"
        missing, unreadable = [], []
        for trial in sorted(trials):
            path = self.face_file(subject, trial)
            if not path.is_file():
                missing.append(path.name)
                continue
            try:
                with path.open("r", encoding="utf-8") as f:
                    if not f.readline().strip():
                        unreadable.append(f"{path.name} (empty)")
            except (OSError, UnicodeDecodeError) as e:
                unreadable.append(f"{path.name} ({type(e).__name__})")
        parts = []
        if missing:
            parts.append(f"{len(missing)} face CSV(s) missing in {folder}: {', '.join(missing[:5])}"
                         + (" …" if len(missing) > 5 else ""))
        if unreadable:
            parts.append(f"unreadable face CSV(s) in {folder}: {', '.join(unreadable[:5])}"
                         + (" …" if len(unreadable) > 5 else ""))
        return "; ".join(parts) or None

    def subjects(self) -> list[int]:
        """Requested ∩ available subjects; with ``face``, only those with complete face data."""
        subjects = super().subjects()
        if not self.wants_face:
            return subjects
        kept = []
        for s in subjects:
            problem = self.face_problem(s)
            if problem is None:
                kept.append(s)
            elif s not in self._warned:
                self._warned.add(s)
                logger.warning("DEAP subject %d left out (face requested): %s", s, problem)
        if not kept:
            raise DataError(f"{self.top_dir / FACE_DIR}: no selected DEAP subject has complete face data "
                            f"(subjects {', '.join(map(str, subjects))})")
        return kept

    def source_files(self, subject: int) -> list[Path]:
        files = [self.available_subjects()[subject]]
        if self.wants_face and self.face_problem(subject) is None:
            files.append(self.ratings_path)
            files.extend(self.face_file(subject, t) for t in sorted(self.ratings()[subject]))
        return files

    def options(self) -> dict[str, Any]:
        if not self.wants_face:
            return {}
        return {"window_s": self.window_s, "face_confidence": self.face_confidence,
                "face_offset_s": self.face_offset_s}

    def face_windows(self, subject: int, n_trials: int, n_stim: int) -> list[np.ndarray]:
        """Per .dat row (video order), the face features per EEG window: (n_windows, D) float32 each."""
        problem = self.face_problem(subject)
        if problem is not None:
            raise DataError(f"DEAP subject {subject} has no complete face data: {problem}")
        win = int(round(self.window_s * SFREQ))
        if n_stim < win:
            raise ConfigError(f"the signal has {n_stim} samples, fewer than one {self.window_s}-s window "
                              f"({win} samples)")
        n_windows = n_stim // win
        by_video = {video: trial for trial, video in self.ratings()[subject].items()}
        out = []
        for row in range(n_trials):
            if row + 1 not in by_video:
                raise DataError(f"{self.ratings_path}: participant {subject} has no row with Experiment_id "
                                f"{row + 1} (the .dat file has {n_trials} trials)")
            frames, values = read_openface_csv(self.face_file(subject, by_video[row + 1]))
            out.append(face_window_means(frames, values, n_windows, win / SFREQ, self.face_confidence,
                                         self.face_offset_s))
        return out

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
                elif m:  # named like a subject file but unreadable as one: say so rather than skip quietly
                    logger.warning("%s: skipped, %s", p, _not_a_file(p))
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
        face = self.face_windows(subject, data.shape[0], data.shape[2] - n_base) if self.wants_face else None
        recordings = [
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
        if face is not None:
            for rec, values in zip(recordings, face):
                rec.extra["face"] = values
        return recordings

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
        """Validate every selected subject file (and its face CSVs when ``face`` is requested or
        ``face/`` is there); one summary row each.

        ``missing``: per modality, NaN counts (:func:`missing_counts`; ``face``
        for subjects with complete face data) or :data:`NAN_REFUSED` (``eeg``
        and ``peripheral``, one array in the ``.dat`` file).
        """
        face = self.wants_face or (self.top_dir / FACE_DIR).is_dir()
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
            row["missing"] = {"eeg": NAN_REFUSED, "peripheral": NAN_REFUSED}
            problem = self.face_problem(s) if face else None
            if problem is not None:  # only possible when face is not requested: subjects() left it in
                logger.warning("DEAP subject %d has no complete face data (left out when face is used): %s",
                               s, problem)
            elif face:
                n_stim = data.shape[2] - int(BASELINE_S * SFREQ)
                row["missing"]["face"] = missing_counts(self.face_windows(s, data.shape[0], n_stim))
            rows.append(row)
        return rows


def _not_a_file(path: Path) -> str:
    """Why a path that looks like a data file cannot be read as one."""
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:
            return "a symbolic link that loops"
        except OSError:
            return f"a broken symbolic link (to {os.readlink(path)})"
    if path.is_dir():
        return "a directory, not a file"
    return "not a regular file"

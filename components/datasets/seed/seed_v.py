"""SEED-V (Liu et al. 2021), the released feature files.

On disk (the root holds both folders)::

    EEG_DE_features/1_123.npz … 16_123.npz
    Eye_movement_features/1_123.npz … 16_123.npz

Each ``.npz`` holds the three sessions of one subject. Its members ``data``
and ``label`` are each a *pickled* dict keyed 0–44 (0–14 session 1, 15–29
session 2, 30–44 session 3, 15 film clips per session):

- EEG: ``data[k]`` is ``(n_windows, 310)`` differential entropy of 4-s
  windows — 62 channels × 5 bands (delta, theta, alpha, beta, gamma);
  ``label[k]`` is ``(n_windows,)`` with the clip's emotion repeated:
  0 disgust, 1 fear, 2 sad, 3 neutral, 4 happy;
- eye: ``data[k]`` is ``(n_windows, 33)`` eye-movement features of the same
  windows.

The release stores each pickle as a 0-d ``bytes`` array (its own example code
reads ``pickle.loads(npz['data'])``); a 0-d object array (``np.savez`` of a
dict with ``allow_pickle``) is read too. Neither is ever opened with
``np.load(allow_pickle=True)``: the archive is opened as a zip, the ``.npy``
header parsed, and the pickle handed to the restricted unpickler
(:mod:`safe_pickle`), which rebuilds numpy arrays and builtin containers and
refuses every other global with a :class:`DataError`.

DE layout. The 310 columns are read ``channel-major`` by default
(index = channel·5 + band), or ``band-major`` (index = band·62 + channel) with
``de_layout``. Features become ``(n_windows, 62, 5)``. DE normally falls from
delta to gamma; when the mean DE of the chosen layout does not fall for at
least 3 of the 4 band steps a :class:`DeLayoutWarning` is issued (and logged):
the layout is probably the other one.

SEED-V ships features only: there is no raw EEG (``load_subject`` refuses),
the windows are the release's (4 s, so ``sfreq`` = 0.25 windows per second).
"""
from __future__ import annotations

import logging
import re
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from moodops.components.datasets.base import Dataset
from moodops.components.datasets.missing import NAN_REFUSED, missing_counts
from moodops.components.datasets.formats.safe_pickle import loads_pickle
from moodops.components.errors import ConfigError, DataError, invalid_choice
from moodops.components.types import Recording

logger = logging.getLogger(__name__)

EEG_DIR = "EEG_DE_features"
EYE_DIR = "Eye_movement_features"
N_SESSIONS = 3
TRIALS_PER_SESSION = 15
N_KEYS = N_SESSIONS * TRIALS_PER_SESSION  # 45
N_CHANNELS = 62
N_BANDS = 5
N_DE = N_CHANNELS * N_BANDS  # 310
N_EYE = 33
WINDOW_S = 4.0
SFREQ = 1.0 / WINDOW_S  # one feature window per 4 s
BANDS = ("delta", "theta", "alpha", "beta", "gamma")
CLASS_NAMES = ("disgust", "fear", "sad", "neutral", "happy")
LABEL_NAMES = ("emotion",)
DE_LAYOUTS = ("channel-major", "band-major")
#: The 62-channel ESI NeuroScan cap of the SEED datasets, in file order.
CHANNELS = (
    "FP1", "FPZ", "FP2", "AF3", "AF4", "F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8",
    "FT7", "FC5", "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1", "CZ",
    "C2", "C4", "C6", "T8", "TP7", "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6", "TP8", "P7",
    "P5", "P3", "P1", "PZ", "P2", "P4", "P6", "P8", "PO7", "PO5", "PO3", "POZ", "PO4", "PO6",
    "PO8", "CB1", "O1", "OZ", "O2", "CB2",
)
#: Emotion of each clip, per session (the release's order; 3 clips per emotion).
SESSION_LABELS = (
    (4, 1, 3, 2, 0, 4, 1, 3, 2, 0, 4, 1, 3, 2, 0),
    (2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0),
    (2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0),
)
_FILE_RE = re.compile(r"^(\d+)_123\.npz$")


class DeLayoutWarning(UserWarning):
    """The DE features do not fall from delta to gamma in the chosen 310-column layout."""


def read_npz_pickles(path: Path, members: Sequence[str]) -> dict[str, Any]:
    """The pickled objects stored as members of an ``.npz`` (``name`` → object), read safely.

    Each member must be a ``.npy`` holding either a 0-d object array (its pickle
    stream follows the header) or a bytes/void/uint8 array whose raw bytes are
    a pickle. Nothing outside numpy arrays and builtin containers is rebuilt.
    """
    fmt = np.lib.format
    out: dict[str, Any] = {}
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read file ({e.strerror or e})") from None
    except zipfile.BadZipFile as e:
        raise DataError(f"{path}: not a valid .npz (zip) archive ({e})") from None
    with zf:
        names = set(zf.namelist())
        for member in members:
            entry = f"{member}.npy" if f"{member}.npy" in names else member
            if entry not in names:
                raise DataError(f"{path}: member '{member}' missing (members: "
                                f"{', '.join(sorted(n.removesuffix('.npy') for n in names)) or 'none'})")
            source = f"{path}[{member}]"
            try:
                with zf.open(entry) as f:
                    version = fmt.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = fmt.read_array_header_1_0(f)
                    elif version in ((2, 0), (3, 0)):
                        shape, _, dtype = fmt.read_array_header_2_0(f)
                    else:  # pragma: no cover - read_magic accepts only known versions today
                        raise DataError(f"{source}: unsupported .npy version {version}")
                    if dtype.hasobject:
                        if shape != ():
                            raise DataError(f"{source}: object array of shape {shape}, expected a 0-d "
                                            "array holding one pickled dict")
                        array = loads_pickle(f.read(), source)
                        if not isinstance(array, np.ndarray) or array.dtype != object or array.shape != ():
                            raise DataError(f"{source}: the pickle is not a 0-d object array")
                        out[member] = array.item()
                    elif dtype.kind in "SV" or dtype == np.uint8:
                        n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                        raw = f.read(n_bytes)
                        if len(raw) < n_bytes:
                            raise DataError(f"{source}: truncated (expected {n_bytes} bytes, got {len(raw)})")
                        out[member] = loads_pickle(raw, source)
                    else:
                        raise DataError(f"{source}: a {dtype} array of shape {shape}, expected a pickled "
                                        "dict (0-d object or bytes array)")
            except DataError:
                raise
            except (ValueError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
                raise DataError(f"{source}: corrupt member ({type(e).__name__}: {e})") from None
    return out


def trial_keys(obj: Any, path: Path, member: str) -> dict[int, Any]:
    """A dict keyed 0–44 (ints, numpy ints or digit strings) → ``{int key: value}``."""
    if not isinstance(obj, dict):
        raise DataError(f"{path}: '{member}' is a {type(obj).__name__}, expected a dict keyed 0-{N_KEYS - 1}")
    out: dict[int, Any] = {}
    for key, value in obj.items():
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            k = int(key)
        elif isinstance(key, str) and key.strip().isdigit():
            k = int(key)
        else:
            raise DataError(f"{path}: '{member}' has key {key!r}, expected trial keys 0-{N_KEYS - 1}")
        if not 0 <= k < N_KEYS:
            raise DataError(f"{path}: '{member}' has key {k}, expected trial keys 0-{N_KEYS - 1}")
        out[k] = value
    missing = [k for k in range(N_KEYS) if k not in out]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
        raise DataError(f"{path}: '{member}' lacks trial key(s) {shown} ({len(missing)} of {N_KEYS} missing)")
    return out


def _matrix(value: Any, path: Path, member: str, key: int, n_cols: int, allow_nan: bool) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
        kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise DataError(f"{path}: '{member}'[{key}] is {kind}, expected a numeric array")
    if value.ndim != 2 or value.shape[1] != n_cols or value.shape[0] == 0:
        raise DataError(f"{path}: '{member}'[{key}] has shape {value.shape}, expected (n_windows, {n_cols})")
    value = value.astype(np.float32)
    bad = np.isinf(value) if allow_nan else ~np.isfinite(value)
    if bad.any():
        w, c = np.argwhere(bad)[0]
        raise DataError(f"{path}: '{member}'[{key}] holds {int(bad.sum())} non-finite value(s), first "
                        f"{value[w, c]} at window {w}, column {c}")
    return value


def _trial_label(value: Any, path: Path, key: int, n_windows: int) -> int:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu" or arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[1] != 1):
        raise DataError(f"{path}: 'label'[{key}] has shape {arr.shape} and dtype {arr.dtype}, expected "
                        "(n_windows,) numbers")
    arr = arr.reshape(-1)
    if len(arr) != n_windows:
        raise DataError(f"{path}: 'label'[{key}] has {len(arr)} windows but 'data'[{key}] has {n_windows}")
    bad = ~np.isin(arr, np.arange(len(CLASS_NAMES)))
    if bad.any():
        raise DataError(f"{path}: 'label'[{key}] has value {arr[bad][0]}, outside 0-{len(CLASS_NAMES) - 1} "
                        f"({', '.join(f'{i} {n}' for i, n in enumerate(CLASS_NAMES))})")
    if (arr != arr[0]).any():
        raise DataError(f"{path}: 'label'[{key}] is not constant within the trial "
                        f"(values {sorted(set(arr.astype(int).tolist()))})")
    return int(arr[0])


def to_channel_band(de: np.ndarray, layout: str) -> np.ndarray:
    """(W, 310) → (W, 62, 5) under ``layout``."""
    if layout == "channel-major":
        return np.ascontiguousarray(de.reshape(len(de), N_CHANNELS, N_BANDS))
    return np.ascontiguousarray(de.reshape(len(de), N_BANDS, N_CHANNELS).transpose(0, 2, 1))


def band_means(features: Sequence[np.ndarray]) -> np.ndarray:
    """Mean DE per band over every window and channel of ``(W, 62, 5)`` arrays."""
    total = np.zeros(N_BANDS)
    count = 0
    for f in features:
        total += f.sum(axis=(0, 1), dtype=np.float64)
        count += f.shape[0] * f.shape[1]
    return total / max(count, 1)


def falls_from_delta_to_gamma(means: np.ndarray) -> bool:
    """True when the band means fall for at least 3 of the 4 steps delta→gamma."""
    return int((np.diff(means) < 0).sum()) >= 3


def layout_plausible(de: Sequence[np.ndarray], layout: str) -> tuple[bool, np.ndarray]:
    """Whether DE ``(W, 310)`` arrays read in ``layout`` fall from delta to gamma → (ok, band means).

    Not plausible when the band means do not fall for 3 of the 4 steps, or when
    the other layout falls too and by more from delta to gamma (reading the
    wrong layout mixes the bands, so its means come out nearly flat).
    """
    other = DE_LAYOUTS[1 - DE_LAYOUTS.index(layout)]
    means = band_means([to_channel_band(d, layout) for d in de])
    other_means = band_means([to_channel_band(d, other) for d in de])
    ok = falls_from_delta_to_gamma(means) and not (
        falls_from_delta_to_gamma(other_means) and other_means[0] - other_means[-1] > means[0] - means[-1])
    return ok, means


class SeedV(Dataset):
    """SEED-V's released DE and eye-movement features.

    Parameters
    ----------
    root : path
        The folder holding ``EEG_DE_features/`` (and ``Eye_movement_features/``).
    subjects : list of int, optional
        Subject numbers (1–16); all present subjects by default.
    modalities : sequence of str
        ``eye`` adds ``extra["eye"]`` ``(n_windows, 33)`` to every recording.
    de_layout : {"channel-major", "band-major"}
        How the 310 DE columns are ordered (see the module docstring).
    """

    name: ClassVar[str] = "seed-v"
    per_subject_train_trials: ClassVar[int | None] = 9  # 9 train / 6 test per session (MV-SSTMA paper)
    modalities: ClassVar[tuple[str, ...]] = ("eeg", "eye")
    precomputed: ClassVar[tuple[str, ...]] = ("de",)
    option_names: ClassVar[tuple[str, ...]] = ("de_layout",)
    label_names: ClassVar[tuple[str, ...]] = LABEL_NAMES
    targets: ClassVar[tuple[str, ...]] = LABEL_NAMES

    def __init__(self, root: str | Path, subjects=None, modalities=(), de_layout: str = "channel-major") -> None:
        super().__init__(root, subjects, modalities)
        if de_layout not in DE_LAYOUTS:
            raise ConfigError(invalid_choice("de_layout", de_layout, DE_LAYOUTS))
        self.de_layout = de_layout
        self._available: dict[int, Path] | None = None

    @property
    def eeg_dir(self) -> Path:
        return self.root / EEG_DIR

    @property
    def eye_dir(self) -> Path:
        return self.root / EYE_DIR

    @property
    def wants_eye(self) -> bool:
        return "eye" in self.requested_modalities

    def available_subjects(self) -> dict[int, Path]:
        if self._available is None:
            if not self.root.exists():
                raise DataError(f"{self.root}: SEED-V root does not exist")
            if not self.root.is_dir():
                raise DataError(f"{self.root}: SEED-V root is not a directory")
            if not self.eeg_dir.is_dir():
                raise DataError(f"{self.eeg_dir}: folder not found; expected {EEG_DIR}/1_123.npz … 16_123.npz "
                                "under the SEED-V root")
            if self.wants_eye and not self.eye_dir.is_dir():
                raise DataError(f"{self.eye_dir}: folder not found (needed for the 'eye' modality); expected "
                                f"{EYE_DIR}/1_123.npz … 16_123.npz")
            found = {}
            for p in self.eeg_dir.iterdir():
                m = _FILE_RE.match(p.name)
                if m and p.is_file():
                    found[int(m.group(1))] = p
            if not found:
                raise DataError(f"{self.eeg_dir}: no SEED-V subject files (N_123.npz) found")
            self._available = dict(sorted(found.items()))
        return self._available

    def _eeg_file(self, subject: int) -> Path:
        available = self.available_subjects()
        if subject not in available:
            raise DataError(f"{self.eeg_dir}: subject {subject} not found ({subject}_123.npz)")
        return available[subject]

    def eye_file(self, subject: int) -> Path:
        path = self.eye_dir / f"{subject}_123.npz"
        if not path.is_file():
            raise DataError(f"{path}: eye-movement file of subject {subject} not found")
        return path

    def source_files(self, subject: int) -> list[Path]:
        files = [self._eeg_file(subject)]
        if self.wants_eye:
            files.append(self.eye_file(subject))
        return files

    def options(self) -> dict[str, Any]:
        return {"de_layout": self.de_layout}

    def load_subject(self, subject: int) -> list[Recording]:
        raise ConfigError("SEED-V ships features only, no raw EEG: use --feature precomputed "
                          f"(precomputed set {', '.join(self.precomputed)})")

    def read_trials(self, subject: int) -> tuple[dict[int, np.ndarray], dict[int, int]]:
        """One subject's validated DE ``{key: (W, 310) float32}`` and labels ``{key: class}``."""
        path = self._eeg_file(subject)
        members = read_npz_pickles(path, ("data", "label"))
        data = trial_keys(members["data"], path, "data")
        label = trial_keys(members["label"], path, "label")
        de = {k: _matrix(data[k], path, "data", k, N_DE, allow_nan=False) for k in range(N_KEYS)}
        labels = {k: _trial_label(label[k], path, k, len(de[k])) for k in range(N_KEYS)}
        return de, labels

    def read_eye(self, subject: int, n_windows: dict[int, int]) -> dict[int, np.ndarray]:
        """One subject's eye features ``{key: (W, 33) float32}``, W checked against the EEG's."""
        path = self.eye_file(subject)
        data = trial_keys(read_npz_pickles(path, ("data",))["data"], path, "data")
        out = {}
        for k in range(N_KEYS):
            eye = _matrix(data[k], path, "data", k, N_EYE, allow_nan=True)
            if len(eye) != n_windows[k]:
                raise DataError(f"{path}: 'data'[{k}] has {len(eye)} windows but {self._eeg_file(subject)} "
                                f"'data'[{k}] has {n_windows[k]}")
            out[k] = eye
        return out

    def load_precomputed(self, subject: int, name: str) -> list[Recording]:
        if name not in self.precomputed:
            raise ConfigError(invalid_choice("precomputed", name, self.precomputed))
        de, labels = self.read_trials(subject)
        self._check_layout(subject, list(de.values()))
        features = {k: to_channel_band(v, self.de_layout) for k, v in de.items()}
        eye = self.read_eye(subject, {k: len(v) for k, v in de.items()}) if self.wants_eye else {}
        return [
            Recording(
                subject=subject,
                session=k // TRIALS_PER_SESSION + 1,
                trial=k % TRIALS_PER_SESSION + 1,
                data=None,
                sfreq=SFREQ,
                ch_names=CHANNELS,
                labels={"emotion": float(labels[k])},
                extra={"eye": eye[k]} if k in eye else {},
                features=features[k],
            )
            for k in range(N_KEYS)
        ]

    def _check_layout(self, subject: int, de: list[np.ndarray]) -> None:
        ok, means = layout_plausible(de, self.de_layout)
        if not ok:
            other = DE_LAYOUTS[1 - DE_LAYOUTS.index(self.de_layout)]
            message = (f"{self._eeg_file(subject)}: with de_layout='{self.de_layout}' the mean DE per band "
                       f"({', '.join(f'{b} {m:.2f}' for b, m in zip(BANDS, means))}) does not fall from delta "
                       f"to gamma as DE usually does; the columns may be {other} (de_layout='{other}')")
            warnings.warn(message, DeLayoutWarning, stacklevel=3)
            logger.warning(message)

    def make_targets(self, labels: dict[str, np.ndarray], target: str) -> tuple[np.ndarray, tuple[str, ...]]:
        self.check_target(target)
        values = np.asarray(labels[target])
        y = values.astype(np.int64)
        if values.size and ((y != values).any() or y.min() < 0 or y.max() >= len(CLASS_NAMES)):
            raise DataError(f"SEED-V '{target}' labels must be 0-{len(CLASS_NAMES) - 1}, got "
                            f"{sorted(set(values.tolist()))[:10]}")
        return y, CLASS_NAMES

    def check(self) -> list[dict[str, Any]]:
        """Validate every selected subject (and its eye file when ``eye`` is requested or
        ``Eye_movement_features/`` is there); one row each.

        ``missing``: per modality, NaN counts (:func:`missing_counts`) or
        :data:`NAN_REFUSED` (``eeg``).
        """
        rows = []
        eye = self.wants_eye or self.eye_dir.is_dir()
        for s in self.subjects():
            recordings = self.load_precomputed(s, "de")
            windows = [r.features.shape[0] for r in recordings]
            row: dict[str, Any] = {
                "subject": s,
                "file": self._eeg_file(s).name,
                "sessions": len({r.session for r in recordings}),
                "trials": len(recordings),
                "windows": int(sum(windows)),
                "windows_per_trial": f"{min(windows)}-{max(windows)}",
            }
            for k, name in enumerate(CLASS_NAMES):
                row[name] = sum(1 for r in recordings if int(r.labels["emotion"]) == k)
            row["missing"] = {"eeg": NAN_REFUSED}
            if eye:
                arrays = ([r.extra["eye"] for r in recordings] if self.wants_eye
                          else list(self.read_eye(s, dict(enumerate(windows))).values()))
                row["missing"]["eye"] = missing_counts(arrays)
            rows.append(row)
        return rows

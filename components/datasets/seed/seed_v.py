"""SEED-V (Liu et al. 2021): the released feature files and the raw Neuroscan recordings.

On disk (the root holds the folders; each is optional, one of the EEG ones is needed)::

    EEG_DE_features/1_123.npz … 16_123.npz
    Eye_movement_features/1_123.npz … 16_123.npz
    EEG_raw/{subject}_{session}_{date}.cnt (e.g. 10_1_20180507.cnt; 3 per subject)

Features. Each ``.npz`` holds the three sessions of one subject. Its members ``data``
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
the layout is probably the other one. ``load_precomputed`` reads these (windows
the release's: 4 s, so ``sfreq`` = 0.25 windows per second).

Raw EEG (``load_subject``), read only when ``EEG_raw/`` is there. One Neuroscan ``.cnt``
file per session (:mod:`~moodops.components.datasets.formats.cnt`), 1000 Hz, the 62 EEG
channels of the ESI cap plus M1, M2, VEO and HEO (public loaders drop those four by name,
e.g. torcheeg's ``SEEDVDataset.read_record``). The session in the file name is the session;
each is cut into its 15 clips at the published start and end seconds
(:data:`TRIAL_SECONDS`). Every clip keeps the 62 EEG channels by name (case ignored) in the
order of :data:`CHANNELS` and goes through the shared preprocessing
(:data:`RAW_PREPROCESS`: 0.1–70 Hz band-pass, 50 Hz notch, 200 Hz) with
:data:`FILTER_CONTEXT_S` seconds of the recording on each side, cut off afterwards, so a
clip's edges are filtered as inside the whole recording while at most :data:`CHUNK_S`
seconds of it are in memory.
Recordings: float32 µV ``(62, samples)`` at 200 Hz, ``session`` and ``trial`` 1-based,
``labels`` the clip's emotion (:data:`SESSION_LABELS`).

Raw EEG with eye movements. The eye features are on consecutive 4-s windows of each clip;
the rule used here is that eye window ``w`` of clip ``k`` covers seconds
``start_k + 4w`` to ``start_k + 4w + 4`` of the recording. A clip then keeps exactly its
eye windows' ``4 · W`` seconds (``W`` at most the whole 4-s windows the clip holds, else a
:class:`DataError`), so 4-s feature windows (``window_s=4``) of the raw EEG line up one to
one with the eye rows in ``extra["eye"]``. The release does not state how its feature
windows were placed in the recordings: this alignment is a reading, not a documented fact.

Synthetic copies may shrink the session timeline (``raw_time_scale``, see
:func:`~moodops.components.datasets.seed.synthetic_seed_v.write_synthetic_seed_v`); such files
carry the factor in the header's session label (:func:`time_scale_label`) and are read only
with the same ``raw_time_scale``, and unmarked (real) files only with 1, so real recordings
are never cut at scaled times.
"""
from __future__ import annotations

import logging
import math
import re
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from moodops.components.datasets.base import Dataset
from moodops.components.datasets.formats.cnt import CntFile
from moodops.components.datasets.formats.safe_pickle import loads_pickle
from moodops.components.datasets.missing import NAN_REFUSED, missing_counts
from moodops.components.datasets.preprocess import Preprocess, preprocess
from moodops.components.datasets.seed.seed import CHANNELS as SEED_CHANNELS
from moodops.components.errors import ConfigError, DataError, invalid_choice
from moodops.components.types import Recording

logger = logging.getLogger(__name__)

EEG_DIR = "EEG_DE_features"
EYE_DIR = "Eye_movement_features"
RAW_DIR = "EEG_raw"
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
#: The 62-channel ESI NeuroScan cap of the SEED datasets, in file order: SEED's own list (SEED-V's
#: 62 EEG channels carry the same names, e.g. torcheeg's ``SEED_V_CHANNEL_LIST``).
CHANNELS = SEED_CHANNELS
#: Emotion of each clip, per session (the release's order; 3 clips per emotion).
SESSION_LABELS = (
    (4, 1, 3, 2, 0, 4, 1, 3, 2, 0, 4, 1, 3, 2, 0),
    (2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0),
    (2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0),
)
#: Session → (start, end) second of its 15 clips in the raw recording, as published with the
#: release and used by public loaders: torcheeg, ``torcheeg/datasets/module/emotion_recognition/
#: seed_v.py`` (``start_end_list``, commit b6039b1), and CBraMod, ``preprocessing/
#: preprocessing_SEEDV.py`` (``trials_of_sessions``, commit b9e9610), hold these numbers.
TRIAL_SECONDS: dict[int, tuple[tuple[int, int], ...]] = {
    1: tuple(zip((30, 132, 287, 555, 773, 982, 1271, 1628, 1730, 2025, 2227, 2435, 2667, 2932, 3204),
                 (102, 228, 524, 742, 920, 1240, 1568, 1697, 1994, 2166, 2401, 2607, 2901, 3172, 3359))),
    2: tuple(zip((30, 299, 548, 646, 836, 1000, 1091, 1392, 1657, 1809, 1966, 2186, 2333, 2490, 2741),
                 (267, 488, 614, 773, 967, 1059, 1331, 1622, 1777, 1908, 2153, 2302, 2428, 2709, 2817))),
    3: tuple(zip((30, 353, 478, 674, 825, 908, 1200, 1346, 1451, 1711, 2055, 2307, 2457, 2726, 2888),
                 (321, 418, 643, 764, 877, 1147, 1284, 1418, 1679, 1996, 2275, 2425, 2664, 2857, 3066))),
}
#: The raw recordings' sampling rate (public loaders index ``start_second * 1000``).
RAW_SFREQ = 1000.0
#: Mood Reader §4.1's preprocessing (the shared defaults), applied to every raw clip.
RAW_PREPROCESS = Preprocess(l_freq=0.1, h_freq=70.0, notch=50.0, sfreq=200.0)
#: Seconds of recording read on each side of a clip for filtering: more than half of the 33-s FIR
#: MNE designs for the 0.1-Hz high-pass (3.3 / 0.1 Hz transition band).
FILTER_CONTEXT_S = 20.0
#: Clips are read and filtered together while their span, context included, stays within this many
#: seconds (at most 62 × 360 000 float64 samples, 180 MB, at 1000 Hz).
CHUNK_S = 360.0
#: Prefix of the header label that marks a synthetic recording with a scaled timeline.
TIME_SCALE_MARK = "moodops-ts="
_FILE_RE = re.compile(r"^(\d+)_123\.npz$")
_RAW_FILE_RE = re.compile(r"^(\d+)_(\d+)_(\d{8})\.cnt$", re.IGNORECASE)


def time_scale_label(scale: float) -> str:
    """The ``.cnt`` session label that marks a synthetic recording whose timeline is scaled by ``scale``."""
    return f"{TIME_SCALE_MARK}{scale:g}"


def parse_time_scale(label: str) -> float | None:
    """The scale a header label marks (:func:`time_scale_label`), or None for an unmarked (real) file."""
    if not label.startswith(TIME_SCALE_MARK):
        return None
    try:
        scale = float(label[len(TIME_SCALE_MARK):])
    except ValueError:
        return None
    return scale if math.isfinite(scale) and scale > 0 else None


def whole_windows(seconds: float) -> int:
    """How many whole 4-s windows ``seconds`` hold (tolerant of float error in scaled times)."""
    return int(math.floor(seconds / WINDOW_S + 1e-9))


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
    """SEED-V's released DE and eye-movement features, and its raw EEG where ``EEG_raw/`` is there.

    Parameters
    ----------
    root : path
        The folder holding ``EEG_DE_features/`` and/or ``EEG_raw/`` (and
        ``Eye_movement_features/``).
    subjects : list of int, optional
        Subject numbers (the feature release has 1–16); all present subjects by default.
    modalities : sequence of str
        ``eye`` adds ``extra["eye"]`` ``(n_windows, 33)`` to every recording.
    de_layout : {"channel-major", "band-major"}
        How the 310 DE columns are ordered (see the module docstring).
    raw_time_scale : float in (0, 1]
        The factor a synthetic copy's raw timeline was shrunk by; the published clip times
        are multiplied by it. 1 (the default) for real recordings; any other value reads only
        files marked with it (see the module docstring).

    ``load_precomputed(subject, "de")`` reads the release's features; ``load_subject`` the raw
    EEG (preprocessed, 200 Hz, µV; a :class:`ConfigError` for a copy without ``EEG_raw/``).
    """

    name: ClassVar[str] = "seed-v"
    eeg_channels: ClassVar[tuple[str, ...]] = CHANNELS
    eeg_sfreq: ClassVar[float | None] = RAW_PREPROCESS.sfreq
    per_subject_train_trials: ClassVar[int | None] = 9  # 9 train / 6 test per session (MV-SSTMA paper)
    modalities: ClassVar[tuple[str, ...]] = ("eeg", "raw_eeg", "eye")
    #: A feature release first: without a model that needs raw EEG, runs take its precomputed DE.
    default_feature: ClassVar[str | None] = "precomputed"
    #: The release's eye features are per 4-s window: computed EEG features use 4-s windows beside them.
    eye_window_s: ClassVar[float | None] = 4.0
    precomputed: ClassVar[tuple[str, ...]] = ("de",)
    option_names: ClassVar[tuple[str, ...]] = ("de_layout", "raw_time_scale")
    label_names: ClassVar[tuple[str, ...]] = LABEL_NAMES
    targets: ClassVar[tuple[str, ...]] = LABEL_NAMES

    def __init__(self, root: str | Path, subjects=None, modalities=(), de_layout: str = "channel-major",
                 raw_time_scale: float = 1.0) -> None:
        super().__init__(root, subjects, modalities)
        if de_layout not in DE_LAYOUTS:
            raise ConfigError(invalid_choice("de_layout", de_layout, DE_LAYOUTS))
        try:
            scale = float(raw_time_scale)
        except (TypeError, ValueError):
            scale = math.nan
        if not 0.0 < scale <= 1.0:
            raise ConfigError(f"The 'raw_time_scale' parameter must be a float in (0, 1]. "
                              f"Got {raw_time_scale!r} instead.")
        self.de_layout = de_layout
        self.raw_time_scale = scale
        self._available: dict[int, Path] | None = None
        self._features: dict[int, Path] | None = None
        self._raw: dict[int, dict[int, Path]] | None = None
        self._raw_problems: dict[int, str] = {}

    @property
    def eeg_dir(self) -> Path:
        return self.root / EEG_DIR

    @property
    def eye_dir(self) -> Path:
        return self.root / EYE_DIR

    @property
    def raw_dir(self) -> Path:
        return self.root / RAW_DIR

    @classmethod
    def present_modalities(cls, root: str | Path) -> tuple[str, ...]:
        """Raw EEG only with ``EEG_raw/``; eye only with ``Eye_movement_features/``."""
        root = Path(root)
        return tuple(m for m in cls.modalities if (m != "raw_eeg" or (root / RAW_DIR).is_dir())
                     and (m != "eye" or (root / EYE_DIR).is_dir()))

    @property
    def wants_eye(self) -> bool:
        return "eye" in self.requested_modalities

    # -- layout

    def _feature_scan(self) -> dict[int, Path]:
        if self._features is None:
            found = {}
            if self.eeg_dir.is_dir():
                for p in self.eeg_dir.iterdir():
                    m = _FILE_RE.match(p.name)
                    if m and p.is_file():
                        found[int(m.group(1))] = p
            self._features = dict(sorted(found.items()))
        return self._features

    def _raw_scan(self) -> dict[int, dict[int, Path]]:
        """``EEG_raw/{subject}_{session}_{date}.cnt`` → subject → session → path.

        A bad name (session outside 1–3, two files of one session) is kept as that subject's
        problem and raised when its raw EEG is read, so the other subjects stay readable.
        """
        if self._raw is None:
            found: dict[int, dict[int, Path]] = {}
            if self.raw_dir.is_dir():
                for p in sorted(self.raw_dir.iterdir()):
                    m = _RAW_FILE_RE.match(p.name)
                    if not (m and p.is_file()):
                        continue
                    subject, session = int(m.group(1)), int(m.group(2))
                    sessions = found.setdefault(subject, {})
                    if not 1 <= session <= N_SESSIONS:
                        self._raw_problems.setdefault(subject, f"{p}: session {session} in the file name, expected "
                                                               f"1-{N_SESSIONS} ({{subject}}_{{session}}_{{date}}.cnt)")
                    elif session in sessions:
                        self._raw_problems.setdefault(subject, f"{self.raw_dir}: two files of subject {subject} "
                                                               f"session {session} ({sessions[session].name}, "
                                                               f"{p.name})")
                    else:
                        sessions[session] = p
            self._raw = dict(sorted(found.items()))
        return self._raw

    def available_subjects(self) -> dict[int, Path]:
        if self._available is None:
            if not self.root.exists():
                raise DataError(f"{self.root}: SEED-V root does not exist")
            if not self.root.is_dir():
                raise DataError(f"{self.root}: SEED-V root is not a directory")
            if not self.eeg_dir.is_dir() and not self.raw_dir.is_dir():
                raise DataError(f"{self.eeg_dir}: folder not found; expected {EEG_DIR}/1_123.npz … 16_123.npz "
                                f"(or the raw recordings, {RAW_DIR}/{{subject}}_{{session}}_{{date}}.cnt) under the "
                                "SEED-V root")
            if self.wants_eye and not self.eye_dir.is_dir():
                raise DataError(f"{self.eye_dir}: folder not found (needed for the 'eye' modality); expected "
                                f"{EYE_DIR}/1_123.npz … 16_123.npz")
            found = {s: sessions[min(sessions)] for s, sessions in self._raw_scan().items() if sessions}
            found.update(self._feature_scan())
            if not found:
                folders = " and ".join(str(f) for f in (self.eeg_dir, self.raw_dir) if f.is_dir())
                raise DataError(f"{folders}: no SEED-V subject files (N_123.npz, or N_S_YYYYMMDD.cnt raw "
                                "recordings) found")
            self._available = dict(sorted(found.items()))
        return self._available

    def _eeg_file(self, subject: int) -> Path:
        self.available_subjects()
        features = self._feature_scan()
        if subject not in features:
            raise DataError(f"{self.eeg_dir}: subject {subject} not found ({subject}_123.npz)")
        return features[subject]

    def eye_file(self, subject: int) -> Path:
        path = self.eye_dir / f"{subject}_123.npz"
        if not path.is_file():
            raise DataError(f"{path}: eye-movement file of subject {subject} not found")
        return path

    def raw_files(self, subject: int) -> list[Path]:
        """The subject's session 1, 2 and 3 recordings in ``EEG_raw/``."""
        self.available_subjects()
        if subject in self._raw_problems:
            raise DataError(self._raw_problems[subject])
        sessions = self._raw_scan().get(subject, {})
        missing = [s for s in range(1, N_SESSIONS + 1) if s not in sessions]
        if missing:
            have = ", ".join(p.name for _, p in sorted(sessions.items())) or "none"
            raise DataError(f"{self.raw_dir}: subject {subject} lacks the recording of session(s) "
                            f"{', '.join(map(str, missing))} ({{subject}}_{{session}}_{{date}}.cnt; found: {have})")
        return [sessions[s] for s in range(1, N_SESSIONS + 1)]

    def source_files(self, subject: int) -> list[Path]:
        if subject not in self.available_subjects():
            raise DataError(f"{self.root}: subject {subject} not found")
        files = [self._eeg_file(subject)] if subject in self._feature_scan() else []
        if self.wants_eye:
            files.append(self.eye_file(subject))
        return files + [p for _, p in sorted(self._raw_scan().get(subject, {}).items())]

    def options(self) -> dict[str, Any]:
        # The published timeline adds no key, so cache keys of existing copies stay as they were.
        scaled = {"raw_time_scale": self.raw_time_scale} if self.raw_time_scale != 1.0 else {}
        return {"de_layout": self.de_layout, **scaled}

    # -- features

    def read_trials(self, subject: int) -> tuple[dict[int, np.ndarray], dict[int, int]]:
        """One subject's validated DE ``{key: (W, 310) float32}`` and labels ``{key: class}``."""
        path = self._eeg_file(subject)
        members = read_npz_pickles(path, ("data", "label"))
        data = trial_keys(members["data"], path, "data")
        label = trial_keys(members["label"], path, "label")
        de = {k: _matrix(data[k], path, "data", k, N_DE, allow_nan=False) for k in range(N_KEYS)}
        labels = {k: _trial_label(label[k], path, k, len(de[k])) for k in range(N_KEYS)}
        return de, labels

    def read_eye(self, subject: int, n_windows: dict[int, int] | None = None) -> dict[int, np.ndarray]:
        """One subject's eye features ``{key: (W, 33) float32}``; W checked against the EEG features' when given."""
        path = self.eye_file(subject)
        data = trial_keys(read_npz_pickles(path, ("data",))["data"], path, "data")
        out = {}
        for k in range(N_KEYS):
            eye = _matrix(data[k], path, "data", k, N_EYE, allow_nan=True)
            if n_windows is not None and len(eye) != n_windows[k]:
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

    # -- raw EEG

    def trial_seconds(self, session: int) -> list[tuple[float, float]]:
        """(start, end) second of the session's 15 clips: :data:`TRIAL_SECONDS` × ``raw_time_scale``."""
        return [(round(a * self.raw_time_scale, 6), round(b * self.raw_time_scale, 6))
                for a, b in TRIAL_SECONDS[session]]

    def open_session(self, path: Path, session: int) -> CntFile:
        """Open one session's recording and check it fits the clip table: the time-scale mark,
        the 62 EEG channels, and a length reaching the last clip's end."""
        cnt = CntFile(path)
        marked = parse_time_scale(cnt.label)
        if marked is None and self.raw_time_scale != 1.0:
            raise DataError(f"{path}: raw_time_scale={self.raw_time_scale:g} is only for synthetic recordings "
                            f"marked with it, and this file's header label ({cnt.label!r}) carries no mark: real "
                            "recordings are cut at the published times (raw_time_scale=1)")
        if marked is not None and not math.isclose(marked, self.raw_time_scale, rel_tol=1e-6):
            raise DataError(f"{path}: a synthetic recording whose clip times are scaled by {marked:g} (header label "
                            f"{cnt.label!r}), read with raw_time_scale={self.raw_time_scale:g}; pass "
                            f"raw_time_scale={marked:g}")
        cnt.channel_indices(CHANNELS)
        end = self.trial_seconds(session)[-1][1]
        if cnt.n_samples < round(end * cnt.sfreq):
            scaled = f" × raw_time_scale {self.raw_time_scale:g}" if self.raw_time_scale != 1.0 else ""
            raise DataError(f"{path}: the recording lasts {cnt.duration_s:g} s ({cnt.n_samples} samples at "
                            f"{cnt.sfreq:g} Hz), shorter than the {end:g} s at which clip {TRIALS_PER_SESSION} of "
                            f"session {session} ends (published clip times{scaled})")
        return cnt

    def read_raw_session(self, subject: int, session: int, path: Path,
                         eye: dict[int, np.ndarray] | None = None) -> list[Recording]:
        """One session's recording → its 15 preprocessed clips (float32 µV ``(62, samples)``, 200 Hz).

        With ``eye`` (key → ``(W, 33)``), clip ``k`` keeps its ``4 · W`` seconds from its start
        and carries ``extra["eye"]`` (see the module docstring). Neighbouring clips whose span,
        context included, stays within :data:`CHUNK_S` are read and filtered together.
        """
        cnt = self.open_session(path, session)
        sfreq, out_sfreq = cnt.sfreq, RAW_PREPROCESS.sfreq
        clips = []  # (trial, first sample, stop sample, eye rows or None)
        for trial, (start, end) in enumerate(self.trial_seconds(session), start=1):
            key = (session - 1) * TRIALS_PER_SESSION + trial - 1
            seconds = end - start
            if eye is not None:
                n_windows, holds = len(eye[key]), whole_windows(seconds)
                if n_windows > holds:
                    raise DataError(f"{self.eye_file(subject)}: 'data'[{key}] has {n_windows} 4-s windows, but "
                                    f"session {session} clip {trial} lasts {seconds:g} s ({start:g}-{end:g} s of "
                                    f"{path.name}), room for {holds}")
                seconds = n_windows * WINDOW_S
            first = int(round(start * sfreq))
            clips.append((trial, first, first + int(round(seconds * sfreq)), None if eye is None else eye[key]))
        context, limit = int(round(FILTER_CONTEXT_S * sfreq)), int(round(CHUNK_S * sfreq))
        chunks: list[list[tuple]] = []
        for clip in clips:
            if chunks and clip[2] - chunks[-1][0][1] + 2 * context <= limit:
                chunks[-1].append(clip)
            else:
                chunks.append([clip])
        recordings = []
        for chunk in chunks:
            low = max(chunk[0][1] - context, 0)
            high = min(chunk[-1][2] + context, cnt.n_samples)
            span = Recording(subject=subject, session=session, trial=chunk[0][0], data=cnt.read(CHANNELS, low, high),
                             sfreq=sfreq, ch_names=CHANNELS, labels={})
            clean = preprocess(span, RAW_PREPROCESS).data
            for trial, first, stop, eye_rows in chunk:
                offset = int(round((first - low) * out_sfreq / sfreq))
                keep = np.ascontiguousarray(clean[:, offset:offset + int(round((stop - first) * out_sfreq / sfreq))])
                recordings.append(Recording(
                    subject=subject, session=session, trial=trial, data=keep, sfreq=out_sfreq, ch_names=CHANNELS,
                    labels={"emotion": float(SESSION_LABELS[session - 1][trial - 1])},
                    extra={} if eye_rows is None else {"eye": eye_rows},
                ))
        return recordings

    def load_subject(self, subject: int) -> list[Recording]:
        if not self.raw_dir.is_dir():
            raise ConfigError(f"this SEED-V copy has features only (no {RAW_DIR}/ folder of .cnt recordings under "
                              f"{self.root}): use --feature precomputed (precomputed set "
                              f"{', '.join(self.precomputed)})")
        paths = self.raw_files(subject)
        eye = self.read_eye(subject) if self.wants_eye else None
        return [rec for session, path in enumerate(paths, start=1)
                for rec in self.read_raw_session(subject, session, path, eye)]

    # -- targets, check

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
        :data:`NAN_REFUSED` (``eeg``). Raw recordings are checked by their headers (channels,
        length, time-scale mark), not read: ``raw_sessions``, ``raw_seconds``, ``raw_sfreq``.
        """
        rows = []
        eye = self.wants_eye or self.eye_dir.is_dir()
        for s in self.subjects():
            row = self._feature_row(s, eye) if s in self._feature_scan() else self._raw_row(s, eye)
            if s in self._raw_scan():
                sessions = [self.open_session(p, k) for k, p in enumerate(self.raw_files(s), start=1)]
                row.update(raw_sessions=len(sessions), raw_seconds=round(sum(c.duration_s for c in sessions), 1),
                           raw_sfreq="/".join(sorted({f"{c.sfreq:g}" for c in sessions})))
            rows.append(row)
        return rows

    def _feature_row(self, s: int, eye: bool) -> dict[str, Any]:
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
        return row

    def _raw_row(self, s: int, eye: bool) -> dict[str, Any]:
        """The row of a subject with raw recordings only: 4-s windows of the clip table."""
        windows = [whole_windows(b - a) for session in range(1, N_SESSIONS + 1) for a, b in self.trial_seconds(session)]
        labels = [c for session_labels in SESSION_LABELS for c in session_labels]
        row: dict[str, Any] = {
            "subject": s,
            "file": self.raw_files(s)[0].name,
            "sessions": N_SESSIONS,
            "trials": N_KEYS,
            "windows": int(sum(windows)),
            "windows_per_trial": f"{min(windows)}-{max(windows)}",
            **{name: labels.count(k) for k, name in enumerate(CLASS_NAMES)},
            "missing": {"eeg": NAN_REFUSED},
        }
        if eye:
            row["missing"]["eye"] = missing_counts(list(self.read_eye(s).values()))
        return row

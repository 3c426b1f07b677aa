"""SEED (Zheng & Lu 2015) and SEED-IV (Zheng et al. 2019), in their released layouts.

SEED. 15 subjects × 3 sessions × 15 film clips (trials), 62-channel EEG.

- ``Preprocessed_EEG/{subject}_{date}.mat`` — one MATLAB v5 file per session
  (45 in all); a subject's sessions are numbered 1–3 in date order. Each file
  holds one variable per trial named ``<initials>_eeg<k>`` (k = 1–15; the
  initials differ between subjects, e.g. ``djc_eeg1``), shape
  ``(62, samples)``, downsampled to 200 Hz.
- ``Preprocessed_EEG/label.mat`` — ``label``: the 15 trials' emotion, -1
  negative, 0 neutral, 1 positive (the same clip order in every session).
- ``ExtractedFeatures/{subject}_{date}.mat`` — the release's features,
  among them ``de_LDS<k>`` and ``de_movingAve<k>``: differential entropy on
  1-s windows, ``(62, windows, 5 bands)``, smoothed over time by a linear
  dynamic system or a moving average. ``ExtractedFeatures/label.mat`` is read
  when ``Preprocessed_EEG/`` is absent. The root may also be the release's
  ``SEED/`` folder holding ``SEED_EEG/`` (then ``SEED_EEG/`` is read).
- Eye movements (modality ``eye``, read only when requested), from the
  release's second part, ``SEED_Multimodal``. Only subjects 1–5 and 8–14
  have them (:data:`SEED_EYE_SUBJECTS`; 6, 7 and 15 have EEG only):

  ``SEED_Multimodal/Chinese/04-Eye-tracking-feature/eye_tracking_feature/{subject}_{session}``
  — one file per subject and session (no extension; session 1–3, taken to be
  the date order of ``Preprocessed_EEG``), a pickled dict with
  ``train_data_eye`` ``(windows, 33)`` — the 4-s windows of clips 1–9, back
  to back in clip order — and ``test_data_eye`` — those of clips 10–15
  (other keys are ignored). A clip of T seconds has ``floor(T / 4)``
  windows, the windows of the release's ``02-EEG-DE-feature/eeg_used_4s``
  EEG features; that splits the rows into clips, and rows that do not add up
  are a :class:`DataError`. The 33 columns are the eye-feature set of SEED-V
  (pupil diameter, dispersion, fixation, saccade, blink statistics); NaN is
  kept (imputed later on training data), infinity refused. The folder is
  looked for in the root and in the folder above it (``SEED/SEED_EEG`` as
  root finds ``SEED/SEED_Multimodal``), or given as ``eye_dir``.

  Alignment: EEG feature window k of length w (``window_s`` for features
  computed from ``Preprocessed_EEG``, 1 s for ``ExtractedFeatures``) covers
  ``[k·w, (k+1)·w)`` of the clip; it takes the nan-mean of the 4-s rows whose
  centre lies in it, or, when none does (w < 4 s), the row whose window
  holds its own centre. Windows after the clip's last whole 4-s window
  (its last 0–3 s) are NaN.

  Sources followed: the SEED page (https://bcmi.sjtu.edu.cn/home/seed/seed.html:
  "1st-5th and 8th-14th subjects (12 subjects) have EEG and eye movement
  data while the 6th, 7th and 15th subjects only have EEG data"; parts
  SEED_EEG and SEED_Multimodal); the lab's own fusion code shipped with the
  release (github.com/csliuwei/CrossCultureCode, ``DCCA-AM/chinese_dcca_attention.py``:
  ``eye_dir = "../../04-Eye-tracking-feature/eye_tracking_feature"``, read
  with ``pickle.load``, ``eye_input_dim = 33``, paired with ``eeg_used_4s``);
  public loaders of the release (``pickle.load(open(eye_dir/f"{sub}_{session}"))``,
  ``eye_data['train_data_eye']`` / ``['test_data_eye']`` for subjects
  1–5, 8–14 and sessions 1–3, 499 training windows per session = the sum
  of ``floor(T/4)`` over clips 1–9); and a published directory listing of a
  release copy (``SEED_Multimodal/Chinese/{01-EEG-raw, 02-EEG-DE-feature/eeg_used_1s|eeg_used_4s,
  03-Eye-tracking-excel, 04-Eye-tracking-feature/eye_tracking_feature/10_1 …}``).
  The release's README.pdf was not available; the column order of the 33
  features and the session numbering are our reading, not checked on the
  real files.

SEED-IV. 15 subjects × 3 sessions × 24 trials:

- ``eeg_feature_smooth/{session}/{subject}_{date}.mat`` — ``de_LDS<k>`` and
  ``de_movingAve<k>`` (k = 1–24), ``(62, windows, 5)`` on 4-s windows;
- ``eye_feature_smooth/{session}/{subject}_{date}.mat`` — ``eye_<k>``,
  ``(31, windows)``, the same windows as the EEG features (NaN allowed: a
  window without, e.g., a blink has no blink statistics);
- ``eeg_raw_data/{session}/{subject}_{date}.mat`` (optional; a copy with
  features only has none) — the raw EEG, keys ``<initials>_eeg<k>``
  (k = 1–24; the SEED-IV page's example is ``cz_eeg1``; the initials differ
  between subjects, as in SEED's ``Preprocessed_EEG``), ``(62, samples)`` at
  200 Hz: the SEED-IV page says the raw EEG is "downsampled to a 200 Hz
  sampling rate", and trial lengths agree (session 1 trial 1 has 33,601
  samples, 168 s at 200 Hz = the 42 4-s windows of its ``de_LDS1``; public
  loaders use 800 samples as 4 s). Read by :meth:`SeedIV.load_subject` at
  ``raw_sfreq`` (200) and passed through
  :func:`~moodops.components.datasets.preprocess.preprocess` (band-pass
  0.1–70 Hz, 50 Hz notch, resampled to 200 Hz when stored at another rate);
  ``eye`` rows are then spread over the feature windows as for SEED.
- labels are fixed per session (:data:`SEED_IV_SESSION_LABELS`): 0 neutral,
  1 sad, 2 fear, 3 happy.

Other files in these folders (readme files, other feature sets in the
feature files) are ignored. Every file problem is one :class:`DataError`
line naming the file and the key or value at fault.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from moodops.components.datasets.base import Dataset
from moodops.components.datasets.formats.safe_pickle import load_pickle
from moodops.components.datasets.missing import NAN_REFUSED, missing_counts
from moodops.components.datasets.preprocess import Preprocess, preprocess
from moodops.components.errors import ConfigError, DataError, invalid_choice
from moodops.components.features.spectral import DEFAULT_BANDS
from moodops.components.types import Recording

logger = logging.getLogger(__name__)

#: The 62 electrodes of SEED and SEED-IV in the order of the ``(62, …)`` arrays.
CHANNELS = (
    "FP1", "FPZ", "FP2", "AF3", "AF4", "F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8", "FT7", "FC5",
    "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1", "CZ", "C2", "C4", "C6", "T8",
    "TP7", "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6", "TP8", "P7", "P5", "P3", "P1", "PZ", "P2", "P4",
    "P6", "P8", "PO7", "PO5", "PO3", "POZ", "PO4", "PO6", "PO8", "CB1", "O1", "OZ", "O2", "CB2",
)
N_CHANNELS = len(CHANNELS)
#: The five DE bands of both releases (Hz): moodops' default bands are SEED's.
BANDS: dict[str, tuple[float, float]] = dict(DEFAULT_BANDS)
N_BANDS = len(BANDS)
N_SESSIONS = 3
PRECOMPUTED = ("de_LDS", "de_movingAve")
LABEL_NAMES = ("emotion",)

SEED_SFREQ = 200.0
SEED_WINDOW_S = 1.0
SEED_TRIALS = 15
SEED_CLASSES = ("negative", "neutral", "positive")  # label value + 1
SEED_RAW_DIR = "Preprocessed_EEG"
SEED_FEATURE_DIR = "ExtractedFeatures"
#: The folder of the release's first part (Preprocessed_EEG/, ExtractedFeatures_*/ …) inside ``SEED/``.
SEED_EEG_PART = "SEED_EEG"
#: Where the eye-movement features lie, from the release's ``SEED/`` folder.
SEED_EYE_DIR = ("SEED_Multimodal", "Chinese", "04-Eye-tracking-feature", "eye_tracking_feature")
#: The subjects with eye movements (the SEED page: 1st-5th and 8th-14th).
SEED_EYE_SUBJECTS = (1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14)
N_SEED_EYE_FEATURES = 33
#: The eye file's two arrays: (key, first clip, last clip).
SEED_EYE_PARTS = (("train_data_eye", 1, 9), ("test_data_eye", 10, 15))
#: Both releases' eye features are on 4-s windows.
EYE_WINDOW_S = 4.0

SEED_IV_WINDOW_S = 4.0
SEED_IV_TRIALS = 24
SEED_IV_CLASSES = ("neutral", "sad", "fear", "happy")  # label value
SEED_IV_EEG_DIR = "eeg_feature_smooth"
SEED_IV_EYE_DIR = "eye_feature_smooth"
SEED_IV_RAW_DIR = "eeg_raw_data"
#: The rate of ``eeg_raw_data`` as the release documents it.
SEED_IV_RAW_SFREQ = 200.0
N_EYE_FEATURES = 31
#: Session → the emotion of trials 1–24 (0 neutral, 1 sad, 2 fear, 3 happy), from the SEED-IV readme.
SEED_IV_SESSION_LABELS: dict[int, tuple[int, ...]] = {
    1: (1, 2, 3, 0, 2, 0, 0, 1, 0, 1, 2, 1, 1, 1, 2, 3, 2, 2, 3, 3, 0, 3, 0, 3),
    2: (2, 1, 3, 0, 0, 2, 0, 2, 3, 3, 2, 3, 2, 0, 1, 1, 2, 1, 0, 3, 0, 1, 3, 1),
    3: (1, 2, 2, 1, 3, 3, 3, 1, 1, 2, 1, 0, 2, 3, 3, 0, 2, 3, 0, 0, 2, 0, 1, 0),
}

_FILE_RE = re.compile(r"^(\d+)_(\d{8})\.mat$")
_RAW_KEY_RE = re.compile(r"^(.*)_eeg(\d+)$")
_EYE_KEY_RE = re.compile(r"^eye_(\d+)$")


# --------------------------------------------------------------------------- .mat reading


def _mat_call(path: Path, read: Callable[[], Any]) -> Any:
    """Run a scipy .mat reader; every failure becomes one DataError line naming the file."""
    try:
        return read()
    except MemoryError:
        raise
    except NotImplementedError as e:  # scipy's answer to a v7.3 (HDF5) file
        raise DataError(f"{path}: not a MATLAB v5 .mat file ({e}); save it with -v7 or older") from None
    except Exception as e:  # noqa: BLE001 - scipy raises many types for a damaged file
        raise DataError(f"{path}: unreadable .mat file ({type(e).__name__}: {e})") from None


def read_mat(path: Path, names: list[str] | None = None) -> dict[str, Any]:
    """``scipy.io.loadmat`` of the variables ``names`` (all if None), without MATLAB's ``__header__`` etc."""
    import scipy.io

    out = _mat_call(path, lambda: scipy.io.loadmat(path, variable_names=names))
    return {k: v for k, v in out.items() if not k.startswith("__")}


def mat_names(path: Path) -> list[str]:
    """The variable names in a .mat file, without reading the arrays."""
    import scipy.io

    return [name for name, _, _ in _mat_call(path, lambda: scipy.io.whosmat(path))]


def _listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "") if names else "none"


def trial_keys(path: Path, names: list[str], pattern: re.Pattern[str], n_trials: int, spell: str
               ) -> tuple[dict[int, str], str]:
    """Map trial k → its variable name, and the most common SEED initials (or ``"<initials>"``).

    ``pattern``'s last group is the trial number. Raises on no match, a trial
    held by two keys, or a trial outside 1..n_trials; missing trials are
    left to :func:`require_trials` (called once the present ones were read,
    so that a truncated file reads as unreadable, not as missing keys).
    ``spell`` formats a key name from ``{k}`` (and ``{prefix}``).
    """
    found: dict[int, str] = {}
    prefixes: list[str] = []
    for name in names:
        m = pattern.match(name)
        if not m:
            continue
        k = int(m.group(m.re.groups))
        if m.re.groups > 1:
            prefixes.append(m.group(1))
        if k in found:
            raise DataError(f"{path}: keys '{found[k]}' and '{name}' both hold trial {k}")
        found[k] = name
    prefix = Counter(prefixes).most_common(1)[0][0] if prefixes else "<initials>"
    if not found:
        raise DataError(f"{path}: no '{spell.format(k='<k>', prefix=prefix)}' keys "
                        f"(keys: {_listing(sorted(names))})")
    for k in sorted(found):
        if not 1 <= k <= n_trials:
            raise DataError(f"{path}: key '{found[k]}' is trial {k}, outside 1-{n_trials}")
    return dict(sorted(found.items())), prefix


def require_trials(path: Path, found: dict[int, Any], n_trials: int, spell: str, prefix: str = "") -> None:
    """Every trial 1..n_trials present, else a DataError naming the first missing key."""
    missing = [k for k in range(1, n_trials + 1) if k not in found]
    if missing:
        more = f" ({len(missing)} trials missing)" if len(missing) > 1 else ""
        raise DataError(f"{path}: missing key '{spell.format(k=missing[0], prefix=prefix)}'{more}")


def _numeric(path: Path, key: str, value: Any) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
        kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise DataError(f"{path}: '{key}' holds {kind}, expected a numeric array")
    return value


def _first_nonfinite(path: Path, key: str, values: np.ndarray, allow_nan: bool = False) -> None:
    bad = np.isinf(values) if allow_nan else ~np.isfinite(values)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{path}: '{key}' holds {int(bad.sum())} {'infinite' if allow_nan else 'non-finite'} "
                        f"value(s), first {values[where]} at index {where}")


def read_de(path: Path, name: str, n_trials: int) -> dict[int, tuple[str, np.ndarray]]:
    """One feature file's ``<name><k>`` arrays → trial k → (key, float32 (windows, 62, 5))."""
    spell = name + "{k}"
    keys, _ = trial_keys(path, mat_names(path), re.compile(rf"^{re.escape(name)}(\d+)$"), n_trials, spell)
    arrays = read_mat(path, list(keys.values()))
    out: dict[int, tuple[str, np.ndarray]] = {}
    for k, key in keys.items():
        if key not in arrays:
            raise DataError(f"{path}: key '{key}' is listed but could not be read")
        de = _numeric(path, key, arrays.pop(key))
        if de.ndim != 3 or de.shape[0] != N_CHANNELS or de.shape[2] != N_BANDS or de.shape[1] < 1:
            raise DataError(f"{path}: '{key}' has shape {de.shape}, expected ({N_CHANNELS}, windows, {N_BANDS})")
        _first_nonfinite(path, key, de)
        out[k] = (key, np.ascontiguousarray(de.transpose(1, 0, 2), dtype=np.float32))
    require_trials(path, out, n_trials, spell)
    return out


def scan_sessions(folder: Path) -> dict[int, list[tuple[int, Path]]]:
    """``{subject}_{date}.mat`` files of a folder → subject → [(date, path)] sorted by date."""
    found: dict[int, list[tuple[int, Path]]] = {}
    for p in folder.iterdir():
        m = _FILE_RE.match(p.name)
        if m and p.is_file():
            found.setdefault(int(m.group(1)), []).append((int(m.group(2)), p))
    return {s: sorted(v, key=lambda dp: (dp[0], dp[1].name)) for s, v in sorted(found.items())}


def _class_shares(classes: tuple[str, ...], indices: list[int], windows: list[int]) -> dict[str, float]:
    total = max(sum(windows), 1)
    counts = np.bincount(np.asarray(indices, dtype=np.int64), weights=np.asarray(windows, dtype=np.float64),
                         minlength=len(classes))
    return {f"{c}_share": round(float(counts[i]) / total, 3) for i, c in enumerate(classes)}




def iter_raw_trials(path: Path, n_trials: int, sfreq: float) -> Iterator[tuple[int, str, np.ndarray]]:
    """One raw-EEG session file → (trial k, key, float32 (62, samples)) in trial order, one variable at a time.

    Keys ``<initials>_eeg<k>``, k = 1..n_trials. Every trial must be there, hold
    at least 1 s at ``sfreq`` and only finite values; the check for missing
    trials comes after the present ones were read.
    """
    keys, prefix = trial_keys(path, mat_names(path), _RAW_KEY_RE, n_trials, "{prefix}_eeg{k}")
    for k, key in keys.items():
        arrays = read_mat(path, [key])
        if key not in arrays:
            raise DataError(f"{path}: key '{key}' is listed but could not be read")
        eeg = _numeric(path, key, arrays.pop(key))
        if eeg.ndim != 2 or eeg.shape[0] != N_CHANNELS:
            raise DataError(f"{path}: '{key}' has shape {eeg.shape}, expected ({N_CHANNELS}, samples)")
        if eeg.shape[1] < int(sfreq):
            raise DataError(f"{path}: '{key}' has {eeg.shape[1]} samples, fewer than 1 s at {sfreq:g} Hz")
        _first_nonfinite(path, key, eeg)
        yield k, key, np.ascontiguousarray(eeg, dtype=np.float32)
    require_trials(path, keys, n_trials, "{prefix}_eeg{k}", prefix)


def eye_windows(rows: np.ndarray, n_windows: int, window_s: float, eye_window_s: float = EYE_WINDOW_S
                ) -> np.ndarray:
    """Eye features of back-to-back ``eye_window_s`` windows → one row per ``window_s`` EEG window.

    Parameters
    ----------
    rows : ndarray, shape (n_rows, n_features)
        One trial's eye features; row j covers ``[j·e, (j+1)·e)`` s, e = ``eye_window_s``.
    n_windows : int
        The trial's EEG feature windows; window k covers ``[k·w, (k+1)·w)``, w = ``window_s``.

    Returns
    -------
    ndarray, shape (n_windows, n_features), float32
        Window k: the nan-mean of the rows whose centre lies in it; when none
        does (w < e), the row whose window holds the EEG window's centre; NaN
        after the last row.
    """
    rows = np.asarray(rows, dtype=np.float64)
    out = np.full((n_windows, rows.shape[1]), np.nan)
    eps = 1e-9  # window edges are exact multiples; keep a centre on an edge in the later window
    centres = (np.arange(len(rows)) + 0.5) * eye_window_s
    k = np.floor(centres / window_s + eps).astype(np.int64)
    keep = k < n_windows
    k, kept = k[keep], rows[keep]
    present = ~np.isnan(kept)
    sums = np.zeros_like(out)
    counts = np.zeros_like(out)
    np.add.at(sums, k, np.where(present, kept, 0.0))
    np.add.at(counts, k, present)
    filled = np.zeros(n_windows, dtype=bool)
    filled[k] = True
    with np.errstate(invalid="ignore"):
        out[filled] = sums[filled] / counts[filled]  # 0/0: every row of that feature NaN
    empty = np.flatnonzero(~filled)
    j = np.floor((empty + 0.5) * window_s / eye_window_s + eps).astype(np.int64)
    inside = j < len(rows)
    out[empty[inside]] = rows[j[inside]]
    return out.astype(np.float32)


def read_seed_eye(path: Path, clip_windows: list[int], eeg_path: Path) -> list[np.ndarray]:
    """One SEED eye file → the 15 clips' 4-s rows, float32 ``(clip_windows[k], 33)`` each, NaN kept.

    ``clip_windows`` are the clips' whole 4-s windows from the EEG of
    ``eeg_path`` (named in the error when the rows do not add up).
    """
    obj = load_pickle(path)
    if not isinstance(obj, dict):
        raise DataError(f"{path}: holds a {type(obj).__name__}, expected a dict with "
                        f"{' and '.join(repr(key) for key, _, _ in SEED_EYE_PARTS)}")
    out: list[np.ndarray] = []
    for key, first, last in SEED_EYE_PARTS:
        if key not in obj:
            raise DataError(f"{path}: missing key '{key}' (keys: {_listing(sorted(map(str, obj)))})")
        rows = _numeric(path, key, obj[key])
        if rows.ndim != 2 or rows.shape[1] != N_SEED_EYE_FEATURES:
            raise DataError(f"{path}: '{key}' has shape {rows.shape}, expected (windows, {N_SEED_EYE_FEATURES})")
        expected = clip_windows[first - 1:last]
        if len(rows) != sum(expected):
            raise DataError(f"{path}: '{key}' has {len(rows)} rows but clips {first}-{last} of {eeg_path} have "
                            f"{sum(expected)} whole 4-s windows ({'+'.join(map(str, expected))})")
        _first_nonfinite(path, key, rows, allow_nan=True)
        out.extend(np.split(rows.astype(np.float32), np.cumsum(expected)[:-1]))
    return out


def _window_length(window_s: float | None) -> float:
    """The ``window_s`` option: the EEG feature windows the eye rows are spread over (None: 1 s)."""
    value = 1.0 if window_s is None else window_s
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or int(round(value * SEED_SFREQ)) < 2:
        raise ConfigError(f"The 'window_s' parameter must give at least 2 samples at {SEED_SFREQ:g} Hz. "
                          f"Got {window_s} instead.")
    return value


# --------------------------------------------------------------------------- SEED


class Seed(Dataset):
    """SEED (Zheng & Lu 2015): 15 subjects × 3 sessions × 15 film clips, 62-ch EEG at 200 Hz, 3 emotions.

    Parameters
    ----------
    root : path
        The folder holding ``Preprocessed_EEG/`` and/or ``ExtractedFeatures/``
        (or one of those folders itself, or the release's ``SEED/`` holding
        ``SEED_EEG/``).
    subjects : list of int, optional
        Subject numbers (1–15); all present subjects by default.
    modalities : sequence of str
        ``eye`` adds ``extra["eye"]`` ``(n_windows, 33)`` float32 to every
        recording (see the module docstring) and leaves out, with a logged
        warning naming them, the subjects without eye files (6, 7 and 15 in
        the release). Eye files are opened only when ``eye`` is requested.
    window_s : float
        Length of the EEG feature windows computed from ``Preprocessed_EEG``
        (1 s), over which the eye rows are spread; only used for ``eye``
        (``load_precomputed`` always uses the release's 1-s windows).
    eye_dir : path, optional
        The ``eye_tracking_feature/`` folder, when it is not where the release
        puts it.

    ``load_subject`` reads ``Preprocessed_EEG`` (raw EEG, float32, one file at
    a time); ``load_precomputed(subject, "de_LDS" | "de_movingAve")`` reads
    ``ExtractedFeatures`` (``features`` ``(windows, 62, 5)``, ``sfreq`` 1.0:
    one window per second). Target ``emotion``: negative / neutral / positive.
    """

    name: ClassVar[str] = "seed"
    eeg_channels: ClassVar[tuple[str, ...]] = CHANNELS
    eeg_sfreq: ClassVar[float | None] = SEED_SFREQ
    per_subject_train_trials: ClassVar[int | None] = 9  # 9 train / 6 test per session, as published
    modalities: ClassVar[tuple[str, ...]] = ("eeg", "raw_eeg", "eye")
    option_names: ClassVar[tuple[str, ...]] = ("window_s",)
    precomputed: ClassVar[tuple[str, ...]] = PRECOMPUTED
    label_names: ClassVar[tuple[str, ...]] = LABEL_NAMES
    targets: ClassVar[tuple[str, ...]] = LABEL_NAMES
    class_names: ClassVar[tuple[str, ...]] = SEED_CLASSES

    def __init__(self, root: str | Path, subjects=None, modalities=(), window_s: float | None = 1.0,
                 eye_dir: str | Path | None = None) -> None:
        super().__init__(root, subjects, modalities)
        self.window_s = _window_length(window_s)
        self.eye_dir = None if eye_dir is None else Path(eye_dir).expanduser()
        self._scans: dict[Path, dict[int, list[tuple[int, Path]]]] = {}
        self._labels: np.ndarray | None = None
        self._warned: set[int] = set()

    # -- layout

    @property
    def base(self) -> Path:
        if (self.root / SEED_RAW_DIR).is_dir() or (self.root / SEED_FEATURE_DIR).is_dir():
            return self.root
        if self.root.name in (SEED_RAW_DIR, SEED_FEATURE_DIR):
            return self.root.parent
        if (self.root / SEED_EEG_PART).is_dir():
            return self.root / SEED_EEG_PART
        return self.root

    @property
    def raw_dir(self) -> Path:
        return self.base / SEED_RAW_DIR

    @property
    def feature_dir(self) -> Path:
        return self.base / SEED_FEATURE_DIR

    @property
    def wants_eye(self) -> bool:
        return "eye" in self.requested_modalities

    def eye_folder(self) -> Path | None:
        """The ``eye_tracking_feature/`` folder: ``eye_dir``, else in the root or the folder above it."""
        if self.eye_dir is not None:
            return self.eye_dir if self.eye_dir.is_dir() else None
        for top in (self.base, self.base.parent):
            candidate = top.joinpath(*SEED_EYE_DIR)
            if candidate.is_dir():
                return candidate
        return None

    def _eye_folder(self) -> Path:
        folder = self.eye_folder()
        if folder is None:
            where = (str(self.eye_dir) if self.eye_dir is not None
                     else f"{'/'.join(SEED_EYE_DIR)} in {self.base} or {self.base.parent}")
            raise DataError(f"{where}: SEED eye-movement folder not found (needed for the 'eye' modality; "
                            "the release keeps it in its SEED_Multimodal part, beside SEED_EEG)")
        return folder

    @classmethod
    def present_modalities(cls, root: str | Path) -> tuple[str, ...]:
        """Without the ``eye_tracking_feature/`` folder there is no eye modality."""
        has_eye = cls(root).eye_folder() is not None
        return tuple(m for m in cls.modalities if m != "eye" or has_eye)

    def eye_files(self, subject: int) -> list[Path]:
        """The subject's eye files of sessions 1–3 (``{subject}_{session}``, no extension)."""
        return [self._eye_folder() / f"{subject}_{session}" for session in range(1, N_SESSIONS + 1)]

    def missing_eye_files(self, subject: int) -> list[str]:
        """The names of the subject's eye files that are not there (none: its eye data are complete)."""
        return [p.name for p in self.eye_files(subject) if not p.is_file()]

    def _scan(self, folder: Path) -> dict[int, list[tuple[int, Path]]]:
        if folder not in self._scans:
            self._scans[folder] = scan_sessions(folder) if folder.is_dir() else {}
        return self._scans[folder]

    def available_subjects(self) -> dict[int, Path]:
        if not self.root.exists():
            raise DataError(f"{self.root}: SEED root does not exist")
        if not self.root.is_dir():
            raise DataError(f"{self.root}: SEED root is not a directory")
        if not self.raw_dir.is_dir() and not self.feature_dir.is_dir():
            raise DataError(f"{self.base}: no {SEED_RAW_DIR}/ or {SEED_FEATURE_DIR}/ folder; expected the SEED "
                            f"release layout ({SEED_RAW_DIR}/1_20131027.mat …)")
        found: dict[int, Path] = {}
        for folder in (self.feature_dir, self.raw_dir):  # raw files win
            found.update({s: files[0][1] for s, files in self._scan(folder).items()})
        if not found:
            folders = " or ".join(str(f) for f in (self.raw_dir, self.feature_dir) if f.is_dir())
            raise DataError(f"{folders}: no SEED subject files ({{subject}}_{{date}}.mat, e.g. 1_20131027.mat)")
        return dict(sorted(found.items()))

    def subjects(self) -> list[int]:
        """Requested ∩ available subjects; with ``eye``, only those with their three eye files."""
        subjects = super().subjects()
        if not self.wants_eye:
            return subjects
        missing = {s: self.missing_eye_files(s) for s in subjects}
        kept = [s for s in subjects if not missing[s]]
        left_out = [s for s in subjects if missing[s] and s not in self._warned]
        if left_out:
            self._warned.update(left_out)
            logger.warning("SEED subject%s %s left out (eye requested; the release has eye movements for subjects "
                           "1-5 and 8-14 only): %s lacks %s", "s" if len(left_out) > 1 else "",
                           ", ".join(map(str, left_out)), self._eye_folder(),
                           ", ".join(name for s in left_out for name in missing[s]))
        if not kept:
            raise DataError(f"{self._eye_folder()}: no selected SEED subject has eye-movement files "
                            f"(subjects {', '.join(map(str, subjects))})")
        return kept

    def session_files(self, subject: int, folder: Path) -> list[Path]:
        """The subject's 3 files in ``folder``, in date (= session) order."""
        if not folder.is_dir():
            raise DataError(f"{folder}: folder missing (the SEED release keeps "
                            f"{'raw EEG' if folder.name == SEED_RAW_DIR else 'precomputed features'} there)")
        files = self._scan(folder).get(subject, [])
        if len(files) != N_SESSIONS:
            raise DataError(f"{folder}: subject {subject} has {len(files)} session file(s) "
                            f"({_listing([p.name for _, p in files])}), expected {N_SESSIONS}")
        dates = [d for d, _ in files]
        if len(set(dates)) != len(dates):
            raise DataError(f"{folder}: subject {subject} has two files of one date "
                            f"({_listing([p.name for _, p in files])}); sessions are told apart by date")
        return [p for _, p in files]

    def label_file(self) -> Path:
        for folder in (self.raw_dir, self.feature_dir):
            if folder.is_dir():
                return folder / "label.mat"
        return self.raw_dir / "label.mat"

    def source_files(self, subject: int) -> list[Path]:
        if subject not in self.available_subjects():
            raise DataError(f"{self.root}: subject {subject} not found")
        files = [p for folder in (self.raw_dir, self.feature_dir) for _, p in self._scan(folder).get(subject, [])]
        label = self.label_file()
        if self.wants_eye and not self.missing_eye_files(subject):
            files += self.eye_files(subject)
        return sorted(files + ([label] if label.is_file() else []))

    def options(self) -> dict[str, Any]:
        return {"window_s": self.window_s} if self.wants_eye else {}

    # -- reading

    def labels(self) -> np.ndarray:
        """The 15 trial labels in {-1, 0, 1} from ``label.mat``."""
        if self._labels is None:
            path = self.label_file()
            if not path.is_file():
                raise DataError(f"{path}: label file missing (SEED keeps the 15 trial labels in label.mat)")
            arrays = read_mat(path)
            if "label" not in arrays:
                raise DataError(f"{path}: missing key 'label' (keys: {_listing(sorted(arrays))})")
            values = _numeric(path, "label", arrays["label"]).astype(np.float64).ravel()
            if values.size != SEED_TRIALS:
                raise DataError(f"{path}: 'label' has {values.size} values (shape {arrays['label'].shape}), "
                                f"expected {SEED_TRIALS}")
            for k, v in enumerate(values):
                if v not in (-1.0, 0.0, 1.0):
                    raise DataError(f"{path}: 'label' of trial {k + 1} is {v}, expected -1, 0 or 1")
            self._labels = values
        return self._labels

    def read_raw_file(self, path: Path) -> list[np.ndarray]:
        """One session file → its 15 trials as float32 (62, samples), read one variable at a time."""
        return [eeg for _, _, eeg in iter_raw_trials(path, SEED_TRIALS, SEED_SFREQ)]

    def read_eye(self, subject: int, session: int, eeg_path: Path, clip_windows: list[int]) -> list[np.ndarray]:
        """One session's eye rows per clip (4-s windows, NaN kept), checked against the EEG's clip lengths."""
        missing = self.missing_eye_files(subject)
        if missing:
            raise DataError(f"{self._eye_folder()}: SEED subject {subject} has no complete eye data "
                            f"(no {', '.join(missing)})")
        return read_seed_eye(self.eye_files(subject)[session - 1], clip_windows, eeg_path)

    def load_subject(self, subject: int) -> list[Recording]:
        labels = self.labels()
        win = int(round(self.window_s * SEED_SFREQ))
        eye_win = int(EYE_WINDOW_S * SEED_SFREQ)
        recordings = []
        for session, path in enumerate(self.session_files(subject, self.raw_dir), start=1):
            trials = self.read_raw_file(path)
            eyes = (self.read_eye(subject, session, path, [x.shape[1] // eye_win for x in trials])
                    if self.wants_eye else [])
            for k, eeg in enumerate(trials, start=1):
                extra = {"eye": eye_windows(eyes[k - 1], eeg.shape[1] // win, self.window_s)} if eyes else {}
                recordings.append(Recording(
                    subject=subject, session=session, trial=k, data=eeg, sfreq=SEED_SFREQ, ch_names=CHANNELS,
                    labels={"emotion": float(labels[k - 1])}, extra=extra,
                ))
        return recordings

    def load_precomputed(self, subject: int, name: str) -> list[Recording]:
        if name not in self.precomputed:
            raise ConfigError(invalid_choice("precomputed", name, self.precomputed))
        labels = self.labels()
        per_eye_window = int(EYE_WINDOW_S / SEED_WINDOW_S)
        recordings = []
        for session, path in enumerate(self.session_files(subject, self.feature_dir), start=1):
            de = read_de(path, name, SEED_TRIALS)
            eyes = (self.read_eye(subject, session, path, [len(f) // per_eye_window for _, f in de.values()])
                    if self.wants_eye else [])
            for k, (_, feats) in de.items():
                extra = {"eye": eye_windows(eyes[k - 1], len(feats), SEED_WINDOW_S)} if eyes else {}
                recordings.append(Recording(
                    subject=subject, session=session, trial=k, data=None, sfreq=1.0 / SEED_WINDOW_S,
                    ch_names=CHANNELS, labels={"emotion": float(labels[k - 1])}, features=feats, extra=extra,
                ))
        return recordings

    def make_targets(self, labels: dict[str, np.ndarray], target: str) -> tuple[np.ndarray, tuple[str, ...]]:
        self.check_target(target)
        values = np.asarray(labels[target], dtype=np.float64)
        bad = ~np.isin(values, (-1.0, 0.0, 1.0))
        if bad.any():
            raise DataError(f"seed: label '{target}' holds {values[bad][0]}, expected -1, 0 or 1")
        return (np.rint(values).astype(np.int64) + 1), SEED_CLASSES

    def check(self) -> list[dict[str, Any]]:
        """Validate every selected subject's files (raw EEG, precomputed features, eye files); one row each.

        ``missing``: per modality, NaN counts (:func:`missing_counts`, ``eye``
        on the release's 4-s rows, for the subjects with eye files when
        ``eye`` is requested or the eye folder is there) or
        :data:`NAN_REFUSED` (``eeg``: its loader refuses NaN).
        """
        rows = []
        eye = self.wants_eye or self.eye_folder() is not None
        for s in self.subjects():
            labels = self.labels()
            has_raw = s in self._scan(self.raw_dir)
            has_features = s in self._scan(self.feature_dir)
            seconds: float | str = "-"
            if has_features:
                for name in self.precomputed:
                    recs = self.load_precomputed(s, name)
                windows = [len(r.features) for r in recs]
                clip_windows = [len(r.features) // int(EYE_WINDOW_S / SEED_WINDOW_S) for r in recs]
                eeg_files = self.session_files(s, self.feature_dir)
            if has_raw:  # the raw EEG's 1-s windows are what `--feature de` gives
                recs = self.load_subject(s)
                seconds = round(sum(r.data.shape[1] for r in recs) / SEED_SFREQ, 2)
                windows = [int(r.data.shape[1] // int(SEED_SFREQ * SEED_WINDOW_S)) for r in recs]
                clip_windows = [r.data.shape[1] // int(SEED_SFREQ * EYE_WINDOW_S) for r in recs]
                eeg_files = self.session_files(s, self.raw_dir)
            missing: dict[str, Any] = {"eeg": NAN_REFUSED}
            if eye and not self.missing_eye_files(s):
                arrays = [rows_k for session, path in enumerate(eeg_files, start=1)
                          for rows_k in self.read_eye(s, session, path, clip_windows[(session - 1) * SEED_TRIALS:
                                                                                     session * SEED_TRIALS])]
                missing["eye"] = missing_counts(arrays)
            rows.append({
                "subject": s,
                "sessions": len({r.session for r in recs}),
                "trials": len(recs),
                "seconds": seconds,
                "windows": sum(windows),
                "features": "+".join(self.precomputed) if has_features else "-",
                **_class_shares(SEED_CLASSES, [int(labels[r.trial - 1]) + 1 for r in recs], windows),
                "missing": missing,
            })
        return rows


# --------------------------------------------------------------------------- SEED-IV


class SeedIV(Dataset):
    """SEED-IV (Zheng et al. 2019): 15 subjects × 3 sessions × 24 clips, 62-ch EEG + eye features, 4 emotions.

    Parameters
    ----------
    root : path
        The folder holding ``eeg_feature_smooth/`` and/or ``eeg_raw_data/``
        (and ``eye_feature_smooth/`` for the eye modality), one of those
        folders itself, or a folder holding ``SEED_IV/``.
    subjects : list of int, optional
        Subject numbers (1–15); all present subjects by default.
    modalities : sequence of str
        ``eeg`` and optionally ``eye``: then every recording carries
        ``extra["eye"]`` float32 from the eye file of the same subject and
        session — ``(windows, 31)`` on the release's 4-s windows from
        :meth:`load_precomputed`, spread over ``window_s`` windows from
        :meth:`load_subject` — NaN kept (imputation is fitted later on
        training data only). Eye files are opened only when ``eye`` is requested.
    window_s : float
        Length of the EEG feature windows computed from ``eeg_raw_data`` (1 s),
        over which the 4-s eye rows are spread; only used for ``eye``.
    raw_sfreq : float
        The rate ``eeg_raw_data`` is stored at (200 Hz, as the release documents).
    preprocessing : Preprocess or None
        What :meth:`load_subject` does to the raw EEG
        (:func:`~moodops.components.datasets.preprocess.preprocess`; default
        band-pass 0.1–70 Hz, 50 Hz notch, output at 200 Hz). None keeps the
        signal as stored, which needs ``raw_sfreq`` 200.

    :meth:`load_subject` reads ``eeg_raw_data`` (``data`` float32 ``(62,
    samples)`` at 200 Hz), or raises :class:`ConfigError` for a copy without
    it; ``load_precomputed(subject, "de_LDS" | "de_movingAve")`` reads
    ``eeg_feature_smooth`` (``features`` ``(windows, 62, 5)``, ``sfreq`` 0.25:
    one window per 4 s). Target ``emotion``: neutral / sad / fear / happy.
    """

    name: ClassVar[str] = "seed-iv"
    eeg_channels: ClassVar[tuple[str, ...]] = CHANNELS
    eeg_sfreq: ClassVar[float | None] = SEED_SFREQ
    per_subject_train_trials: ClassVar[int | None] = 16  # 16 train / 8 test per session (MV-SSTMA paper)
    modalities: ClassVar[tuple[str, ...]] = ("eeg", "raw_eeg", "eye")
    #: A feature release first: without a model that needs raw EEG, runs take its precomputed DE.
    default_feature: ClassVar[str | None] = "precomputed"
    option_names: ClassVar[tuple[str, ...]] = ("window_s",)
    precomputed: ClassVar[tuple[str, ...]] = PRECOMPUTED
    label_names: ClassVar[tuple[str, ...]] = LABEL_NAMES
    targets: ClassVar[tuple[str, ...]] = LABEL_NAMES
    class_names: ClassVar[tuple[str, ...]] = SEED_IV_CLASSES

    def __init__(self, root: str | Path, subjects=None, modalities=(), window_s: float | None = 1.0,
                 raw_sfreq: float = SEED_IV_RAW_SFREQ, preprocessing: Preprocess | None = Preprocess()) -> None:
        super().__init__(root, subjects, modalities)
        self.window_s = _window_length(window_s)
        try:
            rate = float(raw_sfreq)
        except (TypeError, ValueError):
            rate = math.nan
        if not math.isfinite(rate) or rate <= 0:
            raise ConfigError(f"The 'raw_sfreq' parameter must be a positive rate in Hz. Got {raw_sfreq!r} instead.")
        if preprocessing is not None and not isinstance(preprocessing, Preprocess):
            raise ConfigError(f"The 'preprocessing' parameter must be a Preprocess or None. "
                              f"Got {type(preprocessing).__name__} instead.")
        if preprocessing is None and rate != SEED_IV_RAW_SFREQ:
            raise ConfigError(f"raw EEG stored at {rate:g} Hz must be resampled to {SEED_IV_RAW_SFREQ:g} Hz; "
                              "pass a Preprocess (preprocessing=None keeps the stored rate)")
        self.raw_sfreq = rate
        self.preprocessing = preprocessing
        self._scans: dict[Path, dict[int, list[tuple[int, Path]]]] = {}

    # -- layout

    @property
    def base(self) -> Path:
        own = (SEED_IV_EEG_DIR, SEED_IV_RAW_DIR)
        if any((self.root / d).is_dir() for d in own):
            return self.root
        if self.root.name in own:
            return self.root.parent
        if (self.root / "SEED_IV").is_dir():  # the release's zip unpacks into SEED_IV/
            return self.root / "SEED_IV"
        return self.root

    @property
    def has_raw(self) -> bool:
        """Whether this copy has ``eeg_raw_data/``."""
        return (self.base / SEED_IV_RAW_DIR).is_dir()

    @classmethod
    def present_modalities(cls, root: str | Path) -> tuple[str, ...]:
        """Raw EEG only with ``eeg_raw_data/``; eye only with ``eye_feature_smooth/``."""
        copy = cls(root)
        return tuple(m for m in cls.modalities if (m != "raw_eeg" or copy.has_raw)
                     and (m != "eye" or (copy.base / SEED_IV_EYE_DIR).is_dir()))

    @property
    def wants_eye(self) -> bool:
        return "eye" in self.requested_modalities

    def session_dirs(self, kind: str) -> list[Path]:
        """``kind/1``, ``kind/2``, ``kind/3``; a missing folder is a DataError."""
        top = self.base / kind
        if not top.is_dir():
            raw = f" (or {SEED_IV_RAW_DIR}/ for raw EEG)" if kind == SEED_IV_EEG_DIR else ""
            raise DataError(f"{top}: folder missing; expected {kind}/1, {kind}/2 and {kind}/3 "
                            f"holding {{subject}}_{{date}}.mat files{raw}")
        dirs = [top / str(s) for s in range(1, N_SESSIONS + 1)]
        for d in dirs:
            if not d.is_dir():
                raise DataError(f"{d}: session folder missing (SEED-IV has sessions 1, 2 and 3 under {kind}/)")
        return dirs

    def raw_dirs(self) -> list[Path]:
        """``eeg_raw_data/1`` … ``/3``; a copy without ``eeg_raw_data/`` is a ConfigError (features only)."""
        if not self.has_raw:
            raise ConfigError(f"{self.base / SEED_IV_RAW_DIR}: this SEED-IV copy has no raw EEG (eeg_raw_data/ "
                              "is absent; it ships DE features only); use --feature precomputed (de_LDS or "
                              "de_movingAve)")
        return self.session_dirs(SEED_IV_RAW_DIR)

    def _scan(self, folder: Path) -> dict[int, list[tuple[int, Path]]]:
        if folder not in self._scans:
            found = scan_sessions(folder) if folder.is_dir() else {}
            for s, files in found.items():
                if len(files) > 1:
                    raise DataError(f"{folder}: {len(files)} files for subject {s} "
                                    f"({_listing([p.name for _, p in files])}); one per session folder")
            self._scans[folder] = found
        return self._scans[folder]

    def available_subjects(self) -> dict[int, Path]:
        if not self.root.exists():
            raise DataError(f"{self.root}: SEED-IV root does not exist")
        if not self.root.is_dir():
            raise DataError(f"{self.root}: SEED-IV root is not a directory")
        features = (self.base / SEED_IV_EEG_DIR).is_dir() or not self.has_raw
        kind = SEED_IV_EEG_DIR if features else SEED_IV_RAW_DIR
        found: dict[int, Path] = {}
        for d in reversed(self.session_dirs(kind)):  # session 1 wins
            scan = self._scan(d)
            if not scan:
                raise DataError(f"{d}: no SEED-IV subject files ({{subject}}_{{date}}.mat, e.g. 1_20160518.mat)")
            found.update({s: files[0][1] for s, files in scan.items()})
        return dict(sorted(found.items()))

    def session_file(self, subject: int, folder: Path) -> Path:
        files = self._scan(folder).get(subject)
        if not files:
            raise DataError(f"{folder}: no file for subject {subject} (session {folder.name})")
        return files[0][1]

    def source_files(self, subject: int) -> list[Path]:
        """The subject's EEG feature, raw EEG and eye files of all three sessions, where present."""
        if subject not in self.available_subjects():
            raise DataError(f"{self.root}: subject {subject} not found")
        files = [p for kind in (SEED_IV_EEG_DIR, SEED_IV_RAW_DIR, SEED_IV_EYE_DIR)
                 for s in range(1, N_SESSIONS + 1) for _, p in self._scan(self.base / kind / str(s)).get(subject, [])]
        return sorted(files)

    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {"window_s": self.window_s} if self.wants_eye else {}
        if self.has_raw:
            out["raw_sfreq"] = self.raw_sfreq
            out["preprocessing"] = None if self.preprocessing is None else dataclasses.asdict(self.preprocessing)
        return out

    # -- reading

    def read_eye(self, path: Path, eeg_path: Path, windows: dict[int, tuple[str, int]], unit: str = ""
                 ) -> dict[int, np.ndarray]:
        """One eye file → trial k → float32 (windows, 31), its windows checked against the EEG's.

        ``windows``: trial k → (the EEG key, its number of 4-s windows);
        ``unit`` explains that number in the error.
        """
        keys, _ = trial_keys(path, mat_names(path), _EYE_KEY_RE, SEED_IV_TRIALS, "eye_{k}")
        arrays = read_mat(path, list(keys.values()))
        out = {}
        for k, key in keys.items():
            if key not in arrays:
                raise DataError(f"{path}: key '{key}' is listed but could not be read")
            eye = _numeric(path, key, arrays.pop(key))
            if eye.ndim != 2 or eye.shape[0] != N_EYE_FEATURES:
                raise DataError(f"{path}: '{key}' has shape {eye.shape}, expected ({N_EYE_FEATURES}, windows)")
            eeg_key, n = windows[k]
            if eye.shape[1] != n:
                raise DataError(f"{path}: '{key}' has {eye.shape[1]} windows but {eeg_path} '{eeg_key}' has {n}{unit}")
            _first_nonfinite(path, key, eye, allow_nan=True)
            out[k] = np.ascontiguousarray(eye.T, dtype=np.float32)
        require_trials(path, out, SEED_IV_TRIALS, "eye_{k}")
        return out

    def _load(self, subject: int, name: str, eye: bool) -> list[Recording]:
        if name not in self.precomputed:
            raise ConfigError(invalid_choice("precomputed", name, self.precomputed))
        eeg_dirs = self.session_dirs(SEED_IV_EEG_DIR)
        eye_dirs = self.session_dirs(SEED_IV_EYE_DIR) if eye else []
        recordings = []
        for session, folder in enumerate(eeg_dirs, start=1):
            path = self.session_file(subject, folder)
            de = read_de(path, name, SEED_IV_TRIALS)
            eyes = (self.read_eye(self.session_file(subject, eye_dirs[session - 1]), path,
                                  {k: (key, len(f)) for k, (key, f) in de.items()}) if eye else {})
            labels = SEED_IV_SESSION_LABELS[session]
            for k, (_, feats) in de.items():
                recordings.append(Recording(
                    subject=subject, session=session, trial=k, data=None, sfreq=1.0 / SEED_IV_WINDOW_S,
                    ch_names=CHANNELS, labels={"emotion": float(labels[k - 1])}, features=feats,
                    extra={"eye": eyes[k]} if eye else {},
                ))
        return recordings

    def load_precomputed(self, subject: int, name: str) -> list[Recording]:
        return self._load(subject, name, self.wants_eye)

    def read_raw(self, subject: int, session: int) -> tuple[Path, list[tuple[str, Recording]]]:
        """One session's raw EEG as stored (float32, ``raw_sfreq``), validated: (file, [(key, recording)] × 24)."""
        path = self.session_file(subject, self.raw_dirs()[session - 1])
        labels = SEED_IV_SESSION_LABELS[session]
        return path, [(key, Recording(subject=subject, session=session, trial=k, data=eeg, sfreq=self.raw_sfreq,
                                      ch_names=CHANNELS, labels={"emotion": float(labels[k - 1])}))
                      for k, key, eeg in iter_raw_trials(path, SEED_IV_TRIALS, self.raw_sfreq)]

    def load_subject(self, subject: int) -> list[Recording]:
        """The subject's raw EEG from ``eeg_raw_data``, preprocessed to 200 Hz (``eye`` spread over ``window_s``)."""
        dirs = self.raw_dirs()
        eye_dirs = self.session_dirs(SEED_IV_EYE_DIR) if self.wants_eye else []
        recordings = []
        for session, folder in enumerate(dirs, start=1):
            path = self.session_file(subject, folder)
            labels = SEED_IV_SESSION_LABELS[session]
            trials = []
            for k, key, eeg in iter_raw_trials(path, SEED_IV_TRIALS, self.raw_sfreq):
                rec = Recording(subject=subject, session=session, trial=k, data=eeg, sfreq=self.raw_sfreq,
                                ch_names=CHANNELS, labels={"emotion": float(labels[k - 1])})
                if self.preprocessing is not None:
                    rec = preprocess(rec, self.preprocessing)
                trials.append((key, rec))
            if self.wants_eye:
                sfreq = trials[0][1].sfreq
                eye_win = int(round(SEED_IV_WINDOW_S * sfreq))
                eyes = self.read_eye(self.session_file(subject, eye_dirs[session - 1]), path,
                                     {r.trial: (key, r.data.shape[1] // eye_win) for key, r in trials},
                                     f" whole 4-s windows (at {sfreq:g} Hz)")
                win = int(round(self.window_s * sfreq))
                trials = [(key, dataclasses.replace(r, extra={"eye": eye_windows(eyes[r.trial], r.data.shape[1] // win,
                                                                                 self.window_s)}))
                          for key, r in trials]
            recordings.extend(r for _, r in trials)
        return recordings

    def make_targets(self, labels: dict[str, np.ndarray], target: str) -> tuple[np.ndarray, tuple[str, ...]]:
        self.check_target(target)
        values = np.asarray(labels[target], dtype=np.float64)
        bad = ~np.isin(values, (0.0, 1.0, 2.0, 3.0))
        if bad.any():
            raise DataError(f"seed-iv: label '{target}' holds {values[bad][0]}, expected 0, 1, 2 or 3")
        return np.rint(values).astype(np.int64), SEED_IV_CLASSES

    def check(self) -> list[dict[str, Any]]:
        """Validate every selected subject's feature files (and eye and raw files when present); one row each.

        ``missing``: per modality, NaN counts (:func:`missing_counts`; ``eye``
        when the eye files are there) or :data:`NAN_REFUSED` (``eeg``). With
        ``eeg_raw_data/``, ``seconds`` is the raw EEG's length (read as
        stored, not preprocessed).
        """
        rows = []
        eye = self.wants_eye or (self.base / SEED_IV_EYE_DIR).is_dir()
        features = (self.base / SEED_IV_EEG_DIR).is_dir()
        eye_win = int(round(SEED_IV_WINDOW_S * self.raw_sfreq))
        for s in self.subjects():
            recs: list[Recording] = []
            if features:
                recs = self._load(s, self.precomputed[0], eye)
                for name in self.precomputed[1:]:  # validated too; the eye files once are enough
                    self._load(s, name, False)
            windows = [len(r.features) for r in recs]
            row: dict[str, Any] = {}
            if self.has_raw:
                samples = 0
                for session in range(1, N_SESSIONS + 1):
                    path, raw = self.read_raw(s, session)
                    samples += sum(r.data.shape[1] for _, r in raw)
                    if not features:
                        recs += [r for _, r in raw]
                        windows += [r.data.shape[1] // eye_win for _, r in raw]
                        continue
                    for (key, r), n in zip(raw, windows[(session - 1) * SEED_IV_TRIALS:]):
                        if r.data.shape[1] // eye_win != n:
                            raise DataError(f"{path}: '{key}' has {r.data.shape[1] // eye_win} whole 4-s windows "
                                            f"at {self.raw_sfreq:g} Hz but its DE features have {n} (is raw_sfreq "
                                            "right?)")
                row["seconds"] = round(samples / self.raw_sfreq, 2)
            missing: dict[str, Any] = {"eeg": NAN_REFUSED}
            if eye and features:
                missing["eye"] = missing_counts([r.extra["eye"] for r in recs])
            rows.append({
                "subject": s,
                "sessions": len({r.session for r in recs}),
                "trials": len(recs),
                **row,
                "windows": sum(windows),
                **_class_shares(SEED_IV_CLASSES, [int(r.labels["emotion"]) for r in recs], windows),
                "missing": missing,
            })
        return rows

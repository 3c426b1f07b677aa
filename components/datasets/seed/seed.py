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
  when ``Preprocessed_EEG/`` is absent.

SEED-IV. 15 subjects × 3 sessions × 24 trials; the release used here ships
features only (no raw EEG):

- ``eeg_feature_smooth/{session}/{subject}_{date}.mat`` — ``de_LDS<k>`` and
  ``de_movingAve<k>`` (k = 1–24), ``(62, windows, 5)`` on 4-s windows;
- ``eye_feature_smooth/{session}/{subject}_{date}.mat`` — ``eye_<k>``,
  ``(31, windows)``, the same windows as the EEG features (NaN allowed: a
  window without, e.g., a blink has no blink statistics);
- labels are fixed per session (:data:`SEED_IV_SESSION_LABELS`): 0 neutral,
  1 sad, 2 fear, 3 happy.

Other files in these folders (readme files, other feature sets in the
feature files) are ignored. Every file problem is one :class:`DataError`
line naming the file and the key or value at fault.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from moodops.components.datasets.base import Dataset
from moodops.components.datasets.missing import NAN_REFUSED, missing_counts
from moodops.components.errors import ConfigError, DataError, invalid_choice
from moodops.components.features.spectral import DEFAULT_BANDS
from moodops.components.types import Recording

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

SEED_IV_WINDOW_S = 4.0
SEED_IV_TRIALS = 24
SEED_IV_CLASSES = ("neutral", "sad", "fear", "happy")  # label value
SEED_IV_EEG_DIR = "eeg_feature_smooth"
SEED_IV_EYE_DIR = "eye_feature_smooth"
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


# --------------------------------------------------------------------------- SEED


class Seed(Dataset):
    """SEED (Zheng & Lu 2015): 15 subjects × 3 sessions × 15 film clips, 62-ch EEG at 200 Hz, 3 emotions.

    Parameters
    ----------
    root : path
        The folder holding ``Preprocessed_EEG/`` and/or ``ExtractedFeatures/``
        (or one of those folders itself).
    subjects : list of int, optional
        Subject numbers (1–15); all present subjects by default.
    modalities : sequence of str
        ``eeg`` / ``raw_eeg`` (SEED has no other modality).

    ``load_subject`` reads ``Preprocessed_EEG`` (raw EEG, float32, one file at
    a time); ``load_precomputed(subject, "de_LDS" | "de_movingAve")`` reads
    ``ExtractedFeatures`` (``features`` ``(windows, 62, 5)``, ``sfreq`` 1.0:
    one window per second). Target ``emotion``: negative / neutral / positive.
    """

    name: ClassVar[str] = "seed"
    eeg_channels: ClassVar[tuple[str, ...]] = CHANNELS
    eeg_sfreq: ClassVar[float | None] = SEED_SFREQ
    per_subject_train_trials: ClassVar[int | None] = 9  # 9 train / 6 test per session, as published
    modalities: ClassVar[tuple[str, ...]] = ("eeg", "raw_eeg")
    precomputed: ClassVar[tuple[str, ...]] = PRECOMPUTED
    label_names: ClassVar[tuple[str, ...]] = LABEL_NAMES
    targets: ClassVar[tuple[str, ...]] = LABEL_NAMES
    class_names: ClassVar[tuple[str, ...]] = SEED_CLASSES

    def __init__(self, root: str | Path, subjects=None, modalities=()) -> None:
        super().__init__(root, subjects, modalities)
        self._scans: dict[Path, dict[int, list[tuple[int, Path]]]] = {}
        self._labels: np.ndarray | None = None

    # -- layout

    @property
    def base(self) -> Path:
        if self.root.name in (SEED_RAW_DIR, SEED_FEATURE_DIR) and not (self.root / SEED_RAW_DIR).is_dir():
            return self.root.parent
        return self.root

    @property
    def raw_dir(self) -> Path:
        return self.base / SEED_RAW_DIR

    @property
    def feature_dir(self) -> Path:
        return self.base / SEED_FEATURE_DIR

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
        return sorted(files + ([label] if label.is_file() else []))

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
        keys, prefix = trial_keys(path, mat_names(path), _RAW_KEY_RE, SEED_TRIALS, "{prefix}_eeg{k}")
        out = {}
        for k, key in keys.items():
            arrays = read_mat(path, [key])
            if key not in arrays:
                raise DataError(f"{path}: key '{key}' is listed but could not be read")
            eeg = _numeric(path, key, arrays.pop(key))
            if eeg.ndim != 2 or eeg.shape[0] != N_CHANNELS:
                raise DataError(f"{path}: '{key}' has shape {eeg.shape}, expected ({N_CHANNELS}, samples)")
            if eeg.shape[1] < int(SEED_SFREQ * SEED_WINDOW_S):
                raise DataError(f"{path}: '{key}' has {eeg.shape[1]} samples, fewer than 1 s at {SEED_SFREQ:g} Hz")
            _first_nonfinite(path, key, eeg)
            out[k] = np.ascontiguousarray(eeg, dtype=np.float32)
            del eeg
        require_trials(path, out, SEED_TRIALS, "{prefix}_eeg{k}", prefix)
        return list(out.values())

    def load_subject(self, subject: int) -> list[Recording]:
        labels = self.labels()
        recordings = []
        for session, path in enumerate(self.session_files(subject, self.raw_dir), start=1):
            for k, eeg in enumerate(self.read_raw_file(path), start=1):
                recordings.append(Recording(
                    subject=subject, session=session, trial=k, data=eeg, sfreq=SEED_SFREQ, ch_names=CHANNELS,
                    labels={"emotion": float(labels[k - 1])},
                ))
        return recordings

    def load_precomputed(self, subject: int, name: str) -> list[Recording]:
        if name not in self.precomputed:
            raise ConfigError(invalid_choice("precomputed", name, self.precomputed))
        labels = self.labels()
        recordings = []
        for session, path in enumerate(self.session_files(subject, self.feature_dir), start=1):
            for k, (_, de) in read_de(path, name, SEED_TRIALS).items():
                recordings.append(Recording(
                    subject=subject, session=session, trial=k, data=None, sfreq=1.0 / SEED_WINDOW_S,
                    ch_names=CHANNELS, labels={"emotion": float(labels[k - 1])}, features=de,
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
        """Validate every selected subject's files (raw EEG and precomputed features); one row each.

        ``missing``: per modality, NaN counts (:func:`missing_counts`) or
        :data:`NAN_REFUSED` (SEED has EEG only, and its loader refuses NaN).
        """
        rows = []
        for s in self.subjects():
            labels = self.labels()
            has_raw = s in self._scan(self.raw_dir)
            has_features = s in self._scan(self.feature_dir)
            seconds: float | str = "-"
            if has_features:
                for name in self.precomputed:
                    recs = self.load_precomputed(s, name)
                windows = [len(r.features) for r in recs]
            if has_raw:  # the raw EEG's 1-s windows are what `--feature de` gives
                recs = self.load_subject(s)
                seconds = round(sum(r.data.shape[1] for r in recs) / SEED_SFREQ, 2)
                windows = [int(r.data.shape[1] // int(SEED_SFREQ * SEED_WINDOW_S)) for r in recs]
            rows.append({
                "subject": s,
                "sessions": len({r.session for r in recs}),
                "trials": len(recs),
                "seconds": seconds,
                "windows": sum(windows),
                "features": "+".join(self.precomputed) if has_features else "-",
                **_class_shares(SEED_CLASSES, [int(labels[r.trial - 1]) + 1 for r in recs], windows),
                "missing": {"eeg": NAN_REFUSED},
            })
        return rows


# --------------------------------------------------------------------------- SEED-IV


class SeedIV(Dataset):
    """SEED-IV (Zheng et al. 2019): 15 subjects × 3 sessions × 24 clips, DE + eye features, 4 emotions.

    Parameters
    ----------
    root : path
        The folder holding ``eeg_feature_smooth/`` (and ``eye_feature_smooth/``
        for the eye modality), or ``eeg_feature_smooth/`` itself.
    subjects : list of int, optional
        Subject numbers (1–15); all present subjects by default.
    modalities : sequence of str
        ``eeg`` and optionally ``eye``: then every recording carries
        ``extra["eye"]`` ``(windows, 31)`` float32 from the eye file of the same
        subject and session (NaN kept; imputation is fitted later on training
        data only). Eye files are opened only when ``eye`` is requested.

    The release ships features only: :meth:`load_subject` raises
    :class:`ConfigError`; use ``load_precomputed(subject, "de_LDS" |
    "de_movingAve")`` (``features`` ``(windows, 62, 5)``, ``sfreq`` 0.25: one
    window per 4 s). Target ``emotion``: neutral / sad / fear / happy.
    """

    name: ClassVar[str] = "seed-iv"
    per_subject_train_trials: ClassVar[int | None] = 16  # 16 train / 8 test per session (MV-SSTMA paper)
    modalities: ClassVar[tuple[str, ...]] = ("eeg", "eye")
    precomputed: ClassVar[tuple[str, ...]] = PRECOMPUTED
    label_names: ClassVar[tuple[str, ...]] = LABEL_NAMES
    targets: ClassVar[tuple[str, ...]] = LABEL_NAMES
    class_names: ClassVar[tuple[str, ...]] = SEED_IV_CLASSES

    def __init__(self, root: str | Path, subjects=None, modalities=()) -> None:
        super().__init__(root, subjects, modalities)
        self._scans: dict[Path, dict[int, list[tuple[int, Path]]]] = {}

    # -- layout

    @property
    def base(self) -> Path:
        if self.root.name == SEED_IV_EEG_DIR and not (self.root / SEED_IV_EEG_DIR).is_dir():
            return self.root.parent
        return self.root

    def session_dirs(self, kind: str) -> list[Path]:
        """``kind/1``, ``kind/2``, ``kind/3``; a missing folder is a DataError."""
        top = self.base / kind
        if not top.is_dir():
            raise DataError(f"{top}: folder missing; expected {kind}/1, {kind}/2 and {kind}/3 "
                            f"holding {{subject}}_{{date}}.mat files")
        dirs = [top / str(s) for s in range(1, N_SESSIONS + 1)]
        for d in dirs:
            if not d.is_dir():
                raise DataError(f"{d}: session folder missing (SEED-IV has sessions 1, 2 and 3 under {kind}/)")
        return dirs

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
        found: dict[int, Path] = {}
        for d in reversed(self.session_dirs(SEED_IV_EEG_DIR)):  # session 1 wins
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
        """The subject's EEG feature files and, where present, eye files of all three sessions."""
        if subject not in self.available_subjects():
            raise DataError(f"{self.root}: subject {subject} not found")
        files = [p for d in self.session_dirs(SEED_IV_EEG_DIR) for _, p in self._scan(d).get(subject, [])]
        eye_top = self.base / SEED_IV_EYE_DIR
        files += [p for s in range(1, N_SESSIONS + 1) for _, p in self._scan(eye_top / str(s)).get(subject, [])]
        return sorted(files)

    # -- reading

    def load_subject(self, subject: int) -> list[Recording]:
        raise ConfigError("the SEED-IV release has no raw EEG (it ships DE features only); "
                          "use --feature precomputed (de_LDS or de_movingAve)")

    def read_eye(self, path: Path, eeg_path: Path, de: dict[int, tuple[str, np.ndarray]]) -> dict[int, np.ndarray]:
        """One eye file → trial k → float32 (windows, 31), its windows checked against the EEG's."""
        keys, _ = trial_keys(path, mat_names(path), _EYE_KEY_RE, SEED_IV_TRIALS, "eye_{k}")
        arrays = read_mat(path, list(keys.values()))
        out = {}
        for k, key in keys.items():
            if key not in arrays:
                raise DataError(f"{path}: key '{key}' is listed but could not be read")
            eye = _numeric(path, key, arrays.pop(key))
            if eye.ndim != 2 or eye.shape[0] != N_EYE_FEATURES:
                raise DataError(f"{path}: '{key}' has shape {eye.shape}, expected ({N_EYE_FEATURES}, windows)")
            eeg_key, feats = de[k]
            if eye.shape[1] != len(feats):
                raise DataError(f"{path}: '{key}' has {eye.shape[1]} windows but {eeg_path} '{eeg_key}' has "
                                f"{len(feats)}")
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
            eyes = self.read_eye(self.session_file(subject, eye_dirs[session - 1]), path, de) if eye else {}
            labels = SEED_IV_SESSION_LABELS[session]
            for k, (_, feats) in de.items():
                recordings.append(Recording(
                    subject=subject, session=session, trial=k, data=None, sfreq=1.0 / SEED_IV_WINDOW_S,
                    ch_names=CHANNELS, labels={"emotion": float(labels[k - 1])}, features=feats,
                    extra={"eye": eyes[k]} if eye else {},
                ))
        return recordings

    def load_precomputed(self, subject: int, name: str) -> list[Recording]:
        return self._load(subject, name, "eye" in self.requested_modalities)

    def make_targets(self, labels: dict[str, np.ndarray], target: str) -> tuple[np.ndarray, tuple[str, ...]]:
        self.check_target(target)
        values = np.asarray(labels[target], dtype=np.float64)
        bad = ~np.isin(values, (0.0, 1.0, 2.0, 3.0))
        if bad.any():
            raise DataError(f"seed-iv: label '{target}' holds {values[bad][0]}, expected 0, 1, 2 or 3")
        return np.rint(values).astype(np.int64), SEED_IV_CLASSES

    def check(self) -> list[dict[str, Any]]:
        """Validate every selected subject's feature files (and eye files when present); one row each.

        ``missing``: per modality, NaN counts (:func:`missing_counts`; ``eye``
        when the eye files are there) or :data:`NAN_REFUSED` (``eeg``).
        """
        rows = []
        eye = "eye" in self.requested_modalities or (self.base / SEED_IV_EYE_DIR).is_dir()
        for s in self.subjects():
            recs = self._load(s, self.precomputed[0], eye)
            for name in self.precomputed[1:]:  # validated too; the eye files once are enough
                self._load(s, name, False)
            windows = [len(r.features) for r in recs]
            missing: dict[str, Any] = {"eeg": NAN_REFUSED}
            if eye:
                missing["eye"] = missing_counts([r.extra["eye"] for r in recs])
            rows.append({
                "subject": s,
                "sessions": len({r.session for r in recs}),
                "trials": len(recs),
                "windows": sum(windows),
                **_class_shares(SEED_IV_CLASSES, [int(r.labels["emotion"]) for r in recs], windows),
                "missing": missing,
            })
        return rows

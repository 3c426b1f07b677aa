"""EEG Motor Movement/Imagery Dataset (Schalk et al. 2004, PhysioNet ``eegmmidb``) as a pretraining corpus.

109 subjects × 14 runs of 64-channel EEG (BCI2000, 10-10 montage), 160 Hz
(a few subjects, e.g. S088, S092, S100, differ), about 1 min (runs 1–2:
eyes open / closed baseline) or 2 min (runs 3–14: motor execution and
imagery). The dataset has no emotion labels: moodops uses it unlabelled,
to pretrain encoders (``moodops pretrain --corpus eegmmidb``).

Layout: ``ROOT/S###/S###R##.edf`` (e.g. ``S001/S001R03.edf``), EDF+ files
whose annotation channel marks ``T0`` (rest) and ``T1`` / ``T2`` (the run's
two movements, about 4.1 s each, alternating with 4.2 s of rest). Other
files (``.edf.event``, ``RECORDS``, …) are ignored. Synthetic subjects
(:mod:`~moodops.components.datasets.eegmmidb.synthetic_eegmmidb`) are numbered from
901 (``S901/``; past 999 the number simply grows, ``S1000/``) so they are
never mistaken for published files.

Integrity. Before a byte of a file is read as EDF, its SHA-256 is compared
with the published checksum list (``SHA256SUMS.txt`` of the release, which
MNE-Python ships as ``mne/data/eegbci_checksums.txt``) when the file's
``S###/S###R##.edf`` is listed; a mismatch is a :class:`DataError` and the
file is not read. Files that are not listed (synthetic subjects) are read
with an info note; ``verify=False`` (``--no-verify``) reads every file
unverified, with a warning. A file that passes is then checked for a size
that matches its header and read by MNE's EDF reader with its default
(strict UTF-8) annotation decoding: every failure is one DataError line.

Reading. Channel labels lose PhysioNet's padding dots and are upper-cased
(``Fc5.`` → ``FC5``, ``Cz..`` → ``CZ``), the names SEED uses; data are
float32 µV at the file's own rate; annotations stay as
``Recording.annotations``.

Preprocessing (:class:`Preprocess`, :func:`preprocess`) follows Mood
Reader's pretraining defaults: band-pass 0.1–70 Hz, 50 Hz notch, resampling
to 200 Hz. :func:`segments` cuts preprocessed recordings into fixed-length,
z-scored segments for masked-signal pretraining.
"""
from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from moodops.components.datasets.base import Dataset, _ranges
from moodops.components.datasets.preprocess import NOTCH_FREQUENCIES, Preprocess, preprocess  # noqa: F401 (re-exported)
from moodops.components.errors import ConfigError, DataError, invalid_choice
from moodops.components.types import Recording

logger = logging.getLogger(__name__)

N_SUBJECTS = 109
RUNS = tuple(range(1, 15))
SFREQ = 160.0
#: The 64 EDF signal labels of every published file, in file order (PhysioNet pads them with dots).
EDF_LABELS = (
    "Fc5.", "Fc3.", "Fc1.", "Fcz.", "Fc2.", "Fc4.", "Fc6.", "C5..", "C3..", "C1..", "Cz..", "C2..", "C4..",
    "C6..", "Cp5.", "Cp3.", "Cp1.", "Cpz.", "Cp2.", "Cp4.", "Cp6.", "Fp1.", "Fpz.", "Fp2.", "Af7.", "Af3.",
    "Afz.", "Af4.", "Af8.", "F7..", "F5..", "F3..", "F1..", "Fz..", "F2..", "F4..", "F6..", "F8..", "Ft7.",
    "Ft8.", "T7..", "T8..", "T9..", "T10.", "Tp7.", "Tp8.", "P7..", "P5..", "P3..", "P1..", "Pz..", "P2..",
    "P4..", "P6..", "P8..", "Po7.", "Po3.", "Poz.", "Po4.", "Po8.", "O1..", "Oz..", "O2..", "Iz..",
)
N_CHANNELS = len(EDF_LABELS)
EVENTS = ("T0", "T1", "T2")
LABEL_NAMES = ("run",)
NORMALIZE = ("zscore", None)
#: The first synthetic subject number (published subjects are 1–109).
FIRST_SYNTHETIC_SUBJECT = 901

_SUBJECT_RE = re.compile(r"^S(\d{3,})$")  # synthetic subjects go past 999 (S1000/)
_RUN_RE = re.compile(r"^S(\d{3,})R(\d{2})\.edf$")
_HASH_CHUNK = 1 << 20


def channel_name(label: str) -> str:
    """A PhysioNet EDF label → the upper-case 10-20 name (``"Fc5."`` → ``"FC5"``)."""
    return label.strip().rstrip(".").upper()


#: The 64 channels as :class:`Recording` names them.
CHANNELS = tuple(channel_name(label) for label in EDF_LABELS)


def run_file(subject: int, run: int) -> str:
    """``S###/S###R##.edf``: a run's path under the root, as the checksum list spells it."""
    return f"S{subject:03d}/S{subject:03d}R{run:02d}.edf"


def checksum_list_path() -> Path:
    """MNE-Python's copy of the release's ``SHA256SUMS.txt``."""
    import mne

    return Path(mne.__file__).parent / "data" / "eegbci_checksums.txt"


@lru_cache(maxsize=1)
def published_checksums() -> dict[str, str]:
    """``S###/S###R##.edf`` → SHA-256 hex digest, for every EDF file of the published release."""
    path = checksum_list_path()
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot read the published eegmmidb checksum list ({e.strerror}); "
                        f"reinstall mne, or pass --no-verify to read files unverified") from None
    sums = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0].endswith(".edf"):
            sums[parts[0]] = parts[1].lower()
    if not sums:
        raise DataError(f"{path}: no '.edf' entries in the published eegmmidb checksum list")
    return sums


def sha256_file(path: Path) -> str:
    """The SHA-256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _edf_size_check(path: Path) -> None:
    """The file's size must be what its EDF header describes (a truncated download fails here)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(256)
        try:
            header_bytes, n_records, n_signals = int(head[184:192]), int(head[236:244]), int(head[252:256])
            f.seek(256 + n_signals * 216)
            per_record = [int(f.read(8)) for _ in range(n_signals)]
        except ValueError:
            raise DataError(f"{path}: not an EDF file (its header's numeric fields do not parse)") from None
    expected = header_bytes + n_records * 2 * sum(per_record)
    if n_records < 1 or size != expected:
        raise DataError(f"{path}: {size} bytes, but its EDF header describes {expected} "
                        f"({n_records} records); the file is truncated or damaged — download it again")


def _read_edf(path: Path) -> Any:
    """``mne.io.read_raw_edf`` with every failure turned into one DataError line."""
    import mne

    try:
        return mne.io.read_raw_edf(path, preload=True, verbose="error")
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - MNE raises bare Exception, ValueError, … on a damaged file
        # MNE's hint to decode annotations as latin1 would hand back misaligned data; drop it.
        reason = re.sub(r"\s*You might want to try.*$", "", str(e).splitlines()[0] if str(e) else "")
        raise DataError(f"{path}: unreadable EDF file ({type(e).__name__}: {reason}); the file is damaged "
                        f"— download it again") from None


def _parse_runs(runs: int | Iterable[int] | None) -> tuple[int, ...] | None:
    if runs is None:
        return None
    values = [runs] if isinstance(runs, int | np.integer) else list(runs)
    try:
        parsed = sorted({int(r) for r in values if float(r) == int(r)})
    except (TypeError, ValueError):
        parsed = []
    if not values or len(parsed) != len(set(values)) or any(r not in RUNS for r in parsed):
        raise ConfigError(f"The 'runs' parameter must be run numbers in 1-14 (or None for every run). "
                          f"Got {runs!r} instead.")
    return tuple(parsed)


class Eegmmidb(Dataset):
    """EEG Motor Movement/Imagery (PhysioNet): 109 subjects × 14 runs, 64-ch EEG at 160 Hz, unlabelled.

    Parameters
    ----------
    root : path
        The folder holding the ``S001/`` … ``S109/`` folders.
    subjects : list of int, optional
        Subject numbers (1–109; synthetic ones from 901); all present by default.
    modalities : sequence of str
        ``eeg`` / ``raw_eeg`` (the only modality).
    runs : sequence of int, optional
        Run numbers to read (1–14); None reads every run present (e.g. only
        3–14 where the baseline runs were left out).
    verify : bool
        Compare every listed file's SHA-256 with the published checksum
        before reading it (True). False reads files unverified, with a warning.

    ``load_subject`` returns one :class:`Recording` per run: ``session`` 1,
    ``trial`` the run number, ``data`` float32 ``(64, samples)`` in µV,
    ``labels`` ``{"run": run}``, ``annotations`` the T0/T1/T2 events.
    """

    name: ClassVar[str] = "eegmmidb"
    modalities: ClassVar[tuple[str, ...]] = ("eeg", "raw_eeg")
    option_names: ClassVar[tuple[str, ...]] = ("runs", "verify")
    label_names: ClassVar[tuple[str, ...]] = LABEL_NAMES
    targets: ClassVar[tuple[str, ...]] = ()
    eeg_channels: ClassVar[tuple[str, ...]] = CHANNELS
    eeg_sfreq: ClassVar[float | None] = None  # 160 Hz, but a few subjects differ: read it per recording

    def __init__(self, root: str | Path, subjects=None, modalities=(), runs: Iterable[int] | None = None,
                 verify: bool = True) -> None:
        super().__init__(root, subjects, modalities)
        if not isinstance(verify, bool | np.bool_):
            raise ConfigError(f"The 'verify' parameter must be True or False. Got {verify!r} instead.")
        self.runs = _parse_runs(runs)
        self.verify = bool(verify)
        self._available: dict[int, Path] | None = None
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._warned_unverified = False

    # -- layout

    def available_subjects(self) -> dict[int, Path]:
        if self._available is None:
            if not self.root.exists():
                raise DataError(f"{self.root}: eegmmidb root does not exist")
            if not self.root.is_dir():
                raise DataError(f"{self.root}: eegmmidb root is not a directory")
            found = {}
            for p in self.root.iterdir():
                m = _SUBJECT_RE.match(p.name)
                if m and p.is_dir():
                    found[int(m.group(1))] = p
            if not found:
                raise DataError(f"{self.root}: no eegmmidb subject folders (S001/ … S109/ holding "
                                f"S001R01.edf …)")
            self._available = dict(sorted(found.items()))
        return self._available

    def run_files(self, subject: int) -> dict[int, Path]:
        """Run number → EDF file of the selected runs of one subject; a missing selected run is a DataError."""
        folder = self.available_subjects().get(subject)
        if folder is None:
            raise DataError(f"{self.root}: subject {subject} not found "
                            f"(available: {_ranges(sorted(self.available_subjects()))})")
        present = {}
        for p in folder.iterdir():
            m = _RUN_RE.match(p.name)
            if m and int(m.group(1)) == subject and p.is_file():
                present[int(m.group(2))] = p
        if self.runs is None:
            if not present:
                raise DataError(f"{folder}: no run files (S{subject:03d}R01.edf … S{subject:03d}R14.edf)")
            return dict(sorted(present.items()))
        for run in self.runs:
            if run not in present:
                raise DataError(f"{folder / Path(run_file(subject, run)).name}: run {run} of subject {subject} "
                                f"is missing (runs present: {_ranges(sorted(present))})")
        return {run: present[run] for run in self.runs}

    def source_files(self, subject: int) -> list[Path]:
        return list(self.run_files(subject).values())

    def options(self) -> dict[str, Any]:
        return {"runs": None if self.runs is None else list(self.runs)}

    # -- integrity

    def _sha256(self, path: Path) -> str:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if key not in self._hashes:
            self._hashes[key] = sha256_file(path)
        return self._hashes[key]

    def verify_file(self, subject: int, run: int, path: Path) -> str:
        """Check one file against the published list before it is parsed.

        Returns ``"yes"`` (matches), ``"unlisted"`` (not in the list) or
        ``"skipped"`` (``verify=False``); a mismatch raises DataError.
        """
        if not self.verify:
            if not self._warned_unverified:
                logger.warning("eegmmidb: verify=False — reading EDF files without checking their published "
                               "SHA-256 checksums; a damaged or altered file may be read")
                self._warned_unverified = True
            return "skipped"
        expected = published_checksums().get(run_file(subject, run))
        if expected is None:
            return "unlisted"
        actual = self._sha256(path)
        if actual != expected:
            raise DataError(f"{path}: SHA-256 {actual[:12]}… does not match the published checksum "
                            f"{expected[:12]}… (damaged or altered file; not read) — download it again, "
                            f"or pass --no-verify to read it anyway")
        return "yes"

    # -- reading

    def read_run(self, subject: int, run: int, path: Path) -> Recording:
        """Read one verified run file into a Recording (µV, normalised channel names, annotations)."""
        _edf_size_check(path)
        raw = _read_edf(path)
        names = tuple(channel_name(n) for n in raw.ch_names)
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise DataError(f"{path}: channel name(s) {', '.join(twice)} appear twice after normalisation")
        sfreq = float(raw.info["sfreq"])
        data = raw.get_data()
        if data.shape[1] < 1 or not math.isfinite(sfreq) or sfreq <= 0:
            raise DataError(f"{path}: no samples (shape {data.shape}, {sfreq} Hz)")
        data = (data * 1e6).astype(np.float32)
        if not np.isfinite(data).all():
            raise DataError(f"{path}: holds non-finite samples")
        annotations = tuple((float(onset), float(duration), str(description)) for onset, duration, description
                            in zip(raw.annotations.onset, raw.annotations.duration, raw.annotations.description))
        return Recording(subject=subject, session=1, trial=run, data=data, sfreq=sfreq, ch_names=names,
                         labels={"run": float(run)}, annotations=annotations)

    def _load(self, subject: int) -> tuple[list[Recording], list[str]]:
        files = self.run_files(subject)
        status = [self.verify_file(subject, run, path) for run, path in files.items()]
        unlisted = status.count("unlisted")
        if unlisted:
            logger.info("eegmmidb: %d file(s) of subject %d are not in the published checksum list "
                        "(synthetic subjects are %d and up); read unverified", unlisted, subject,
                        FIRST_SYNTHETIC_SUBJECT)
        return [self.read_run(subject, run, path) for run, path in files.items()], status

    def load_subject(self, subject: int) -> list[Recording]:
        """Every selected run of one subject, each file verified before it is read."""
        return self._load(subject)[0]

    def make_targets(self, labels: dict[str, np.ndarray], target: str) -> tuple[np.ndarray, tuple[str, ...]]:
        raise ConfigError("eegmmidb is an unlabelled pretraining corpus (no emotion labels); use it with "
                          "`moodops pretrain --corpus eegmmidb`")

    def check(self) -> list[dict[str, Any]]:
        """Verify and read every selected subject's runs; one summary row each.

        ``verified``: ``yes`` (every file matches the published checksum),
        ``unlisted`` (some file is not in the list, e.g. a synthetic subject)
        or ``skipped`` (``verify=False``).
        """
        rows = []
        for s in self.subjects():
            recordings, status = self._load(s)
            rates = sorted({r.sfreq for r in recordings})
            rows.append({
                "subject": s,
                "runs": _ranges([r.trial for r in recordings]),
                "seconds": round(sum(r.data.shape[1] / r.sfreq for r in recordings), 2),
                "sfreq": "/".join(f"{f:g}" for f in rates),
                "channels": "/".join(str(c) for c in sorted({len(r.ch_names) for r in recordings})),
                "verified": "skipped" if not self.verify else "unlisted" if "unlisted" in status else "yes",
            })
        return rows


# --------------------------------------------------------------------------- preprocessing


def segments(recordings: Sequence[Recording], segment_s: float = 4.0, normalize: str | None = "zscore"
             ) -> tuple[np.ndarray, np.ndarray]:
    """Cut recordings into non-overlapping fixed-length segments.

    Parameters
    ----------
    recordings : sequence of Recording
        All with the same channels (in the same order) and sampling rate.
    segment_s : float
        Segment length in seconds; a recording's trailing remainder shorter
        than this is dropped.
    normalize : {"zscore", None}
        ``"zscore"``: each recording is z-scored per channel (over its whole
        length) before cutting; a flat channel becomes zeros. None: as is.

    Returns
    -------
    x : ndarray of float32, shape (n_segments, n_channels, n_samples)
    index : ndarray of int64, shape (n_segments, 3)
        ``(subject, run, start sample)`` of each segment.
    """
    if normalize not in NORMALIZE:
        raise ConfigError(invalid_choice("normalize", normalize, ("zscore", "None")))
    if not recordings:
        raise DataError("no recordings to cut into segments")
    first = recordings[0]
    try:
        length = int(round(float(segment_s) * first.sfreq))
    except (TypeError, ValueError):
        length = 0
    if not length >= 2:
        raise ConfigError(f"The 'segment_s' parameter must give at least 2 samples at {first.sfreq:g} Hz. "
                          f"Got {segment_s!r} instead.")
    xs, index = [], []
    for rec in recordings:
        where = f"subject {rec.subject} run {rec.trial}"
        if rec.data is None:
            raise DataError(f"{where}: no raw EEG to cut into segments")
        if tuple(rec.ch_names) != tuple(first.ch_names):
            raise DataError(f"{where}: channels ({len(rec.ch_names)}: {', '.join(rec.ch_names[:4])}, …) differ "
                            f"from subject {first.subject} run {first.trial}'s ({len(first.ch_names)}: "
                            f"{', '.join(first.ch_names[:4])}, …)")
        if rec.sfreq != first.sfreq:
            raise DataError(f"{where}: {rec.sfreq:g} Hz, but subject {first.subject} run {first.trial} is "
                            f"{first.sfreq:g} Hz; resample them to one rate (Preprocess.sfreq)")
        data = np.asarray(rec.data, dtype=np.float64)
        if normalize == "zscore":
            std = data.std(axis=1, keepdims=True)
            data = (data - data.mean(axis=1, keepdims=True)) / np.where(std > 1e-12, std, 1.0)
        n = data.shape[1] // length
        if n == 0:
            continue
        xs.append(data[:, :n * length].reshape(len(data), n, length).transpose(1, 0, 2).astype(np.float32))
        starts = np.arange(n, dtype=np.int64) * length
        index.append(np.column_stack([np.full(n, rec.subject), np.full(n, rec.trial), starts]).astype(np.int64))
    if not xs:
        return np.zeros((0, len(first.ch_names), length), np.float32), np.zeros((0, 3), np.int64)
    return np.concatenate(xs), np.concatenate(index)

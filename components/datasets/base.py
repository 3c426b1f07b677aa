"""The dataset contract every adapter follows."""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from moodops.components.errors import ConfigError, DataError, invalid_choice
from moodops.components.types import Recording


class Dataset(ABC):
    """A dataset on disk in its original layout.

    Lifecycle: the constructor stores options and checks nothing on disk;
    :meth:`subjects` lists what is there; :meth:`load_subject` reads and
    validates one subject's files into :class:`Recording` objects (raw EEG in
    ``data``), :meth:`load_precomputed` the same with the release's own
    features in ``features``. Other modalities (``eye``, ``face``) are read
    only when named in ``modalities`` and arrive in ``Recording.extra``.

    Class attributes: ``modalities`` — what the dataset can provide (``eeg``:
    EEG features, ``raw_eeg``: the EEG signal, ``eye``, ``face``,
    ``peripheral``); ``precomputed`` — names of the precomputed EEG feature
    sets (first = default); ``option_names`` — the run-config keys the
    constructor accepts as keyword options; ``label_names`` / ``targets``.
    """

    name: ClassVar[str]
    modalities: ClassVar[tuple[str, ...]] = ("eeg", "raw_eeg")
    precomputed: ClassVar[tuple[str, ...]] = ()
    option_names: ClassVar[tuple[str, ...]] = ()
    label_names: ClassVar[tuple[str, ...]] = ()
    targets: ClassVar[tuple[str, ...]] = ()
    #: Training trials per session in the ``per-subject`` protocol as the dataset's papers use (None: 60 %).
    per_subject_train_trials: ClassVar[int | None] = None
    #: The raw EEG's channel names and sampling rate (for mapping a pretrained encoder's input), if fixed.
    eeg_channels: ClassVar[tuple[str, ...]] = ()
    #: ``"precomputed"`` for a feature release first (SEED-IV, SEED-V): runs take its features unless the
    #: model needs raw EEG; None: features are computed from the raw EEG when the dataset has it.
    default_feature: ClassVar[str | None] = None
    #: The window length of the release's own per-window eye features, when computed EEG features must
    #: use it to stay aligned with them (None: any window length).
    eye_window_s: ClassVar[float | None] = None
    eeg_sfreq: ClassVar[float | None] = None

    def __init__(self, root: str | Path, subjects: Sequence[int] | None = None,
                 modalities: Sequence[str] = ()) -> None:
        self.root = Path(root).expanduser()
        self.requested_subjects = None if subjects is None else [int(s) for s in subjects]
        unknown = [m for m in modalities if m not in self.modalities]
        if unknown:
            raise ConfigError(f"dataset '{self.name}' has no modality {', '.join(unknown)} "
                              f"(it has {', '.join(self.modalities)})")
        self.requested_modalities = tuple(modalities)

    @abstractmethod
    def available_subjects(self) -> dict[int, Path]:
        """Subject id → the file (or folder) holding it; raises DataError if none."""

    @abstractmethod
    def load_subject(self, subject: int) -> list[Recording]:
        """Read and validate every trial of one subject (raw EEG in ``data``)."""

    def load_precomputed(self, subject: int, name: str) -> list[Recording]:
        """Every trial of one subject with the precomputed feature set ``name`` in ``features``."""
        raise ConfigError(f"dataset '{self.name}' ships no precomputed features; use --feature de, psd or dfc")

    @abstractmethod
    def make_targets(self, labels: dict[str, np.ndarray], target: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """Raw label columns → (class index per row, class names)."""

    @classmethod
    def present_modalities(cls, root: str | Path) -> tuple[str, ...]:
        """The modalities the copy at ``root`` has (optional parts, e.g. DEAP's face folder, may be absent)."""
        return cls.modalities

    def subjects(self) -> list[int]:
        """The subjects this dataset object will load (requested ∩ available)."""
        available = self.available_subjects()
        if self.requested_subjects is None:
            return sorted(available)
        missing = sorted(set(self.requested_subjects) - set(available))
        if missing:
            raise DataError(
                f"{self.root}: subject(s) {', '.join(map(str, missing))} not found "
                f"(available: {_ranges(sorted(available))})"
            )
        return sorted(set(self.requested_subjects))

    def source_files(self, subject: int) -> list[Path]:
        path = self.available_subjects()[subject]
        return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]

    def fingerprint(self, subject: int) -> str:
        """A cheap identity of the subject's source files: name, size, mtime."""
        h = hashlib.sha256()
        for p in self.source_files(subject):
            st = p.stat()
            h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        return h.hexdigest()[:16]

    @classmethod
    def check_target(cls, target: str) -> None:
        if target not in cls.targets:
            raise ConfigError(invalid_choice("label", target, cls.targets))

    def options(self) -> dict[str, Any]:
        """Options that change what load_subject returns (part of cache keys)."""
        return {}


def _ranges(values: list[int]) -> str:
    """[1,2,3,5] → '1-3, 5'."""
    out: list[str] = []
    start = prev = None
    for v in values:
        if start is None:
            start = prev = v
        elif v == prev + 1:
            prev = v
        else:
            out.append(f"{start}-{prev}" if start != prev else f"{start}")
            start = prev = v
    if start is not None:
        out.append(f"{start}-{prev}" if start != prev else f"{start}")
    return ", ".join(out) or "none"

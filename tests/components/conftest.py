"""Shared fixtures for the component tests: a small synthetic DEAP on disk."""
from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from moodops.components.datasets.formats.legacy_pickle import dump_py2
from moodops.components.datasets.deap.synthetic_deap import write_synthetic_deap

N_SUBJECTS = 3
N_TRIALS = 6
SECONDS = 8
SFREQ = 128
N_BASELINE = 3 * SFREQ
N_STIM = SECONDS * SFREQ


@pytest.fixture(scope="session")
def deap_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine synthetic DEAP root (holding data_preprocessed_python/). Never modify it."""
    root = tmp_path_factory.mktemp("deap_master")
    folder = write_synthetic_deap(root, n_subjects=N_SUBJECTS, n_trials=N_TRIALS, seconds=SECONDS, seed=0, effect=3.0)
    assert folder == root / "data_preprocessed_python"
    return root


@pytest.fixture
def deap_root(deap_master: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic DEAP root that a test may damage."""
    root = tmp_path / "deap"
    shutil.copytree(deap_master, root)
    return root


def subject_path(root: Path, subject: int) -> Path:
    return Path(root) / "data_preprocessed_python" / f"s{subject:02d}.dat"


def read_subject(root: Path, subject: int) -> dict:
    """The raw dict of one subject file, read the way DEAP's users read it."""
    with subject_path(root, subject).open("rb") as f:
        return pickle.load(f, encoding="latin1")


def write_subject(root: Path, subject: int, obj: dict) -> Path:
    """(Re)write one subject file as a Python-2 pickle."""
    path = subject_path(root, subject)
    with path.open("wb") as f:
        dump_py2(obj, f)
    return path


@pytest.fixture
def rewrite_subject() -> Callable[..., Path]:
    """``rewrite_subject(root, subject, data=..., labels=..., drop=(...))`` → the file path.

    Arrays not given are kept from the current file; keys in ``drop`` are left out.
    """

    def rewrite(root: Path, subject: int, *, data: np.ndarray | None = None,
                labels: np.ndarray | None = None, drop: tuple[str, ...] = ()) -> Path:
        obj = read_subject(root, subject)
        if data is not None:
            obj["data"] = data
        if labels is not None:
            obj["labels"] = labels
        for key in drop:
            obj.pop(key)
        return write_subject(root, subject, obj)

    return rewrite

"""One folder per dataset family; the module paths from before the move still import the same modules."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import moodops.components.datasets as datasets


@pytest.mark.parametrize("old", sorted(datasets.MOVED))
def test_an_old_module_path_is_the_moved_module(old):
    before = importlib.import_module(f"moodops.components.datasets.{old}")
    after = importlib.import_module(f"moodops.components.datasets.{datasets.MOVED[old]}")
    assert before is after
    assert not (Path(datasets.__file__).parent / f"{old}.py").exists()  # moved, not copied


def test_family_packages_keep_the_reader_names():
    from moodops.components.datasets.deap import EEG_CHANNELS, Deap
    from moodops.components.datasets.seed import CHANNELS, SEED_IV_SESSION_LABELS, Seed, SeedIV, SeedV

    assert len(EEG_CHANNELS) == 32 and len(CHANNELS) == 62 and len(SEED_IV_SESSION_LABELS) == 3
    assert {datasets.get_dataset(n) for n in ("deap", "seed", "seed-iv", "seed-v")} == {Deap, Seed, SeedIV, SeedV}
    with pytest.raises(AttributeError):
        datasets.seed.no_such_name  # noqa: B018


def test_an_unknown_old_name_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("moodops.components.datasets.no_such_module")

"""Dataset adapters: each reads a dataset's real on-disk layout.

One folder per dataset family, each with its reader(s) and a synthetic writer of the same layout:

- ``deap/`` — DEAP (``deap.py``, ``synthetic_deap.py``);
- ``seed/`` — SEED and SEED-IV (``seed.py``), SEED-V (``seed_v.py``), their writers;
- ``eegmmidb/`` — the EEG Motor Movement/Imagery dataset (pretraining corpus);
- ``formats/`` — the file formats the releases use (restricted pickle, Python-2 pickle, EDF, Neuroscan CNT);
- ``preprocess.py`` — the raw-EEG band-pass / notch / resample all raw readers share;
- ``base.py``, ``missing.py`` — the dataset contract and the missing-value report.

``DATASETS`` maps CLI names to adapter classes. Module paths from before the per-family folders
(``moodops.components.datasets.seed_v``, ``.synthetic_deap``, ``.safe_pickle`` …) still import:
:data:`MOVED` maps them to their new homes.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

from moodops.components.datasets.base import Dataset
from moodops.components.datasets.deap import Deap
from moodops.components.datasets.eegmmidb import Eegmmidb
from moodops.components.datasets.seed import Seed, SeedIV, SeedV
from moodops.components.registry import Registry

#: Old module name (under this package) → its module now.
MOVED = {
    "safe_pickle": "formats.safe_pickle", "legacy_pickle": "formats.legacy_pickle", "edf": "formats.edf",
    "synthetic_deap": "deap.synthetic_deap", "synthetic_eegmmidb": "eegmmidb.synthetic_eegmmidb",
    "seed_v": "seed.seed_v", "synthetic_seed": "seed.synthetic_seed", "synthetic_seed_v": "seed.synthetic_seed_v",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``moodops.components.datasets.<old>`` as the module it moved to (the same object)."""

    def find_spec(self, fullname, path=None, target=None):
        head, _, tail = fullname.rpartition(".")
        if head != __name__ or tail not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return importlib.import_module(f"{__name__}.{MOVED[spec.name.rpartition('.')[2]]}")

    def exec_module(self, module) -> None:
        """The target module ran when it was imported."""


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())

DATASETS: Registry[type[Dataset]] = Registry("dataset")
DATASETS.register("deap")(Deap)
DATASETS.register("seed")(Seed)
DATASETS.register("seed-iv")(SeedIV)
DATASETS.register("seed-v")(SeedV)
DATASETS.register("eegmmidb")(Eegmmidb)


def get_dataset(name: str) -> type[Dataset]:
    return DATASETS.get(name)


__all__ = ["DATASETS", "MOVED", "Dataset", "Deap", "Eegmmidb", "Seed", "SeedIV", "SeedV", "get_dataset"]

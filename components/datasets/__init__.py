"""Dataset adapters: each reads a dataset's real on-disk layout.

``DATASETS`` maps CLI names to adapter classes; each has a synthetic writer
of its layout (``synthetic_*`` modules).
"""
from __future__ import annotations

from moodops.components.datasets.base import Dataset
from moodops.components.datasets.deap import Deap
from moodops.components.datasets.eegmmidb import Eegmmidb
from moodops.components.datasets.seed import Seed, SeedIV
from moodops.components.datasets.seed_v import SeedV
from moodops.components.registry import Registry

DATASETS: Registry[type[Dataset]] = Registry("dataset")
DATASETS.register("deap")(Deap)
DATASETS.register("seed")(Seed)
DATASETS.register("seed-iv")(SeedIV)
DATASETS.register("seed-v")(SeedV)
DATASETS.register("eegmmidb")(Eegmmidb)


def get_dataset(name: str) -> type[Dataset]:
    return DATASETS.get(name)


__all__ = ["DATASETS", "Dataset", "Deap", "Eegmmidb", "Seed", "SeedIV", "SeedV", "get_dataset"]

"""Dataset adapters: each reads a dataset's real on-disk layout.

``DATASETS`` maps CLI names to adapter classes; ``SYNTHESIZERS`` maps the same
names to writers of synthetic data in that layout.
"""
from __future__ import annotations

from moodops.components.datasets.base import Dataset
from moodops.components.datasets.deap import Deap
from moodops.components.registry import Registry

DATASETS: Registry[type[Dataset]] = Registry("dataset")
DATASETS.register("deap")(Deap)


def get_dataset(name: str) -> type[Dataset]:
    return DATASETS.get(name)


__all__ = ["DATASETS", "Dataset", "Deap", "get_dataset"]

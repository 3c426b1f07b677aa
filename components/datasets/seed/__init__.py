"""Everything of the SEED family (BCMI lab, SJTU): SEED and SEED-IV (:mod:`.seed`), SEED-V
(:mod:`.seed_v`), and their synthetic writers in the same on-disk layouts (:mod:`.synthetic_seed`,
:mod:`.synthetic_seed_v`).

``from moodops.components.datasets.seed import Seed, SeedIV`` (and any other name of the SEED
reader module) keeps working from before the per-family folders.
"""
from __future__ import annotations

from typing import Any

from moodops.components.datasets.seed import seed as _reader
from moodops.components.datasets.seed.seed import Seed, SeedIV
from moodops.components.datasets.seed.seed_v import SeedV


def __getattr__(name: str) -> Any:
    return getattr(_reader, name)


__all__ = ["Seed", "SeedIV", "SeedV"]

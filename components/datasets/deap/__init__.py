"""Everything DEAP (Koelstra et al. 2012): the reader of the release's layout (:mod:`.deap`) and its
synthetic writer in the same layout (:mod:`.synthetic_deap`).

``from moodops.components.datasets.deap import Deap`` (and any other name of the reader module,
e.g. ``CHANNELS``) keeps working from before the per-family folders.
"""
from __future__ import annotations

from typing import Any

from moodops.components.datasets.deap import deap as _reader
from moodops.components.datasets.deap.deap import Deap


def __getattr__(name: str) -> Any:
    return getattr(_reader, name)


__all__ = ["Deap"]

"""Everything EEGMMIDB (Schalk et al. 2004, the EEG Motor Movement/Imagery dataset that Mood Reader's
encoder pretrains on): the reader of the release's EDF layout (:mod:`.eegmmidb`) and its synthetic
writer (:mod:`.synthetic_eegmmidb`).

``from moodops.components.datasets.eegmmidb import Eegmmidb`` (and any other name of the reader
module) keeps working from before the per-family folders.
"""
from __future__ import annotations

from typing import Any

from moodops.components.datasets.eegmmidb import eegmmidb as _reader
from moodops.components.datasets.eegmmidb.eegmmidb import Eegmmidb


def __getattr__(name: str) -> Any:
    return getattr(_reader, name)


__all__ = ["Eegmmidb"]

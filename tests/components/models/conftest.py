"""Fixtures for model tests (the data itself is built in multimodal_data.py)."""
from __future__ import annotations

import pytest
from multimodal_data import build_samples

from moodops.components.types import FeatureSet


@pytest.fixture(scope="session")
def multimodal_samples():
    """Factory (cached): multimodal_samples(feature, n_windows) → labelled FeatureSet."""
    built: dict[tuple[str, int], FeatureSet] = {}

    def make(feature: str = "de", n_windows: int = 4) -> FeatureSet:
        if (feature, n_windows) not in built:
            built[feature, n_windows] = build_samples(feature, n_windows)
        return built[feature, n_windows]

    return make

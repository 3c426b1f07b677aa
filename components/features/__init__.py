"""EEG features: differential entropy, band power, dynamic functional connectivity, and their cache."""
from moodops.components.features.build import (
    FEATURE_CODE_VERSION,
    FEATURES,
    FeatureConfig,
    build_features,
    dataset_fingerprint,
    make_sequences,
)
from moodops.components.features.cache import FeatureCache, cache_key
from moodops.components.features.connectivity import pearson_connectivity, spectral_connectivity
from moodops.components.features.spectral import (
    DEFAULT_BANDS,
    DE_METHODS,
    differential_entropy,
    power_spectral_density,
)

__all__ = [
    "DEFAULT_BANDS",
    "DE_METHODS",
    "FEATURES",
    "FEATURE_CODE_VERSION",
    "FeatureCache",
    "FeatureConfig",
    "build_features",
    "cache_key",
    "dataset_fingerprint",
    "differential_entropy",
    "make_sequences",
    "pearson_connectivity",
    "power_spectral_density",
    "spectral_connectivity",
]

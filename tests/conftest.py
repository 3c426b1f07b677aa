"""Shared test set-up: isolated cache, real-data and GPU markers."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own moodops cache; MOODOPS_* from the caller's shell never leak in."""
    for name in list(os.environ):
        if name.startswith("MOODOPS_") and name != "MOODOPS_TEST_DEVICE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("MOODOPS_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "WARNING")


def pytest_configure(config):
    """Tests send real Ctrl-Cs to the processes they start. A shell starts a background job (`pytest &`,
    some CI runners) with SIGINT ignored, and its children inherit that, so moodops (which, like any
    program, keeps an ignored SIGINT ignored) would never see them: give the children SIGINT back."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config, items):
    skip_real = pytest.mark.skip(reason=f"real EEG data not found at {SHARED_DATA} (the shared/ folder beside the checkout)")
    have_gpu = False
    if any("gpu" in item.keywords for item in items):
        try:
            import torch

            have_gpu = torch.cuda.is_available()
        except ImportError:
            have_gpu = False
    skip_gpu = pytest.mark.skip(reason="no CUDA device on this machine")
    for item in items:
        if "real_data" in item.keywords and not SHARED_DATA.is_dir():
            item.add_marker(skip_real)
        if "gpu" in item.keywords and not have_gpu:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def labelled_features(tmp_path_factory):
    """Factory: a small synthetic DEAP → DE sequences with valence targets (cached per arguments)."""
    import dataclasses

    from moodops.components.datasets import Deap
    from moodops.components.datasets.deap.synthetic_deap import write_synthetic_deap
    from moodops.components.features import FeatureConfig, build_features, make_sequences

    built = {}

    def make(n_subjects=3, n_trials=6, seconds=8, seed=0, effect=3.0, seq_len=2):
        key = (n_subjects, n_trials, seconds, seed, effect, seq_len)
        if key not in built:
            root = tmp_path_factory.mktemp("deap")
            write_synthetic_deap(root, n_subjects=n_subjects, n_trials=n_trials, seconds=seconds, seed=seed,
                                 effect=effect)
            dataset = Deap(root)
            samples = make_sequences(build_features(dataset, FeatureConfig(), None), seq_len)
            y, names = dataset.make_targets({k: samples.column(k) for k in dataset.label_names}, "valence")
            built[key] = dataclasses.replace(samples, y=y, class_names=names)
        return built[key]

    return make

"""CUDA paths: skipped (with the reason) on machines without a GPU."""
from __future__ import annotations

import dataclasses

import pytest

from moodops.components.datasets import Deap
from moodops.components.datasets.synthetic_deap import write_synthetic_deap
from moodops.components.features import FeatureConfig, build_features, make_sequences
from moodops.components.protocols import LeaveOneSubjectOut
from moodops.pipelines.evaluate import run_fold
from moodops.pipelines.train import TrainConfig

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    root = tmp_path_factory.mktemp("deap")
    write_synthetic_deap(root, n_subjects=3, n_trials=12, seconds=12, seed=4, effect=4.0)
    dataset = Deap(root)
    samples = make_sequences(build_features(dataset, FeatureConfig(), None), 4)
    y, names = dataset.make_targets({k: samples.column(k) for k in dataset.label_names}, "valence")
    return dataclasses.replace(samples, y=y, class_names=names)


@pytest.mark.parametrize("model", ["linear", "stib"])
def test_fold_trains_on_cuda(features, model):
    fold = LeaveOneSubjectOut(seed=0).split(features)[0]
    result = run_fold(TrainConfig(model=model, device="cuda", epochs=10, batch_size=32), fold, features)
    assert result.device.startswith("cuda")
    assert result.metrics["accuracy"] > 0.6, result.metrics

"""CUDA paths: skipped (with the reason) on machines without a GPU."""
from __future__ import annotations


import pytest

from moodops.components.protocols import LeaveOneSubjectOut
from moodops.pipelines.evaluate import run_fold
from moodops.pipelines.train import TrainConfig

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def features(labelled_features):
    return labelled_features(n_subjects=3, n_trials=12, seconds=12, seed=4, effect=4.0, seq_len=4)


@pytest.mark.parametrize("model, variant", [("linear", None), ("mood_reader", "stib_cf"), ("dgcnn", None)])
def test_fold_trains_on_cuda(features, model, variant):
    fold = LeaveOneSubjectOut(seed=0).split(features)[0]
    result = run_fold(TrainConfig(model=model, variant=variant, device="cuda", epochs=10, batch_size=32), fold,
                      features)
    assert result.device.startswith("cuda")
    assert result.metrics["accuracy"] > 0.6, result.metrics

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch

from moodops.components.errors import ConfigError
from moodops.components.protocols import LeaveOneSubjectOut
from moodops.pipelines.evaluate import run_fold
from moodops.pipelines.hooks import Hooks
from moodops.pipelines.train import TrainConfig


@pytest.fixture(scope="module")
def features(labelled_features):
    return labelled_features(n_subjects=3, n_trials=16, seconds=12, seed=2, effect=4.0, seq_len=2)


class Recorder(Hooks):
    def __init__(self):
        self.epochs, self.ends, self.errors = [], [], []

    def on_epoch_end(self, fold, epoch, metrics):
        self.epochs.append((fold, epoch, dict(metrics)))

    def on_fold_end(self, fold, result):
        self.ends.append(fold)

    def on_error(self, fold, error):
        self.errors.append((fold, error))


@pytest.mark.parametrize("model, variant", [("linear", None), ("mood_reader", "stib_cf")])
def test_fold_learns_the_easy_effect_and_reports_each_epoch(features, model, variant):
    fold = LeaveOneSubjectOut(seed=0).split(features)[0]
    hooks = Recorder()
    result = run_fold(TrainConfig(model=model, variant=variant, epochs=12, patience=12, batch_size=32, seed=0),
                      fold, features, hooks)
    assert result.metrics["accuracy"] > 0.7, result.metrics
    assert [e for _, e, _ in hooks.epochs] == list(range(1, 13))
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy"} <= set(hooks.epochs[0][2])
    assert hooks.ends == [fold.name] and not hooks.errors
    assert result.confusion.sum() == len(fold.test) == len(result.y_pred)
    best = int(result.metrics["best_epoch"])
    first = TrainConfig(epochs=12).first_selectable_epoch
    assert first == 4 and best >= first
    eligible = min(h["val_loss"] for h in result.history[first - 1:])
    assert result.history[best - 1]["val_loss"] <= eligible * (1 + 1e-3)
    checkpoint = torch.load(io.BytesIO(result.weights), weights_only=True)
    assert checkpoint["model"] == model and checkpoint["input_shape"] == [2, 32, 5]


def test_fold_is_deterministic_on_cpu(features):
    fold = LeaveOneSubjectOut(seed=0).split(features)[1]
    config = TrainConfig(model="mood_reader", variant="stib_cf", epochs=3, seed=7)
    a, b = run_fold(config, fold, features), run_fold(config, fold, features)
    assert np.array_equal(a.y_pred, b.y_pred)
    assert a.history == b.history


def test_test_samples_never_shape_training(features):
    """Poisoning the test subject's features changes nothing that training saw."""
    fold = LeaveOneSubjectOut(seed=0).split(features)[0]
    config = TrainConfig(model="linear", epochs=4, seed=3)
    clean = run_fold(config, fold, features)
    x = features.x.copy()
    x[fold.test] = 1e6 * np.random.default_rng(0).standard_normal(x[fold.test].shape)
    poisoned = run_fold(config, fold, dataclasses.replace(features, x=x))
    assert clean.history == poisoned.history  # normalisation, early stopping: train/val only
    clean_state = torch.load(io.BytesIO(clean.weights), weights_only=True)
    poisoned_state = torch.load(io.BytesIO(poisoned.weights), weights_only=True)
    assert torch.equal(clean_state["norm"]["x"]["mean"], poisoned_state["norm"]["x"]["mean"])


def test_errors_reach_the_error_hook(features):
    fold = LeaveOneSubjectOut(seed=0).split(features)[0]
    hooks = Recorder()
    with pytest.raises(ConfigError, match="heads=3"):
        run_fold(TrainConfig(model="mood_reader", variant="stib_cf", model_params={"heads": 3}, epochs=1), fold,
                 features, hooks)
    assert [f for f, _ in hooks.errors] == [fold.name]


def test_missing_extra_input_is_a_clear_error(features):
    fold = LeaveOneSubjectOut(seed=0).split(features)[0]
    with pytest.raises(ConfigError, match=r"variant stib_eye_cf\) needs input\(s\) eye, which the feature set lacks"):
        run_fold(TrainConfig(model="mood_reader", variant="stib_eye_cf", epochs=1), fold, features)


def test_train_config_validates():
    with pytest.raises(ConfigError, match="The 'epochs' parameter must be an int >= 1. Got 0 instead."):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="'device'"):
        TrainConfig(device="tpu")
    with pytest.raises(ConfigError, match="precision") as info:
        TrainConfig(precision="fp16")
    assert "bf16" in str(info.value) and "\n" not in str(info.value)

"""Fold packing (``moodops.pipelines.packed``): K folds trained as one vmapped model, each as if alone.

On the device in MOODOPS_TEST_DEVICE (default cpu), as the every-model tests."""
from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest

from multimodal_data import holdout
from test_every_model import DEVICE, SETTINGS, TORCH_CASES, case_id, device  # noqa: F401 (fixture)

from moodops.components.types import Fold
from moodops.pipelines import packed
from moodops.pipelines.evaluate import run_fold
from moodops.pipelines.packed import auto_folds_per_task, run_folds_packed
from moodops.pipelines.train import TrainConfig

torch = pytest.importorskip("torch")


def three_folds(n_samples: int) -> list[Fold]:
    """Three hold-out folds with different rows and different training sizes (128, 121 and 114 rows),
    so the members' last batches differ in size and their epochs in number of steps."""
    folds = []
    for seed, drop in ((0, 0), (1, 7), (2, 14)):
        f = holdout(n_samples, seed)
        folds.append(dataclasses.replace(f, name=f"fold-{seed}", train=f.train[drop:]))
    return folds


def state_of(result) -> dict:
    return torch.load(io.BytesIO(result.weights), weights_only=True)["state_dict"]


@pytest.mark.parametrize(("model", "variant", "params"), [
    ("mood_reader", "stib_eye_mlf", {"dim": 16, "heads": 2, "fusion_dim": 32, "dropout": 0.0}),  # BatchNorm head
    ("linear", "eeg_eye", {}),
])
@pytest.mark.usefixtures("device")  # skips when MOODOPS_TEST_DEVICE=cuda has no CUDA
def test_packed_folds_give_the_predictions_of_folds_trained_alone(model, variant, params, multimodal_samples):
    """Same seeds, no randomness in the forward pass: every member's training curve, picked epoch and
    test predictions are those of its fold trained alone, up to float rounding. Early stopping acts
    (patience 2) and stops the members at different epochs.

    The validation curve is compared at 1e-2: weights the training loss does not depend on (a bias
    just before a BatchNorm, the key projection's bias) get gradients of pure rounding noise, which
    Adam turns into full-size steps, so they drift apart in the two runs (measured up to 0.01 here)
    and shift the BatchNorm running mean that evaluation uses (validation losses apart by up to 2e-3
    relative in the first epochs, identical later)."""
    samples = multimodal_samples("de", 4)
    folds = three_folds(samples.n_samples)
    config = TrainConfig(model=model, variant=variant, model_params=params, epochs=12, batch_size=16, lr=3e-3,
                         patience=2, min_epochs=2, seed=0, device=DEVICE)
    alone = [run_fold(config, fold, samples) for fold in folds]
    together = run_folds_packed(config, folds, samples)
    assert [r.fold for r in together] == [f.name for f in folds]
    for a, b in zip(alone, together):
        assert len(a.history) == len(b.history) and a.metrics["best_epoch"] == b.metrics["best_epoch"]
        for h_a, h_b in zip(a.history, b.history):
            assert h_a.keys() == h_b.keys()
            for key in h_a:
                tolerance = 1e-2 if key == "val_loss" else 1e-4
                assert h_b[key] == pytest.approx(h_a[key], rel=tolerance, abs=1e-6), (a.fold, key)
        np.testing.assert_array_equal(a.y_pred, b.y_pred)
        s_a, s_b = state_of(a), state_of(b)
        assert s_a.keys() == s_b.keys()
        for name in ("eye_branch.embed.weight", "head.1.weight", "head.6.weight") if model == "mood_reader" else s_a:
            torch.testing.assert_close(s_b[name].float(), s_a[name].float(), rtol=1e-3, atol=1e-4, msg=name)
    if model == "mood_reader":
        assert len({len(r.history) for r in together}) > 1, [len(r.history) for r in together]


@pytest.mark.usefixtures("device")  # skips when MOODOPS_TEST_DEVICE=cuda has no CUDA
def test_a_member_that_stops_early_is_not_updated_again(multimodal_samples, monkeypatch):
    """Every optimizer step names the members it updates: a member that stopped early appears in no
    step after its last epoch, while the others go on."""
    samples = multimodal_samples("de", 4)
    folds = three_folds(samples.n_samples)
    # the last fold validates on one class only, so it never stops early (fit()'s rule) while the others do
    last = folds[2]
    folds[2] = dataclasses.replace(last, validation=last.validation[samples.y[last.validation] == 0])
    config = TrainConfig(model="linear", variant="default", epochs=15, batch_size=16, lr=3e-2, patience=1,
                         min_epochs=2, seed=0, device=DEVICE)
    steps: list[list[int]] = []
    original = packed._StackedAdam.step

    def spy(self, grads, members, index):
        steps.append(list(members))
        return original(self, grads, members, index)

    monkeypatch.setattr(packed._StackedAdam, "step", spy)
    results = run_folds_packed(config, folds, samples)
    epochs = [len(r.history) for r in results]
    assert max(epochs[:2]) < epochs[2] == 15, epochs  # the first two stopped early
    for k, (fold, n_epochs) in enumerate(zip(folds, epochs)):
        per_epoch = -(-len(fold.train) // config.batch_size)  # ceil: every batch here has >= 2 rows
        assert sum(k in s for s in steps) == n_epochs * per_epoch, (fold.name, n_epochs)
    stopped = epochs.index(min(epochs))
    last = max(i for i, s in enumerate(steps) if stopped in s)
    assert any(stopped not in s for s in steps[last + 1:]) and steps[last + 1:], "the others went on"


@pytest.mark.parametrize("case", TORCH_CASES, ids=case_id)
@pytest.mark.usefixtures("device")  # skips when MOODOPS_TEST_DEVICE=cuda has no CUDA
def test_every_torch_model_trains_packed(case, multimodal_samples):
    """Every model and variant (dropout, MV-SSTMA's DCCA term, DFCN's BatchNorm3d, ...) trains packed:
    each member's training loss falls and each fold gets its own result."""
    name, variant = case
    s = SETTINGS[name]
    samples = multimodal_samples(name == "dfcn" and "dfc" or "de", s["n_windows"])
    folds = three_folds(samples.n_samples)[:2]
    config = TrainConfig(model=name, variant=variant, model_params=s["params"], epochs=4, lr=s["lr"], batch_size=32,
                         patience=10, seed=0, device=DEVICE)
    results = run_folds_packed(config, folds, samples)
    assert [r.fold for r in results] == ["fold-0", "fold-1"]
    for r, fold in zip(results, folds):
        assert len(r.history) == 4 and r.history[-1]["train_loss"] < r.history[0]["train_loss"], r.history
        assert len(r.y_pred) == len(fold.test) and r.metrics["n_train"] == len(fold.train)


def test_auto_packs_on_a_gpu_only_and_keeps_the_stacked_weights_bounded():
    assert auto_folds_per_task(300_000, on_gpu=False) == 1
    assert auto_folds_per_task(300_000, on_gpu=True) == 8
    assert auto_folds_per_task(5_000_000, on_gpu=True) == 4
    assert auto_folds_per_task(50_000_000, on_gpu=True) == 1

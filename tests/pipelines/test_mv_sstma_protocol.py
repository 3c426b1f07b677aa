"""MV-SSTMA's protocol settings: labelled_samples (its Table 3), mask_ratio_eval (Table 4), eye features
mapped onto [10, 100] (§3.2) and the pretraining learning rate (§3.2)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from moodops.components.errors import ConfigError
from moodops.components.protocols import PerSubject
from moodops.orchestrator.config import RunConfig
from moodops.orchestrator.pretrain import PretrainJob
from moodops.orchestrator.run import first_labelled, train_config
from moodops.pipelines.evaluate import fit_range, run_fold
from moodops.pipelines.train import TrainConfig

from test_within_subject_validation import within_subject_features


def run(**kwargs) -> RunConfig:
    return RunConfig(synthetic=True, dataset="seed-iv", protocol="per-subject", model="mv_sstma", batch_size=32, lr=1e-3,
                     optimizer="adamw", **kwargs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(labelled_samples=10, val_strategy="stratified"), "set val_strategy=none"),
    (dict(labelled_samples=0, val_strategy="none"), "'labelled_samples' parameter must be an int >= 1"),
    (dict(mask_ratio_eval=1.0), r"'mask_ratio_eval' parameter must be a float in \(0, 1\)"),
    (dict(mask_ratio_eval=0.3, model_params={"train_mask_ratio": 0.5}), "drop train_mask_ratio"),
    (dict(eye_scaling="minmax"), "eye_scaling"),
    (dict(labelled_samples=10, val_strategy="none", labelled_unit="window"), "labelled_unit"),
])
def test_settings_that_make_no_sense_are_refused_in_one_line(kwargs, match):
    with pytest.raises(ConfigError, match=match) as info:
        run(**kwargs)
    assert "\n" not in str(info.value)


def test_mv_sstma_trains_fixed_epochs_unless_told_and_the_other_models_validate():
    """MV-SSTMA's default model selection is its paper's (no validation part, the last of ``epochs``);
    every other model keeps stratified validation; a value the user sets wins either way."""
    from moodops.orchestrator.run import resolve_model_defaults

    assert resolve_model_defaults(run()).val_strategy == "none"
    assert resolve_model_defaults(run(val_strategy="stratified")).val_strategy == "stratified"
    for model in ("mood_reader", "linear", "svm", "dfcn"):
        config = RunConfig(synthetic=True, dataset="seed-iv", protocol="per-subject", model=model)
        assert resolve_model_defaults(config).val_strategy == "stratified", model
    assert run(labelled_samples=10).labelled_samples == 10  # Table 3 needs no validation part: the default
    assert train_config(resolve_model_defaults(run())).val_strategy == "none"


def test_mask_ratio_eval_is_for_mv_sstma_only_and_masks_training_and_test_alike():
    with pytest.raises(ConfigError, match="model 'mood_reader' has no such input mask"):
        RunConfig(synthetic=True, dataset="seed", model="mood_reader", mask_ratio_eval=0.5)
    params = train_config(run(mask_ratio_eval=0.5)).model_params
    assert params["train_mask_ratio"] == params["eval_mask_ratio"] == 0.5
    assert "eval_mask_ratio" not in train_config(run()).model_params


def test_labelled_samples_keeps_the_first_n_training_samples_and_says_which_classes_they_lack():
    features = within_subject_features(n_subjects=1, n_sessions=1, windows=6)
    fold = PerSubject(train_trials=16, val_fraction=0.1, seed=0, val_strategy="none").split(features)[0]
    cut = first_labelled(fold, features, 10)
    assert list(cut.train) == sorted(fold.train)[:10]  # the beginning of the training part, in recording order
    assert list(cut.test) == list(fold.test) and len(cut.validation) == 0
    # trials 1 and 2 (6 windows each) are sad and fear: neutral and happy are missing, and the note says so
    assert sorted(set(features.y[cut.train].tolist())) == [1, 2]
    assert any("hold no neutral, happy" in note for note in cut.notes), cut.notes
    whole = first_labelled(fold, features, 10_000)
    assert len(whole.train) == len(fold.train) and any("all used" in n for n in whole.notes)
    trials = first_labelled(fold, features, 10, unit="trial")  # the other reading: the first 10 trials
    assert len(trials.train) == 10 * 6 and list(trials.train) == sorted(fold.train)[:60]
    assert sorted(set(features.y[trials.train].tolist())) == [0, 1, 2, 3]


def test_eye_range_scaling_maps_the_training_part_onto_10_to_100_and_fills_gaps_with_its_mean():
    rng = np.random.default_rng(0)
    eye = rng.gamma(2.0, 50.0, size=(40, 3, 4)).astype(np.float32) + np.array([0, 1000, 5e4], np.float32)[None, None, :1]
    train = np.arange(30)
    mean, std = fit_range(eye, train, "eye")
    scaled = (eye - mean) / std
    assert np.allclose(scaled[train].min(axis=(0, 1)), 10, atol=1e-3)
    assert np.allclose(scaled[train].max(axis=(0, 1)), 100, atol=1e-3)

    features = within_subject_features(n_subjects=1, n_sessions=1, windows=4)
    features.extra["eye"] = features.extra["eye"] * 40 + 300  # pupil-like scale
    features.extra["eye"][5, 0, 2] = np.nan
    fold = PerSubject(train_trials=16, val_fraction=0.1, seed=0, val_strategy="none").split(features)[0]
    result = run_fold(TrainConfig(model="linear", variant="eye", eye_scaling="range", seed=0), fold, features)
    saved = torch.load(io.BytesIO(result.weights), weights_only=True)["norm"]["eye"]
    m, s, fill = (saved[k].numpy() for k in ("mean", "std", "fill"))
    train_eye = (features.extra["eye"][fold.train] - m) / s
    assert np.nanmin(train_eye) == pytest.approx(10, abs=1e-3) and np.nanmax(train_eye) == pytest.approx(100, abs=1e-3)
    assert fill[0, 2] == pytest.approx(np.nanmean(train_eye[:, 0, 2]), rel=1e-4)  # a gap is the training mean
    assert 0.0 <= result.metrics["accuracy"] <= 1.0


def test_pretraining_learning_rate_is_the_papers_per_method():
    assert PretrainJob(method="mv_sstma", synthetic=True).lr == 1.5e-4
    assert PretrainJob(method="mbsm", synthetic=True).lr == 1e-3
    assert PretrainJob(method="mv_sstma", synthetic=True, lr=1e-3).lr == 1e-3

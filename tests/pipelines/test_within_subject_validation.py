"""Within-subject model selection that holds with 16 training trials: stratified validation, min_epochs,
the single-class guard, ``val_strategy`` none / inner, and test trials that shape nothing."""
from __future__ import annotations

import dataclasses
import io
import logging

import numpy as np
import pyarrow as pa
import pytest
import torch

from moodops.components.errors import ConfigError
from moodops.components.protocols import (CrossSession, PerSubject, carve_validation, leakage_fraction,
                                          stratified_trial_folds, trial_groups)
from moodops.components.types import FeatureSet, Fold
from moodops.pipelines.evaluate import run_fold
from moodops.pipelines.train import TrainConfig, _Selection, best_record, fit, improves, select_epoch
from moodops.pipelines.hooks import Hooks

#: SEED-IV's session-1 clip labels (0 neutral, 1 sad, 2 fear, 3 happy): the 16 training trials hold 4, 6, 4, 2.
SESSION_LABELS = (1, 2, 3, 0, 2, 0, 0, 1, 0, 1, 2, 1, 1, 1, 2, 3, 2, 2, 3, 3, 0, 3, 0, 3)
CLASSES = ("neutral", "sad", "fear", "happy")


def within_subject_features(n_subjects=2, n_sessions=2, windows=6, effect=0.8, seed=0) -> FeatureSet:
    """SEED-IV-shaped samples: 24 trials per session with the real label order, ``windows`` samples each;
    x (1, 4, 3) with a class-dependent mean (weak: ``effect`` SDs) and an eye input (1, 5)."""
    rng = np.random.default_rng(seed)
    rows = [(s, e, t + 1, w, SESSION_LABELS[t]) for s in range(1, n_subjects + 1) for e in range(1, n_sessions + 1)
            for t in range(24) for w in range(windows)]
    subject, session, trial, window, y = (np.array(c) for c in zip(*rows))
    centres = rng.standard_normal((4, 1, 4, 3))
    x = centres[y] * effect + rng.standard_normal((len(y), 1, 4, 3))
    eye = rng.standard_normal((len(y), 1, 5)) + effect * (y[:, None, None] == 2)
    meta = pa.table({"subject": subject.astype(np.int32), "session": session.astype(np.int32),
                     "trial": trial.astype(np.int32), "window": window.astype(np.int32),
                     "emotion": y.astype(np.float64)})
    return FeatureSet(x=x.astype(np.float32), meta=meta, axes=("window", "channel", "band"), y=y.astype(np.int64),
                      class_names=CLASSES, extra={"eye": eye.astype(np.float32)})


@pytest.fixture(scope="module")
def features():
    return within_subject_features()


def trial_classes(features, rows):
    groups = trial_groups(features)
    return {int(g): int(features.y[rows][groups[rows] == g][0]) for g in np.unique(groups[rows])}


def test_sixteen_training_trials_give_a_validation_part_of_every_class(features):
    folds = PerSubject(train_trials=16, val_fraction=0.1, seed=0).split(features)
    assert len(folds) == 4
    for fold in folds:
        val = trial_classes(features, fold.validation)
        train = trial_classes(features, fold.train)
        assert sorted(val.values()) == [0, 1, 2, 3], fold.name  # one whole trial of each class
        assert np.bincount(list(train.values())).tolist() == [3, 5, 3, 1]  # the rest still trains
        assert not set(val) & set(train) and not fold.notes
        assert leakage_fraction(features, fold) == 0.0


def test_validation_keeps_the_requested_share_across_classes():
    groups = np.repeat(np.arange(40), 3)
    labels = np.repeat(np.arange(40) % 2, 3)
    rows = np.arange(len(groups))
    train, val, missing = carve_validation(rows, groups, 0.2, np.random.default_rng(0), labels)
    assert len(np.unique(groups[val])) == 8 and not missing
    assert np.bincount(labels[val][::3]).tolist() == [4, 4]
    assert np.array_equal(np.sort(np.concatenate([train, val])), rows)


def test_a_class_with_one_training_trial_is_named_and_logged(features, caplog):
    keep = np.flatnonzero(~((features.column("trial") == 4) | (features.column("trial") == 6)
                            | (features.column("trial") == 7)))  # 3 of session 1's 4 neutral training trials
    part = features.subset(keep)
    with caplog.at_level(logging.WARNING, logger="moodops.components.protocols"):
        folds = PerSubject(train_trials=13, seed=0).split(part)
    noted = [f for f in folds if f.notes]
    assert noted and all("lacks class neutral" in f.notes[0] for f in noted)
    assert any("subject-01-session-1" in r.getMessage() and "neutral" in r.getMessage() for r in caplog.records)
    for fold in noted:
        assert 0 not in trial_classes(part, fold.validation).values()
        assert sorted(set(trial_classes(part, fold.validation).values())) == [1, 2, 3]


def test_cross_session_validation_is_stratified_too(features):
    for fold in CrossSession(seed=0).split(features):
        assert sorted(set(trial_classes(features, fold.validation).values())) == [0, 1, 2, 3]


def _validation_trials(features, folds):
    """Each fold's validation trials as (session, trial) pairs: trial numbers, not row or group indices."""
    return {f.name: sorted(set(zip(features.column("session")[f.validation].tolist(),
                                   features.column("trial")[f.validation].tolist()))) for f in folds}


@pytest.mark.parametrize("protocol", [PerSubject(train_trials=16, seed=3), CrossSession(seed=3)],
                         ids=["per-subject", "cross-session"])
def test_a_subjects_validation_trials_do_not_depend_on_which_subjects_run(protocol):
    everyone = within_subject_features(n_subjects=3)
    without_first = everyone.subset(np.flatnonzero(everyone.column("subject") != 1))
    full = _validation_trials(everyone, protocol.split(everyone))
    part = _validation_trials(without_first, protocol.split(without_first))
    assert set(part) == {n for n in full if not n.startswith("subject-01")}
    assert all(part[name] == full[name] for name in part)  # subject 2's validation is unchanged
    assert len({tuple(v) for v in full.values()}) > 1  # and it is drawn per fold, not one pattern for all


@pytest.mark.parametrize("strategy", ["none", "inner"])
def test_strategies_without_a_validation_part(features, strategy):
    for fold in PerSubject(train_trials=16, val_strategy=strategy).split(features):
        assert len(fold.validation) == 0 and len(fold.train) == 16 * 6 and not fold.notes


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(ConfigError, match="val_strategy.*'stratified', 'none', 'inner'.*Did you mean 'inner'"):
        PerSubject(val_strategy="iner")
    with pytest.raises(ConfigError, match="min_epochs"):
        TrainConfig(epochs=5, min_epochs=6)


def test_inner_folds_hold_every_trial_out_once_with_every_class(features):
    rows = PerSubject(train_trials=16, val_strategy="inner").split(features)[0].train
    splits = stratified_trial_folds(features, rows, 3, seed=0)
    groups = trial_groups(features)
    held = np.concatenate([h for _, h in splits])
    assert np.array_equal(np.sort(held), rows)
    happy = []
    for train, h in splits:
        assert not set(groups[train]) & set(groups[h])
        held_classes = list(trial_classes(features, h).values())
        assert {0, 1, 2} <= set(held_classes)  # every class with at least 3 (= k) trials
        happy.append(held_classes.count(3))
    assert sorted(happy) == [0, 1, 1]  # the 2 happy trials go to different folds


def test_improves_breaks_loss_ties_by_accuracy():
    assert improves(1.0, 0.1, float("inf"), -1.0)
    assert improves(0.9, 0.0, 1.0, 1.0)
    assert improves(1.0005, 0.6, 1.0, 0.5)  # within 0.1 %: the higher accuracy wins
    assert not improves(1.0005, 0.5, 1.0, 0.5) and not improves(1.1, 1.0, 1.0, 0.0)
    curves = [[{"val_loss": v, "val_accuracy": a} for v, a in h] for h in
              ([(0.5, 0.2), (0.9, 0.5), (0.8, 0.7)], [(0.5, 0.2), (0.9, 0.5), (0.8, 0.7)])]
    assert select_epoch(curves, first=1) == 1 and select_epoch(curves, first=2) == 3


def test_a_run_of_ties_cannot_walk_the_pick_up_the_loss_curve():
    # each loss is within 0.1 % of the one before with a higher accuracy, but the last is 0.2 % above the lowest
    records = [(1, 1.0, 0.50), (2, 1.0008, 0.55), (3, 1.0016, 0.60)]
    assert best_record(records) == 2
    assert best_record(records + [(4, 0.9, 0.1)]) == 4  # a clearly lower loss wins whatever its accuracy
    assert best_record([(1, 1.0, 0.5), (2, 1.0, 0.5)]) == 1  # a full tie keeps the earlier epoch


def test_selection_keeps_the_weights_it_may_return_to():
    model = torch.nn.Linear(1, 1)
    selection = _Selection()
    for epoch, loss, accuracy in [(1, 1.0, 0.9), (2, 0.9995, 0.5), (3, 0.9992, 0.6), (4, 2.0, 1.0)]:
        with torch.no_grad():
            model.weight.fill_(epoch)
        selection.offer(epoch, loss, accuracy, model)
    assert selection.best == 1 and float(selection.states[1]["weight"]) == 1.0  # back to epoch 1 after 2-3
    assert set(selection.states) == {1, 3}  # 3 beats 2 on loss and accuracy; 4 is out of the band


def _tensors(features, rows):
    return {"x": torch.from_numpy(features.x[rows])}, torch.from_numpy(features.y[rows])


def test_a_single_class_validation_part_cannot_end_a_fold_at_epoch_one(features, caplog):
    """The failure seen on real SEED-IV eye data: one validation trial of one class, early stopping kept
    epoch 1. Here the validation part is that one trial: training runs every epoch and keeps the last."""
    from moodops.components.models import create_model

    fold = PerSubject(train_trials=16, val_strategy="none").split(features)[0]
    groups = trial_groups(features)
    one_trial = fold.train[groups[fold.train] == groups[fold.train][0]]
    train_rows = np.setdiff1d(fold.train, one_trial)
    config = TrainConfig(model="linear", epochs=9, patience=1, lr=1e-2, batch_size=16)
    torch.manual_seed(0)
    model = create_model("linear", {"x": features.x.shape[1:]}, 4)
    with caplog.at_level(logging.WARNING, logger="moodops.pipelines.train"):
        history, chosen = fit(model, config, "f", *_tensors(features, train_rows), *_tensors(features, one_trial),
                              Hooks(), torch.Generator().manual_seed(0))
    assert len(history) == 9 and chosen == 9
    assert any("single class; early stopping is off" in r.getMessage() for r in caplog.records)


def test_early_stopping_never_stops_or_selects_before_min_epochs(features):
    """With a stratified validation part and patience 1, the fold still trains to min_epochs and selects
    from there on (a validation loss that is lowest at epoch 1 does not win)."""
    fold = PerSubject(train_trials=16, seed=0).split(features)[0]
    config = TrainConfig(model="linear", epochs=12, patience=1, lr=0.5, batch_size=16, seed=0)
    result = run_fold(config, fold, features)
    assert config.first_selectable_epoch == 4
    assert len(result.history) >= 5 and result.metrics["best_epoch"] >= 4


def test_inner_strategy_chooses_the_epochs_then_retrains_on_all_training_trials(features):
    fold = PerSubject(train_trials=16, val_strategy="inner").split(features)[0]
    config = TrainConfig(model="linear", epochs=8, lr=1e-2, batch_size=16, val_strategy="inner", seed=0)
    result = run_fold(config, fold, features)
    chosen = int(result.metrics["best_epoch"])
    assert 2 <= chosen <= 8  # a third of 8 epochs, at least
    trained = [h for h in result.history if "train_loss" in h]
    assert len(trained) == chosen and len(result.history) == 8
    assert all("inner_val_loss" in h for h in result.history)
    with pytest.raises(ConfigError, match="val_strategy 'inner' needs folds without a validation part"):
        run_fold(config, PerSubject(train_trials=16).split(features)[0], features)


@pytest.mark.parametrize("strategy", ["stratified", "none", "inner"])
def test_test_trials_shape_nothing_under_any_strategy(features, strategy):
    """Poison the test trials' inputs and labels: training history and weights stay identical."""
    fold = PerSubject(train_trials=16, val_strategy=strategy, seed=0).split(features)[0]
    assert leakage_fraction(features, fold) == 0.0
    config = TrainConfig(model="linear", variant="eeg_eye", epochs=6, lr=1e-2, batch_size=16,
                         val_strategy=strategy, seed=1)
    clean = run_fold(config, fold, features)
    rng = np.random.default_rng(5)
    x, eye, y = features.x.copy(), features.extra["eye"].copy(), features.y.copy()
    x[fold.test] = 1e4 * rng.standard_normal(x[fold.test].shape)
    eye[fold.test] = np.nan
    y[fold.test] = 3 - y[fold.test]
    poisoned = run_fold(config, fold, dataclasses.replace(features, x=x, y=y, extra={"eye": eye}))
    assert clean.history == poisoned.history
    assert clean.metrics["best_epoch"] == poisoned.metrics["best_epoch"]
    a = torch.load(io.BytesIO(clean.weights), weights_only=True)
    b = torch.load(io.BytesIO(poisoned.weights), weights_only=True)
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k])
    for name in ("x", "eye"):
        assert torch.equal(a["norm"][name]["mean"], b["norm"][name]["mean"])

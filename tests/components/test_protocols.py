"""Evaluation protocols on a FeatureSet built from the synthetic DEAP fixture."""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from moodops.components.datasets.deap.deap import LABEL_NAMES, Deap
from moodops.components.errors import ConfigError, UnknownNameError
from moodops.components.features import FeatureConfig, build_features, make_sequences
from moodops.components.protocols import (
    PROTOCOLS,
    LeakageWarning,
    LeaveOneSubjectOut,
    TrainTestSplit,
    leakage_fraction,
    trial_groups,
)
from moodops.components.types import Fold

N_SUBJECTS, N_TRIALS, SECONDS, SEQ_LEN = 3, 6, 8, 2


@pytest.fixture(scope="module")
def features(deap_master):
    ds = Deap(deap_master)
    windows = build_features(ds, FeatureConfig(), cache_dir=None)
    seq = make_sequences(windows, SEQ_LEN)
    y, names = ds.make_targets({k: seq.column(k) for k in LABEL_NAMES}, "valence")
    return dataclasses.replace(seq, y=y, class_names=names)


def _trial_keys(features, rows) -> set[tuple[int, int]]:
    return set(zip(features.column("subject")[rows].tolist(), features.column("trial")[rows].tolist()))


def test_fixture_feature_set(features):
    assert features.x.shape == (N_SUBJECTS * N_TRIALS * SECONDS // SEQ_LEN, SEQ_LEN, 32, 5)
    assert features.y.shape == (features.n_samples,)
    assert set(np.unique(features.y)) == {0, 1}
    assert features.class_names == ("low_valence", "high_valence")
    groups = trial_groups(features)
    assert len(np.unique(groups)) == N_SUBJECTS * N_TRIALS


# --------------------------------------------------------------------------- leave-one-subject-out


def test_loso_folds(features):
    protocol = LeaveOneSubjectOut(val_fraction=0.2, seed=0)
    folds = protocol.split(features)
    subjects = features.column("subject")
    groups = trial_groups(features)
    n = features.n_samples

    assert len(folds) == N_SUBJECTS == protocol.get_n_splits(features)
    assert [f.test_subjects for f in folds] == [(1,), (2,), (3,)]
    assert len({f.name for f in folds}) == N_SUBJECTS
    for fold in folds:
        (s,) = fold.test_subjects
        train, val, test = fold.train, fold.validation, fold.test
        for part in (train, val, test):
            assert part.dtype == np.int64
            assert len(np.unique(part)) == len(part)
        # Disjoint and covering.
        assert not set(train) & set(val)
        assert not set(train) & set(test)
        assert not set(val) & set(test)
        assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(n))
        # Test is exactly the held-out subject.
        assert set(subjects[test]) == {s}
        assert np.array_equal(np.sort(test), np.flatnonzero(subjects == s))
        # Validation never comes from the test subject and is made of whole trials.
        assert len(val) > 0
        assert s not in set(subjects[val])
        assert s not in set(subjects[train])
        val_groups = np.unique(groups[val])
        assert np.array_equal(np.sort(val), np.flatnonzero(np.isin(groups, val_groups)))
        assert not np.isin(groups[train], val_groups).any()
        # 20 % of the 12 training trials, rounded.
        assert len(val_groups) == round(0.2 * (N_SUBJECTS - 1) * N_TRIALS)
        assert leakage_fraction(features, fold) == 0.0


def test_loso_deterministic_per_seed(features):
    a = LeaveOneSubjectOut(val_fraction=0.2, seed=0).split(features)
    b = LeaveOneSubjectOut(val_fraction=0.2, seed=0).split(features)
    c = LeaveOneSubjectOut(val_fraction=0.2, seed=1).split(features)
    for fa, fb in zip(a, b):
        assert np.array_equal(fa.train, fb.train)
        assert np.array_equal(fa.validation, fb.validation)
        assert np.array_equal(fa.test, fb.test)
    assert any(not np.array_equal(fa.validation, fc.validation) for fa, fc in zip(a, c))
    # The test part does not depend on the seed.
    assert all(np.array_equal(fa.test, fc.test) for fa, fc in zip(a, c))
    assert all(f.seed == 1 for f in c)


def test_loso_without_validation(features):
    for fold in LeaveOneSubjectOut(val_fraction=0.0).split(features):
        assert len(fold.validation) == 0
        assert len(fold.train) + len(fold.test) == features.n_samples


def test_loso_needs_two_subjects(features):
    one = features.column("subject") == 1
    sub = dataclasses.replace(features, x=features.x[one], meta=features.meta.filter(one), y=features.y[one])
    with pytest.raises(ConfigError, match="at least 2 subjects"):
        LeaveOneSubjectOut().split(sub)


@pytest.mark.parametrize("val_fraction", [-0.1, 1.0, 1.5])
def test_invalid_val_fraction(val_fraction):
    with pytest.raises(ConfigError, match="val_fraction"):
        LeaveOneSubjectOut(val_fraction=val_fraction)


# --------------------------------------------------------------------------- train/test split


def test_trial_level_split(features):
    with warnings.catch_warnings():
        warnings.simplefilter("error", LeakageWarning)
        (fold,) = TrainTestSplit(ratio=0.8, split_level="trial", val_fraction=0.1, seed=0).split(features)
    n = features.n_samples
    assert np.array_equal(np.sort(np.concatenate([fold.train, fold.validation, fold.test])), np.arange(n))
    assert not set(fold.train) & set(fold.test)
    assert not set(fold.validation) & set(fold.test)
    assert not set(fold.train) & set(fold.validation)
    assert leakage_fraction(features, fold) == 0.0
    assert not _trial_keys(features, fold.test) & _trial_keys(features, np.concatenate([fold.train, fold.validation]))
    share = (len(fold.train) + len(fold.validation)) / n
    n_trials = N_SUBJECTS * N_TRIALS
    assert abs(share - 0.8) <= 1 / n_trials + 1e-9
    assert share == pytest.approx(round(0.8 * n_trials) / n_trials)
    assert fold.test_subjects == (1, 2, 3)
    assert len(fold.validation) > 0


def test_trial_level_split_deterministic(features):
    (a,) = TrainTestSplit(seed=3).split(features)
    (b,) = TrainTestSplit(seed=3).split(features)
    (c,) = TrainTestSplit(seed=4).split(features)
    assert np.array_equal(a.test, b.test) and np.array_equal(a.train, b.train)
    assert not np.array_equal(a.test, c.test)
    assert TrainTestSplit().get_n_splits(features) == 1


def test_window_level_split_leaks_and_warns(features):
    with pytest.warns(LeakageWarning, match="leaks"):
        (fold,) = TrainTestSplit(ratio=0.8, split_level="window", seed=0).split(features)
    n = features.n_samples
    assert np.array_equal(np.sort(np.concatenate([fold.train, fold.validation, fold.test])), np.arange(n))
    assert len(fold.test) == n - round(0.8 * n)
    assert leakage_fraction(features, fold) > 0.0


def test_leakage_fraction_counts_shared_trials(features):
    groups = trial_groups(features)
    first_trial = np.flatnonzero(groups == groups[0])
    assert len(first_trial) == SECONDS // SEQ_LEN
    # Test: the first trial's rows + one other trial; train holds one row of the first trial.
    other = np.flatnonzero(groups == groups[-1])
    fold = Fold("x", first_trial[:1], [], np.concatenate([first_trial[1:], other]), (1,))
    expected = (len(first_trial) - 1) / (len(first_trial) - 1 + len(other))
    assert leakage_fraction(features, fold) == pytest.approx(expected)
    assert leakage_fraction(features, Fold("e", [0], [], [], (1,))) == 0.0


def test_ratio_out_of_range_message():
    with pytest.raises(ConfigError) as info:
        TrainTestSplit(ratio=1.5)
    assert str(info.value) == "The 'ratio' parameter of split must be a float in (0, 1). Got 1.5 instead."
    for bad in (0.0, 1.0, -0.2):
        with pytest.raises(ConfigError):
            TrainTestSplit(ratio=bad)


def test_split_level_typo_suggests_trial():
    with pytest.raises(ConfigError) as info:
        TrainTestSplit(split_level="trail")
    assert "Did you mean 'trial'?" in str(info.value)
    assert "'window'" in str(info.value)


def test_ratio_leaving_empty_part(features):
    with pytest.raises(ConfigError, match="empty"):
        TrainTestSplit(ratio=0.99).split(features)


def test_protocol_registry():
    assert PROTOCOLS.get("loso") is LeaveOneSubjectOut
    assert PROTOCOLS.get("split") is TrainTestSplit
    with pytest.raises(UnknownNameError, match="Did you mean 'loso'"):
        PROTOCOLS.get("lsoo")


def _sessions_features(n_subjects=3, n_sessions=3, n_trials=6, windows=2):
    import pyarrow as pa

    from moodops.components.types import FeatureSet

    rows = [(s, se, t, w) for s in range(1, n_subjects + 1) for se in range(1, n_sessions + 1)
            for t in range(1, n_trials + 1) for w in range(windows)]
    cols = np.array(rows, dtype=np.int32).T
    meta = pa.table({"subject": cols[0], "session": cols[1], "trial": cols[2], "window": cols[3]})
    return FeatureSet(np.zeros((len(rows), 2, 3), np.float32), meta, ("channel", "band"))


def test_per_subject_trains_on_the_first_trials_of_each_session():
    from moodops.components.protocols import PerSubject

    fs = _sessions_features()
    folds = PerSubject(train_trials=4, val_fraction=0.25, seed=0).split(fs)
    assert [f.name for f in folds][:4] == ["subject-01-session-1", "subject-01-session-2", "subject-01-session-3",
                                           "subject-02-session-1"]
    assert len(folds) == 9
    subject, session, trial = (fs.column(c) for c in ("subject", "session", "trial"))
    for fold in folds:
        everything = np.concatenate([fold.train, fold.validation, fold.test])
        assert len(np.unique(subject[everything])) == 1 and len(np.unique(session[everything])) == 1
        assert set(trial[fold.test]) == {5, 6}
        assert set(trial[np.concatenate([fold.train, fold.validation])]) == {1, 2, 3, 4}
        assert len(set(trial[fold.validation])) == 1  # a whole trial, from the training trials
        assert leakage_fraction(fs, fold) == 0.0
    with pytest.raises(ConfigError, match=r"train_trials must be in \[1, 5\]; got 6"):
        PerSubject(train_trials=6).split(fs)
    assert {len(set(trial[f.test])) for f in PerSubject().split(fs)} == {2}  # 60 % of 6 → 4 train


def test_cross_session_leaves_each_session_out_or_the_chosen_one():
    from moodops.components.protocols import CrossSession

    fs = _sessions_features()
    subject, session = fs.column("subject"), fs.column("session")
    folds = CrossSession(seed=1).split(fs)
    assert len(folds) == 9
    for fold in folds:
        assert len(np.unique(session[fold.test])) == 1
        assert not set(session[fold.train]) & set(session[fold.test])
        assert not set(session[fold.validation]) & set(session[fold.test])
        assert len(np.unique(subject[np.concatenate([fold.train, fold.test])])) == 1
    last = CrossSession(test_session=3).split(fs)
    assert [f.name for f in last] == ["subject-01-session-3", "subject-02-session-3", "subject-03-session-3"]
    assert all(set(session[np.concatenate([f.train, f.validation])]) == {1, 2} for f in last)
    with pytest.raises(ConfigError, match="at least 2 sessions per subject; subject 1 has 1"):
        CrossSession().split(_sessions_features(n_sessions=1))
    with pytest.raises(ConfigError, match="subject 1 has no session 4"):
        CrossSession(test_session=4).split(fs)

"""Evaluation protocols: how samples are split into train / validation / test.

Protocols follow scikit-learn's splitters: the constructor stores options,
``split(features)`` returns the folds and ``get_n_splits(features)`` counts
them. Every fold's validation part is carved out of its training part only
(used for early stopping), so the test part never shapes training.
"""
from __future__ import annotations

import logging
import warnings
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from moodops.components.errors import ConfigError, invalid_choice
from moodops.components.registry import Registry
from moodops.components.types import FeatureSet, Fold

logger = logging.getLogger(__name__)

SPLIT_LEVELS = ("trial", "window")


class LeakageWarning(UserWarning):
    """A protocol lets test samples share trials with training samples."""


def trial_groups(features: FeatureSet) -> np.ndarray:
    """One integer id per (subject, session, trial): windows of a trial share it."""
    keys = np.stack([features.column(c).astype(np.int64) for c in ("subject", "session", "trial")], axis=1)
    _, ids = np.unique(keys, axis=0, return_inverse=True)
    return ids.reshape(-1)


def leakage_fraction(features: FeatureSet, fold: Fold) -> float:
    """Fraction of test samples whose (subject, session, trial) also appears in training."""
    if len(fold.test) == 0:
        return 0.0
    groups = trial_groups(features)
    seen = np.isin(groups[fold.test], groups[np.concatenate([fold.train, fold.validation])])
    return float(seen.mean())


VAL_STRATEGIES = ("stratified", "none", "inner")


def trial_labels(features: FeatureSet, groups: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """The class of each trial in ``trials`` (the most common target among its rows; -1 without targets)."""
    if features.y is None:
        return np.full(len(trials), -1, dtype=np.int64)
    y = np.asarray(features.y, dtype=np.int64)
    out = np.empty(len(trials), dtype=np.int64)
    order = np.argsort(groups, kind="stable")
    starts = np.searchsorted(groups[order], trials)
    ends = np.searchsorted(groups[order], trials, side="right")
    for i, (a, b) in enumerate(zip(starts, ends)):
        out[i] = np.bincount(y[order[a:b]]).argmax()
    return out


def _allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """Validation trials per class: one for every class with >= 2 trials, the rest in proportion to
    ``counts`` (largest remainder), never taking a class's last training trial."""
    alloc = (counts >= 2).astype(np.int64)
    cap = np.maximum(counts - 1, 0)
    quota = total * counts / max(1, counts.sum())
    for _ in range(max(0, total - int(alloc.sum()))):
        room = alloc < cap
        if not room.any():
            break
        gap = np.where(room, quota - alloc, -np.inf)
        alloc[int(np.argmax(gap))] += 1
    return alloc


def carve_validation(rows: np.ndarray, groups: np.ndarray | None, fraction: float, rng: np.random.Generator,
                     labels: np.ndarray | None = None, class_names: tuple[str, ...] = ()
                     ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Split ``rows`` into (train, validation, classes missing from validation).

    With ``groups`` the validation part is whole trials. With ``labels`` (the
    class of each row) it is also stratified: every class whose training part
    holds at least two trials gives at least one trial, the rest of the
    ``round(fraction · n_trials)`` trials go to the classes in proportion to
    their trials. A class with a single training trial keeps it for training
    and is named in the third value, so a fold can say its validation part
    cannot judge that class.
    """
    if fraction <= 0:
        return rows, rows[:0], ()
    if groups is None:
        perm = rng.permutation(rows)
        n_val = max(1, int(round(fraction * len(rows))))
        return np.sort(perm[n_val:]), np.sort(perm[:n_val]), ()
    unique = np.unique(groups[rows])
    if len(unique) < 2:
        raise ConfigError("cannot carve a validation part: the training part holds a single trial")
    total = max(1, int(round(fraction * len(unique))))
    if labels is None:
        chosen = rng.permutation(unique)[:total]
        missing: tuple[str, ...] = ()
    else:
        order = np.argsort(groups[rows], kind="stable")
        first = order[np.searchsorted(groups[rows][order], unique)]
        classes = np.asarray(labels[rows][first], dtype=np.int64)  # trial → class (labels are per trial)
        present = np.unique(classes)
        counts = np.array([(classes == c).sum() for c in present])
        alloc = _allocate(counts, total)
        chosen = np.concatenate([rng.permutation(unique[classes == c])[:k] for c, k in zip(present, alloc)])
        missing = tuple(class_names[c] if c < len(class_names) else str(int(c))
                        for c, k in zip(present, alloc) if k == 0)
    is_val = np.isin(groups[rows], chosen)
    return rows[~is_val], rows[is_val], missing


def row_classes(features: FeatureSet, groups: np.ndarray) -> np.ndarray | None:
    """Each row's trial class (its trial's most common target), or None without targets."""
    if features.y is None:
        return None
    trials = np.unique(groups)
    return trial_labels(features, groups, trials)[np.searchsorted(trials, groups)]


def stratified_trial_folds(features: FeatureSet, rows: np.ndarray, k: int, seed: int
                           ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, held-out) splits of ``rows`` by whole trials, each trial held out once, classes
    dealt round-robin so every held-out part holds every class that has at least ``k`` trials
    (``val_strategy="inner"``)."""
    groups = trial_groups(features)
    unique = np.unique(groups[rows])
    if len(unique) < 2:
        raise ConfigError(f"inner validation needs at least 2 training trials, got {len(unique)}")
    k = min(int(k), len(unique))
    classes = trial_labels(features, groups, unique)
    rng = np.random.default_rng([seed, 7])
    assign = np.empty(len(unique), dtype=np.int64)
    offset = 0
    for c in np.unique(classes):
        members = rng.permutation(np.flatnonzero(classes == c))
        assign[members] = (offset + np.arange(len(members))) % k
        offset += len(members)
    out = []
    for i in range(k):
        held = np.isin(groups[rows], unique[assign == i])
        out.append((rows[~held], rows[held]))
    return out


class Protocol(ABC):
    """Base of the protocols.

    ``val_strategy`` says how a fold's training part is used for model selection:

    - ``stratified`` (default): ``val_fraction`` of the training trials, whole
      trials and stratified by class (see :func:`carve_validation`), is the
      validation part early stopping reads;
    - ``none``: no validation part; training runs a fixed number of epochs and
      keeps the last, which is what the three papers implemented here report;
    - ``inner``: no validation part in the fold; the training step runs
      ``inner_folds`` stratified folds over the training trials to choose the
      epoch count, then retrains on all training trials
      (:func:`stratified_trial_folds`).

    Test rows take part in none of these.
    """

    name: ClassVar[str]

    def __init__(self, val_fraction: float = 0.1, seed: int = 0, val_strategy: str = "stratified") -> None:
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(
                f"The 'val_fraction' parameter must be a float in [0, 1). Got {val_fraction} instead."
            )
        if val_strategy not in VAL_STRATEGIES:
            raise ConfigError(invalid_choice("val_strategy", val_strategy, VAL_STRATEGIES))
        self.val_fraction = float(val_fraction)
        self.seed = int(seed)
        self.val_strategy = val_strategy

    @abstractmethod
    def split(self, features: FeatureSet) -> list[Fold]:
        """Build every fold."""

    def get_n_splits(self, features: FeatureSet) -> int:
        return len(self.split(features))

    def _fold(self, features: FeatureSet, name: str, train_rows: np.ndarray, test: np.ndarray,
              test_subjects: tuple[int, ...], rng: np.random.Generator, groups: np.ndarray | None,
              classes: np.ndarray | None) -> Fold:
        """A fold whose validation part is carved from ``train_rows`` as ``val_strategy`` says."""
        fraction = self.val_fraction if self.val_strategy == "stratified" else 0.0
        if groups is not None and fraction > 0 and len(np.unique(groups[train_rows])) < 2:
            fraction = 0.0  # a single training trial: nothing to hold out
            notes: tuple[str, ...] = ("no validation part: the training part holds a single trial",)
        else:
            notes = ()
        train, val, missing = carve_validation(train_rows, groups, fraction, rng, classes, features.class_names)
        if missing:
            notes += (f"validation part lacks class{'es' if len(missing) > 1 else ''} {', '.join(missing)} "
                      f"(a single training trial each): early stopping cannot judge "
                      f"{'them' if len(missing) > 1 else 'it'}",)
        for note in notes:
            logger.warning("%s: %s", name, note)
        return Fold(name, train, val, test, test_subjects, self.seed, notes)


class LeaveOneSubjectOut(Protocol):
    """One fold per subject: that subject is the test part, the rest train.

    The validation part is ``val_fraction`` of the training subjects' trials
    (whole trials, stratified by class), drawn with the fold's own seed.
    """

    name: ClassVar[str] = "loso"

    def split(self, features: FeatureSet) -> list[Fold]:
        subjects = features.column("subject")
        unique = np.unique(subjects)
        if len(unique) < 2:
            raise ConfigError(f"leave-one-subject-out needs at least 2 subjects, got {len(unique)}")
        groups = trial_groups(features)
        classes = row_classes(features, groups)
        rows = np.arange(len(subjects))
        folds = []
        for s in unique:
            # keyed by the subject, not its position, so a fold's validation
            # trials do not change when other subjects are added or dropped
            rng = np.random.default_rng([self.seed, int(s)])
            folds.append(self._fold(features, f"subject-{int(s):02d}", rows[subjects != s], rows[subjects == s],
                                    (int(s),), rng, groups, classes))
        return folds

    def get_n_splits(self, features: FeatureSet) -> int:
        return len(np.unique(features.column("subject")))


class SubjectHoldout(Protocol):
    """One fold: the given subjects are the test part, every other subject trains.

    ``test_subjects=None`` draws ``round(ratio_test · n)`` subjects (at least 1)
    with the seed: a subject-level split, e.g. to validate inside a training part.
    """

    name: ClassVar[str] = "holdout"

    def __init__(self, test_subjects=None, ratio_test: float = 0.2, val_fraction: float = 0.1, seed: int = 0,
                 val_strategy: str = "stratified") -> None:
        super().__init__(val_fraction, seed, val_strategy)
        self.test_subjects = None if test_subjects is None else tuple(int(s) for s in test_subjects)
        self.ratio_test = float(ratio_test)

    def split(self, features: FeatureSet) -> list[Fold]:
        subjects = features.column("subject")
        unique = np.unique(subjects)
        rng = np.random.default_rng([self.seed, 1])
        if self.test_subjects is None:
            if len(unique) < 2:
                raise ConfigError(f"a subject-level split needs at least 2 subjects, got {len(unique)}")
            n_test = min(len(unique) - 1, max(1, int(round(self.ratio_test * len(unique)))))
            test_subjects = tuple(sorted(int(s) for s in rng.permutation(unique)[:n_test]))
        else:
            test_subjects = self.test_subjects
            missing = sorted(set(test_subjects) - {int(s) for s in unique})
            if missing:
                raise ConfigError(f"held-out subject {missing[0]} is not in the data (subjects: "
                                  f"{', '.join(str(int(s)) for s in unique)})")
            if len(set(test_subjects)) >= len(unique):
                raise ConfigError("every subject is held out: nothing is left to train on")
        rows = np.arange(len(subjects))
        is_test = np.isin(subjects, test_subjects)
        groups = trial_groups(features)
        name = "holdout-" + "-".join(f"{s:02d}" for s in test_subjects)
        return [self._fold(features, name, rows[~is_test], rows[is_test], test_subjects, rng, groups,
                           row_classes(features, groups))]

    def get_n_splits(self, features: FeatureSet) -> int:
        return 1


class TrainTestSplit(Protocol):
    """A single ``ratio`` : ``1 - ratio`` split.

    ``split_level="trial"`` (default) keeps every trial's windows on one side,
    since DEAP and SEED labels are per trial and neighbouring windows share
    signal. ``"window"`` shuffles windows, reproducing the random 8:2 setting
    of the Mood Reader paper; test windows then share trials with training
    windows, so it leaks, and says so with a :class:`LeakageWarning`.
    """

    name: ClassVar[str] = "split"

    def __init__(self, ratio: float = 0.8, split_level: str = "trial", val_fraction: float = 0.1, seed: int = 0,
                 val_strategy: str = "stratified") -> None:
        super().__init__(val_fraction, seed, val_strategy)
        if not 0.0 < ratio < 1.0:
            raise ConfigError(f"The 'ratio' parameter of split must be a float in (0, 1). Got {ratio} instead.")
        if split_level not in SPLIT_LEVELS:
            raise ConfigError(invalid_choice("split_level", split_level, SPLIT_LEVELS))
        self.ratio = float(ratio)
        self.split_level = split_level

    def split(self, features: FeatureSet) -> list[Fold]:
        rng = np.random.default_rng([self.seed, 0])
        rows = np.arange(features.n_samples)
        subjects = tuple(int(s) for s in np.unique(features.column("subject")))
        if self.split_level == "window":
            message = ("split_level='window' shuffles windows across train and test: test windows share "
                       "trials with training windows, so accuracy is optimistic (leaks)")
            warnings.warn(message, LeakageWarning, stacklevel=2)
            logger.warning(message)
            perm = rng.permutation(rows)
            n_train = int(round(self.ratio * len(rows)))
            train, test = np.sort(perm[:n_train]), np.sort(perm[n_train:])
            name = f"split-{self.split_level}"
            return [self._fold(features, name, train, test, subjects, rng, None, None)]
        groups = trial_groups(features)
        unique = rng.permutation(np.unique(groups))
        n_train = int(round(self.ratio * len(unique)))
        if n_train < 1 or n_train >= len(unique):
            raise ConfigError(
                f"ratio={self.ratio} of {len(unique)} trials leaves an empty train or test part"
            )
        is_train = np.isin(groups, unique[:n_train])
        return [self._fold(features, f"split-{self.split_level}", rows[is_train], rows[~is_train], subjects,
                           rng, groups, row_classes(features, groups))]

    def get_n_splits(self, features: FeatureSet) -> int:
        return 1


def _session_trials(features: FeatureSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (features.column("subject").astype(np.int64), features.column("session").astype(np.int64),
            features.column("trial").astype(np.int64))


class PerSubject(Protocol):
    """Within each subject and session: the first ``train_trials`` trials train, the rest test.

    One fold per (subject, session), as the SEED-family papers evaluate
    (SEED 9/6, SEED-IV 16/8, SEED-V 9/6 trials); the validation part is
    carved from the training trials, one whole trial of every class at least
    (``val_strategy``, see :class:`Protocol`). ``train_trials=None`` takes
    60 % of each session's trials.
    """

    name: ClassVar[str] = "per-subject"

    def __init__(self, train_trials: int | None = None, val_fraction: float = 0.1, seed: int = 0,
                 val_strategy: str = "stratified") -> None:
        super().__init__(val_fraction, seed, val_strategy)
        if train_trials is not None and train_trials < 1:
            raise ConfigError(f"The 'train_trials' parameter must be an int >= 1. Got {train_trials} instead.")
        self.train_trials = train_trials

    def split(self, features: FeatureSet) -> list[Fold]:
        subjects, sessions, trials = _session_trials(features)
        groups = trial_groups(features)
        classes = row_classes(features, groups)
        rows = np.arange(len(subjects))
        folds = []
        for subject, session in sorted(set(zip(subjects.tolist(), sessions.tolist()))):
            here = (subjects == subject) & (sessions == session)
            order = np.unique(trials[here])
            n_train = self.train_trials if self.train_trials is not None else int(round(0.6 * len(order)))
            if not 1 <= n_train < len(order):
                raise ConfigError(f"per-subject: subject {subject} session {session} has {len(order)} trials, "
                                  f"so train_trials must be in [1, {len(order) - 1}]; got {n_train}")
            is_train = here & np.isin(trials, order[:n_train])
            # keyed by (subject, session): the same validation trials whichever subjects run
            rng = np.random.default_rng([self.seed, subject, session])
            folds.append(self._fold(features, f"subject-{subject:02d}-session-{session}", rows[is_train],
                                    rows[here & ~is_train], (int(subject),), rng, groups, classes))
        return folds


class CrossSession(Protocol):
    """Within each subject: train on some sessions, test on another.

    By default one fold per (subject, session) leaves that session out;
    ``test_session=S`` gives one fold per subject that tests on session S and
    trains on the others (the common "sessions 1–2 → 3"). The validation part
    is carved from the training sessions' trials, stratified by class.
    """

    name: ClassVar[str] = "cross-session"

    def __init__(self, test_session: int | None = None, val_fraction: float = 0.1, seed: int = 0,
                 val_strategy: str = "stratified") -> None:
        super().__init__(val_fraction, seed, val_strategy)
        self.test_session = test_session

    def split(self, features: FeatureSet) -> list[Fold]:
        subjects, sessions, _ = _session_trials(features)
        groups = trial_groups(features)
        classes = row_classes(features, groups)
        rows = np.arange(len(subjects))
        folds = []
        for subject in np.unique(subjects).tolist():
            own = np.unique(sessions[subjects == subject]).tolist()
            if len(own) < 2:
                raise ConfigError(f"cross-session needs at least 2 sessions per subject; subject {subject} has "
                                  f"{len(own)} (session {', '.join(map(str, own))})")
            if self.test_session is not None and self.test_session not in own:
                raise ConfigError(f"cross-session: subject {subject} has no session {self.test_session} "
                                  f"(it has {', '.join(map(str, own))})")
            for session in own if self.test_session is None else [self.test_session]:
                test = rows[(subjects == subject) & (sessions == session)]
                rng = np.random.default_rng([self.seed, subject, session])
                folds.append(self._fold(features, f"subject-{subject:02d}-session-{session}",
                                        rows[(subjects == subject) & (sessions != session)], test,
                                        (int(subject),), rng, groups, classes))
        return folds


PROTOCOLS: Registry[type[Protocol]] = Registry("protocol")
PROTOCOLS.register("loso")(LeaveOneSubjectOut)
PROTOCOLS.register("split")(TrainTestSplit)
PROTOCOLS.register("per-subject")(PerSubject)
PROTOCOLS.register("cross-session")(CrossSession)

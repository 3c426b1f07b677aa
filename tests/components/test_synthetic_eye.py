"""The synthetic eye-movement features of SEED-IV and SEED-V look like the real ones: scales, tails, drift, gaps.

And their label signal is weak: a within-subject logistic regression lands well above chance, well below 1.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import skew

from moodops.components.datasets.seed.seed import N_EYE_FEATURES, SEED_IV_SESSION_LABELS, SEED_IV_TRIALS
from moodops.components.datasets.seed.seed_v import N_EYE, SESSION_LABELS, TRIALS_PER_SESSION
from moodops.components.datasets.seed.synthetic_seed import (
    EYE_LATENTS,
    EYE_NAN_RATE,
    SEED_IV_EYE_FEATURES,
    EyeSubject,
    eye_clip_offsets,
    synthesize_eye_session,
    synthesize_seed_iv_subject,
)
from moodops.components.datasets.seed.synthetic_seed_v import SEED_V_EYE_FEATURES, synthesize_subject_seed_v

IV = {name: j for j, name in enumerate(SEED_IV_EYE_FEATURES)}
V = {name: j for j, name in enumerate(SEED_V_EYE_FEATURES)}
SACCADE_STATS = ("saccade_duration_mean", "saccade_duration_sd", "saccade_amplitude_mean", "saccade_amplitude_sd",
                 "saccade_duration_average", "saccade_amplitude_average", "saccade_latency_average")


def _windows(lo: int, hi: int, seed: int = 0) -> dict[int, list[int]]:
    """Windows per trial of each session, as write_synthetic_seed_iv draws them."""
    layout = np.random.default_rng([seed, 0])
    return {s: [int(w) for w in layout.integers(lo, hi + 1, SEED_IV_TRIALS)] for s in (1, 2, 3)}


@pytest.fixture(scope="module")
def seed_iv_eye() -> dict[int, dict[int, list[np.ndarray]]]:
    """subject → session → trial eye features (W, 31) of 3 synthetic SEED-IV subjects, 10-14 windows per trial."""
    windows = _windows(10, 14)
    return {s: {session: [eye for _, eye in trials] for session, trials in synthesize_seed_iv_subject(s, windows).items()}
            for s in (1, 2, 3)}


def _pooled(seed_iv_eye) -> np.ndarray:
    return np.concatenate([np.concatenate(trials) for sessions in seed_iv_eye.values() for trials in sessions.values()])


def _window_accuracy(train: list[tuple[np.ndarray, int]], test: list[tuple[np.ndarray, int]]) -> float:
    """Logistic regression on single windows; mean imputation and z-scores fit on the training trials."""
    from sklearn.linear_model import LogisticRegression

    def stack(trials):
        return np.concatenate([x for x, _ in trials]), np.concatenate([np.full(len(x), c) for x, c in trials])

    (x, y), (x_test, y_test) = stack(train), stack(test)
    mean = np.nanmean(x, axis=0)
    x, x_test = np.where(np.isnan(x), mean, x), np.where(np.isnan(x_test), mean, x_test)
    sd = x.std(axis=0) + 1e-9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence on unscaled tails is not the point here
        model = LogisticRegression(max_iter=1000).fit((x - mean) / sd, y)
    return float((model.predict((x_test - mean) / sd) == y_test).mean())


# --------------------------------------------------------------------------- names


def test_feature_names():
    assert len(SEED_IV_EYE_FEATURES) == len(set(SEED_IV_EYE_FEATURES)) == N_EYE_FEATURES == 31
    assert len(SEED_V_EYE_FEATURES) == len(set(SEED_V_EYE_FEATURES)) == N_EYE == 33
    # The release's groups: rows 1-12 pupil, 13-16 dispersion, 17-18 fixation, 19-22 saccade, 23-31 events.
    assert all(n.startswith("pupil_") for n in SEED_IV_EYE_FEATURES[:12])
    assert all(n.startswith("dispersion_") for n in SEED_IV_EYE_FEATURES[12:16])
    assert SEED_IV_EYE_FEATURES[16:18] == ("fixation_duration_mean", "fixation_duration_sd")
    assert all(n.startswith("saccade_") for n in SEED_IV_EYE_FEATURES[18:22])
    assert SEED_IV_EYE_FEATURES[22] == "blink_frequency" and SEED_IV_EYE_FEATURES[30] == "saccade_latency_average"
    assert SEED_IV_EYE_FEATURES[:4] == ("pupil_x_mean", "pupil_x_sd", "pupil_y_mean", "pupil_y_sd")
    # SEED-V: SEED-IV's with the blink durations after the fixation durations.
    assert SEED_V_EYE_FEATURES[18:20] == ("blink_duration_mean", "blink_duration_sd")
    assert tuple(n for n in SEED_V_EYE_FEATURES if not n.startswith("blink_duration")) == SEED_IV_EYE_FEATURES


# --------------------------------------------------------------------------- realism


def test_scales_are_the_release_ones(seed_iv_eye):
    x = _pooled(seed_iv_eye)
    seen = ~np.isnan(x[:, IV["pupil_x_mean"]])

    def share_within(name, lo, hi):
        values = x[seen, IV[name]]
        values = values[~np.isnan(values)]
        return np.mean((values >= lo) & (values <= hi))

    assert share_within("pupil_x_mean", 55, 125) > 0.95 and share_within("pupil_y_mean", 55, 125) > 0.95
    for axis in "xy":
        for band in ("0-0.2hz", "0.2-0.4hz", "0.4-0.6hz", "0.6-1hz"):
            assert share_within(f"pupil_{axis}_power_{band}", 4, 26) > 0.9
    assert share_within("fixation_duration_mean", 100, 400) > 0.95
    assert 1000 < np.nanmedian(x[:, IV["fixation_dispersion_total"]]) < 10000  # thousands
    assert share_within("saccade_duration_mean", 10, 100) > 0.95 and share_within("saccade_latency_average", 100, 3000) > 0.95
    for name in ("blink_frequency", "fixation_frequency", "saccade_frequency"):
        values = x[seen, IV[name]]
        assert values.min() >= 0 and values.max() <= 3 and np.allclose(values * 4, np.round(values * 4))  # counts / 4 s
    assert np.nanmin(x) >= 0 and not np.isinf(x).any()
    # Band power falls with frequency, the maximum fixation is never below the mean one.
    bands = np.nanmedian(x[:, [IV[f"pupil_x_power_{b}"] for b in ("0-0.2hz", "0.2-0.4hz", "0.4-0.6hz", "0.6-1hz")]],
                         axis=0)
    assert (np.diff(bands) < 0).all()
    both = ~np.isnan(x[:, IV["fixation_duration_max"]])
    assert (x[both, IV["fixation_duration_max"]] >= x[both, IV["fixation_duration_mean"]]).all()


def test_durations_have_long_right_tails(seed_iv_eye):
    for subject, sessions in seed_iv_eye.items():
        x = np.concatenate([np.concatenate(trials) for trials in sessions.values()])
        for name in ("fixation_duration_mean", "saccade_duration_mean", "saccade_amplitude_mean",
                     "fixation_dispersion_total", "pupil_x_sd", "saccade_latency_average"):
            values = x[:, IV[name]]
            assert skew(values[~np.isnan(values)]) > 0.2, (subject, name)


def test_pupil_drifts_within_a_session(seed_iv_eye):
    correlations, halves = [], []
    for sessions in seed_iv_eye.values():
        for trials in sessions.values():
            pupil = np.concatenate(trials)[:, IV["pupil_x_mean"]]
            index = np.flatnonzero(~np.isnan(pupil))
            correlations.append(np.corrcoef(index, pupil[index])[0, 1])
            half = len(pupil) // 2
            halves.append(np.nanmean(pupil[half:]) / np.nanmean(pupil[:half]))
    # Fatigue: the pupil shrinks over a session in most of them, clearly.
    assert np.mean(np.array(correlations) < -0.1) >= 2 / 3, np.round(correlations, 2)
    assert np.mean(np.array(halves) < 0.98) >= 2 / 3, np.round(halves, 3)


def test_offsets_between_subjects_and_sessions(seed_iv_eye):
    means = np.array([[np.nanmean(np.log(np.concatenate(trials)[:, IV["pupil_x_mean"]]))
                       for trials in sessions.values()] for sessions in seed_iv_eye.values()])  # (subject, session)
    assert np.ptp(means.mean(axis=1)) > 0.05  # subjects differ by more than 5 %
    assert (np.ptp(means, axis=1) > 0.01).all()  # and so do a subject's sessions


def test_missing_values(seed_iv_eye):
    x = _pooled(seed_iv_eye)
    lost = np.isnan(x).all(axis=1)
    assert 0.5 * EYE_NAN_RATE < lost.mean() < 1.6 * EYE_NAN_RATE  # tracker loss, by default
    assert 0.01 < np.isnan(x).mean() < 0.08 and np.isnan(x).any(axis=1).mean() < 0.12  # a few percent in all
    # A window without a saccade (and data) has no saccade statistics, and only those are missing.
    no_saccade = ~lost & (x[:, IV["saccade_frequency"]] == 0)
    assert no_saccade.any()
    stats = [IV[n] for n in SACCADE_STATS]
    assert np.isnan(x[no_saccade][:, stats]).all()
    assert not np.isnan(np.delete(x[no_saccade], stats, axis=1)).any()
    assert not np.isnan(x[~lost & ~no_saccade]).any()
    # A window with one saccade has SD 0; the rate is what the parameter says.
    one = ~lost & (x[:, IV["saccade_frequency"]] == 0.25)
    assert (x[one, IV["saccade_duration_sd"]] == 0).all()
    windows = _windows(20, 20)
    for rate in (0.0, 0.2):
        eye = np.concatenate([np.concatenate([e for _, e in t]) for t in synthesize_seed_iv_subject(
            4, windows, eye_nan_rate=rate).values()])
        assert abs(np.isnan(eye).all(axis=1).mean() - rate) < 0.05


def test_seed_v_blink_durations_missing_without_blinks():
    _, eye, _ = synthesize_subject_seed_v(2, (10, 14))
    x = np.concatenate(list(eye.values()))
    assert x.dtype == np.float32 and x.shape[1] == 33
    lost = np.isnan(x).all(axis=1)
    no_blink = ~lost & (x[:, V["blink_frequency"]] == 0)
    assert 0.05 < no_blink.mean() < 0.6
    assert np.isnan(x[no_blink][:, [V["blink_duration_mean"], V["blink_duration_sd"]]]).all()
    blinked = ~lost & ~no_blink
    assert not np.isnan(x[blinked, V["blink_duration_mean"]]).any()
    assert 50 < np.nanmedian(x[:, V["blink_duration_mean"]]) < 500
    assert 0.02 < np.isnan(x).mean() < 0.1


def test_deterministic_and_eye_apart_from_eeg():
    windows = _windows(4, 6)
    a, b = synthesize_seed_iv_subject(1, windows, seed=3), synthesize_seed_iv_subject(1, windows, seed=3)
    other = synthesize_seed_iv_subject(2, windows, seed=3)
    no_gaps = synthesize_seed_iv_subject(1, windows, seed=3, eye_nan_rate=0.0)
    for session in (1, 2, 3):
        for (de_a, eye_a), (de_b, eye_b), (_, eye_o), (de_n, _) in zip(a[session], b[session], other[session],
                                                                       no_gaps[session]):
            np.testing.assert_array_equal(eye_a, eye_b)  # NaN in the same places too
            np.testing.assert_array_equal(de_a, de_b)
            np.testing.assert_array_equal(de_a, de_n)  # the eye's own random stream
            assert eye_a.shape == eye_o.shape and not np.array_equal(eye_a, eye_o, equal_nan=True)


def test_eye_session_generator_contract():
    rng = np.random.default_rng(0)
    subject = EyeSubject.draw(rng, len(SEED_V_EYE_FEATURES))
    clips = eye_clip_offsets(rng, 3)
    assert clips.shape == (3, len(EYE_LATENTS))
    shifts = [np.zeros(len(EYE_LATENTS))] * 3
    trials = synthesize_eye_session(rng, subject, [2, 5, 1], shifts, clips, 0.0, SEED_V_EYE_FEATURES)
    assert [t.shape for t in trials] == [(2, 33), (5, 33), (1, 33)]
    assert all(t.dtype == np.float64 for t in trials)


# --------------------------------------------------------------------------- weak label signal


def test_seed_iv_logistic_regression_is_well_above_chance_and_far_from_perfect():
    windows = _windows(8, 12)
    accuracies = []
    for subject in (1, 2):
        for session, trials in synthesize_seed_iv_subject(subject, windows).items():
            labelled = [(eye, SEED_IV_SESSION_LABELS[session][k]) for k, (_, eye) in enumerate(trials)]
            accuracies.append(_window_accuracy(labelled[:16], labelled[16:]))
    assert 0.45 <= np.mean(accuracies) <= 0.8, np.round(accuracies, 2)  # chance 0.25


def test_seed_v_logistic_regression_is_well_above_chance_and_far_from_perfect():
    accuracies = []
    for subject in (1, 2):
        _, eye, labels = synthesize_subject_seed_v(subject, (8, 12))
        for session in range(len(SESSION_LABELS)):
            keys = range(session * TRIALS_PER_SESSION, (session + 1) * TRIALS_PER_SESSION)
            labelled = [(eye[k].astype(np.float64), int(labels[k][0])) for k in keys]
            accuracies.append(_window_accuracy(labelled[:9], labelled[9:]))
    assert 0.3 <= np.mean(accuracies) <= 0.65, np.round(accuracies, 2)  # chance 0.2; the eye alone: at most 0.6

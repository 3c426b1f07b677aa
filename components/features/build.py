"""Dataset files → a window-level FeatureSet, cached per subject."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moodops.components.datasets.base import Dataset
from moodops.components.errors import ConfigError, DataError, did_you_mean, invalid_choice
from moodops.components.features.cache import FeatureCache, cache_key
from moodops.components.features.connectivity import pearson_connectivity, spectral_connectivity
from moodops.components.features.spectral import (DE_METHODS, WINDOW_ORIGINS, _window_params, _windows,
                                                  differential_entropy, power_spectral_density)
from moodops.components.registry import Registry
from moodops.components.types import FeatureSet

logger = logging.getLogger(__name__)

# Bump when a change to feature code changes its numbers: old cache entries
# then stop matching.
# (2: ``dfc`` became the time-domain Pearson connectivity of Zheng et al.'s Eq. 1.)
FEATURE_CODE_VERSION = 2

FEATURES: Registry[Callable[..., np.ndarray]] = Registry("feature")
FEATURES.register("de")(differential_entropy)
FEATURES.register("psd")(power_spectral_density)
FEATURES.register("dfc")(pearson_connectivity)
FEATURES.register("spectral_dfc")(spectral_connectivity)

#: Every feature kind: the computed ones above, and the features a release ships.
FEATURE_KINDS = (*FEATURES.names(), "precomputed")

#: Inputs besides ``x`` that :func:`build_features` can add (see the model contract).
EXTRAS = ("raw", "eye", "face", "psd")
#: The extras computed from the EEG itself (the others are a dataset's own modalities).
COMPUTED_EXTRAS = ("raw", "psd")

#: Per feature kind, the settings ``FeatureConfig.params`` may give it (the window is shared:
#: ``window_s``/``step_s`` cut the windows every feature and extra of a sample is computed on).
FEATURE_PARAMS: dict[str, tuple[str, ...]] = {
    "de": ("bands",),
    "psd": ("bands", "segment_s", "log"),
    "dfc": (),
    "spectral_dfc": ("bands", "fmin", "fmax", "segment_s"),
}


def check_feature_params(params: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Validate per-feature settings (see :data:`FEATURE_PARAMS`) → a copy with bands as ``(low, high)`` tuples.

    Unknown feature kinds and settings are one-line errors with a did-you-mean."""
    out: dict[str, dict[str, Any]] = {}
    if params is not None and not isinstance(params, dict):
        raise ConfigError(f"feature_params must map feature kinds to their settings, got {params!r}")
    for kind, values in (params or {}).items():
        if kind not in FEATURE_PARAMS:
            raise ConfigError(f"feature_params: unknown feature '{kind}'.{did_you_mean(kind, FEATURE_PARAMS)} "
                              f"(features with settings: {', '.join(FEATURE_PARAMS)})")
        if not isinstance(values, dict):
            raise ConfigError(f"feature_params: '{kind}' must map settings to values, got {values!r}")
        for key in values:
            if key not in FEATURE_PARAMS[kind]:
                allowed = ", ".join(FEATURE_PARAMS[kind]) or "none (its window is window_s)"
                raise ConfigError(f"feature_params: '{kind}' has no setting '{key}'."
                                  f"{did_you_mean(key, FEATURE_PARAMS[kind])} Its settings: {allowed}")
        values = dict(values)
        if "bands" in values:
            values["bands"] = _bands(kind, values["bands"])
        for key in ("segment_s", "fmin", "fmax"):
            if key in values:
                try:
                    values[key] = float(values[key])
                except (TypeError, ValueError):
                    raise ConfigError(f"feature_params: '{kind}' {key} must be a number, got {values[key]!r}") from None
        out[kind] = values
    return out


@dataclass(frozen=True)
class FeatureConfig:
    """How windows and features are computed.

    ``baseline_removal``: for datasets with a pre-trial baseline (DEAP),
    subtract the baseline windows' mean feature per channel and band from
    every trial window (off by default).
    ``extras``: other inputs to build alongside ``x`` for every window:
    ``raw`` (the window's EEG samples), ``psd`` (the window's Welch band power
    per channel, ``(C, bands)``: the DFCN's node features x^E), ``eye`` and
    ``face`` (the dataset's per-window features of those modalities).
    ``params``: per feature kind, its own settings (:data:`FEATURE_PARAMS`),
    e.g. ``{"psd": {"bands": {"theta": (4, 8), …}, "segment_s": 1.5}}``; they
    apply to that kind as ``x`` and as an extra. ``bands`` is the default
    for the band features that ``params`` leaves unset.
    ``kind``: ``de`` and ``psd`` give ``(C, bands)`` per window; ``dfc`` gives
    the ``(C, C)`` Pearson correlation of the channels' signals in the window
    (Zheng et al. 2023, Eq. 1); ``spectral_dfc`` the correlation of their log
    Welch spectra; ``precomputed`` takes the features the dataset release ships (``method``
    names the set, e.g. SEED's ``de_LDS``; windows are the release's own).
    ``window_origin``: ``start`` cuts windows from a trial's first sample and
    drops the remainder at its end; ``end`` cuts them backwards from its last
    sample, so the remainder dropped is at the start (Mood Reader §4.1: "a 4s
    non-overlapping Hanning window was utilized for segmentation in reverse
    order"). Window indices still count forwards in time. The raw windows
    (``raw`` extra) are the same samples; a dataset's own per-window eye or
    face features are matched by index, so with ``end`` they lag the EEG
    windows by the dropped remainder (less than one window).
    """

    kind: str = "de"
    method: str = "bandpass"
    window_s: float = 1.0
    step_s: float | None = None
    bands: dict[str, tuple[float, float]] | None = None
    baseline_removal: bool = False
    extras: tuple[str, ...] = ()
    window_origin: str = "start"
    params: dict[str, dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ConfigError(invalid_choice("feature", self.kind, FEATURE_KINDS))
        if self.kind == "precomputed" and "raw" in self.extras:
            raise ConfigError("precomputed features come without the raw EEG windows a 'raw' input needs")
        for name in self.extras:
            if name not in EXTRAS:
                raise ConfigError(invalid_choice("extras", name, EXTRAS))
        object.__setattr__(self, "extras", tuple(sorted(set(self.extras))))
        if self.kind == "de" and self.method not in DE_METHODS:
            raise ConfigError(invalid_choice("de_method", self.method, DE_METHODS))
        if self.window_s <= 0:
            raise ConfigError(f"The 'window_s' parameter must be > 0. Got {self.window_s} instead.")
        if self.window_origin not in WINDOW_ORIGINS:
            raise ConfigError(invalid_choice("window_origin", self.window_origin, WINDOW_ORIGINS))
        params = check_feature_params(self.params)
        object.__setattr__(self, "params", params or None)

    def kind_params(self, kind: str) -> dict[str, Any]:
        """The settings ``kind`` is computed with: ``bands`` (the shared default) overridden by ``params``."""
        out: dict[str, Any] = {"bands": self.bands} if "bands" in FEATURE_PARAMS.get(kind, ()) else {}
        out.update((self.params or {}).get(kind, {}))
        return out

    def trim(self, x: np.ndarray, sfreq: float) -> np.ndarray:
        """The samples the windows cover: with ``window_origin="end"`` the leading remainder is cut off."""
        if self.window_origin == "start":
            return x
        win, step, n_windows = _window_params(x.shape[-1], sfreq, self.window_s, self.step_s)
        return x[..., x.shape[-1] - (win + (n_windows - 1) * step):]

    def compute(self, x: np.ndarray, sfreq: float, kind: str | None = None) -> np.ndarray:
        """Feature ``kind`` (default: this config's) of every window of ``x (..., C, n_times)``."""
        kind = kind or self.kind
        x = self.trim(x, sfreq)
        params = self.kind_params(kind)
        if kind == "de":
            params["method"] = self.method
        return FEATURES.get(kind)(x, sfreq, window_s=self.window_s, step_s=self.step_s, **params)

    def raw_windows(self, data: np.ndarray, sfreq: float) -> np.ndarray:
        """(C, n_times) → (n_windows, C, window samples): the same windows as :meth:`compute`."""
        data = self.trim(data, sfreq)
        win, step, _ = _window_params(data.shape[-1], sfreq, self.window_s, self.step_s)
        return np.ascontiguousarray(_windows(np.asarray(data, dtype=np.float32), win, step).transpose(1, 0, 2))


def subject_features(dataset: Dataset, subject: int, config: FeatureConfig
                     ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Compute one subject's window features → (x (n_rows, C, F), metadata columns, extra inputs)."""
    if config.kind == "precomputed":
        recordings = dataset.load_precomputed(subject, config.method)
        per_trial = [np.asarray(r.features, dtype=np.float32)[None] for r in recordings]
        return _collect(dataset, recordings, per_trial, config)
    recordings = dataset.load_subject(subject)
    lengths = {r.data.shape for r in recordings}
    if len(lengths) == 1:
        sfreq = recordings[0].sfreq
        per_trial = [config.compute(np.stack([r.data for r in recordings]), sfreq)]
        if config.baseline_removal:
            per_trial[0] = per_trial[0] - _baseline(recordings, config)
    else:  # trials of different length: one call each
        per_trial = [config.compute(r.data, r.sfreq)[None] for r in recordings]
        if config.baseline_removal:
            per_trial = [p - _baseline([r], config) for p, r in zip(per_trial, recordings)]
    return _collect(dataset, recordings, per_trial, config)


def _collect(dataset: Dataset, recordings, per_trial: list[np.ndarray], config: FeatureConfig
             ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-trial feature blocks → (x rows, metadata columns, extra inputs)."""
    rows_x, meta = [], {k: [] for k in ("subject", "session", "trial", "window")}
    labels: dict[str, list[float]] = {k: [] for k in recordings[0].labels}
    extra: dict[str, list[np.ndarray]] = {k: [] for k in config.extras}
    flat = [f[i] for f in per_trial for i in range(len(f))]
    for rec, feats in zip(recordings, flat):
        n = feats.shape[0]
        rows_x.append(feats)
        for name in config.extras:
            extra[name].append(_extra_windows(dataset, rec, name, n, config))
        meta["subject"].append(np.full(n, rec.subject, np.int32))
        meta["session"].append(np.full(n, rec.session, np.int32))
        meta["trial"].append(np.full(n, rec.trial, np.int32))
        meta["window"].append(np.arange(n, dtype=np.int32))
        for k, v in rec.labels.items():
            labels[k].append(np.full(n, v, np.float64))
    columns = {k: np.concatenate(v) for k, v in meta.items()}
    columns.update({k: np.concatenate(v) for k, v in labels.items()})
    return (np.concatenate(rows_x).astype(np.float32), columns,
            {k: np.concatenate(v).astype(np.float32) for k, v in extra.items()})


def _extra_windows(dataset: Dataset, rec, name: str, n_windows: int, config: FeatureConfig) -> np.ndarray:
    """One trial's extra input, one row per feature window."""
    if name == "raw":
        return config.raw_windows(rec.data, rec.sfreq)
    if name == "psd":
        return config.compute(rec.data, rec.sfreq, kind="psd")
    where = f"{dataset.name} subject {rec.subject} session {rec.session} trial {rec.trial}"
    if name not in rec.extra:
        raise DataError(f"{where}: no '{name}' features (dataset modalities: {', '.join(dataset.modalities)})")
    values = np.asarray(rec.extra[name], dtype=np.float32)
    if values.ndim != 2 or len(values) != n_windows:
        raise DataError(f"{where}: '{name}' has {values.shape[0] if values.ndim else 0} windows but the EEG has "
                        f"{n_windows} (shape {values.shape}, expected ({n_windows}, n_features))")
    return values

def _baseline(recordings, config: FeatureConfig) -> np.ndarray:
    if "baseline" not in recordings[0].extra:
        raise ConfigError("baseline_removal needs a dataset with a pre-trial baseline (e.g. deap)")
    base = np.stack([r.extra["baseline"] for r in recordings])
    return config.compute(base, recordings[0].sfreq).mean(axis=1, keepdims=True)


def build_features(
    dataset: Dataset,
    config: FeatureConfig,
    cache_dir: str | Path | None,
    progress: Callable[[int, int, int, bool], None] | None = None,
) -> FeatureSet:
    """Window-level features for every selected subject of ``dataset``.

    Each subject is cached on its own (keyed by its files' fingerprint, the
    dataset options, the feature config and :data:`FEATURE_CODE_VERSION`), so
    subsets and reruns reuse work. ``progress(done, total, subject, hit)`` is
    called after each subject.
    """
    import pyarrow as pa

    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    subjects = dataset.subjects()
    xs, tables, extras, hits = [], [], [], 0
    for k, subject in enumerate(subjects):
        key = cache_key(
            {
                "dataset": dataset.name,
                "options": dataset.options(),
                "source": dataset.fingerprint(subject),
                "subject": subject,
                "features": asdict(config),
                "version": FEATURE_CODE_VERSION,
            }
        )
        entry = cache.get(key) if cache is not None else None
        if entry is None:
            x, columns, extra = subject_features(dataset, subject, config)
            table = pa.table(columns)
            if cache is not None:
                cache.put(key, x, table, {"dataset": dataset.name, "subject": subject}, extra)
        else:
            x, table, extra = entry
            hits += 1
        xs.append(x)
        tables.append(table)
        extras.append(extra)
        if progress is not None:
            progress(k + 1, len(subjects), subject, entry is not None)
    meta = pa.concat_tables(tables)
    x = np.concatenate(xs)  # also copies a single memory-mapped cache entry into owned memory
    logger.info("features: %d subjects, %d from cache, x %s", len(subjects), hits, x.shape)
    return FeatureSet(
        x=x,
        meta=meta,
        axes=("channel", "channel") if config.kind in ("dfc", "spectral_dfc") else ("channel", "band"),
        info={"cache_hits": hits, "subjects": subjects, "feature": asdict(config)},
        extra={k: np.concatenate([e[k] for e in extras]) for k in config.extras},
    )


def _bands(kind: str, bands: Any) -> dict[str, tuple[float, float]]:
    """``{"theta": [4, 8], …}`` (YAML/JSON lists) → ``{"theta": (4.0, 8.0), …}``; a malformed entry is one line."""
    if not isinstance(bands, dict) or not bands:
        raise ConfigError(f"feature_params: '{kind}' bands must map band names to [low, high] Hz, got {bands!r}")
    out = {}
    for name, edges in bands.items():
        try:
            lo, hi = (float(e) for e in edges)
        except (TypeError, ValueError):
            raise ConfigError(f"feature_params: '{kind}' band '{name}' must be [low, high] in Hz, "
                              f"got {edges!r}") from None
        out[str(name)] = (lo, hi)
    return out


def dataset_fingerprint(dataset: Dataset) -> str:
    return cache_key({s: dataset.fingerprint(s) for s in dataset.subjects()})[:16]


def make_sequences(features: FeatureSet, seq_len: int, step: int | None = None, origin: str = "start") -> FeatureSet:
    """Group consecutive windows of each trial into samples of ``seq_len`` windows.

    ``x (n_windows_total, C, F)`` → ``(n_samples, seq_len, C, F)`` (and each
    extra input alike, e.g. ``eye (n, E)`` → ``(n_samples, seq_len, E)``); windows that
    do not fill a sequence are dropped: at a trial's end with ``origin="start"``,
    at its start with ``origin="end"`` (the last sequence then ends on the
    trial's last window, as Mood Reader's SWC groups windows cut in reverse
    order). Metadata rows keep the first window of each sequence.
    """
    if origin not in WINDOW_ORIGINS:
        raise ConfigError(invalid_choice("window_origin", origin, WINDOW_ORIGINS))
    if seq_len < 1:
        raise ConfigError(f"The 'seq_len' parameter must be >= 1. Got {seq_len} instead.")
    step = step or seq_len
    if seq_len == 1:
        return FeatureSet(features.x[:, None], features.meta, ("window", *features.axes), features.y,
                          features.class_names, dict(features.info), {k: v[:, None] for k, v in features.extra.items()})
    meta = features.meta
    keys = np.stack([features.column(c) for c in ("subject", "session", "trial")], axis=1)
    window = features.column("window")
    # A sequence may start at row i when rows i..i+seq_len-1 are the same trial, consecutive windows.
    n = len(window)
    if n < seq_len:
        raise ConfigError(f"only {n} windows, fewer than seq_len={seq_len}")
    same = np.all(keys[seq_len - 1:] == keys[: n - seq_len + 1], axis=1)
    consecutive = (window[seq_len - 1:] - window[: n - seq_len + 1]) == seq_len - 1
    if origin == "start":
        aligned = window[: n - seq_len + 1] % step == 0
    else:  # count from each trial's last window
        _, trial_of = np.unique(keys, axis=0, return_inverse=True)
        trial_of = trial_of.reshape(-1)
        last = np.full(trial_of.max() + 1, -1, dtype=np.int64)
        np.maximum.at(last, trial_of, window)
        end = window[seq_len - 1:]
        aligned = (last[trial_of[seq_len - 1:]] - end) % step == 0
    starts = np.flatnonzero(same & consecutive & aligned)
    if len(starts) == 0:
        raise ConfigError(f"no trial has {seq_len} consecutive windows (seq_len too large)")
    idx = starts[:, None] + np.arange(seq_len)[None, :]
    x = features.x[idx]
    y = None if features.y is None else features.y[starts]
    extra = {k: v[idx] for k, v in features.extra.items()}
    return FeatureSet(x, meta.take(starts), ("window", *features.axes), y, features.class_names, dict(features.info),
                      extra)

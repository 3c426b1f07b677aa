"""Electrode attention as scalp maps (Mood Reader §3.5, Fig. 3).

A fold of a model with electrode attention hands back, for its test part,
the class-mean attention each electrode receives at four moments of training
and for the model it kept (``FoldResult.attention``), and the electrode
relevance of the model kept (gradient × input, see
``moodops.pipelines.evaluate.class_relevance``). This module saves those
arrays and draws them as topomaps with ``mne.viz.plot_topomap`` on the
dataset's montage: the standard 10-05 positions by channel name (DEAP's 32
Geneva-order channels all have one). SEED's 62-channel ESI NeuroScan cap has
two channels without a 10-05 name, CB1 and CB2 (over the cerebellum, below
and lateral to O1/O2); they are drawn at the 10-05 positions I1 and I2, the
nearest named sites.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from moodops.components.errors import ConfigError
from moodops.components.types import FoldResult

#: Channels without a 10-05 name → the named site they are drawn at.
STAND_INS = {"CB1": "I1", "CB2": "I2"}


def scalp_info(ch_names: Sequence[str]):
    """An ``mne.Info`` for ``ch_names`` (any case) with 10-05 positions; a ConfigError names a channel
    without one."""
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the montage's name changes in later MNE releases
        try:
            montage = mne.channels.make_standard_montage("colin27_1005")
        except ValueError:
            montage = mne.channels.make_standard_montage("standard_1005")
    positions = {k.upper(): v for k, v in montage.get_positions()["ch_pos"].items()}
    ch_pos = {}
    for name in ch_names:
        key = STAND_INS.get(name.upper(), name.upper())
        if key not in positions:
            raise ConfigError(f"channel {name!r} has no 10-05 scalp position to draw it at")
        ch_pos[name] = positions[key]
    info = mne.create_info(list(ch_names), 200.0, ch_types="eeg", verbose="error")
    info.set_montage(mne.channels.make_dig_montage(ch_pos=ch_pos, coord_frame="head"), verbose="error")
    return info


def mean_attention(results: Sequence[FoldResult]) -> dict[str, np.ndarray] | None:
    """The folds' attention averaged over folds (NaN-aware: a class a fold's test part lacks is skipped);
    None when no fold has any. ``during`` is averaged only over folds that recorded the same epochs."""
    with_maps = [r.attention for r in results if r.attention]
    if not with_maps:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a class no fold tested stays NaN
        out = {"test": np.nanmean(np.stack([a["test"] for a in with_maps]), axis=0),
               "n_folds": np.array(len(with_maps))}
        epochs = [tuple(a["epochs"].tolist()) for a in with_maps]
        common = max(set(epochs), key=epochs.count)
        same = [a for a, e in zip(with_maps, epochs) if e == common]
        out["epochs"] = np.array(common, dtype=np.int64)
        out["during"] = np.nanmean(np.stack([a["during"] for a in same]), axis=0)
        relevance = [a["relevance"] for a in with_maps if "relevance" in a]
        if relevance:
            out["relevance"] = np.nanmean(np.stack(relevance), axis=0)
    return out


def save_attention(attention: dict[str, np.ndarray], ch_names: Sequence[str], class_names: Sequence[str],
                   folder: Path, title: str) -> list[Path]:
    """Write ``electrode_attention.npz`` (the arrays, channel and class names) and ``topomap.png`` into
    ``folder``; return the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = folder / "electrode_attention.npz"
    np.savez(arrays, channels=np.array(list(ch_names)), classes=np.array(list(class_names)), **attention)
    figure = folder / "topomap.png"
    plot_topomaps(attention, ch_names, class_names, figure, title)
    if "relevance" not in attention:
        return [arrays, figure]
    relevance = folder / "relevance_topomap.png"
    plot_topomaps({"test": attention["relevance"]}, ch_names, class_names, relevance,
                  title.replace("electrode attention", "electrode relevance (gradient × input)"),
                  label="relevance (× even share)")
    return [arrays, figure, relevance]


def plot_topomaps(attention: dict[str, np.ndarray], ch_names: Sequence[str], class_names: Sequence[str],
                  path: Path, title: str, label: str = "attention received (× even share)") -> None:
    """One row per moment (the recorded epochs, then the model kept), one column per class; a shared
    colour scale, in units of the uniform share 1/C (1.0 = an electrode gets its even share)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mne

    test = np.asarray(attention["test"], dtype=float)
    n_classes, n_channels = test.shape
    if n_channels != len(ch_names):
        raise ConfigError(f"attention covers {n_channels} channels but {len(ch_names)} channel names were given")
    rows = [(f"epoch {int(e)}", np.asarray(m, dtype=float)) for e, m in zip(attention.get("epochs", []),
                                                                          attention.get("during", []))]
    rows.append(("model kept", test))
    info = scalp_info(ch_names)
    scaled = [(moment, maps * n_channels) for moment, maps in rows]
    finite = np.concatenate([m[np.isfinite(m)] for _, m in scaled])
    vlim = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 2.0)
    # Fixed margins, not layout="constrained": that solver took 60 % of the ~1 s per figure, and a Mood
    # Reader fold draws one.
    width, height = 2.1 * n_classes + 1.4, 2.0 * len(scaled) + 0.95
    fig, axes = plt.subplots(len(scaled), n_classes, figsize=(width, height), squeeze=False)
    fig.subplots_adjust(left=0.6 / width, right=1 - 1.1 / width, bottom=0.1 / height, top=1 - 0.85 / height,
                        wspace=0.08, hspace=0.12)
    image = None
    for i, (moment, maps) in enumerate(scaled):
        for k in range(n_classes):
            ax = axes[i, k]
            if not np.isfinite(maps[k]).all():
                ax.set_axis_off()
                ax.text(0.5, 0.5, "no test\nsamples", ha="center", va="center", fontsize=8, transform=ax.transAxes)
                continue
            image, _ = mne.viz.plot_topomap(maps[k], info, axes=ax, show=False, cmap="viridis", vlim=vlim,
                                            contours=0, sensors=True)
            if i == 0:
                ax.set_title(class_names[k] if k < len(class_names) else f"class {k}", fontsize=9)
            if k == 0:
                ax.text(-0.15, 0.5, moment, rotation=90, ha="center", va="center", fontsize=9,
                        transform=ax.transAxes)
    if image is not None:
        bar = fig.add_axes((1 - 0.85 / width, 0.2, 0.18 / width, 0.6))
        fig.colorbar(image, cax=bar, label=label)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)

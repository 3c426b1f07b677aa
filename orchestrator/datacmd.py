"""Implementations behind `moodops data`, `moodops list` and `moodops ui`."""
from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moodops.components.errors import ConfigError, invalid_choice

SYNTHESIZERS = ("deap", "seed", "seed-iv", "seed-v", "eegmmidb")
#: Subjects in each dataset's real release (the default size of a synthetic one).
REAL_SUBJECTS = {"deap": 32, "seed": 15, "seed-iv": 15, "seed-v": 16, "eegmmidb": 109}


#: Written into a synthetic dataset's folder first (``complete: false``) and again last (``true``), so a
#: generation cut short is told from a whole one (``moodops data check`` says so).
SYNTHETIC_MANIFEST = "moodops-synthetic.json"


def synthesize(name: str, out: Path, subjects: int | None = None, seed: int = 0, effect: float = 1.0,
               progress: Callable[[int, int], None] | None = None, trials: int | None = None,
               seconds: float | None = None, with_face: bool = False, with_raw: bool = False,
               raw_time_scale: float = 1.0, face_layout: str = "complete") -> Path:
    """Write a synthetic dataset in ``name``'s real layout into ``out``; return the dataset root (see
    :func:`_synthesize`), with :data:`SYNTHETIC_MANIFEST` marking it incomplete until the last file."""
    if name not in SYNTHESIZERS:
        raise ConfigError(invalid_choice("dataset", name, SYNTHESIZERS))
    out = Path(out)
    meta = {"dataset": name, "subjects": subjects or REAL_SUBJECTS[name], "seed": seed, "effect": effect,
            "trials": trials, "seconds": seconds, "with_face": with_face, "with_raw": with_raw}
    if with_face:
        meta["face_layout"] = face_layout
    manifest = out / SYNTHETIC_MANIFEST
    out.mkdir(parents=True, exist_ok=True)
    _write_manifest(manifest, {**meta, "complete": False})
    try:
        root = _synthesize(name, out, subjects, seed, effect, progress, trials, seconds, with_face, with_raw,
                           raw_time_scale, face_layout)
    except ConfigError:  # a bad argument: nothing was written
        manifest.unlink(missing_ok=True)
        raise
    _write_manifest(manifest, {**meta, "complete": True})
    return root


def _write_manifest(path: Path, data: dict[str, Any]) -> None:
    import json
    import os

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _synthesize(name: str, out: Path, subjects: int | None = None, seed: int = 0, effect: float = 1.0,
                progress: Callable[[int, int], None] | None = None, trials: int | None = None,
                seconds: float | None = None, with_face: bool = False, with_raw: bool = False,
                raw_time_scale: float = 1.0, face_layout: str = "complete") -> Path:
    """Write a synthetic dataset in ``name``'s real layout into ``out``; return the dataset root.

    ``seconds``: trial length (DEAP: stimulus seconds, default 60; SEED: mean
    trial length, default 240 as the release; SEED-IV/SEED-V: mean trial
    length in 4-s windows ±40 %, default the writer's; eegmmidb: run length,
    default 60, runs 3–14, subjects numbered from 901). ``trials``: DEAP only.
    ``with_raw``: SEED-IV and SEED-V also get their raw EEG (``eeg_raw_data/``,
    ``EEG_raw/*.cnt`` at 200 Hz), with the features computed from it;
    ``raw_time_scale`` shrinks SEED-V's published clip timeline for a smaller
    copy (read it back with the same ``raw_time_scale``).
    """
    if name not in SYNTHESIZERS:
        raise ConfigError(invalid_choice("dataset", name, SYNTHESIZERS))
    if with_face and name != "deap":
        raise ConfigError(f"--with-face is for deap (facial features); '{name}' has eye movements instead")
    if with_raw and name not in ("seed-iv", "seed-v"):
        raise ConfigError(f"--with-raw is for seed-iv and seed-v (their features-first releases); '{name}' "
                          "always has its raw EEG")
    if trials is not None and name != "deap":
        raise ConfigError(f"--trials is for deap; '{name}' has its release's fixed trials per session")
    out = Path(out)
    n = subjects or REAL_SUBJECTS[name]
    if name == "deap":
        from moodops.components.datasets.deap.synthetic_deap import write_synthetic_deap

        write_synthetic_deap(out, n, trials or 40, seconds or 60.0, seed, effect, progress, with_face=with_face,
                            face_layout=face_layout)
        return out
    if name == "seed":
        from moodops.components.datasets.seed.synthetic_seed import write_synthetic_seed

        return write_synthetic_seed(out, n, seconds or 240.0, seed, effect, progress)
    if name == "eegmmidb":
        from moodops.components.datasets.eegmmidb.synthetic_eegmmidb import write_synthetic_eegmmidb

        return write_synthetic_eegmmidb(out, n, seconds=seconds or 60.0, seed=seed, progress=progress, effect=effect)
    windows = {}
    if seconds is not None:
        mean = max(2.0, seconds / 4.0)
        windows = {"windows_per_trial": (max(2, int(round(0.6 * mean))), max(2, int(round(1.4 * mean))))}
    if name == "seed-iv":
        from moodops.components.datasets.seed.synthetic_seed import write_synthetic_seed_iv

        return write_synthetic_seed_iv(out, n, seed=seed, effect=effect, progress=progress, with_raw=with_raw,
                                       **windows)
    from moodops.components.datasets.seed.synthetic_seed_v import write_synthetic_seed_v

    raw = {"raw": True, "raw_time_scale": raw_time_scale, "raw_sfreq": 200} if with_raw else {}
    return write_synthetic_seed_v(out, n, seed=seed, effect=effect, progress=progress, **raw, **windows)


#: What a run does with a missing value: ``pipelines.evaluate.fit_normalisation`` takes the nanmean of
#: the fold's training rows, and NaN becomes 0 after z-scoring, i.e. that mean.
MISSING_HANDLING = "imputed with the training part's mean, per fold"


@dataclass(frozen=True)
class MissingValues:
    """One modality's missing values (NaN) over the checked subjects that have it."""

    modality: str
    subjects: tuple[int, ...]
    values: int
    missing: int
    windows: int
    windows_missing: int


@dataclass(frozen=True)
class CheckReport:
    """``moodops data check``'s result.

    ``rows``: one per subject, the dataset's columns, with its per-modality
    ``missing`` entry replaced by ``<modality>_nan`` (missing values) and
    ``<modality>_nan_win`` (share of windows with one, as text) columns.
    ``missing``: the totals per modality that may hold NaN; ``nan_refused``:
    the modalities whose loader refuses NaN (a file holding one fails the check).
    """

    rows: list[dict[str, Any]]
    missing: tuple[MissingValues, ...] = ()
    nan_refused: tuple[str, ...] = ()

    def summary_lines(self) -> list[str]:
        """The missing values per modality: a heading that says how they are handled, then one line each."""
        if not (self.missing or self.nan_refused):
            return []
        lines = [f"missing values ({MISSING_HANDLING}):"]
        for m in self.missing:
            scope = f" ({len(m.subjects)} of {len(self.rows)} subjects)" if len(m.subjects) < len(self.rows) else ""
            lines.append(f"  {m.modality}{scope}: {m.missing:,} of {m.values:,} values missing "
                         f"({_percent(m.missing, m.values)}) in {m.windows_missing:,} of {m.windows:,} windows "
                         f"({_percent(m.windows_missing, m.windows)})")
        if self.nan_refused:
            lines.append(f"  {', '.join(self.nan_refused)}: none (the loader refuses NaN there; "
                         "a file holding one fails this check)")
        return lines


def _percent(part: int, whole: int) -> str:
    share = part / whole if whole else 0.0
    return "<0.1%" if 0 < share < 0.0005 else f"{share:.1%}"


def _refuse_cut_short(root: Path) -> None:
    """A synthetic dataset whose generation stopped before its last file: one line, not a pass."""
    import json

    from moodops.components.errors import DataError

    path = root / SYNTHETIC_MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # not generated by moodops (or unreadable): the files speak for themselves
    if not manifest.get("complete", True):
        raise DataError(f"{path}: this synthetic {manifest.get('dataset')} was cut short while it was written "
                        f"({manifest.get('subjects')} subjects were asked for); write it again with "
                        f"moodops data synth")


def check(name: str, root: Path, subjects: str | None) -> CheckReport:
    from moodops.components.datasets import DATASETS
    from moodops.components.datasets.missing import NAN_REFUSED
    from moodops.orchestrator.config import parse_int_list

    _refuse_cut_short(Path(root))
    dataset = DATASETS.get(name)(root, subjects=parse_int_list(subjects) if subjects else None)
    if not hasattr(dataset, "check"):
        raise ConfigError(f"dataset '{name}' has no check")
    raw = dataset.check()
    per_row = [row.get("missing", {}) for row in raw]
    refused = tuple(dict.fromkeys(m for entry in per_row for m, c in entry.items() if c == NAN_REFUSED))
    counted = list(dict.fromkeys(m for entry in per_row for m, c in entry.items() if c != NAN_REFUSED))
    rows = []
    for row, entry in zip(raw, per_row):
        out: dict[str, Any] = {}
        for key, value in row.items():
            if key != "missing":
                out[key] = value
                continue
            for m in counted:
                c = entry.get(m)
                out[f"{m}_nan"] = c["missing"] if c else "-"
                out[f"{m}_nan_win"] = _percent(c["windows_missing"], c["windows"]) if c else "-"
        rows.append(out)
    totals = []
    for m in counted:
        have = [(row["subject"], entry[m]) for row, entry in zip(raw, per_row) if m in entry]
        sums = {k: sum(c[k] for _, c in have) for k in ("values", "missing", "windows", "windows_missing")}
        totals.append(MissingValues(m, tuple(s for s, _ in have), **sums))
    return CheckReport(rows, tuple(totals), refused)


def registry_rows(kind: str) -> list[tuple[str, str]]:
    if kind == "datasets":
        from moodops.components.datasets import DATASETS

        return [(n, (DATASETS.get(n).__doc__ or "").strip().splitlines()[0]) for n in DATASETS.names()]
    if kind == "models":
        from moodops.components.models import MODELS

        rows = []
        for n in MODELS.names():
            info = MODELS.get(n)
            lines = [info.description, f"  feature {' or '.join(info.features)}"
                     + "".join(f", {k} {v:g}" if isinstance(v, float) else f", {k} {v}"
                                 for k, v in info.run_defaults.items())]
            if len(info.variants) > 1:
                lines += [f"  --variant {v.name:<13} needs {'+'.join(v.modalities):<15} {v.description}"
                          for v in info.variants]
            else:
                lines += [f"  needs {'+'.join(info.variants[0].modalities)}"]
            rows.append((n, "\n".join(lines)))
        return rows
    if kind == "protocols":
        from moodops.components.protocols import PROTOCOLS

        return [(n, (PROTOCOLS.get(n).__doc__ or "").strip().splitlines()[0]) for n in PROTOCOLS.names()]
    if kind == "features":
        from moodops.components.features import FEATURES

        return [(n, (FEATURES.get(n).__doc__ or "").strip().splitlines()[0]) for n in FEATURES.names()] + [
            ("precomputed", "the EEG features a release ships (SEED, SEED-IV, SEED-V), on the release's windows")]
    raise ConfigError(invalid_choice("kind", kind, ("datasets", "models", "protocols", "features")))


def mlflow_ui_command(tracking_uri: str | None, host: str, port: int) -> list[str]:
    from moodops.orchestrator.tracking import DEFAULT_ARTIFACTS, DEFAULT_DB, default_tracking_uri

    if tracking_uri is None and not Path(DEFAULT_DB).exists():
        raise ConfigError(f"no {DEFAULT_DB} in {Path.cwd()}: run `moodops run …` here first, or pass --tracking-uri")
    mlflow = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
    return [mlflow, "ui", "--backend-store-uri", tracking_uri or default_tracking_uri(),
            "--default-artifact-root", str(Path(DEFAULT_ARTIFACTS).resolve()), "--host", host, "--port", str(port)]


def experiment_urls(tracking_uri: str | None, ui: str) -> list[tuple[str, str]]:
    """(name, runs-table URL in the UI's machine-learning view) of every active experiment but MLflow's
    empty Default one; experiments moodops made are tagged as model development on the way."""
    from mlflow import MlflowClient

    from moodops.orchestrator.tracking import default_tracking_uri, ensure_experiment, runs_table_url

    uri = tracking_uri or default_tracking_uri()
    client = MlflowClient(tracking_uri=uri)
    out = []
    for exp in client.search_experiments():
        if exp.name == "Default" and not client.search_runs([exp.experiment_id], max_results=1):
            continue
        if exp.name.startswith("moodops"):
            ensure_experiment(client, exp.name, None)
        out.append((exp.name, runs_table_url(uri, exp.experiment_id, ui)))
    return out

"""Implementations behind `moodops data`, `moodops list` and `moodops ui`."""
from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moodops.components.errors import ConfigError, invalid_choice

SYNTHESIZERS = ("deap",)


def synthesize(name: str, out: Path, subjects: int, trials: int, seconds: float, seed: int, effect: float,
               progress: Callable[[int, int], None] | None = None) -> Path:
    if name not in SYNTHESIZERS:
        raise ConfigError(invalid_choice("dataset", name, SYNTHESIZERS))
    from moodops.components.datasets.synthetic_deap import write_synthetic_deap

    return write_synthetic_deap(out, subjects, trials, seconds, seed, effect, progress)


def check(name: str, root: Path, subjects: str | None) -> list[dict[str, Any]]:
    from moodops.components.datasets import DATASETS
    from moodops.orchestrator.config import parse_int_list

    dataset = DATASETS.get(name)(root, subjects=parse_int_list(subjects) if subjects else None)
    if not hasattr(dataset, "check"):
        raise ConfigError(f"dataset '{name}' has no check")
    return dataset.check()


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

        return [(n, (FEATURES.get(n).__doc__ or "").strip().splitlines()[0]) for n in FEATURES.names()]
    raise ConfigError(invalid_choice("kind", kind, ("datasets", "models", "protocols", "features")))


def mlflow_ui_command(tracking_uri: str | None, host: str, port: int) -> list[str]:
    from moodops.orchestrator.tracking import DEFAULT_ARTIFACTS, DEFAULT_DB, default_tracking_uri

    if tracking_uri is None and not Path(DEFAULT_DB).exists():
        raise ConfigError(f"no {DEFAULT_DB} in {Path.cwd()}: run `moodops run …` here first, or pass --tracking-uri")
    mlflow = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
    return [mlflow, "ui", "--backend-store-uri", tracking_uri or default_tracking_uri(),
            "--default-artifact-root", str(Path(DEFAULT_ARTIFACTS).resolve()), "--host", host, "--port", str(port)]

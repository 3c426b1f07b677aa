"""Search spaces for `moodops tune`: YAML files, one default per model in ``orchestrator/spaces/``.

A space maps parameter names to distributions, sampled in file order::

    lr:        {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
    epochs:    {type: int, low: 10, high: 40, step: 10}
    dim:       {type: categorical, choices: [16, 32, 64]}
    heads:     {type: categorical, choices: [1, 2, 4, 8], divides: dim}
    fusion_temperature: {type: float, low: 0.5, high: 2.0, log: true, when: {variant: [stib_eye_mlf, full]}}

- Names that are training settings (:data:`RUN_KEYS`: ``lr``, ``epochs``,
  ``batch_size``, ``weight_decay``, ``optimizer``, ``patience``, ``variant``)
  set the run; every other name is a model parameter (``model_params``).
- ``divides: WIDTH`` keeps only the choices that divide every value the
  width can take (the width's own choices when it is searched, else its
  fixed value), so a head count always divides the attention width.
- ``when: {NAME: VALUE or [VALUES]}`` samples the parameter only when an
  earlier parameter (or the run's fixed setting, e.g. ``variant``) has one
  of those values: conditional parameters, e.g. the fusion type's own
  parameters.
- ``variant`` may be searched among variants that take the same inputs.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moodops.components.errors import ConfigError, invalid_choice

SPACES_DIR = Path(__file__).resolve().parent / "spaces"
RUN_KEYS = ("lr", "epochs", "batch_size", "weight_decay", "optimizer", "patience", "variant")
TYPES = ("float", "int", "categorical")


@dataclass
class Param:
    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] = field(default_factory=list)
    when: dict[str, list[Any]] = field(default_factory=dict)
    target: str = "model"


@dataclass
class SearchSpace:
    params: list[Param]
    source: str

    def suggest(self, trial, fixed: dict[str, Any]) -> dict[str, Any]:
        """Sample every active parameter on an Optuna trial; returns {name: value}."""
        values: dict[str, Any] = {}
        for p in self.params:
            if not all(_lookup(values, fixed, k) in allowed for k, allowed in p.when.items()):
                continue
            if p.type == "float":
                values[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log, step=p.step)
            elif p.type == "int":
                values[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log,
                                                   step=int(p.step or 1))
            else:
                values[p.name] = trial.suggest_categorical(p.name, p.choices)
        return values

    def split(self, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(run settings, model parameters) of sampled values."""
        targets = {p.name: p.target for p in self.params}
        run = {k: v for k, v in values.items() if targets[k] == "run"}
        return run, {k: v for k, v in values.items() if targets[k] == "model"}


def _lookup(values: dict[str, Any], fixed: dict[str, Any], key: str) -> Any:
    if key in values:
        return values[key]
    if key in fixed:
        return fixed[key]
    return fixed.get("model_params", {}).get(key)


def default_space_path(model: str) -> Path:
    path = SPACES_DIR / f"{model}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))
        raise ConfigError(f"no default search space for model '{model}' (defaults: {', '.join(known)}); "
                          f"pass --space FILE")
    return path


def load_space(path: str | Path | None, model: str, variant: str, model_params: dict[str, Any]) -> SearchSpace:
    """Read and validate a space (the model's default when ``path`` is None) for ``model``/``variant``."""
    from moodops.components.models import MODELS
    from moodops.orchestrator.config import read_yaml

    path = Path(path) if path else default_space_path(model)
    data = read_yaml(path, "search space")
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: a search space is a non-empty mapping of parameter names to distributions")
    info = MODELS.get(model)
    signature = inspect.signature(info.load().__init__).parameters
    params: list[Param] = []
    for name, spec in data.items():
        where = f"{path}: '{name}'"
        name = str(name)
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected a mapping such as {{type: float, low: 0.0, high: 0.5}}")
        unknown = sorted(set(spec) - {"type", "low", "high", "log", "step", "choices", "when", "divides"})
        if unknown:
            raise ConfigError(f"{where}: unknown field '{unknown[0]}' (type, low, high, log, step, choices, when, "
                              f"divides)")
        kind = spec.get("type")
        if kind not in TYPES:
            raise ConfigError(f"{where}: {invalid_choice('type', kind, TYPES)}")
        target = "run" if name in RUN_KEYS else "model"
        structural = set().union(*(v.params for v in info.variants))
        if name in structural:
            raise ConfigError(f"{where}: set by the model's variant; search 'variant' among "
                              f"{', '.join(v.name for v in info.variants)} instead")
        if target == "model" and name not in signature:
            known = sorted(k for k in signature if k not in ("self", "shapes", "n_classes", *structural))
            raise ConfigError(f"{where}: not a setting of model '{model}' (its parameters: {', '.join(known)}; "
                              f"run settings: {', '.join(RUN_KEYS)})")
        p = Param(name, kind, target=target)
        if kind in ("float", "int"):
            try:
                p.low, p.high = float(spec["low"]), float(spec["high"])
            except (KeyError, TypeError, ValueError):
                raise ConfigError(f"{where}: a {kind} needs numeric 'low' and 'high'") from None
            if not p.low < p.high or not (math.isfinite(p.low) and math.isfinite(p.high)):
                raise ConfigError(f"{where}: low ({spec['low']}) must be below high ({spec['high']})")
            p.log = bool(spec.get("log", False))
            if p.log and p.low <= 0:
                raise ConfigError(f"{where}: a log scale needs low > 0, got {spec['low']}")
            p.step = float(spec["step"]) if spec.get("step") is not None else None
            if p.step is not None and p.log:
                raise ConfigError(f"{where}: 'step' and 'log' cannot be combined")
        else:
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                raise ConfigError(f"{where}: a categorical needs a non-empty 'choices' list")
            p.choices = list(choices)
        if spec.get("divides") is not None:
            p.choices = _dividing(p, str(spec["divides"]), data, signature, model_params, where)
        when = spec.get("when") or {}
        if not isinstance(when, dict):
            raise ConfigError(f"{where}: 'when' must map a parameter to a value or a list of values")
        for key, allowed in when.items():
            if key not in {q.name for q in params} and key not in ("variant", "model") and key not in signature:
                raise ConfigError(f"{where}: 'when' refers to '{key}', which is neither an earlier parameter nor "
                                  f"a run setting")
            p.when[str(key)] = list(allowed) if isinstance(allowed, list) else [allowed]
        params.append(p)
    by_name = {p.name: p for p in params}
    if "variant" in by_name:
        variants = by_name["variant"].choices
        for v in variants:
            info.variant(v)  # unknown variant → one-line error
        inputs = {tuple(info.variant(v).inputs) for v in variants}
        if len(inputs) > 1 or tuple(info.variant(variant).inputs) not in inputs:
            raise ConfigError(f"{path}: 'variant' choices must take the same inputs as each other and as the "
                              f"run's variant {variant} ({', '.join(variants)})")
    return SearchSpace(params, str(path))


def _dividing(p: Param, width: str, data: dict, signature, model_params: dict[str, Any], where: str) -> list[Any]:
    if p.type != "categorical":
        raise ConfigError(f"{where}: 'divides' needs a categorical parameter")
    if width in data:
        widths = data[width].get("choices") if isinstance(data[width], dict) else None
        if not widths:
            raise ConfigError(f"{where}: divides '{width}', which must then be a categorical with choices")
    elif width in model_params:
        widths = [model_params[width]]
    elif width in signature and signature[width].default is not inspect.Parameter.empty:
        widths = [signature[width].default]
    else:
        raise ConfigError(f"{where}: divides '{width}', which is not a parameter of this model")
    kept = [c for c in p.choices if isinstance(c, int) and c > 0 and all(int(w) % c == 0 for w in widths)]
    if not kept:
        raise ConfigError(f"{where}: none of {p.choices} divides every value of '{width}' ({widths})")
    return kept

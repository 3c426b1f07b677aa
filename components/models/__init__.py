"""Model registry.

Input contract: every model takes ``x`` of shape ``(batch, N, C, F)`` — N
consecutive feature windows, C channels, F bands (the DE tensor) — and returns
logits ``(batch, n_classes)``. It is built by ``create_model(name, input_shape
=(N, C, F), n_classes=K, **hyperparameters)``. Entries name their module lazily
so listing models does not import torch.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

from moodops.components.errors import ConfigError
from moodops.components.registry import Registry


@dataclass(frozen=True)
class ModelInfo:
    name: str
    target: str  # "module:Class"
    description: str
    modalities: tuple[str, ...] = ("eeg",)
    input: str = "de_sequence"

    def load(self) -> type:
        module, attr = self.target.split(":")
        return getattr(importlib.import_module(module), attr)


MODELS: Registry[ModelInfo] = Registry("model")


def register_model(info: ModelInfo) -> None:
    MODELS.register(info.name)(info)


register_model(ModelInfo(
    "linear", "moodops.components.models.linear:LinearClassifier",
    "logistic regression on the flattened feature tensor (baseline)",
))
register_model(ModelInfo(
    "stib", "moodops.components.models.mood_reader:SpatialTemporalInterlink",
    "Mood Reader's parallel spatial/temporal attention blocks with interlink on DE features, concatenation head",
))


def model_hyperparameters(name: str) -> dict[str, Any]:
    """The tunable keyword arguments of a model and their defaults."""
    cls = MODELS.get(name).load()
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items() if k not in ("self", "input_shape", "n_classes")}


def create_model(name: str, input_shape: tuple[int, ...], n_classes: int, **hyperparameters: Any):
    """Build a registered model; unknown hyperparameters are a ConfigError."""
    info = MODELS.get(name)
    allowed = model_hyperparameters(name)
    unknown = sorted(set(hyperparameters) - set(allowed))
    if unknown:
        raise ConfigError(
            f"model '{name}' has no hyperparameter(s) {', '.join(unknown)}; it takes: {', '.join(sorted(allowed)) or 'none'}"
        )
    if len(input_shape) != 3:
        raise ConfigError(f"model '{name}' expects input_shape (N, C, F), got {tuple(input_shape)}")
    if n_classes < 2:
        raise ConfigError(f"model '{name}' needs at least 2 classes, got {n_classes}")
    return info.load()(tuple(int(v) for v in input_shape), int(n_classes), **hyperparameters)


__all__ = ["MODELS", "ModelInfo", "create_model", "model_hyperparameters", "register_model"]

"""The hook protocol: how a pipeline reports progress to whoever runs it.

The orchestrator supplies hooks (progress lines, MLflow logging); in a unit
test or a notebook the no-op :class:`Hooks` is enough.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)


class Hooks:
    """Base class: every method is a no-op. Override what you need."""

    def on_train_start(self, fold: str, model: Any) -> None:
        """Once a fold's model is built (pretrained weights loaded), before its first epoch."""

    def on_epoch_end(self, fold: str, epoch: int, metrics: dict[str, float]) -> None:
        """After each training epoch (``epoch`` counts from 1)."""

    def on_fold_end(self, fold: str, result: Any) -> None:
        """After a fold produced its :class:`FoldResult`."""

    def on_error(self, fold: str, error: BaseException) -> None:
        """When a fold raises; the error propagates afterwards."""


class CompositeHooks(Hooks):
    """Calls several hooks in order."""

    def __init__(self, hooks: Iterable[Hooks]) -> None:
        self.hooks = list(hooks)

    def on_train_start(self, fold: str, model: Any) -> None:
        for h in self.hooks:
            h.on_train_start(fold, model)

    def on_epoch_end(self, fold: str, epoch: int, metrics: dict[str, float]) -> None:
        for h in self.hooks:
            h.on_epoch_end(fold, epoch, metrics)

    def on_fold_end(self, fold: str, result: Any) -> None:
        for h in self.hooks:
            h.on_fold_end(fold, result)

    def on_error(self, fold: str, error: BaseException) -> None:
        for h in self.hooks:
            h.on_error(fold, error)


class LoggingHooks(Hooks):
    """Reports epochs at DEBUG and fold ends at INFO through :mod:`logging`."""

    def on_epoch_end(self, fold: str, epoch: int, metrics: dict[str, float]) -> None:
        logger.debug("%s epoch %d: %s", fold, epoch, " ".join(f"{k}={v:.4f}" for k, v in metrics.items()))

    def on_fold_end(self, fold: str, result: Any) -> None:
        logger.info("%s done: %s", fold, result.metrics)

"""One fold: normalise on the training part, train, test."""
from __future__ import annotations

import io
import time
import zlib

import numpy as np

from moodops.components.errors import ConfigError
from moodops.components.metrics import classification_metrics, confusion_matrix
from moodops.components.models import create_model
from moodops.components.types import FeatureSet, Fold, FoldResult
from moodops.pipelines.hooks import Hooks
from moodops.pipelines.train import TrainConfig, _evaluate, fit, resolve_device


def fold_seed(seed: int, fold: Fold) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(fold.name.encode())) % (2**31)


def run_fold(config: TrainConfig, fold: Fold, features: FeatureSet, hooks: Hooks | None = None) -> FoldResult:
    """Train ``config.model`` on ``fold.train`` (early stopping on
    ``fold.validation``) and test it on ``fold.test``.

    Feature normalisation (z-score per feature position) is fit on the
    training part only. Deterministic on CPU for a given seed and fold.
    """
    hooks = hooks or Hooks()
    try:
        return _run_fold(config, fold, features, hooks)
    except BaseException as e:
        hooks.on_error(fold.name, e)
        raise


def _run_fold(config: TrainConfig, fold: Fold, features: FeatureSet, hooks: Hooks) -> FoldResult:
    import torch

    t0 = time.perf_counter()
    if features.y is None:
        raise ConfigError("the feature set has no targets (y); choose a label first")
    if len(fold.train) == 0 or len(fold.test) == 0:
        raise ConfigError(f"{fold.name}: empty train ({len(fold.train)}) or test ({len(fold.test)}) part")
    if config.num_threads:
        torch.set_num_threads(int(config.num_threads))
    seed = fold_seed(config.seed, fold)
    torch.manual_seed(seed)
    device = resolve_device(config.device)
    n_classes = len(features.class_names) or int(features.y.max()) + 1

    x = features.x
    mean = x[fold.train].mean(axis=(0, 1), keepdims=True)[0]
    std = x[fold.train].std(axis=(0, 1), keepdims=True)[0] + 1e-6

    def tensor(rows: np.ndarray):
        xs = torch.from_numpy(((x[rows] - mean) / std).astype(np.float32)).to(device)
        return xs, torch.from_numpy(features.y[rows].astype(np.int64)).to(device)

    x_train, y_train = tensor(fold.train)
    x_val, y_val = tensor(fold.validation)
    x_test, y_test = tensor(fold.test)
    model = create_model(config.model, tuple(x.shape[1:]), n_classes, **config.model_params).to(device)
    generator = torch.Generator().manual_seed(seed)
    history, best_epoch = fit(model, config, fold.name, x_train, y_train, x_val, y_val, hooks, generator)
    t_train = time.perf_counter()

    _, y_pred = _evaluate(model, x_test, y_test, config.batch_size * 4, torch.nn.CrossEntropyLoss())
    y_true = features.y[fold.test]
    metrics = classification_metrics(y_true, y_pred, n_classes)
    metrics.update(best_epoch=float(best_epoch), n_train=float(len(fold.train)),
                   n_validation=float(len(fold.validation)), n_test=float(len(fold.test)))
    buffer = io.BytesIO()
    torch.save({"model": config.model, "model_params": dict(config.model_params), "input_shape": list(x.shape[1:]),
                "n_classes": n_classes, "class_names": list(features.class_names),
                "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "norm_mean": torch.from_numpy(mean), "norm_std": torch.from_numpy(std)}, buffer)
    t_end = time.perf_counter()
    result = FoldResult(
        fold=fold.name,
        test_subjects=fold.test_subjects,
        metrics=metrics,
        confusion=confusion_matrix(y_true, y_pred, n_classes),
        y_true=y_true,
        y_pred=y_pred,
        history=history,
        weights=buffer.getvalue(),
        timing={"train_s": t_train - t0, "test_s": t_end - t_train, "total_s": t_end - t0},
        params={"seed": seed, "device": str(device)},
        device=str(device),
    )
    hooks.on_fold_end(fold.name, result)
    return result

"""One fold: normalise on the training part, train, test."""
from __future__ import annotations

import dataclasses
import io
import logging
import time
import warnings
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from moodops.components.errors import ConfigError
from moodops.components.metrics import classification_metrics, confusion_matrix
from moodops.components.models import MODELS, create_model
from moodops.components.types import FeatureSet, Fold, FoldResult
from moodops.pipelines.hooks import Hooks
from moodops.pipelines.train import TrainConfig, _batch, _evaluate, fit, resolve_device, select_epoch

logger = logging.getLogger(__name__)


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


def normalisation_axes(name: str, ndim: int) -> tuple[int, ...]:
    """Axes a z-score pools over: samples and windows; raw EEG also over time (one scale per channel)."""
    return (0, 1, 3) if name == "raw" and ndim == 4 else (0, 1)


def fit_normalisation(values: np.ndarray, rows: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of ``values[rows]`` (the training part), ignoring NaN (missing eye/face windows)."""
    axes = normalisation_axes(name, values.ndim)
    part = values[rows]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN positions: handled below
        mean = np.nanmean(part, axis=axes, keepdims=True)[0]
        std = np.nanstd(part, axis=axes, keepdims=True)[0]
    mean = np.where(np.isfinite(mean), mean, 0.0).astype(np.float32)
    std = (np.where(np.isfinite(std), std, 1.0) + 1e-6).astype(np.float32)
    return mean, std


def fit_range(values: np.ndarray, rows: np.ndarray, name: str, low: float = 10.0,
              high: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """Shift and scale that map each feature of ``values[rows]`` (the training part) from its [min, max] onto
    [low, high] (MV-SSTMA §3.2: eye features "into the range of 10 to 100"), as the (mean, std) a z-score divides
    by: ``(v − mean) / std = low + (high − low)·(v − min)/(max − min)``. Test values may fall outside."""
    axes = normalisation_axes(name, values.ndim)
    part = values[rows]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanmin(part, axis=axes, keepdims=True)[0]
        hi = np.nanmax(part, axis=axes, keepdims=True)[0]
    lo = np.where(np.isfinite(lo), lo, 0.0)
    span = np.where(np.isfinite(hi - lo) & (hi - lo > 0), hi - lo, 1.0)
    std = (span / (high - low)).astype(np.float32)
    return (lo - low * std).astype(np.float32), std


@dataclasses.dataclass
class Prepared:
    """A fold ready to train: its inputs normalised on its training part (:func:`prepare_fold`)."""
    fold: Fold
    variant: Any
    framework: str
    seed: int
    n_classes: int
    stats: dict[str, tuple[np.ndarray, np.ndarray]]
    fills: dict[str, np.ndarray]
    part: Callable[[np.ndarray], dict[str, np.ndarray]]
    shapes: dict[str, tuple[int, ...]]
    t0: float


def prepare_fold(config: TrainConfig, fold: Fold, features: FeatureSet) -> Prepared:
    """Check the fold and fit its normalisation on the training part only."""
    t0 = time.perf_counter()
    if features.y is None:
        raise ConfigError("the feature set has no targets (y); choose a label first")
    if len(fold.train) == 0 or len(fold.test) == 0:
        raise ConfigError(f"{fold.name}: empty train ({len(fold.train)}) or test ({len(fold.test)}) part")
    info = MODELS.get(config.model)
    variant = info.variant(config.variant)
    if info.framework == "sklearn" and len(fold.validation):
        # No epochs to select: a one-shot fit would only lose the validation trials, so it trains on them.
        fold = dataclasses.replace(fold, train=np.sort(np.concatenate([fold.train, fold.validation])),
                                   validation=fold.validation[:0])
    missing = [k for k in variant.extras if k not in features.extra]
    if missing:
        raise ConfigError(f"model '{config.model}' (variant {variant.name}) needs input(s) {', '.join(missing)}, "
                          f"which the feature set lacks (it has: x{''.join(', ' + k for k in sorted(features.extra))})")
    seed = fold_seed(config.seed, fold)
    n_classes = len(features.class_names) or int(features.y.max()) + 1
    # Normalisation (and imputation of missing windows, NaN → the training mean) is fit on train only.
    inputs = {"x": features.x, **{k: features.extra[k] for k in variant.extras}}
    ranged = {"eye"} if config.eye_scaling == "range" else set()
    stats = {name: (fit_range if name in ranged else fit_normalisation)(values, fold.train, name)
             for name, values in inputs.items()}
    for name in set(info.unscaled_inputs) & set(stats):  # read in its own units (e.g. Pearson values)
        stats[name] = (np.zeros_like(stats[name][0]), np.ones_like(stats[name][1]))
    # a missing value becomes the training mean, in the scaled units (0 after a z-score)
    fills = {name: np.nan_to_num((fit_normalisation(values, fold.train, name)[0] - stats[name][0]) / stats[name][1])
             if name in ranged or name in info.unscaled_inputs else np.zeros_like(stats[name][0])
             for name, values in inputs.items()}

    def part(rows: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for name, values in inputs.items():
            mean, std = stats[name]
            z = (values[rows] - mean) / std
            out[name] = np.where(np.isnan(z), np.broadcast_to(fills[name], z.shape[1:]), z).astype(np.float32)
        return out

    shapes = {name: tuple(v.shape[1:]) for name, v in inputs.items()}
    return Prepared(fold, variant, info.framework, seed, n_classes, stats, fills, part, shapes, t0)


def _run_fold(config: TrainConfig, fold: Fold, features: FeatureSet, hooks: Hooks) -> FoldResult:
    p = prepare_fold(config, fold, features)
    fit_fn = _fit_sklearn if p.framework == "sklearn" else _fit_torch
    attention: dict[str, np.ndarray] = {}
    y_pred, history, best_epoch, state, device = fit_fn(config, p.fold, features, p.part, p.shapes, p.n_classes,
                                                        p.seed, hooks, attention)
    return finish_fold(config, p, features, hooks, y_pred, history, best_epoch, state, device, attention,
                       time.perf_counter())


def finish_fold(config: TrainConfig, p: Prepared, features: FeatureSet, hooks: Hooks, y_pred: np.ndarray,
                history: list[dict[str, float]], best_epoch: int, state: dict, device: str,
                attention: dict[str, np.ndarray], t_train: float) -> FoldResult:
    """The fold's metrics, its weights (with the normalisation) and its :class:`FoldResult`
    (``hooks.on_fold_end`` called)."""
    fold, n_classes = p.fold, p.n_classes
    y_true = features.y[fold.test]
    metrics = classification_metrics(y_true, y_pred, n_classes)
    metrics.update(best_epoch=float(best_epoch), n_train=float(len(fold.train)),
                   n_validation=float(len(fold.validation)), n_test=float(len(fold.test)))
    buffer = io.BytesIO()
    torch_save({"model": config.model, "variant": p.variant.name, "model_params": dict(config.model_params),
                "input_shape": list(features.x.shape[1:]), "shapes": {k: list(v) for k, v in p.shapes.items()},
                "n_classes": n_classes, "class_names": list(features.class_names), **state,
                "norm": {k: {"mean": m, "std": s, "fill": p.fills[k]} for k, (m, s) in p.stats.items()}}, buffer)
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
        timing={"train_s": t_train - p.t0, "test_s": t_end - t_train, "total_s": t_end - p.t0},
        params={"seed": p.seed, "device": device, "variant": p.variant.name},
        device=device,
        attention=attention,
    )
    hooks.on_fold_end(fold.name, result)
    return result


def torch_save(obj: dict, buffer) -> None:
    """Save tensors and plain values (numpy arrays become tensors) so ``weights_only=True`` loads them."""
    import torch

    def convert(v):
        if isinstance(v, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(v))
        if isinstance(v, dict):
            return {k: convert(i) for k, i in v.items()}
        if isinstance(v, (list, tuple)):
            return [convert(i) for i in v]
        return v

    torch.save(convert(obj), buffer)


def attention_epochs(epochs: int) -> list[int]:
    """The epochs at which a fold records electrode attention during training: the first, a third,
    two thirds and the last (Mood Reader's Fig. 3 shows four moments of training)."""
    return sorted({1, max(1, round(epochs / 3)), max(1, round(2 * epochs / 3)), epochs})


def class_attention(model, x, y: np.ndarray, n_classes: int, batch_size: int) -> np.ndarray:
    """(n_classes, C): the mean electrode attention of the samples of each class (NaN for a class absent)."""
    import torch

    was_training = model.training
    model.eval()
    with torch.no_grad():
        att = torch.cat([model.electrode_attention(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return _class_means(att.cpu().numpy().astype(np.float64), y, n_classes)


def _class_means(values: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, C): the mean row of ``values`` (samples, C) per class of ``y``; NaN for a class absent."""
    out = np.full((n_classes, values.shape[1]), np.nan)
    for k in range(n_classes):
        if (y == k).any():
            out[k] = values[y == k].mean(axis=0)
    return out


def class_relevance(model, inputs: dict, y: np.ndarray, n_classes: int, batch_size: int) -> np.ndarray:
    """(n_classes, C): how much each electrode's DE input moves the true class's logit, per class.

    Gradient × input on the normalised DE input ``x`` (batch, N, C, F) (Shrikumar et al. 2016,
    "Not just a black box"; Simonyan et al. 2014's saliency times the input, which, the input being
    z-scored on the training part, measures the move away from the training mean): ``|Σ_{N,F} x ·
    ∂z_y/∂x|`` per electrode, normalised to sum 1 per sample, averaged over the samples of each class
    (NaN for a class absent).

    Recorded beside the attention weights because they answer a different question. The weights say
    where the spatial block looks; with Mood Reader's readout (each electrode token keeps its own
    projection weights into the fusion, §3.4) an electrode's label information reaches the classifier
    whether or not other electrodes attend to it. Measured on synthetic DE with the label in 2 of 8
    channels (stib_cf, 30 epochs, 15 runs over seeds, all at test accuracy 1.0): this map put the two
    label channels on top in 9 runs (their mean 0.72-2.11 × the others', median 1.62), the attention
    weights in 3 (0.88-1.18 ×, median 0.99); see ``tests/orchestrator/test_attention_maps.py``.
    """
    import torch

    was_training = model.training
    model.eval()
    labels = torch.as_tensor(np.asarray(y), dtype=torch.long, device=inputs["x"].device)
    rows = []
    for start in range(0, len(labels), batch_size):
        x, extras = _batch(inputs, slice(start, start + batch_size))
        x = x.detach().clone().requires_grad_(True)
        logits = model(x, **extras)
        (grad,) = torch.autograd.grad(logits.gather(1, labels[start:start + batch_size, None]).sum(), x)
        per = (grad * x).sum(dim=(1, 3)).abs()  # (batch, C)
        rows.append((per / per.sum(dim=1, keepdim=True).clamp_min(1e-12)).detach())
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return _class_means(torch.cat(rows).cpu().numpy().astype(np.float64), y, n_classes)


def _fit_torch(config, fold, features, part, shapes, n_classes, seed, hooks, attention=None):
    import torch

    if config.num_threads:
        torch.set_num_threads(int(config.num_threads))
    torch.manual_seed(seed)
    device = resolve_device(config.device)

    def tensors(rows: np.ndarray):
        return ({k: torch.from_numpy(v).to(device) for k, v in part(rows).items()},
                torch.from_numpy(features.y[rows].astype(np.int64)).to(device))

    def build():
        return build_model(config, shapes, n_classes, seed, device)

    train, y_train = tensors(fold.train)
    validation, y_val = tensors(fold.validation)
    test, y_test = tensors(fold.test)
    epochs = None
    inner: list[dict[str, float]] = []
    if config.val_strategy == "inner":
        epochs, inner = _inner_epochs(config, fold, features, tensors, build, seed, hooks)
    model = build()
    hooks.on_train_start(fold.name, model)
    generator = torch.Generator().manual_seed(seed)
    on_epoch = None
    maps = attention is not None and config.attention_maps and hasattr(model, "electrode_attention")
    y_test_np = features.y[fold.test]
    if maps:
        # §3.5: the attention of test samples at moments of training (looking, never selecting: eval mode, no grad)
        moments = attention_epochs(epochs or config.epochs)
        during: list[np.ndarray] = []

        def on_epoch(epoch: int) -> None:
            if epoch in moments:
                during.append(class_attention(model, test["x"], y_test_np, n_classes, config.batch_size * 4))
    history, best_epoch = fit(model, config, fold.name, train, y_train, validation, y_val, hooks, generator,
                              epochs=epochs, on_epoch=on_epoch)
    if maps:
        record_attention(attention, model, test, y_test_np, n_classes, config, moments, during, len(history))
    for epoch, row in enumerate(inner):  # the inner curve beside the final training's, epoch by epoch
        if epoch < len(history):
            history[epoch].update(row)
        else:
            history.append(dict(row))
    _, y_pred = _evaluate(model, test, y_test, config.batch_size * 4, torch.nn.CrossEntropyLoss(), config)
    state = {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}
    return y_pred, history, best_epoch, state, str(device)


def build_model(config: TrainConfig, shapes: dict[str, tuple[int, ...]], n_classes: int, seed: int, device):
    """A fold's fresh model on ``device``, seeded with ``seed`` (every model of a fold, inner ones and the
    final one, starts alike), with ``config.pretrained`` loaded."""
    import torch

    torch.manual_seed(seed)
    model = create_model(config.model, shapes, n_classes, variant=config.variant, **config.model_params)
    if config.pretrained is not None:
        from moodops.pipelines.pretrain import load_pretrained

        state = torch.load(io.BytesIO(config.pretrained), map_location="cpu", weights_only=True)
        # a two-modality MV-SSTMA checkpoint also serves a one-modality model (its Table 1): the extractor
        # the model lacks is left out, the other must fit exactly
        absent = {p for p in ("eeg_extractor", "eye_extractor") if getattr(model, p, False) is None}
        state = {k: v for k, v in state.items() if k.split(".", 1)[0] not in absent}
        load_pretrained(model, state, freeze=config.freeze_pretrained)
    return model.to(device)


def record_attention(attention: dict, model, test: dict, y_test: np.ndarray, n_classes: int, config: TrainConfig,
                     moments: list[int], during: list[np.ndarray], n_epochs: int) -> None:
    """Fill ``attention`` with the kept model's maps of the test part (§3.5) beside those of ``during``."""
    attention["epochs"] = np.array([e for e in moments if e <= n_epochs], dtype=np.int64)
    attention["during"] = np.stack(during)
    attention["test"] = class_attention(model, test["x"], y_test, n_classes, config.batch_size * 4)
    attention["relevance"] = class_relevance(model, test, y_test, n_classes, config.batch_size * 4)


def _inner_epochs(config, fold, features, tensors, build, seed, hooks) -> tuple[int, list[dict[str, float]]]:
    """``val_strategy="inner"``: train ``config.epochs`` epochs on each of ``config.inner_folds`` stratified
    folds of the training trials, return the epoch count :func:`select_epoch` picks from their mean
    validation curve, and that curve (``inner_val_loss``, ``inner_val_accuracy`` per epoch)."""
    import torch

    from moodops.components.protocols import stratified_trial_folds

    if len(fold.validation):
        raise ConfigError(f"{fold.name}: val_strategy 'inner' needs folds without a validation part "
                          f"(this one has {len(fold.validation)} rows); build the protocol with "
                          "val_strategy='inner'")
    histories = []
    for i, (rows, held) in enumerate(stratified_trial_folds(features, fold.train, config.inner_folds, seed)):
        train, y_train = tensors(rows)
        validation, y_val = tensors(held)
        generator = torch.Generator().manual_seed(seed + 1 + i)
        history, _ = fit(build(), config, f"{fold.name}/inner-{i + 1}", train, y_train, validation, y_val,
                         Hooks(), generator, early_stopping=False)
        histories.append(history)
    n_epochs = select_epoch(histories, config.first_selectable_epoch)
    curve = [{"inner_val_loss": float(np.mean([h[e]["val_loss"] for h in histories])),
              "inner_val_accuracy": float(np.mean([h[e]["val_accuracy"] for h in histories]))}
             for e in range(min(len(h) for h in histories))]
    logger.info("%s: inner validation over %d folds chose %d epoch(s)", fold.name, len(histories), n_epochs)
    return n_epochs, curve


def _fit_sklearn(config, fold, features, part, shapes, n_classes, seed, hooks, attention=None):
    params = dict(config.model_params)
    params.setdefault("seed", seed)
    model = create_model(config.model, shapes, n_classes, variant=config.variant, **params)
    train = part(fold.train)
    model.fit(train, features.y[fold.train])
    metrics = {"train_accuracy": float((model.predict(train) == features.y[fold.train]).mean())}
    if len(fold.validation):
        metrics["val_accuracy"] = float((model.predict(part(fold.validation)) == features.y[fold.validation]).mean())
    hooks.on_epoch_end(fold.name, 1, metrics)
    y_pred = model.predict(part(fold.test))
    return y_pred, [metrics], 1, {"sklearn_state": model.state()}, "cpu"


def load_fold_model(weights: bytes):
    """Rebuild a fold's trained model from ``FoldResult.weights`` (loaded with ``weights_only=True``).

    Returns (model, checkpoint dict); the model is in eval mode on the CPU.
    """
    import torch

    checkpoint = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    shapes = {k: tuple(v) for k, v in checkpoint["shapes"].items()}
    model = create_model(checkpoint["model"], shapes, checkpoint["n_classes"], variant=checkpoint["variant"],
                         **checkpoint["model_params"])
    if "sklearn_state" in checkpoint:
        state = checkpoint["sklearn_state"]
        attributes = {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in state["attributes"].items()}
        model.from_state({**state, "attributes": attributes})
    else:
        model.load_state_dict(checkpoint["state_dict"])
        model.eval()
    return model, checkpoint

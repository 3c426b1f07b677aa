"""Masked pretraining (MBSM for Mood Reader's encoder, MV-SSTMA's extractors) and loading its weights.

:func:`pretrain` trains one method's masked autoencoder on unlabelled inputs
and returns the part fine-tuning reuses (:class:`PretrainResult`): a state
dict whose keys are named as in the fine-tuned model (``encoder.…`` for
Mood Reader, ``eeg_extractor.…`` / ``eye_extractor.…`` for MV-SSTMA) and an
input *contract* (channels, sampling rate, segment and token length, model
widths) that :func:`check_contract` compares with a dataset before any fold
runs. :func:`load_pretrained` puts the weights into a freshly built model.

The loop runs in one process, or in each worker of a data-parallel group:
pass ``Distributed`` (rank, world size and a function that wraps the model
for gradient synchronisation, e.g. Ray Train's ``prepare_model``). Each rank
then trains on its own share of the segments and epoch losses are averaged
over ranks with ``torch.distributed``.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moodops.components.errors import ConfigError, invalid_choice
from moodops.pipelines.hooks import Hooks

logger = logging.getLogger(__name__)

METHODS = ("mbsm", "mv_sstma")
#: The model each method pretrains for, and its default mask ratio (Mood Reader 0.75; MV-SSTMA 0.3 channels).
METHOD_MODEL = {"mbsm": "mood_reader", "mv_sstma": "mv_sstma"}
DEFAULT_MASK_RATIO = {"mbsm": 0.75, "mv_sstma": 0.3}
#: MBSM autoencoder widths (encoder keys are Mood Reader's ``encoder_*`` parameters).
MBSM_DEFAULTS = {"token_len": 32, "dim": 32, "depth": 2, "heads": 4, "decoder_dim": 32, "decoder_depth": 1,
                 "decoder_heads": 4}


@dataclass(frozen=True)
class PretrainConfig:
    """Settings of one pretraining run.

    ``model_params``: MBSM widths (:data:`MBSM_DEFAULTS`) or ``MultimodalSSTMA``
    keyword arguments for ``mv_sstma``. ``mask_ratio`` None: the method's
    default (:data:`DEFAULT_MASK_RATIO`). ``val_fraction`` of the segments is
    held out to report a validation masked loss (fixed masks, so epochs
    compare).
    """

    method: str = "mbsm"
    mask_ratio: float | None = None
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    seed: int = 0
    val_fraction: float = 0.1
    model_params: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    num_threads: int | None = None
    precision: str = "fp32"  # fp32 | bf16 (autocast; for GPUs with bf16 tensor cores)

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(invalid_choice("precision", self.precision, ("fp32", "bf16")))
        if self.method not in METHODS:
            raise ConfigError(invalid_choice("method", self.method, METHODS))
        if self.mask_ratio is not None and not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError(f"The 'mask_ratio' parameter must be in (0, 1). Got {self.mask_ratio} instead.")
        if self.epochs < 1:
            raise ConfigError(f"The 'epochs' parameter must be an int >= 1. Got {self.epochs} instead.")
        if self.batch_size < 2:
            raise ConfigError(f"The 'batch_size' parameter must be an int >= 2. Got {self.batch_size} instead.")
        if not self.lr > 0:
            raise ConfigError(f"The 'lr' parameter must be a float > 0. Got {self.lr} instead.")
        if not 0.0 <= self.val_fraction < 0.5:
            raise ConfigError(f"The 'val_fraction' parameter must be in [0, 0.5). Got {self.val_fraction} instead.")

    @property
    def ratio(self) -> float:
        return DEFAULT_MASK_RATIO[self.method] if self.mask_ratio is None else self.mask_ratio


@dataclass
class Distributed:
    """This process's place in a data-parallel group."""

    rank: int
    world_size: int
    prepare_model: Callable[[Any], Any]
    device: Any = None


@dataclass
class PretrainResult:
    state_dict: dict[str, Any]
    contract: dict[str, Any]
    history: list[dict[str, float]]
    initial_val_loss: float | None
    example: dict[str, Any] | None
    timing: dict[str, float]


# --------------------------------------------------------------------------- models


def build_pretrain_model(config: PretrainConfig, shapes: dict[str, tuple[int, ...]]):
    """The masked autoencoder for ``config.method`` and input ``shapes`` (without the batch axis)."""
    from moodops.components.models.mbsm import MBSMAutoencoder, SSTMAPretrainer

    if config.method == "mbsm":
        if "raw" not in shapes or len(shapes["raw"]) != 2:
            raise ConfigError(f"mbsm pretraining needs raw segments (channels, samples); got shapes {shapes}")
        unknown = sorted(set(config.model_params) - set(MBSM_DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown mbsm model parameter '{unknown[0]}' (known: {', '.join(MBSM_DEFAULTS)})")
        p = {**MBSM_DEFAULTS, **config.model_params}
        c, s = shapes["raw"]
        return MBSMAutoencoder(c, s, p["token_len"], p["dim"], p["depth"], p["heads"], p["decoder_dim"],
                               p["decoder_depth"], p["decoder_heads"], dropout=0.0, mask_ratio=config.ratio)
    from moodops.components.models.mv_sstma import MultimodalSSTMA

    mode = "attention" if "eye" in shapes else "eeg"
    model = MultimodalSSTMA(shapes, n_classes=2, mode=mode, mask_ratio=config.ratio, **config.model_params)
    return SSTMAPretrainer(model, config.ratio)


def _pretrained_part(config: PretrainConfig, model) -> dict[str, Any]:
    """The weights fine-tuning loads, named as in the fine-tuned model."""
    if config.method == "mbsm":
        return {f"encoder.{k}": v.detach().cpu().clone() for k, v in model.encoder.state_dict().items()}
    return {k: v.detach().cpu().clone() for k, v in model.model.state_dict().items()
            if k.startswith(("eeg_extractor.", "eye_extractor."))}


def _contract(config: PretrainConfig, shapes: dict[str, tuple[int, ...]], data_info: dict[str, Any]) -> dict[str, Any]:
    if config.method == "mbsm":
        p = {**MBSM_DEFAULTS, **config.model_params}
        c, s = shapes["raw"]
        return {"method": "mbsm", "model": "mood_reader", "n_channels": int(c), "n_samples": int(s),
                "token_len": int(p["token_len"]), "mask_ratio": config.ratio,
                "model_params": {"token_len": p["token_len"], "encoder_dim": p["dim"], "encoder_depth": p["depth"],
                                 "encoder_heads": p["heads"]}, **data_info}
    return {"method": "mv_sstma", "model": "mv_sstma", "shapes": {k: [int(i) for i in v] for k, v in shapes.items()},
            "mask_ratio": config.ratio, "model_params": dict(config.model_params), **data_info}


# --------------------------------------------------------------------------- training


def pretrain(data: dict[str, np.ndarray], config: PretrainConfig, hooks: Hooks | None = None,
             data_info: dict[str, Any] | None = None, distributed: Distributed | None = None) -> PretrainResult:
    """Masked pretraining on ``data`` (mbsm: ``raw (N, C, S)``; mv_sstma: ``x (N, T, C, F)`` and optionally
    ``eye (N, T, E)``), float32. ``data_info`` (channel names, sampling rate, corpus …) goes into the contract.

    Reports each epoch through ``hooks.on_epoch_end("pretrain", epoch, metrics)`` with ``train_loss``,
    ``val_loss`` (when a validation share exists) and ``segments_per_s``.
    """
    import torch

    hooks = hooks or Hooks()
    names = ("raw",) if config.method == "mbsm" else tuple(k for k in ("x", "eye") if k in data)
    for k in names:
        if k not in data:
            raise ConfigError(f"{config.method} pretraining needs input '{k}'")
    n = len(data[names[0]])
    if any(len(data[k]) != n for k in names):
        raise ConfigError(f"pretraining inputs differ in length: {({k: len(data[k]) for k in names})}")
    shapes = {k: tuple(data[k].shape[1:]) for k in names}
    n_val = int(round(config.val_fraction * n)) if n >= 10 else 0
    world = distributed.world_size if distributed else 1
    if n - n_val < 2 * world:
        raise ConfigError(f"only {n} segments: too few to pretrain on {world} worker(s)")
    if config.num_threads:
        torch.set_num_threads(int(config.num_threads))
    torch.manual_seed(config.seed)
    from moodops.pipelines.train import make_optimizer, resolve_device

    device = distributed.device if distributed and distributed.device is not None else resolve_device(config.device)
    order = np.random.default_rng(config.seed).permutation(n)
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    if distributed:
        train_idx = train_idx[distributed.rank::distributed.world_size]
    tensors = {k: torch.from_numpy(np.ascontiguousarray(data[k], dtype=np.float32)) for k in names}

    model = build_pretrain_model(config, shapes).to(device)
    core = model
    if distributed:
        model = distributed.prepare_model(model)
    optimizer = make_optimizer(torch.optim.AdamW, [p for p in model.parameters() if p.requires_grad], config.lr,
                               config.weight_decay)
    steps = config.epochs * math.ceil(len(train_idx) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=max(steps, 1),
                                                    pct_start=0.1)

    def batch(idx: np.ndarray) -> dict[str, Any]:
        return {k: tensors[k][idx].to(device) for k in names}

    def validation_loss() -> float | None:
        if not n_val:
            return None
        core.eval()
        gen = torch.Generator().manual_seed(config.seed + 1)
        total = 0.0
        with torch.no_grad():
            for start in range(0, n_val, config.batch_size):
                idx = val_idx[start:start + config.batch_size]
                total += float(core(**batch(idx), generator=gen)) * len(idx)
        return total / n_val

    initial = validation_loss()
    generator = torch.Generator().manual_seed(config.seed + 1000 * (distributed.rank if distributed else 0))
    history: list[dict[str, float]] = []
    t_start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        total, count = 0.0, 0
        for start in range(0, len(perm), config.batch_size):
            idx = perm[start:start + config.batch_size]
            if len(idx) < 2:
                continue
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
                loss = model(**batch(idx), generator=generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        seconds = time.perf_counter() - t0
        sums = torch.tensor([total, float(count), seconds], dtype=torch.float64)
        if distributed and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(sums)
            sums[2] /= distributed.world_size
        total, count, seconds = float(sums[0]), float(sums[1]), float(sums[2])
        if not math.isfinite(total):
            raise FloatingPointError(f"pretraining loss became non-finite in epoch {epoch} (lr={config.lr})")
        metrics = {"train_loss": total / max(count, 1), "segments_per_s": count / max(seconds, 1e-9)}
        val = validation_loss()
        if val is not None:
            metrics["val_loss"] = val
        history.append(metrics)
        hooks.on_epoch_end("pretrain", epoch, metrics)
    wall = time.perf_counter() - t_start
    core.eval()
    example = _example(config, core, tensors, val_idx if n_val else train_idx, device) if config.method == "mbsm" else None
    return PretrainResult(
        state_dict=_pretrained_part(config, core),
        contract=_contract(config, shapes, dict(data_info or {})),
        history=history,
        initial_val_loss=initial,
        example=example,
        timing={"train_s": wall, "segments_per_s": sum(h["segments_per_s"] for h in history) / len(history)},
    )


def _example(config: PretrainConfig, model, tensors, rows: np.ndarray, device) -> dict[str, np.ndarray]:
    """One segment, its reconstruction (visible tokens kept, hidden ones predicted) and the token mask."""
    import torch

    raw = tensors["raw"][rows[:1]].to(device)
    with torch.no_grad():
        predicted, target, mask = model.reconstruct(raw, generator=torch.Generator().manual_seed(config.seed + 7))
        merged = torch.where(mask[..., None], predicted, target)
    return {"original": model.untokenize(target)[0].cpu().numpy(),
            "reconstruction": model.untokenize(merged)[0].cpu().numpy(),
            "mask": mask[0].cpu().numpy(), "token_len": int(model.encoder.token_len)}


# --------------------------------------------------------------------------- fine-tuning side


def check_contract(contract: dict[str, Any], model: str, shapes: dict[str, tuple[int, ...]], source: str,
                   sfreq: float | None = None) -> None:
    """A one-line ConfigError when a pretrained part cannot feed ``model`` with inputs of ``shapes``
    (per sample, as the fold sees them) recorded at ``sfreq``. An MV-SSTMA checkpoint's input that the
    variant does not use is not an error (see :func:`unused_inputs`)."""
    if contract.get("model") != model:
        raise ConfigError(f"{source}: pretrained for model '{contract.get('model')}', not '{model}'")
    if contract["method"] == "mbsm":
        if "raw" not in shapes:
            raise ConfigError(f"{source}: an MBSM encoder needs a Mood Reader variant with the encoder "
                              f"(raw EEG input), e.g. --variant stib_enc_mlf (or full with eye movements)")
        n, c, s = shapes["raw"]
        if c != contract["n_channels"]:
            raise ConfigError(f"{source}: encoder pretrained on {contract['n_channels']} channels, the dataset gives "
                              f"{c} (set encoder_channels=by-name to map channels by name)")
        if sfreq is not None and contract.get("sfreq") and abs(float(contract["sfreq"]) - sfreq) > 1e-6:
            raise ConfigError(f"{source}: encoder pretrained at {contract['sfreq']:g} Hz, the dataset's raw EEG is "
                              f"{sfreq:g} Hz (set encoder_resample=true to resample it)")
        tokens, want = (n * s) // contract["token_len"], contract["n_samples"] // contract["token_len"]
        if tokens != want:
            raise ConfigError(f"{source}: encoder pretrained on {contract['n_samples']} samples per segment "
                              f"({want} tokens); this run gives it {n} windows × {s} samples = {n * s} "
                              f"(set seq_len/window_s so that they match)")
        return
    # MV-SSTMA: a two-modality checkpoint also serves a one-modality model (the paper's Table 1 fine-tunes
    # the EEG and the eye extractor of one pretraining alone); the extractor the model lacks is left out
    # (pipelines.evaluate drops its weights), the others must fit exactly.
    used = [k for k in contract["shapes"] if k in shapes]
    if not used:
        raise ConfigError(f"{source}: pretrained with input(s) {', '.join(map(repr, contract['shapes']))}, "
                          f"none of which this variant uses")
    for k in used:
        want_shape, got = contract["shapes"][k], shapes[k]
        if tuple(got[1:]) != tuple(want_shape[1:]):
            raise ConfigError(f"{source}: pretrained on '{k}' of shape {tuple(want_shape)} per sample, this run "
                              f"gives {tuple(got)}")


def unused_inputs(contract: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """The inputs a (two-modality MV-SSTMA) checkpoint was pretrained on that a run with ``shapes`` leaves out."""
    return [k for k in contract.get("shapes", {}) if k not in shapes] if contract.get("method") != "mbsm" else []


def load_pretrained(model, state_dict: dict[str, Any], freeze: bool = False, source: str = "pretrained") -> list[str]:
    """Copy ``state_dict`` into ``model`` (every key must exist with the same shape); return the loaded keys.

    ``freeze``: the loaded parameters stop receiving gradients.
    """
    own = model.state_dict()
    for k, v in state_dict.items():
        if k not in own:
            raise ConfigError(f"{source}: weight '{k}' has no place in this model")
        if tuple(own[k].shape) != tuple(v.shape):
            raise ConfigError(f"{source}: weight '{k}' has shape {tuple(v.shape)}, the model's is "
                              f"{tuple(own[k].shape)}")
    model.load_state_dict(state_dict, strict=False)
    if freeze:
        for name, p in model.named_parameters():
            if name in state_dict:
                p.requires_grad_(False)
    return sorted(state_dict)


__all__ = ["DEFAULT_MASK_RATIO", "Distributed", "METHODS", "METHOD_MODEL", "PretrainConfig", "PretrainResult",
           "build_pretrain_model", "check_contract", "load_pretrained", "pretrain", "unused_inputs"]

"""Multimodal MV-SSTMA (Gao et al. 2024): spectral-spatial-temporal masked autoencoders.

Inputs per sample: ``x`` ``(N, C, F)`` — T = N consecutive DE windows, C EEG
channels, F bands — and ``eye`` ``(N, E)`` — E eye-movement features of the
same windows. Inside, a modality is a grid of tokens ``(batch, C, T, D)``.

Extractor (one per modality, own weights):

1. spectral embedding ``Linear(F → D)`` per channel and window; masked channels
   (a random ``round(ratio·C)`` per sample, all their windows) are replaced by
   a learnable mask token; a sine-cosine encoding over channels is added;
2. ``depth`` hybrid blocks ``(batch, C, T, D) → same``: three causal temporal
   convolutions (long/medium/short kernels, per channel, left padding only),
   each followed by BatchNorm and multi-head self-attention across channels
   (per window); the branches are summed with a residual, then LayerNorm and
   a feed-forward network with residual and LayerNorm;
3. a representation: mean over channels and windows, ``Linear(D → hidden)``;
4. for masked pretraining, a decoder of ``decoder_depth`` hybrid blocks and
   ``Linear(D → F)`` reconstructs every token (see :meth:`reconstruct`).

Eye modality: the paper gives no token layout for eye features, so each of the
E features is treated as a "channel" with one spectral value (``F = 1``) over
the same T windows and runs through an extractor of the same architecture.

Modes (``mode``): ``eeg`` / ``eye`` use one extractor; ``concat`` concatenates
both representations; ``attention`` fuses the stacked ``(batch, 2, hidden)``
with :class:`~moodops.components.models.fusion.AttentionFusion`. A small MLP
maps the result to logits ``(batch, n_classes)``. In the two-modality modes
and in training mode, ``dcca_weight · dcca_loss(h_eeg, h_eye)`` is kept for
:meth:`MultimodalSSTMA.auxiliary_loss`.

Causality: the time axis is only mixed by the causal convolutions, so an
output at window t never depends on later windows — in eval mode; in training
mode BatchNorm normalises with statistics over all windows of the batch.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from moodops.components.errors import ConfigError, invalid_choice
from moodops.components.models.blocks import CausalConv1d, check_heads, sinusoidal_positions
from moodops.components.models.fusion import AttentionFusion
from moodops.components.models.losses import dcca_loss

MODES = ("attention", "concat", "eeg", "eye")


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"The '{name}' parameter must be {kind}. Got {value} instead.")
    return value


def _ratio(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"The '{name}' parameter must be a float in [0, 1). Got {value} instead.")
    return float(value)


def _shape(name: str, shape: object, axes: int) -> tuple[int, ...]:
    if (not isinstance(shape, Sequence) or len(shape) != axes
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape)):
        raise ConfigError(f"MultimodalSSTMA: input '{name}' must have {axes} positive axes per sample. "
                          f"Got {shape} instead.")
    return tuple(shape)


def random_channel_mask(batch: int, n_channels: int, ratio: float, generator: torch.Generator | None = None,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """A bool Tensor (batch, n_channels), True = masked, with round(ratio·C) True per row.

    The count is capped at C − 1 so that at least one channel stays visible.
    """
    ratio = _ratio("mask_ratio", ratio)
    count = min(int(round(ratio * n_channels)), n_channels - 1)
    noise_device = generator.device if generator is not None else device
    noise = torch.rand(batch, n_channels, generator=generator, device=noise_device)
    chosen = noise.argsort(dim=1)[:, :count]  # a uniform random subset per sample
    mask = torch.zeros(batch, n_channels, dtype=torch.bool, device=noise.device)
    mask.scatter_(1, chosen, True)
    return mask if device is None else mask.to(device)


class HybridBlock(nn.Module):
    """Multi-scale causal temporal convolutions, each with spatial attention; then FFN.

    x : (batch, C, T, D) → (batch, C, T, D)
    """

    def __init__(self, dim: int, heads: int, kernel_sizes: Sequence[int], dropout: float = 0.1) -> None:
        super().__init__()
        check_heads(dim, heads)
        self.convs = nn.ModuleList(CausalConv1d(dim, dim, k) for k in kernel_sizes)
        self.batch_norms = nn.ModuleList(nn.BatchNorm1d(dim) for _ in kernel_sizes)
        self.attentions = nn.ModuleList(nn.MultiheadAttention(dim, heads, batch_first=True)
                                        for _ in kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, d = x.shape
        series = x.reshape(b * c, t, d).transpose(1, 2)  # (b·C, D, T): convolve each channel over time
        total = x
        for conv, batch_norm, attention in zip(self.convs, self.batch_norms, self.attentions):
            h = batch_norm(conv(series))
            h = h.reshape(b, c, d, t).permute(0, 3, 1, 2).reshape(b * t, c, d)  # (b·T, C, D): one window's channels
            h, _ = attention(h, h, h, need_weights=False)
            total = total + self.dropout(h.reshape(b, t, c, d).transpose(1, 2))
        h = self.norm(total)
        return self.norm_out(h + self.dropout(self.ffn(h)))


class SSTMAExtractor(nn.Module):
    """One modality's spectral-spatial-temporal masked autoencoder.

    x : (batch, T, C, F), mask : bool (batch, C) or None → (batch, hidden);
    :meth:`encode` gives the tokens (batch, C, T, D) before pooling.
    """

    def __init__(self, n_channels: int, n_features: int, dim: int, depth: int, heads: int,
                 kernel_sizes: Sequence[int], decoder_depth: int, hidden: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.n_channels = n_channels
        self.n_features = n_features
        self.embed = nn.Linear(n_features, dim)
        self.mask_token = nn.Parameter(torch.randn(dim) * 0.02)
        # fixed, so not saved: rebuilt identically from the shapes
        self.register_buffer("positions", sinusoidal_positions(n_channels, dim), persistent=False)
        self.blocks = nn.ModuleList(HybridBlock(dim, heads, kernel_sizes, dropout) for _ in range(depth))
        self.project = nn.Linear(dim, hidden)
        self.decoder_blocks = nn.ModuleList(HybridBlock(dim, heads, kernel_sizes, dropout)
                                            for _ in range(decoder_depth))
        self.decoder_head = nn.Linear(dim, n_features)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[2:] != (self.n_channels, self.n_features):
            raise ConfigError(f"expected input (batch, T, {self.n_channels}, {self.n_features}), "
                              f"got shape {tuple(x.shape)}")
        h = self.embed(x).transpose(1, 2)  # (batch, C, T, D)
        if mask is not None:
            # the mask token replaces the embedding, so nothing of a masked channel's values gets in
            h = torch.where(mask[:, :, None, None], self.mask_token.to(h.dtype), h)
        h = h + self.positions[:, None, :].to(h.dtype)
        for block in self.blocks:
            h = block(h)
        return h

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.project(tokens.mean(dim=(1, 2)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.pool(self.encode(x, mask))

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (batch, C, T, D) → reconstruction (batch, T, C, F)."""
        for block in self.decoder_blocks:
            tokens = block(tokens)
        return self.decoder_head(tokens).transpose(1, 2)


def masked_mse(reconstruction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the masked channels only.

    reconstruction, target : (batch, T, C, ...) ; mask : bool (batch, C).
    Zero (with a graph) when nothing is masked.
    """
    weight = mask[:, None, :].to(reconstruction.dtype)
    weight = weight.reshape(*weight.shape, *([1] * (reconstruction.dim() - 3))).expand_as(reconstruction)
    squared = (reconstruction - target.to(reconstruction.dtype)) ** 2
    return (squared * weight).sum() / weight.sum().clamp_min(1)


class MultimodalSSTMA(nn.Module):
    """EEG and/or eye-movement SSTMA extractors, fusion and a classifier.

    x : (batch, N, C, F), eye : (batch, N, E) → logits (batch, n_classes)
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], n_classes: int, mode: str = "attention", dim: int = 16,
                 depth: int = 6, heads: int = 4, kernel_sizes: tuple[int, int, int] = (7, 5, 3),
                 mask_ratio: float = 0.3, train_mask_ratio: float = 0.0, decoder_depth: int = 2, hidden: int = 64,
                 dropout: float = 0.1, dcca_weight: float = 0.1, fusion_temperature: float = 1.0) -> None:
        super().__init__()
        if mode not in MODES:
            raise ConfigError(invalid_choice("mode", mode, MODES))
        dim = _positive_int("dim", dim)
        depth = _positive_int("depth", depth)
        heads = _positive_int("heads", heads)
        check_heads(dim, heads)
        decoder_depth = _positive_int("decoder_depth", decoder_depth, minimum=0)
        hidden = _positive_int("hidden", hidden)
        n_classes = _positive_int("n_classes", n_classes)
        if (not isinstance(kernel_sizes, Sequence) or len(kernel_sizes) == 0
                or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in kernel_sizes)):
            raise ConfigError(f"The 'kernel_sizes' parameter must be a non-empty tuple of positive integers. "
                              f"Got {kernel_sizes} instead.")
        self.mask_ratio = _ratio("mask_ratio", mask_ratio)
        self.train_mask_ratio = _ratio("train_mask_ratio", train_mask_ratio)
        dropout = _ratio("dropout", dropout)
        if (isinstance(dcca_weight, bool) or not isinstance(dcca_weight, (int, float))
                or not math.isfinite(dcca_weight) or dcca_weight < 0):
            raise ConfigError(f"The 'dcca_weight' parameter must be a non-negative float. Got {dcca_weight} instead.")
        self.dcca_weight = float(dcca_weight)
        self.mode = mode

        common = dict(dim=dim, depth=depth, heads=heads, kernel_sizes=tuple(kernel_sizes),
                      decoder_depth=decoder_depth, hidden=hidden, dropout=dropout)
        self.eeg_extractor: SSTMAExtractor | None = None
        self.eye_extractor: SSTMAExtractor | None = None
        if mode != "eye":
            if "x" not in shapes:
                raise ConfigError(f"MultimodalSSTMA(mode='{mode}') needs the shape of input 'x'")
            _, c, f = _shape("x", shapes["x"], 3)
            self.eeg_extractor = SSTMAExtractor(c, f, **common)
        if mode != "eeg":
            if "eye" not in shapes:
                raise ConfigError(f"MultimodalSSTMA(mode='{mode}') needs the shape of input 'eye'")
            _, e = _shape("eye", shapes["eye"], 2)
            self.eye_extractor = SSTMAExtractor(e, 1, **common)  # E "channels" with one value each
        self.fusion = AttentionFusion(hidden, fusion_temperature) if mode == "attention" else None
        width = 2 * hidden if mode == "concat" else hidden
        self.classifier = nn.Sequential(nn.LayerNorm(width), nn.Dropout(dropout), nn.Linear(width, hidden), nn.GELU(),
                                        nn.Dropout(dropout), nn.Linear(hidden, n_classes))
        self._auxiliary: torch.Tensor | None = None

    @property
    def two_modalities(self) -> bool:
        return self.mode in ("attention", "concat")

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def random_channel_mask(self, batch: int, n_channels: int, ratio: float,
                            generator: torch.Generator | None = None) -> torch.Tensor:
        """A bool Tensor (batch, n_channels), True = masked, with round(ratio·C) True per row (at most C − 1)."""
        return random_channel_mask(batch, n_channels, ratio, generator, device=self._device())

    def _train_mask(self, batch: int, n_channels: int) -> torch.Tensor | None:
        if self.training and self.train_mask_ratio > 0:
            return self.random_channel_mask(batch, n_channels, self.train_mask_ratio)
        return None

    def _extractor(self, modality: str) -> SSTMAExtractor:
        extractor = {"eeg": self.eeg_extractor, "eye": self.eye_extractor}.get(modality)
        if modality not in ("eeg", "eye"):
            raise ConfigError(invalid_choice("modality", modality, ("eeg", "eye")))
        if extractor is None:
            raise ConfigError(f"MultimodalSSTMA(mode='{self.mode}') has no {modality} extractor")
        return extractor

    @staticmethod
    def _as_grid(x: torch.Tensor, modality: str) -> torch.Tensor:
        """The input as (batch, T, C, F): eye (batch, N, E) becomes E channels of one value."""
        return x.unsqueeze(-1) if modality == "eye" else x

    def forward(self, x: torch.Tensor | None, eye: torch.Tensor | None = None) -> torch.Tensor:
        self._auxiliary = None
        h_eeg = h_eye = None
        if self.eeg_extractor is not None:
            if x is None:
                raise ConfigError(f"MultimodalSSTMA(mode='{self.mode}') needs the 'x' input")
            h_eeg = self.eeg_extractor(x, self._train_mask(x.shape[0], x.shape[2]))
        if self.eye_extractor is not None:
            if eye is None:
                raise ConfigError(f"MultimodalSSTMA(mode='{self.mode}') needs the 'eye' input")
            h_eye = self.eye_extractor(self._as_grid(eye, "eye"), self._train_mask(eye.shape[0], eye.shape[2]))
        if self.mode == "eeg":
            fused = h_eeg
        elif self.mode == "eye":
            fused = h_eye
        elif self.mode == "concat":
            fused = torch.cat([h_eeg, h_eye], dim=-1)
        else:
            fused, _ = self.fusion(torch.stack([h_eeg, h_eye], dim=1))
        if self.two_modalities and self.training and self.dcca_weight > 0:
            self._auxiliary = self.dcca_weight * dcca_loss(h_eeg, h_eye)
        return self.classifier(fused)

    def auxiliary_loss(self) -> torch.Tensor | None:
        """The weighted DCCA term of the last forward pass in training mode, else None."""
        return self._auxiliary

    def reconstruct(self, x: torch.Tensor, mask_ratio: float | None = None, generator: torch.Generator | None = None,
                    modality: str = "eeg") -> tuple[torch.Tensor, torch.Tensor]:
        """Mask random channels, encode, decode.

        x : (batch, N, C, F) for ``modality="eeg"`` (or (batch, N, E) for "eye")
        → (reconstruction of the same shape, mask bool (batch, C) with True = masked).
        ``mask_ratio`` defaults to the model's ``mask_ratio``.
        """
        extractor = self._extractor(modality)
        grid = self._as_grid(x, modality)
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        mask = self.random_channel_mask(grid.shape[0], grid.shape[2], ratio, generator)
        reconstruction = extractor.decode(extractor.encode(grid, mask))
        return (reconstruction.squeeze(-1) if modality == "eye" else reconstruction), mask

    def masked_reconstruction_loss(self, x: torch.Tensor, mask_ratio: float | None = None,
                                   generator: torch.Generator | None = None, modality: str = "eeg") -> torch.Tensor:
        """MSE between :meth:`reconstruct` and ``x`` over the masked channels only."""
        reconstruction, mask = self.reconstruct(x, mask_ratio, generator, modality)
        return masked_mse(reconstruction, x, mask)


__all__ = ["HybridBlock", "MultimodalSSTMA", "SSTMAExtractor", "masked_mse", "random_channel_mask"]

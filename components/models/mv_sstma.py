"""Multimodal MV-SSTMA (Gao et al. 2024): spectral-spatial-temporal masked autoencoders.

Inputs per sample: ``x`` ``(N, C, F)`` — T = N consecutive DE windows, C EEG
channels, F bands — and ``eye`` ``(N, E)`` — E eye-movement features of the
same windows. Inside, a modality is a grid of tokens ``(batch, C, T, D)``.

Extractor (one per modality, own weights; :class:`SSTMAExtractor`, §2.1):

1. spectral embedding ``Linear(F → D)`` per channel and window (eye: one
   embedding row per feature, :class:`FeatureEmbedding`) and a sine-cosine
   encoding over channels; with a mask (a random ``round(ratio·C)`` channels
   per sample, all their windows) only the visible channels go on ("only a
   visible subset x^v ∈ R^{C_v × T × D} ... as input");
2. ``depth`` (L = 6) hybrid blocks ``(batch, C_v, T, D) → same``
   (:class:`HybridBlock`, Eqs 1–4): three causal temporal convolutions
   (long/medium/short kernels, per channel, left padding only), each followed
   by BatchNorm and multi-head self-attention across channels (per window);
   the branches are summed with a residual, then LayerNorm and a feed-forward
   network with residual and LayerNorm;
3. a representation: mean over channels and windows, ``Linear(D → hidden)``;
4. for masked pretraining, a symmetric decoder of ``decoder_depth`` (default
   L) hybrid blocks over every channel slot (the mask token in the masked
   ones) and ``Linear(D → F)`` predicts the masked channels
   (:meth:`reconstruct`; the loss, :func:`masked_mse`, counts them only).

Eye modality: the paper gives no token layout for eye features, so each of the
E features is a "channel" with one value (``F = 1``) over the same T windows
and runs through an extractor of the same architecture (§2.2: "mapped to the
same dimensional space as EEG signals").

Modes (``mode``): ``eeg`` / ``eye`` use one extractor; ``concat`` concatenates
both representations; ``attention`` fuses the stacked ``(batch, 2, hidden)``
with :class:`~moodops.components.models.fusion.AttentionFusion`. A small MLP
maps the result to logits ``(batch, n_classes)``. In the two-modality modes
and in training mode, ``dcca_weight · dcca_loss`` of the two representations,
each first projected to ``dcca_dim`` (2) dimensions, is kept for
:meth:`MultimodalSSTMA.auxiliary_loss`: at a batch of 32 the canonical
correlation of two 64-d views is about half its maximum whether or not they
are related (rank-limited), on 2-d projections 0.21 for independent and 0.99
for correlated views. ``train_mask_ratio`` / ``eval_mask_ratio`` mask the
classification inputs (Table 4 masks fine-tuning and test data alike).

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
from moodops.components.models.blocks import sinusoidal_positions
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
    """One CNN-Transformer hybrid block (§2.1, Eqs 1–4), its three branches run as fused calls.

    x : (batch, C, T, D) → (batch, C, T, D)

    Each branch ``k`` is ``Attention(BN(CausalConvT(x, (k, 1))))`` (Eqs 1–3): a causal convolution
    over the windows of each channel, BatchNorm, then multi-head self-attention across the channels
    of each window. The block's output is ``LN(x + Σ_k branch_k)`` (Eq. 4's spatial brain summary,
    with a residual), then a feed-forward network with residual and LayerNorm ("the normalization
    layer and the feed-forward network" after Eq. 4).

    Heads: the paper's setting is H = 6 heads with D = 16 (§3.2); 6 does not divide 16, so a head's
    width is its own parameter, ``head_dim`` (default ``ceil(D / H)``, 3 for the paper's setting, so the
    six heads together are 18 wide, about D as in a standard block): each head projects D → head_dim,
    and the concatenated heads (H · head_dim) are projected back to D.

    Speed (issue 14): the branches' convolutions are one ``conv1d`` (every branch's kernel padded on
    the left to the longest, the padded taps held at zero by a fixed mask), their BatchNorms one
    ``BatchNorm1d(3D)`` (the same per-channel statistics), their attentions one batched QKV matmul
    and one ``scaled_dot_product_attention`` call, and the sum of Eq. 4 one output matmul over the
    concatenated branches (Σ_k a_k W_k = [a_1 … a_k] [W_1; …; W_k]).
    """

    def __init__(self, dim: int, heads: int, kernel_sizes: Sequence[int], dropout: float = 0.1,
                 head_dim: int | None = None) -> None:
        super().__init__()
        self.dim, self.heads = dim, heads
        self.head_dim = resolve_head_dim(dim, heads, head_dim)
        self.kernel_sizes = tuple(kernel_sizes)
        k, longest, inner = len(self.kernel_sizes), max(self.kernel_sizes), heads * self.head_dim
        self.conv_weight = nn.Parameter(torch.empty(k * dim, dim, longest))
        self.conv_bias = nn.Parameter(torch.empty(k * dim))
        taps = torch.zeros(k * dim, 1, longest)
        for i, size in enumerate(self.kernel_sizes):
            taps[i * dim:(i + 1) * dim, :, longest - size:] = 1.0  # the last `size` taps: t-size+1 … t
            bound = 1 / math.sqrt(dim * size)  # nn.Conv1d's default init for this branch's kernel
            nn.init.uniform_(self.conv_weight[i * dim:(i + 1) * dim], -bound, bound)
            nn.init.uniform_(self.conv_bias[i * dim:(i + 1) * dim], -bound, bound)
        self.register_buffer("taps", taps, persistent=False)
        self.batch_norm = nn.BatchNorm1d(k * dim)
        self.qkv_weight = nn.Parameter(torch.empty(k, dim, 3 * inner))
        nn.init.xavier_uniform_(self.qkv_weight.view(k * dim, 3 * inner))
        self.qkv_bias = nn.Parameter(torch.zeros(k, 1, 3 * inner))
        self.out = nn.Linear(k * inner, dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, d = x.shape
        k, heads, hd = len(self.kernel_sizes), self.heads, self.head_dim
        series = x.reshape(b * c, t, d).transpose(1, 2)  # (b·C, D, T): each channel over time
        series = nn.functional.pad(series, (self.conv_weight.shape[-1] - 1, 0))  # causal: left padding only
        h = self.batch_norm(nn.functional.conv1d(series, self.conv_weight * self.taps, self.conv_bias))
        # (b·C, k·D, T) → (k, b·T·C, D): per branch, the channels of one window are a sequence
        h = h.reshape(b, c, k, d, t).permute(2, 0, 4, 1, 3).reshape(k, b * t * c, d)
        qkv = torch.baddbmm(self.qkv_bias, h, self.qkv_weight)  # (k, b·T·C, 3·H·hd)
        qkv = qkv.reshape(k * b * t, c, 3, heads, hd).permute(2, 0, 3, 1, 4)  # (3, k·b·T, H, C, hd)
        a = nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (k·b·T, H, C, hd)
        a = a.reshape(k, b * t, heads, c, hd).permute(1, 3, 0, 2, 4).reshape(b * t * c, k * heads * hd)
        summary = self.out(a).reshape(b, t, c, d).transpose(1, 2)  # Eq. 4: Σ over the k branches
        h = self.norm(x + self.dropout(summary))
        return self.norm_out(h + self.dropout(self.ffn(h)))


def resolve_head_dim(dim: int, heads: int, head_dim: int | None) -> int:
    """A head's width: ``head_dim`` when given, else ``ceil(dim / heads)`` (``dim // heads`` when ``heads`` divides
    ``dim``), so the heads together are about ``dim`` wide, as in a standard block."""
    heads = _positive_int("heads", heads)
    if head_dim is None:
        return -(-dim // heads)
    return _positive_int("head_dim", head_dim)


class FeatureEmbedding(nn.Module):
    """Per-feature linear embedding of scalar features: (…, E, 1) → (…, E, D), ``x_e · W_e + b_e``.

    For the eye extractor (§2.2 maps eye movements "to the same dimensional space as EEG signals"
    without saying how): each of the E eye features is a token; a shared ``Linear(1 → D)`` would give
    every feature the same embedding direction, scaled by its value, so that only the channel
    positions told a pupil diameter from a saccade rate. One weight and bias row per feature (the
    numerical embedding of FT-Transformer, Gorishniy et al. 2021) keeps them apart.
    """

    def __init__(self, n_features: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_features, dim) * dim ** -0.5)
        self.bias = nn.Parameter(torch.zeros(n_features, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight + self.bias


def _gather_channels(h: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """h (batch, C, a, b), index (batch, k) → (batch, k, a, b): the rows ``index`` of each sample."""
    return torch.gather(h, 1, index[:, :, None, None].expand(-1, -1, *h.shape[2:]))


def visible_index(mask: torch.Tensor) -> torch.Tensor:
    """mask bool (batch, C), True = masked, the same count per row → visible channels (batch, C_v), ascending."""
    counts = mask.sum(dim=1)
    if counts.numel() and not bool((counts == counts[0]).all()):
        raise ConfigError("every sample must mask the same number of channels (random_channel_mask does)")
    n_visible = mask.shape[1] - (int(counts[0]) if counts.numel() else 0)
    return (~mask).nonzero()[:, 1].reshape(mask.shape[0], n_visible)


class SSTMAExtractor(nn.Module):
    """One modality's spectral-spatial-temporal masked autoencoder (§2.1).

    Encoder: ``x (batch, T, C, F)`` → spectral embedding ``Linear(F → D)`` per channel and window
    (per-feature embedding for scalar features, see :class:`FeatureEmbedding`) → sine-cosine position
    over the C channels → with a ``mask`` (bool (batch, C), True = masked) only the visible subset
    ``x^v ∈ R^{C_v × T × D}`` is kept ("only a visible subset … to be utilized as input") → L hybrid
    blocks. The masked channels' values never enter the encoder.

    Decoder (pretraining): the encoded visible tokens are put back in their channel slots, every
    masked slot gets a learnable mask token, positions are added again, and L hybrid blocks (the
    symmetric decoder, ``decoder_depth`` = ``depth`` by default) plus a linear layer predict each
    channel's features; the loss (:func:`masked_mse`) counts the masked channels only.

    :meth:`forward` pools the encoded tokens (mean over the visible channels and the windows) and
    projects them to ``hidden``.
    """

    def __init__(self, n_channels: int, n_features: int, dim: int, depth: int, heads: int,
                 kernel_sizes: Sequence[int], decoder_depth: int, hidden: int, dropout: float = 0.1,
                 head_dim: int | None = None, per_feature_embedding: bool = False) -> None:
        super().__init__()
        self.n_channels = n_channels
        self.n_features = n_features
        if per_feature_embedding and n_features != 1:
            raise ConfigError(f"per-feature embedding embeds scalar features; got {n_features} values per channel")
        self.embed = FeatureEmbedding(n_channels, dim) if per_feature_embedding else nn.Linear(n_features, dim)
        self.mask_token = nn.Parameter(torch.randn(dim) * 0.02)
        # fixed, so not saved: rebuilt identically from the shapes
        self.register_buffer("positions", sinusoidal_positions(n_channels, dim), persistent=False)
        self.blocks = nn.ModuleList(HybridBlock(dim, heads, kernel_sizes, dropout, head_dim) for _ in range(depth))
        self.project = nn.Linear(dim, hidden)
        self.decoder_blocks = nn.ModuleList(HybridBlock(dim, heads, kernel_sizes, dropout, head_dim)
                                            for _ in range(decoder_depth))
        self.decoder_head = nn.Linear(dim, n_features)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (batch, T, C, F) → tokens (batch, C_v, T, D) of the visible channels (all C without a mask)."""
        if x.dim() != 4 or x.shape[2:] != (self.n_channels, self.n_features):
            raise ConfigError(f"expected input (batch, T, {self.n_channels}, {self.n_features}), "
                              f"got shape {tuple(x.shape)}")
        # (batch, C, T, D); the embedding is per channel, so no channel's values reach another's token
        h = self.embed(x).transpose(1, 2)
        positions = self.positions.expand(x.shape[0], -1, -1)
        if mask is not None:
            index = visible_index(mask)  # only the visible channels go on
            h, positions = _gather_channels(h, index), self.positions[index]  # (batch, C_v, T, D), (batch, C_v, D)
        h = h + positions[:, :, None, :].to(h.dtype)
        for block in self.blocks:
            h = block(h)
        return h

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.project(tokens.mean(dim=(1, 2)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.pool(self.encode(x, mask))

    def decode(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Visible tokens (batch, C_v, T, D) and their ``mask`` → reconstruction (batch, T, C, F) of every channel."""
        if mask is not None:
            b, _, t, d = tokens.shape
            full = self.mask_token.to(tokens.dtype).expand(b, self.n_channels, t, d).clone()
            tokens = full.scatter(1, visible_index(mask)[:, :, None, None].expand(-1, -1, t, d), tokens)
        tokens = tokens + self.positions[None, :, None, :].to(tokens.dtype)
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
                 depth: int = 6, heads: int = 6, kernel_sizes: tuple[int, int, int] = (7, 5, 3),
                 mask_ratio: float = 0.3, train_mask_ratio: float = 0.0, eval_mask_ratio: float = 0.0,
                 decoder_depth: int | None = None, hidden: int = 64, dropout: float = 0.1, dcca_weight: float = 0.1,
                 fusion_temperature: float = 1.0, head_dim: int | None = None, eye_embedding: str = "per_feature",
                 dcca_dim: int | None = 2) -> None:
        super().__init__()
        if mode not in MODES:
            raise ConfigError(invalid_choice("mode", mode, MODES))
        dim = _positive_int("dim", dim)
        depth = _positive_int("depth", depth)
        heads = _positive_int("heads", heads)
        head_dim = resolve_head_dim(dim, heads, head_dim)
        decoder_depth = depth if decoder_depth is None else _positive_int("decoder_depth", decoder_depth, minimum=0)
        hidden = _positive_int("hidden", hidden)
        n_classes = _positive_int("n_classes", n_classes)
        if (not isinstance(kernel_sizes, Sequence) or len(kernel_sizes) == 0
                or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in kernel_sizes)):
            raise ConfigError(f"The 'kernel_sizes' parameter must be a non-empty tuple of positive integers. "
                              f"Got {kernel_sizes} instead.")
        if eye_embedding not in ("per_feature", "shared"):
            raise ConfigError(invalid_choice("eye_embedding", eye_embedding, ("per_feature", "shared")))
        self.mask_ratio = _ratio("mask_ratio", mask_ratio)
        self.train_mask_ratio = _ratio("train_mask_ratio", train_mask_ratio)
        self.eval_mask_ratio = _ratio("eval_mask_ratio", eval_mask_ratio)
        dropout = _ratio("dropout", dropout)
        if (isinstance(dcca_weight, bool) or not isinstance(dcca_weight, (int, float))
                or not math.isfinite(dcca_weight) or dcca_weight < 0):
            raise ConfigError(f"The 'dcca_weight' parameter must be a non-negative float. Got {dcca_weight} instead.")
        self.dcca_weight = float(dcca_weight)
        if dcca_dim is not None:
            dcca_dim = _positive_int("dcca_dim", dcca_dim)
            if dcca_dim > hidden:
                raise ConfigError(f"The 'dcca_dim' parameter must be at most hidden={hidden}. Got {dcca_dim} instead.")
        self.mode = mode

        common = dict(dim=dim, depth=depth, heads=heads, kernel_sizes=tuple(kernel_sizes),
                      decoder_depth=decoder_depth, hidden=hidden, dropout=dropout, head_dim=head_dim)
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
            # E "channels" with one value each
            self.eye_extractor = SSTMAExtractor(e, 1, per_feature_embedding=eye_embedding == "per_feature", **common)
        # DCCA on low-dimensional projections of the two views (see dcca_loss's note on small batches)
        self.dcca_projection = (nn.ModuleList([nn.Linear(hidden, dcca_dim), nn.Linear(hidden, dcca_dim)])
                                if dcca_dim is not None and mode in ("attention", "concat") else None)
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

    def _input_mask(self, batch: int, n_channels: int) -> torch.Tensor | None:
        """The mask of a classification forward pass: ``train_mask_ratio`` in training mode, ``eval_mask_ratio``
        (drawn from a generator seeded 0 at each call, so a test set is masked the same way every time) in eval."""
        if self.training:
            return self.random_channel_mask(batch, n_channels, self.train_mask_ratio) if self.train_mask_ratio else None
        if self.eval_mask_ratio:
            generator = torch.Generator(device=self._device()).manual_seed(0)
            return self.random_channel_mask(batch, n_channels, self.eval_mask_ratio, generator)
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
            h_eeg = self.eeg_extractor(x, self._input_mask(x.shape[0], x.shape[2]))
        if self.eye_extractor is not None:
            if eye is None:
                raise ConfigError(f"MultimodalSSTMA(mode='{self.mode}') needs the 'eye' input")
            h_eye = self.eye_extractor(self._as_grid(eye, "eye"), self._input_mask(eye.shape[0], eye.shape[2]))
        if self.mode == "eeg":
            fused = h_eeg
        elif self.mode == "eye":
            fused = h_eye
        elif self.mode == "concat":
            fused = torch.cat([h_eeg, h_eye], dim=-1)
        else:
            fused, _ = self.fusion(torch.stack([h_eeg, h_eye], dim=1))
        if self.two_modalities and self.training and self.dcca_weight > 0:
            views = (h_eeg, h_eye) if self.dcca_projection is None else (
                self.dcca_projection[0](h_eeg), self.dcca_projection[1](h_eye))
            self._auxiliary = self.dcca_weight * dcca_loss(*views)
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
        reconstruction = extractor.decode(extractor.encode(grid, mask), mask)
        return (reconstruction.squeeze(-1) if modality == "eye" else reconstruction), mask

    def masked_reconstruction_loss(self, x: torch.Tensor, mask_ratio: float | None = None,
                                   generator: torch.Generator | None = None, modality: str = "eeg") -> torch.Tensor:
        """MSE between :meth:`reconstruct` and ``x`` over the masked channels only."""
        reconstruction, mask = self.reconstruct(x, mask_ratio, generator, modality)
        return masked_mse(reconstruction, x, mask)


__all__ = ["HybridBlock", "MultimodalSSTMA", "SSTMAExtractor", "masked_mse", "random_channel_mask"]

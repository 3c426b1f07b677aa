"""Masked pretraining models: MBSM (Mood Reader) and MV-SSTMA's masked autoencoding.

**Masked brain signal modelling (MBSM)**, after Mood Reader (Dong et al.
2024) and the asymmetric masked autoencoder it builds on: a raw EEG segment
``(C, S)`` is cut into temporal tokens of ``token_len`` samples spanning all
channels (:meth:`MBSMEncoder.tokenize`); a random ``mask_ratio`` share of the
tokens is hidden; the encoder (the one Mood Reader fine-tunes) sees only the
visible tokens; a light decoder (narrower, shallower) gets the encoded
visible tokens plus a learned mask token at every hidden position, with its
own positions, and predicts the hidden tokens' samples. The loss is the mean
squared error on the masked tokens only.

**MV-SSTMA pretraining** (Gao et al. 2024): :class:`SSTMAPretrainer` wraps a
:class:`~moodops.components.models.mv_sstma.MultimodalSSTMA` and returns the
sum of its EEG and eye masked-reconstruction losses (random channels masked,
labels ignored); its extractors are what fine-tuning loads.

Both modules return the loss from ``forward`` so that a data-parallel
wrapper (``DistributedDataParallel``) synchronises their gradients.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from moodops.components.errors import ConfigError
from moodops.components.models.blocks import check_heads
from moodops.components.models.mood_reader import MBSMEncoder


def random_token_mask(batch: int, n_tokens: int, ratio: float, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, hide ``round(ratio · n_tokens)`` tokens (at least 1, at most n_tokens − 1).

    Returns (keep indices (batch, n_keep) sorted, mask bool (batch, n_tokens) with True = hidden).
    """
    if not 0.0 < ratio < 1.0:
        raise ConfigError(f"The 'mask_ratio' parameter must be in (0, 1). Got {ratio} instead.")
    if n_tokens < 2:
        raise ConfigError(f"masking needs at least 2 tokens per segment; got {n_tokens}")
    n_mask = min(max(1, int(round(ratio * n_tokens))), n_tokens - 1)
    noise = torch.rand(batch, n_tokens, generator=generator).to(device)
    order = noise.argsort(dim=1)
    keep = order[:, n_mask:].sort(dim=1).values
    mask = torch.ones(batch, n_tokens, dtype=torch.bool, device=device)
    mask.scatter_(1, keep, False)
    return keep, mask


class MBSMAutoencoder(nn.Module):
    """Asymmetric masked autoencoder over raw EEG segments ``(batch, C, S)``.

    ``encoder`` is a :class:`MBSMEncoder`; its ``state_dict`` is what Mood
    Reader's ``load_encoder`` takes.
    """

    def __init__(self, n_channels: int, n_samples: int, token_len: int = 32, dim: int = 32, depth: int = 2,
                 heads: int = 4, decoder_dim: int = 32, decoder_depth: int = 1, decoder_heads: int = 4,
                 dropout: float = 0.0, mask_ratio: float = 0.75) -> None:
        super().__init__()
        check_heads(decoder_dim, decoder_heads)
        self.encoder = MBSMEncoder(n_channels, n_samples, token_len, dim, depth, heads, dropout)
        if self.encoder.n_tokens < 2:
            raise ConfigError(f"a segment of {n_samples} samples holds {self.encoder.n_tokens} token(s) of "
                              f"{token_len}; masking needs at least 2 (longer segments or shorter tokens)")
        self.mask_ratio = float(mask_ratio)
        self.token_size = n_channels * token_len
        self.to_decoder = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_position = nn.Parameter(torch.zeros(1, self.encoder.n_tokens, decoder_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.decoder_position, std=0.02)
        layer = nn.TransformerEncoderLayer(decoder_dim, decoder_heads, dim_feedforward=2 * decoder_dim,
                                           dropout=dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerEncoder(layer, decoder_depth, enable_nested_tensor=False)
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.head = nn.Linear(decoder_dim, self.token_size)

    @property
    def n_tokens(self) -> int:
        return self.encoder.n_tokens

    def reconstruct(self, raw: torch.Tensor, mask_ratio: float | None = None,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """raw (batch, C, S) → (predicted tokens, target tokens, mask), tokens (batch, n_tokens, C·token_len)."""
        tokens = self.encoder.tokenize(raw)
        b, n, _ = tokens.shape
        keep, mask = random_token_mask(b, n, self.mask_ratio if mask_ratio is None else mask_ratio, generator,
                                       tokens.device)
        visible = self.to_decoder(self.encoder.encode_tokens(tokens, keep))
        full = self.mask_token.expand(b, n, -1).to(visible.dtype)  # bf16 under autocast, as the encoder's output
        full = full.scatter(1, keep[..., None].expand(-1, -1, full.shape[-1]), visible)
        decoded = self.decoder_norm(self.decoder(full + self.decoder_position))
        return self.head(decoded), tokens, mask

    def forward(self, raw: torch.Tensor, mask_ratio: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """The masked-token reconstruction loss (MSE over hidden tokens only)."""
        predicted, target, mask = self.reconstruct(raw, mask_ratio, generator)
        per_token = ((predicted - target) ** 2).mean(dim=-1)
        return (per_token * mask).sum() / mask.sum()

    def untokenize(self, tokens: torch.Tensor) -> torch.Tensor:
        """(batch, n_tokens, C·token_len) → (batch, C, n_tokens·token_len)."""
        b, n, _ = tokens.shape
        c, t = self.encoder.n_channels, self.encoder.token_len
        return tokens.reshape(b, n, c, t).permute(0, 2, 1, 3).reshape(b, c, n * t)


class SSTMAPretrainer(nn.Module):
    """MV-SSTMA masked pretraining: EEG DE ``x (batch, T, C, F)`` and ``eye (batch, T, E)`` reconstruction."""

    def __init__(self, model: nn.Module, mask_ratio: float = 0.3, eye_weight: float = 1.0) -> None:
        super().__init__()
        if not 0.0 < mask_ratio < 1.0:
            raise ConfigError(f"The 'mask_ratio' parameter must be in (0, 1). Got {mask_ratio} instead.")
        if not (math.isfinite(eye_weight) and eye_weight >= 0):
            raise ConfigError(f"The 'eye_weight' parameter must be >= 0. Got {eye_weight} instead.")
        self.model = model
        self.mask_ratio = float(mask_ratio)
        self.eye_weight = float(eye_weight)

    def losses(self, x: torch.Tensor | None, eye: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        out = {}
        if self.model.eeg_extractor is not None:
            out["eeg"] = self.model.masked_reconstruction_loss(x, self.mask_ratio, generator, "eeg")
        if self.model.eye_extractor is not None:
            out["eye"] = self.model.masked_reconstruction_loss(eye, self.mask_ratio, generator, "eye")
        return out

    def forward(self, x: torch.Tensor | None, eye: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        losses = self.losses(x, eye, generator)
        return losses.get("eeg", 0.0) + self.eye_weight * losses.get("eye", 0.0)


__all__ = ["MBSMAutoencoder", "SSTMAPretrainer", "random_token_mask"]

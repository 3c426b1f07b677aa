"""Mood Reader (Dong et al. 2024): spatial-temporal attention on DE features.

The DE tensor of a sample is ``N × C × F`` (N windows, C channels, F bands).
Two views of it are attended in parallel:

- spatial view ``C × (N·F)``: one token per channel;
- temporal view ``N × (C·F)``: one token per window.

Each view is embedded to ``dim`` and passes ``depth`` attention blocks
(LayerNorm → multi-head attention → dropout + residual → LayerNorm). Interlink
blocks then fuse each view with the other view aligned to it, giving F_S_T
(spatial primary) and F_T_S (temporal primary).
"""
from __future__ import annotations

import torch
from torch import nn

from moodops.components.models.blocks import AttentionBlock, InterlinkBlock


class SpatialTemporalInterlink(nn.Module):
    """Parallel spatial and temporal attention with interlink, concatenation head.

    x : (batch, N, C, F) → logits (batch, n_classes)
    """

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, dim: int = 32, heads: int = 4,
                 depth: int = 1, dropout: float = 0.1, interlink: bool = True) -> None:
        super().__init__()
        n, c, f = input_shape
        self.embed_spatial = nn.Linear(n * f, dim)
        self.embed_temporal = nn.Linear(c * f, dim)
        self.channel_position = nn.Parameter(torch.zeros(1, c, dim))
        self.window_position = nn.Parameter(torch.zeros(1, n, dim))
        self.spatial = nn.Sequential(*[AttentionBlock(dim, heads, dropout) for _ in range(depth)])
        self.temporal = nn.Sequential(*[AttentionBlock(dim, heads, dropout) for _ in range(depth)])
        self.interlink = interlink
        if interlink:
            self.spatial_temporal = InterlinkBlock(dim, c, n, heads, dropout)
            self.temporal_spatial = InterlinkBlock(dim, n, c, heads, dropout)
        width = 4 * dim if interlink else 2 * dim
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Dropout(dropout), nn.Linear(width, dim), nn.GELU(),
                                  nn.Linear(dim, n_classes))

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(F_S_T, F_T_S) with interlink, else (F_S, F_T)."""
        b, n, c, f = x.shape
        spatial = self.spatial(self.embed_spatial(x.permute(0, 2, 1, 3).reshape(b, c, n * f)) + self.channel_position)
        temporal = self.temporal(self.embed_temporal(x.reshape(b, n, c * f)) + self.window_position)
        if not self.interlink:
            return spatial, temporal
        return self.spatial_temporal(spatial, temporal), self.temporal_spatial(temporal, spatial)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f_st, f_ts = self.features(x)
        return self.head(torch.cat([f_st.mean(dim=1), f_ts.mean(dim=1)], dim=-1))

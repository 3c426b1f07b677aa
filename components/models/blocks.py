"""Shared building blocks (attention) used by several architectures."""
from __future__ import annotations

import torch
from torch import nn

from moodops.components.errors import ConfigError


def check_heads(dim: int, heads: int) -> None:
    if heads < 1 or dim % heads:
        raise ConfigError(f"`dim % heads == 0` must hold, but got (dim={dim}, heads={heads})")


class AttentionBlock(nn.Module):
    """LayerNorm → multi-head self-attention → dropout + residual → LayerNorm.

    x : Tensor, shape (batch, tokens, dim) → same shape.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        check_heads(dim, heads)
        self.norm_in = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm_in(x)
        h, _ = self.attention(h, h, h, need_weights=False)
        return self.norm_out(x + self.dropout(h))


class InterlinkBlock(nn.Module):
    """Fuse a primary view with another view aligned to it.

    The primary view goes through one linear map; the other view is mapped
    over its token axis to the primary's token count and then over features;
    the two are concatenated along features and pass multi-head attention
    (with residual and LayerNorm).

    primary : (batch, P, dim), other : (batch, Q, dim) → (batch, P, 2·dim)
    """

    def __init__(self, dim: int, primary_tokens: int, other_tokens: int, heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        check_heads(2 * dim, heads)
        self.primary = nn.Linear(dim, dim)
        self.align_tokens = nn.Linear(other_tokens, primary_tokens)
        self.align_features = nn.Linear(dim, dim)
        self.attention = nn.MultiheadAttention(2 * dim, heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(2 * dim)

    def forward(self, primary: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        aligned = self.align_features(self.align_tokens(other.transpose(1, 2)).transpose(1, 2))
        h = torch.cat([self.primary(primary), aligned], dim=-1)
        a, _ = self.attention(h, h, h, need_weights=False)
        return self.norm(h + self.dropout(a))

"""Shared building blocks (attention) used by several architectures.

Dropout in attention blocks acts on the attention *output* (before the
residual sum), never on the attention probabilities: dropping probabilities
forces torch's unfused attention kernel, which on CPU was 6× slower and
held every probability matrix for backward (measured on a 2560 × 32-token
batch, tests/benchmarks/bench_models.py).
"""
from __future__ import annotations

import torch
from torch import nn

from moodops.components.errors import ConfigError


def check_heads(dim: int, heads: int) -> None:
    if heads < 1 or dim % heads:
        raise ConfigError(f"`dim % heads == 0` must hold, but got (dim={dim}, heads={heads})")


class AttentionBlock(nn.Module):
    """Mood Reader's attention block (Dong et al. 2024, §3.3, Eqs 1–4):

        X' = LayerNorm(X̂)                               (1)
        A  = MHA(X' W_q, X' W_k, X' W_v)                 (2, 3)
        X  = LayerNorm(Dropout(A) + X')                  (4)

    The residual adds the normalised input X', as Eq. 4 writes it.

    x : Tensor, shape (batch, tokens, dim) → same shape.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        check_heads(dim, heads)
        self.norm_in = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attend(x)[0]

    def attend(self, x: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The block's output and, with ``need_weights``, its attention (batch, tokens, tokens), head-averaged."""
        normed = self.norm_in(x)  # Eq. 1
        a, weights = self.attention(normed, normed, normed, need_weights=need_weights)  # Eqs 2-3
        return self.norm_out(self.dropout(a) + normed), weights  # Eq. 4


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
        self.attention = nn.MultiheadAttention(2 * dim, heads, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(2 * dim)

    def forward(self, primary: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        aligned = self.align_features(self.align_tokens(other.transpose(1, 2)).transpose(1, 2))
        h = torch.cat([self.primary(primary), aligned], dim=-1)
        a, _ = self.attention(h, h, h, need_weights=False)
        return self.norm(h + self.dropout(a))


def sinusoidal_positions(n_positions: int, dim: int) -> torch.Tensor:
    """Fixed sine-cosine position encoding (Vaswani et al. 2017).

    Returns a Tensor of shape (n_positions, dim): even columns hold
    ``sin(p / 10000^(2i/dim))``, odd columns the matching cosine.
    """
    if n_positions < 1 or dim < 1:
        raise ConfigError(f"sinusoidal_positions needs n_positions >= 1 and dim >= 1, got ({n_positions}, {dim})")
    position = torch.arange(n_positions, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-torch.log(torch.tensor(10000.0)) / dim))
    table = torch.zeros(n_positions, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])  # an odd dim has one sine column more
    return table


class CausalConv1d(nn.Module):
    """1-D convolution that never looks ahead: the output at step t sees inputs ≤ t.

    Left-pads the time axis by ``(kernel_size - 1) · dilation`` (no right
    padding), so the length is kept.

    x : Tensor, shape (batch, in_channels, time) → (batch, out_channels, time)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                 bias: bool = True) -> None:
        super().__init__()
        if kernel_size < 1 or dilation < 1:
            raise ConfigError(f"CausalConv1d needs kernel_size >= 1 and dilation >= 1, got ({kernel_size}, {dilation})")
        self.left_padding = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.pad(x, (self.left_padding, 0)))

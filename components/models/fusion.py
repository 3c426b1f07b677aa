"""Fusion of per-modality representations into one vector.

- :class:`AttentionFusion` — ``α = softmax(wᵀ tanh F)`` over the modality axis
  and ``fused = F αᵀ`` (Gao et al. 2024); F ``(batch, n_modalities, dim)``.
- :class:`ScoreFusion` — k representations ``(batch, dim)`` are each scored
  to one scalar per sample by a learnable row, the scores are softmax-ed over
  the k inputs and the representations summed with those weights.
- :class:`FeatureScoreFusion` — Mood Reader's Eqs 5–7: each representation
  is scored per feature by its own ``D × D`` matrix, the scores are
  softmax-ed over the k inputs feature by feature, and the weighted sum is
  taken feature by feature.

Both return ``(fused (batch, dim), weights (batch, k))`` and keep the last
weights (detached) in ``last_weights`` for inspection. ``temperature`` divides
the scores before the softmax: above 1 the weights are more even, below 1
one modality dominates sooner (a tunable of the fusion).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from moodops.components.errors import ConfigError


def _temperature(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"The 'temperature' parameter must be a float > 0. Got {value} instead.")
    return float(value)


class AttentionFusion(nn.Module):
    """Attention over the modality axis.

    features : (batch, n_modalities, dim) → (fused (batch, dim), α (batch, n_modalities))
    """

    def __init__(self, dim: int, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = _temperature(temperature)
        # a random (not zero) start so the weights are informative from the first step
        self.w = nn.Parameter(torch.randn(dim) * dim ** -0.5)
        self.last_weights: torch.Tensor | None = None

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if features.dim() != 3:
            raise ConfigError(f"AttentionFusion needs (batch, n_modalities, dim), got shape {tuple(features.shape)}")
        weights = torch.softmax(torch.tanh(features) @ self.w / self.temperature, dim=1)
        fused = (weights.unsqueeze(-1) * features).sum(dim=1)
        self.last_weights = weights.detach()
        return fused, weights


class ScoreFusion(nn.Module):
    """Score-weighted sum of k representations.

    ``score_i = W_i · r_i + b_i`` with one learnable row ``W_i`` per input (a
    ``(k, dim)`` matrix) when ``n_inputs`` is given, or one row shared by any
    number of inputs when it is None; ``weights = softmax_i(score_i)``.

    representations : k tensors (batch, dim) → (fused (batch, dim), weights (batch, k))
    """

    def __init__(self, dim: int, n_inputs: int | None = None, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = _temperature(temperature)
        if n_inputs is not None and n_inputs < 1:
            raise ConfigError(f"The 'n_inputs' parameter must be a positive integer or None. Got {n_inputs} instead.")
        self.n_inputs = n_inputs
        rows = 1 if n_inputs is None else n_inputs
        self.weight = nn.Parameter(torch.randn(rows, dim) * dim ** -0.5)
        self.bias = nn.Parameter(torch.zeros(rows))
        self.last_weights: torch.Tensor | None = None

    def forward(self, representations: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        stacked = torch.stack(list(representations), dim=1)  # (batch, k, dim)
        if self.n_inputs is not None and stacked.shape[1] != self.n_inputs:
            raise ConfigError(f"ScoreFusion was built for {self.n_inputs} inputs, got {stacked.shape[1]}")
        scores = (stacked * self.weight).sum(dim=-1) + self.bias  # (batch, k)
        weights = torch.softmax(scores / self.temperature, dim=1)
        fused = (weights.unsqueeze(-1) * stacked).sum(dim=1)
        self.last_weights = weights.detach()
        return fused, weights


class FeatureScoreFusion(nn.Module):
    """Per-feature score fusion, Mood Reader (Dong et al. 2024) §3.4, Eqs 5–7:

        Score_s = F_S_T W_S,  Score_t = F_T_S W_T,  W_S, W_T ∈ R^{D×D}        (5)
        c_s, c_t = softmax(Score_s, Score_t)                                   (6)
        F_ST = c_s F_S_T + c_t F_T_S                                           (7)

    The scores are D-vectors, so the softmax runs across the k inputs for each
    feature (``c_s + c_t = 1`` elementwise) and Eq. 7's products are
    elementwise: a feature-wise gate between the inputs. (A softmax over the D
    features instead would leave Eq. 7 mixing two vectors by weights that sum
    to one over features, not over inputs; the paper calls c_s and c_t "the
    corresponding fusion weights" of the two inputs, which reads as the
    former.) Eq. 5 has no bias term, and neither has this.

    representations : k tensors (batch, dim) → (fused (batch, dim), weights (batch, k, dim))
    """

    def __init__(self, dim: int, n_inputs: int, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = _temperature(temperature)
        if n_inputs < 1:
            raise ConfigError(f"The 'n_inputs' parameter must be a positive integer. Got {n_inputs} instead.")
        self.n_inputs = n_inputs
        self.weight = nn.Parameter(torch.randn(n_inputs, dim, dim) * dim ** -0.5)
        self.last_weights: torch.Tensor | None = None

    def forward(self, representations: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        stacked = torch.stack(list(representations), dim=1)  # (batch, k, dim)
        if stacked.shape[1] != self.n_inputs:
            raise ConfigError(f"FeatureScoreFusion was built for {self.n_inputs} inputs, got {stacked.shape[1]}")
        scores = torch.einsum("bkd,kde->bke", stacked, self.weight)  # Eq. 5, one D×D matrix per input
        weights = torch.softmax(scores / self.temperature, dim=1)  # Eq. 6, across the inputs per feature
        fused = (weights * stacked).sum(dim=1)  # Eq. 7
        self.last_weights = weights.detach()
        return fused, weights


__all__ = ["AttentionFusion", "FeatureScoreFusion", "ScoreFusion"]

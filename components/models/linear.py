"""Linear baseline."""
from __future__ import annotations

import math

import torch
from torch import nn


class LinearClassifier(nn.Module):
    """Multinomial logistic regression on the flattened ``(N, C, F)`` tensor.

    x : (batch, N, C, F) → logits (batch, n_classes)
    """

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(math.prod(input_shape), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x.flatten(1)))

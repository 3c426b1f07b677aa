"""Linear baseline."""
from __future__ import annotations

import math

import torch
from torch import nn


class LinearClassifier(nn.Module):
    """Multinomial logistic regression on the flattened ``x (N, C, F)``.

    x : (batch, N, C, F) → logits (batch, n_classes)
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], n_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(math.prod(shapes["x"]), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x.flatten(1)))

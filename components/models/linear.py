"""Linear baseline: logistic regression on one modality or on several, concatenated."""
from __future__ import annotations

import math

import torch
from torch import nn


class LinearClassifier(nn.Module):
    """Multinomial logistic regression on the flattened, concatenated ``inputs``.

    x : (batch, N, C, F), eye : (batch, N, E), face : (batch, N, D) → logits (batch, n_classes)

    ``inputs`` (fixed by the variant) names what the model reads, in order:
    ``("x",)`` is EEG only; ``("eye",)`` eye movements only; ``("x", "eye")``
    feature-level fusion by concatenation, as the papers' baseline tables
    fuse modalities for their SVMs.
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], n_classes: int, dropout: float = 0.0,
                 inputs: tuple[str, ...] = ("x",)) -> None:
        super().__init__()
        self.inputs = tuple(inputs)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(sum(math.prod(shapes[k]) for k in self.inputs), n_classes)

    def forward(self, x: torch.Tensor, eye: torch.Tensor | None = None,
                face: torch.Tensor | None = None) -> torch.Tensor:
        given = {"x": x, "eye": eye, "face": face}
        flat = torch.cat([given[k].flatten(1) for k in self.inputs], dim=1)
        return self.linear(self.dropout(flat))

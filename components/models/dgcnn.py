"""DGCNN baseline (Song et al. 2018): Chebyshev graph convolution on a learned adjacency.

T. Song, W. Zheng, P. Song, Z. Cui, "EEG emotion recognition using dynamical
graph convolutional neural networks", IEEE Trans. Affective Computing 11(3),
2018/2020, doi:10.1109/TAFFC.2018.2817622.

Input ``x`` per sample ``(N, C, F)``: every EEG channel is a graph node whose
features are its N·F values (N windows × F bands, flattened). The adjacency
``W`` (C × C) is a parameter; ``relu`` keeps it non-negative and averaging
with its transpose keeps it symmetric, so the normalised Laplacian
``L = I − D^{-1/2} W D^{-1/2}`` is a valid graph Laplacian (eigenvalues in
[0, 2]). The graph convolution is the K-term Chebyshev filter
``Σ_k T_k(L̃) X Θ_k`` with ``L̃ = L − I`` (the rescaling ``2L/λ_max − I`` with
``λ_max ≈ 2``, as in Song et al.), so the filter mixes nodes up to K−1 hops
apart. Then ReLU, a 1×1 (per-node) linear map, flatten, dropout and a fully
connected layer to the logits ``(batch, n_classes)``.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from moodops.components.errors import ConfigError


def normalized_laplacian(adjacency: torch.Tensor) -> torch.Tensor:
    """``I − D^{-1/2} A D^{-1/2}`` of a non-negative symmetric (C, C) adjacency.

    A node without edges (degree 0) gets ``D^{-1/2} = 0``: its row of L is the
    identity row, never NaN.
    """
    degree = adjacency.sum(dim=-1)
    inv_sqrt = torch.where(degree > 0, degree.clamp_min(torch.finfo(adjacency.dtype).tiny).rsqrt(),
                           torch.zeros_like(degree))
    normalised = inv_sqrt.unsqueeze(-1) * adjacency * inv_sqrt.unsqueeze(-2)
    return torch.eye(adjacency.shape[-1], dtype=adjacency.dtype, device=adjacency.device) - normalised


class ChebyshevGraphConv(nn.Module):
    """``Σ_{k<K} T_k(L̃) X Θ_k`` with the Chebyshev recursion ``T_k = 2 L̃ T_{k-1} − T_{k-2}``.

    x : (batch, C, F_in), laplacian : (C, C) → (batch, C, F_out)
    """

    def __init__(self, in_features: int, out_features: int, order: int) -> None:
        super().__init__()
        self.order = order
        self.weights = nn.Parameter(torch.empty(order, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.xavier_uniform_(self.weights.view(order * in_features, out_features))

    def forward(self, x: torch.Tensor, laplacian: torch.Tensor) -> torch.Tensor:
        scaled = laplacian - torch.eye(laplacian.shape[-1], dtype=x.dtype, device=x.device)  # L̃ with λ_max = 2
        t_prev, t = x, scaled @ x
        out = x @ self.weights[0]
        for k in range(1, self.order):
            if k > 1:
                t_prev, t = t, 2 * (scaled @ t) - t_prev
            out = out + t @ self.weights[k]
        return out + self.bias


class DGCNN(nn.Module):
    """Dynamical graph CNN on ``(N, C, F)`` features.

    x : (batch, N, C, F) → logits (batch, n_classes)
    """

    def __init__(self, shapes, n_classes, hidden: int = 32, order: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        shape = tuple(int(d) for d in (shapes["x"] if isinstance(shapes, Mapping) else shapes))
        if len(shape) != 3:
            raise ConfigError(f"model 'dgcnn' needs input x of shape (N, C, F); got {shape}")
        if order < 1:
            raise ConfigError(f"model 'dgcnn': 'order' must be >= 1, got {order}")
        if hidden < 1:
            raise ConfigError(f"model 'dgcnn': 'hidden' must be >= 1, got {hidden}")
        n, c, f = shape
        # Uniform in [0, 1): non-negative from the start, and not all equal, so
        # gradients can tell the edges apart.
        self.adjacency_weight = nn.Parameter(torch.rand(c, c))
        self.graph_conv = ChebyshevGraphConv(n * f, hidden, order)
        self.node_transform = nn.Linear(hidden, hidden)  # the 1×1 convolution over nodes
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c * hidden, n_classes)

    def adjacency(self) -> torch.Tensor:
        """The non-negative, symmetric (C, C) adjacency used by the graph convolution."""
        w = F.relu(self.adjacency_weight)
        return 0.5 * (w + w.T)

    def laplacian(self) -> torch.Tensor:
        """The normalised Laplacian (C, C) of :meth:`adjacency`."""
        return normalized_laplacian(self.adjacency())

    def node_features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, N, C, F) → (batch, C, N·F)."""
        b, n, c, f = x.shape
        return x.permute(0, 2, 1, 3).reshape(b, c, n * f)

    def graph_features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, N, C, F) → (batch, C, hidden): graph convolution, ReLU, 1×1 transform, ReLU."""
        h = F.relu(self.graph_conv(self.node_features(x), self.laplacian()))
        return F.relu(self.node_transform(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.graph_features(x).flatten(1)))


__all__ = ["DGCNN", "ChebyshevGraphConv", "normalized_laplacian"]

"""Training losses shared by several models.

:func:`dcca_loss` — deep canonical correlation analysis (Andrew et al. 2013):
the negative total canonical correlation of two views ``h1`` ``(batch, d1)``
and ``h2`` ``(batch, d2)``. With the centred views, the regularised covariances
``S11 = H1ᵀH1/(m-1) + r·I``, ``S22`` likewise and ``S12 = H1ᵀH2/(m-1)``, the
correlation is the sum of the (top ``out_dim``) singular values of
``T = S11^{-1/2} S12 S22^{-1/2}``.
"""
from __future__ import annotations

import torch

from moodops.components.errors import ConfigError


class _InverseSqrt(torch.autograd.Function):
    """``S^{-1/2}`` of a symmetric matrix via eigh, eigenvalues clamped to ``eps``.

    The backward uses the Daleckii–Krein formula (divided differences of
    ``f(λ) = λ^{-1/2}``): autograd through eigh's eigenvectors divides by
    ``λi − λj`` and turns NaN whenever eigenvalues repeat, which they do here
    for every direction a small batch or a constant column leaves at ``r``.
    """

    generate_vmap_rule = True  # packed folds (torch.func.vmap) batch it as written

    @staticmethod
    def forward(matrix: torch.Tensor, eps: float):  # type: ignore[override]
        values, vectors = torch.linalg.eigh(matrix)
        f = values.clamp_min(eps).rsqrt()
        return (vectors * f) @ vectors.mT, values, vectors, f  # the result, then what backward needs

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _, values, vectors, f = output
        ctx.mark_non_differentiable(values, vectors, f)
        ctx.save_for_backward(values, vectors, f)
        ctx.eps = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor, *_) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        values, vectors, f = ctx.saved_tensors
        slope = torch.where(values > ctx.eps, -0.5 * f ** 3, torch.zeros_like(f))  # 0 where clamped
        diff = values.unsqueeze(1) - values.unsqueeze(0)
        scale = values.abs().max().clamp_min(ctx.eps)
        close = diff.abs() <= 1e-9 * scale
        divided = (f.unsqueeze(1) - f.unsqueeze(0)) / torch.where(close, torch.ones_like(diff), diff)
        gamma = torch.where(close, 0.5 * (slope.unsqueeze(1) + slope.unsqueeze(0)), divided)
        g = vectors.mT @ (0.5 * (grad + grad.mT)) @ vectors
        return vectors @ (g * gamma) @ vectors.mT, None


def dcca_loss(h1: torch.Tensor, h2: torch.Tensor, out_dim: int | None = None, reg: float = 1e-3,
              eps: float = 1e-9) -> torch.Tensor:
    """Negative total canonical correlation of two views (lower = more correlated).

    h1 : (batch, d1), h2 : (batch, d2) → scalar in the dtype of ``h1``.
    ``out_dim``: how many of the largest canonical correlations to sum
    (default all, ``min(d1, d2)``); ``reg`` is added to the diagonal of both
    auto-covariances; eigenvalues are clamped to ``eps``. Computed in float64;
    finite with gradients for a batch of 2 and for constant columns.
    """
    if h1.dim() != 2 or h2.dim() != 2 or h1.shape[0] != h2.shape[0]:
        raise ConfigError(f"dcca_loss needs two (batch, dim) views with the same batch, got shapes "
                          f"{tuple(h1.shape)} and {tuple(h2.shape)}")
    d1, d2 = h1.shape[1], h2.shape[1]
    k = min(d1, d2) if out_dim is None else int(out_dim)
    if not 1 <= k <= min(d1, d2):
        raise ConfigError(f"The 'out_dim' parameter must be an integer in [1, {min(d1, d2)}]. Got {out_dim} instead.")
    a = h1.double()
    b = h2.double()
    a = a - a.mean(dim=0, keepdim=True)
    b = b - b.mean(dim=0, keepdim=True)
    n = max(h1.shape[0] - 1, 1)  # a batch of one has zero covariance, not a division by zero
    s11 = a.mT @ a / n + reg * torch.eye(d1, dtype=a.dtype, device=a.device)
    s22 = b.mT @ b / n + reg * torch.eye(d2, dtype=b.dtype, device=b.device)
    s12 = a.mT @ b / n
    t = _InverseSqrt.apply(s11, eps)[0] @ s12 @ _InverseSqrt.apply(s22, eps)[0]
    gram = t.mT @ t if d2 <= d1 else t @ t.mT  # the smaller one: its eigenvalues are the σ²
    gram = 0.5 * (gram + gram.mT)
    # eigvalsh's backward only needs the eigenvectors (V diag(g) Vᵀ): stable under repeated values
    singular = torch.linalg.eigvalsh(gram).clamp_min(eps).sqrt()
    return (-singular[-k:].sum()).to(h1.dtype)


__all__ = ["dcca_loss"]

"""Prior-driven dynamic brain networks (Zheng et al. 2023).

C. Zheng, W. Shao, D. Zhang, Q. Zhu, "Prior-driven dynamic brain networks for
multi-modal emotion recognition", MICCAI 2023, LNCS pp. 389–398,
doi:10.1007/978-3-031-43993-3_38.

Inputs (per sample; a leading batch axis is added):

- ``x``    ``(N, P, P)`` — N windows of dynamic functional connectivity between
  the P EEG channels (feature ``dfc``, see
  :func:`moodops.components.features.connectivity.dynamic_connectivity`);
- ``face`` ``(N, D)`` — facial features of the same N windows (only with
  ``prior=True``).

Pipeline:

1. Prior knowledge embedding (PKE, ``prior=True``). Per window the P rows of
   the connectivity matrix are the EEG tokens and the face vector is mapped to
   M face tokens. Cross-attention scores both ways, ``softplus(Q Kᵀ/√d)``
   (softplus instead of softmax: each score says *how strongly* a channel and
   a face token relate, not a distribution over tokens), are each reduced over
   the M face tokens to one value per channel, summed and passed through
   softplus again: the prior ``p ≥ 0`` of shape ``(batch, N, P)``. It scales
   the connectivity row-wise, ``A'[n, i, j] = A[n, i, j] · p[n, i]``: the prior
   weighs each channel's outgoing connections (the paper does not fix the
   broadcast; scaling rows keeps one weight per electrode and leaves the
   matrix's layout for the 3D convolutions unchanged).
2. STFENet. ``(N, P, P)`` is a one-channel 3D volume: a 3×3×3 stem
   convolution (BatchNorm, ReLU) and 2×2×2 max-pooling (as a ResNet stem: the
   full-resolution volume is only touched once, which keeps a batch cheap on
   CPU), then one residual block per entry of ``channels`` (two 3×3×3
   convolutions with BatchNorm and ReLU, 1×1×1 projection on the shortcut when
   the width changes) with 2×2×2 max-pooling between blocks (``ceil_mode`` so
   a short sequence such as N=4 never pools to zero), then an
   embedded-Gaussian non-local block (``nonlocal_block=True``: self-attention
   over all voxels, i.e. across every window at once), global average pooling
   and a fully connected head with dropout. With (N, P) = (20, 32) and the
   default two blocks the non-local block attends over 5·8·8 = 320 voxels.

Output: logits ``(batch, n_classes)``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from moodops.components.errors import ConfigError


def _x_shape(shapes: Mapping[str, tuple[int, ...]] | tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(shapes, Mapping):
        if "x" not in shapes:
            raise ConfigError(f"model 'dfcn' needs input 'x'; got {', '.join(sorted(shapes)) or 'none'}")
        return tuple(int(d) for d in shapes["x"])
    return tuple(int(d) for d in shapes)


class PriorKnowledgeEmbedding(nn.Module):
    """EEG ↔ face cross-attention → non-negative per-channel prior that scales the connectivity.

    x : (batch, N, P, P), face : (batch, N, D) → (x · p[..., None], p) with p : (batch, N, P)
    """

    def __init__(self, n_channels: int, face_dim: int, dim: int = 16, face_tokens: int = 8) -> None:
        super().__init__()
        self.dim, self.face_tokens = dim, face_tokens
        self.eeg_query = nn.Linear(n_channels, dim)
        self.eeg_key = nn.Linear(n_channels, dim)
        self.face_embed = nn.Linear(face_dim, face_tokens * dim)  # one face vector → M tokens
        self.face_query = nn.Linear(dim, dim)
        self.face_key = nn.Linear(dim, dim)
        self.reduce_eeg_face = nn.Linear(face_tokens, 1)  # S_ef (P × M) → (P,)
        self.reduce_face_eeg = nn.Linear(face_tokens, 1)  # S_feᵀ (P × M) → (P,)

    def prior(self, x: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """The prior p ≥ 0, shape (batch, N, P)."""
        b, n = x.shape[:2]
        faces = self.face_embed(face).reshape(b, n, self.face_tokens, self.dim)
        scale = 1.0 / math.sqrt(self.dim)
        s_ef = F.softplus(self.eeg_query(x) @ self.face_key(faces).transpose(-1, -2) * scale)  # (b, N, P, M)
        s_fe = F.softplus(self.face_query(faces) @ self.eeg_key(x).transpose(-1, -2) * scale)  # (b, N, M, P)
        p = self.reduce_eeg_face(s_ef).squeeze(-1) + self.reduce_face_eeg(s_fe.transpose(-1, -2)).squeeze(-1)
        return F.softplus(p)

    def forward(self, x: torch.Tensor, face: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.prior(x, face)
        return x * p.unsqueeze(-1), p


class ResidualBlock3d(nn.Module):
    """Two 3×3×3 convolutions (BatchNorm, ReLU) with a residual connection.

    (batch, c_in, D, H, W) → (batch, c_out, D, H, W)
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(c_in, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(c_out)
        self.conv2 = nn.Conv3d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(c_out)
        # Projection only when the width changes, so the identity path stays free otherwise.
        self.shortcut = (nn.Identity() if c_in == c_out
                         else nn.Sequential(nn.Conv3d(c_in, c_out, 1, bias=False), nn.BatchNorm3d(c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + self.shortcut(x))


class NonLocalBlock3d(nn.Module):
    """Embedded-Gaussian non-local block (Wang et al. 2018) with residual.

    Every voxel attends to every voxel: ``z = x + W_z(softmax(θ(x)ᵀ φ(x)) g(x))``.
    (batch, c, D, H, W) → same shape. ``W_z``'s BatchNorm keeps the default
    init (not zero, unlike the paper by Wang et al.), so the block contributes
    from the first step.
    """

    def __init__(self, channels: int, inner: int | None = None) -> None:
        super().__init__()
        inner = inner or max(1, channels // 2)
        self.theta = nn.Conv3d(channels, inner, 1)
        self.phi = nn.Conv3d(channels, inner, 1)
        self.g = nn.Conv3d(channels, inner, 1)
        self.out = nn.Sequential(nn.Conv3d(inner, channels, 1, bias=False), nn.BatchNorm3d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, *spatial = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (b, V, inner)
        phi = self.phi(x).flatten(2)  # (b, inner, V)
        g = self.g(x).flatten(2).transpose(1, 2)  # (b, V, inner)
        y = torch.softmax(theta @ phi, dim=-1) @ g  # (b, V, inner)
        y = y.transpose(1, 2).reshape(b, -1, *spatial)
        return x + self.out(y)


class STFENet(nn.Module):
    """Spatial-temporal feature extraction: 3D residual CNN (+ non-local) → logits.

    x : (batch, N, P, P) → logits (batch, n_classes)
    """

    def __init__(self, n_classes: int, channels: tuple[int, ...] = (8, 16), nonlocal_block: bool = True,
                 hidden: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        if not channels or any(int(c) < 1 for c in channels):
            raise ConfigError(f"model 'dfcn': 'channels' must be one or more positive widths, got {channels}")
        channels = tuple(int(c) for c in channels)
        self.stem = nn.Sequential(nn.Conv3d(1, channels[0], 3, padding=1, bias=False),
                                  nn.BatchNorm3d(channels[0]), nn.ReLU(inplace=True))
        widths = (channels[0], *channels)
        self.blocks = nn.ModuleList(ResidualBlock3d(a, b) for a, b in zip(widths[:-1], widths[1:]))
        # ceil_mode: a size-1 axis stays 1 instead of vanishing (short N, tiny P).
        self.pool = nn.MaxPool3d(2, ceil_mode=True)
        self.nonlocal_block = NonLocalBlock3d(channels[-1]) if nonlocal_block else None
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels[-1], hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, N, P, P) → (batch, channels[-1], N', P', P') before global pooling."""
        h = self.pool(self.stem(x.unsqueeze(1)))
        for k, block in enumerate(self.blocks):
            h = block(h if k == 0 else self.pool(h))
        if self.nonlocal_block is not None:
            h = self.nonlocal_block(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3, 4)))


class PriorDrivenDFCN(nn.Module):
    """Prior-driven DFCN: PKE (face prior on the connectivity) → STFENet.

    x : (batch, N, P, P), face : (batch, N, D) (``prior=True`` only) → logits (batch, n_classes)

    After each forward pass with the prior, ``last_prior`` holds the (detached)
    prior ``(batch, N, P)``; :meth:`prior` computes it with gradients.
    """

    def __init__(self, shapes, n_classes, prior: bool = True, nonlocal_block: bool = True,
                 channels: tuple[int, ...] = (8, 16), prior_dim: int = 16, face_tokens: int = 8,
                 hidden: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        shape = _x_shape(shapes)
        if len(shape) != 3 or shape[1] != shape[2]:
            raise ConfigError(f"model 'dfcn' needs connectivity input (N, C, C) (--feature dfc); got {shape}")
        n, p, _ = shape
        self.use_prior = bool(prior)
        self.pke: PriorKnowledgeEmbedding | None = None
        if self.use_prior:
            face = shapes.get("face") if isinstance(shapes, Mapping) else None
            if face is None:
                raise ConfigError("model 'dfcn' with prior=True needs input 'face' (N, D); "
                                  "choose --variant no_prior for EEG only")
            face = tuple(int(d) for d in face)
            if len(face) != 2 or face[0] != n:
                raise ConfigError(f"model 'dfcn': input 'face' must be (N, D) with N={n} windows like 'x'; "
                                  f"got {face}")
            if prior_dim < 1 or face_tokens < 1:
                raise ConfigError(f"model 'dfcn': 'prior_dim' and 'face_tokens' must be >= 1, got "
                                  f"(prior_dim={prior_dim}, face_tokens={face_tokens})")
            self.pke = PriorKnowledgeEmbedding(p, face[1], prior_dim, face_tokens)
        self.stfenet = STFENet(n_classes, channels, nonlocal_block, hidden, dropout)
        self.last_prior: torch.Tensor | None = None

    def prior(self, x: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """The PKE prior p ≥ 0, shape (batch, N, P)."""
        if self.pke is None:
            raise ConfigError("model 'dfcn' was built with prior=False: it has no prior")
        return self.pke.prior(x, face)

    def forward(self, x: torch.Tensor, face: torch.Tensor | None = None) -> torch.Tensor:
        if self.pke is not None:
            if face is None:
                raise ConfigError("model 'dfcn' with prior=True needs the 'face' input (batch, N, D)")
            x, p = self.pke(x, face)
            self.last_prior = p.detach()
        return self.stfenet(x)


__all__ = ["NonLocalBlock3d", "PriorDrivenDFCN", "PriorKnowledgeEmbedding", "ResidualBlock3d", "STFENet"]

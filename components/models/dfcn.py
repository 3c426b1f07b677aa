"""Prior-driven dynamic brain networks (Zheng et al. 2023).

C. Zheng, W. Shao, D. Zhang, Q. Zhu, "Prior-driven dynamic brain networks for
multi-modal emotion recognition", MICCAI 2023, LNCS pp. 389–398,
doi:10.1007/978-3-031-43993-3_38. Equations below are the paper's (§2).

Inputs (per sample; a leading batch axis is added):

- ``x``    ``(N, P, P)`` — the original DFCNs: per window the Pearson
  correlation of the P channels' EEG (Eq. 1, feature ``dfc``, see
  :func:`moodops.components.features.connectivity.pearson_connectivity`),
  passed to the model un-normalised;
- ``psd``  ``(N, P, B)`` — the EEG node features x^E of the same windows:
  Welch band power per channel in the paper's five bands (§3; only with
  ``prior=True``);
- ``face`` ``(N, P_F)`` — facial features x^F of the same windows (§3:
  OpenFace face and head position, gaze directions and action units, each
  averaged per window; only with ``prior=True``).

1. Prior knowledge embedding (PKE, ``prior=True``), Eqs 2–6. Per window,

   - ``Q_E = x^E W_Q^E``, ``K_E = x^E W_K^E`` (Eq. 2): one token per
     electrode from its band powers, ``(P, d)``;
   - ``Q_F = x^F W_Q^F``, ``K_F = x^F W_K^F`` (Eq. 3): one token per face
     channel, ``(P_F, d)``. Each face channel is one number per window, so it
     is first embedded with weights of its own (``v_k·a_k + b_k``, a
     per-channel linear map to ``d``); a shared map would make all P_F tokens
     parallel;
   - ``Cor(E,F) = Q_E K_Fᵀ/√d`` ``(P, P_F)`` and ``Cor(F,E) = Q_F K_Eᵀ/√d``
     ``(P_F, P)`` (Eq. 4), with softplus instead of softmax, applied once to
     their sum (Eq. 5).

   The paper's shapes do not agree: Eq. 5 adds a ``P × P_F`` and a
   ``P_F × P`` matrix, and Eq. 6 multiplies the result element-wise with the
   ``P × P`` DFCNs. Our reading, which keeps every equation and gives a
   ``P × P`` prior:

   - Eq. 5 sums the two directions pair by pair:
     ``S = softplus(Cor(E,F) + Cor(F,E)ᵀ)``, ``(P, P_F)``, ``S ≥ 0`` — how
     strongly electrode i and face channel k relate, scored from both sides;
   - the prior of an electrode pair is how much the two electrodes relate to
     the *same* face channels: ``Cor = S Sᵀ / P_F``, ``(P, P)``, symmetric and
     non-negative (the paper calls it "the correlation between the cross-modal
     channels"; its Fig. 2 shows one value per electrode, the row means of
     this matrix);
   - Eq. 6: ``DFCNs = DFCNs_original ⊙ Cor``, element-wise on the raw
     Pearson values.

2. The spatial-temporal feature extractor on the ``(N, P, P)`` volume:

   - ``extractor="stfenet"`` (STFENet, Eq. 7, Fig. 1): a 3×3×3 stem
     convolution (BatchNorm, ReLU) and 2×2×2 max-pooling (a ResNet stem: the
     full-resolution volume is touched once, which keeps a batch cheap on
     CPU), one residual block per entry of ``channels`` ("two 3D convolutions,
     two activation functions and a residual connection") with 3D max-pooling
     between blocks (``ceil_mode`` so a short sequence never pools to zero),
     then the embedded-Gaussian non-local block (Eqs 8–10,
     ``nonlocal_block=True``: self-attention over all voxels, i.e. across
     every window at once);
   - ``extractor="plain2d"`` (Table 2's "w/o STFENet" and "Baseline"; the
     paper does not say what replaces STFENet): the same stem, widths and
     number of convolutions, but 1×3×3 kernels and 1×2×2 pooling — each
     window's network is read on its own (spatial only, no joint
     spatial-temporal convolution), without residual connections and without
     the non-local block; the windows meet only in the global average.

   Then global average pooling and a fully connected head with dropout
   ("we adopt the features from fully connected layer for classification").

Table 2's rows are the variants (``components.models`` registry): ``full``;
``no_prior`` (w/o PKE); ``no_nonlocal`` (w/o NL block); ``no_stfenet``
(PKE + ``plain2d``); ``baseline`` (no PKE, ``plain2d``).

Output: logits ``(batch, n_classes)``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from moodops.components.errors import ConfigError, invalid_choice


def _x_shape(shapes: Mapping[str, tuple[int, ...]] | tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(shapes, Mapping):
        if "x" not in shapes:
            raise ConfigError(f"model 'dfcn' needs input 'x'; got {', '.join(sorted(shapes)) or 'none'}")
        return tuple(int(d) for d in shapes["x"])
    return tuple(int(d) for d in shapes)


class PriorKnowledgeEmbedding(nn.Module):
    """EEG ↔ face cross-attention → the non-negative P × P prior that multiplies the DFCNs (Eqs 2–6).

    x : (batch, N, P, P), psd : (batch, N, P, B), face : (batch, N, P_F)
    → (x ⊙ prior, prior) with prior : (batch, N, P, P)
    """

    def __init__(self, n_bands: int, n_face: int, dim: int = 16) -> None:
        super().__init__()
        self.dim, self.n_face = dim, n_face
        self.eeg_query = nn.Linear(n_bands, dim)  # W_Q^E
        self.eeg_key = nn.Linear(n_bands, dim)  # W_K^E
        # each face channel's scalar → a d-vector with weights of its own
        self.face_weight = nn.Parameter(torch.randn(n_face, dim) / math.sqrt(dim))
        self.face_bias = nn.Parameter(torch.zeros(n_face, dim))
        self.face_query = nn.Linear(dim, dim)  # W_Q^F
        self.face_key = nn.Linear(dim, dim)  # W_K^F

    def face_tokens(self, face: torch.Tensor) -> torch.Tensor:
        """(batch, N, P_F) → (batch, N, P_F, d)."""
        return face.unsqueeze(-1) * self.face_weight + self.face_bias

    def scores(self, psd: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """Eq. 5 as read here: S = softplus(Cor(E,F) + Cor(F,E)ᵀ), shape (batch, N, P, P_F), S ≥ 0."""
        tokens = self.face_tokens(face)
        scale = 1.0 / math.sqrt(self.dim)
        cor_ef = self.eeg_query(psd) @ self.face_key(tokens).transpose(-1, -2) * scale  # (b, N, P, P_F)
        cor_fe = self.face_query(tokens) @ self.eeg_key(psd).transpose(-1, -2) * scale  # (b, N, P_F, P)
        return F.softplus(cor_ef + cor_fe.transpose(-1, -2))

    def prior(self, psd: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """Cor = S Sᵀ / P_F, shape (batch, N, P, P): symmetric, non-negative."""
        s = self.scores(psd, face)
        return s @ s.transpose(-1, -2) / self.n_face

    def forward(self, x: torch.Tensor, psd: torch.Tensor, face: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.prior(psd, face)
        return x * p, p  # Eq. 6: element-wise


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


class PlainBlock3d(nn.Module):
    """Two convolutions (BatchNorm, ReLU) without a residual connection; ``kernel`` (1, 3, 3) reads each
    window on its own. (batch, c_in, D, H, W) → (batch, c_out, D, H, W)"""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int] = (1, 3, 3)) -> None:
        super().__init__()
        pad = tuple(k // 2 for k in kernel)
        self.body = nn.Sequential(nn.Conv3d(c_in, c_out, kernel, padding=pad, bias=False), nn.BatchNorm3d(c_out),
                                  nn.ReLU(inplace=True),
                                  nn.Conv3d(c_out, c_out, kernel, padding=pad, bias=False), nn.BatchNorm3d(c_out),
                                  nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


EXTRACTORS = ("stfenet", "plain2d")


class STFENet(nn.Module):
    """Spatial-temporal feature extraction: 3D residual CNN (+ non-local) → logits; or, with
    ``extractor="plain2d"``, the per-window plain CNN that replaces it in Table 2's ablations.

    x : (batch, N, P, P) → logits (batch, n_classes)
    """

    def __init__(self, n_classes: int, channels: tuple[int, ...] = (8, 16), nonlocal_block: bool = True,
                 hidden: int = 64, dropout: float = 0.3, extractor: str = "stfenet") -> None:
        super().__init__()
        if not channels or any(int(c) < 1 for c in channels):
            raise ConfigError(f"model 'dfcn': 'channels' must be one or more positive widths, got {channels}")
        if extractor not in EXTRACTORS:
            raise ConfigError(invalid_choice("extractor of model 'dfcn'", extractor, EXTRACTORS))
        channels = tuple(int(c) for c in channels)
        self.extractor = extractor
        plain = extractor == "plain2d"
        kernel, pool = ((1, 3, 3), (1, 2, 2)) if plain else ((3, 3, 3), (2, 2, 2))
        pad = tuple(k // 2 for k in kernel)
        self.stem = nn.Sequential(nn.Conv3d(1, channels[0], kernel, padding=pad, bias=False),
                                  nn.BatchNorm3d(channels[0]), nn.ReLU(inplace=True))
        widths = (channels[0], *channels)
        block = (lambda a, b: PlainBlock3d(a, b, kernel)) if plain else ResidualBlock3d
        self.blocks = nn.ModuleList(block(a, b) for a, b in zip(widths[:-1], widths[1:]))
        # ceil_mode: a size-1 axis stays 1 instead of vanishing (short N, tiny P).
        self.pool = nn.MaxPool3d(pool, ceil_mode=True)
        self.nonlocal_block = NonLocalBlock3d(channels[-1]) if nonlocal_block and not plain else None
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
    """Prior-driven DFCN: PKE (face prior on the connectivity, Eqs 2–6) → STFENet (or its ablation).

    x : (batch, N, P, P), psd : (batch, N, P, B) and face : (batch, N, P_F) (``prior=True`` only)
    → logits (batch, n_classes)

    After each forward pass with the prior, ``last_prior`` holds the (detached)
    prior ``(batch, N, P, P)``; :meth:`prior` computes it with gradients.
    """

    def __init__(self, shapes, n_classes, prior: bool = True, nonlocal_block: bool = True,
                 extractor: str = "stfenet", channels: tuple[int, ...] = (8, 16), prior_dim: int = 16,
                 hidden: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        shape = _x_shape(shapes)
        if len(shape) != 3 or shape[1] != shape[2]:
            raise ConfigError(f"model 'dfcn' needs connectivity input (N, C, C) (--feature dfc); got {shape}")
        n, p, _ = shape
        self.use_prior = bool(prior)
        self.pke: PriorKnowledgeEmbedding | None = None
        if self.use_prior:
            given = shapes if isinstance(shapes, Mapping) else {}
            for name, what in (("psd", "(N, P, bands): the EEG node features"), ("face", "(N, P_F)")):
                if name not in given:
                    raise ConfigError(f"model 'dfcn' with prior=True needs input '{name}' {what}; "
                                      "choose --variant no_prior or baseline for EEG connectivity only")
            psd, face = (tuple(int(d) for d in given[k]) for k in ("psd", "face"))
            if len(psd) != 3 or psd[:2] != (n, p):
                raise ConfigError(f"model 'dfcn': input 'psd' must be (N, P, bands) with N={n} windows and P={p} "
                                  f"channels like 'x'; got {psd}")
            if len(face) != 2 or face[0] != n:
                raise ConfigError(f"model 'dfcn': input 'face' must be (N, P_F) with N={n} windows like 'x'; "
                                  f"got {face}")
            if prior_dim < 1:
                raise ConfigError(f"model 'dfcn': 'prior_dim' must be >= 1, got {prior_dim}")
            self.pke = PriorKnowledgeEmbedding(psd[2], face[1], prior_dim)
        self.stfenet = STFENet(n_classes, channels, nonlocal_block, hidden, dropout, extractor)
        self.last_prior: torch.Tensor | None = None

    def prior(self, psd: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """The PKE prior ≥ 0, shape (batch, N, P, P)."""
        if self.pke is None:
            raise ConfigError("model 'dfcn' was built with prior=False: it has no prior")
        return self.pke.prior(psd, face)

    def forward(self, x: torch.Tensor, psd: torch.Tensor | None = None,
                face: torch.Tensor | None = None) -> torch.Tensor:
        if self.pke is not None:
            if psd is None or face is None:
                raise ConfigError("model 'dfcn' with prior=True needs the 'psd' (batch, N, P, bands) and 'face' "
                                  "(batch, N, P_F) inputs")
            x, p = self.pke(x, psd, face)
            self.last_prior = p.detach()
        return self.stfenet(x)


__all__ = ["EXTRACTORS", "NonLocalBlock3d", "PlainBlock3d", "PriorDrivenDFCN", "PriorKnowledgeEmbedding",
           "ResidualBlock3d", "STFENet"]

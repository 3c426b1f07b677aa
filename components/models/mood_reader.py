"""Mood Reader (Dong et al. 2024).

Four parts, combined per variant (see the ``mood_reader`` registry entry):

- **MBSM encoder** over raw EEG ``raw (N, C, S)``: the N windows are joined
  into one ``C × N·S`` signal, cut into temporal tokens of ``token_len``
  samples (each token spans every channel), embedded, given learned positions
  and passed through a transformer encoder. Its weights can come from masked
  brain signal modelling (pretraining) via :meth:`MoodReader.load_encoder`,
  and be frozen (``freeze_encoder``) or fine-tuned.
- **Interlinked spatial-temporal attention (STIB)** on DE ``x (N, C, F)``:
  a spatial view ``C × N·F`` (a token per channel) and a temporal view
  ``N × C·F`` (a token per window) pass parallel attention blocks (LayerNorm →
  multi-head attention → dropout + residual → LayerNorm); interlink blocks
  then fuse each view with the other aligned to it, giving F_S_T and F_T_S.
  Without interlink (STB) the two views are used as they are.
- **Eye-movement branch**: temporal attention blocks over ``eye (N, E)``.
- **Fusion**. ``concat``: mean-pooled representations are concatenated into
  an MLP. ``mlf`` (multi-level, §3.4): every representation is LayerNorm-ed,
  flattened and projected to ``fusion_dim`` (D); level 1 passes F_S_T and
  F_T_S through a linear layer and LayerNorm each, scores them with D × D
  matrices and takes their per-feature softmax-weighted sum F_ST (Eqs 5–7,
  :class:`FeatureScoreFusion`); level 2 does the same for the encoder and
  eye representations (F_EE; with only one of them, F_EE is that one after
  its linear layer and LayerNorm); the last level LayerNorms F_ST and F_EE
  and applies self-attention to the pair (Eq. 8, M = Attention(Concat(F_ST,
  F_EE)), no residual), and a BatchNorm plus a three-layer classifier give
  the logits (Eq. 9's cross-entropy is the training loss).
- **Electrode attention** (§3.5): :meth:`MoodReader.electrode_attention`
  gives, per sample, the attention each electrode receives in the spatial
  blocks (averaged over heads, query electrodes and blocks), the map the
  paper projects onto the scalp (its Fig. 3).

Differences from the paper that remain: dimensions (``dim``, ``fusion_dim``,
depths) are not given in the paper and are set by the model's defaults.
"""
from __future__ import annotations

import torch
from torch import nn

from moodops.components.errors import ConfigError
from moodops.components.models.blocks import AttentionBlock, InterlinkBlock, check_heads
from moodops.components.models.fusion import FeatureScoreFusion


class MBSMEncoder(nn.Module):
    """Transformer encoder over temporal tokens of raw EEG.

    raw : (batch, C, S) → tokens (batch, S // token_len, dim); a trailing
    remainder shorter than a token is dropped.
    """

    def __init__(self, n_channels: int, n_samples: int, token_len: int = 32, dim: int = 32, depth: int = 2,
                 heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        if token_len < 1 or token_len > n_samples:
            raise ConfigError(f"`1 <= token_len <= n_samples` must hold, but got (token_len={token_len}, "
                              f"n_samples={n_samples})")
        check_heads(dim, heads)
        self.n_channels, self.token_len = n_channels, token_len
        self.n_tokens = n_samples // token_len
        self.embed = nn.Linear(n_channels * token_len, dim)
        self.position = nn.Parameter(torch.zeros(1, self.n_tokens, dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def tokenize(self, raw: torch.Tensor) -> torch.Tensor:
        """(batch, C, S) → (batch, n_tokens, C·token_len): the pretraining targets."""
        b, c, _ = raw.shape
        used = raw[..., : self.n_tokens * self.token_len]
        return used.reshape(b, c, self.n_tokens, self.token_len).permute(0, 2, 1, 3).reshape(b, self.n_tokens, -1)

    def encode_tokens(self, tokens: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Encode tokens (batch, n_tokens, C·token_len); ``keep`` (batch, k) selects visible tokens (MAE)."""
        h = self.embed(tokens) + self.position
        if keep is not None:
            h = torch.gather(h, 1, keep[..., None].expand(-1, -1, h.shape[-1]))
        return self.norm(self.transformer(h))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.encode_tokens(self.tokenize(raw))


class SpatialTemporalBranch(nn.Module):
    """Parallel spatial and temporal attention blocks, optionally interlinked.

    x : (batch, N, C, F) → (F_S_T (batch, C, w), F_T_S (batch, N, w)) with
    w = 2·dim when interlinked, else (F_S, F_T) with w = dim.
    """

    def __init__(self, n: int, c: int, f: int, dim: int, heads: int, depth: int, dropout: float,
                 interlink: bool) -> None:
        super().__init__()
        self.embed_spatial = nn.Linear(n * f, dim)
        self.embed_temporal = nn.Linear(c * f, dim)
        self.channel_position = nn.Parameter(torch.zeros(1, c, dim))
        self.window_position = nn.Parameter(torch.zeros(1, n, dim))
        self.spatial = nn.Sequential(*[AttentionBlock(dim, heads, dropout) for _ in range(depth)])
        self.temporal = nn.Sequential(*[AttentionBlock(dim, heads, dropout) for _ in range(depth)])
        self.interlink = interlink
        self.width = 2 * dim if interlink else dim
        if interlink:
            self.spatial_temporal = InterlinkBlock(dim, c, n, heads, dropout)
            self.temporal_spatial = InterlinkBlock(dim, n, c, heads, dropout)

    def electrode_attention(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, N, C, F) → (batch, C): the attention each electrode (key) receives in the spatial
        blocks, averaged over heads, query electrodes and blocks; each row sums to 1."""
        b, n, c, f = x.shape
        h = self.embed_spatial(x.permute(0, 2, 1, 3).reshape(b, c, n * f)) + self.channel_position
        received = []
        for block in self.spatial:
            h, weights = block.attend(h, need_weights=True)
            received.append(weights.mean(dim=1))  # over queries: (batch, C keys)
        return torch.stack(received).mean(dim=0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, c, f = x.shape
        spatial = self.spatial(self.embed_spatial(x.permute(0, 2, 1, 3).reshape(b, c, n * f)) + self.channel_position)
        temporal = self.temporal(self.embed_temporal(x.reshape(b, n, c * f)) + self.window_position)
        if not self.interlink:
            return spatial, temporal
        return self.spatial_temporal(spatial, temporal), self.temporal_spatial(temporal, spatial)


class EyeBranch(nn.Module):
    """Temporal attention over eye-movement features: eye (batch, N, E) → (batch, N, dim)."""

    def __init__(self, n: int, e: int, dim: int, heads: int, depth: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Linear(e, dim)
        self.position = nn.Parameter(torch.zeros(1, n, dim))
        self.blocks = nn.Sequential(*[AttentionBlock(dim, heads, dropout) for _ in range(depth)])

    def forward(self, eye: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.embed(eye) + self.position)


class _Project(nn.Module):
    """LayerNorm → flatten → linear to the unified fusion dimension."""

    def __init__(self, tokens: int, width: int, out: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.linear = nn.Linear(tokens * width, out)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(h).flatten(1))


class MoodReader(nn.Module):
    """Mood Reader and its ablation variants.

    Inputs: ``x (batch, N, C, F)`` always; ``raw (batch, N, C, S)`` with
    ``encoder``; ``eye (batch, N, E)`` with ``eye``. Output: logits.
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], n_classes: int, interlink: bool = True,
                 encoder: bool = False, eye: bool = False, fusion: str = "concat", dim: int = 32, heads: int = 4,
                 depth: int = 1, dropout: float = 0.1, token_len: int = 32, encoder_dim: int = 32,
                 encoder_depth: int = 2, encoder_heads: int = 4, eye_depth: int = 1, fusion_dim: int = 64,
                 freeze_encoder: bool = False, fusion_temperature: float = 1.0) -> None:
        super().__init__()
        if fusion not in ("concat", "mlf"):
            raise ConfigError(f"The 'fusion' parameter must be 'concat' or 'mlf'. Got {fusion!r} instead.")
        if fusion == "mlf" and not (encoder or eye):
            raise ConfigError("multi-level fusion needs the encoder or the eye branch (level 2 fuses them)")
        n, c, f = shapes["x"]
        self.fusion = fusion
        self.branch = SpatialTemporalBranch(n, c, f, dim, heads, depth, dropout, interlink)
        self.encoder = None
        self.eye_branch = None
        reps: list[tuple[int, int]] = [(c, self.branch.width), (n, self.branch.width)]  # (tokens, width)
        if encoder:
            rn, rc, rs = shapes["raw"]
            if rn != n:
                raise ConfigError(f"raw input has {rn} windows but x has {n}")
            self.encoder = MBSMEncoder(rc, rn * rs, token_len, encoder_dim, encoder_depth, encoder_heads, dropout)
            reps.append((self.encoder.n_tokens, encoder_dim))
            if freeze_encoder:
                self.freeze_encoder()
        if eye:
            en, e = shapes["eye"]
            if en != n:
                raise ConfigError(f"eye input has {en} windows but x has {n}")
            self.eye_branch = EyeBranch(n, e, dim, heads, eye_depth, dropout)
            reps.append((n, dim))
        if fusion == "concat":
            width = sum(w for _, w in reps)
            self.head = nn.Sequential(nn.LayerNorm(width), nn.Dropout(dropout), nn.Linear(width, fusion_dim),
                                      nn.GELU(), nn.Linear(fusion_dim, n_classes))
        else:
            check_heads(fusion_dim, heads)
            self.project = nn.ModuleList([_Project(t, w, fusion_dim) for t, w in reps])
            # §3.4: "preprocessing is executed utilizing a linear layer and layer normalization" before each level
            self.prepare = nn.ModuleList([nn.Sequential(nn.Linear(fusion_dim, fusion_dim), nn.LayerNorm(fusion_dim))
                                          for _ in reps])
            self.level1 = FeatureScoreFusion(fusion_dim, 2, fusion_temperature)
            self.level2 = FeatureScoreFusion(fusion_dim, len(reps) - 2, fusion_temperature) if len(reps) > 3 else None
            self.final_norm = nn.ModuleList([nn.LayerNorm(fusion_dim), nn.LayerNorm(fusion_dim)])
            self.final_attention = nn.MultiheadAttention(fusion_dim, heads, batch_first=True)
            self.head = nn.Sequential(
                nn.BatchNorm1d(2 * fusion_dim),
                nn.Linear(2 * fusion_dim, fusion_dim), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(fusion_dim, fusion_dim // 2), nn.ReLU(),
                nn.Linear(fusion_dim // 2, n_classes),
            )
        self.last_fusion_weights: dict[str, torch.Tensor] = {}

    def freeze_encoder(self, frozen: bool = True) -> None:
        if self.encoder is None:
            raise ConfigError("this Mood Reader variant has no encoder to freeze")
        for p in self.encoder.parameters():
            p.requires_grad_(not frozen)

    def load_encoder(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load pretrained MBSM encoder weights (strict: every key and shape must match)."""
        if self.encoder is None:
            raise ConfigError("this Mood Reader variant has no encoder; choose a variant with 'enc' or 'full'")
        try:
            self.encoder.load_state_dict(state_dict, strict=True)
        except RuntimeError as e:
            raise ConfigError(f"pretrained encoder does not fit this model: {str(e).splitlines()[0]}") from None

    def representations(self, x: torch.Tensor, raw: torch.Tensor | None = None,
                        eye: torch.Tensor | None = None) -> list[torch.Tensor]:
        """[F_S_T, F_T_S, encoder?, eye?], each (batch, tokens, width)."""
        reps = list(self.branch(x))
        if self.encoder is not None:
            if raw is None:
                raise ConfigError("this Mood Reader variant needs the raw EEG input (raw=...)")
            b, n, c, s = raw.shape
            reps.append(self.encoder(raw.permute(0, 2, 1, 3).reshape(b, c, n * s)))
        if self.eye_branch is not None:
            if eye is None:
                raise ConfigError("this Mood Reader variant needs the eye-movement input (eye=...)")
            reps.append(self.eye_branch(eye))
        return reps

    def forward(self, x: torch.Tensor, raw: torch.Tensor | None = None, eye: torch.Tensor | None = None) -> torch.Tensor:
        reps = self.representations(x, raw, eye)
        if self.fusion == "concat":
            return self.head(torch.cat([r.mean(dim=1) for r in reps], dim=-1))
        unified = [prepare(project(r)) for project, prepare, r in zip(self.project, self.prepare, reps)]
        f_st, w1 = self.level1(unified[:2])
        weights = {"level1": w1}
        if self.level2 is not None:
            f_ee, w2 = self.level2(unified[2:])
            weights["level2"] = w2
        else:
            f_ee = unified[2]
        self.last_fusion_weights = {k: v.detach() for k, v in weights.items()}
        pair = torch.stack([self.final_norm[0](f_st), self.final_norm[1](f_ee)], dim=1)
        m, _ = self.final_attention(pair, pair, pair, need_weights=False)  # Eq. 8
        return self.head(m.flatten(1))

    def electrode_attention(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial attention over electrodes for DE input ``x`` (batch, N, C, F) → (batch, C)
        (§3.5; see :meth:`SpatialTemporalBranch.electrode_attention`)."""
        return self.branch.electrode_attention(x)

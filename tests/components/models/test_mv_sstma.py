"""Multimodal MV-SSTMA: masking, causality, DCCA, fusion weights, auxiliary loss, masked reconstruction."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from moodops.components.errors import ConfigError  # noqa: E402
from moodops.components.models.blocks import CausalConv1d, sinusoidal_positions  # noqa: E402
from moodops.components.models.mv_sstma import resolve_head_dim, visible_index  # noqa: E402
from moodops.components.models.fusion import AttentionFusion, ScoreFusion  # noqa: E402
from moodops.components.models.losses import dcca_loss  # noqa: E402
from moodops.components.models.mv_sstma import HybridBlock, MultimodalSSTMA, masked_mse  # noqa: E402

N, C, F, E = 10, 8, 5, 6
SHAPES = {"x": (N, C, F), "eye": (N, E)}
SMALL = dict(dim=8, depth=2, heads=2, decoder_depth=1, hidden=16)


def make(mode: str = "attention", **kwargs) -> MultimodalSSTMA:
    torch.manual_seed(0)
    return MultimodalSSTMA(SHAPES, 3, mode=mode, **{**SMALL, **kwargs})


def inputs(batch: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, N, C, F, generator=g), torch.randn(batch, N, E, generator=g)


# --- masking -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.3, 0.5, 0.75])
def test_channel_mask_hides_exactly_the_ratio(ratio):
    model = make("eeg")
    g = torch.Generator().manual_seed(3)
    mask = model.random_channel_mask(64, C, ratio, generator=g)
    assert mask.dtype == torch.bool and mask.shape == (64, C)
    assert (mask.sum(dim=1) == round(ratio * C)).all()
    if 0 < round(ratio * C) < C:  # a random subset per sample, not one fixed set
        assert len({tuple(row.tolist()) for row in mask}) > 1
        assert mask.any(dim=0).all()

    x, _ = inputs()
    reconstruction, rec_mask = model.reconstruct(x, mask_ratio=ratio, generator=torch.Generator().manual_seed(4))
    assert reconstruction.shape == x.shape
    assert (rec_mask.sum(dim=1) == round(ratio * C)).all()


def test_reconstruct_uses_the_model_mask_ratio_and_the_eye_layout():
    model = make("attention", mask_ratio=0.5)
    x, eye = inputs()
    _, mask = model.reconstruct(x)
    assert (mask.sum(dim=1) == 4).all()
    reconstruction, eye_mask = model.reconstruct(eye, modality="eye")
    assert reconstruction.shape == eye.shape and eye_mask.shape == (4, E)
    assert (eye_mask.sum(dim=1) == 3).all()


def test_masked_channels_do_not_reach_the_encoder():
    model = make("eeg").eval()
    x, _ = inputs()
    mask = model.random_channel_mask(x.shape[0], C, 0.5, generator=torch.Generator().manual_seed(5))
    junk = x.clone()
    junk.permute(0, 2, 1, 3)[mask] = 100.0  # overwrite every window of the masked channels
    extractor = model.eeg_extractor
    with torch.no_grad():
        assert torch.allclose(extractor.encode(x, mask), extractor.encode(junk, mask))
        assert not torch.allclose(extractor.encode(x), extractor.encode(junk))


def test_the_encoder_gets_only_the_visible_subset():
    """§2.1: only x^v ∈ R^{C_v × T × D} enters the encoder: the tokens of the masked channels are not there at
    all (not replaced by a mask token), and a visible channel's tokens do not depend on a masked one's values."""
    model = make("eeg").eval()
    x, _ = inputs()
    mask = model.random_channel_mask(x.shape[0], C, 0.5, generator=torch.Generator().manual_seed(5))
    extractor = model.eeg_extractor
    with torch.no_grad():
        tokens = extractor.encode(x, mask)
        assert tokens.shape == (x.shape[0], C - 4, N, SMALL["dim"])
        # the same as encoding a C_v-channel input of the visible channels at their own positions
        index = visible_index(mask)
        assert (index == torch.stack([torch.nonzero(~row).squeeze(1) for row in mask])).all()
        h = extractor.embed(x).transpose(1, 2)
        h = torch.gather(h, 1, index[:, :, None, None].expand(-1, -1, N, SMALL["dim"]))
        h = h + extractor.positions[index][:, :, None, :]
        for block in extractor.blocks:
            h = block(h)
        assert torch.allclose(tokens, h, atol=1e-5)
        # the decoder fills the masked slots with the mask token and predicts every channel
        assert extractor.decode(tokens, mask).shape == x.shape


def test_eval_mask_ratio_masks_test_inputs_the_same_way_every_time():
    """Table 4 masks fine-tuning and test data alike: eval_mask_ratio masks in eval mode, reproducibly."""
    x, _ = inputs(8)
    plain = make("eeg", dropout=0.0).eval()
    masked = make("eeg", dropout=0.0, eval_mask_ratio=0.5).eval()
    with torch.no_grad():
        assert torch.equal(masked(x), masked(x))
        assert not torch.allclose(masked(x), plain(x))
        junk = x.clone()
        mask = masked._input_mask(8, C)
        junk.permute(0, 2, 1, 3)[mask] = 50.0  # the channels it masks do not matter
        assert torch.allclose(masked(junk), masked(x), atol=1e-6)


def test_the_papers_six_heads_with_d16_get_their_own_head_width():
    """§3.2: H = 6 with D = 16; 6 does not divide 16, so each head is ceil(16 / 6) = 3 wide (18 together)."""
    assert resolve_head_dim(16, 6, None) == 3 and resolve_head_dim(16, 4, None) == 4
    assert resolve_head_dim(16, 6, 8) == 8
    model = MultimodalSSTMA(SHAPES, 3, mode="eeg", dim=16, depth=1, heads=6, hidden=16)
    block = model.eeg_extractor.blocks[0]
    assert block.heads == 6 and block.head_dim == 3
    assert block.qkv_weight.shape == (3, 16, 3 * 6 * 3) and block.out.in_features == 3 * 6 * 3
    assert model(inputs()[0]).shape == (4, 3)
    assert len(model.eeg_extractor.decoder_blocks) == 1  # symmetric decoder: decoder_depth defaults to depth


def test_hybrid_block_is_eqs_1_to_4_branch_by_branch():
    """The fused block equals the three branches written out: Attention(BN(CausalConvT(x, k))) per kernel,
    summed (Eq. 4), with residual + LayerNorm and the feed-forward network."""
    torch.manual_seed(0)
    dim, heads = 8, 2
    block = HybridBlock(dim, heads, (5, 3, 1), dropout=0.0).train()
    x = torch.randn(3, C, N, dim)
    out = block(x)
    b, c, t, d = x.shape
    series = x.reshape(b * c, t, d).transpose(1, 2)
    total = torch.zeros(b * t * c, dim)
    inner = heads * block.head_dim
    out_weight = block.out.weight.reshape(dim, 3, inner)
    for i, k in enumerate((5, 3, 1)):
        rows = slice(i * dim, (i + 1) * dim)
        weight = block.conv_weight[rows, :, 5 - k:]  # this branch's own k taps
        h = torch.nn.functional.conv1d(torch.nn.functional.pad(series, (k - 1, 0)), weight, block.conv_bias[rows])
        h = torch.nn.functional.batch_norm(h, None, None, block.batch_norm.weight[rows], block.batch_norm.bias[rows],
                                           training=True, eps=block.batch_norm.eps)
        h = h.reshape(b, c, d, t).permute(0, 3, 1, 2).reshape(b * t, c, d)
        q, key, v = (h @ block.qkv_weight[i] + block.qkv_bias[i]).split(inner, dim=-1)
        split = lambda z: z.reshape(b * t, c, heads, block.head_dim).transpose(1, 2)  # noqa: E731
        scores = split(q) @ split(key).transpose(-1, -2) / block.head_dim ** 0.5
        a = (scores.softmax(-1) @ split(v)).transpose(1, 2).reshape(b * t * c, inner)
        total = total + a @ out_weight[:, i].T
    summary = (total + block.out.bias).reshape(b, t, c, d).transpose(1, 2)
    h = block.norm(x + summary)
    assert torch.allclose(out, block.norm_out(h + block.ffn(h)), atol=1e-5)


def test_eye_features_get_an_embedding_each():
    """Per-feature eye embedding: two eye features with the same value are different tokens."""
    model = make("eye")
    embed = model.eye_extractor.embed
    value = torch.full((1, 1, E, 1), 0.7)
    tokens = embed(value)[0, 0]
    assert tokens.shape == (E, SMALL["dim"]) and not torch.allclose(tokens[0], tokens[1])
    shared = make("eye", eye_embedding="shared").eye_extractor.embed
    assert isinstance(shared, torch.nn.Linear)


def test_training_masks_only_when_train_mask_ratio_is_positive():
    x, _ = inputs(8)
    for ratio, differs in [(0.0, False), (0.5, True)]:
        model = make("eeg", dropout=0.0, train_mask_ratio=ratio).train()
        with torch.no_grad():
            assert (not torch.allclose(model(x), model(x))) is differs


# --- causality -----------------------------------------------------------------------------------------------------

def test_causal_conv_does_not_look_ahead():
    torch.manual_seed(0)
    conv = CausalConv1d(4, 6, kernel_size=5)
    x = torch.randn(2, 4, 12)
    y = conv(x)
    assert y.shape == (2, 6, 12)
    for t in (0, 5, 11):
        z = x.clone()
        z[:, :, t] += 1.0
        out = conv(z)
        assert torch.equal(out[:, :, :t], y[:, :, :t])
        assert not torch.allclose(out[:, :, t], y[:, :, t])


@pytest.mark.parametrize("t", [3, 7])
def test_hybrid_block_and_extractor_do_not_look_ahead(t):
    torch.manual_seed(0)
    block = HybridBlock(8, 2, (7, 5, 3), dropout=0.0).eval()
    h = torch.randn(3, C, N, 8)
    with torch.no_grad():
        before = block(h)
        h2 = h.clone()
        h2[:, :, t] += 1.0
        after = block(h2)
    assert torch.allclose(after[:, :, :t], before[:, :, :t], atol=1e-6)
    assert not torch.allclose(after[:, :, t], before[:, :, t])

    extractor = make("eeg").eval().eeg_extractor
    x, _ = inputs()
    with torch.no_grad():
        tokens = extractor.encode(x)  # (batch, C, T, D)
        x2 = x.clone()
        x2[:, t] += 1.0  # window t of every channel
        tokens2 = extractor.encode(x2)
    assert torch.allclose(tokens2[:, :, :t], tokens[:, :, :t], atol=1e-5)
    assert not torch.allclose(tokens2[:, :, t:], tokens[:, :, t:])


def test_sinusoidal_positions():
    table = sinusoidal_positions(6, 8)
    assert table.shape == (6, 8)
    assert torch.allclose(table[0], torch.tensor([0.0, 1.0] * 4))
    assert torch.allclose(table[:, 0], torch.sin(torch.arange(6.0)))
    assert len({tuple(row.tolist()) for row in table}) == 6  # distinct positions
    assert sinusoidal_positions(3, 5).shape == (3, 5)


# --- DCCA ------------------------------------------------------------------------------------------------------------

def test_dcca_is_lowest_for_perfectly_correlated_views():
    g = torch.Generator().manual_seed(0)
    m, d = 512, 4
    a = torch.randn(m, d, generator=g)
    mix = torch.randn(d, d, generator=g) + 2 * torch.eye(d)
    identical = dcca_loss(a, a)
    linear = dcca_loss(a, a @ mix + 3.0)
    partial = dcca_loss(a, a + 1.5 * torch.randn(m, d, generator=g))
    independent = dcca_loss(a, torch.randn(m, d, generator=g))
    assert identical.item() == pytest.approx(-d, abs=0.02)
    assert linear.item() == pytest.approx(-d, abs=0.02)
    assert identical < partial < independent
    assert independent.item() > -0.6
    assert dcca_loss(a, a, out_dim=1).item() == pytest.approx(-1, abs=0.01)


def test_dcca_term_tells_correlated_from_independent_views_at_batch_32():
    """Issue 14: at the within-subject batch of 32, CCA over the 64-d representations cannot tell views apart
    (n < d: independent and correlated views both score ~0.48 of the maximum). The model therefore computes
    DCCA on ``dcca_dim``-d projections (default 2): independent views score near 0, correlated near the maximum."""
    model = MultimodalSSTMA(SHAPES, 3, mode="concat", hidden=64, dim=8, depth=1, heads=2)
    k = model.dcca_projection[0].out_features
    assert k == 2
    g = torch.Generator().manual_seed(0)
    project = [lambda h, p=p: p(h) for p in model.dcca_projection]
    with torch.no_grad():
        independent, correlated, unprojected = [], [], []
        for _ in range(40):
            a, b = torch.randn(32, 64, generator=g), torch.randn(32, 64, generator=g)
            independent.append(-dcca_loss(project[0](a), project[1](b)).item() / k)
            z = torch.randn(32, 64, generator=g)
            unprojected.append((-dcca_loss(z, z + 0.1 * torch.randn(32, 64, generator=g)).item() / 64,
                                -dcca_loss(a, b).item() / 64))
            shared = torch.randn(32, k, generator=g)  # the views agree along what the projections read
            a2 = a.clone()
            b2 = b.clone()
            a2 = a2 + (shared - project[0](a)) @ torch.linalg.pinv(model.dcca_projection[0].weight).T
            b2 = b2 + (shared - project[1](b)) @ torch.linalg.pinv(model.dcca_projection[1].weight).T
            correlated.append(-dcca_loss(project[0](a2), project[1](b2) + 0.05 * torch.randn(32, k, generator=g)
                                         ).item() / k)
    assert sum(independent) / 40 < 0.3 and sum(correlated) / 40 > 0.95
    same, noise = (sum(u[i] for u in unprojected) / 40 for i in (0, 1))
    assert abs(same - noise) < 0.05  # the 64-d term is blind at this batch size


def test_dcca_of_one_dimensional_views_is_minus_abs_pearson():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(200, 1, generator=g, dtype=torch.float64)
    b = -0.5 * a + torch.randn(200, 1, generator=g, dtype=torch.float64)
    r = torch.corrcoef(torch.cat([a, b], dim=1).T)[0, 1]
    assert dcca_loss(a, b, reg=1e-10).item() == pytest.approx(-abs(r.item()), abs=1e-6)


@pytest.mark.parametrize("batch", [2, 3, 16])
def test_dcca_is_finite_with_gradients_on_small_batches_and_constant_columns(batch):
    g = torch.Generator().manual_seed(batch)
    a = torch.randn(batch, 6, generator=g).requires_grad_()
    b = torch.randn(batch, 5, generator=g)
    b[:, 1] = 2.0
    b[:, 3] = -1.0  # two constant columns: a repeated eigenvalue of S22
    b.requires_grad_()
    loss = dcca_loss(a, b)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    assert a.grad.abs().sum() > 0


def test_dcca_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(8, 4, generator=g, dtype=torch.float64)
    b[:, 0] = 1.0
    b[:, 2] = 1.0
    b.requires_grad_()
    assert torch.autograd.gradcheck(lambda u, v: dcca_loss(u, v), (a, b))
    assert torch.autograd.gradcheck(lambda u, v: dcca_loss(u, v, out_dim=2), (a, b))


# --- fusion ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [2, 3])
def test_attention_fusion_weights(k):
    torch.manual_seed(0)
    fusion = AttentionFusion(16)
    features = 3 * torch.randn(5, k, 16)
    fused, weights = fusion(features)
    assert fused.shape == (5, 16) and weights.shape == (5, k)
    assert ((weights >= 0) & (weights <= 1)).all()
    assert torch.allclose(weights.sum(dim=1), torch.ones(5))
    expected = torch.softmax(torch.tanh(features) @ fusion.w, dim=1)
    assert torch.allclose(weights, expected)
    assert torch.allclose(fused, torch.einsum("bk,bkd->bd", expected, features), atol=1e-6)
    assert torch.equal(fusion.last_weights, weights.detach())
    assert not torch.allclose(weights, torch.full_like(weights, 1 / k))  # depends on the input


def test_score_fusion_weights():
    torch.manual_seed(0)
    reps = [3 * torch.randn(5, 16) for _ in range(3)]
    for fusion in (ScoreFusion(16, n_inputs=3), ScoreFusion(16)):
        fused, weights = fusion(reps)
        assert fused.shape == (5, 16) and weights.shape == (5, 3)
        assert ((weights >= 0) & (weights <= 1)).all()
        assert torch.allclose(weights.sum(dim=1), torch.ones(5))
        assert torch.allclose(fused, sum(weights[:, i:i + 1] * r for i, r in enumerate(reps)), atol=1e-6)
        assert not torch.allclose(weights[0], weights[1])  # per-sample weights
    with pytest.raises(ConfigError):
        ScoreFusion(16, n_inputs=2)(reps)


# --- model ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode,has_aux", [("eeg", False), ("eye", False), ("concat", True), ("attention", True)])
def test_forward_and_auxiliary_loss(mode, has_aux):
    model = make(mode).train()
    x, eye = inputs()
    logits = model(None if mode == "eye" else x, eye=None if mode == "eeg" else eye)
    assert logits.shape == (4, 3)
    aux = model.auxiliary_loss()
    if not has_aux:
        assert aux is None
        logits.sum().backward()
        return
    assert isinstance(aux, torch.Tensor) and aux.dim() == 0 and torch.isfinite(aux) and aux.requires_grad
    aux.backward()
    for extractor in (model.eeg_extractor, model.eye_extractor):  # DCCA trains both views
        assert extractor.project.weight.grad.abs().sum() > 0
    model.eval()
    model(x, eye)
    assert model.auxiliary_loss() is None  # training only


def test_dcca_weight_scales_the_auxiliary_loss():
    x, eye = inputs(8)
    losses = {}
    for w in (0.1, 0.3):
        model = make("concat", dropout=0.0, dcca_weight=w).train()
        model(x, eye)
        losses[w] = model.auxiliary_loss().item()
    assert losses[0.3] == pytest.approx(3 * losses[0.1], rel=1e-5)
    model = make("concat", dcca_weight=0.0).train()
    model(x, eye)
    assert model.auxiliary_loss() is None


def test_masked_reconstruction_loss_depends_only_on_masked_channels(monkeypatch):
    model = make("eeg").eval()
    x, _ = inputs()
    captured = {}
    original = model.reconstruct

    def spy(*args, **kwargs):
        reconstruction, mask = original(*args, **kwargs)
        reconstruction.retain_grad()
        captured.update(reconstruction=reconstruction, mask=mask)
        return reconstruction, mask

    monkeypatch.setattr(model, "reconstruct", spy)
    loss = model.masked_reconstruction_loss(x, mask_ratio=0.5, generator=torch.Generator().manual_seed(6))
    loss.backward()
    reconstruction, mask = captured["reconstruction"], captured["mask"]
    grad = reconstruction.grad.permute(0, 2, 1, 3)  # (batch, C, T, F), indexable by the mask
    assert (mask.sum(dim=1) == 4).all()
    assert torch.count_nonzero(grad[~mask]) == 0
    assert torch.count_nonzero(grad[mask]) == grad[mask].numel()
    diff = (reconstruction - x).permute(0, 2, 1, 3)
    assert loss.item() == pytest.approx((diff[mask] ** 2).mean().item(), rel=1e-5)


def test_masked_mse_ignores_unmasked_targets():
    g = torch.Generator().manual_seed(7)
    reconstruction = torch.randn(3, N, C, F, generator=g)
    target = torch.randn(3, N, C, F, generator=g)
    mask = torch.zeros(3, C, dtype=torch.bool)
    mask[:, :3] = True
    loss = masked_mse(reconstruction, target, mask)
    changed = target.clone()
    changed[:, :, 3:] += 10.0
    assert masked_mse(reconstruction, changed, mask) == loss
    changed[:, :, 0] += 1.0
    assert masked_mse(reconstruction, changed, mask) != loss
    assert masked_mse(reconstruction, target, torch.zeros_like(mask)).item() == 0.0


@pytest.mark.parametrize("kwargs,match", [
    (dict(mask_ratio=1.5), r"The 'mask_ratio' parameter must be a float in \[0, 1\). Got 1.5 instead."),
    (dict(train_mask_ratio=-0.1), "train_mask_ratio"),
    (dict(mode="fusion"), "mode"),
    (dict(head_dim=0), "'head_dim' parameter must be a positive integer"),
    (dict(eye_embedding="table"), "eye_embedding"),
    (dict(dcca_dim=17), "'dcca_dim' parameter must be at most hidden=16"),
    (dict(eval_mask_ratio=1.0), "eval_mask_ratio"),
    (dict(depth=0), "'depth' parameter must be a positive integer"),
    (dict(kernel_sizes=(7, 0, 3)), "kernel_sizes"),
    (dict(dcca_weight=-1.0), "dcca_weight"),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        MultimodalSSTMA(SHAPES, 3, **{**SMALL, **kwargs})


def test_eye_shape_required_for_eye_modes():
    with pytest.raises(ConfigError, match="eye"):
        MultimodalSSTMA({"x": (N, C, F)}, 3, mode="attention", **SMALL)
    assert MultimodalSSTMA({"x": (N, C, F)}, 3, mode="eeg", **SMALL).eye_extractor is None
    with pytest.raises(ConfigError, match="no eeg extractor"):
        make("eye").reconstruct(inputs()[0])

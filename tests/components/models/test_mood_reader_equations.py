"""Mood Reader's equations, one mechanism each (Dong et al. 2024, §3.3 Eqs 1–4, §3.4 Eqs 5–8, §3.5)."""
from __future__ import annotations

import pytest

from moodops.components.models import create_model

torch = pytest.importorskip("torch")

from moodops.components.models.blocks import AttentionBlock  # noqa: E402
from moodops.components.models.fusion import FeatureScoreFusion  # noqa: E402

SHAPES = {"x": (4, 8, 3), "raw": (4, 8, 64), "eye": (4, 6)}
SMALL = {"dim": 16, "heads": 2, "encoder_dim": 16, "encoder_heads": 2, "fusion_dim": 32}


def test_eq4_the_residual_adds_the_normalised_input():
    torch.manual_seed(0)
    block = AttentionBlock(16, 2, dropout=0.0).eval()
    x = 50.0 + 10.0 * torch.randn(3, 5, 16)  # far from normalised: the two residuals differ a lot
    with torch.no_grad():
        normed = block.norm_in(x)  # Eq. 1
        a, _ = block.attention(normed, normed, normed)  # Eqs 2-3
        want = block.norm_out(a + normed)  # Eq. 4
        unnormalised = block.norm_out(a + x)
        got = block(x)
    torch.testing.assert_close(got, want)
    assert (got - unnormalised).abs().max() > 0.5


def test_eqs5_to_7_weigh_each_feature_by_a_softmax_across_the_inputs():
    torch.manual_seed(1)
    fusion = FeatureScoreFusion(4, 2)
    a, b = torch.randn(6, 4), torch.randn(6, 4)
    fused, c = fusion([a, b])
    score_a, score_b = a @ fusion.weight[0], b @ fusion.weight[1]  # Eq. 5, W ∈ R^{D×D}
    c_a = torch.exp(score_a) / (torch.exp(score_a) + torch.exp(score_b))  # Eq. 6
    torch.testing.assert_close(c[:, 0], c_a)
    torch.testing.assert_close(fused, c_a * a + (1 - c_a) * b)  # Eq. 7, elementwise
    # a matrix that scores input a's feature 2 high gives a, and only a, feature 2
    with torch.no_grad():
        fusion.weight.zero_()
        fusion.weight[0, :, 2] = 100.0 * torch.sign(a.mean(0).sum()) * torch.ones(4)
    ones = torch.ones(6, 4)
    _, c = fusion([ones, ones])
    assert torch.all(c[:, 0, 2] > 0.99 if a.mean(0).sum() > 0 else c[:, 0, 2] < 0.01)
    torch.testing.assert_close(c[:, :, [0, 1, 3]], torch.full((6, 2, 3), 0.5))


def test_level_one_prepares_each_input_with_a_linear_layer_and_layernorm():
    model = create_model("mood_reader", SHAPES, 2, variant="full", **SMALL).eval()
    g = torch.Generator().manual_seed(0)
    data = {k: torch.randn(5, *s, generator=g) for k, s in SHAPES.items()}
    seen = {}

    def keep(name, pick):  # a hook that records and returns None (a returned value would replace the output)
        return lambda module, args, out: seen.__setitem__(name, pick(args, out))

    model.level1.register_forward_hook(keep("level1", lambda args, out: args[0]))
    model.head.register_forward_hook(keep("head", lambda args, out: args[0]))
    model.final_attention.register_forward_hook(keep("m", lambda args, out: out[0]))
    with torch.no_grad():
        model(data["x"], raw=data["raw"], eye=data["eye"])
        reps = model.representations(data["x"], data["raw"], data["eye"])
        projected = model.project[0](reps[0])
        prepared = model.prepare[0][1](model.prepare[0][0](projected))  # linear, then LayerNorm
    torch.testing.assert_close(seen["level1"][0], prepared)
    assert torch.allclose(seen["level1"][0].mean(-1), torch.zeros(5), atol=1e-5)  # LayerNorm-ed
    # Eq. 8: the classifier sees the attention output itself (no residual), flattened
    torch.testing.assert_close(seen["head"], seen["m"].flatten(1))


def test_electrode_attention_is_a_distribution_over_channels():
    model = create_model("mood_reader", SHAPES, 2, variant="stib_cf", **SMALL).eval()
    x = torch.randn(7, *SHAPES["x"])
    with torch.no_grad():
        att = model.electrode_attention(x)
    assert att.shape == (7, 8)
    torch.testing.assert_close(att.sum(dim=1), torch.ones(7))
    assert torch.all(att >= 0)

"""Prior-driven DFCN (Zheng et al. 2023) and the DGCNN baseline (Song et al. 2018): their parts."""
from __future__ import annotations

import math

import pytest

from moodops.components.errors import ConfigError
from moodops.components.models import create_model

torch = pytest.importorskip("torch")
F = torch.nn.functional

from moodops.components.models.dfcn import (  # noqa: E402
    NonLocalBlock3d,
    PriorDrivenDFCN,
    ResidualBlock3d,
)
from moodops.components.models.dgcnn import DGCNN, ChebyshevGraphConv, normalized_laplacian  # noqa: E402

B, N, C, D = 3, 4, 8, 6
SHAPES = {"x": (N, C, C), "face": (N, D)}


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(B, N, C, C, generator=g) * 2 - 1
    x = 0.5 * (x + x.transpose(-1, -2))  # connectivity-like: symmetric
    return x, torch.randn(B, N, D, generator=g)


def dfcn(**kwargs) -> PriorDrivenDFCN:
    torch.manual_seed(0)
    return PriorDrivenDFCN(SHAPES, 2, **kwargs).eval()


# --------------------------------------------------------------------------- DFCN: prior knowledge embedding


def _reference_prior(model: PriorDrivenDFCN, x: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """The PKE prior written out from the paper's equations, with the model's weights."""
    pke = model.pke
    d, m = pke.dim, pke.face_tokens
    faces = pke.face_embed(face).reshape(B, N, m, d)
    s_ef = F.softplus(torch.einsum("bnpd,bnmd->bnpm", pke.eeg_query(x), pke.face_key(faces)) / math.sqrt(d))
    s_fe = F.softplus(torch.einsum("bnmd,bnpd->bnmp", pke.face_query(faces), pke.eeg_key(x)) / math.sqrt(d))
    ef = s_ef @ pke.reduce_eeg_face.weight[0] + pke.reduce_eeg_face.bias
    fe = s_fe.transpose(-1, -2) @ pke.reduce_face_eeg.weight[0] + pke.reduce_face_eeg.bias
    return F.softplus(ef + fe)


def test_prior_follows_the_softplus_cross_attention(batch) -> None:
    x, face = batch
    model = dfcn()
    p = model.prior(x, face)
    assert p.shape == (B, N, C)
    torch.testing.assert_close(p, _reference_prior(model, x, face))


def test_prior_scales_connectivity_rows(batch) -> None:
    x, face = batch
    model = dfcn()
    p = model.prior(x, face)
    assert (p > 0).all() and p.std(dim=-1).min() > 1e-4  # differs across channels: rows vs columns matters
    scaled, p2 = model.pke(x, face)
    torch.testing.assert_close(p2, p)
    torch.testing.assert_close(scaled, x * p[..., :, None])  # row i of window n scaled by p[n, i]
    assert not torch.allclose(scaled, x)

    model(x, face=face)
    torch.testing.assert_close(model.last_prior, model.prior(x, face).detach())


def test_prior_stays_non_negative(batch) -> None:
    x, face = batch
    model = dfcn()
    with torch.no_grad():  # push the pre-activations far negative: softplus keeps p >= 0
        model.pke.reduce_eeg_face.bias.fill_(-30.0)
        model.pke.reduce_face_eeg.weight.mul_(-50.0)
    p = model.prior(x, face)
    assert (p >= 0).all()
    assert p.max() < 1e-3  # it really was pushed down


def test_prior_depends_on_the_face(batch) -> None:
    x, face = batch
    model = dfcn()
    other = face + torch.randn_like(face)
    assert not torch.allclose(model.prior(x, face), model.prior(x, other))
    assert not torch.allclose(model(x, face=face), model(x, face=other))
    # and on the EEG: each window's prior comes from that window only
    x2 = x.clone()
    x2[:, 1] += 0.5
    p, p2 = model.prior(x, face), model.prior(x2, face)
    assert not torch.allclose(p[:, 1], p2[:, 1])
    torch.testing.assert_close(p[:, [0, 2, 3]], p2[:, [0, 2, 3]])


def test_prior_variant_needs_face(batch) -> None:
    x, _ = batch
    with pytest.raises(ConfigError, match="face"):
        dfcn()(x)
    with pytest.raises(ConfigError, match="face"):
        PriorDrivenDFCN({"x": (N, C, C)}, 2, prior=True)
    with pytest.raises(ConfigError, match="N=4"):
        PriorDrivenDFCN({"x": (N, C, C), "face": (N + 1, D)}, 2)


def test_no_prior_never_touches_face(batch) -> None:
    x, face = batch
    model = dfcn(prior=False)
    assert model.pke is None and not any(name.startswith("pke") for name, _ in model.named_parameters())
    out = model(x)
    torch.testing.assert_close(model(x, face=object()), out)  # any access to it would raise
    torch.testing.assert_close(model.stfenet(x), out)  # the connectivity goes in unscaled
    assert model.last_prior is None
    # and it builds without a face shape at all
    PriorDrivenDFCN({"x": (N, C, C)}, 2, prior=False)


def test_needs_square_connectivity_input() -> None:
    with pytest.raises(ConfigError, match=r"needs connectivity input \(N, C, C\) \(--feature dfc\); got \(4, 8, 5\)"):
        PriorDrivenDFCN({"x": (N, C, 5), "face": (N, D)}, 2)


# --------------------------------------------------------------------------- DFCN: STFENet


def test_nonlocal_block_attends_globally() -> None:
    torch.manual_seed(0)
    block = NonLocalBlock3d(4).eval()
    h = torch.randn(2, 4, 3, 5, 5)
    out = block(h)
    assert out.shape == h.shape and not torch.allclose(out, h)
    # a change at one corner reaches the opposite corner in one step (1×1×1 maps alone would not)
    h2 = h.clone()
    h2[:, :, 0, 0, 0] += 3.0
    assert not torch.allclose(block(h2)[:, :, -1, -1, -1], out[:, :, -1, -1, -1])


def test_nonlocal_block_changes_the_model_and_can_be_left_out(batch) -> None:
    x, face = batch
    model = dfcn()
    assert isinstance(model.stfenet.nonlocal_block, NonLocalBlock3d)
    out = model(x, face=face)
    model.stfenet.nonlocal_block = None  # bypass it, same weights otherwise
    assert not torch.allclose(model(x, face=face), out)

    plain = dfcn(nonlocal_block=False)
    assert plain.stfenet.nonlocal_block is None
    assert not any("nonlocal" in name for name, _ in plain.named_parameters())
    assert not any(isinstance(m, NonLocalBlock3d) for m in plain.modules())
    n_nonlocal = sum(p.numel() for p in NonLocalBlock3d(16).parameters())
    assert sum(p.numel() for p in dfcn().parameters()) - sum(p.numel() for p in plain.parameters()) == n_nonlocal


def test_residual_block_shapes_and_shortcut() -> None:
    torch.manual_seed(0)
    h = torch.randn(2, 4, 3, 5, 5)
    widen = ResidualBlock3d(4, 8).eval()
    assert widen(h).shape == (2, 8, 3, 5, 5)
    assert isinstance(widen.shortcut, torch.nn.Sequential)  # 1×1×1 projection
    same = ResidualBlock3d(4, 4).eval()
    assert isinstance(same.shortcut, torch.nn.Identity)
    with torch.no_grad():  # silence the convolution path: what is left is the identity shortcut
        same.conv2.weight.zero_()
        same.bn2.bias.zero_()
    torch.testing.assert_close(same(h), F.relu(h))


@pytest.mark.parametrize("n", [1, 4, 5])
def test_short_sequences_and_gradients_reach_the_stem(n: int) -> None:
    torch.manual_seed(0)
    model = PriorDrivenDFCN({"x": (n, 5, 5), "face": (n, D)}, 3)
    x, face = torch.randn(2, n, 5, 5), torch.randn(2, n, D)
    logits = model(x, face=face)
    assert logits.shape == (2, 3)
    logits.sum().backward()
    stem = model.stfenet.stem[0].weight.grad
    assert stem is not None and stem.abs().sum() > 0
    assert model.pke.face_embed.weight.grad.abs().sum() > 0  # the prior is trained through the CNN


def test_registry_variants_build_and_run(batch) -> None:
    x, face = batch
    for variant, extras in [("full", {"face": face}), ("no_prior", {}), ("no_nonlocal", {"face": face})]:
        model = create_model("dfcn", SHAPES, 2, variant=variant, channels=(4, 8), hidden=16).eval()
        assert model(x, **extras).shape == (B, 2)


# --------------------------------------------------------------------------- DGCNN


def test_normalized_laplacian_of_a_path_graph() -> None:
    path = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # degrees 1, 2, 1
    r = 1 / math.sqrt(2)
    expected = torch.tensor([[1.0, -r, 0.0], [-r, 1.0, -r], [0.0, -r, 1.0]])
    torch.testing.assert_close(normalized_laplacian(path), expected)


def test_isolated_node_gets_an_identity_row() -> None:
    adjacency = torch.tensor([[0.0, 2.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    lap = normalized_laplacian(adjacency)
    assert torch.isfinite(lap).all()
    torch.testing.assert_close(lap[2], torch.tensor([0.0, 0.0, 1.0]))
    torch.testing.assert_close(lap[:2, :2], torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
    # the zero-degree guard must not leak NaN into the gradient either
    weight = adjacency.clone().requires_grad_()
    (normalized_laplacian(weight) * torch.randn(3, 3)).sum().backward()
    assert torch.isfinite(weight.grad).all()


def test_learned_adjacency_is_non_negative_symmetric_and_gets_gradients() -> None:
    torch.manual_seed(0)
    model = DGCNN({"x": (2, C, 5)}, 3)
    with torch.no_grad():
        model.adjacency_weight.copy_(torch.randn(C, C))  # negative and asymmetric entries
    a = model.adjacency()
    assert (a >= 0).all()
    torch.testing.assert_close(a, a.T)
    torch.testing.assert_close(model.laplacian(), normalized_laplacian(a))
    logits = model(torch.randn(4, 2, C, 5))
    assert logits.shape == (4, 3)
    F.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
    grad = model.adjacency_weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_chebyshev_filter_matches_the_polynomials() -> None:
    torch.manual_seed(0)
    conv = ChebyshevGraphConv(4, 3, order=3)
    w = torch.rand(5, 5)
    lap = normalized_laplacian(0.5 * (w + w.T))
    x = torch.randn(2, 5, 4)
    lt = lap - torch.eye(5)
    polys = [torch.eye(5), lt, 2 * lt @ lt - torch.eye(5)]
    expected = sum(t @ x @ conv.weights[k] for k, t in enumerate(polys)) + conv.bias
    torch.testing.assert_close(conv(x, lap), expected)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_order_k_mixes_nodes_up_to_k_minus_one_hops(order: int) -> None:
    torch.manual_seed(0)
    model = DGCNN({"x": (1, 5, 3)}, 2, order=order)
    path = torch.diag(torch.ones(4), 1)  # 0 - 1 - 2 - 3 - 4, stored one-sided: adjacency() symmetrises
    with torch.no_grad():
        model.adjacency_weight.copy_(path)
    x = torch.randn(1, 1, 5, 3)
    x2 = x.clone()
    x2[0, 0, 0] += 1.0  # perturb node 0 only
    lap = model.laplacian()
    changed = (model.graph_conv(model.node_features(x2), lap)
               - model.graph_conv(model.node_features(x), lap)).abs().sum(-1)[0] > 1e-6
    assert changed.tolist() == [hop < order for hop in range(5)]


def test_graph_layers_are_permutation_equivariant() -> None:
    torch.manual_seed(0)
    model = DGCNN({"x": (2, 6, 4)}, 2)
    x = torch.randn(3, 2, 6, 4)
    perm = torch.randperm(6)
    out = model.graph_features(x)
    with torch.no_grad():
        model.adjacency_weight.copy_(model.adjacency_weight[perm][:, perm])
    torch.testing.assert_close(model.graph_features(x[:, :, perm]), out[:, perm])


def test_node_features_flatten_windows_and_bands() -> None:
    model = DGCNN({"x": (3, 4, 5)}, 2)
    x = torch.randn(2, 3, 4, 5)
    nodes = model.node_features(x)
    assert nodes.shape == (2, 4, 15)
    torch.testing.assert_close(nodes[1, 2], x[1, :, 2, :].reshape(-1))


def test_dgcnn_bad_values() -> None:
    with pytest.raises(ConfigError, match="order"):
        DGCNN({"x": (1, 4, 5)}, 2, order=0)
    with pytest.raises(ConfigError, match="hidden"):
        DGCNN({"x": (1, 4, 5)}, 2, hidden=0)
    assert create_model("dgcnn", {"x": (1, 4, 5)}, 2, hidden=8, order=3)(torch.randn(2, 1, 4, 5)).shape == (2, 2)

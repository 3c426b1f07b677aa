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
    STFENet,
)
from moodops.components.models.dgcnn import DGCNN, ChebyshevGraphConv, normalized_laplacian  # noqa: E402

B, N, C, NB, D = 3, 4, 8, 5, 6  # batch, windows, EEG channels, PSD bands, face channels
SHAPES = {"x": (N, C, C), "psd": (N, C, NB), "face": (N, D)}


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(B, N, C, C, generator=g) * 2 - 1
    x = 0.5 * (x + x.transpose(-1, -2))  # connectivity-like: symmetric
    return x, torch.randn(B, N, C, NB, generator=g), torch.randn(B, N, D, generator=g)


def dfcn(**kwargs) -> PriorDrivenDFCN:
    torch.manual_seed(0)
    return PriorDrivenDFCN(SHAPES, 2, **kwargs).eval()


# --------------------------------------------------------------------------- DFCN: prior knowledge embedding


def _reference_prior(model: PriorDrivenDFCN, psd: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """Eqs 2-6 written out with einsum and the model's weights (the docstring's P x P reading)."""
    pke = model.pke
    d = pke.dim
    tokens = torch.einsum("bnk,kd->bnkd", face, pke.face_weight) + pke.face_bias  # each face channel its own map
    q_e, k_e = pke.eeg_query(psd), pke.eeg_key(psd)  # Eq. 2: (b, N, P, d)
    q_f, k_f = pke.face_query(tokens), pke.face_key(tokens)  # Eq. 3: (b, N, P_F, d)
    cor_ef = torch.einsum("bnpd,bnkd->bnpk", q_e, k_f) / math.sqrt(d)  # Eq. 4
    cor_fe = torch.einsum("bnkd,bnpd->bnkp", q_f, k_e) / math.sqrt(d)
    s = F.softplus(cor_ef + cor_fe.transpose(-1, -2))  # Eq. 5, once
    return torch.einsum("bnik,bnjk->bnij", s, s) / D


def test_prior_is_eqs_2_to_5_and_p_by_p(batch) -> None:
    x, psd, face = batch
    model = dfcn()
    p = model.prior(psd, face)
    assert p.shape == (B, N, C, C)
    torch.testing.assert_close(p, _reference_prior(model, psd, face))
    torch.testing.assert_close(p, p.transpose(-1, -2))
    assert (p >= 0).all() and p.std() > 1e-3  # it varies across electrode pairs


def test_prior_multiplies_the_raw_pearson_values_element_wise(batch) -> None:
    x, psd, face = batch
    model = dfcn()
    p = model.prior(psd, face)
    scaled, p2 = model.pke(x, psd, face)
    torch.testing.assert_close(p2, p)
    torch.testing.assert_close(scaled, x * p)  # Eq. 6
    captured = {}
    model.stfenet.register_forward_pre_hook(lambda _m, args: captured.setdefault("x", args[0]))
    model(x, psd=psd, face=face)
    torch.testing.assert_close(captured["x"], x * p)  # what STFENet reads
    torch.testing.assert_close(model.last_prior, p.detach())


def test_the_run_hands_the_model_raw_pearson_values() -> None:
    from moodops.components.models import MODELS

    assert MODELS.get("dfcn").unscaled_inputs == ("x",)  # not z-scored on the training part (evaluate.py)


def test_prior_stays_non_negative_under_any_weights(batch) -> None:
    _, psd, face = batch
    model = dfcn()
    with torch.no_grad():  # push the Eq. 5 pre-activations far negative: softplus keeps S >= 0
        model.pke.eeg_query.bias.fill_(-30.0)
        model.pke.face_query.bias.fill_(-30.0)
        model.pke.face_key.bias.fill_(30.0)
        model.pke.eeg_key.bias.fill_(30.0)
    p = model.prior(psd, face)
    assert (p >= 0).all()
    assert p.max() < 1e-3  # it really was pushed down


def test_prior_depends_on_the_face_and_the_eeg_of_its_own_window(batch) -> None:
    x, psd, face = batch
    model = dfcn()
    other = face + torch.randn_like(face)
    assert not torch.allclose(model.prior(psd, face), model.prior(psd, other))
    assert not torch.allclose(model(x, psd=psd, face=face), model(x, psd=psd, face=other))
    psd2 = psd.clone()
    psd2[:, 1] += 0.5
    p, p2 = model.prior(psd, face), model.prior(psd2, face)
    assert not torch.allclose(p[:, 1], p2[:, 1])
    torch.testing.assert_close(p[:, [0, 2, 3]], p2[:, [0, 2, 3]])
    # the connectivity does not enter the prior (Eqs 2-3 read x^E and x^F only)
    torch.testing.assert_close(model.pke(x, psd, face)[1], model.pke(-x, psd, face)[1])


def test_prior_variants_need_psd_and_face(batch) -> None:
    x, psd, _ = batch
    with pytest.raises(ConfigError, match="'psd' .*and 'face'"):
        dfcn()(x, psd=psd)
    with pytest.raises(ConfigError, match="input 'face'"):
        PriorDrivenDFCN({"x": (N, C, C), "psd": (N, C, NB)}, 2, prior=True)
    with pytest.raises(ConfigError, match="input 'psd'"):
        PriorDrivenDFCN({"x": (N, C, C), "face": (N, D)}, 2, prior=True)
    with pytest.raises(ConfigError, match="N=4"):
        PriorDrivenDFCN({**SHAPES, "face": (N + 1, D)}, 2)
    with pytest.raises(ConfigError, match="P=8"):
        PriorDrivenDFCN({**SHAPES, "psd": (N, C + 1, NB)}, 2)


def test_no_prior_never_touches_psd_or_face(batch) -> None:
    x, _, _ = batch
    model = dfcn(prior=False)
    assert model.pke is None and not any(name.startswith("pke") for name, _ in model.named_parameters())
    out = model(x)
    torch.testing.assert_close(model(x, psd=object(), face=object()), out)  # any access to them would raise
    torch.testing.assert_close(model.stfenet(x), out)  # the connectivity goes in unscaled
    assert model.last_prior is None
    PriorDrivenDFCN({"x": (N, C, C)}, 2, prior=False)  # builds without their shapes


def test_needs_square_connectivity_input() -> None:
    with pytest.raises(ConfigError, match=r"needs connectivity input \(N, C, C\) \(--feature dfc\); got \(4, 8, 5\)"):
        PriorDrivenDFCN({**SHAPES, "x": (N, C, 5)}, 2)


# --------------------------------------------------------------------------- DFCN: STFENet and its ablations


def test_nonlocal_block_attends_globally() -> None:
    torch.manual_seed(0)
    block = NonLocalBlock3d(4).eval()
    h = torch.randn(2, 4, 3, 5, 5)
    out = block(h)
    assert out.shape == h.shape and not torch.allclose(out, h)
    # a change at one corner reaches the opposite corner in one step (1x1x1 maps alone would not)
    h2 = h.clone()
    h2[:, :, 0, 0, 0] += 3.0
    assert not torch.allclose(block(h2)[:, :, -1, -1, -1], out[:, :, -1, -1, -1])


def test_nonlocal_block_changes_the_model_and_can_be_left_out(batch) -> None:
    x, psd, face = batch
    model = dfcn()
    assert isinstance(model.stfenet.nonlocal_block, NonLocalBlock3d)
    out = model(x, psd=psd, face=face)
    model.stfenet.nonlocal_block = None  # bypass it, same weights otherwise
    assert not torch.allclose(model(x, psd=psd, face=face), out)

    plain = dfcn(nonlocal_block=False)
    assert plain.stfenet.nonlocal_block is None
    assert not any(isinstance(m, NonLocalBlock3d) for m in plain.modules())
    n_nonlocal = sum(p.numel() for p in NonLocalBlock3d(16).parameters())
    assert sum(p.numel() for p in dfcn().parameters()) - sum(p.numel() for p in plain.parameters()) == n_nonlocal


def test_plain2d_reads_each_window_on_its_own_stfenet_does_not(batch) -> None:
    x, _, _ = batch
    for extractor, crosses in (("plain2d", False), ("stfenet", True)):
        torch.manual_seed(0)
        net = STFENet(2, (4, 8), nonlocal_block=False, extractor=extractor).eval()
        x2 = x.clone()
        x2[:, 0] += 1.0  # change window 0 only
        for layer in ("stem", "features"):
            run = (lambda v: net.stem(v.unsqueeze(1))) if layer == "stem" else net.features
            h, h2 = run(x), run(x2)
            assert not torch.allclose(h2[:, :, 0], h[:, :, 0])
            if h.shape[2] > 1:
                # plain2d keeps the windows apart (1x3x3 kernels, 1x2x2 pooling); 3D kernels carry the change on
                assert (not torch.allclose(h2[:, :, 1:], h[:, :, 1:])) == crosses, (extractor, layer)
        assert (net.features(x).shape[2] == x.shape[1]) != crosses  # STFENet also pools over windows
    assert not any(isinstance(m, (ResidualBlock3d, NonLocalBlock3d))
                   for m in STFENet(2, (4, 8), extractor="plain2d").modules())
    with pytest.raises(ConfigError, match="extractor"):
        STFENet(2, extractor="lstm")


def test_each_ablation_changes_exactly_its_part() -> None:
    from moodops.components.models import MODELS

    def parts(variant: str) -> dict[str, object]:
        model = create_model("dfcn", SHAPES, 2, variant=variant, channels=(4, 8), hidden=16)
        return {"pke": model.pke is not None,
                "residual": any(isinstance(m, ResidualBlock3d) for m in model.modules()),
                "nonlocal": model.stfenet.nonlocal_block is not None,
                "kernel": tuple(model.stfenet.stem[0].kernel_size)}

    full = parts("full")
    assert full == {"pke": True, "residual": True, "nonlocal": True, "kernel": (3, 3, 3)}
    assert parts("no_prior") == {**full, "pke": False}
    assert parts("no_nonlocal") == {**full, "nonlocal": False}
    assert parts("no_stfenet") == {**full, "residual": False, "nonlocal": False, "kernel": (1, 3, 3)}
    assert parts("baseline") == {**parts("no_stfenet"), "pke": False}
    assert [v.name for v in MODELS.get("dfcn").variants] == ["full", "no_nonlocal", "no_stfenet", "no_prior",
                                                             "baseline"]
    assert MODELS.get("dfcn").variant("baseline").inputs == ("x",)


def test_residual_block_shapes_and_shortcut() -> None:
    torch.manual_seed(0)
    h = torch.randn(2, 4, 3, 5, 5)
    widen = ResidualBlock3d(4, 8).eval()
    assert widen(h).shape == (2, 8, 3, 5, 5)
    assert isinstance(widen.shortcut, torch.nn.Sequential)  # 1x1x1 projection
    same = ResidualBlock3d(4, 4).eval()
    assert isinstance(same.shortcut, torch.nn.Identity)
    with torch.no_grad():  # silence the convolution path: what is left is the identity shortcut
        same.conv2.weight.zero_()
        same.bn2.bias.zero_()
    torch.testing.assert_close(same(h), F.relu(h))


@pytest.mark.parametrize("n", [1, 4, 5])
def test_short_sequences_and_gradients_reach_the_stem_and_the_prior(n: int) -> None:
    torch.manual_seed(0)
    model = PriorDrivenDFCN({"x": (n, 5, 5), "psd": (n, 5, NB), "face": (n, D)}, 3)
    logits = model(torch.randn(2, n, 5, 5), psd=torch.randn(2, n, 5, NB), face=torch.randn(2, n, D))
    assert logits.shape == (2, 3)
    logits.sum().backward()
    stem = model.stfenet.stem[0].weight.grad
    assert stem is not None and stem.abs().sum() > 0
    assert model.pke.face_weight.grad.abs().sum() > 0  # the prior is trained through the CNN
    assert model.pke.eeg_query.weight.grad.abs().sum() > 0


def test_registry_variants_build_and_run(batch) -> None:
    from moodops.components.models import MODELS

    x, psd, face = batch
    for v in MODELS.get("dfcn").variants:
        extras = {k: {"psd": psd, "face": face}[k] for k in v.extras}
        model = create_model("dfcn", SHAPES, 2, variant=v.name, channels=(4, 8), hidden=16).eval()
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

"""Registry-driven tests: every registered model and variant, on the device in MOODOPS_TEST_DEVICE.

Adding a model to the registry without a row in ``SETTINGS`` fails
``test_every_model_has_a_test_case``.
"""
from __future__ import annotations

import io
import math
import os

import numpy as np
import pytest

from multimodal_data import holdout

from moodops.components.models import MODELS, create_model
from moodops.pipelines.evaluate import load_fold_model, run_fold
from moodops.pipelines.train import TrainConfig

torch = pytest.importorskip("torch")

DEVICE = os.environ.get("MOODOPS_TEST_DEVICE", "cpu")

# Per model: windows per sample in the tests, small hyperparameters, training settings for the
# short run that must beat chance.
SETTINGS = {
    "mood_reader": dict(n_windows=4, params={"dim": 16, "heads": 2, "encoder_dim": 16, "encoder_heads": 2,
                                             "fusion_dim": 32}, epochs=25, lr=3e-3),
    "mv_sstma": dict(n_windows=4, params={"depth": 1, "heads": 2}, epochs=25, lr=3e-3),
    "dfcn": dict(n_windows=4, params={}, epochs=25, lr=1e-3),
    "dgcnn": dict(n_windows=1, params={}, epochs=30, lr=3e-3),
    "svm": dict(n_windows=2, params={}, epochs=1, lr=1e-3),
    "linear": dict(n_windows=4, params={}, epochs=30, lr=1e-2),
}
CASES = [(name, v.name) for name in MODELS.names() for v in MODELS.get(name).variants]
TORCH_CASES = [c for c in CASES if MODELS.get(c[0]).framework == "torch"]


def case_id(case) -> str:
    return f"{case[0]}-{case[1]}"


@pytest.fixture(scope="module")
def device():
    dev = torch.device(DEVICE)
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"MOODOPS_TEST_DEVICE={DEVICE} but CUDA is not available")
    return dev


def shapes_for(name: str, n_windows: int | None = None, channels: int = 8) -> dict[str, tuple[int, ...]]:
    n = n_windows or SETTINGS[name]["n_windows"]
    f = channels if "dfc" in MODELS.get(name).features else 3
    return {"x": (n, channels, f), "raw": (n, channels, 64), "eye": (n, 6), "face": (n, 5), "psd": (n, channels, 3)}


def random_inputs(name: str, variant: str, batch: int, device, seed: int = 0) -> tuple[dict, dict]:
    shapes = shapes_for(name)
    g = torch.Generator().manual_seed(seed)
    inputs = {k: torch.randn(batch, *s, generator=g).to(device) for k, s in shapes.items()}
    v = MODELS.get(name).variant(variant)
    return inputs["x"], {k: inputs[k] for k in v.extras}


def build(name: str, variant: str, n_classes: int, device, seed: int = 0):
    torch.manual_seed(seed)
    return create_model(name, shapes_for(name), n_classes, variant=variant, **SETTINGS[name]["params"]).to(device)


def test_every_model_has_a_test_case():
    assert set(SETTINGS) == set(MODELS.names()), "add a SETTINGS row for every registered model"
    assert len(CASES) >= 19  # 7 Mood Reader, 4 MV-SSTMA, 5 DFCN variants and 3 baselines


@pytest.mark.parametrize("case", TORCH_CASES, ids=case_id)
@pytest.mark.parametrize("n_classes", [2, 5])
def test_forward_and_backward(case, n_classes, device):
    name, variant = case
    model = build(name, variant, n_classes, device)
    x, extras = random_inputs(name, variant, 6, device)
    model.train()
    logits = model(x, **extras)
    assert logits.shape == (6, n_classes) and logits.device.type == device.type
    assert torch.isfinite(logits).all()
    loss = torch.nn.functional.cross_entropy(logits, torch.arange(6, device=device) % n_classes)
    aux = model.auxiliary_loss() if hasattr(model, "auxiliary_loss") else None
    if aux is not None:
        assert torch.isfinite(aux)
        loss = loss + aux
    loss.backward()
    # Decoders and mask tokens serve masked pretraining only.
    trainable = [p for n, p in model.named_parameters() if p.requires_grad and "decoder" not in n
                 and "mask_token" not in n]
    with_grad = [p for p in trainable if p.grad is not None and p.grad.abs().sum() > 0]
    assert all(torch.isfinite(p.grad).all() for p in with_grad)
    # Nearly every parameter learns: an input branch that is built but never used would show here.
    assert len(with_grad) >= 0.9 * len(trainable), f"{len(trainable) - len(with_grad)} parameters got no gradient"


@pytest.mark.parametrize("case", TORCH_CASES, ids=case_id)
def test_outputs_depend_on_every_declared_input(case, device):
    name, variant = case
    model = build(name, variant, 3, device).eval()
    x, extras = random_inputs(name, variant, 4, device)
    inputs = {"x": x, **extras}
    uses = MODELS.get(name).variant(variant).inputs
    with torch.no_grad():
        base = model(x, **extras)
        for key in uses:
            changed = dict(inputs, **{key: inputs[key] + torch.randn_like(inputs[key])})
            out = model(changed.pop("x"), **changed)
            assert not torch.allclose(base, out), f"output ignores input '{key}'"


@pytest.mark.parametrize("case", TORCH_CASES, ids=case_id)
def test_determinism_under_a_fixed_seed(case, device):
    name, variant = case
    a, b = build(name, variant, 3, device, seed=11), build(name, variant, 3, device, seed=11)
    for (ka, pa), (kb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(pa, pb)
    c = build(name, variant, 3, device, seed=12)
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))
    x, extras = random_inputs(name, variant, 5, device)
    with torch.no_grad():
        assert torch.equal(a.eval()(x, **extras), b.eval()(x, **extras))
    # Batch composition must not change a sample's output in eval mode.
    with torch.no_grad():
        one = a(x[:1], **{k: v[:1] for k, v in extras.items()})
        assert torch.allclose(one, a(x, **extras)[:1], atol=1e-5)


def n_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("case", TORCH_CASES, ids=case_id)
def test_parameter_count_fits_a_cpu(case):
    """Default sizes on a DEAP-like input (32 channels) stay small enough to train on a CPU."""
    name, variant = case
    shapes = shapes_for(name, n_windows=MODELS.get(name).run_defaults.get("seq_len", 4), channels=32)
    shapes["raw"] = (shapes["x"][0], 32, 128)
    model = create_model(name, shapes, 2, variant=variant)
    count = n_parameters(model)
    if name == "linear":  # logistic regression: one weight per input value and class, plus biases
        inputs = MODELS.get(name).variant(variant).inputs
        assert count == (sum(math.prod(shapes[k]) for k in inputs) + 1) * 2
    else:
        assert 100 < count < 5_000_000, f"{name}/{variant}: {count} parameters"


def test_ablations_add_parameters():
    shapes = shapes_for("mood_reader")
    count = {v.name: n_parameters(create_model("mood_reader", shapes, 2, variant=v.name))
             for v in MODELS.get("mood_reader").variants}
    assert count["stb_cf"] < count["stib_cf"] < count["stib_enc_cf"]
    assert count["stib_cf"] < count["stib_eye_cf"] and count["stib_eye_mlf"] < count["full"]
    dfcn = {v.name: n_parameters(create_model("dfcn", shapes_for("dfcn"), 2, variant=v.name))
            for v in MODELS.get("dfcn").variants}
    assert dfcn["no_prior"] < dfcn["full"] and dfcn["no_nonlocal"] < dfcn["full"]
    assert dfcn["baseline"] < dfcn["no_stfenet"] < dfcn["full"] and dfcn["baseline"] < dfcn["no_prior"]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_short_training_beats_chance(case, multimodal_samples, device):
    """Through the real fold pipeline (normalisation, imputation, early stopping) on held-out samples."""
    name, variant = case
    s = SETTINGS[name]
    feature = MODELS.get(name).features[0]
    samples = multimodal_samples(feature, s["n_windows"])
    fold = holdout(samples.n_samples)
    config = TrainConfig(model=name, variant=variant, model_params=s["params"], epochs=s["epochs"], lr=s["lr"],
                         batch_size=32, patience=s["epochs"], seed=0, device=str(device))
    result = run_fold(config, fold, samples)
    assert result.metrics["accuracy"] >= 0.75, f"{name}/{variant}: accuracy {result.metrics['accuracy']:.3f}"
    # The stored weights rebuild the same model: predictions on the test part match.
    model, checkpoint = load_fold_model(result.weights)
    assert checkpoint["variant"] == variant
    inputs = {k: samples.x if k == "x" else samples.extra[k] for k in MODELS.get(name).variant(variant).inputs}
    normed = {}
    for k, values in inputs.items():
        norm = checkpoint["norm"][k]
        normed[k] = np.nan_to_num((values[fold.test] - norm["mean"].numpy()) / norm["std"].numpy()).astype(np.float32)
    if MODELS.get(name).framework == "sklearn":
        pred = model.predict(normed)
    else:
        with torch.no_grad():
            t = {k: torch.from_numpy(v) for k, v in normed.items()}
            pred = model(t.pop("x", torch.from_numpy(np.zeros((len(fold.test), *samples.x.shape[1:]), np.float32))),
                         **t).argmax(1).numpy()
    np.testing.assert_array_equal(pred, result.y_pred)


#: bf16 autocast: every torch model on a GPU; one variant per model family on a CPU (the same code path,
#: where bf16 has no tensor cores and only costs CI time).
BF16_CASES = TORCH_CASES if DEVICE.startswith("cuda") else [
    ("mood_reader", "full"), ("mv_sstma", "attention"), ("dfcn", "full"), ("dgcnn", "default"), ("linear", "eeg_eye")]


@pytest.mark.parametrize("case", BF16_CASES, ids=case_id)
def test_short_bf16_training_beats_chance(case, multimodal_samples, device):
    """``precision=bf16`` (forward passes under bf16 autocast, float32 weights) learns as float32 does,
    and its checkpoint holds float32 weights."""
    name, variant = case
    s = SETTINGS[name]
    samples = multimodal_samples(MODELS.get(name).features[0], s["n_windows"])
    config = TrainConfig(model=name, variant=variant, model_params=s["params"], epochs=s["epochs"], lr=s["lr"],
                         batch_size=32, patience=s["epochs"], seed=0, device=str(device), precision="bf16")
    result = run_fold(config, holdout(samples.n_samples), samples)
    assert result.metrics["accuracy"] >= 0.75, f"{name}/{variant} bf16: accuracy {result.metrics['accuracy']:.3f}"
    assert all(np.isfinite(row["train_loss"]) for row in result.history)
    state = torch.load(io.BytesIO(result.weights), weights_only=True)["state_dict"]
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float32}


def test_weights_have_no_pickled_objects(multimodal_samples):
    """Checkpoints load with weights_only=True (no arbitrary unpickling) for torch and sklearn models."""
    samples = multimodal_samples("de", 1)
    result = run_fold(TrainConfig(model="svm"), holdout(samples.n_samples), samples)
    checkpoint = torch.load(io.BytesIO(result.weights), weights_only=True)
    assert checkpoint["model"] == "svm" and "sklearn_state" in checkpoint
    assert math.isclose(sum(result.confusion.ravel()), len(result.y_true))

"""Model registry, model forward/backward, the Registry class and metrics."""
from __future__ import annotations

import os

import numpy as np
import pytest

from moodops.components.errors import ConfigError, UnknownNameError
from moodops.components.metrics import accuracy, classification_metrics, confusion_matrix, macro_f1
from moodops.components.models import MODELS, ModelInfo, create_model, model_hyperparameters
from moodops.components.registry import Registry

torch = pytest.importorskip("torch")

INPUT_SHAPE = (4, 32, 5)
DEVICE = os.environ.get("MOODOPS_TEST_DEVICE", "cpu")


@pytest.fixture(scope="module")
def device():
    dev = torch.device(DEVICE)
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"MOODOPS_TEST_DEVICE={DEVICE} but CUDA is not available")
    return dev


def test_models_are_registered():
    assert MODELS.names() == sorted(MODELS.names())
    assert {"linear", "stib"} <= set(MODELS.names())
    for name in MODELS.names():
        info = MODELS.get(name)
        assert isinstance(info, ModelInfo)
        assert info.name == name
        assert info.description


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("n_classes", [2, 4])
def test_forward_and_backward(name, n_classes, device):
    torch.manual_seed(0)
    model = create_model(name, INPUT_SHAPE, n_classes).to(device)
    assert isinstance(model, torch.nn.Module)
    batch = 6
    x = torch.randn(batch, *INPUT_SHAPE, device=device)
    y = torch.arange(batch, device=device) % n_classes

    model.train()
    logits = model(x)
    assert logits.shape == (batch, n_classes)
    assert logits.device.type == device.type
    assert torch.isfinite(logits).all()

    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads
    assert all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)

    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
    assert torch.equal(a, b)  # eval mode is deterministic
    # Outputs depend on the input (a model that ignores x would pass the shape checks).
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x + 1.0))


@pytest.mark.parametrize("name", MODELS.names())
def test_batch_of_one(name, device):
    model = create_model(name, INPUT_SHAPE, 3).to(device).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, *INPUT_SHAPE, device=device)).shape == (1, 3)


def test_hyperparameters_listed():
    assert model_hyperparameters("linear") == {"dropout": 0.0}
    hp = model_hyperparameters("stib")
    assert {"dim", "heads", "depth", "dropout", "interlink"} <= set(hp)
    assert hp["dim"] % hp["heads"] == 0


def test_stib_options_build():
    model = create_model("stib", INPUT_SHAPE, 2, dim=16, heads=2, depth=2, interlink=False)
    out = model(torch.randn(3, *INPUT_SHAPE))
    assert out.shape == (3, 2)


@pytest.mark.parametrize("name", ["linear", "stib"])
def test_unknown_hyperparameter_is_named(name):
    with pytest.raises(ConfigError) as info:
        create_model(name, INPUT_SHAPE, 2, dropuot=0.1)
    assert "dropuot" in str(info.value)
    assert "dropout" in str(info.value)  # lists what it takes


def test_stib_heads_must_divide_dim():
    with pytest.raises(ConfigError) as info:
        create_model("stib", INPUT_SHAPE, 2, dim=32, heads=3)
    assert "dim=32" in str(info.value) and "heads=3" in str(info.value)


def test_bad_shape_and_classes():
    with pytest.raises(ConfigError, match="input_shape"):
        create_model("linear", (32, 5), 2)
    with pytest.raises(ConfigError, match="2 classes"):
        create_model("linear", INPUT_SHAPE, 1)


def test_unknown_model_name():
    with pytest.raises(UnknownNameError) as info:
        create_model("stibb", INPUT_SHAPE, 2)
    assert "Did you mean 'stib'?" in str(info.value)
    assert isinstance(info.value, KeyError) and isinstance(info.value, ConfigError)


# --------------------------------------------------------------------------- Registry


def test_registry_register_get_and_list():
    reg: Registry[int] = Registry("widget")
    reg.register("alpha")(1)
    reg.register("beta-2")(2)
    assert reg.get("alpha") == 1
    assert "beta-2" in reg and "gamma" not in reg
    assert list(reg) == ["alpha", "beta-2"]
    assert reg.names("b*") == ["beta-2"]
    assert len(reg) == 2


def test_registry_duplicate_name():
    reg: Registry[int] = Registry("widget")
    reg.register("alpha")(1)
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("alpha")(2)
    assert reg.get("alpha") == 1


@pytest.mark.parametrize("bad", ["Alpha", "", "two words"])
def test_registry_rejects_bad_names(bad):
    with pytest.raises(ConfigError):
        Registry("widget").register(bad)


def test_registry_unknown_name():
    reg: Registry[int] = Registry("widget")
    reg.register("transformer")(1)
    reg.register("linear")(2)
    with pytest.raises(UnknownNameError) as info:
        reg.get("transfomer")
    message = str(info.value)
    assert "Did you mean 'transformer'?" in message
    assert "'linear'" in message and "'transfomer'" in message
    assert not message.startswith("\"")  # not quoted like a plain KeyError
    with pytest.raises(UnknownNameError) as info:
        reg.get("zzz")
    assert "Did you mean" not in str(info.value)


# --------------------------------------------------------------------------- metrics


def test_confusion_matrix():
    y_true = [0, 0, 1, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0, 1]
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 1, 1]]
    assert confusion_matrix([1], [1], 4).shape == (4, 4)
    assert confusion_matrix([1], [1], 4).sum() == 1


def test_accuracy():
    assert accuracy(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])) == pytest.approx(0.75)
    assert accuracy([2, 2], [2, 2]) == 1.0
    assert np.isnan(accuracy([], []))


def test_macro_f1_hand_computed():
    y_true = [0, 0, 1, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0, 1]
    # class 0: tp 1, fp 1, fn 1 → F1 = 2/4; class 1: tp 2, fp 2, fn 0 → 4/6;
    # class 2: tp 1, fp 0, fn 2 → 2/4.
    expected = (0.5 + 4 / 6 + 0.5) / 3
    assert macro_f1(y_true, y_pred, 3) == pytest.approx(expected)


def test_macro_f1_ignores_absent_classes():
    # Class 2 never appears: the mean is over classes 0 and 1 only.
    y_true = [0, 0, 1, 1]
    y_pred = [0, 1, 1, 1]
    f0 = 2 * 1 / (2 + 1)
    f1 = 2 * 2 / (2 + 3)
    assert macro_f1(y_true, y_pred, 3) == pytest.approx((f0 + f1) / 2)
    assert macro_f1([1, 1], [1, 1], 2) == 1.0
    assert macro_f1([0, 0], [1, 1], 2) == 0.0
    assert np.isnan(macro_f1([], [], 2))


def test_classification_metrics():
    m = classification_metrics(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), 2)
    assert set(m) == {"accuracy", "macro_f1"}
    assert m["accuracy"] == pytest.approx(0.75)
    # class 0: tp 2, fp 1, fn 0 → 0.8; class 1: tp 1, fp 0, fn 1 → 2/3
    assert m["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)

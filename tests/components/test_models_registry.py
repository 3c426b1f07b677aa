"""Model registry, model forward/backward, the Registry class and metrics."""
from __future__ import annotations

import numpy as np
import pytest

from moodops.components.errors import ConfigError, UnknownNameError
from moodops.components.metrics import accuracy, classification_metrics, confusion_matrix, macro_f1
from moodops.components.models import MODELS, ModelInfo, create_model, model_hyperparameters
from moodops.components.registry import Registry


INPUT_SHAPE = (4, 32, 5)


def test_models_are_registered():
    assert MODELS.names() == sorted(MODELS.names())
    assert {"mood_reader", "mv_sstma", "dfcn", "dgcnn", "svm", "linear"} <= set(MODELS.names())
    for name in MODELS.names():
        info = MODELS.get(name)
        assert isinstance(info, ModelInfo)
        assert info.name == name
        assert info.description
        assert info.variants and len({v.name for v in info.variants}) == len(info.variants)


def test_variants_name_their_modalities():
    mood_reader = MODELS.get("mood_reader")
    assert mood_reader.default_variant == "full"
    assert mood_reader.variant("full").modalities == ("eeg", "raw_eeg", "eye")
    assert mood_reader.variant("stib_enc_cf").extras == ("raw",)
    assert [v.name for v in mood_reader.variants_for(("eeg", "raw_eeg"))][:1] == ["stib_enc_mlf"]
    assert mood_reader.variant("stib_enc_mlf").modalities == ("eeg", "raw_eeg")
    assert [v.name for v in mood_reader.variants_for(("eeg", "eye"))][:1] == ["stib_eye_mlf"]
    assert MODELS.get("mv_sstma").variant("eye").modalities == ("eye",)
    assert MODELS.get("dfcn").variant("full").modalities == ("eeg", "face")
    with pytest.raises(ConfigError, match="Did you mean 'stib_cf'"):
        mood_reader.variant("stib_fc")


def test_hyperparameters_listed():
    assert model_hyperparameters("linear") == {"dropout": 0.0}
    hp = model_hyperparameters("mood_reader", "stib_cf")
    assert {"dim", "heads", "depth", "dropout", "token_len"} <= set(hp)
    assert "interlink" not in hp  # fixed by the variant
    assert hp["dim"] % hp["heads"] == 0


def test_variant_fixed_parameters_cannot_be_overridden():
    with pytest.raises(ConfigError, match="variant 'stb_cf' fixes interlink"):
        create_model("mood_reader", INPUT_SHAPE, 2, variant="stb_cf", interlink=True)


@pytest.mark.parametrize("name", ["linear", "mood_reader"])
def test_unknown_hyperparameter_is_named(name):
    with pytest.raises(ConfigError) as info:
        create_model(name, INPUT_SHAPE, 2, variant="stib_cf" if name == "mood_reader" else None, dropuot=0.1)
    assert "dropuot" in str(info.value)
    assert "dropout" in str(info.value)  # lists what it takes


def test_heads_must_divide_dim():
    with pytest.raises(ConfigError) as info:
        create_model("mood_reader", INPUT_SHAPE, 2, variant="stib_cf", dim=32, heads=3)
    assert "dim=32" in str(info.value) and "heads=3" in str(info.value)


def test_bad_shape_missing_input_and_classes():
    with pytest.raises(ConfigError, match="must have 3 axes per sample"):
        create_model("linear", (32, 5), 2)
    with pytest.raises(ConfigError, match=r"needs input\(s\) eye"):
        create_model("mood_reader", {"x": INPUT_SHAPE}, 2, variant="stib_eye_cf")
    with pytest.raises(ConfigError, match="2 classes"):
        create_model("linear", INPUT_SHAPE, 1)


def test_unknown_model_name():
    with pytest.raises(UnknownNameError) as info:
        create_model("mood_raeder", INPUT_SHAPE, 2)
    assert "Did you mean 'mood_reader'?" in str(info.value)
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
    assert set(m) == {"accuracy", "macro_f1", "f1"}  # binary: the positive class's F1 too
    assert m["accuracy"] == pytest.approx(0.75)
    # class 0: tp 2, fp 1, fn 0 → 0.8; class 1: tp 1, fp 0, fn 1 → 2/3
    assert m["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert m["f1"] == pytest.approx(2 / 3)

"""Mood Reader mechanisms: encoder tokens, pretrained weights, freezing, multi-level fusion."""
from __future__ import annotations

import pytest

from moodops.components.errors import ConfigError
from moodops.components.models import create_model
from moodops.components.models.mood_reader import MBSMEncoder

torch = pytest.importorskip("torch")

SHAPES = {"x": (4, 8, 3), "raw": (4, 8, 64), "eye": (4, 6)}
SMALL = {"dim": 16, "heads": 2, "encoder_dim": 16, "encoder_heads": 2, "fusion_dim": 32}


def inputs(batch: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(batch, *s, generator=g) for k, s in SHAPES.items()}


def test_encoder_tokens_span_all_channels_and_token_len_samples():
    enc = MBSMEncoder(n_channels=3, n_samples=10, token_len=4, dim=8, depth=1, heads=2)
    raw = torch.arange(30, dtype=torch.float32).reshape(1, 3, 10)
    tokens = enc.tokenize(raw)
    assert enc.n_tokens == 2 and tokens.shape == (1, 2, 12)  # the 2 trailing samples are dropped
    # Token k holds samples [4k, 4k+4) of every channel, channel after channel.
    assert tokens[0, 1].tolist() == [4, 5, 6, 7, 14, 15, 16, 17, 24, 25, 26, 27]
    assert enc(raw).shape == (1, 2, 8)
    with pytest.raises(ConfigError, match="token_len=11"):
        MBSMEncoder(n_channels=3, n_samples=10, token_len=11)


def test_raw_windows_are_joined_in_time_order():
    model = create_model("mood_reader", SHAPES, 2, variant="stib_enc_cf", token_len=64, **SMALL).eval()
    raw = torch.zeros(1, 4, 8, 64)
    raw[0, 2] = 1.0  # the third window
    tokens = model.encoder.tokenize(raw.permute(0, 2, 1, 3).reshape(1, 8, 256))
    assert [float(t.abs().sum()) for t in tokens[0]] == [0.0, 0.0, 8 * 64.0, 0.0]


def test_pretrained_encoder_loads_and_mismatch_is_a_clear_error():
    source = create_model("mood_reader", SHAPES, 2, variant="stib_enc_mlf", **SMALL)
    target = create_model("mood_reader", SHAPES, 3, variant="full", **SMALL)
    target.load_encoder(source.encoder.state_dict())
    for (k, a), (_, b) in zip(source.encoder.state_dict().items(), target.encoder.state_dict().items()):
        assert torch.equal(a, b), k
    wider = create_model("mood_reader", SHAPES, 2, variant="stib_enc_cf", **{**SMALL, "encoder_dim": 32})
    with pytest.raises(ConfigError, match="pretrained encoder does not fit this model"):
        target.load_encoder(wider.encoder.state_dict())
    no_encoder = create_model("mood_reader", SHAPES, 2, variant="stib_cf", **SMALL)
    with pytest.raises(ConfigError, match="has no encoder"):
        no_encoder.load_encoder(source.encoder.state_dict())


def test_frozen_encoder_does_not_train_but_the_rest_does():
    from moodops.pipelines.hooks import Hooks
    from moodops.pipelines.train import TrainConfig, fit

    torch.manual_seed(0)
    model = create_model("mood_reader", SHAPES, 2, variant="full", freeze_encoder=True, **SMALL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = inputs(16)
    y = torch.arange(16) % 2
    fit(model, TrainConfig(epochs=2, batch_size=8, patience=5), "f", data, y, {k: v[:0] for k, v in data.items()},
        y[:0], Hooks(), torch.Generator().manual_seed(0))
    after = model.state_dict()
    encoder_keys = [k for k in before if k.startswith("encoder.")]
    assert encoder_keys and all(torch.equal(before[k], after[k]) for k in encoder_keys)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("branch."))
    model.freeze_encoder(False)
    assert all(p.requires_grad for p in model.encoder.parameters())


def test_multi_level_fusion_weights_are_a_softmax():
    model = create_model("mood_reader", SHAPES, 2, variant="full", **SMALL).eval()
    data = inputs(7)
    with torch.no_grad():
        model(data["x"], raw=data["raw"], eye=data["eye"])
    w = model.last_fusion_weights
    assert set(w) == {"level1", "level2"}
    for weights in w.values():  # Eq. 6: per feature, a softmax across the two inputs
        assert weights.shape == (7, 2, model.level1.weight.shape[-1])
        assert torch.all(weights >= 0) and torch.allclose(weights.sum(dim=1), torch.ones(7, weights.shape[-1]))
        assert weights.std(dim=-1).mean() > 0  # features are weighed differently, not one scalar per input
    # With one second-level representation there is nothing to weigh at level 2.
    single = create_model("mood_reader", SHAPES, 2, variant="stib_eye_mlf", **SMALL).eval()
    with torch.no_grad():
        single(data["x"], eye=data["eye"])
    assert set(single.last_fusion_weights) == {"level1"}


def test_interlink_outputs_have_both_views():
    stib = create_model("mood_reader", SHAPES, 2, variant="stib_cf", **SMALL).eval()
    stb = create_model("mood_reader", SHAPES, 2, variant="stb_cf", **SMALL).eval()
    x = inputs()["x"]
    f_st, f_ts = stib.branch(x)
    assert f_st.shape == (5, 8, 32) and f_ts.shape == (5, 4, 32)  # C and N tokens, 2·dim wide
    f_s, f_t = stb.branch(x)
    assert f_s.shape == (5, 8, 16) and f_t.shape == (5, 4, 16)


def test_missing_input_and_bad_fusion_are_config_errors():
    model = create_model("mood_reader", SHAPES, 2, variant="full", **SMALL)
    data = inputs()
    with pytest.raises(ConfigError, match="needs the eye-movement input"):
        model(data["x"], raw=data["raw"])
    with pytest.raises(ConfigError, match="needs the raw EEG input"):
        model(data["x"], eye=data["eye"])
    with pytest.raises(ConfigError, match="eye input has 3 windows but x has 4"):
        create_model("mood_reader", {**SHAPES, "eye": (3, 6)}, 2, variant="stib_eye_cf", **SMALL)

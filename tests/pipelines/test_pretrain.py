"""Masked pretraining (MBSM, MV-SSTMA) and loading its weights into the fine-tuned models."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from moodops.components.errors import ConfigError
from moodops.components.models import create_model
from moodops.components.models.mbsm import MBSMAutoencoder, random_token_mask
from moodops.pipelines.evaluate import torch_save
from moodops.pipelines.pretrain import PretrainConfig, check_contract, load_pretrained, pretrain, unused_inputs

SMALL = {"dim": 16, "heads": 2, "depth": 1, "decoder_dim": 16, "decoder_heads": 2, "token_len": 20}


def structured_segments(n: int = 160, channels: int = 6, samples: int = 400, seed: int = 0) -> np.ndarray:
    """Segments with shared rhythms across channels: hidden tokens are predictable from visible ones."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 100.0
    freq = rng.uniform(6, 12, size=(n, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
    gains = rng.normal(1.0, 0.3, size=(n, channels, 1))
    x = gains * np.sin(2 * np.pi * freq * t + phase) + 0.2 * rng.normal(size=(n, channels, samples))
    return x.astype(np.float32)


def test_token_mask_hides_the_requested_share():
    keep, mask = random_token_mask(8, 20, 0.75, torch.Generator().manual_seed(0))
    assert mask.shape == (8, 20) and keep.shape == (8, 5)
    assert (mask.sum(dim=1) == 15).all()
    assert not mask.gather(1, keep).any()  # kept tokens are exactly the visible ones
    with pytest.raises(ConfigError):
        random_token_mask(2, 20, 1.0)


def test_mbsm_loss_counts_hidden_tokens_only():
    model = MBSMAutoencoder(4, 200, token_len=20, dim=8, depth=1, heads=2, decoder_dim=8, decoder_heads=2)
    raw = torch.randn(3, 4, 200)
    predicted, target, mask = model.reconstruct(raw, generator=torch.Generator().manual_seed(1))
    expected = ((predicted - target) ** 2).mean(-1)[mask].mean()
    loss = model(raw, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(loss, expected)
    # The visible tokens' predictions do not enter the loss: their gradient is zero.
    predicted.retain_grad()
    ((predicted - target) ** 2).mean(-1).mul(mask).sum().div(mask.sum()).backward()
    assert predicted.grad[~mask].abs().max() == 0 and predicted.grad[mask].abs().max() > 0


def test_mbsm_pretraining_lowers_the_held_out_masked_loss_and_is_seeded():
    data = {"raw": structured_segments()}
    config = PretrainConfig(epochs=6, batch_size=32, lr=3e-3, model_params=SMALL)
    result = pretrain(data, config, data_info={"sfreq": 100.0, "ch_names": list("ABCDEF")})
    assert result.initial_val_loss is not None
    assert result.history[-1]["val_loss"] < 0.8 * result.initial_val_loss
    assert result.contract["n_channels"] == 6 and result.contract["n_samples"] == 400
    assert result.contract["model_params"] == {"token_len": 20, "encoder_dim": 16, "encoder_depth": 1,
                                               "encoder_heads": 2}
    assert all(k.startswith("encoder.") for k in result.state_dict)
    assert result.example["original"].shape == (6, 400) and result.example["mask"].shape == (20,)
    again = pretrain(data, config, data_info={"sfreq": 100.0})
    assert again.history[-1]["train_loss"] == pytest.approx(result.history[-1]["train_loss"], rel=1e-5)


@pytest.mark.parametrize("method", ["mbsm", "mv_sstma"])
def test_bf16_pretraining_learns_and_keeps_float32_weights(method):
    """``precision=bf16`` (autocast; what `moodops pretrain --precision bf16` runs on a GPU) on the CPU:
    the masked loss falls and the saved weights are float32. The mask tokens meet bf16 encoder outputs."""
    if method == "mbsm":
        data, params, epochs = {"raw": structured_segments()}, SMALL, 6
    else:
        rng = np.random.default_rng(0)
        base = rng.normal(size=(48, 1, 8, 5))
        data = {"x": (base + 0.1 * rng.normal(size=(48, 4, 8, 5))).astype(np.float32),
                "eye": rng.normal(size=(48, 4, 7)).astype(np.float32)}
        params, epochs = {"dim": 8, "depth": 1, "heads": 2, "hidden": 16}, 3
    result = pretrain(data, PretrainConfig(method=method, epochs=epochs, batch_size=16, lr=3e-3, model_params=params,
                                           precision="bf16"))
    assert result.history[-1]["val_loss"] < result.initial_val_loss
    assert {v.dtype for v in result.state_dict.values() if v.is_floating_point()} == {torch.float32}


def test_pretrained_encoder_loads_exactly_into_mood_reader_and_freezes():
    result = pretrain({"raw": structured_segments(40)}, PretrainConfig(epochs=1, batch_size=16, model_params=SMALL))
    shapes = {"x": (4, 6, 5), "raw": (4, 6, 100)}  # 4 windows × 100 samples = the 400-sample segments
    model = create_model("mood_reader", shapes, 3, variant="stib_enc_mlf", **result.contract["model_params"])
    buffer = io.BytesIO()
    torch_save(result.state_dict, buffer)
    state = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    loaded = load_pretrained(model, state, freeze=True)
    assert loaded == sorted(result.state_dict)
    own = model.state_dict()
    for k, v in result.state_dict.items():
        assert torch.equal(own[k], v), k
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.branch.parameters())
    check_contract(result.contract, "mood_reader", {"x": shapes["x"], "raw": shapes["raw"]}, "test")


def test_load_pretrained_refuses_foreign_weights():
    model = create_model("mood_reader", {"x": (4, 6, 5), "raw": (4, 6, 100)}, 3, variant="stib_enc_mlf", token_len=20)
    with pytest.raises(ConfigError, match="has no place"):
        load_pretrained(model, {"encoder.nope": torch.zeros(1)})
    wrong = {k: torch.zeros(3) for k in list(model.state_dict())[:1]}
    with pytest.raises(ConfigError, match="has shape"):
        load_pretrained(model, wrong)


@pytest.mark.parametrize("shapes, sfreq, message", [
    ({"x": (4, 6, 5), "raw": (4, 8, 100)}, 100.0, "8"),
    ({"x": (4, 6, 5), "raw": (4, 6, 100)}, 128.0, "128"),
    ({"x": (2, 6, 5), "raw": (2, 6, 100)}, 100.0, "segment"),
    ({"x": (4, 6, 5)}, 100.0, "raw EEG"),
])
def test_contract_mismatches_are_one_clear_line(shapes, sfreq, message):
    contract = {"method": "mbsm", "model": "mood_reader", "n_channels": 6, "n_samples": 400, "token_len": 20,
                "sfreq": 100.0}
    with pytest.raises(ConfigError, match=message) as info:
        check_contract(contract, "mood_reader", shapes, "models:/m@latest", sfreq)
    assert "\n" not in str(info.value) and "models:/m@latest" in str(info.value)


def test_mv_sstma_pretraining_feeds_the_fine_tuned_extractors():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(48, 1, 8, 5))
    x = (base + 0.1 * rng.normal(size=(48, 4, 8, 5))).astype(np.float32)  # channels correlate over windows
    eye = rng.normal(size=(48, 4, 7)).astype(np.float32)
    params = {"dim": 8, "depth": 1, "heads": 2, "hidden": 16}
    result = pretrain({"x": x, "eye": eye}, PretrainConfig(method="mv_sstma", epochs=3, batch_size=16, lr=3e-3,
                                                            model_params=params))
    assert result.history[-1]["val_loss"] < result.initial_val_loss
    assert {k.split(".")[0] for k in result.state_dict} == {"eeg_extractor", "eye_extractor"}
    shapes = {"x": (4, 8, 5), "eye": (4, 7)}
    check_contract(result.contract, "mv_sstma", shapes, "test")
    model = create_model("mv_sstma", shapes, 4, variant="attention", **params)
    load_pretrained(model, result.state_dict)
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in result.state_dict.items())
    with pytest.raises(ConfigError, match="shape"):
        check_contract(result.contract, "mv_sstma", {"x": (4, 9, 5), "eye": (4, 7)}, "test")
    # Table 1 fine-tunes one extractor of the two-modality pretraining: the other is left out, not refused
    check_contract(result.contract, "mv_sstma", {"x": (4, 8, 5)}, "test")
    assert unused_inputs(result.contract, {"x": (4, 8, 5)}) == ["eye"]
    assert unused_inputs(result.contract, shapes) == []
    with pytest.raises(ConfigError, match="shape"):
        check_contract(result.contract, "mv_sstma", {"eye": (4, 6)}, "test")
    with pytest.raises(ConfigError, match=r"test: pretrained with input\(s\) 'x', 'eye', none of which this variant"):
        check_contract(result.contract, "mv_sstma", {"face": (4, 3)}, "test")


@pytest.mark.real_data
def test_mbsm_on_real_eegmmidb_lowers_the_masked_loss():
    """S001's verified runs R03-R14: preprocess as Mood Reader, pretrain a tiny encoder, held-out loss falls."""
    from pathlib import Path

    from moodops.components.datasets.eegmmidb.eegmmidb import Eegmmidb, Preprocess, preprocess, segments

    root = Path(__file__).resolve().parents[3] / "shared" / "data" / "eegmmidb"
    dataset = Eegmmidb(root, runs=list(range(3, 15)))
    recordings = [preprocess(r, Preprocess()) for r in dataset.load_subject(1)]
    assert len(recordings) == 12 and recordings[0].sfreq == 200.0
    raw, _ = segments(recordings, 4.0)
    assert raw.shape[1:] == (64, 800) and len(raw) >= 360  # 12 runs × ~125 s in 4-s segments
    result = pretrain({"raw": raw}, PretrainConfig(epochs=4, batch_size=32, lr=2e-3, seed=0, model_params=SMALL),
                      data_info={"sfreq": 200.0, "ch_names": list(recordings[0].ch_names)})
    losses = [result.initial_val_loss] + [h["val_loss"] for h in result.history]
    assert losses[-1] < 0.95 * losses[0], losses

"""Pretrain → registry → fine-tune, Ray Train data parallelism, and pipeline specs with stage caching.

These run the real `moodops` command on Ray (the session's shared cluster, see conftest.py) and a
temporary MLflow store.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _ray_cluster import moodops_env
from moodops.orchestrator.paper_report import SYNTHETIC_WARNING
from moodops.components.datasets.eegmmidb.synthetic_eegmmidb import write_synthetic_eegmmidb

MOODOPS = str(Path(sys.executable).with_name("moodops"))
pytestmark = pytest.mark.usefixtures("use_shared_ray")
SMALL = '{"dim": 16, "heads": 2, "depth": 1, "decoder_dim": 16, "decoder_heads": 2}'


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eegmmidb")
    write_synthetic_eegmmidb(root, subjects=2, runs=range(3, 6), seconds=40.0, seed=0)
    return root


def moodops(*args: str, cwd: Path, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([MOODOPS, *args], cwd=cwd, env=moodops_env(), capture_output=True, text=True, timeout=timeout)


def client_for(cwd: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{cwd / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri), uri


@pytest.mark.slow
def test_pretrain_registers_an_encoder_that_fine_tuning_loads_exactly(corpus, tmp_path, monkeypatch):
    out = tmp_path / "pretrain.json"
    proc = moodops("pretrain", "--method", "mbsm", "--root", str(corpus), "--epochs", "3", "--batch-size", "16",
                   "--set", f"model_params={SMALL}", "--alias", "champion", "--output-json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(out.read_text())
    assert summary["registered_model"] == "moodops-mbsm" and summary["version"] == "1"
    assert len(summary["history"]) == 3
    assert summary["history"][-1]["val_loss"] < summary["initial_val_loss"]
    contract = summary["contract"]
    assert contract["n_channels"] == 64 and contract["sfreq"] == 200.0 and contract["n_samples"] == 800
    assert contract["ch_names"][:3] == ["FC5", "FC3", "FC1"]

    client, uri = client_for(tmp_path)
    run = client.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2, 3]
    assert {"reconstruction.png", "history.json"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    version = client.get_model_version_by_alias("moodops-mbsm", "champion")
    assert str(version.version) == "1" and version.tags["moodops.pretrain_run_id"] == run.info.run_id

    from mlflow.models import get_model_info

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    info = get_model_info("models:/moodops-mbsm@latest")
    assert info.metadata["moodops_contract"]["n_channels"] == 64
    import mlflow.pyfunc

    embedder = mlflow.pyfunc.load_model("models:/moodops-mbsm@champion")  # runs the logged code, no unpickling
    assert embedder.predict(np.zeros((2, 64, 800), np.float32)).shape == (2, 800 // 32, 16)

    # The fold's model starts from exactly the registered weights (no training step in between).
    from moodops.components.types import FeatureSet, Fold
    from moodops.orchestrator.pretrain import resolve_encoder
    from moodops.pipelines.evaluate import run_fold
    from moodops.pipelines.hooks import Hooks
    from moodops.pipelines.train import TrainConfig

    encoder = resolve_encoder("models:/moodops-mbsm@latest", uri)
    assert encoder.lineage["moodops.encoder_version"] == "1"
    assert encoder.lineage["moodops.pretrain_run_id"] == run.info.run_id
    registered = encoder.state_dict()

    class Capture(Hooks):
        def on_train_start(self, fold, model):
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    import pyarrow as pa

    rng = np.random.default_rng(0)
    n = 24
    meta = pa.table({"subject": np.repeat([1, 2, 3], 8).astype(np.int32), "session": np.ones(n, np.int32),
                     "trial": np.arange(n, dtype=np.int32), "window": np.zeros(n, np.int32)})
    features = FeatureSet(rng.normal(size=(n, 4, 62, 5)).astype(np.float32), meta, ("window", "channel", "band"),
                          y=np.arange(n) % 3, class_names=("a", "b", "c"),
                          extra={"raw": rng.normal(size=(n, 4, 64, 200)).astype(np.float32)})
    capture = Capture()
    config = TrainConfig(model="mood_reader", variant="stib_enc_cf", epochs=1, batch_size=8,
                         model_params=contract["model_params"], pretrained=encoder.weights, freeze_pretrained=True)
    result = run_fold(config, Fold("f", np.arange(16), np.arange(16, 20), np.arange(20, 24), (3,)), features, capture)
    for k, v in registered.items():
        assert torch.equal(capture.state[k], v), k
    trained = torch.load(io.BytesIO(result.weights), weights_only=True)["state_dict"]
    for k, v in registered.items():  # frozen: still the registered weights after training
        assert torch.equal(trained[k], v), k


@pytest.mark.slow
def test_pretraining_runs_data_parallel_on_two_gloo_workers(corpus, tmp_path):
    out = tmp_path / "pretrain.json"
    proc = moodops("pretrain", "--method", "mbsm", "--root", str(corpus), "--epochs", "2", "--batch-size", "16",
                   "--workers", "2", "--set", f"model_params={SMALL}", "--register-as", "",
                   "--output-json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Ray Train: 2 worker(s), CPU (gloo)" in proc.stderr
    summary = json.loads(out.read_text())
    assert summary["workers"] == 2 and summary["version"] is None
    assert summary["model_uri"].startswith("models:/")
    assert len(summary["history"]) == 2 and np.isfinite(summary["history"][-1]["train_loss"])
    # Both ranks' segments count: the epoch saw the whole training share, not half of it.
    assert summary["history"][0]["segments_per_s"] > 0


def test_pretrain_refuses_the_reserved_alias_and_unknown_keys(tmp_path):
    proc = moodops("pretrain", "--synthetic", "--alias", "latest", cwd=tmp_path)
    assert proc.returncode != 0 and "reserved" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = moodops("pretrain", "--synthetic", "--set", "mask_ration=0.5", cwd=tmp_path)
    assert proc.returncode != 0 and "mask_ratio" in proc.stderr


SPEC = """
name: tiny
description: two stages
stages:
  - name: pretrain
    kind: pretrain
    config: {{method: mbsm, root: {root}, epochs: {pre_epochs}, batch_size: 16, model_params: {small}}}
  - name: finetune
    kind: run
    config: {{protocol: split, dataset: seed, synthetic: true, synthetic_subjects: 2, synthetic_seconds: 12,
             model: mood_reader, variant: stib_enc_cf, encoder: "${{pretrain.encoder}}", encoder_channels: by-name,
             epochs: {fine_epochs}}}
paper: {{source: "Tiny et al. 2026, Table 1", metric: accuracy,
        stages: {{finetune: {{mean: 80.0, std: 5.0, row: "Mood Reader, trial 8:2"}}}}}}
"""


@pytest.mark.slow
def test_pipeline_reuses_unchanged_stages(corpus, tmp_path):
    spec = tmp_path / "spec.yaml"

    def run(pre_epochs: int, fine_epochs: int) -> dict:
        spec.write_text(SPEC.format(root=corpus, pre_epochs=pre_epochs, fine_epochs=fine_epochs, small=SMALL))
        out = tmp_path / "out.json"
        proc = moodops("pipeline", "run", str(spec), "--output-json", str(out), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        last_stdout[:] = [proc.stdout]
        return {s["name"]: s for s in json.loads(out.read_text())["stages"]}

    last_stdout: list[str] = []

    first = run(1, 1)
    assert not first["pretrain"]["cached"] and not first["finetune"]["cached"]
    # The pipeline ends with the paper's value beside this run's: the stage ran on synthetic data, which
    # the report says first; a split has no spread over subjects, so "inside" cannot be judged.
    client, _ = client_for(tmp_path)
    ours = 100 * client.get_run(first["finetune"]["run_id"]).data.metrics["test_accuracy_mean"]
    lines = last_stdout[0].splitlines()
    start = lines.index(SYNTHETIC_WARNING)
    assert lines[start + 1] == "paper vs this run (accuracy %, Tiny et al. 2026, Table 1):"
    assert lines[start + 3].split() == ["finetune", "80.00", "±", "5.00", f"{ours:.2f}", f"{ours - 80:+.2f}", "n/a",
                                        "(no", "spread)"]
    pipeline_parent = client.get_run(first["finetune"]["run_id"]).data.tags["mlflow.parentRunId"]
    md = client.download_artifacts(pipeline_parent, "paper_comparison.md", str(tmp_path))
    assert Path(md).read_text().splitlines()[0] == SYNTHETIC_WARNING
    table = Path(client.download_artifacts(pipeline_parent, "paper_comparison.csv", str(tmp_path))).read_text()
    assert table.splitlines()[1].startswith("finetune,accuracy,\"Mood Reader, trial 8:2\",80.0,5.0,")
    assert first["pretrain"]["encoder"] == "models:/moodops-mbsm/1"
    again = run(1, 1)
    assert again["pretrain"]["cached"] and again["finetune"]["cached"]
    assert f"{ours:.2f}" in last_stdout[0].split(SYNTHETIC_WARNING)[1]  # reused stages keep their row
    assert again["finetune"]["run_id"] == first["finetune"]["run_id"]
    fine_changed = run(1, 2)
    assert fine_changed["pretrain"]["cached"] and not fine_changed["finetune"]["cached"]
    pre_changed = run(2, 2)
    assert not pre_changed["pretrain"]["cached"] and not pre_changed["finetune"]["cached"]
    assert pre_changed["pretrain"]["encoder"] == "models:/moodops-mbsm/2"

    client, _ = client_for(tmp_path)
    finetune = client.get_run(pre_changed["finetune"]["run_id"])
    assert finetune.data.tags["moodops.encoder_version"] == "2"  # lineage: the fine-tune names its encoder
    assert finetune.data.tags["moodops.pretrain_run_id"] == pre_changed["pretrain"]["run_id"]
    parent = finetune.data.tags["mlflow.parentRunId"]
    children = client.search_runs([finetune.info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert {r.data.tags["moodops.stage"] for r in children} == {"pretrain", "finetune"}


@pytest.mark.parametrize("body, message", [
    ("stages: []", "non-empty 'stages'"),
    ("stages: [{name: a, kind: bake}]", "kind"),
    ("stages: [{name: a, kind: run, config: {encoder: '${b.encoder}'}}]", "not an earlier stage"),
    ("stages: [{name: a, kind: run, config: {epochz: 3}}]", "epochs"),
    ("stages: [{name: a, kind: pretrain}, {name: a, kind: run}]", "used twice"),
    ("stages: [{name: a, kind: run}]\npaper: {source: T1, metric: accuracy, stages: {b: {mean: 1, std: 1}}}",
     "'b' is not a stage of this spec"),
    ("stages: [{name: a, kind: run}]\npaper: {source: T1, metric: accuracy, stages: {a: {mean: high, std: 1}}}",
     "paper.stages.a.mean must be a number"),
    ("stages: [{name: a, kind: run}]\npaper: {source: T1, metric: accuracy, stages: {a: [{metric: acc, mean: 1}]}}",
     "paper.stages.a\\[1\\].metric"),
    ("stages: [{name: a, kind: run}]\npaper: {source: T1, metric: accuracy, stages: {a: [{mean: 1}, {mean: x}]}}",
     "paper.stages.a\\[2\\].mean must be a number"),
    ("stages: [{name: a, kind: run}]\npaper: {source: T1, metric: accuracy, stages: {a: {mean: 1, sd: 2}}}",
     "unknown key 'sd'"),
])
def test_bad_specs_are_one_line_errors_naming_the_file(tmp_path, body, message):
    from moodops.components.errors import ConfigError
    from moodops.orchestrator.pipeline import load_spec

    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message) as info:
        load_spec(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_every_preset_parses_and_states_its_source():
    from moodops.orchestrator.pipeline import PRESETS_DIR, load_spec

    names = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
    assert names == ["dfcn_deap", "mmv_sstma_seed_iv", "mmv_sstma_seed_v", "mood_reader_seed", "mood_reader_seed_iv",
                     "mood_reader_seed_v"]
    for name in names:
        spec = load_spec(name)
        text = (PRESETS_DIR / f"{name}.yaml").read_text()
        assert "reported numbers" in text, name
        assert spec.stages and spec.description
    for name, dataset, reported in [("mood_reader_seed", "seed", 93.12), ("mood_reader_seed_iv", "seed-iv", None),
                                    ("mood_reader_seed_v", "seed-v", 84.36)]:
        spec = load_spec(name)
        assert [s.name for s in spec.stages] == ["pretrain", "finetune-window", "finetune-trial", "finetune-loso"]
        pretrain, window, trial, loso = (s.config for s in spec.stages)
        assert pretrain["segment_s"] == 16.0 and pretrain["mask_ratio"] == 0.75  # = one fine-tuning sample
        assert window["split_level"] == "window" and trial["split_level"] == "trial" and loso["protocol"] == "loso"
        for config in (window, trial, loso):  # the paper's model and input (§4.1), every evaluation
            assert (config["dataset"], config["variant"], config["de_method"], config["window_s"],
                    config["window_origin"], config["seq_len"]) == (dataset, "full", "stft", 4.0, "end", 4)
        assert spec.paper.get("stages", {}).get("finetune-window", {}).get("mean") == reported
    assert load_spec("mmv_sstma_seed_iv").stages[1].config["train_trials"] == 16
    assert load_spec("mmv_sstma_seed_v").stages[1].config["train_trials"] == 9


def test_raw_eeg_is_mapped_by_name_and_resampled_only_when_asked():
    import pyarrow as pa

    from moodops.components.datasets.deap.deap import EEG_CHANNELS
    from moodops.components.types import FeatureSet
    from moodops.orchestrator.config import RunConfig
    from moodops.orchestrator.run import Reporter, adapt_raw_for_encoder

    n = 3
    raw = np.stack([np.full((2, 128), float(i)) for i in range(32)], axis=1)[None].repeat(n, 0)  # (3, 2, 32, 128)
    meta = pa.table({"subject": np.ones(n, np.int32), "session": np.ones(n, np.int32),
                     "trial": np.arange(n, dtype=np.int32), "window": np.zeros(n, np.int32)})
    features = FeatureSet(np.zeros((n, 2, 32, 5), np.float32), meta, ("window", "channel", "band"),
                          extra={"raw": raw.astype(np.float32)})
    contract = {"method": "mbsm", "sfreq": 200.0, "ch_names": ["CZ", "FP1", "IZ", "T7"]}
    strict = RunConfig(dataset="deap", synthetic=True, model="mood_reader")
    same, record = adapt_raw_for_encoder(features, strict, contract, Reporter())
    assert same is features and record == {}
    asked = RunConfig(dataset="deap", synthetic=True, model="mood_reader", encoder_channels="by-name",
                      encoder_resample=True)
    mapped, record = adapt_raw_for_encoder(features, asked, contract, Reporter())
    out = mapped.extra["raw"]
    assert out.shape == (n, 2, 4, 200)  # 4 encoder channels, 1 s at 200 Hz
    index = {c.upper(): i for i, c in enumerate(EEG_CHANNELS)}
    assert np.allclose(out[:, :, 0, 20:180], index["CZ"], atol=0.05)  # a constant channel stays constant
    assert np.allclose(out[:, :, 1, 20:180], index["FP1"], atol=0.05)
    assert np.all(out[:, :, 2] == 0)  # IZ: not a DEAP channel, zero-filled
    assert record["channels"]["zero_filled"] == ["IZ"] and record["resample"]["to_hz"] == 200.0


@pytest.mark.parametrize("name,dataset,train_trials", [("mmv_sstma_seed_iv", "seed-iv", 16),
                                                       ("mmv_sstma_seed_v", "seed-v", 9)])
def test_mv_sstma_presets_are_the_papers_four_tables(name, dataset, train_trials):
    """Tables 1-4 of Gao et al. 2024 as stages, each valid as a run and each with the paper's value."""
    from moodops.orchestrator.pipeline import _validate, load_spec

    spec = load_spec(name)
    stages = {s.name: s for s in spec.stages}
    assert spec.stages[0].name == "pretrain" and len(stages) == 16
    pretrain = _validate(spec.stages[0], {}, name, True)
    assert (pretrain.method, pretrain.corpus, pretrain.mask_ratio, pretrain.lr, pretrain.seq_len,
            pretrain.eye_scaling) == ("mv_sstma", dataset, 0.3, 1.5e-4, 10, "range")
    runs = {n: _validate(s, {"encoder": "models:/x@1"} if s.config.get("encoder") else {}, name, True)
            for n, s in stages.items() if s.kind == "run"}
    for n, config in runs.items():  # §3.1-3.2: per subject and session, T = 10, lr 1e-3, eye in [10, 100]
        assert (config.protocol, config.train_trials, config.dataset, config.model, config.seq_len, config.lr,
                config.eye_scaling, config.val_strategy) == ("per-subject", train_trials, dataset, "mv_sstma", 10,
                                                             1e-3, "range", "none"), n
        assert n in spec.paper["stages"], n  # the paper's value beside every stage
    assert {n: (c.variant, c.encoder is not None) for n, c in runs.items() if n.startswith("t1-")} == {
        "t1-eeg-scratch": ("eeg", False), "t1-eye-scratch": ("eye", False), "t1-eye-pretrained": ("eye", True)}
    assert [runs[f"t2-{v}"].variant for v in ("eeg", "concat", "attention")] == ["eeg", "concat", "attention"]
    for v in ("eeg", "concat", "attention"):
        assert (runs[f"t3-{v}"].labelled_samples, runs[f"t3-{v}"].mask_ratio_eval) == (10, 0.3)
        for ratio in (50, 70):
            t4 = runs[f"t4-{v}-mask{ratio}"]
            assert (t4.variant, t4.labelled_samples, t4.mask_ratio_eval) == (v, 10, ratio / 100)
            assert spec.paper["stages"][f"t4-{v}-mask{ratio}"]["std"] is None  # Table 4 prints no spread
    iv = name.endswith("_iv")
    assert spec.paper["stages"]["t2-attention"]["mean"] == (90.16 if iv else 81.38)
    assert spec.paper["stages"]["t1-eye-scratch"]["mean"] == (64.98 if iv else 53.88)


def test_dfcn_preset_is_the_papers_protocol_with_every_table_2_row():
    """Zheng et al. 2023 §3: DEAP subjects 1-22 (the loader keeps the 18 with complete face video), valence and
    arousal at 5, 3-s windows x 20, Adam 1e-3, batch 40, LOSO; full model and the four ablations, each stage
    with the paper's ACC and F1."""
    from moodops.orchestrator.pipeline import _validate, load_spec

    spec = load_spec("dfcn_deap")
    face18 = [1, 2, 4, 6, 7, 8, 9, 10, 12, 13, 15, 16, 17, 18, 19, 20, 21, 22]
    runs = {s.name: _validate(s, {}, "dfcn_deap", True) for s in spec.stages}
    assert len(runs) == 10
    for label in ("valence", "arousal"):
        names = [f"loso-{label}", *(f"{label}-{v}" for v in ("baseline", "no_prior", "no_nonlocal", "no_stfenet"))]
        assert {runs[n].variant for n in names} == {"full", "baseline", "no_prior", "no_nonlocal", "no_stfenet"}
        for n in names:
            c = runs[n]
            assert (c.protocol, c.dataset, c.label, c.threshold, c.model, c.feature, c.window_s, c.seq_len,
                    c.batch_size, c.lr, c.optimizer) == ("loso", "deap", label, 5.0, "dfcn", "dfc", 3.0, 20, 40,
                                                         1e-3, "adam"), n
            uses_face = c.variant in ("full", "no_nonlocal", "no_stfenet")
            assert c.subjects == (list(range(1, 23)) if uses_face else face18), n
            entries = spec.paper["stages"][n]
            assert [e["metric"] for e in entries] == ["accuracy", "f1"], n
    assert [e["mean"] for e in spec.paper["stages"]["loso-arousal"]] == [68.47, 74.68]
    assert [e["mean"] for e in spec.paper["stages"]["valence-no_stfenet"]] == [65.51, 67.18]


def test_pipeline_set_overrides_every_run_stage_and_checks_each(tmp_path):
    from moodops.components.errors import ConfigError
    from moodops.orchestrator.pipeline import load_spec, with_overrides

    spec = load_spec("mood_reader_seed")
    quick = with_overrides(spec, {"epochs": "2", "synthetic_subjects": "2"})
    for before, after in zip(spec.stages, quick.stages):
        if before.kind == "run":
            assert after.config["epochs"] == "2" and after.config["synthetic_subjects"] == "2"
        else:
            assert after.config == before.config  # the pretraining stage is left alone
    assert spec.stages[1].config["epochs"] == 30  # the spec itself is unchanged
    with pytest.raises(ConfigError, match=r"--set, stage 2 \(finetune-window\): unknown key 'epoch'"):
        with_overrides(spec, {"epoch": "2"})
    with pytest.raises(ConfigError, match="epochs"):
        with_overrides(spec, {"epochs": "0"})


def test_pipeline_set_pretrain_overrides_every_pretrain_stage_and_checks_each():
    from moodops.components.errors import ConfigError
    from moodops.orchestrator.pipeline import load_spec, with_overrides

    spec = load_spec("mmv_sstma_seed_iv")
    quick = with_overrides(spec, {"epochs": "2"}, {"epochs": 1, "synthetic_subjects": 1})
    assert quick.stages[0].kind == "pretrain"
    assert quick.stages[0].config["epochs"] == 1 and quick.stages[0].config["synthetic_subjects"] == 1
    assert quick.stages[0].config["lr"] == spec.stages[0].config["lr"]  # the rest of the stage is kept
    assert all(s.config["epochs"] == "2" for s in quick.stages[1:])
    assert spec.stages[0].config["epochs"] == 20  # the spec itself is unchanged
    only_pretrain = with_overrides(spec, {}, {"epochs": 1})
    assert [s.config for s in only_pretrain.stages[1:]] == [s.config for s in spec.stages[1:]]
    for bad, message in [({"epoch": 1}, r"--set-pretrain, stage 1 \(pretrain\): unknown pretrain key 'epoch' "
                                         r"\(did you mean 'epochs'\?\)"),
                         ({"epochs": "x"}, r"--set-pretrain, stage 1 \(pretrain\): 'epochs' must be int, "
                                           r"got 'x'"),
                         ({"epochs": 0}, r"--set-pretrain, stage 1 \(pretrain\): .*'epochs' parameter must be "
                                         r">= 1. Got 0"),
                         ({"lr": True}, r"--set-pretrain, stage 1 \(pretrain\): 'lr' must be float, got True")]:
        with pytest.raises(ConfigError, match=message):
            with_overrides(spec, {}, bad)
    with pytest.raises(ConfigError, match="--set-pretrain: dfcn_deap has no pretrain stage"):
        with_overrides(load_spec("dfcn_deap"), {}, {"epochs": 1})


def test_pipeline_cli_set_pretrain_rejects_a_bad_value_in_one_line(tmp_path):
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}  # the migrated empty store the tests start from
    proc = moodops("pipeline", "run", "mmv_sstma_seed_iv", "--synthetic", "--set-pretrain", "epochs=many",
                   cwd=tmp_path)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].endswith("--set-pretrain, stage 1 (pretrain): 'epochs' must be int, got 'many'"), \
        proc.stderr
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before, "nothing is written when refused"


@pytest.mark.slow
def test_dfcn_preset_runs_end_to_end_on_synthetic_deap_with_faces(tmp_path):
    """`moodops pipeline run dfcn_deap --synthetic`, shrunk with --set: every Table 2 row on both labels runs
    LOSO on synthetic DEAP with face features (the loader leaves out the subject with a missing face CSV where
    the variant reads faces; --set subjects replaces the preset's list of 18, so the others keep it), and the
    pipeline ends with the paper's ACC and F1 beside this run's."""
    out = tmp_path / "out.json"
    proc = moodops("pipeline", "run", "dfcn_deap", "--synthetic", "--output-json", str(out),
                   "--set", "epochs=1", "--set", "synthetic_subjects=4", "--set", "subjects=1-4",
                   "--set", "synthetic_trials=6", "--set", "synthetic_seconds=12", "--set", "seq_len=4",
                   cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    # the release's face layout: subject 3 misses its last face CSV and is left out when face is requested
    assert "DEAP subject 3 left out (face requested): 1 face CSV(s) missing" in proc.stderr
    stages = {s["name"]: s for s in json.loads(out.read_text())["stages"]}
    assert len(stages) == 10
    for name, stage in stages.items():
        m = stage["metrics"]
        face = name.startswith("loso-") or name.endswith(("no_nonlocal", "no_stfenet"))  # the variants with a prior
        assert m["n_folds"] == (3 if face else 4) and 0.0 <= m["test_accuracy_mean"] <= 1.0, name
        assert "test_f1_mean" in m and "test_macro_f1_mean" in m, stage["name"]  # binary targets: both F1s
    client, _ = client_for(tmp_path)
    variants = {n: client.get_run(s["run_id"]).data.tags["moodops.variant"] for n, s in stages.items()}
    assert variants["valence-no_stfenet"] == "no_stfenet" and variants["arousal-baseline"] == "baseline"
    lines = proc.stdout.splitlines()
    start = lines.index(SYNTHETIC_WARNING)
    assert lines[start + 1].startswith("paper vs this run (accuracy and f1 %, Zheng et al. 2023")
    table = [line.split() for line in lines[start + 3:start + 23]]
    assert [(row[0], row[1]) for row in table[:2]] == [("loso-valence", "ACC"), ("loso-valence", "F1")]
    assert table[1][2:5] == ["69.17", "±", "9.01"] and len(table) == 20


@pytest.mark.slow
def test_mv_sstma_preset_stages_run_from_one_two_modality_pretraining(tmp_path):
    """Four stages of `mmv_sstma_seed_iv` as the preset writes them (tiny widths, 1 epoch, 1 synthetic subject):
    the two-modality pretraining feeds the EEG-only model (Table 2's MV-SSTMA-EEG) and the eye-only model
    (Table 1's EYE w/ pretraining), each leaving the other extractor out, and Table 4's stage (10 labelled
    samples, 70 % of fine-tuning and test channels masked) runs; every stage is reported beside the paper."""
    import yaml

    from moodops.orchestrator.pipeline import resolve_spec_path

    preset = yaml.safe_load(resolve_spec_path("mmv_sstma_seed_iv").read_text())
    keep = ["pretrain", "t2-eeg", "t1-eye-pretrained", "t4-attention-mask70"]
    preset["stages"] = [s for s in preset["stages"] if s["name"] in keep]
    preset["paper"]["stages"] = {k: v for k, v in preset["paper"]["stages"].items() if k in keep}
    spec = tmp_path / "mmv_subset.yaml"
    spec.write_text(yaml.safe_dump(preset, sort_keys=False))
    tiny = 'model_params={"dim": 8, "depth": 1, "heads": 2}'
    out = tmp_path / "out.json"
    proc = moodops("pipeline", "run", str(spec), "--synthetic", "--output-json", str(out),
                   "--set", "epochs=1", "--set", "synthetic_subjects=1", "--set", "synthetic_seconds=60",
                   "--set", tiny, "--set-pretrain", "epochs=1", "--set-pretrain", "synthetic_subjects=1",
                   "--set-pretrain", tiny, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the encoder's part for input(s) eye is left out: variant eeg does not use it" in proc.stderr
    assert "the encoder's part for input(s) x is left out: variant eye does not use it" in proc.stderr
    stages = {s["name"]: s for s in json.loads(out.read_text())["stages"]}
    assert list(stages) == keep
    encoder = stages["pretrain"]["encoder"]
    client, _ = client_for(tmp_path)
    for name in keep[1:]:
        m = stages[name]["metrics"]
        assert m["n_folds"] == 3 and 0.0 <= m["test_accuracy_mean"] <= 1.0, name  # one subject, three sessions
        run = client.get_run(stages[name]["run_id"])
        assert run.data.tags["moodops.encoder_uri"] == encoder, name
    assert client.get_run(stages["t4-attention-mask70"]["run_id"]).data.params["mask_ratio_eval"] == "0.7"
    lines = proc.stdout.splitlines()
    start = lines.index(SYNTHETIC_WARNING)
    rows = [line.split() for line in lines[start + 3:start + 6]]
    assert [r[0] for r in rows] == keep[1:]
    assert rows[0][1:4] == ["87.78", "±", "6.90"] and rows[2][1] == "86.74"

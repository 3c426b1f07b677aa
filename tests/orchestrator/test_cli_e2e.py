"""End-to-end: the real `moodops` command on Ray and a temporary MLflow store.

The runs join the session's shared Ray cluster (``use_shared_ray``, see conftest.py); starting a Ray
of their own is what the resume and fault tests exercise."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _ray_cluster import clean_env, moodops_env, shared_token_env
from moodops.components.datasets.deap.synthetic_deap import write_synthetic_deap

MOODOPS = str(Path(sys.executable).with_name("moodops"))
N_SUBJECTS = 4

pytestmark = pytest.mark.usefixtures("use_shared_ray")


@pytest.fixture(scope="module")
def easy_deap(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("deap")
    write_synthetic_deap(root, n_subjects=N_SUBJECTS, n_trials=20, seconds=20, seed=1, effect=4.0)
    return root


def moodops(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """The command as a user runs it; on the session's shared Ray cluster under ``use_shared_ray``."""
    return subprocess.run([MOODOPS, *args], cwd=cwd, env=moodops_env(), capture_output=True, text=True, timeout=timeout)


def mlflow_client(cwd: Path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")


def children_of(client, experiment_id: str, parent: str):
    return client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent}'")


@pytest.mark.slow
def test_loso_end_to_end(easy_deap, tmp_path):
    out = tmp_path / "result.json"
    proc = moodops("run", "loso", "--dataset", "deap", "--root", str(easy_deap), "--model", "linear",
                   "--epochs", "15", "--cpus-per-fold", "1", "--output-json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in proc.stdout and "MLflow parent run" in proc.stdout
    result = json.loads(out.read_text())
    subjects = [tuple(f["test_subjects"]) for f in result["folds"]]
    assert sorted(subjects) == [(s,) for s in range(1, N_SUBJECTS + 1)]
    assert result["aggregate"]["test_accuracy_mean"] > 0.75, result["aggregate"]
    assert result["leakage"] == 0.0
    # a binary target: the positive class's F1 beside accuracy and macro-F1, per fold and summarised
    assert all(0.0 <= f["f1"] <= 1.0 for f in result["folds"])
    f1 = result["aggregate"]["test_f1_mean"]
    assert f1 == pytest.approx(np.mean([f["f1"] for f in result["folds"]]))
    assert f"F1 (positive class) {f1:.3f} ± {result['aggregate']['test_f1_std']:.3f}" in proc.stdout

    client = mlflow_client(tmp_path)
    parent = client.get_run(result["parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["test_accuracy_mean"] == pytest.approx(result["aggregate"]["test_accuracy_mean"])
    assert "test_accuracy_std" in parent.data.metrics and "leakage_test_in_train_fraction" in parent.data.metrics
    assert parent.data.metrics["test_f1_mean"] == pytest.approx(result["aggregate"]["test_f1_mean"])
    for tag in ("moodops.config_hash", "moodops.dataset_fingerprint", "moodops.git_commit"):
        assert parent.data.tags.get(tag), tag
    assert parent.data.tags["moodops.n_channels"] == "32" and parent.data.tags["moodops.n_sessions"] == "1"
    # The MLflow UI opens on it: the experiment is model development (not the GenAI view), the summary line
    # names the runs table in the machine-learning view, the dataset fills the Dataset column, and the
    # run's description is its summary table.
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    url = f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
    assert f"view it: moodops ui   then open {url}" in proc.stdout
    (dataset_input,) = parent.inputs.dataset_inputs
    assert dataset_input.dataset.name == "deap"
    assert dataset_input.dataset.digest == parent.data.tags["moodops.dataset_fingerprint"]
    assert json.loads(dataset_input.dataset.source) == {"uri": str(easy_deap)}
    assert [(t.key, t.value) for t in dataset_input.tags] == [("mlflow.data.context", "training")]
    note = parent.data.tags["mlflow.note.content"]
    assert f"accuracy {result['aggregate']['test_accuracy_mean']:.3f} ± " in note
    assert note.count("\n| subject-") == N_SUBJECTS
    assert "| fold | test subjects | accuracy | macro-F1 | F1 (positive class) | best epoch | seconds |" in note
    table = client.download_artifacts(parent.info.run_id, "per_subject.csv", str(tmp_path))
    assert Path(table).read_text().splitlines()[0].split(",")[3:6] == ["accuracy", "macro_f1", "f1"]
    parent_artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"per_subject.csv", "per_subject_accuracy.png", "confusion_matrix.png", "config.json",
            "leakage_audit.json"} <= parent_artifacts

    children = children_of(client, parent.info.experiment_id, parent.info.run_id)
    assert len(children) == N_SUBJECTS
    assert sorted(c.data.tags["moodops.test_subjects"] for c in children) == [str(s) for s in range(1, N_SUBJECTS + 1)]
    for child in children:
        assert child.info.status == "FINISHED"
        assert 0.0 <= child.data.metrics["test_accuracy"] <= 1.0
        assert "test_macro_f1" in child.data.metrics and child.data.metrics["n_test"] > 0
        assert 0.0 <= child.data.metrics["test_f1"] <= 1.0
        assert child.data.tags["moodops.ray_node_id"] not in ("", "local")
        history = client.get_metric_history(child.info.run_id, "val_loss")
        assert len(history) >= 1 and [m.step for m in history] == list(range(1, len(history) + 1))
        assert [a.path for a in client.list_artifacts(child.info.run_id, "model")] == ["model/weights.pt"]

    # The weights artifact loads with weights_only=True and reproduces the model.
    import torch

    from moodops.pipelines.evaluate import load_fold_model

    local = client.download_artifacts(children[0].info.run_id, "model/weights.pt", str(tmp_path))
    model, checkpoint = load_fold_model(Path(local).read_bytes())
    assert checkpoint["model"] == "linear" and isinstance(model, torch.nn.Module)


@pytest.mark.slow
def test_fold_error_fails_the_run_with_its_message(easy_deap, tmp_path):
    proc = moodops("run", "split", "--dataset", "deap", "--root", str(easy_deap), "--model", "mood_reader",
                   "--variant", "stib_cf", "--epochs", "1", "--set", 'model_params={"heads": 3}', cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("moodops: error: fold split-trial failed: ConfigError")
    assert "heads=3" in lines[-1]
    assert "Traceback" not in proc.stderr
    client = mlflow_client(tmp_path)
    parent = client.search_runs([client.get_experiment_by_name("moodops").experiment_id],
                                "tags.`moodops.protocol` = 'split'")[0]
    assert parent.info.status == "FAILED"
    children = children_of(client, parent.info.experiment_id, parent.info.run_id)
    assert [c.info.status for c in children] == ["FAILED"]


@pytest.mark.slow
def test_folds_packed_per_task_keep_their_own_results_child_runs_and_ledger(easy_deap, tmp_path):
    """--folds-per-task 3 over 4 folds: two Ray tasks (3 packed folds and 1), and still a result, a
    finished child run with its per-epoch curve and a ledger entry per fold; a bad value is refused."""
    out = tmp_path / "result.json"
    proc = moodops("run", "loso", "--dataset", "deap", "--root", str(easy_deap), "--model", "mood_reader",
                   "--variant", "stib_cf", "--epochs", "10", "--folds-per-task", "3", "--set", "patience=10", "--set",
                   'model_params={"dim": 16, "heads": 2}', "--set", f"cache_dir={tmp_path / 'cache'}",
                   "--output-json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "running 4 fold(s) on Ray, packed 3 per task (2 tasks): 1 CPU per task" in proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert sorted(tuple(f["test_subjects"]) for f in result["folds"]) == [(s,) for s in range(1, N_SUBJECTS + 1)]
    assert result["aggregate"]["test_accuracy_mean"] > 0.75, result["aggregate"]
    client = mlflow_client(tmp_path)
    children = children_of(client, result["experiment_id"], result["parent_run_id"])
    assert sorted(c.info.run_name for c in children) == [f"subject-{s:02d}" for s in range(1, N_SUBJECTS + 1)]
    for child in children:
        assert child.info.status == "FINISHED" and "test_accuracy" in child.data.metrics
        assert len(client.get_metric_history(child.info.run_id, "train_loss")) == 10
    (run,) = [p for p in (tmp_path / "cache" / "runs").iterdir() if (p / "folds").is_dir()]  # a ledger entry per fold
    assert sorted(p.name for p in (run / "folds").iterdir() if not p.name.startswith(".")) == [
        f"subject-{s:02d}" for s in range(1, N_SUBJECTS + 1)]
    assert all((run / "folds" / f"subject-{s:02d}" / "weights.pt").stat().st_size > 0 for s in range(1, 5))
    bad = moodops("run", "loso", "--dataset", "deap", "--root", str(easy_deap), "--folds-per-task", "0", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1] == (
        "moodops: error: The 'folds_per_task' parameter must be 'auto' or an int >= 1. Got 0 instead.")


def test_bad_root_is_one_line_and_marks_the_parent_failed(tmp_path):
    missing = tmp_path / "no-such-deap"
    proc = moodops("run", "loso", "--dataset", "deap", "--root", str(missing), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"moodops: error: {missing}: DEAP root does not exist"
    assert "Traceback" not in proc.stderr
    client = mlflow_client(tmp_path)
    runs = client.search_runs([client.get_experiment_by_name("moodops").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "DEAP root does not exist" in runs[0].data.tags["moodops.error"]

    debug = moodops("--debug", "run", "loso", "--dataset", "deap", "--root", str(missing), cwd=tmp_path)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_unknown_names_suggest_the_closest(tmp_path):
    cwd = tmp_path / "fresh"
    cwd.mkdir()
    proc = moodops("run", "loso", "--dataset", "deep", "--synthetic", cwd=cwd)
    assert proc.returncode == 2
    assert "Allowed values are 'deap'" in proc.stderr and "Did you mean 'deap'?" in proc.stderr
    proc = moodops("run", "loso", "--synthetic", "--label", "valance", cwd=cwd)
    assert proc.returncode == 2 and "Did you mean 'valence'?" in proc.stderr
    assert not (cwd / "mlflow.db").exists()  # rejected before any tracking


def test_a_modality_the_dataset_lacks_is_refused_before_any_work(tmp_path):
    cwd = tmp_path / "fresh"
    cwd.mkdir()
    proc = moodops("run", "loso", "--dataset", "deap", "--synthetic", "--model", "mood_reader", "--variant", "full",
                   cwd=cwd)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "moodops: error: model 'mood_reader' variant 'full' needs modality eye, which dataset 'deap' does not have "
        "(it has eeg, raw_eeg, peripheral, face); variants that run on it: stib_enc_mlf, stib_enc_cf, stib_cf, stb_cf"]
    proc = moodops("run", "loso", "--synthetic", "--model", "dfcn", "--set", "feature=de", cwd=cwd)
    assert proc.returncode == 2 and "model 'dfcn' takes feature dfc or spectral_dfc, not 'de'" in proc.stderr
    assert not (cwd / "mlflow.db").exists()


@pytest.mark.slow
@pytest.mark.parametrize("model, variant, extra, n_samples, shown", [
    ("dfcn", "no_prior", ["--set", "seq_len=6"], 20, "feature dfc, 3-s windows, 6 per sample"),
    ("mood_reader", "stib_enc_mlf", [], 100, "feature de, 1-s windows, 4 per sample"),
])
def test_auto_variant_and_model_defaults(easy_deap, tmp_path, model, variant, extra, n_samples, shown):
    """--variant auto picks the fullest variant DEAP can feed; the model's window and sequence defaults apply."""
    out = tmp_path / "r.json"
    proc = moodops("run", "split", "--dataset", "deap", "--root", str(easy_deap), "--model", model, "--epochs", "2",
                   "--output-json", str(out), *extra, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"variant {variant} (auto" in proc.stderr and shown in proc.stderr
    summary = json.loads(out.read_text())
    assert summary["variant"] == variant
    fold = summary["folds"][0]
    assert fold["n_train"] + fold["n_validation"] + fold["n_test"] == N_SUBJECTS * n_samples
    client = mlflow_client(tmp_path)
    parent = client.get_run(summary["parent_run_id"])
    assert parent.data.tags["moodops.variant"] == variant
    assert parent.data.params["variant"] == variant


def test_data_synth_and_check(tmp_path):
    proc = moodops("data", "synth", "deap", "--out", str(tmp_path / "d"), "--subjects", "2", "--trials", "3",
                   "--seconds", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "d" / "data_preprocessed_python").iterdir()) == ["s01.dat", "s02.dat"]
    proc = moodops("data", "check", "deap", "--root", str(tmp_path / "d"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    table, summary = proc.stdout.strip().split("\n\n")
    header, *rows = table.splitlines()
    assert header.split()[:5] == ["subject", "file", "trials", "channels", "seconds"]
    assert [r.split()[:5] for r in rows] == [["1", "s01.dat", "3", "40", "8.00"], ["2", "s02.dat", "3", "40", "8.00"]]
    assert summary.splitlines() == [
        "missing values (imputed with the training part's mean, per fold):",
        "  eeg, peripheral: none (the loader refuses NaN there; a file holding one fails this check)",
        "2 subject file(s) OK"]

    (tmp_path / "d" / "data_preprocessed_python" / "s02.dat").write_bytes(b"\x80\x02}q\x00(U")
    proc = moodops("data", "check", "deap", "--root", str(tmp_path / "d"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "s02.dat: truncated pickle" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_list_and_help_are_fast_and_light(tmp_path):
    proc = moodops("list", "models", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.split()[0] == "dfcn"
    assert "--variant stib_enc_mlf" in proc.stdout and "needs eeg+eye" in proc.stdout
    code = ("import sys; import moodops.orchestrator.cli as c; "
            "heavy = [m for m in ('torch', 'ray', 'mlflow', 'optuna', 'mne', 'scipy') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.gpu
@pytest.mark.slow
def test_fractional_gpus_per_fold_train_on_cuda(easy_deap, tmp_path, monkeypatch):
    monkeypatch.delenv("SHARED_RAY_ADDRESS")  # a local Ray of its own, which sees the GPU
    out = tmp_path / "gpu.json"
    proc = moodops("run", "loso", "--dataset", "deap", "--root", str(easy_deap), "--model", "mood_reader", "--epochs", "3",
                   "--gpus-per-fold", "0.25", "--output-json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    folds = json.loads(out.read_text())["folds"]
    assert len(folds) == N_SUBJECTS and all(f["device"].startswith("cuda") for f in folds)


@pytest.mark.slow
def test_joins_an_existing_cluster_with_address(easy_deap, tmp_path, monkeypatch):
    """`--address` (not RAY_ADDRESS) joins a `ray start` cluster: the session's shared one."""
    shared_ray = os.environ["SHARED_RAY_ADDRESS"]
    monkeypatch.delenv("SHARED_RAY_ADDRESS")
    out = tmp_path / "joined.json"
    proc = moodops("run", "loso", "--dataset", "deap", "--root", str(easy_deap), "--model", "linear",
                   "--epochs", "2", "--subjects", "1-3", "--address", shared_ray,
                   "--output-json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    folds = json.loads(out.read_text())["folds"]
    code = (f"import ray; ray.init(address='{shared_ray}', logging_level='ERROR'); "
            "print(' '.join(n['NodeID'] for n in ray.nodes() if n['Alive']))")
    nodes = subprocess.run([sys.executable, "-c", code], env=clean_env(**shared_token_env()),
                           capture_output=True, text=True, timeout=120)
    assert nodes.returncode == 0 and nodes.stdout.split(), nodes.stderr
    assert {f["node_id"] for f in folds} == set(nodes.stdout.split()), nodes.stderr


@pytest.mark.slow
def test_per_subject_on_synthetic_seed_iv_with_mv_sstma(tmp_path):
    out = tmp_path / "r.json"
    proc = moodops("run", "per-subject", "--dataset", "seed-iv", "--synthetic", "--model", "mv_sstma", "--epochs", "2",
                   "--set", "synthetic_subjects=2", "--set", "synthetic_seconds=40", "--set", "seq_len=3",
                   "--set", 'model_params={"depth": 1, "heads": 2}',  # a small extractor: the run is under test
                   "--output-json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "variant attention (auto" in proc.stderr and "feature precomputed de_LDS" in proc.stderr
    summary = json.loads(out.read_text())
    assert summary["variant"] == "attention" and summary["label"] == "emotion"
    # MV-SSTMA fine-tunes as its paper does: no validation part, the last epoch kept.
    assert summary["val_strategy"] == "none" and "no validation part: all 2 epochs, the last kept" in proc.stderr
    assert all(f["n_validation"] == 0 and f["best_epoch"] == 2 for f in summary["folds"])
    assert summary["class_names"] == ["neutral", "sad", "fear", "happy"]
    assert [f["fold"] for f in summary["folds"]] == [f"subject-{s:02d}-session-{k}" for s in (1, 2) for k in (1, 2, 3)]
    assert summary["aggregate"]["n_subject_groups"] == 2.0
    client = mlflow_client(tmp_path)
    children = children_of(client, summary["experiment_id"], summary["parent_run_id"])
    assert len(children) == 6 and all(c.info.status == "FINISHED" for c in children)
    assert all(c.data.metrics["train_auxiliary_loss"] != 0 for c in children)  # the DCCA term was trained


@pytest.mark.slow
def test_loso_on_synthetic_seed_v_with_mood_reader(tmp_path):
    out = tmp_path / "r.json"
    proc = moodops("run", "loso", "--dataset", "seed-v", "--synthetic", "--model", "mood_reader", "--epochs", "2",
                   "--set", "synthetic_subjects=3", "--set", "synthetic_seconds=24", "--output-json", str(out),
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(out.read_text())
    assert summary["variant"] == "stib_eye_mlf"  # SEED-V ships no raw EEG for the encoder
    assert len(summary["folds"]) == 3 and summary["class_names"][0] == "disgust"
    client = mlflow_client(tmp_path)
    assert client.get_run(summary["parent_run_id"]).info.status == "FINISHED"
    # §3.5 maps: every fold and the parent (mean over folds) log the arrays and both scalp maps.
    maps = {"attention/electrode_attention.npz", "attention/topomap.png", "attention/relevance_topomap.png"}
    for run in [summary["parent_run_id"], *(c.info.run_id for c in
                                            children_of(client, summary["experiment_id"], summary["parent_run_id"]))]:
        assert maps <= {f.path for f in client.list_artifacts(run, "attention")}, run


@pytest.mark.parametrize("name, files", [("seed", "Preprocessed_EEG"), ("seed-iv", "eeg_feature_smooth"),
                                         ("seed-v", "EEG_DE_features")])
def test_data_synth_and_check_seed_family(tmp_path, name, files):
    proc = moodops("data", "synth", name, "--out", str(tmp_path / name), "--subjects", "2", "--seconds", "12",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / name / files).is_dir()
    proc = moodops("data", "check", name, "--root", str(tmp_path / name), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    table, summary = proc.stdout.strip().split("\n\n")
    header, *rows = table.splitlines()
    assert header.split()[:2] == ["subject"] + header.split()[1:2] and len(rows) == 2
    assert "eeg: none (the loader refuses NaN there" in summary
    if name != "seed":  # the synthetic SEED-IV and SEED-V have eye files
        assert header.split()[-2:] == ["eye_nan", "eye_nan_win"]
        assert re.search(r"^  eye: [\d,]+ of [\d,]+ values missing \(.*%\) in [\d,]+ of [\d,]+ windows", summary,
                         re.MULTILINE)
    assert summary.splitlines()[-1] == "2 subject file(s) OK"
    proc = moodops("data", "check", name, "--root", str(tmp_path / "missing"), cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "missing" in proc.stderr


@pytest.mark.parametrize("name, raw", [("seed-iv", "eeg_raw_data"), ("seed-v", "EEG_raw")])
def test_data_synth_with_raw_writes_the_raw_layout_the_reader_cuts_into_trials(tmp_path, name, raw):
    from moodops.components.datasets import get_dataset

    scale = ["--raw-time-scale", "0.1"] if name == "seed-v" else []
    proc = moodops("data", "synth", name, "--out", str(tmp_path / name), "--subjects", "1", "--seconds", "12",
                   "--with-raw", *scale, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / name / raw).is_dir()
    dataset_cls = get_dataset(name)
    assert "raw_eeg" in dataset_cls.present_modalities(tmp_path / name)
    dataset = dataset_cls(tmp_path / name, **({"raw_time_scale": 0.1} if name == "seed-v" else {}))
    recordings = dataset.load_subject(1)
    assert len(recordings) == (72 if name == "seed-iv" else 45)  # 24 or 15 trials × 3 sessions
    assert {r.data.shape[0] for r in recordings} == {62} and {r.sfreq for r in recordings} == {200.0}
    proc = moodops("data", "synth", "deap", "--out", str(tmp_path / "deap"), "--with-raw", cwd=tmp_path)
    assert proc.returncode == 2 and "--with-raw is for seed-iv and seed-v" in proc.stderr

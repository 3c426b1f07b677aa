"""`moodops tune`: search spaces, a planted optimum, pruning, resume after a kill, and no test leakage."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _ray_cluster import clean_env, moodops_env
from moodops.components.datasets.deap.synthetic_deap import write_synthetic_deap
from moodops.components.errors import ConfigError
from moodops.orchestrator.config import RunConfig
from moodops.orchestrator.space import SPACES_DIR, load_space

MOODOPS = str(Path(sys.executable).with_name("moodops"))
# The learning rate is what matters here: 6 epochs of a linear model learn nothing below ~1e-4.
LR_SPACE = "lr: {type: float, low: 1.0e-6, high: 1.0e-1, log: true}\n"


@pytest.fixture(scope="module")
def deap(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("deap")
    write_synthetic_deap(root, n_subjects=5, n_trials=12, seconds=12, seed=3, effect=3.0)
    return root


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def base_config(root: Path, tmp: Path, **kw) -> RunConfig:
    values = dict(protocol="loso", dataset="deap", root=str(root), model="linear", epochs=6, seed=0,
                  tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}", cache_dir=str(tmp / "cache"))
    values.update(kw)
    return RunConfig(**values)


# --------------------------------------------------------------------------- spaces


def test_every_default_space_loads_for_its_model():
    from moodops.components.models import MODELS

    for path in sorted(SPACES_DIR.glob("*.yaml")):
        info = MODELS.get(path.stem)
        space = load_space(None, path.stem, info.variants[0].name, {})
        assert space.params, path


def test_heads_keep_only_divisors_of_the_width_and_conditions_hold(tmp_path):
    import optuna

    path = tmp_path / "space.yaml"
    path.write_text("dim: {type: categorical, choices: [12, 24]}\n"
                    "heads: {type: categorical, choices: [1, 2, 3, 4, 5, 8], divides: dim}\n"
                    "fusion_temperature: {type: float, low: 0.5, high: 2.0, when: {variant: stib_eye_mlf}}\n")
    space = load_space(path, "mood_reader", "stib_eye_mlf", {})
    assert next(p for p in space.params if p.name == "heads").choices == [1, 2, 3, 4]
    study = optuna.create_study()
    mlf = space.suggest(study.ask(), {"variant": "stib_eye_mlf"})
    cf = space.suggest(study.ask(), {"variant": "stib_eye_cf"})
    assert "fusion_temperature" in mlf and "fusion_temperature" not in cf
    run, model = space.split(mlf)
    assert run == {} and set(model) == {"dim", "heads", "fusion_temperature"}
    # Without dim in the space the model's default width (32) decides.
    path.write_text("heads: {type: categorical, choices: [3, 4, 6, 8], divides: dim}\n")
    assert load_space(path, "mood_reader", "stib_cf", {}).params[0].choices == [4, 8]


def test_mv_sstma_space_tries_the_papers_six_heads_and_each_draw_builds():
    """MV-SSTMA §3.2 sets H = 6 heads with D = 16; a head's width is its own (head_dim), so the default space
    offers 6 with every width, and the model builds and runs with each (heads, dim) the space can draw."""
    import torch

    from moodops.components.models import create_model

    space = load_space(None, "mv_sstma", "eeg", {})
    choices = {p.name: p.choices for p in space.params if p.name in ("heads", "dim")}
    assert 6 in choices["heads"] and 16 in choices["dim"]
    for dim in choices["dim"]:
        for heads in choices["heads"]:
            model = create_model("mv_sstma", {"x": (3, 8, 5)}, 4, variant="eeg", dim=dim, heads=heads, depth=1,
                                 decoder_depth=1)
            assert model(torch.randn(2, 3, 8, 5)).shape == (2, 4), (dim, heads)


@pytest.mark.parametrize("body, message", [
    ("lr: {type: float, low: 1.0, high: 0.1}", "below"),
    ("lr: {type: float, low: 0, high: 0.1, log: true}", "log"),
    ("widht: {type: int, low: 1, high: 3}", "not a setting"),
    ("heads: {type: categorical, choices: [3], divides: dim}", "divides"),
    ("lr: {type: uniform, low: 0, high: 1}", "type"),
    ("dropout: {type: float, low: 0, high: 1, when: {nope: 1}}", "when"),
    ("interlink: {type: categorical, choices: [true, false]}", "variant"),
])
def test_bad_spaces_are_one_line_errors(tmp_path, body, message):
    path = tmp_path / "space.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message) as info:
        load_space(path, "mood_reader", "stib_cf", {})
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- search


def test_search_finds_the_planted_optimum_and_prunes(deap, tmp_path, ray_local):
    from moodops.orchestrator.tune import TuneOptions, run_tune

    space = tmp_path / "space.yaml"
    space.write_text(LR_SPACE)
    options = TuneOptions(trials=12, space=str(space), storage=str(tmp_path / "j.log"), holdout=[5],
                          seed=0, export=str(tmp_path / "best.yaml"))
    summary = run_tune(base_config(deap, tmp_path), options)
    (study,) = summary.studies
    assert study.n_complete + study.n_pruned == 12
    assert study.n_pruned >= 1  # hopeless learning rates stopped early
    assert summary.best_params["lr"] > 1e-3, summary.best_params
    assert study.best_value > 0.75
    assert study.outer_test_subjects == (5,)
    exported = (tmp_path / "best.yaml").read_text()
    assert "lr:" in exported and exported.startswith("# best inner-validation trial")

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    parent = client.get_run(summary.parent_run_id)
    assert parent.info.status == "FINISHED" and "outer_accuracy_mean" in parent.data.metrics
    trials = client.search_runs([parent.info.experiment_id], f"tags.`moodops.kind` = 'trial'")
    assert len(trials) == 12
    assert {t.data.tags["moodops.trial_state"] for t in trials} == {"COMPLETE", "PRUNED"}
    inner = client.search_runs([parent.info.experiment_id], f"tags.`moodops.kind` = 'inner-fold'")
    assert inner and all(r.data.tags["mlflow.parentRunId"] in {t.info.run_id for t in trials} for r in inner)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "study")}
    assert {"study/optimization_history.png", "study/param_importances.png",
            "study/parallel_coordinate.png"} <= artifacts


def test_objective_never_reads_the_test_subject(deap, tmp_path, ray_local, monkeypatch):
    """Poison the held-out subject's features and labels: every trial must come out exactly the same."""
    import moodops.orchestrator.run as run_module
    from moodops.orchestrator.tune import TuneOptions, run_tune

    real = run_module.prepare_features
    space = tmp_path / "space.yaml"
    space.write_text(LR_SPACE + "weight_decay: {type: float, low: 1.0e-6, high: 1.0e-2, log: true}\n")

    def poisoned(config, reporter):
        features = real(config, reporter)
        test = features.column("subject") == 2
        x = features.x.copy()
        x[test] = 1e6 * np.random.default_rng(0).normal(size=x[test].shape)
        y = features.y.copy()
        y[test] = 1 - y[test]
        return dataclasses.replace(features, x=x, y=y)

    def trials(run_name: str):
        options = TuneOptions(trials=5, space=str(space), storage=str(tmp_path / f"{run_name}.log"), holdout=[2],
                              seed=1, pruner="none")
        summary = run_tune(base_config(deap, tmp_path / run_name), options)
        import optuna

        from moodops.orchestrator.tune import open_storage

        study = optuna.load_study(study_name=summary.studies[0].name, storage=open_storage(options.storage))
        return [(t.params, t.value) for t in study.trials], summary.studies[0].outer_metrics["accuracy"]

    (tmp_path / "clean").mkdir()
    (tmp_path / "poisoned").mkdir()
    clean, clean_outer = trials("clean")
    monkeypatch.setattr(run_module, "prepare_features", poisoned)
    dirty, dirty_outer = trials("poisoned")
    assert clean == dirty  # identical parameters and objective values, trial by trial
    assert clean_outer != dirty_outer  # while the test subject itself did change


# --------------------------------------------------------------------------- resume


def test_killed_study_resumes_to_n_trials_without_duplicates(deap, tmp_path, use_shared_ray):
    import optuna
    from mlflow import MlflowClient
    from optuna.trial import TrialState

    from moodops.orchestrator.tune import open_storage

    space = tmp_path / "space.yaml"
    space.write_text(LR_SPACE + "epochs: {type: int, low: 200, high: 400}\n")  # a second or two per trial
    journal = tmp_path / "journal.log"
    command = [MOODOPS, "tune", "--dataset", "deap", "--root", str(deap), "--model", "linear", "--holdout", "5",
               "--trials", "4", "--space", str(space), "--study", "resumable", "--storage", str(journal),
               "--pruner", "none", "--set", "patience=100000"]
    # The killed study runs on a Ray of its own (killing its process group takes that Ray down); the
    # resumed one joins the session's shared cluster.
    proc = subprocess.Popen(command, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    finished = 0
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if journal.exists():
            try:
                study = optuna.load_study(study_name="resumable", storage=open_storage(str(journal)))
            except KeyError:  # the journal exists before the study record is written
                continue
            states = [t.state for t in study.trials]
            finished = states.count(TrialState.COMPLETE)
            if finished >= 2 and TrialState.RUNNING in states:
                # Killed once the running trial has its MLflow run (not between ask() and create_run,
                # where the resume would find no trial run to close).
                running = {str(t.number) for t in study.trials if t.state == TrialState.RUNNING}
                client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
                if any(r.data.tags.get("moodops.trial") in running for r in client.search_runs(
                        [e.experiment_id for e in client.search_experiments()], "attributes.status = 'RUNNING'")):
                    break
        assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its Ray die mid-trial
    proc.wait()
    assert finished >= 2
    interrupted = [t.number for t in study.trials if t.state == TrialState.RUNNING]
    assert interrupted

    out = tmp_path / "resumed.json"
    done = subprocess.run(command + ["--output-json", str(out)], cwd=tmp_path, env=moodops_env(), capture_output=True,
                          text=True, timeout=400)
    assert done.returncode == 0, done.stderr
    assert "left running by a stopped driver" in done.stderr
    study = optuna.load_study(study_name="resumable", storage=open_storage(str(journal)))
    by_state = {s: [t for t in study.trials if t.state == s] for s in TrialState}
    assert len(by_state[TrialState.COMPLETE]) + len(by_state[TrialState.PRUNED]) == 4
    assert [t.number for t in by_state[TrialState.FAIL]] == interrupted
    assert not by_state[TrialState.RUNNING]
    finished_params = [tuple(sorted(t.params.items())) for t in by_state[TrialState.COMPLETE] + by_state[TrialState.PRUNED]]
    assert len(set(finished_params)) == len(finished_params)  # the resumed sampler drew new parameters
    # The killed driver's MLflow runs (its parent and the trial it was running) were closed by the resume.
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert {r.data.tags.get("moodops.kind", "parent") for r in killed} >= {"trial"} and len(killed) >= 2
    assert "closed" in done.stderr and "left RUNNING, as KILLED" in done.stderr
    finished_params = [json.dumps(t.params, sort_keys=True) for t in by_state[TrialState.COMPLETE]]
    assert len(set(finished_params)) == len(finished_params)  # no trial ran twice
    retried = [t for t in by_state[TrialState.COMPLETE] if "moodops_retry_of" in t.user_attrs]
    assert sorted(t.user_attrs["moodops_retry_of"] for t in retried) == interrupted
    assert json.loads(out.read_text())["studies"][0]["n_complete"] == 4


def test_tune_refuses_dishonest_setups(deap, tmp_path):
    from moodops.orchestrator.tune import TuneOptions, outer_folds

    config = base_config(deap, tmp_path)
    with pytest.raises(ConfigError, match="--nested"):
        outer_folds(config, TuneOptions(), None)
    with pytest.raises(ConfigError, match="exclude"):
        TuneOptions(nested=True, holdout=[1])


def test_exported_parameters_feed_run_params_under_flags(tmp_path):
    from moodops.orchestrator.config import resolve_config
    from moodops.orchestrator.space import load_space
    from moodops.orchestrator.tune import export_params

    space_file = tmp_path / "space.yaml"
    space_file.write_text("lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n"
                          "dim: {type: categorical, choices: [16, 32]}\n")
    space = load_space(space_file, "mood_reader", "stib_cf", {})
    best = tmp_path / "best.yaml"
    export_params(best, {"lr": 0.002, "dim": 16}, space, "test")
    base = tmp_path / "run.yaml"
    base.write_text("model_params: {heads: 2}\nepochs: 7\n")
    config = resolve_config({"dataset": "deap", "synthetic": True}, base, environ={}, params_path=best)
    assert config.lr == 0.002 and config.epochs == 7
    assert config.model_params == {"heads": 2, "dim": 16}
    flagged = resolve_config({"dataset": "deap", "synthetic": True, "lr": 0.1}, None, environ={}, params_path=best)
    assert flagged.lr == 0.1  # a flag still wins over tuned parameters


def test_a_resumed_study_does_not_draw_its_first_trials_parameters_again(tmp_path):
    """Reopened from its journal, the study's sampler is seeded past the trials it holds: with the seed
    alone, the first random draw after a resume was trial 0's parameters exactly."""
    from moodops.orchestrator.tune import TuneOptions, _make_study, open_storage

    storage = open_storage(str(tmp_path / "journal.log"))
    options = TuneOptions(trials=6, pruner="none")  # 2 random start-up trials
    first = _make_study("s", storage, options, 10)
    trial = first.ask()
    x = trial.suggest_float("lr", 1e-6, 1e-1, log=True)
    first.tell(trial, 0.5)
    resumed = _make_study("s", open_storage(str(tmp_path / "journal.log")), options, 10)
    again = resumed.ask().suggest_float("lr", 1e-6, 1e-1, log=True)
    assert again != x

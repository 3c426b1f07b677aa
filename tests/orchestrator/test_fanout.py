"""Ray fan-out: retries for dead workers, none for Python errors, results per fold."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from moodops.components.protocols import LeaveOneSubjectOut
from moodops.orchestrator.fanout import FoldFailedError, _fold_task, run_folds
from moodops.pipelines.train import TrainConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_local():
    import ray
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import test modules
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def features(labelled_features):
    return labelled_features(n_subjects=3, n_trials=6, seconds=8, seed=0, effect=3.0, seq_len=2)


def crash_once_task(marker_dir: str):
    def task(config, fold, features, threads):
        marker = Path(marker_dir) / f"{fold.name}.attempts"
        with marker.open("a") as f:
            f.write("x")
        if fold.name == "subject-02" and len(marker.read_text()) == 1:
            os._exit(1)  # the worker process dies without a Python exception
        return _fold_task(config, fold, features, threads)

    return task


def error_task(marker_dir: str):
    def task(config, fold, features, threads):
        with (Path(marker_dir) / f"{fold.name}.attempts").open("a") as f:
            f.write("x")
        if fold.name == "subject-01":
            raise ValueError("bad value 42 in fold")
        return _fold_task(config, fold, features, threads)

    return task


def test_dead_worker_is_retried_and_every_fold_finishes_once(ray_local, features, tmp_path):
    folds = LeaveOneSubjectOut(seed=0).split(features)
    seen = []
    results = run_folds(folds, features, TrainConfig(model="linear", epochs=2), cpus_per_fold=1, gpus_per_fold=0,
                        max_retries=2, on_result=lambda fold, result: seen.append(fold.name),
                        task=crash_once_task(str(tmp_path)))
    assert sorted(seen) == sorted(f.name for f in folds)
    assert sorted(r.fold for r in results) == sorted(f.name for f in folds)
    assert (tmp_path / "subject-02.attempts").read_text() == "xx"  # crashed once, retried once
    assert (tmp_path / "subject-01.attempts").read_text() == "x"
    assert all(r.node_id for r in results)


def test_python_error_is_not_retried_and_names_the_fold(ray_local, features, tmp_path):
    folds = LeaveOneSubjectOut(seed=0).split(features)
    abandoned = []
    with pytest.raises(FoldFailedError, match=r"fold subject-01 failed: ValueError: bad value 42 in fold"):
        run_folds(folds, features, TrainConfig(model="linear", epochs=50), cpus_per_fold=1, gpus_per_fold=0,
                  max_retries=3, on_result=lambda fold, result: None,
                  on_abandon=lambda fold, reason: abandoned.append(fold.name), task=error_task(str(tmp_path)))
    assert (tmp_path / "subject-01.attempts").read_text() == "x"
    assert "subject-01" not in abandoned


def test_token_auth_reaches_ray_even_when_ray_was_imported_first(tmp_path):
    """`pretrain` and `tune` import ray.train / ray.tune before joining: the token mode must still apply
    (before the fix, they joined a token cluster without the token and were refused)."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("x" * 32)
    code = ("import ray, ray._raylet as r; from moodops.orchestrator.fanout import _token_auth_for; "
            "before = r.get_authentication_mode(); _token_auth_for('127.0.0.1:1'); "
            "print(before == r.AuthenticationMode.TOKEN, r.get_authentication_mode() == r.AuthenticationMode.TOKEN)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    out = subprocess.run([sys.executable, "-c", code], env={**env, "HOME": str(home)}, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]

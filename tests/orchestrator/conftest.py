"""Orchestrator tests run the real `moodops` command in a fresh directory each, with the default
tracking store ``./mlflow.db``. Creating an MLflow SQLite store runs its schema migrations, about 8 s
on two cores; the store is made once per session, by MLflow itself, and each test's directory gets a
copy of that empty store (the same file a first run would create), so a test pays for what it tests.

Starting a local Ray takes about 7 s of each `moodops` process, and stopping it 1.5 s more. Tests of
what a run does (not of how it starts or survives Ray) use ``use_shared_ray``: their `moodops`
processes join one cluster started for the session (RAY_ADDRESS), as a user's runs join a cluster.
Fault tests (killed drivers, lost nodes) keep a Ray of their own."""
from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def _empty_mlflow_store(tmp_path_factory) -> Path:
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()  # creates and migrates the schema
    return path


@pytest.fixture(autouse=True)
def _ready_mlflow_store(request):
    """A copy of the migrated empty store at ``tmp_path/mlflow.db`` for tests that use ``tmp_path``
    (tests that check nothing was tracked run the command in a sub-directory)."""
    if "tmp_path" not in request.fixturenames:
        return
    target = request.getfixturevalue("tmp_path") / "mlflow.db"
    if not target.exists():
        shutil.copyfile(request.getfixturevalue("_empty_mlflow_store"), target)


@pytest.fixture(scope="session")
def shared_ray():
    """A one-node Ray cluster for the session (as many CPUs as a local Ray would get); (address, token)."""
    from _ray_cluster import free_port, start_node, stop_node

    # A token of its own (not ~/.ray/auth_token, which may be absent when the cluster starts and written
    # later by any local ray.init): clients in token mode cannot run Ray Train on a cluster without one.
    token = secrets.token_hex(16)
    node = start_node("--num-cpus", str(os.cpu_count() or 2), "--include-dashboard", "false", head_port=free_port(),
                      RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    try:
        yield node.address, token
    finally:
        stop_node(node)


@pytest.fixture()
def use_shared_ray(shared_ray, monkeypatch):
    """`moodops` processes this test starts through the helpers join the shared cluster."""
    address, token = shared_ray
    monkeypatch.setenv("SHARED_RAY_ADDRESS", address)
    monkeypatch.setenv("SHARED_RAY_TOKEN", token)

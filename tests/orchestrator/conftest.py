"""Orchestrator tests run the real `moodops` command in a fresh directory each, with the default
tracking store ``./mlflow.db``. Creating an MLflow SQLite store runs its schema migrations, about 8 s
on two cores; the store is made once per session, by MLflow itself, and each test's directory gets a
copy of that empty store (the same file a first run would create), so a test pays for what it tests."""
from __future__ import annotations

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

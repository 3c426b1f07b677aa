"""A killed driver resumes from its finished folds; a tracking server that goes away loses no fold result.

Real processes throughout: the `moodops` command, Ray (a local one for the run
that is killed, the session's shared cluster otherwise), and (for the tracking
faults) a real `mlflow server` on loopback that is stopped and started again.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _ray_cluster import clean_env, free_port, moodops_env
from moodops.components.datasets.deap.synthetic_deap import write_synthetic_deap

BIN = Path(sys.executable).parent
MOODOPS = str(BIN / "moodops")


@pytest.fixture(scope="module")
def deap(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("deap")
    write_synthetic_deap(root, n_subjects=4, n_trials=16, seconds=30, seed=2, effect=3.0)
    return root


def env() -> dict[str, str]:
    return moodops_env()  # the session's shared Ray under ``use_shared_ray``; else a local Ray per process


def run_command(deap: Path, *extra: str) -> list[str]:
    # stib_cf with a fixed number of epochs (no early stop): a few seconds per fold, so a kill lands between folds
    return [MOODOPS, "run", "loso", "--dataset", "deap", "--root", str(deap), "--model", "mood_reader",
            "--variant", "stib_cf", "--epochs", "10", "--set", "patience=1000", "--cpus-per-fold", "1", *extra]


def children(client, parent: str):
    runs = client.search_runs([client.get_run(parent).info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    return sorted((r.data.tags["moodops.fold"], r.info.status) for r in runs)


@pytest.mark.slow
def test_killed_driver_resumes_and_matches_an_uninterrupted_run(deap, tmp_path, use_shared_ray):
    from mlflow import MlflowClient

    out = tmp_path / "resumed.json"
    # The killed run starts a Ray of its own (killing its process group takes that Ray down too); the
    # resumed and the fresh run join the shared cluster, as a rerun on a cluster would.
    first = subprocess.Popen(run_command(deap, "--output-json", str(out)), cwd=tmp_path, env=clean_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    ledger_folds = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(0.3)
        folds = {p.name for p in Path(os.environ["MOODOPS_CACHE"]).glob("runs/*/folds/subject-*")
                 if (p / "result.json").is_file()}
        if len(folds) >= 2:
            ledger_folds = folds
            break
        assert first.poll() is None, first.communicate()
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert ledger_folds and len(ledger_folds) < 4, ledger_folds

    second = subprocess.run(run_command(deap, "--output-json", str(out)), cwd=tmp_path, env=env(),
                            capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stderr
    assert "resuming MLflow parent run" in second.stderr
    assert f"the last driver of this run (pid {first.pid} on " in second.stderr  # its lock: a name, no holder
    resumed = json.loads(out.read_text())
    assert set(resumed["resumed_folds"]) >= ledger_folds

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = children(client, resumed["parent_run_id"])
    finished = [f for f, status in runs if status == "FINISHED"]
    assert sorted(finished) == ["subject-01", "subject-02", "subject-03", "subject-04"]  # one per fold
    assert all(status in ("FINISHED", "FAILED") for _, status in runs)
    assert client.get_run(resumed["parent_run_id"]).info.status == "FINISHED"

    fresh_out = tmp_path / "fresh.json"
    fresh = subprocess.run(run_command(deap, "--fresh", "--output-json", str(fresh_out)), cwd=tmp_path,
                           env=env(), capture_output=True, text=True, timeout=400)
    assert fresh.returncode == 0, fresh.stderr
    fresh_result = json.loads(fresh_out.read_text())
    assert fresh_result["parent_run_id"] != resumed["parent_run_id"] and not fresh_result["resumed_folds"]
    assert fresh_result["aggregate"] == resumed["aggregate"]  # same seed: the same numbers


def folds_started() -> bool:
    """The run's child runs exist (the ledger names them): its folds are being submitted."""
    for path in Path(os.environ["MOODOPS_CACHE"]).glob("runs/*/run.json"):
        try:
            if json.loads(path.read_text()).get("children"):
                return True
        except ValueError:  # being replaced
            continue
    return False


class MlflowServer:
    """A real `mlflow server` (SQLite backend, local artifact store) on loopback, restartable."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port, self.proc = folder, free_port(), None
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
             "--artifacts-destination", str(self.folder / "artifacts"), "--host", "127.0.0.1", "--port",
             str(self.port), "--workers", "1"], cwd=self.folder, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        import urllib.request

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("mlflow server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None


@pytest.mark.slow
def test_tracking_server_restart_loses_no_fold(deap, tmp_path, use_shared_ray):
    from mlflow import MlflowClient

    server = MlflowServer(tmp_path)
    server.start()
    try:
        out = tmp_path / "out.json"
        # No HTTP retries inside the MLflow client: the outage must be handled by moodops itself.
        run_env = {**env(), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
        proc = subprocess.Popen(run_command(deap, "--tracking-uri", server.uri, "--output-json", str(out),
                                            "--set", "tracking_retry_s=120"),
                                cwd=tmp_path, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not any(Path(os.environ["MOODOPS_CACHE"]).glob("runs/*/run.json")):
            time.sleep(0.3)  # the parent run exists
        time.sleep(2)
        server.stop()  # down while folds finish (a few seconds each): up again once one has ended meanwhile
        finished = list(Path(os.environ["MOODOPS_CACHE"]).glob("runs/*/folds/subject-*/result.json"))
        while time.monotonic() < deadline and len(list(
                Path(os.environ["MOODOPS_CACHE"]).glob("runs/*/folds/subject-*/result.json"))) <= len(finished):
            time.sleep(0.3)
            assert proc.poll() is None, proc.communicate()
        time.sleep(2)  # its result has met the stopped server
        server.start()
        stdout, stderr = proc.communicate(timeout=400)
        assert proc.returncode == 0, stderr
        assert "tracking store unavailable" in stderr or "not yet in the tracking store" in stderr, stderr
        result = json.loads(out.read_text())
        client = MlflowClient(tracking_uri=server.uri)
        runs = children(client, result["parent_run_id"])
        assert [f for f, s in runs if s == "FINISHED"] == ["subject-01", "subject-02", "subject-03", "subject-04"]
        assert client.get_run(result["parent_run_id"]).info.status == "FINISHED"
    finally:
        server.stop()


@pytest.mark.slow
def test_tracking_server_gone_fails_loudly_and_a_rerun_logs_the_saved_folds(deap, tmp_path, use_shared_ray):
    from mlflow import MlflowClient

    server = MlflowServer(tmp_path)
    server.start()
    run_env = {**env(), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    command = run_command(deap, "--tracking-uri", server.uri, "--set", "tracking_retry_s=3")
    try:
        proc = subprocess.Popen(command, cwd=tmp_path, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not folds_started():
            time.sleep(0.3)
        time.sleep(1)
        server.stop()  # and it stays away (the folds are under way: their results have to wait)
        stdout, stderr = proc.communicate(timeout=400)
        assert proc.returncode != 0
        last = stderr.strip().splitlines()[-1]
        assert "tracking store unreachable" in last and "saved in" in last, stderr
        saved = list(Path(os.environ["MOODOPS_CACHE"]).glob("runs/*/folds/subject-*/result.json"))
        assert len(saved) == 4  # every fold finished and is on disk

        server.start()
        out = tmp_path / "out.json"
        again = subprocess.run(command + ["--output-json", str(out)], cwd=tmp_path, env=run_env,
                               capture_output=True, text=True, timeout=400)
        assert again.returncode == 0, again.stderr
        result = json.loads(out.read_text())
        assert len(result["resumed_folds"]) == 4  # nothing trained again
        runs = children(MlflowClient(tracking_uri=server.uri), result["parent_run_id"])
        assert [f for f, s in runs if s == "FINISHED"] == ["subject-01", "subject-02", "subject-03", "subject-04"]
    finally:
        server.stop()


@pytest.mark.slow
def test_a_second_live_run_is_refused_and_ctrl_c_exits_130_saying_what_was_saved(deap, tmp_path, use_shared_ray):
    """The same command started again while the first runs is refused in one line naming the first (no
    second parent, no folds trained twice). Then a real SIGINT to the first: one line naming the saved folds
    and the resume, status 130, the parent run KILLED (not left RUNNING), the finished folds kept."""
    from mlflow import MlflowClient

    proc = subprocess.Popen(run_command(deap), cwd=tmp_path, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    cache = Path(os.environ["MOODOPS_CACHE"])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(cache.glob("runs/*/run.json")):
        time.sleep(0.3)
        assert proc.poll() is None, proc.communicate()
    twin = subprocess.run(run_command(deap), cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120)
    assert twin.returncode == 2, twin.stderr
    assert twin.stderr.strip().splitlines()[-1].startswith(
        f"moodops: error: this run is already in progress in another moodops process (pid {proc.pid} on "), twin.stderr
    while time.monotonic() < deadline and not list(cache.glob("runs/*/folds/subject-*/result.json")):
        time.sleep(0.3)
        assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    saved = len(list(cache.glob("runs/*/folds/subject-*/result.json")))
    assert 1 <= saved < 4
    assert last.startswith(f"moodops: interrupted ({saved} of 4 fold(s) saved in ") and last.endswith(
        "re-run the same command to resume)"), stderr
    assert "Traceback" not in stderr
    ledger = json.loads(next(cache.glob("runs/*/run.json")).read_text())
    assert ledger["status"] == "KILLED"
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.get_run(ledger["parent_run_id"]).info.status == "KILLED"
    assert all(status != "RUNNING" for _, status in children(client, ledger["parent_run_id"]))
    assert len(client.search_runs([client.get_run(ledger["parent_run_id"]).info.experiment_id],
                                  "tags.moodops.protocol = 'loso'")) == 1  # the refused twin made no parent

    # Re-run logging to another store: the saved folds are reused (not trained again) and logged there.
    other = tmp_path / "other"
    other.mkdir()
    out = tmp_path / "out.json"
    again = subprocess.run(run_command(deap, "--tracking-uri", f"sqlite:///{other / 'mlflow.db'}", "--output-json",
                                       str(out)), cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stderr
    assert f"{saved} of 4 fold(s) of this run finished before" in again.stderr, again.stderr
    result = json.loads(out.read_text())
    assert len(result["resumed_folds"]) == saved
    client = MlflowClient(tracking_uri=f"sqlite:///{other / 'mlflow.db'}")
    assert [f for f, s in children(client, result["parent_run_id"]) if s == "FINISHED"] == [
        "subject-01", "subject-02", "subject-03", "subject-04"]


def test_usage_errors_exit_2_with_the_usage_line(tmp_path):
    proc = subprocess.run([MOODOPS, "run", "loso", "--bogus"], cwd=tmp_path, env=env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("Usage: moodops run [OPTIONS]") and "No such option: --bogus" in proc.stderr
    proc = subprocess.run([MOODOPS, "frobnicate"], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "No such command 'frobnicate'" in proc.stderr


def test_an_artifact_store_that_cannot_be_written_fails_the_parent_run_in_one_line(tmp_path):
    """The parent run exists before its first artifact is written: when that write fails (here ./mlartifacts
    is a file, which stops root too), the run ends FAILED with the error, and the line names the store."""
    from mlflow import MlflowClient

    work = tmp_path / "work"
    work.mkdir()
    (work / "mlartifacts").write_text("not a folder")
    proc = subprocess.run([MOODOPS, "run", "loso", "--dataset", "deap", "--synthetic", "--model", "linear",
                           "--epochs", "2", "--synthetic-subjects", "2", "--set", "synthetic_trials=4",
                           "--set", "synthetic_seconds=10"], cwd=work, env=env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"moodops: error: artifact store file://{work}/mlartifacts/") and (
        "cannot write the run's config.json: Not a directory" in last), proc.stderr
    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("moodops").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "NotADirectoryError" in runs[0].data.tags["moodops.error"]


def test_processes_opening_a_fresh_sqlite_store_together_all_get_it(tmp_path):
    """MLflow creates and migrates a SQLite store's schema on first use; four processes doing it at once
    on a fresh file failed ('table experiments already exists', 'duplicate column name') until the
    store is opened under a lock."""
    db = tmp_path / "fresh" / "mlflow.db"
    db.parent.mkdir()
    code = ("from moodops.orchestrator.tracking import Tracker; "
            f"print('experiment', Tracker('sqlite:///{db}', 'moodops').experiment_id)")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-500:] for _, err in outs]
    assert {out.strip().splitlines()[-1] for out, _ in outs} == {"experiment 1"}


def test_a_tracking_server_that_refuses_connections_is_one_line_before_any_work(tmp_path):
    """Nothing listens on the port: the run stops at its first step (no synthetic data, no features), instead
    of after MLflow's minutes of HTTP retries."""
    work = tmp_path / "work"
    work.mkdir()
    uri = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.run([MOODOPS, "run", "split", "--dataset", "deap", "--synthetic", "--model", "linear",
                           "--tracking-uri", uri], cwd=work, env=env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"moodops: error: tracking server {uri} cannot be reached: [Errno 111] Connection refused "
                     "(is `mlflow server` running there? --tracking-uri names the server)"], proc.stderr
    assert not list(Path(os.environ["MOODOPS_CACHE"]).glob("synthetic/*"))


def test_a_full_local_artifact_disk_is_a_local_error_with_path_and_free_space(tmp_path, use_shared_ray):
    """./mlartifacts on a real 48 KiB tmpfs: the run fails at once (no minutes of retries meant for a
    server outage) with the path and the free space, the parent run FAILED, the folds kept in the ledger."""
    from mlflow import MlflowClient

    work = tmp_path / "work"
    (work / "mlartifacts").mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(work / "mlartifacts")],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here to fill a disk: {mounted.stderr.strip()}")
    try:
        proc = subprocess.run([MOODOPS, "run", "loso", "--dataset", "deap", "--synthetic", "--model", "linear",
                               "--epochs", "2", "--set", "synthetic_subjects=2", "--set", "synthetic_trials=4",
                               "--set", "synthetic_seconds=10", "--set", "tracking_retry_s=300"], cwd=work, env=env(),
                              capture_output=True, text=True, timeout=240)
    finally:
        subprocess.run(["umount", str(work / "mlartifacts")], capture_output=True)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("moodops: error: MLflow's artifacts cannot be written on this machine: No space left "
                           f"on device ({work / 'mlartifacts'}/"), last
    assert " MiB free in " in last, last
    assert "re-running the command logs them without training again" in last
    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("moodops").experiment_id])
    assert "RUNNING" not in {r.info.status for r in runs} and "FAILED" in {r.info.status for r in runs}
    assert len(list(Path(os.environ["MOODOPS_CACHE"]).glob("runs/*/folds/*/result.json"))) == 2

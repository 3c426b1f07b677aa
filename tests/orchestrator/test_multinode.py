"""A real multi-node Ray cluster on loopback: a head and a second node process, each with its own CPU.

`moodops run loso --address` spreads folds over both nodes; killing the second node while it runs a
fold still completes the run, with exactly one FINISHED child run per fold.
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

from _ray_cluster import free_port, start_node, stop_node
from moodops.components.datasets.deap.synthetic_deap import write_synthetic_deap

BIN = Path(sys.executable).parent
N_SUBJECTS = 6


@pytest.fixture(scope="module")
def deap(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("deap")
    write_synthetic_deap(root, n_subjects=N_SUBJECTS, n_trials=16, seconds=30, seed=4, effect=3.0)
    return root


@pytest.fixture()
def cluster(tmp_path):
    """Head (1 CPU) + one more node process (1 CPU) on 127.0.0.1; yields (address, second node's port)."""
    manager_port = free_port()
    # The head declares a node dead after 2 missed health checks 1 s apart (Ray's default: 5 checks 3 s apart),
    # so the end of the test does not wait out the default timeout.
    head = start_node("--num-cpus", "1", "--include-dashboard", "false", head_port=free_port(),
                      RAY_health_check_period_ms="1000", RAY_health_check_failure_threshold="2")
    try:
        worker = start_node("--address", head.address, "--num-cpus", "1", "--node-manager-port", str(manager_port),
                            RAY_AUTH_MODE="token")
        try:
            yield head.address, manager_port
        finally:
            stop_node(worker)
    finally:
        stop_node(head)


def node_ids(address: str) -> dict[int, str]:
    """Alive nodes: node-manager port → node id."""
    code = (f"import json, ray; ray.init(address='{address}', logging_level='ERROR'); "
            "print(json.dumps({n['NodeManagerPort']: n['NodeID'] for n in ray.nodes() if n['Alive']}))")
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_AUTH_MODE": "token"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return {int(k): v for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def kill_node(manager_port: int) -> int:
    """SIGKILL the raylet of the node with this node-manager port and every worker it started."""
    killed = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if (f"--node_manager_port={manager_port}" in cmdline or f"--node-manager-port={manager_port}" in cmdline
                or f"--node-manager-port {manager_port}" in cmdline):
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def command(deap: Path, address: str, out: Path) -> list[str]:
    return [str(BIN / "moodops"), "run", "loso", "--dataset", "deap", "--root", str(deap), "--model", "mood_reader",
            "--variant", "stib_cf", "--epochs", "8", "--set", "patience=100", "--cpus-per-fold", "1",
            "--address", address, "--output-json", str(out)]


def finished_children(tmp_path: Path, parent: str) -> list[tuple[str, str]]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_run(parent).info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    return sorted((r.data.tags["moodops.fold"], r.data.tags.get("moodops.ray_node_id", ""))
                  for r in runs if r.info.status == "FINISHED")


@pytest.mark.slow
def test_folds_spread_over_nodes_and_survive_losing_one(deap, cluster, tmp_path):
    address, manager_port = cluster
    nodes = node_ids(address)
    assert len(nodes) == 2 and manager_port in nodes
    second = nodes[manager_port]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    out = tmp_path / "out.json"
    proc = subprocess.Popen(command(deap, address, out), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # Wait until the second node has finished a fold (so the run did use both nodes), then kill it while
    # it works on its next one.
    ledger = Path(os.environ["MOODOPS_CACHE"]) / "runs"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(0.3)
        done = [json.loads(p.read_text()) for p in ledger.glob("*/folds/*/result.json")]
        if any(r["node_id"] == second for r in done) and len(done) < N_SUBJECTS - 1:
            break
        assert proc.poll() is None, proc.communicate()
    assert kill_node(manager_port) > 0
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    result = json.loads(out.read_text())
    children = finished_children(tmp_path, result["parent_run_id"])
    folds = [f for f, _ in children]
    assert folds == sorted(f"subject-{s:02d}" for s in range(1, N_SUBJECTS + 1))  # one FINISHED run per fold
    assert len({n for _, n in children}) == 2  # folds ran on both nodes
    deadline = time.monotonic() + 90  # the head notices a dead node after its health checks fail
    while manager_port in node_ids(address) and time.monotonic() < deadline:
        time.sleep(3)
    assert set(node_ids(address)) == {p for p in nodes if p != manager_port}  # the second node is gone

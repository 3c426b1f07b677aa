"""A synthetic dataset whose generation was killed leaves a temporary folder; the next run removes it."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from moodops.orchestrator.config import RunConfig
from moodops.orchestrator.run import OWNER_FILE, Reporter, ensure_synthetic, sweep_leftovers


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def leftover(folder, name, pid):
    tmp = folder / name
    tmp.mkdir(parents=True)
    (tmp / "s01.dat").write_bytes(b"\0" * 1024)
    (tmp / OWNER_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": pid}))
    return tmp


def test_only_the_leftovers_of_gone_generators_are_removed(tmp_path):
    gone = leftover(tmp_path, ".deap-v3.abc123", dead_pid())
    live = leftover(tmp_path, ".deap-v3.def456", os.getpid())  # a generation still under way
    elsewhere = leftover(tmp_path, ".deap-v3.ghi789", 1)
    (elsewhere / OWNER_FILE).write_text(json.dumps({"host": "another-host", "pid": dead_pid()}))
    dataset = tmp_path / "deap-v3-s2"
    dataset.mkdir()
    removed = sweep_leftovers(tmp_path)
    assert [p for p, _ in removed] == [gone] and "is gone" in removed[0][1]
    assert not gone.exists() and live.is_dir() and elsewhere.is_dir() and dataset.is_dir()


def test_the_next_synthetic_run_sweeps_and_says_so(tmp_path):
    messages = []

    class Recorder(Reporter):
        def status(self, text: str) -> None:
            messages.append(text)

    config = RunConfig(dataset="deap", synthetic=True, synthetic_subjects=1, synthetic_trials=2, synthetic_seconds=4)
    gone = leftover(tmp_path / "synthetic", ".deap-v3-s1.killed", dead_pid())
    root = ensure_synthetic(tmp_path, config, Recorder())
    assert not gone.exists() and (root / ".complete").is_file() and not (root / OWNER_FILE).exists()
    assert any(m.startswith(f"removed {gone} (its generator, pid ") for m in messages), messages

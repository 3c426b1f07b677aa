"""Ray clusters started with `ray start` for tests, each stopped on its own.

`ray stop` stops every Ray process on the machine, so a test that used it would also take down the
session's shared cluster (and any local Ray another test started). Each `ray start` here runs in a new
session: its daemons (GCS, raylet, agents, workers) share one process group, and stopping kills that
group only.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "SHARED_RAY_ADDRESS", "SHARED_RAY_TOKEN")}
    return {**env, **extra}


def moodops_env() -> dict[str, str]:
    """Environment for a `moodops` process a test starts: the caller's RAY_ADDRESS never leaks in; under
    the ``use_shared_ray`` fixture it joins the session's shared cluster, with that cluster's token."""
    env = clean_env(**shared_token_env())
    if os.environ.get("SHARED_RAY_ADDRESS"):
        env["RAY_ADDRESS"] = os.environ["SHARED_RAY_ADDRESS"]
    return env


def shared_token_env() -> dict[str, str]:
    """RAY_AUTH_MODE / RAY_AUTH_TOKEN of the session's shared cluster (empty outside ``use_shared_ray``)."""
    token = os.environ.get("SHARED_RAY_TOKEN")
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token} if token else {}


@dataclass
class RayNode:
    pgid: int
    address: str  # the head's GCS address (for a worker node: the head it joined)


def start_node(*args: str, head_port: int | None = None, timeout: float = 180, **env: str) -> RayNode:
    """`ray start --head --port P ...` (``head_port``) or `ray start ARGS` joining a head; raises on failure."""
    command = [RAY, "start", *(["--head", "--port", str(head_port)] if head_port else []), *args,
               "--node-ip-address", "127.0.0.1"]
    proc = subprocess.Popen(command, env=clean_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_node(RayNode(proc.pid, ""))
        raise
    node = RayNode(proc.pid, f"127.0.0.1:{head_port}" if head_port else "")
    if proc.returncode != 0:
        stop_node(node)
        raise RuntimeError(f"`{' '.join(command)}` failed: {err.strip()[-2000:] or out.strip()[-2000:]}")
    return node


def stop_node(node: RayNode, grace: float = 1.0) -> None:
    """SIGTERM, then SIGKILL, the node's process group (every daemon and worker it started)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(node.pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(node.pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

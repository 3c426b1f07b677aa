"""The run ledger: every finished fold's result on local disk, written the moment it arrives.

One folder per run identity (config hash + dataset fingerprint) under the
cache: ``runs/<hash>-<fingerprint>/``, holding ``run.json`` (the MLflow
parent run, its tracking URI, the fold → child run map, which folds are
logged, and the status) and ``folds/<fold>/`` (``result.json`` with the
scalars, ``arrays.npz`` with the confusion matrix and predictions, read with
``allow_pickle=False``, and ``weights.pt``). Every write goes to a
temporary name and is renamed, so a killed driver leaves whole records or
none.

It serves two purposes: re-running the same command after the driver died
resumes (finished folds are reused, only missing ones run), and a tracking
server that is away when a fold finishes loses nothing (the result waits
here, marked unlogged, until it can be logged).
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from moodops.components.errors import DataError, MoodopsError
from moodops.components.types import FoldResult


def pid_alive(pid: int) -> bool:
    """Whether a process of this host with that pid runs (someone else's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunInProgressError(MoodopsError):
    """Another live moodops process holds this run's ledger."""


class LedgerLock:
    """An exclusive ``flock`` on ``<ledger>.lock`` (beside the ledger folder, which ``--fresh`` removes),
    held for a run's life. The file names its holder (host, pid, start time); the kernel drops the lock
    when the holder dies, so a holder that was killed leaves a name but no lock: ``stale`` is that name,
    and taking it over is safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stale: dict[str, Any] | None = None
        self._fd: int | None = None

    def acquire(self) -> LedgerLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            who = (f"pid {holder.get('pid')} on {holder.get('host')}, started "
                   f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder.get('started', 0)))}"
                   if holder else "a process that has not yet written its name")
            raise RunInProgressError(f"this run is already in progress in another moodops process ({who}; "
                                     f"lock {self.path}): wait for it to finish (re-running then reuses its "
                                     "folds) or stop it") from None
        self.stale = _read_holder(fd) or None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                  "started": time.time()}).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)  # an empty file: the last holder ended cleanly
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}


class Ledger:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folds_dir = folder / "folds"

    @classmethod
    def for_run(cls, cache_dir: Path, config_hash: str, fingerprint: str) -> Ledger:
        return cls(cache_dir / "runs" / f"{config_hash}-{fingerprint[:12]}")

    def lock(self) -> LedgerLock:
        """Take this run's exclusive lock (:class:`LedgerLock`); raises :class:`RunInProgressError`
        naming the live holder."""
        return LedgerLock(self.folder.with_name(self.folder.name + ".lock")).acquire()

    # -- run state
    def state(self) -> dict[str, Any] | None:
        path = self.folder / "run.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: unreadable run ledger ({e}); remove it or run with --fresh") from None

    def save_state(self, state: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.folder / "run.json", json.dumps(state, indent=1, sort_keys=True))

    def update(self, **changes: Any) -> dict[str, Any]:
        state = self.state() or {}
        state.update(changes)
        state["updated"] = time.time()
        self.save_state(state)
        return state

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- fold results
    def record(self, result: FoldResult) -> None:
        """Write one fold's result (atomically: a whole folder renamed into place)."""
        self.folds_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{result.fold}.", dir=self.folds_dir))
        scalars = {"fold": result.fold, "test_subjects": list(result.test_subjects), "metrics": result.metrics,
                   "history": result.history, "timing": result.timing, "params": result.params,
                   "node_id": result.node_id, "device": result.device}
        (tmp / "result.json").write_text(json.dumps(scalars, default=_plain))
        np.savez(tmp / "arrays.npz", confusion=result.confusion, y_true=result.y_true, y_pred=result.y_pred,
                 **{f"attention_{k}": v for k, v in result.attention.items()})
        (tmp / "weights.pt").write_bytes(result.weights)
        final = self.folds_dir / result.fold
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)

    def results(self) -> dict[str, FoldResult]:
        out: dict[str, FoldResult] = {}
        if not self.folds_dir.is_dir():
            return out
        for folder in sorted(self.folds_dir.iterdir()):
            if folder.name.startswith(".") or not (folder / "result.json").is_file():
                continue
            try:
                s = json.loads((folder / "result.json").read_text())
                with np.load(folder / "arrays.npz", allow_pickle=False) as arrays:
                    confusion, y_true, y_pred = arrays["confusion"], arrays["y_true"], arrays["y_pred"]
                    attention = {k[len("attention_"):]: arrays[k] for k in arrays.files if k.startswith("attention_")}
                weights = (folder / "weights.pt").read_bytes()
            except (OSError, ValueError, KeyError) as e:
                raise DataError(f"{folder}: damaged fold record ({e}); run with --fresh to start over") from None
            out[s["fold"]] = FoldResult(s["fold"], tuple(s["test_subjects"]), s["metrics"], confusion, y_true, y_pred,
                                        s["history"], weights, s["timing"], s["params"], s["node_id"], s["device"],
                                        attention)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)

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

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from moodops.components.errors import DataError
from moodops.components.types import FoldResult


class Ledger:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folds_dir = folder / "folds"

    @classmethod
    def for_run(cls, cache_dir: Path, config_hash: str, fingerprint: str) -> Ledger:
        return cls(cache_dir / "runs" / f"{config_hash}-{fingerprint[:12]}")

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

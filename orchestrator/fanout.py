"""Ray fan-out: one task per fold, results handled as they finish."""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moodops.components.errors import ConfigError, MoodopsError
from moodops.orchestrator import interrupts
from moodops.components.types import FeatureSet, Fold, FoldResult
from moodops.pipelines.train import TrainConfig

logger = logging.getLogger(__name__)


class FoldFailedError(MoodopsError):
    """A fold raised; the message names the fold and the cause."""

    def __init__(self, fold: str, cause: BaseException | str) -> None:
        self.fold = fold
        self.cause = cause
        text = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        super().__init__(f"fold {fold} failed: {str(text).strip().splitlines()[-1] if text else ''}")


@dataclass
class Progress:
    done: int
    total: int
    running: int
    elapsed_s: float
    eta_s: float | None
    mean_accuracy: float | None


def _fold_task(config: TrainConfig, fold: Fold, features: FeatureSet, num_threads: int) -> FoldResult:
    """Runs inside a Ray worker: threads set to the task's CPU allotment."""
    import ray
    import torch

    from moodops.pipelines.evaluate import run_fold
    from moodops.pipelines.hooks import LoggingHooks

    torch.set_num_threads(num_threads)
    result = run_fold(dataclasses.replace(config, num_threads=num_threads), fold, features, LoggingHooks())
    result.node_id = ray.get_runtime_context().get_node_id()
    return result


def _packed_task(config: TrainConfig, folds: list[Fold], features: FeatureSet, num_threads: int) -> list[FoldResult]:
    """Runs inside a Ray worker: ``folds`` trained as one packed model (``--folds-per-task``)."""
    import ray
    import torch

    from moodops.pipelines.hooks import LoggingHooks
    from moodops.pipelines.packed import run_folds_packed

    torch.set_num_threads(num_threads)
    results = run_folds_packed(dataclasses.replace(config, num_threads=num_threads), folds, features, LoggingHooks())
    node = ray.get_runtime_context().get_node_id()
    for result in results:
        result.node_id = node
    return results


def init_ray(address: str | None, num_cpus: int | None = None) -> bool:
    """Join ``address`` (or ``RAY_ADDRESS``) or start a local Ray; True if we started it."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        _token_auth_for(address)  # before ray is imported: it reads the mode once
    import ray

    if ray.is_initialized():
        return False
    quiet = logging.getLogger().getEffectiveLevel() > logging.INFO
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                                  logging_level=logging.ERROR if quiet else logging.INFO)
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            # "local": a fresh Ray of our own, even when a `ray start` cluster runs on this machine
            # (joining one is what --address / RAY_ADDRESS are for).
            ray.init(address="local", num_cpus=num_cpus, **kwargs)
    except ConnectionError as e:
        raise ConfigError(
            f"cannot join the Ray cluster at '{address}': {str(e).splitlines()[0]} (is it running? clusters with "
            "token authentication need RAY_AUTH_MODE=token and the token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH "
            "or ~/.ray/auth_token)"
        ) from None
    return True


def _token_auth_for(address: str) -> None:
    """Send the Ray auth token when one is available.

    ``ray start`` enables token authentication by default since Ray 2.59, but a
    client only sends its token with ``RAY_AUTH_MODE=token``, so turn it on when
    a token exists and the user has not chosen a mode. (Joining a cluster started
    with ``RAY_AUTH_MODE=disabled`` in token mode connects, but Ray Train's
    controller never starts; such clusters need ``RAY_AUTH_MODE=disabled`` here too.)

    Ray caches the mode when ``ray`` is first imported; callers that imported it
    already (``ray.train``, ``ray.tune``) get the cache refreshed, as Ray's own
    ``ray start`` does.
    """
    if "RAY_AUTH_MODE" in os.environ:
        return
    has_token = bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")) or (
        os.path.isfile(os.path.expanduser("~/.ray/auth_token"))
    )
    if has_token:
        logger.info("joining %s with Ray token authentication (RAY_AUTH_MODE=token)", address)
        os.environ["RAY_AUTH_MODE"] = "token"
        if "ray._raylet" in sys.modules:
            sys.modules["ray._raylet"].Config.initialize("")


def local_gpu_count() -> int:
    """GPUs a local Ray would see, without starting it: CUDA_VISIBLE_DEVICES when set, else the NVIDIA
    device files (``/dev/nvidia0``, ...)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    from pathlib import Path

    return sum(1 for p in Path("/dev").glob("nvidia[0-9]*"))


def precheck_gpus(gpus_per_fold: float, address: str | None) -> None:
    """Refuse ``--gpus-per-fold`` on a local run of a machine without GPUs before any work starts
    (a cluster's GPUs are checked once connected, :func:`check_resources`)."""
    if gpus_per_fold <= 0 or address or os.environ.get("RAY_ADDRESS"):
        return
    count = local_gpu_count()
    if count < gpus_per_fold:
        raise ConfigError(f"--gpus-per-fold {gpus_per_fold:g} but this machine has {count} GPU(s) and no cluster "
                          "was named: drop --gpus-per-fold, or pass --address of a Ray cluster with GPUs")


def check_resources(cpus_per_fold: float, gpus_per_fold: float, local: bool) -> dict[str, float]:
    import ray

    total = ray.cluster_resources()
    problems = []
    if total.get("CPU", 0.0) < cpus_per_fold:
        problems.append(f"--cpus-per-fold {cpus_per_fold} but the cluster has {total.get('CPU', 0.0):g} CPUs")
    if gpus_per_fold > 0 and total.get("GPU", 0.0) < gpus_per_fold:
        problems.append(f"--gpus-per-fold {gpus_per_fold} but the cluster has {total.get('GPU', 0.0):g} GPUs")
    if problems:
        message = "; ".join(problems)
        if local:
            raise ConfigError(f"folds cannot be scheduled: {message}")
        logger.warning("%s (waiting for the autoscaler)", message)
    return total


def run_folds(
    folds: list[Fold],
    features: FeatureSet,
    config: TrainConfig,
    *,
    cpus_per_fold: float,
    gpus_per_fold: float,
    max_retries: int,
    on_result: Callable[[Fold, FoldResult], None],
    on_progress: Callable[[Progress], None] | None = None,
    on_abandon: Callable[[Fold, str], None] | None = None,
    task: Callable[..., FoldResult] = _fold_task,
    folds_per_task: int = 1,
) -> list[FoldResult]:
    """Submit every fold, call ``on_result`` as each finishes, return all results.

    A worker process that dies is retried ``max_retries`` times by Ray; a
    Python error inside a fold is not retried: it cancels the remaining
    folds (``on_abandon`` for each) and raises :class:`FoldFailedError`.
    ``task`` is the function each Ray task runs (fault-injection tests wrap it).
    ``folds_per_task`` > 1: each task trains that many folds packed as one model
    (:func:`moodops.pipelines.packed.run_folds_packed`), asking for ``cpus_per_fold`` CPUs and
    ``gpus_per_fold`` GPUs for the task; its folds' results arrive together.
    """
    import ray

    features_ref = ray.put(features)
    threads = max(1, int(math.floor(cpus_per_fold)))
    if folds_per_task > 1:
        task = _packed_task
        units: list[list[Fold]] = [folds[i:i + folds_per_task] for i in range(0, len(folds), folds_per_task)]
    remote = ray.remote(task).options(
        num_cpus=cpus_per_fold, num_gpus=gpus_per_fold, max_retries=max_retries, retry_exceptions=False
    )
    if folds_per_task > 1:
        pending = {remote.remote(config, unit, features_ref, threads): unit for unit in units}
    else:
        pending = {remote.remote(config, fold, features_ref, threads): fold for fold in folds}
    results: list[FoldResult] = []
    start = time.monotonic()
    try:
        with interrupts.deferred():
            _wait_for_folds(pending, results, folds, on_result, on_progress, start)
    except BaseException as e:
        reason = f"abandoned: {e}" if not isinstance(e, KeyboardInterrupt) else "interrupted"
        for ref, unit in pending.items():
            ray.cancel(ref, force=True)
            if on_abandon is not None:
                for fold in (unit if isinstance(unit, list) else [unit]):
                    on_abandon(fold, reason)
        raise
    return results


def _wait_for_folds(pending: dict, results: list[FoldResult], folds: list[Fold], on_result, on_progress,
                    start: float) -> None:
    """Collect fold results as they finish (``on_result`` each, progress each second)."""
    import ray
    from ray.exceptions import GetTimeoutError, RayError, RayTaskError, TaskCancelledError

    last_report = 0.0
    while pending:
        interrupts.check()  # Ctrl-C, raised here rather than inside a tracking-store write
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
        for ref in ready:
            unit = pending.pop(ref)
            packed = isinstance(unit, list)  # a packed task: its folds fail or finish together
            name = ", ".join(f.name for f in unit) if packed else unit.name
            try:
                result = ray.get(ref)
            except RayTaskError as e:
                cause = e.cause if getattr(e, "cause", None) is not None else str(e)
                raise FoldFailedError(name, cause) from None
            except (TaskCancelledError, GetTimeoutError) as e:
                raise FoldFailedError(name, e) from None
            except RayError as e:  # worker or node died after all retries
                raise FoldFailedError(name, f"{type(e).__name__}: {e}") from None
            for fold, one in (zip(unit, result) if packed else [(unit, result)]):
                results.append(one)
                on_result(fold, one)
        now = time.monotonic()
        if on_progress is not None and (ready or now - last_report >= 1.0):
            last_report = now
            on_progress(_progress(results, len(folds), sum(len(u) if isinstance(u, list) else 1 for u in pending.values()),
                                  now - start))


def _progress(results: list[FoldResult], total: int, running: int, elapsed: float) -> Progress:
    done = len(results)
    eta = None
    if done:
        mean_fold = elapsed / done
        eta = mean_fold * (total - done)
    acc = sum(r.metrics["accuracy"] for r in results) / done if done else None
    return Progress(done, total, min(running, total - done), elapsed, eta, acc)

"""Benchmark: fan-out efficiency of `moodops run loso` and the orchestration overhead per fold.

    .venv/bin/python tests/benchmarks/bench_fanout.py [--subjects 8] [--model mood_reader --variant stib_cf]
        [--epochs 5] [--parallel 1,2]

A synthetic DEAP of ``--subjects`` subjects (40 × 60-s trials, the real format), features built once.

- *sequential*: every LOSO fold through :func:`moodops.pipelines.evaluate.run_fold` in this process,
  one after the other, one torch thread: the work itself, no Ray, no MLflow.
- *K parallel*: the same folds through :func:`moodops.orchestrator.run.run_experiment` on a local Ray
  with K CPUs and one CPU (one thread) per fold: scheduling, shipping the features to the workers,
  the run ledger and MLflow logging of every fold included.

Overhead per fold = (wall with 1 parallel fold − sequential wall) / folds, also as a fraction of the
mean fold time; efficiency with K = sequential wall / (K × wall). Each Ray run's wall is also split
into its phases, from the run's own reports: *setup* (features from the cache, the MLflow parent run,
the ledger) until the folds are submitted, *folds* until the last fold's result is handled, *finish*
(aggregate metrics, the parent's plots and tables) until the run returns; beside them the folds' own
training time (inside the workers) and the CPU seconds the driver process spent (MLflow logging and
plots of each fold happen there, on the same 2 cores as the workers). Results (with the machine) go to
tests/benchmarks/results/fanout-<cpu|gpu>[-packed<K>].json. A GPU machine can add ``--gpus-per-fold 0.25``
and ``--folds-per-task K|auto`` (the Ray runs then train K folds per task, packed).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--model", default="mood_reader")
    parser.add_argument("--variant", default="stib_cf")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--parallel", default="1,2")
    parser.add_argument("--gpus-per-fold", type=float, default=0.0)
    parser.add_argument("--folds-per-task", default="1", help="--folds-per-task of the Ray runs: an int or auto")
    args = parser.parse_args()

    import ray
    import torch

    from moodops.components.datasets.deap.synthetic_deap import write_synthetic_deap
    from moodops.orchestrator.config import RunConfig
    from moodops.orchestrator.run import Reporter, _protocol, prepare_features, resolve_model_defaults, train_config
    from moodops.pipelines.evaluate import run_fold

    class Timeline(Reporter):
        """Times of the run's own reports: when the folds were submitted, when each result was handled."""

        def __init__(self) -> None:
            self.submitted: float | None = None
            self.done: list[float] = []
            self.fold_s: list[float] = []

        def status(self, message: str) -> None:
            if message.startswith("running ") and self.submitted is None:
                self.submitted = time.perf_counter()

        def fold_done(self, fold, result) -> None:
            self.done.append(time.perf_counter())
            self.fold_s.append(result.timing["total_s"])

    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["MOODOPS_CACHE"] = str(tmp / "cache")
        write_synthetic_deap(tmp / "deap", n_subjects=args.subjects, n_trials=40, seconds=60, seed=0)
        base = RunConfig(protocol="loso", dataset="deap", root=str(tmp / "deap"), model=args.model,
                         variant=args.variant, epochs=args.epochs, patience=10**6, cpus_per_fold=1.0,
                         gpus_per_fold=args.gpus_per_fold, folds_per_task=args.folds_per_task, tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}")
        config = resolve_model_defaults(base)
        features = prepare_features(config, Reporter())  # cached for the runs below
        folds = _protocol(config).split(features)
        tconf = dataclasses.replace(train_config(config), num_threads=1,
                                    device="cuda" if args.gpus_per_fold else "cpu")
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        fold_s = [run_fold(tconf, fold, features).timing["total_s"] for fold in folds]
        sequential = time.perf_counter() - t0
        runs["sequential"] = {"wall_s": round(sequential, 2), "mean_fold_s": round(sequential / len(folds), 2)}
        print("sequential", runs["sequential"], flush=True)
        for k in (int(v) for v in args.parallel.split(",")):
            ray.init(address="local", num_cpus=k, include_dashboard=False, log_to_driver=False,
                     logging_level="ERROR")
            timeline = Timeline()
            try:
                cpu0 = time.process_time()
                t0 = time.perf_counter()
                summary = __import__("moodops.orchestrator.run", fromlist=["run_experiment"]).run_experiment(
                    dataclasses.replace(base, experiment=f"fanout-{k}", resume=False), timeline)
                wall = time.perf_counter() - t0
                driver_cpu = time.process_time() - cpu0
            finally:
                ray.shutdown()
            runs[f"{k}_parallel"] = {"wall_s": round(wall, 2), "folds": len(summary.folds),
                                     "speedup_vs_sequential": round(sequential / wall, 2),
                                     "efficiency": round(sequential / (k * wall), 2),
                                     "setup_s": round(timeline.submitted - t0, 2),
                                     "folds_s": round(timeline.done[-1] - timeline.submitted, 2),
                                     "finish_s": round(t0 + wall - timeline.done[-1], 2),
                                     "fold_training_s_sum": round(sum(timeline.fold_s), 2),
                                     "driver_cpu_s": round(driver_cpu, 2)}
            print(k, runs[f"{k}_parallel"], flush=True)
    if "1_parallel" in runs:
        per_fold = (runs["1_parallel"]["wall_s"] - sequential) / len(folds)
        runs["overhead_per_fold_s"] = round(per_fold, 3)
        runs["overhead_fraction_of_fold"] = round(per_fold / (sequential / len(folds)), 3)
        one = runs["1_parallel"]  # one fold at a time: what the folds phase adds to the folds' own training
        in_phase = (one["folds_s"] - one["fold_training_s_sum"]) / len(folds)
        runs["in_fan_out_overhead_per_fold_s"] = round(in_phase, 3)
        runs["in_fan_out_overhead_fraction_of_fold"] = round(in_phase / (sequential / len(folds)), 3)
    result = {"benchmark": "LOSO fan-out: sequential in-process folds vs moodops on a local Ray",
              "model": args.model, "variant": args.variant, "subjects": args.subjects, "epochs": args.epochs,
              "folds_per_task": args.folds_per_task, "command": " ".join(["python", *sys.argv]),
              "fold_s": [round(s, 2) for s in fold_s], "runs": runs, "machine": machine()}
    packed = "" if args.folds_per_task == "1" else f"-packed{args.folds_per_task}"
    path = Path(__file__).parent / "results" / f"fanout-{'gpu' if args.gpus_per_fold else 'cpu'}{packed}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

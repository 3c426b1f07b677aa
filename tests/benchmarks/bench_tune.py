"""Benchmark: `moodops tune` trials per hour on this machine, and the overhead per trial.

    .venv/bin/python tests/benchmarks/bench_tune.py [--model mood_reader --variant stib_cf] [--trials 12]
        [--parallel 1] [--subjects 8] [--epochs 10]

Tunes ``lr`` and ``dropout`` (a fixed number of epochs, no pruning, so every
trial does the same work) with ``--holdout`` of one subject on a synthetic
DEAP of ``--subjects`` subjects (40 trials of 60 s, the real format), inner
validation on 20 % of the training subjects, through the real
:func:`moodops.orchestrator.tune.run_tune` (local Ray, journal storage,
MLflow tracking to a temporary SQLite store).

For every trial the driver measures its wall time; the inner folds measure
their own compute (data normalisation, training and testing inside the
worker). Overhead = wall − compute: Ray scheduling and data transfer, the
Optuna storage, MLflow logging of the trial and its inner folds, and
pruning traffic. Results go to tests/benchmarks/results/tune-cpu.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="mood_reader")
    parser.add_argument("--variant", default="stib_cf")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()

    from moodops.components.datasets.deap.synthetic_deap import write_synthetic_deap
    from moodops.orchestrator.config import RunConfig
    from moodops.orchestrator.tune import TuneOptions, run_tune

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["MOODOPS_CACHE"] = str(tmp / "cache")
        write_synthetic_deap(tmp / "deap", n_subjects=args.subjects, n_trials=40, seconds=60, seed=0)
        space = tmp / "space.yaml"
        space.write_text("lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}\n"
                         "dropout: {type: float, low: 0.0, high: 0.5}\n")
        config = RunConfig(protocol="loso", dataset="deap", root=str(tmp / "deap"), model=args.model,
                           variant=args.variant, epochs=args.epochs, patience=10**6, cpus_per_fold=1.0,
                           tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}")
        options = TuneOptions(trials=args.trials, parallel=args.parallel, space=str(space),
                              storage=str(tmp / "journal.log"), holdout=[args.subjects], pruner="none")
        t0 = time.perf_counter()
        summary = run_tune(config, options)
        wall = time.perf_counter() - t0
    (study,) = summary.studies
    trials = study.trial_seconds
    walls = np.array([t["wall_s"] for t in trials])
    compute = np.array([t["fold_compute_s"] for t in trials])
    overhead = walls - compute
    result = {
        "model": args.model, "variant": args.variant, "trials": args.trials, "parallel": args.parallel,
        "subjects": args.subjects, "epochs": args.epochs, "inner_folds": 1,
        "study_wall_s": round(study.wall_s, 1), "total_wall_s_including_features_and_ray": round(wall, 1),
        "trials_per_hour": round(3600 * len(trials) / study.wall_s, 1),
        "trial_wall_s_median": round(float(np.median(walls)), 2),
        "fold_compute_s_median": round(float(np.median(compute)), 2),
        "overhead_s_median": round(float(np.median(overhead)), 2),
        "overhead_fraction_median": round(float(np.median(overhead / walls)), 3),
        "first_trial_overhead_s": round(float(overhead[0]), 2),
        "best_inner": round(study.best_value, 3), "outer_accuracy": round(summary.outer_accuracy_mean, 3),
    }
    print(json.dumps(result, indent=2))
    path = Path(__file__).parent / "results" / "tune-cpu.json"
    old = json.loads(path.read_text())["runs"] if path.exists() else []
    old = [r for r in old if (r["model"], r["parallel"]) != (args.model, args.parallel)]
    path.write_text(json.dumps({"benchmark": "moodops tune: trials per hour and per-trial overhead",
                                "runs": old + [result], "machine": machine()}, indent=2) + "\n")


if __name__ == "__main__":
    main()

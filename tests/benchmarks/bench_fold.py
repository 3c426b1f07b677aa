"""Benchmark: one LOSO fold on the full synthetic DEAP, per model, on one CPU thread.

    .venv/bin/python tests/benchmarks/bench_fold.py [--models linear mood_reader:stib_cf] [--device cpu]

Uses the cached synthetic DEAP and features (run the demo or bench_de.py
first), trains fold subject-01 with the default TrainConfig, and writes
tests/benchmarks/results/fold-<device>.json with seconds per epoch and per fold.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402

from moodops.components.datasets import Deap  # noqa: E402
from moodops.components.features import FeatureConfig, build_features, make_sequences  # noqa: E402
from moodops.components.protocols import LeaveOneSubjectOut  # noqa: E402
from moodops.orchestrator.config import default_cache_dir  # noqa: E402
from moodops.pipelines.evaluate import run_fold  # noqa: E402
from moodops.pipelines.train import TrainConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["linear", "mood_reader:stib_cf"], help="NAME[:VARIANT]")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    root = default_cache_dir() / "synthetic" / "deap-v3-s32-t40-60s-e1"
    if not (root / ".complete").is_file():
        raise SystemExit(f"{root} missing: run the README demo or bench_de.py first")
    dataset = Deap(root)
    windows = build_features(dataset, FeatureConfig(), default_cache_dir() / "features")
    samples = make_sequences(windows, 4)
    y, names = dataset.make_targets({k: samples.column(k) for k in dataset.label_names}, "valence")
    samples = dataclasses.replace(samples, y=y, class_names=names)
    fold = LeaveOneSubjectOut(seed=0).split(samples)[0]
    rows = {}
    for model in args.models:
        name, _, variant = model.partition(":")
        config = TrainConfig(model=name, variant=variant or None, device=args.device, num_threads=args.threads)
        t0 = time.perf_counter()
        result = run_fold(config, fold, samples)
        wall = time.perf_counter() - t0
        epochs = len(result.history)
        rows[model] = {"fold_s": wall, "epochs_run": epochs, "s_per_epoch": result.timing["train_s"] / epochs,
                       "accuracy": result.metrics["accuracy"], "n_train": len(fold.train), "device": result.device}
        print(model, rows[model], flush=True)
    out = {"benchmark": "one LOSO fold (subject-01) on the full synthetic DEAP, default TrainConfig",
           "threads": args.threads, "results": rows, "machine": machine()}
    path = Path(__file__).parent / "results" / f"fold-{args.device}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

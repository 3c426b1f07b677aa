"""Benchmark: K folds trained one after another (``run_fold``) against the same K folds packed into one
vmapped model (``run_folds_packed``, what ``--folds-per-task K`` runs in a Ray task), on one device.

    .venv/bin/python tests/benchmarks/bench_packing.py [--device cpu|cuda] [--threads 2] [--folds 4]
        [--epochs 3] [--batch-sizes 32 256] [--only mood_reader:stib_cf]

Data: random DEAP-shaped inputs (4 windows × 32 channels × 5 DE bands; raw EEG 4 × 32 × 128) for
``--folds + 1`` subjects of 320 samples each with a weak label signal; fold k tests subject k and trains
on the others, with no validation part (fixed epochs, so both ways run the same number of steps).
Reported per (model, batch size): seconds for the K folds each way, the speed-up, training samples/s
packed, and whether every fold's test predictions agree between the two ways (only expected without
dropout: the defaults have dropout, so packed members draw other masks). The run also times a 2048²
float32 matmul on the same threads (the sgemm rate every throughput is compared with). Results go to
tests/benchmarks/results/packing-<device>.json with the machine.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine, sgemm_gflops  # noqa: E402

MODELS = ["mood_reader:stib_cf", "mood_reader:stib_enc_mlf", "mv_sstma:eeg", "linear:default"]


def dataset(n_subjects: int, per_subject: int = 320, seed: int = 0):
    import numpy as np
    import pyarrow as pa

    from moodops.components.types import FeatureSet

    rng = np.random.default_rng(seed)
    n = n_subjects * per_subject
    y = rng.integers(0, 2, n)
    x = rng.standard_normal((n, 4, 32, 5)).astype(np.float32)
    x[:, :, :4] += 0.5 * (2 * y - 1)[:, None, None, None]
    raw = rng.standard_normal((n, 4, 32, 128)).astype(np.float32)
    subject = np.repeat(np.arange(1, n_subjects + 1), per_subject).astype(np.int32)
    meta = pa.table({"subject": subject, "session": np.ones(n, np.int32), "trial": np.arange(n, dtype=np.int32),
                     "window": np.zeros(n, np.int32)})
    return FeatureSet(x=x, meta=meta, axes=("window", "channel", "band"), y=y, class_names=("low", "high"),
                      extra={"raw": raw})


def main() -> None:
    import numpy as np
    import torch

    from moodops.components.types import Fold
    from moodops.pipelines.evaluate import run_fold
    from moodops.pipelines.packed import run_folds_packed
    from moodops.pipelines.train import TrainConfig, resolve_device

    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--only", nargs="+", default=MODELS, help="NAME:VARIANT")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    features = dataset(args.folds + 1)
    subjects = np.asarray(features.meta.column("subject"))
    folds = [Fold(f"subject-{k:02d}", train=np.flatnonzero(subjects != k), validation=np.zeros(0, np.int64),
                  test=np.flatnonzero(subjects == k), test_subjects=(k,)) for k in range(1, args.folds + 1)]
    rate = sgemm_gflops(device)
    print(f"sgemm 2048²: {rate:.0f} GFLOP/s on {args.threads} thread(s)", flush=True)
    rows = []
    for spec in args.only:
        name, variant = spec.split(":")
        for batch in args.batch_sizes:
            config = TrainConfig(model=name, variant=variant, epochs=args.epochs, batch_size=batch, seed=0,
                                 device=str(device), num_threads=args.threads, attention_maps=False)
            run_fold(config, folds[0], features)  # warm-up (imports, first allocations)
            t0 = time.perf_counter()
            alone = [run_fold(config, fold, features) for fold in folds]
            t_alone = time.perf_counter() - t0
            t0 = time.perf_counter()
            packed = run_folds_packed(config, folds, features)
            t_packed = time.perf_counter() - t0
            samples = args.epochs * sum(len(f.train) for f in folds)
            row = {"model": spec, "batch_size": batch, "folds": args.folds, "epochs": args.epochs,
                   "alone_s": round(t_alone, 2), "packed_s": round(t_packed, 2),
                   "speedup": round(t_alone / t_packed, 2),
                   "packed_train_samples_per_s": round(samples / t_packed),
                   "alone_train_samples_per_s": round(samples / t_alone),
                   "same_predictions": all(bool((a.y_pred == b.y_pred).all()) for a, b in zip(alone, packed))}
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = {"benchmark": "K folds one after another vs packed (run_folds_packed), same device and threads",
           "command": " ".join(["python", *sys.argv]), "device": str(device), "threads": args.threads,
           "sgemm_gflops": round(rate, 1), "results": rows, "machine": machine()}
    path = Path(__file__).parent / "results" / f"packing-{device.type}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"written {path}")


if __name__ == "__main__":
    main()

"""Benchmark: peak memory of DE extraction over a full-size synthetic SEED.

    .venv/bin/python tests/benchmarks/bench_seed_memory.py [--subjects 15] [--seconds 240]

Writes (once, into the moodops cache) a synthetic SEED in the real layout —
15 subjects × 3 sessions × 15 trials of ~4 min, 62 channels at 200 Hz, stored
as float32 .mat files — then, in a fresh process, builds 1-s DE windows for
every subject with ``build_features`` (no feature cache) and records the
process's peak resident memory next to the size of the raw data. Loading
streams subject by subject (each subject's three files are read one variable
at a time), so the peak should stay near one subject's raw EEG plus the DE
of all subjects, far below the whole raw dataset. Results go to
tests/benchmarks/results/seed-memory.json with the machine.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402


def measure(root: Path) -> dict:
    from moodops.components.datasets.seed.seed import Seed
    from moodops.components.features import FeatureConfig, build_features

    t0 = time.perf_counter()
    features = build_features(Seed(root), FeatureConfig(), None)
    return {"seconds": time.perf_counter() - t0, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "windows": int(features.n_samples), "features_mb": features.x.nbytes / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure))))
        return
    from moodops.components.datasets.seed.synthetic_seed import write_synthetic_seed
    from moodops.orchestrator.config import default_cache_dir

    root = default_cache_dir() / "synthetic" / f"seed-bench-s{args.subjects}-{args.seconds:g}s"
    if not (root / ".complete").is_file():
        t0 = time.perf_counter()
        write_synthetic_seed(root, args.subjects, args.seconds, seed=0,
                             progress=lambda d, t: print(f"writing subject {d}/{t}", flush=True))
        (root / ".complete").write_text("ok\n")
        print(f"wrote {root} in {time.perf_counter() - t0:.0f} s", flush=True)
    raw_mb = sum(p.stat().st_size for p in (root / "Preprocessed_EEG").glob("*.mat")) / 2**20
    proc = subprocess.run([sys.executable, __file__, "--measure", str(root)], capture_output=True, text=True,
                          check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(raw_eeg_on_disk_mb=raw_mb, subjects=args.subjects, seconds_per_trial=args.seconds)
    print(json.dumps(result, indent=2))
    out = {"benchmark": "peak memory of 1-s DE extraction over a synthetic SEED (float32 .mat files)",
           "results": result, "machine": machine()}
    (Path(__file__).parent / "results" / "seed-memory.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

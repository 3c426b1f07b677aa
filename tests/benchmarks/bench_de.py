"""Benchmark: DE features for the full synthetic DEAP (32 subjects × 40 trials × 60 s × 32 channels).

Target (issue 2): under 30 s on 2 CPU cores for 1-s windows and 5 bands.

    .venv/bin/python tests/benchmarks/bench_de.py [--method bandpass|stft] [--repeat 3]

Generates the synthetic DEAP into the moodops cache on first use (not timed),
then times (a) the DE computation alone on every subject's stimulus EEG and
(b) the whole uncached feature build (read pickles + validate + DE), and
writes the result to tests/benchmarks/results/de_features-<method>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402

from moodops.components.datasets import Deap  # noqa: E402
from moodops.components.datasets.deap.synthetic_deap import write_synthetic_deap  # noqa: E402
from moodops.components.features import FeatureConfig, build_features, differential_entropy  # noqa: E402
from moodops.orchestrator.config import default_cache_dir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", default="bandpass", choices=["bandpass", "stft"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = default_cache_dir() / "synthetic" / "deap-v3-s32-t40-60s-e1"
    if not (root / ".complete").is_file():
        write_synthetic_deap(root, 32, 40, 60.0, seed=0)
        (root / ".complete").write_text("ok\n")
    dataset = Deap(root)
    eeg = [np.stack([r.data for r in dataset.load_subject(s)]) for s in dataset.subjects()]
    shape = (len(eeg), *eeg[0].shape)

    compute = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for x in eeg:
            differential_entropy(x, 128.0, window_s=1.0, method=args.method)
        compute.append(time.perf_counter() - t0)
    del eeg

    build = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        features = build_features(dataset, FeatureConfig(method=args.method), cache_dir=None)
        build.append(time.perf_counter() - t0)
    result = {
        "benchmark": "DE features, synthetic DEAP",
        "input_shape_subjects_trials_channels_samples": list(shape),
        "output_shape": list(features.x.shape),
        "method": args.method,
        "window_s": 1.0,
        "bands": 5,
        "de_compute_s": {"min": min(compute), "all": compute},
        "uncached_build_incl_file_reads_s": {"min": min(build), "all": build},
        "target_s": 30.0,
        "machine": machine(),
    }
    out = Path(__file__).parent / "results" / f"de_features-{args.method}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

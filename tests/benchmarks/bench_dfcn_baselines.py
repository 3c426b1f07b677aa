"""Benchmark: the DFCN's Table 2 variants beside the plain logistic regression on the same synthetic DEAP.

    .venv/bin/python tests/benchmarks/bench_dfcn_baselines.py [--subjects 10] [--label valence]
        [--runs linear:eeg_face,linear:default,dfcn:no_prior,dfcn:full,dfcn:baseline]

Each entry runs as a user would run it,

    moodops run loso --dataset deap --synthetic --set synthetic_subjects=N --set synthetic_face_layout=deap
        --label L --model M --variant V

with the model's defaults (DFCN: Pearson connectivity of 20 × 3-s windows, one sample per 60-s trial,
Adam 1e-3, batch 40; the logistic regression: DE of 1-s windows), and the summaries are written to
tests/benchmarks/results/dfcn-baselines-deap-synthetic.json. A deep variant far below the logistic
regression is a finding to explain, not a number to file: see the README's Measurements.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402

MOODOPS = str(Path(sys.executable).with_name("moodops"))
RUNS = "linear:eeg_face,linear:default,dfcn:no_prior,dfcn:full,dfcn:baseline"
RESULTS = Path(__file__).parent / "results" / "dfcn-baselines-deap-synthetic.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--label", default="valence")
    parser.add_argument("--runs", default=RUNS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MOODOPS_CACHE": os.environ.get("MOODOPS_CACHE", str(Path(tmp) / "cache"))}
        for entry in args.runs.split(","):
            model, variant = entry.split(":")
            out = Path(tmp) / f"{model}-{variant}.json"
            command = [MOODOPS, "run", "loso", "--dataset", "deap", "--synthetic", "--set",
                       f"synthetic_subjects={args.subjects}", "--set", "synthetic_face_layout=deap", "--label", args.label, "--model", model, "--variant",
                       variant, "--output-json", str(out)]
            t0 = time.perf_counter()
            proc = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"{entry} failed: {proc.stderr.strip().splitlines()[-1]}")
            summary = json.loads(out.read_text())
            agg = summary["aggregate"]
            rows.append({"model": model, "variant": variant, "wall_s": round(wall, 1),
                         "command": " ".join(["moodops", *command[1:-2]]),
                         **{k: agg[k] for k in sorted(agg) if k.startswith("test_") or k.startswith("n_")},
                         "per_subject_accuracy": {",".join(map(str, f["test_subjects"])): f["accuracy"]
                                                  for f in summary["folds"]}})
            print(f"{model}/{variant}: accuracy {agg['test_accuracy_mean']:.3f} ± {agg['test_accuracy_std']:.3f}, "
                  f"F1 {agg.get('test_f1_mean', float('nan')):.3f} ({wall:.0f} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "subjects": args.subjects, "label": args.label,
                                    "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()

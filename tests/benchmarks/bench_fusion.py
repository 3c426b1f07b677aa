"""Benchmark: does fusing EEG with eye movements help? Single-modality vs fused variants, synthetic SEED-IV / SEED-V.

    .venv/bin/python tests/benchmarks/bench_fusion.py [--dataset seed-iv] [--subjects 1-3] [--epochs 10]
        [--model mv_sstma --variants eeg,eye,concat,attention]
    .venv/bin/python tests/benchmarks/bench_fusion.py --model mood_reader --variants stib_cf,stib_eye_cf,stib_eye_mlf

Runs ``moodops run per-subject --dataset D --synthetic --model M --variant V``
for each variant (e.g. MV-SSTMA: EEG only, eye only, concatenation fusion,
attention fusion; Mood Reader: EEG only, EEG + eye by concatenation or by
multi-level fusion) on the same subjects, seed and epochs, and records each
run's accuracy / macro-F1 (mean ± std over subjects) and wall time in
tests/benchmarks/results/fusion-<dataset>-<model>.json.

The synthetic writers plant class information that each modality carries
only in part (SEED-IV: EEG cannot tell neutral from fear, the eye cannot
tell neutral from sad; see ``moodops.components.datasets.seed.synthetic_seed``),
so a fused model can be right where either single modality is at best
partly right. This measures whether moodops' fusion variants realise that.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="seed-iv", choices=("seed-iv", "seed-v"))
    parser.add_argument("--subjects", default="1-3")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--model", default="mv_sstma")
    parser.add_argument("--variants", default="eeg,eye,concat,attention")
    args = parser.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants.split(","):
            out = Path(tmp) / f"{variant}.json"
            command = [MOODOPS, "run", "per-subject", "--dataset", args.dataset, "--synthetic", "--model", args.model,
                       "--variant", variant, "--subjects", args.subjects, "--epochs", str(args.epochs),
                       "--output-json", str(out)]
            t0 = time.perf_counter()
            proc = subprocess.run(command, cwd=tmp, env=dict(os.environ), capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"{variant} failed:\n{proc.stderr[-3000:]}")
            summary = json.loads(out.read_text())
            runs[variant] = {"wall_s": round(wall, 1), "folds": len(summary["folds"]), "chance": summary["chance"],
                             **summary["aggregate"]}
            print(variant, json.dumps(runs[variant]), flush=True)
    result = {"benchmark": f"{args.model} variants (single modality vs fusion), per-subject on synthetic {args.dataset}",
              "command": " ".join(["moodops", *command[1:-2]]).replace(f"--variant {variant}", "--variant V"),
              "runs": runs, "machine": machine()}
    path = Path(__file__).parent / "results" / f"fusion-{args.dataset}-{args.model}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

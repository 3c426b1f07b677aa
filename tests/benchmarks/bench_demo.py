"""Benchmark: wall time of the README demo (LOSO over synthetic DEAP subjects).

Targets: issue 2, the 32-subject `--model linear` run under 5 minutes on 2 CPU cores; issue 17, the
default model (Mood Reader) on as many subjects as finish in under 4 minutes, data generation and Ray
start-up included.

    .venv/bin/python tests/benchmarks/bench_demo.py [--model linear] [--subjects 8] [--extra ARGS] [--phases cold,warm]

Runs the README's `moodops run loso --dataset deap --synthetic [--model M] [--synthetic-subjects N]`
in a fresh working directory with a fresh cache: "cold" (generates the synthetic dataset and builds
features) and then "warm" (both from cache). Without ``--model`` the command's default model runs.
Writes tests/benchmarks/results/demo-<model|default>[-s<N>].json.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
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
    parser.add_argument("--model", default=None, help="default: the command's default model")
    parser.add_argument("--subjects", type=int, default=None, help="synthetic subjects (default: DEAP's 32)")
    parser.add_argument("--extra", default="", help="more CLI arguments, e.g. '--epochs 5'")
    parser.add_argument("--phases", default="cold,warm")
    args = parser.parse_args()
    command = [MOODOPS, "run", "loso", "--dataset", "deap", "--synthetic",
               *(["--model", args.model] if args.model else []),
               *(["--synthetic-subjects", str(args.subjects)] if args.subjects else []),
               *shlex.split(args.extra)]
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MOODOPS_CACHE": str(Path(tmp) / "cache")}
        for phase in args.phases.split(","):
            out = Path(tmp) / f"{phase}.json"
            t0 = time.perf_counter()
            proc = subprocess.run([*command, "--output-json", str(out)], cwd=tmp, env=env, capture_output=True,
                                  text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"demo failed ({phase}):\n{proc.stderr}")
            summary = json.loads(out.read_text())
            runs[phase] = {"wall_s": wall, "folds": len(summary["folds"]), **summary["aggregate"],
                           "fold_s": [f.get("seconds") for f in summary["folds"]],
                           "epochs_run": [f.get("epochs_run") for f in summary["folds"]],
                           "stdout": proc.stdout[-3000:], "stderr": proc.stderr[-3000:]}
    subjects = args.subjects or 32
    result = {"benchmark": f"README demo: LOSO over {subjects} synthetic DEAP subjects",
              "command": " ".join(["moodops", *command[1:]]), "runs": runs,
              "target_s": 300.0 if args.model == "linear" else 240.0,
              "machine": machine()}
    path = Path(__file__).parent / "results" / f"demo-{args.model or 'default'}{f'-s{args.subjects}' if args.subjects else ''}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

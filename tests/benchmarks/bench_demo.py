"""Benchmark: wall time of the README demo (LOSO over 32 synthetic subjects).

Target (issue 2): under 5 minutes on 2 CPU cores, Ray start-up included.

    .venv/bin/python tests/benchmarks/bench_demo.py [--model linear] [--extra ARGS]

Runs the README's `moodops run loso --dataset deap --synthetic --model linear`
twice in a fresh working directory with a fresh cache: "cold" (generates the
synthetic dataset and builds features) and "warm" (both from cache). Writes
tests/benchmarks/results/demo-<model>.json.
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
    parser.add_argument("--model", default="linear")
    parser.add_argument("--extra", default="", help="more CLI arguments, e.g. '--epochs 5'")
    args = parser.parse_args()
    command = [MOODOPS, "run", "loso", "--dataset", "deap", "--synthetic", "--model", args.model,
               *shlex.split(args.extra)]
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MOODOPS_CACHE": str(Path(tmp) / "cache")}
        for phase in ("cold", "warm"):
            out = Path(tmp) / f"{phase}.json"
            t0 = time.perf_counter()
            proc = subprocess.run([*command, "--output-json", str(out)], cwd=tmp, env=env, capture_output=True,
                                  text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"demo failed ({phase}):\n{proc.stderr}")
            summary = json.loads(out.read_text())
            runs[phase] = {"wall_s": wall, "folds": len(summary["folds"]), **summary["aggregate"],
                           "stdout": proc.stdout[-3000:], "stderr": proc.stderr[-3000:]}
    result = {"benchmark": "README demo: LOSO over 32 synthetic DEAP subjects",
              "command": " ".join(["moodops", *command[1:]]), "runs": runs, "target_s": 300.0,
              "machine": machine()}
    path = Path(__file__).parent / "results" / f"demo-{args.model}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

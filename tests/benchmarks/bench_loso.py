"""Benchmark: the full 32-subject DEAP LOSO of the default Mood Reader against its FLOP floor (issue 17).

    .venv/bin/python tests/benchmarks/bench_loso.py [--subjects 32] [--extra ARGS]
    python tests/benchmarks/bench_loso.py --device cuda --extra "--gpus-per-fold 0.25 --folds-per-task auto"

Runs `moodops run loso --dataset deap --synthetic [--synthetic-subjects N]` (the default model and
variant) in a fresh working directory with a fresh cache, so the wall time includes generating the
synthetic copy, its features and Ray's start-up. In the same process it times a 2048² float32 sgemm
on all the machine's threads and counts one training step's matmul and convolution FLOPs per sample
(`torch.utils.flop_counter`, forward + backward + optimizer, the variant the run used). The floor is
the training arithmetic the run did at the sgemm rate: Σ over folds of epochs run × training samples
× FLOPs per sample ÷ sgemm rate (validation and test passes, feature extraction and orchestration are
not in it, so a real run can never reach it). Writes tests/benchmarks/results/loso-floor-<device>[-s<N>][-extra].json.
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
from _machine import machine, sgemm_gflops  # noqa: E402
from bench_models import one  # noqa: E402

MOODOPS = str(Path(sys.executable).with_name("moodops"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=None, help="synthetic subjects (default: DEAP's 32)")
    parser.add_argument("--extra", default="", help="more CLI arguments")
    parser.add_argument("--device", default="cpu", help="where the sgemm yardstick runs: cpu (all threads) or cuda")
    args = parser.parse_args()
    if "--model" in shlex.split(args.extra):
        parser.error("--extra must not choose --model: the floor is counted for the default Mood Reader")
    threads = os.cpu_count() or 1
    import torch

    torch.set_num_threads(threads)
    sgemm = sgemm_gflops(args.device)
    print(f"sgemm 2048² on {args.device}: {sgemm:.0f} GFLOP/s ({threads} CPU thread(s))", flush=True)
    command = [MOODOPS, "run", "loso", "--dataset", "deap", "--synthetic",
               *(["--synthetic-subjects", str(args.subjects)] if args.subjects else []), *shlex.split(args.extra)]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MOODOPS_CACHE": str(Path(tmp) / "cache")}
        out = Path(tmp) / "run.json"
        t0 = time.perf_counter()
        # the run's progress lines pass through as they come (a run cut short by a time limit shows how far it got)
        proc = subprocess.Popen([*command, "--output-json", str(out)], cwd=tmp, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if not line.startswith("\r"):
                sys.stderr.write(line)
        stdout = proc.stdout.read()
        proc.wait()
        wall = time.perf_counter() - t0
        stderr = "".join(lines)
        if proc.returncode != 0:
            raise SystemExit(f"the run failed:\n{stderr}")
        summary = json.loads(out.read_text())
    variant = summary["variant"]
    step = one("mood_reader", variant, "cpu", 1, seconds=1.0)  # FLOPs per sample do not depend on threads
    mflop = step["mflop_per_sample"]
    folds = summary["folds"]
    train_flop = sum(f["epochs_run"] * f["n_train"] * mflop * 1e6 for f in folds)
    floor_s = train_flop / (sgemm * 1e9)
    result = {
        "benchmark": "full LOSO of the default Mood Reader on synthetic DEAP against its FLOP floor",
        "command": " ".join(["moodops", *command[1:]]), "variant": variant, "folds": len(folds),
        "wall_s": round(wall, 1), "run_wall_s": round(summary["wall_s"], 1),
        "accuracy_mean": summary["aggregate"]["test_accuracy_mean"],
        "accuracy_std": summary["aggregate"]["test_accuracy_std"],
        "epochs_run": [f["epochs_run"] for f in folds], "fold_s": [round(f["seconds"], 1) for f in folds],
        "n_train": [int(f["n_train"]) for f in folds], "mflop_per_training_sample": mflop,
        "sgemm_device": args.device, "sgemm_gflops": round(sgemm, 1), "sgemm_threads": threads,
        "training_tflop": round(train_flop / 1e12, 2), "flop_floor_s": round(floor_s, 1),
        "wall_over_floor": round(wall / floor_s, 2), "target_wall_over_floor": 2.5,
        "stderr": stderr[-4000:], "stdout": stdout[-2000:], "machine": machine(),
    }
    name = f"loso-floor-{args.device.split(':')[0]}" + (f"-s{args.subjects}" if args.subjects else "") + ("-extra" if args.extra else "")
    path = Path(__file__).parent / "results" / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("stderr", "stdout")}, indent=2))


if __name__ == "__main__":
    main()

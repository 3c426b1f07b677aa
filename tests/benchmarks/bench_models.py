"""Benchmark: training throughput and peak memory of every registered model and variant.

    .venv/bin/python tests/benchmarks/bench_models.py [--device cpu|cuda] [--threads 2] [--only mood_reader]
        [--precision fp32|bf16] [--batch-size N] [--in-process]

Each (model, variant) runs in a fresh process on random inputs of DEAP-sized
shapes (32 channels; x with the model's default windows per sample; raw EEG
at 128 Hz; 31 eye and 35 face features per window), with the model's default
batch size and hyperparameters: a few warm-up steps, then AdamW training
steps (forward, backward, update) for about ``--seconds``. Reported:
samples/s, and peak memory — the process's peak resident set on CPU (so it
includes the interpreter and torch, about 0.4 GB), ``max_memory_allocated``
on CUDA. Steps are timed back to back with no host-device sync between them
(training syncs once per epoch). FLOPs are one step's matmuls and convolutions
(``torch.utils.flop_counter``), so GFLOP/s is a lower bound; on a GPU it is
also given as a share of the device's dense bf16 peak. ``--precision bf16``
runs the forward pass under bf16 autocast, as ``--set precision=bf16`` trains.
The SVM is timed as one ``fit`` on 4,000 samples. Results go to
tests/benchmarks/results/models-<device>[-bf16][-b<N>].json with the machine.
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
from bench_pretrain import BF16_PEAK_TFLOPS  # noqa: E402

CHANNELS, BANDS, SFREQ, EYE, FACE = 32, 5, 128, 31, 35


def one(name: str, variant: str, device_name: str, threads: int, seconds: float, precision: str = "fp32",
        batch_size: int | None = None) -> dict:
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from moodops.components.models import MODELS, create_model
    from moodops.orchestrator.config import MODEL_DEFAULTS

    torch.set_num_threads(threads)
    info = MODELS.get(name)
    n = info.run_defaults.get("seq_len", MODEL_DEFAULTS["seq_len"])
    batch = batch_size or info.run_defaults.get("batch_size", MODEL_DEFAULTS["batch_size"])
    window = info.run_defaults.get("window_s", MODEL_DEFAULTS["window_s"])
    f = CHANNELS if "dfc" in info.features else BANDS
    shapes = {"x": (n, CHANNELS, f), "raw": (n, CHANNELS, int(SFREQ * window)), "eye": (n, EYE), "face": (n, FACE)}
    v = info.variant(variant)
    if info.framework == "sklearn":
        rng = np.random.default_rng(0)
        x = {k: rng.standard_normal((4000, *shapes[k])).astype(np.float32) for k in v.inputs}
        y = rng.integers(0, 2, 4000)
        model = create_model(name, shapes, 2, variant=variant)
        t0 = time.perf_counter()
        model.fit(x, y)
        wall = time.perf_counter() - t0
        return {"samples_per_s": 4000 / wall, "batch_size": 4000, "steps": 1, "seconds": wall,
                "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "parameters": None,
                "memory_kind": "process peak RSS", "precision": "fp64", "mflop_per_sample": None, "tflops": None,
                "share_of_bf16_peak": None}
    device = torch.device(device_name)
    torch.manual_seed(0)
    model = create_model(name, shapes, 2, variant=variant).to(device).train()
    inputs = {k: torch.randn(batch, *shapes[k], device=device) for k in ("x", *v.extras)}
    y = torch.randint(0, 2, (batch,), device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(inputs["x"], **{k: inputs[k] for k in v.extras})
            loss = torch.nn.functional.cross_entropy(logits.float(), y)
        aux = model.auxiliary_loss() if hasattr(model, "auxiliary_loss") else None
        if aux is not None:
            loss = loss + aux
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_total_flops()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    # as training runs: no host-device sync between steps (moodops syncs once per epoch)
    calibration, t0 = 5, time.perf_counter()
    for _ in range(calibration):
        step()
    sync()
    steps = max(5, int(seconds / max(1e-6, (time.perf_counter() - t0) / calibration)))
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    wall = time.perf_counter() - t0
    if device.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated() / 2**20, "CUDA max_memory_allocated"
    else:
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"
    achieved = flops * steps / wall
    bf16_peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if device.type == "cuda" and k in torch.cuda.get_device_name(0)),
                None)
    return {"samples_per_s": steps * batch / wall, "batch_size": batch, "steps": steps, "seconds": wall,
            "precision": precision, "mflop_per_sample": flops / batch / 1e6, "tflops": achieved / 1e12,
            "share_of_bf16_peak": achieved / (bf16_peak * 1e12) if bf16_peak else None,
            "peak_memory_mb": peak, "memory_kind": kind, "parameters": sum(p.numel() for p in model.parameters()),
            "shapes": {k: list(shapes[k]) for k in ("x", *v.extras)}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--only", nargs="*", default=None, help="model names to run (default: all)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: forward passes under bf16 autocast, as `--set precision=bf16` trains")
    parser.add_argument("--batch-size", type=int, default=None, help="override every model's default batch size")
    parser.add_argument("--in-process", action="store_true",
                        help="all variants in this process (CUDA: peak memory is reset per variant; saves the "
                             "start-up of a process per variant)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        name, variant = args.one.split(":")
        print(json.dumps(one(name, variant, args.device, args.threads, args.seconds, args.precision, args.batch_size)))
        return
    from moodops.components.models import MODELS

    rows = {}
    for name in args.only or MODELS.names():
        for v in MODELS.get(name).variants:
            if args.in_process:
                rows[f"{name}/{v.name}"] = one(name, v.name, args.device, args.threads, args.seconds, args.precision,
                                               args.batch_size)
            else:
                proc = subprocess.run([sys.executable, __file__, "--one", f"{name}:{v.name}", "--device", args.device,
                                       "--threads", str(args.threads), "--seconds", str(args.seconds),
                                       "--precision", args.precision,
                                       *(["--batch-size", str(args.batch_size)] if args.batch_size else [])],
                                      capture_output=True, text=True, check=True)
                rows[f"{name}/{v.name}"] = json.loads(proc.stdout.strip().splitlines()[-1])
            r = rows[f"{name}/{v.name}"]
            print(f"{name}/{v.name:<14} {r['samples_per_s']:>10.0f} samples/s  batch {r['batch_size']:<5} "
                  f"peak {r['peak_memory_mb']:.0f} MB"
                  + (f"  {r['tflops'] * 1e3:.1f} GFLOP/s" if r["tflops"] is not None else ""), flush=True)
    out = {"benchmark": "training throughput per model/variant on random DEAP-sized inputs (default sizes)",
           "device": args.device, "threads": args.threads, "precision": args.precision,
           "batch_size": args.batch_size or "model default", "results": rows, "machine": machine()}
    if args.device.startswith("cuda"):
        import torch

        out["machine"]["gpu"] = torch.cuda.get_device_name(0)
    suffix = ("" if args.precision == "fp32" else f"-{args.precision}") + (f"-b{args.batch_size}" if args.batch_size else "")
    path = Path(__file__).parent / "results" / f"models-{args.device.split(':')[0]}{suffix}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

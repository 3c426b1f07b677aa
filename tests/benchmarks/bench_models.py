"""Benchmark: training throughput and peak memory of every registered model and variant.

    .venv/bin/python tests/benchmarks/bench_models.py [--device cpu|cuda] [--threads 2] [--only mood_reader]

Each (model, variant) runs in a fresh process on random inputs of DEAP-sized
shapes (32 channels; x with the model's default windows per sample; raw EEG
at 128 Hz; 31 eye and 35 face features per window), with the model's default
batch size and hyperparameters: a few warm-up steps, then AdamW training
steps (forward, backward, update) for about ``--seconds``. Reported:
samples/s, and peak memory — the process's peak resident set on CPU (so it
includes the interpreter and torch, about 0.4 GB), ``max_memory_allocated``
on CUDA. The SVM is timed as one ``fit`` on 4,000 samples. Results go to
tests/benchmarks/results/models-<device>.json with the machine.
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

CHANNELS, BANDS, SFREQ, EYE, FACE = 32, 5, 128, 31, 35


def one(name: str, variant: str, device_name: str, threads: int, seconds: float) -> dict:
    import numpy as np
    import torch

    from moodops.components.models import MODELS, create_model
    from moodops.orchestrator.config import MODEL_DEFAULTS

    torch.set_num_threads(threads)
    info = MODELS.get(name)
    n = info.run_defaults.get("seq_len", MODEL_DEFAULTS["seq_len"])
    batch = info.run_defaults.get("batch_size", MODEL_DEFAULTS["batch_size"])
    window = info.run_defaults.get("window_s", MODEL_DEFAULTS["window_s"])
    f = CHANNELS if "dfc" in info.features else BANDS
    shapes = {"x": (n, CHANNELS, f), "raw": (n, CHANNELS, int(SFREQ * window)), "eye": (n, EYE), "face": (n, FACE)}
    v = info.variant(variant)
    if info.framework == "sklearn":
        rng = np.random.default_rng(0)
        x = rng.standard_normal((4000, *shapes["x"])).astype(np.float32)
        y = rng.integers(0, 2, 4000)
        model = create_model(name, shapes, 2, variant=variant)
        t0 = time.perf_counter()
        model.fit(x, y)
        wall = time.perf_counter() - t0
        return {"samples_per_s": 4000 / wall, "batch_size": 4000, "steps": 1, "seconds": wall,
                "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "parameters": None,
                "memory_kind": "process peak RSS"}
    device = torch.device(device_name)
    torch.manual_seed(0)
    model = create_model(name, shapes, 2, variant=variant).to(device).train()
    inputs = {k: torch.randn(batch, *shapes[k], device=device) for k in ("x", *v.extras)}
    y = torch.randint(0, 2, (batch,), device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        logits = model(inputs["x"], **{k: inputs[k] for k in v.extras})
        loss = torch.nn.functional.cross_entropy(logits, y)
        aux = model.auxiliary_loss() if hasattr(model, "auxiliary_loss") else None
        if aux is not None:
            loss = loss + aux
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or steps < 5:
        step()
        steps += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    if device.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated() / 2**20, "CUDA max_memory_allocated"
    else:
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"
    return {"samples_per_s": steps * batch / wall, "batch_size": batch, "steps": steps, "seconds": wall,
            "peak_memory_mb": peak, "memory_kind": kind, "parameters": sum(p.numel() for p in model.parameters()),
            "shapes": {k: list(shapes[k]) for k in ("x", *v.extras)}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--only", nargs="*", default=None, help="model names to run (default: all)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        name, variant = args.one.split(":")
        print(json.dumps(one(name, variant, args.device, args.threads, args.seconds)))
        return
    from moodops.components.models import MODELS

    rows = {}
    for name in args.only or MODELS.names():
        for v in MODELS.get(name).variants:
            proc = subprocess.run([sys.executable, __file__, "--one", f"{name}:{v.name}", "--device", args.device,
                                   "--threads", str(args.threads), "--seconds", str(args.seconds)],
                                  capture_output=True, text=True, check=True)
            rows[f"{name}/{v.name}"] = json.loads(proc.stdout.strip().splitlines()[-1])
            r = rows[f"{name}/{v.name}"]
            print(f"{name}/{v.name:<14} {r['samples_per_s']:>10.0f} samples/s  batch {r['batch_size']:<5} "
                  f"peak {r['peak_memory_mb']:.0f} MB", flush=True)
    out = {"benchmark": "training throughput per model/variant on random DEAP-sized inputs (default sizes)",
           "device": args.device, "threads": args.threads, "results": rows, "machine": machine()}
    if args.device.startswith("cuda"):
        import torch

        out["machine"]["gpu"] = torch.cuda.get_device_name(0)
    path = Path(__file__).parent / "results" / f"models-{args.device.split(':')[0]}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

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
from _machine import machine, sgemm_gflops  # noqa: E402
from bench_pretrain import BF16_PEAK_TFLOPS  # noqa: E402

CHANNELS, BANDS, SFREQ, EYE, FACE = 32, 5, 128, 31, 35


def one(name: str, variant: str, device_name: str, threads: int, seconds: float, precision: str = "fp32",
        batch_size: int | None = None, optimizer_kernel: str = "training", profile: bool = False) -> dict:
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
    shapes = {"x": (n, CHANNELS, f), "raw": (n, CHANNELS, int(SFREQ * window)), "eye": (n, EYE), "face": (n, FACE),
              "psd": (n, CHANNELS, BANDS)}
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
    if optimizer_kernel == "training":  # what `moodops run` trains with (fused Adam(W) where torch has it)
        from moodops.pipelines.train import make_optimizer

        optimizer = make_optimizer(torch.optim.AdamW, list(model.parameters()), lr=1e-3, weight_decay=0.01)
    else:  # the per-tensor AdamW the training loop used before
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
    top_ops = None
    if profile:  # where a step's time goes: the ops with the most self time over 3 steps
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with torch_profile(activities=activities) as prof:
            for _ in range(3):
                step()
            sync()
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events) or 1
        top_ops = [{"op": e.key, "share_of_self_cpu_time": round(e.self_cpu_time_total / total, 3),
                    "calls_per_step": e.count // 3} for e in events[:8]]
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
            "shapes": {k: list(shapes[k]) for k in ("x", *v.extras)}, **({"top_ops": top_ops} if top_ops else {})}


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
    parser.add_argument("--optimizer-kernel", choices=("training", "per-tensor", "both"), default="training",
                        help="training: the training loop's optimizer (fused Adam(W)); per-tensor: the AdamW "
                             "used before; both: each variant twice, the per-tensor rate beside")
    parser.add_argument("--profile", action="store_true", help="record each variant's top ops by self time")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        name, variant = args.one.split(":")
        print(json.dumps(one(name, variant, args.device, args.threads, args.seconds, args.precision, args.batch_size,
                             args.optimizer_kernel, args.profile)))
        return
    import torch

    torch.set_num_threads(args.threads)
    sgemm = sgemm_gflops(args.device)
    print(f"sgemm 2048² float32: {sgemm:.0f} GFLOP/s on {args.threads} thread(s)", flush=True)
    from moodops.components.models import MODELS

    def measure(name: str, variant: str, kernel: str) -> dict:
        if args.in_process:
            return one(name, variant, args.device, args.threads, args.seconds, args.precision, args.batch_size, kernel,
                       args.profile and kernel == "training")
        proc = subprocess.run([sys.executable, __file__, "--one", f"{name}:{variant}", "--device", args.device,
                               "--threads", str(args.threads), "--seconds", str(args.seconds),
                               "--precision", args.precision, "--optimizer-kernel", kernel,
                               *(["--profile"] if args.profile and kernel == "training" else []),
                               *(["--batch-size", str(args.batch_size)] if args.batch_size else [])],
                              capture_output=True, text=True, check=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])

    rows = {}
    for name in args.only or MODELS.names():
        for v in MODELS.get(name).variants:
            kernel = "training" if args.optimizer_kernel == "both" else args.optimizer_kernel
            r = rows[f"{name}/{v.name}"] = measure(name, v.name, kernel)
            r["optimizer_kernel"] = kernel
            if r["tflops"] is not None:
                r["share_of_sgemm"] = r["tflops"] * 1e3 / sgemm
            if args.optimizer_kernel == "both" and r["tflops"] is not None:
                before = measure(name, v.name, "per-tensor")
                r["per_tensor_optimizer"] = {k: before[k] for k in ("samples_per_s", "tflops")}
                r["per_tensor_optimizer"]["share_of_sgemm"] = before["tflops"] * 1e3 / sgemm
            print(f"{name}/{v.name:<14} {r['samples_per_s']:>10.0f} samples/s  batch {r['batch_size']:<5} "
                  f"peak {r['peak_memory_mb']:.0f} MB"
                  + (f"  {r['tflops'] * 1e3:.1f} GFLOP/s ({r['share_of_sgemm']:.1%} of sgemm)"
                     if r["tflops"] is not None else "")
                  + (f"  [per-tensor AdamW: {r['per_tensor_optimizer']['samples_per_s']:.0f} samples/s]"
                     if "per_tensor_optimizer" in r else ""), flush=True)
    out = {"benchmark": "training throughput per model/variant on random DEAP-sized inputs (default sizes)",
           "device": args.device, "threads": args.threads, "precision": args.precision,
           "batch_size": args.batch_size or "model default", "optimizer_kernel": args.optimizer_kernel,
           "command": " ".join(["python", *sys.argv]), "sgemm_gflops": sgemm, "results": rows, "machine": machine()}
    if args.device.startswith("cuda"):
        import torch

        out["machine"]["gpu"] = torch.cuda.get_device_name(0)
    suffix = ("" if args.precision == "fp32" else f"-{args.precision}") + (f"-b{args.batch_size}" if args.batch_size else "")
    suffix += "-profile" if args.profile else ""  # profiled steps are slower: kept apart from the plain rates
    if args.only and not args.profile:  # a partial run keeps the full table
        suffix += "-only-" + "-".join(args.only)
    path = Path(__file__).parent / "results" / f"models-{args.device.split(':')[0]}{suffix}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Benchmark: masked pretraining throughput (segments/s), CPU and GPU, and the share of the GPU's bf16 peak.

    .venv/bin/python tests/benchmarks/bench_pretrain.py [--device cpu|cuda] [--threads 2] [--epochs 3]
        [--segments 2048] [--batch-size 64] [--precision fp32|bf16] [--ray-workers 2]

MBSM at moodops' default size (EEGMMIDB-shaped segments: 64 channels × 800
samples = 4 s at 200 Hz, 32-sample tokens, encoder width 32, depth 2, light
decoder) on generated segments, through :func:`moodops.pipelines.pretrain.pretrain`
(the code `moodops pretrain` runs). The first epoch is warm-up; throughput is
the mean of the others. FLOPs of one training step (forward + backward) are
counted with ``torch.utils.flop_counter``; on a GPU the achieved FLOP/s is
divided by the device's dense bf16 peak (:data:`BF16_PEAK_TFLOPS`).

``--ray-workers N`` also runs N data-parallel CPU workers through Ray Train
(gloo), as `moodops pretrain --workers N` does.

Results are appended (one entry per configuration) to
tests/benchmarks/results/pretrain-<device>.json with the machine.
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

#: Dense bf16 tensor-core peak (TFLOP/s, no sparsity) by device-name fragment, from the vendors' data sheets.
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


def segments(n: int, channels: int = 64, samples: int = 800, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 200.0
    rhythm = np.sin(2 * np.pi * rng.uniform(8, 13, (n, 1, 1)) * t + rng.uniform(0, 6.3, (n, 1, 1)))
    return (rng.normal(1, 0.3, (n, channels, 1)) * rhythm + 0.5 * rng.normal(size=(n, channels, samples))
            ).astype(np.float32)


def step_flops(config, data, device) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from moodops.pipelines.pretrain import build_pretrain_model

    model = build_pretrain_model(config, {"raw": data.shape[1:]}).to(device)
    raw = torch.from_numpy(data[: config.batch_size]).to(device)
    with FlopCounterMode(display=False) as counter:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
            loss = model(raw)
        loss.backward()
    return int(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--segments", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--ray-workers", type=int, default=0)
    args = parser.parse_args()

    import torch

    from moodops.pipelines.pretrain import PretrainConfig, pretrain

    torch.set_num_threads(args.threads)
    data = segments(args.segments)
    config = PretrainConfig(epochs=args.epochs, batch_size=args.batch_size, val_fraction=0.0, device=args.device,
                            precision=args.precision, num_threads=args.threads)
    device = torch.device(args.device)
    t0 = time.perf_counter()
    result = pretrain({"raw": data}, config)
    wall = time.perf_counter() - t0
    rates = [h["segments_per_s"] for h in result.history[1:]] or [result.history[0]["segments_per_s"]]
    rate = float(np.mean(rates))
    flops = step_flops(config, data, device)
    entry = {"method": "mbsm", "device": args.device, "precision": args.precision, "threads": args.threads,
             "segments": args.segments, "segment_shape": list(data.shape[1:]), "batch_size": args.batch_size,
             "epochs": args.epochs, "segments_per_s": round(rate, 1), "wall_s": round(wall, 1),
             "train_loss_first_last": [round(result.history[0]["train_loss"], 4),
                                       round(result.history[-1]["train_loss"], 4)],
             "gflop_per_step": round(flops / 1e9, 3),
             "achieved_tflops": round(flops / args.batch_size * rate / 1e12, 4)}
    if args.device.startswith("cuda"):
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
        entry.update(gpu=name, bf16_peak_tflops=peak,
                     fraction_of_bf16_peak=round(entry["achieved_tflops"] / peak, 6) if peak else None,
                     max_memory_gib=round(torch.cuda.max_memory_allocated(device) / 2**30, 3))
    runs = [entry]
    print(json.dumps(entry), flush=True)
    if args.ray_workers:
        runs.append(ray_train(args, data))
        print(json.dumps(runs[-1]), flush=True)
    path = Path(__file__).parent / "results" / f"pretrain-{'cuda' if args.device.startswith('cuda') else 'cpu'}.json"
    old = json.loads(path.read_text())["runs"] if path.exists() else []
    keep = [r for r in old if (r.get("precision"), r.get("batch_size"), r.get("workers", 1)) not in
            {(r2.get("precision"), r2.get("batch_size"), r2.get("workers", 1)) for r2 in runs}]
    path.write_text(json.dumps({"benchmark": "MBSM masked pretraining throughput", "runs": keep + runs,
                                "machine": machine()}, indent=2) + "\n")


def ray_train(args, data) -> dict:
    """The same pretraining through Ray Train with N gloo CPU workers (`moodops pretrain --workers N`)."""
    import os
    import tempfile

    from moodops.orchestrator.pretrain import PretrainJob, _train_ray
    from moodops.orchestrator.run import Reporter

    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    with tempfile.TemporaryDirectory() as tmp:
        job = PretrainJob(method="mbsm", root=tmp, epochs=args.epochs, batch_size=args.batch_size,
                          workers=args.ray_workers)
        config = dict(job.train_config().__dict__)
        t0 = time.perf_counter()
        result = _train_ray(job, {"raw": data}, {"sfreq": 200.0}, Reporter())
        wall = time.perf_counter() - t0
    rates = [h["segments_per_s"] for h in result.history[1:]] or [result.history[0]["segments_per_s"]]
    return {"method": "mbsm", "device": "cpu", "precision": config["precision"], "workers": args.ray_workers,
            "backend": "gloo (Ray Train)", "segments": args.segments, "batch_size": args.batch_size,
            "epochs": args.epochs, "segments_per_s": round(float(np.mean(rates)), 1), "wall_s": round(wall, 1),
            "note": "wall includes starting Ray and the workers"}


if __name__ == "__main__":
    main()

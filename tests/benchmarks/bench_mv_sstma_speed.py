"""Benchmark: MV-SSTMA train-step throughput and achieved GFLOP/s, against the machine's sgemm rate.

    .venv/bin/python tests/benchmarks/bench_mv_sstma_speed.py --label after [--threads 2] [--device cpu]

SEED-IV-sized inputs (62 channels × T = 10 windows × 5 bands, 31 eye features per window), batch 32,
the model's defaults (the paper's D = 16, L = 6 hybrid blocks, §3.2). One train step is forward,
backward and an AdamW update. FLOPs are those of one step's matmuls and convolutions, counted by
``torch.utils.flop_counter.FlopCounterMode`` (elementwise ops, norms and softmax are not counted,
so GFLOP/s is a lower bound on the work done). The reference is a 2048 × 2048 float32 matmul on the
same threads in the same process. Each variant runs in a fresh process; results are merged into
tests/benchmarks/results/mv_sstma-speed-<device>.json under ``--label`` (``before`` / ``after`` a
change), so one file shows both.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine, sgemm_gflops  # noqa: E402

CHANNELS, T, BANDS, EYE, BATCH = 62, 10, 5, 31, 32
VARIANTS = ("eeg", "eye", "attention")


def one(variant: str, device_name: str, threads: int, seconds: float, params: dict) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from moodops.components.models import create_model

    torch.set_num_threads(threads)
    device = torch.device(device_name)
    torch.manual_seed(0)
    shapes = {"x": (T, CHANNELS, BANDS), "eye": (T, EYE)}
    model = create_model("mv_sstma", shapes, 4, variant=variant, **params).to(device).train()
    x = torch.randn(BATCH, *shapes["x"], device=device)
    eye = torch.randn(BATCH, *shapes["eye"], device=device)
    y = torch.randint(0, 4, (BATCH,), device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    kwargs = {"eye": eye} if variant != "eeg" else {}
    first = None if variant == "eye" else x

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(first, **kwargs), y)
        aux = model.auxiliary_loss()
        if aux is not None:
            loss = loss + aux
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_total_flops()
    if device.type == "cuda":
        torch.cuda.synchronize()
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or steps < 5:
        step()
        steps += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    gflops = flops * steps / wall / 1e9
    reference = sgemm_gflops(device)
    return {"samples_per_s": steps * BATCH / wall, "step_ms": 1000 * wall / steps, "gflop_per_step": flops / 1e9,
            "gflop_per_s": gflops, "sgemm_gflop_per_s": reference, "ratio_to_sgemm": gflops / reference,
            "parameters": sum(p.numel() for p in model.parameters()), "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--label", required=True, help="where in the results file this run goes (before/after)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--params", default="{}", help='model parameters as JSON, e.g. \'{"heads": 4}\'')
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    params = json.loads(args.params)
    if args.one:
        print(json.dumps(one(args.one, args.device, args.threads, args.seconds, params)))
        return
    rows = {}
    for variant in VARIANTS:
        proc = subprocess.run([sys.executable, __file__, "--label", args.label, "--one", variant, "--device",
                               args.device, "--threads", str(args.threads), "--seconds", str(args.seconds),
                               "--params", args.params],
                              capture_output=True, text=True, check=True)
        rows[variant] = r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"mv_sstma/{variant:<10} {r['samples_per_s']:>8.0f} samples/s  {r['gflop_per_s']:>6.1f} GFLOP/s "
              f"(sgemm {r['sgemm_gflop_per_s']:.0f}, ratio {r['ratio_to_sgemm']:.3f})", flush=True)
    path = Path(__file__).parent / "results" / f"mv_sstma-speed-{args.device.split(':')[0]}.json"
    out = json.loads(path.read_text()) if path.is_file() else {
        "benchmark": "MV-SSTMA train step (fwd + bwd + AdamW), SEED-IV sizes, batch 32, model defaults",
        "command": "tests/benchmarks/bench_mv_sstma_speed.py --label <before|after>", "runs": {}}
    out["runs"][args.label] = {"device": args.device, "threads": args.threads, "params": params, "results": rows,
                               "machine": machine(),
                               "date": time.strftime("%Y-%m-%d")}
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

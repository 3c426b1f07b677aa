"""Machine description recorded next to every benchmark result."""
from __future__ import annotations

import os
import platform


def machine() -> dict[str, str | int]:
    cpu = platform.processor() or "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30
    except (ValueError, OSError):
        pass
    import numpy
    import scipy

    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "memory_gib": mem, "python": platform.python_version(),
            "numpy": numpy.__version__, "scipy": scipy.__version__, "platform": platform.platform()}


def sgemm_gflops(device=None, seconds: float = 2.0) -> float:
    """The float32 rate of a 2048 × 2048 matmul on ``device`` (default CPU) with torch's current threads: the
    yardstick every training throughput of a benchmark run is compared with, measured in the same run."""
    import time

    import torch

    device = torch.device(device or "cpu")
    a = torch.randn(2048, 2048, device=device)
    b = torch.randn(2048, 2048, device=device)
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 3:
        a @ b
        n += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * 2048 ** 3 * n / (time.perf_counter() - t0) / 1e9

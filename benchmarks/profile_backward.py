#!/usr/bin/env python3
"""Where a backward's GPU time goes: per-kernel CUDA time of SPLAT's backward (torch autograd
through the op: its dQ, dK/dV and split kernels, and any torch kernel around them) and the host
time of one call, for benchmark families from a pack of ``pack_gpu_artifacts.py --bench
--backward`` (issue 14; docs/performance.md, "Backward").

    SPLAT_ARTIFACT_DIR=/tmp/benchb PYTHONPATH=python \\
        python benchmarks/profile_backward.py --patterns window,dilated,strided --lengths 4096

Prints one line per (pattern, L, D): host ms per call (Python and launches, no sync), wall ms
per call, and the kernels' mean CUDA ms per call, largest first; ``--out-json`` keeps them.
Correctness is not checked here (bench_attention.py --backward does that before timing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _bench_common as C  # noqa: E402


def profile(h, shape, dtype, iters: int) -> dict:
    """Per-kernel CUDA ms per backward call and host/wall ms per call of forward + backward."""
    import torch

    q, k, v = (torch.randn(shape, device="cuda", dtype=dtype, requires_grad=True)
               for _ in range(3))
    do = torch.randn(shape, device="cuda", dtype=dtype)
    for _ in range(3):  # loads the kernels, resolves the backward artifact
        torch.autograd.grad(h(q, k, v), (q, k, v), do)
    kernels = C.per_kernel_ms(lambda: torch.autograd.grad(h(q, k, v), (q, k, v), do), iters)
    t0 = time.perf_counter()
    for _ in range(iters):
        torch.autograd.grad(h(q, k, v), (q, k, v), do)
    host = (time.perf_counter() - t0) / iters * 1e3
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / iters * 1e3
    return dict(host_ms=host, wall_ms=wall, kernels_ms=kernels)


def main(argv=None) -> int:
    import torch

    import splat.torch as st
    from splat.runtime.resolve import load_cached

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", default=os.environ.get("SPLAT_ARTIFACT_DIR"))
    ap.add_argument("--patterns", default="window,dilated,strided")
    ap.add_argument("--lengths", default="4096")
    ap.add_argument("--head-dims", default="64,128")
    ap.add_argument("--B", type=int, default=2)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--out-json")
    args = ap.parse_args(argv)
    if not args.artifacts:
        raise SystemExit("set SPLAT_ARTIFACT_DIR (or --artifacts) to a --bench --backward pack")
    art_dir = Path(args.artifacts)
    catalog = json.loads((art_dir / "catalog.json").read_text())
    entries = {(e["family"], e["L"], e["D"]): e for e in catalog["entries"]
               if e.get("variant", "fused") == "fused"}
    rows = []
    for name in args.patterns.split(","):
        for L in (int(x) for x in args.lengths.split(",")):
            for D in (int(x) for x in args.head_dims.split(",")):
                e = entries.get((name, L, D))
                if e is None:
                    print(f"{name} L={L} D={D}: not packed")
                    continue
                h = st.prepare(artifact=load_cached(art_dir / e["key"]))
                r = profile(h, (args.B, args.H, L, D), torch.bfloat16, args.iters)
                rows.append(dict(pattern=name, L=L, D=D, gpu=torch.cuda.get_device_name(), **r))
                parts = "; ".join(f"{n[:48]} {ms:.3f}" for n, ms in
                                  list(r["kernels_ms"].items())[:6])
                print(f"{name} L={L} D={D}: host {r['host_ms']:.3f} ms, wall {r['wall_ms']:.3f} "
                      f"ms per call; {parts}", flush=True)
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""One forward call of a packed build, for a profiler to look at (issue 12: where a wgmma
build's time goes).

Launches the prebound forward of each (pattern, L, D) of a ``pack_gpu_artifacts.py --bench``
pack once, on fresh random inputs, and nothing else of SPLAT: under ``ncu -k regex:splat_`` the
profiled launches are exactly that call's kernels, in manifest order. ``--check`` compares the
output with an fp64 reference first (a profile of a wrong kernel says little)::

    ncu --clock-control none --set full -k regex:splat_ -o dense \\
        python benchmarks/profile_forward.py --artifacts /tmp/b/ws64 --patterns dense
    ncu -i dense.ncu-rep --page details; ncu -i dense.ncu-rep --page source --print-source sass

``benchmarks/compare_builds.py run --profile BUILD`` runs that for each pattern of its plan.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))


def plan(args) -> list:
    """(family, L, D, catalog entry) of each requested layout, checked before any GPU work."""
    from splat import testing as T

    art_dir = Path(args.artifacts)
    try:
        catalog = json.loads((art_dir / "catalog.json").read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"--artifacts: {art_dir} has no readable catalog.json ({e})")
    entries = {(e["family_id"], e["L"], e["D"]): e for e in catalog["entries"]
               if e.get("variant", "fused") == "fused" and e["dtype"] == "bf16"}
    families = {f.name: f for f in T.BENCH_FAMILIES}
    out = []
    for name in args.patterns.split(","):
        if name not in families:
            raise SystemExit(f"--patterns: unknown family {name!r}; known: {', '.join(families)}")
        for L in map(int, args.lengths.split(",")):
            for D in map(int, args.head_dims.split(",")):
                entry = entries.get((str(families[name]), L, D))
                if entry is None:
                    raise SystemExit(f"{art_dir}: no bf16 artifact of {name} at L={L} D={D}")
                out.append((families[name], L, D, entry))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifacts", required=True, help="a pack_gpu_artifacts.py --bench pack")
    ap.add_argument("--patterns", default="dense")
    ap.add_argument("--lengths", default="4096")
    ap.add_argument("--head-dims", default="128")
    ap.add_argument("--B", type=int, default=2)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--check", action="store_true", help="check against fp64 before the launch")
    args = ap.parse_args(argv)
    layouts = plan(args)

    import torch

    from splat import testing as T
    from splat.runtime.launcher import get_launcher
    from splat.runtime.resolve import load_cached

    dev = torch.device("cuda")
    for fam, L, D, entry in layouts:
        art = load_cached(Path(args.artifacts) / entry["key"])
        q, k, v = (torch.randn(args.B, args.H, L, D, device=dev, dtype=torch.bfloat16)
                   for _ in range(3))
        scale = 1.0 / math.sqrt(D)
        o = torch.empty_like(q)
        lse = torch.empty(args.B, args.H, L, device=dev, dtype=torch.float32)
        launcher = get_launcher(art, torch.cuda.current_device())
        stream = torch.cuda.current_stream().cuda_stream
        launcher.forward(q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr(), lse.data_ptr(),
                         (args.B, args.H, args.H, L, L, D), scale, stream)
        torch.cuda.synchronize()
        line = f"{fam.name} L={L} D={D} key={entry['key']}"
        if args.check:
            ref, _, _ = T.reference_attention_torch(q[:1], k[:1], v[:1], fam, scale,
                                                    heads=slice(0, 2))
            line += f" rel_err={T.rel_error(o[:1, :2], ref):.2e}"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

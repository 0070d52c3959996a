#!/usr/bin/env python3
"""The backward's kernels alone, per kernel, for one or more packs of the same patterns built
with different backward options (issue 14: which tile shape, which kernel takes the time).

    python scripts/pack_gpu_artifacts.py --bench --backward --out /tmp/bn-default   # here
    python scripts/pack_gpu_artifacts.py --bench --backward --block-n 64 --out /tmp/bn64
    PYTHONPATH=python python benchmarks/bench_backward_kernels.py \\
        --packs default=/tmp/bn-default,bn64=/tmp/bn64 --patterns window,dilated --flex

Per (pattern, L, D) and pack, on fresh random bf16 inputs: the pack's forward kernel gives o
and lse; the backward artifact's launches (``Launcher.backward``: dQ, dK/dV and their splits,
into preallocated buffers) give dq, dk, dv, checked against fp64 (`reference_backward_torch`,
batch 0, ``--check-heads`` heads) *before* any timing; then ``bwd_kernel_ms`` (do_bench median
of the launches) and ``kernels_ms`` (CUDA time per kernel per call, torch.profiler). With
``--flex``, FlexAttention's backward in the same process, both as ``flex_bwd_ms`` (do_bench of
forward + backward minus forward, as bench_attention.py) and as CUDA time (``flex.bwd_kernel_ms``:
its kernels of forward + backward minus those of the forward, torch.profiler): the kernels against
the kernels, since at these sizes both libraries' autograd calls are host-bound. Rows go to
``--out-json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _bench_common as C  # noqa: E402
from splat import testing as T  # noqa: E402

TOL = 1e-2  # bf16


def _packs(spec: str) -> dict:
    """``{label: (dir, {(family, L, D, variant): entry})}`` from ``label=dir,...``."""
    out = {}
    for item in spec.split(","):
        label, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"--packs: {item!r} is not label=dir")
        cat = json.loads((Path(path) / "catalog.json").read_text())
        out[label] = (Path(path), {(e["family"], e["L"], e["D"], e.get("variant", "fused")): e
                                   for e in cat["entries"]})
    return out


def measure(pack_dir: Path, fwd_entry: dict, bwd_entry: dict, fam, tensors, args) -> dict:
    """Check the pack's backward against fp64, then time its launches."""
    from splat.runtime.resolve import load_cached

    q, k, v, do = tensors
    scale = 1.0 / math.sqrt(q.shape[-1])
    bwd_art = load_cached(pack_dir / bwd_entry["key"])
    run, grads = C.prebound_backward(load_cached(pack_dir / fwd_entry["key"]), bwd_art, q, k, v,
                                     do, scale)
    run()
    hs = slice(0, args.check_heads)
    want = T.reference_backward_torch(*(t[:1, hs] for t in (q, k, v, do)), fam, scale)
    err = max(T.rel_error(g[:1, hs], w) for g, w in zip(grads, want))
    first = bwd_art.kernels[0]
    row = dict(rel_err=err, ok=bool(err <= TOL), block_n=first.get("block_n"),
               block_m=first.get("block_m"), mma=first.get("mma", "mma_sync"),
               kernels=[kk["name"] for kk in bwd_art.kernels])
    row["bwd_kernel_ms"] = C.bench(run, args)
    row["kernels_ms"] = C.per_kernel_ms(run, args.iters)
    return row


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packs", required=True, help="label=dir,... (--bench --backward packs)")
    ap.add_argument("--patterns", default="window,blocked,dilated,strided")
    ap.add_argument("--lengths", default="4096")
    ap.add_argument("--head-dims", default="64,128")
    ap.add_argument("--B", type=int, default=2)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--check-heads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20, help="profiled calls")
    ap.add_argument("--warmup", type=int, default=25)
    ap.add_argument("--rep", type=int, default=100)
    ap.add_argument("--flex", action="store_true", help="also FlexAttention's backward")
    ap.add_argument("--out-json")
    args = ap.parse_args(argv)
    packs = _packs(args.packs)
    fams = {f.name: f for f in T.BENCH_FAMILIES}
    flex = C.flex_compiled() if args.flex else None
    rows = []
    for name in args.patterns.split(","):
        fam = fams[name]
        for L in (int(x) for x in args.lengths.split(",")):
            for D in (int(x) for x in args.head_dims.split(",")):
                shape = (args.B, args.H, L, D)
                tensors = [torch.randn(shape, device="cuda", dtype=torch.bfloat16)
                           for _ in range(4)]
                row = dict(pattern=name, family_id=str(fam), L=L, D=D, B=args.B, H=args.H,
                           dtype="bf16", gpu=torch.cuda.get_device_name(), packs={})
                for label, (pdir, cat) in packs.items():
                    fe, be = cat.get((name, L, D, "fused")), cat.get((name, L, D, "backward"))
                    if fe is None or be is None:
                        row["packs"][label] = dict(note="not packed")
                        continue
                    try:
                        row["packs"][label] = measure(pdir, fe, be, fam, tensors, args)
                    except Exception as e:  # keep measuring the others
                        row["packs"][label] = dict(note=f"{type(e).__name__}: {e}")
                if flex is not None:  # as bench_attention.py times it: forward compiled first
                    pred = fam.predicate(L, "cuda")
                    scale = 1.0 / math.sqrt(D)
                    C.run_flex(pred, *tensors[:3], scale, flex, args)
                    row["flex"] = C.flex_backward(flex, pred, tensors, scale, args, args.iters)
                    row["flex_bwd_ms"] = row["flex"].pop("flex_bwd_ms")
                rows.append(row)
                parts = []
                for label, r in row["packs"].items():
                    if "bwd_kernel_ms" not in r:
                        parts.append(f"{label}: {r.get('note')}")
                        continue
                    ks = ", ".join(f"{n.removeprefix('splat_bwd_')[:28]} {ms:.3f}"
                                   for n, ms in r["kernels_ms"].items())
                    parts.append(f"{label}: {r['bwd_kernel_ms']:.3f} ms "
                                 f"(err {r['rel_err']:.1e}{'' if r['ok'] else ' FAIL'}; {ks})")
                flex_s = (f"flex {row['flex_bwd_ms']:.3f} ms (kernels "
                          f"{row['flex']['bwd_kernel_ms']:.3f}); " if "flex" in row else "")
                print(f"{name} L={L} D={D}: {flex_s}" + "; ".join(parts), flush=True)
                if args.out_json:
                    C.save_rows(args.out_json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Host overhead per call of SPLAT's PyTorch entry points, against SDPA and FlexAttention
(issue 13), at a small shape where the host, not the kernel, sets the pace: B = 1, H = 8,
L = 1024, D = 64, bf16, MHA, one pattern of `splat.testing.TORCH_OP_CASES` (default causal).

Entry points (each a no-argument call on fixed inputs):

- ``public(pattern)``: ``splat.torch.attention(q, k, v, pattern)``, the kernel looked up per call;
- ``op``: ``h(q, k, v)`` for ``h = splat.torch.prepare(pattern, ...)``, the ``splat::attention``
  custom op through torch's dispatcher;
- ``op, no dispatcher``: the op's CUDA implementation called directly (the dispatcher's share);
- ``launch only``: ``Launcher.forward_with_scratch`` into preallocated outputs (the floor);
- ``compiled op``: ``torch.compile(fullgraph=True)`` of a function calling ``h`` (guards +
  graph call);
- ``SDPA``: ``F.scaled_dot_product_attention`` (``is_causal`` for causal, else the bool mask);
- ``Flex``: ``torch.compile(flex_attention)`` with the block mask made once.

Per entry point, medians over ``--repeats`` runs of ``--calls`` back-to-back calls:

- ``host_us``: host time to issue one call (timed without synchronising; the GPU queue absorbs
  the launches);
- ``wall_us``: time per call of the loop, synchronised at its end (host and GPU overlapping);
- ``gpu_us``: GPU time per call, from CUDA events around the replay of a CUDA graph of
  ``--graph-calls`` calls (no launch overhead: the kernel's own time), null where the entry
  point cannot be captured;
- ``overhead_us = wall_us - gpu_us``: "the public call minus the kernel";
- ``graph_overhead_us``: the same under CUDA graphs: the host-timed wall time per call of a
  replay of that graph (replay and wait) minus ``gpu_us``.

``--block`` also times a ``torch.compile``d 2-layer transformer block
(`splat.testing.attention_model`, dim 512) with SPLAT, Flex and SDPA attention at each batch size
of ``--block-batches`` (default 1 and 8): ms per forward, the models' loops interleaved.

Artifacts come prebuilt (the GPU machine has no MLIR)::

    python scripts/pack_gpu_artifacts.py --torch-op --out .device/artifacts   # where MLIR is
    SPLAT_ARTIFACT_DIR=.device/artifacts python benchmarks/bench_overhead.py --block --copy-to $OUT

Writes ``benchmarks/results/<date>-<gpu>-overhead.json`` (``meta``, ``rows``, ``block``) and
prints a table.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import math
import os
import shutil
import statistics
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _bench_common as C  # noqa: E402
from splat import testing as T  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


# ----------------------------------------------------------------------------------- timing


def host_and_wall_us(fn, calls: int, repeats: int) -> tuple:
    """(median host µs per call, median wall µs per call) over `repeats` loops of `calls`."""
    return C.host_and_wall_us(fn, lambda _: C.sync(), calls, repeats)


def graph_us(fn, graph_calls: int, repeats: int) -> tuple:
    """(median GPU µs, median wall µs) per call of a CUDA graph holding `graph_calls` calls of
    `fn`: GPU time between events around a replay, wall time of a replay and its wait on the
    host. Their difference is the host overhead per call left under CUDA graphs."""
    import torch

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(graph_calls):
            fn()
    g.replay()
    C.sync()
    gpu, wall = [], []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0 = time.perf_counter()
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        wall.append((time.perf_counter() - t0) * 1e6 / graph_calls)
        gpu.append(a.elapsed_time(b) * 1e3 / graph_calls)
    return statistics.median(gpu), statistics.median(wall)


def measure(name: str, fn, args, notes: list) -> dict:
    for _ in range(args.warmup):
        fn()
    C.sync()
    host, wall = host_and_wall_us(fn, args.calls, args.repeats)
    gpu = graph_wall = None
    try:
        gpu, graph_wall = graph_us(fn, args.graph_calls, args.repeats)
    except Exception as e:  # an entry point that cannot be captured: say so, keep the rest
        notes.append(f"{name}: no CUDA graph ({type(e).__name__}: {e})")
        C.sync()
    row = dict(entry=name, host_us=host, wall_us=wall, gpu_us=gpu,
               overhead_us=None if gpu is None else wall - gpu, graph_wall_us=graph_wall,
               graph_overhead_us=None if gpu is None else graph_wall - gpu)
    print(f"{name:22s} host {host:7.2f} µs  wall {wall:7.2f} µs  gpu "
          f"{C.fmt(gpu, '{:7.2f}')} µs  overhead {C.fmt(row['overhead_us'], '{:7.2f}')} µs  "
          f"in a graph {C.fmt(row['graph_overhead_us'], '{:6.2f}')} µs",
          flush=True)
    return row


# ----------------------------------------------------------------------------------- entries


def _find_case(name: str, D: int):
    for fam, L, D_, dt, variant in T.TORCH_OP_CASES:
        if fam.name == name and D_ == D and dt == "bf16" and variant == "fused":
            return fam, L
    raise SystemExit(f"no bf16 fused TORCH_OP_CASES entry for {name} at D={D}")


def entry_points(fam, pattern, h, q, k, v, args) -> list:
    """(name, fn) of every entry point, each checked against the SPLAT op's output first."""
    import torch
    import torch.nn.functional as F

    import splat.torch as st
    from splat import torch_op
    from splat.runtime.launcher import Shapes

    ref = h(q, k, v)
    out = [("public(pattern)", lambda: st.attention(q, k, v, pattern)),
           ("op", lambda: h(q, k, v)),
           ("op, no dispatcher", lambda: torch_op._attention_cuda(q, k, v, h.key, h.scale))]

    kern = torch_op._kernel(h.key)
    launcher = kern.launcher(q.device.index)
    o, lse = torch.empty_like(q), q.new_empty(q.shape[:3], dtype=torch.float32)
    shapes = Shapes(*q.shape[:2], k.shape[1], q.shape[2], k.shape[2], q.shape[3])
    ptrs = [t.data_ptr() for t in (q, k, v, o, lse)]
    out.append(("launch only", lambda: launcher.forward_with_scratch(
        *ptrs, (), shapes, h.scale, torch_op._raw_stream(q.device.index))))

    compiled = torch.compile(lambda q, k, v: h(q, k, v), fullgraph=True)
    out.append(("compiled op", lambda: compiled(q, k, v)))

    if fam.name == "causal":
        sdpa = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=h.scale)
    else:
        mask = C.dense_mask(fam, q.shape[2], k.shape[2], q.device)
        sdpa = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=h.scale)
    out.append(("SDPA", sdpa))

    if not args.skip_flex:
        try:
            from torch.nn.attention.flex_attention import create_block_mask

            pred = fam.predicate(q.shape[2], q.device)
            bm = create_block_mask(lambda b, hh, qi, ki: pred(qi, ki), B=None, H=None,
                                   Q_LEN=q.shape[2], KV_LEN=k.shape[2], device="cuda")
            flex = C.flex_compiled()
            out.append(("Flex", lambda: flex(q, k, v, block_mask=bm, scale=h.scale)))
        except Exception as e:
            print(f"Flex unavailable: {e!r}")
    checked = []
    for name, fn in out:
        got = fn()
        got = o if got is None else got  # launch only writes into o
        got = got[0] if isinstance(got, tuple) else got  # the op's implementation: (o, lse)
        err = T.rel_error(got, ref.double())
        if not err <= 1e-2:
            print(f"{name}: relative error {err:.2e} against the op: left out")
            continue
        checked.append((name, fn))
    return checked


def block_rows(fam, h, args) -> list:
    """ms per forward of a compiled 2-layer block (B, L, 512) with SPLAT / Flex / SDPA."""
    import torch
    import torch.nn.functional as F

    L = h.Lq
    dims = dict(dim=512, heads=8, layers=2)
    attn = {"SPLAT": h}
    if fam.name == "causal":
        attn["SDPA"] = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                      scale=h.scale)
    if not args.skip_flex:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        pred = fam.predicate(L, "cuda")
        bm = create_block_mask(lambda b, hh, qi, ki: pred(qi, ki), B=None, H=None, Q_LEN=L,
                               KV_LEN=L, device="cuda")
        attn["Flex"] = lambda q, k, v: flex_attention(q, k, v, block_mask=bm, scale=h.scale)
    rows = []
    for B in args.block_batches:
        rows += _block_rows_at(B, L, attn, dims, args)
    return rows


def _block_rows_at(B: int, L: int, attn: dict, dims: dict, args) -> list:
    import torch

    x = torch.randn(B, L, dims["dim"], device="cuda", dtype=torch.bfloat16)
    rows, ref, calls = [], None, {}
    for name, fn in attn.items():
        try:
            model = T.attention_model(fn, **dims).to("cuda", torch.bfloat16).eval()
            compiled = torch.compile(model, fullgraph=True)
            with torch.no_grad():
                y = compiled(x)
            ref = y if ref is None else ref
            err = T.rel_error(y, ref.double())
            rows.append(dict(B=B, attention=name, ms=None, rel_err_vs_splat=err))
            calls[name] = functools.partial(compiled, x)
        except Exception as e:
            rows.append(dict(B=B, attention=name, ms=None, error=repr(e)))
            traceback.print_exc()
    # the models' timing loops interleaved: host-bound timings drift within a process
    with torch.no_grad():
        times = C.interleaved_host_and_wall_us(calls, lambda _: C.sync(), args.block_calls,
                                               args.repeats)
    for row in rows:
        if row["attention"] in times:
            row["ms"] = times[row["attention"]][1] / 1e3
            print(f"block B={B} {row['attention']:6s} {row['ms']:.3f} ms per forward (rel. err vs "
                  f"SPLAT {row['rel_err_vs_splat']:.1e})", flush=True)
    return rows


# ----------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifacts", default=os.environ.get("SPLAT_ARTIFACT_DIR"),
                    help="prebuilt artifact directory (default $SPLAT_ARTIFACT_DIR)")
    ap.add_argument("--pattern", default="causal", help="a TORCH_OP_CASES family (causal, window)")
    ap.add_argument("--B", type=int, default=1)
    ap.add_argument("--H", type=int, default=8)
    ap.add_argument("--D", type=int, default=64)
    ap.add_argument("--calls", type=int, default=200, help="calls per timed loop")
    ap.add_argument("--repeats", type=int, default=20, help="timed loops (medians)")
    ap.add_argument("--warmup", type=int, default=50, help="untimed calls first")
    ap.add_argument("--graph-calls", type=int, default=20, help="calls in the timing CUDA graph")
    ap.add_argument("--block", action="store_true", help="also time a compiled 2-layer block")
    ap.add_argument("--block-calls", type=int, default=20)
    ap.add_argument("--block-batches", type=lambda t: [int(x) for x in t.split(",")],
                    default=[1, 8], help="batch sizes of the block (comma-separated)")
    ap.add_argument("--skip-flex", action="store_true")
    ap.add_argument("--out-json", help="default benchmarks/results/<date>-<gpu>-overhead.json")
    ap.add_argument("--copy-to", help="also copy the JSON here (e.g. $OUT)")
    args = ap.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        raise SystemExit("bench_overhead.py needs a CUDA GPU")
    if not args.artifacts:
        raise SystemExit("set SPLAT_ARTIFACT_DIR (or --artifacts) to the pack of "
                         "scripts/pack_gpu_artifacts.py --torch-op")
    os.environ["SPLAT_ARTIFACT_DIR"] = str(Path(args.artifacts).resolve())
    os.environ["SPLAT_NO_COMPILE"] = "1"  # always the packed kernels, found by content key
    import splat.torch as st

    fam, L = _find_case(args.pattern, args.D)
    pattern, _ = T.build_pattern(fam, L)
    h = st.prepare(pattern, head_dim=args.D, dtype=torch.bfloat16)
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(args.B, args.H, L, args.D, generator=g, device="cuda")
               .to(torch.bfloat16) for _ in range(3))

    gpu = torch.cuda.get_device_name()
    date = _dt.date.today().isoformat()
    meta = dict(date=date, gpu=gpu, torch=torch.__version__, cuda=torch.version.cuda,
                pattern=str(fam), B=args.B, H=args.H, Hkv=args.H, L=L, D=args.D, dtype="bf16",
                calls=args.calls, repeats=args.repeats, graph_calls=args.graph_calls,
                artifact_key=h.key)
    notes: list = []
    rows = [measure(name, fn, args, notes) for name, fn in entry_points(fam, pattern, h, q, k, v, args)]
    block = block_rows(fam, h, args) if args.block else []
    for n in notes:
        print("note:", n)
    out_json = (Path(args.out_json) if args.out_json
                else RESULTS / f"{date}-{C.slug(gpu)}-overhead.json")
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(dict(meta=meta, rows=rows, block=block, notes=notes),
                                   indent=1) + "\n")
    print(f"wrote {out_json}")
    print("\n| entry point | host µs | wall µs | GPU µs | wall − GPU µs | in a CUDA graph: wall − GPU µs |"
          "\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['entry']} | {r['host_us']:.1f} | {r['wall_us']:.1f} | "
              f"{C.fmt(r['gpu_us'], '{:.1f}')} | {C.fmt(r['overhead_us'], '{:.1f}')} | "
              f"{C.fmt(r['graph_overhead_us'], '{:.2f}')} |")
    if args.copy_to:
        dest = Path(args.copy_to)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(out_json, dest / out_json.name)
    ok = any(r["entry"] == "op" for r in rows) and all(
        math.isfinite(r["wall_us"]) for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

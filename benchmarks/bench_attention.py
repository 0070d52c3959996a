#!/usr/bin/env python3
"""SPLAT vs FlexAttention vs dense SDPA on one GPU, in one process.

For every pattern of `splat.testing.BENCH_FAMILIES` (dense, window, causal-window, dilated, strided,
Longformer, BigBird, blocked) at L ∈ {4096, 16384}, D ∈ {64, 128}, B = 2, H = 16, bf16:

1. correctness first: SPLAT (and Flex) against an fp64 reference on a slice of heads, on fresh
   random inputs (relative error max|o - ref| / max|ref| must be ≤ 1e-2; a failing row is
   reported and marked, its timings kept);
2. ``triton.testing.do_bench`` medians of
   - SPLAT fused: ``splat.torch.attention`` (the public call: validation, allocation, launch),
     and ``splat_fused_kernel_ms``: the prebound launch into preallocated buffers;
   - SPLAT decomposed (sddmm → softmax → spmm) when the pack has that variant, else null;
   - with ``--build NAME=DIR`` (repeatable; a pack of the same layouts built otherwise, e.g.
     ``--mma wgmma --kv-loads producer --block-n 128``), that build: checked
     (``splat_NAME_rel_err``, ``splat_NAME_ok``) and its prebound launch timed
     (``splat_NAME_kernel_ms``); ``--wgmma-artifacts DIR`` is ``--build wgmma=DIR``;
   - FlexAttention: ``torch.compile(flex_attention)`` with ``create_block_mask`` from the same
     mask predicate;
   - dense SDPA without a mask (``sdpa_ms``: the dense roofline) and with the boolean mask
     (``sdpa_masked_ms``);
3. effective TFLOP/s on the non-zeros: ``4 · nnz · D · B · H / time``, and ``io_floor_ms``:
   the time reading Q, K and V and writing O once takes at the card's nominal memory
   bandwidth (no kernel is faster, so a rate target whose time is below it cannot be met at
   that size);
4. with ``--backward``: ``splat_bwd_ms`` and ``flex_bwd_ms``, forward + backward minus
   forward, q, k, v requiring grad (a failing backward is a note, its column null), after
   SPLAT's gradients are checked against fp64; and the kernels alone, which is what compares
   at sizes where both autograd calls are host-bound: ``splat_bwd_kernel_ms``, the backward
   artifact's prebound launches (no autograd, no host work of the op), and
   ``flex_bwd_kernel_ms``, the CUDA time of Flex's kernels in forward + backward minus its
   forward's (torch.profiler);
5. first-call (JIT) cost: SPLAT = artifact load + PTX JIT + table upload + first launch (the
   MLIR compile time, measured where the pack was built, is ``splat_compile_s``); Flex =
   ``create_block_mask`` + ``torch.compile`` + first call.

Artifacts come prebuilt (the GPU machine has no MLIR)::

    python scripts/pack_gpu_artifacts.py --bench --out .device/artifacts   # where MLIR is
    SPLAT_ARTIFACT_DIR=.device/artifacts python benchmarks/bench_attention.py --copy-to $OUT

Writes ``benchmarks/results/<date>-<gpu>.json`` (a JSON list of rows: pattern, L, D, dtype,
density, splat_fused_ms, splat_decomposed_ms, flex_ms, sdpa_ms, gpu, and more) and the table in
docs/performance.md (between ``<!-- bench:begin -->`` / ``<!-- bench:end -->``). ``--from-json``
re-renders the table from a results file without a GPU.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import math
import os
import re
import shutil
import sys
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _bench_common as C  # noqa: E402
from _bench_common import fmt as _f  # noqa: E402
from splat import testing as T  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PERF_MD = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
TOL = 1e-2  # bf16


# ----------------------------------------------------------------------------------- helpers


_sync, _timed, _slug = C.sync, C.timed, C.slug


def _bench(fn, args) -> float:
    return C.bench(fn, args)


def _nnz_torch(fam, L, device) -> int:
    total = 0
    for r in range(0, L, 2048):
        total += int(T.mask_torch(fam, L, r, min(r + 2048, L), device).sum().item())
    return total


def _tflops(nnz, D, B, H, ms):
    if ms is None or not ms or not math.isfinite(ms):
        return None
    return 4.0 * nnz * D * B * H / (ms * 1e-3) / 1e12


def hbm_bytes_per_s(props) -> float | None:
    """The card's nominal memory bandwidth from its CUDA properties (double data rate: two
    transfers a memory clock over the bus width), or None where torch does not report them."""
    clock_khz = getattr(props, "memory_clock_rate", None)
    bus_bits = getattr(props, "memory_bus_width", None)
    if not clock_khz or not bus_bits:
        return None
    return 2.0 * clock_khz * 1e3 * bus_bits / 8


@functools.lru_cache(maxsize=None)
def _device_bandwidth(ordinal: int) -> float | None:
    """`hbm_bytes_per_s` of device ``ordinal``, once per device: from torch's properties where
    they report the memory clock and bus width, else from the driver's attributes."""
    import torch

    bandwidth = hbm_bytes_per_s(torch.cuda.get_device_properties(ordinal))
    if bandwidth is None:
        from splat.runtime import driver

        bandwidth = hbm_bytes_per_s(SimpleNamespace(
            memory_clock_rate=driver.device_attribute(ordinal,
                                                      "CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE"),
            memory_bus_width=driver.device_attribute(ordinal,
                                                     "CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH")))
    return bandwidth


def io_floor_ms(B: int, H: int, Lq: int, Lk: int, D: int, bytes_per_s: float | None,
                elem_bytes: int = 2) -> float | None:
    """Time to read Q, K and V and write O once at ``bytes_per_s``: no kernel is faster, so an
    effective-rate target whose time is below it cannot be met at that size."""
    if not bytes_per_s:
        return None
    return B * H * (2 * Lq + 2 * Lk) * D * elem_bytes / bytes_per_s * 1e3


def _catalog(art_dir: Path) -> dict:
    p = art_dir / "catalog.json"
    if not p.is_file():
        raise SystemExit(f"{p} not found: run scripts/pack_gpu_artifacts.py --bench and point "
                         f"SPLAT_ARTIFACT_DIR (or --artifacts) at its output")
    cat = json.loads(p.read_text())
    return {(e["family_id"], e["L"], e["D"], e["dtype"], e.get("variant", "fused")): e
            for e in cat["entries"]}


# ----------------------------------------------------------------------------------- one row


def _kernel_ms(art, q, k, v, scale, args) -> float:
    """do_bench ms of the artifact's prebound launch into preallocated buffers."""
    import torch

    from splat.runtime.launcher import get_launcher

    B, H, L, D = q.shape
    launcher = get_launcher(art, torch.cuda.current_device())
    o_buf = torch.empty_like(q)
    lse_buf = torch.empty(B, H, L, device=q.device, dtype=torch.float32)
    shapes = (B, H, k.shape[1], L, k.shape[2], D)
    stream = torch.cuda.current_stream().cuda_stream
    return _bench(lambda: launcher.forward(q.data_ptr(), k.data_ptr(), v.data_ptr(),
                                           o_buf.data_ptr(), lse_buf.data_ptr(), shapes, scale,
                                           stream), args)


def _builds(args) -> list:
    """(name, directory) of every --build NAME=DIR (and --wgmma-artifacts, named wgmma)."""
    out = [("wgmma", args.wgmma_artifacts)] if args.wgmma_artifacts else []
    for spec in args.build:
        name, sep, path = spec.partition("=")
        if not sep or not re.fullmatch(r"[a-z][a-z0-9_]*", name) or not path:
            raise SystemExit(f"--build takes NAME=DIR with NAME in [a-z][a-z0-9_]*, got {spec!r}")
        if name in {n for n, _ in out} or name in ("fused", "decomposed"):
            raise SystemExit(f"--build: the name {name!r} is taken")
        out.append((name, Path(path)))
    return out


def run_row(fam, L, D, args, catalog, art_dir, flex_compiled, builds=()):
    import torch
    import torch.nn.functional as F

    import splat.torch as st
    from splat.runtime.prepared import resolve_backward
    from splat.runtime.resolve import load_cached

    B, H, dev = args.B, args.H, torch.device("cuda")
    row = dict(pattern=fam.name, family_id=str(fam), params=fam.p, L=L, D=D, dtype="bf16", B=B,
               H=H, Hkv=H, gpu=torch.cuda.get_device_name(), splat_fused_ms=None,
               splat_fused_kernel_ms=None, splat_decomposed_ms=None, flex_ms=None, sdpa_ms=None,
               sdpa_masked_ms=None, notes=[])
    nnz = _nnz_torch(fam, L, dev)
    row.update(nnz=nnz, density=nnz / (L * L))
    row["io_floor_ms"] = io_floor_ms(B, H, L, L, D, _device_bandwidth(dev.index or 0))
    scale = 1.0 / math.sqrt(D)
    q, k, v = (torch.randn(B, H, L, D, device=dev, dtype=torch.bfloat16) for _ in range(3))
    hs = slice(0, args.check_heads)
    ref_o, _, _ = T.reference_attention_torch(q[:1], k[:1], v[:1], fam, scale, heads=hs)

    # --- SPLAT fused -----------------------------------------------------------------------
    entry = catalog.get((str(fam), L, D, "bf16", "fused"))
    if entry is None:
        row["notes"].append("no SPLAT artifact packed")
    else:
        row["splat_compile_s"] = entry.get("compile_s")
        row["splat_n_tiles"] = entry.get("n_tiles")
        row["splat_n_segments"] = entry.get("n_segments")
        try:
            _sync()
            t0 = time.perf_counter()
            art = load_cached(art_dir / entry["key"])
            load_s = time.perf_counter() - t0
            o, first_s = _timed(lambda: st.attention(q, k, v, scale=scale, artifact=art))
            row["splat_load_s"], row["splat_first_call_s"] = load_s, load_s + first_s
            err = T.rel_error(o[:1, hs], ref_o)
            row["splat_rel_err"] = err
            row["splat_ok"] = bool(err <= TOL and not torch.isnan(o).any())
            row["splat_fused_ms"] = _bench(lambda: st.attention(q, k, v, scale=scale, artifact=art), args)
            row["splat_fused_kernel_ms"] = _kernel_ms(art, q, k, v, scale, args)
            del o
        except Exception as e:
            row["notes"].append(f"splat fused failed: {e!r}")
            traceback.print_exc()
    for name, build_dir, build_catalog in builds:  # other builds of the layout, same inputs
        wg = build_catalog.get((str(fam), L, D, "bf16", "fused"))
        if wg is None:
            continue
        try:
            art_w = load_cached(build_dir / wg["key"])
            o = st.attention(q, k, v, scale=scale, artifact=art_w)
            err = T.rel_error(o[:1, hs], ref_o)
            row[f"splat_{name}_rel_err"] = err
            row[f"splat_{name}_ok"] = bool(err <= TOL and not torch.isnan(o).any())
            row[f"splat_{name}_kernel_ms"] = _kernel_ms(art_w, q, k, v, scale, args)
            row[f"splat_{name}_kernel_tflops"] = _tflops(nnz, D, B, H,
                                                         row[f"splat_{name}_kernel_ms"])
            del o
        except Exception as e:
            row["notes"].append(f"splat {name} failed: {e!r}")
            traceback.print_exc()
    dec = catalog.get((str(fam), L, D, "bf16", "decomposed"))
    if dec is not None:
        try:
            art_d = load_cached(art_dir / dec["key"])
            o = st.attention(q, k, v, scale=scale, artifact=art_d)
            row["splat_decomposed_rel_err"] = T.rel_error(o[:1, hs], ref_o)
            row["splat_decomposed_ms"] = _bench(lambda: st.attention(q, k, v, scale=scale, artifact=art_d), args)
            del o
        except Exception as e:
            row["notes"].append(f"splat decomposed failed: {e!r}")

    # --- FlexAttention ---------------------------------------------------------------------
    if not args.skip_flex:
        try:
            pred = fam.predicate(L, dev)
            o, bm_s, first_s, flex_ms = C.run_flex(pred, q, k, v, scale, flex_compiled, args)
            row["flex_block_mask_s"], row["flex_first_call_s"] = bm_s, bm_s + first_s
            row["flex_rel_err"] = T.rel_error(o[:1, hs], ref_o)
            row["flex_ms"] = flex_ms
            del o
        except Exception as e:
            row["notes"].append(f"flex failed: {e!r}")
            traceback.print_exc()

    # --- backward (issue 14): forward + backward minus forward, inputs requiring grad -------
    if args.backward:
        if entry is not None:
            try:
                h = st.prepare(artifact=load_cached(art_dir / entry["key"]), scale=scale)
                # correctness first: gradients of batch 0's checked heads against fp64
                leaves = [t.detach().requires_grad_(True) for t in (q, k, v)]
                do = torch.randn_like(q)
                grads = torch.autograd.grad(h(*leaves), leaves, do)
                want = T.reference_backward_torch(*(t[:1, hs] for t in (q, k, v, do)), fam, scale)
                err = max(T.rel_error(g[:1, hs], w) for g, w in zip(grads, want))
                row["splat_bwd_rel_err"] = err
                row["splat_bwd_ok"] = bool(err <= TOL)
                del leaves, grads, want
                row["splat_bwd_ms"] = C.backward_ms(h, (q, k, v), args)
                run, _ = C.prebound_backward(h.artifact, resolve_backward(h.artifact), q, k, v,
                                             do, scale)
                row["splat_bwd_kernel_ms"] = _bench(run, args)
            except Exception as e:
                row["notes"].append(f"splat backward: {type(e).__name__}: {e}")
        if not args.skip_flex:
            try:
                fb = C.flex_backward(flex_compiled, pred, (q, k, v, torch.randn_like(q)), scale,
                                     args, 10)
                row["flex_bwd_ms"] = fb["flex_bwd_ms"]
                row["flex_bwd_kernel_ms"] = fb["bwd_kernel_ms"]
            except Exception as e:
                row["notes"].append(f"flex backward failed: {e!r}")

    # --- dense SDPA --------------------------------------------------------------------------
    try:
        row["sdpa_ms"] = _bench(lambda: F.scaled_dot_product_attention(q, k, v, scale=scale), args)
    except Exception as e:
        row["notes"].append(f"sdpa failed: {e!r}")
    if not args.skip_sdpa_masked:
        try:
            mask = C.dense_mask(fam, L, L, dev)
            row["sdpa_masked_ms"] = _bench(
                lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale), args)
            del mask
        except Exception as e:
            row["notes"].append(f"sdpa with mask failed: {e!r}")

    for name in ("splat_fused", "splat_fused_kernel", "splat_decomposed",
                 "flex", "sdpa_masked"):
        row[f"{name}_tflops"] = _tflops(nnz, D, B, H, row.get(f"{name}_ms"))
    row["sdpa_dense_tflops"] = _tflops(L * L, D, B, H, row["sdpa_ms"])
    row["sdpa_tflops"] = _tflops(nnz, D, B, H, row["sdpa_ms"])  # effective, on the non-zeros
    if row["splat_fused_ms"] and row["flex_ms"]:
        row["splat_vs_flex"] = row["flex_ms"] / row["splat_fused_ms"]
    del q, k, v, ref_o
    torch.cuda.empty_cache()
    return row


# ----------------------------------------------------------------------------------- output


def render_markdown(rows: list, meta: dict) -> str:
    head = (f"Measured {meta.get('date', '?')} on **{meta.get('gpu', '?')}** (torch "
            f"{meta.get('torch', '?')}, triton {meta.get('triton', '?')}), bf16, B={meta.get('B', '?')}, "
            f"H={meta.get('H', '?')} (MHA); `triton.testing.do_bench` medians in ms; TFLOP/s are "
            f"effective, on the mask's non-zeros (4·nnz·D·B·H / t). *SPLAT* is the public "
            f"`splat.torch.attention` call, *kernel* the prebound launch; *Flex* is "
            f"`torch.compile(flex_attention)` with `create_block_mask` from the same predicate; "
            f"*SDPA* is dense without a mask (the dense roofline), *SDPA+mask* with the boolean "
            f"mask. First call: SPLAT = load + PTX JIT + first launch (compile time where the pack "
            f"was built in brackets); Flex = block mask + torch.compile + first call. "
            f"Source: `{meta.get('json', '?')}`.\n\n")
    wgmma = any(r.get("splat_wgmma_kernel_ms") for r in rows)
    bwd = any(r.get("splat_bwd_ms") or r.get("flex_bwd_ms") for r in rows)
    cols = ["pattern", "L", "D", "density", "SPLAT ms", "kernel ms", "decomp. ms", "Flex ms",
            "SDPA ms", "SDPA+mask ms", "SPLAT TF/s", "Flex TF/s", "SPLAT/Flex", "SPLAT 1st s",
            "Flex 1st s", "SPLAT err"] + (["wgmma kernel ms", "wgmma TF/s"] if wgmma else []) + (
        ["SPLAT bwd ms", "Flex bwd ms", "SPLAT bwd kernels ms", "Flex bwd kernels ms"]
        if bwd else [])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        ok = r.get("splat_ok")
        err = _f(r.get("splat_rel_err"), "{:.1e}") + ("" if ok in (None, True) else " ✗")
        first = _f(r.get("splat_first_call_s"), "{:.2f}")
        if r.get("splat_compile_s") is not None:
            first += f" [{r['splat_compile_s']:.1f}]"
        lines.append("| " + " | ".join([
            r["pattern"], str(r["L"]), str(r["D"]), _f(r.get("density"), "{:.4f}"),
            _f(r.get("splat_fused_ms")), _f(r.get("splat_fused_kernel_ms")),
            _f(r.get("splat_decomposed_ms")), _f(r.get("flex_ms")), _f(r.get("sdpa_ms")),
            _f(r.get("sdpa_masked_ms")), _f(r.get("splat_fused_kernel_tflops"), "{:.0f}"),
            _f(r.get("flex_tflops"), "{:.0f}"), _f(r.get("splat_vs_flex"), "{:.2f}×"), first,
            _f(r.get("flex_first_call_s"), "{:.2f}"), err]
            + ([_f(r.get("splat_wgmma_kernel_ms")), _f(r.get("splat_wgmma_kernel_tflops"), "{:.0f}")]
               if wgmma else [])
            + ([_f(r.get(c)) for c in ("splat_bwd_ms", "flex_bwd_ms", "splat_bwd_kernel_ms",
                                       "flex_bwd_kernel_ms")] if bwd else [])) + " |")
    params = sorted({(r["pattern"], json.dumps(r.get("params", {}), sort_keys=True)) for r in rows})
    foot = "\n\nPattern parameters: " + "; ".join(f"{p} {q}" for p, q in params) + "\n"
    notes = [f"{r['pattern']} L={r['L']} D={r['D']}: {n}" for r in rows for n in r.get("notes", [])]
    if notes:
        foot += "\nNotes:\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    return head + "\n".join(lines) + foot


def write_markdown(text: str, path: Path = PERF_MD) -> None:
    block = f"{BEGIN}\n{text}{END}\n"
    if path.is_file():
        old = path.read_text()
        if BEGIN in old and END in old:
            new = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END) + 1:]
        else:
            new = old.rstrip("\n") + "\n\n" + block
    else:
        new = ("# Performance\n\nForward attention, SPLAT against FlexAttention and dense SDPA, "
               "written by `benchmarks/bench_attention.py`.\n\n" + block)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifacts", default=os.environ.get("SPLAT_ARTIFACT_DIR"),
                    help="prebuilt artifact directory (default $SPLAT_ARTIFACT_DIR)")
    ap.add_argument("--patterns", help="comma-separated family names (default: all eight)")
    ap.add_argument("--lengths", default="4096,16384")
    ap.add_argument("--head-dims", default="64,128")
    ap.add_argument("--B", type=int, default=2)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--check-heads", type=int, default=2, help="heads checked against fp64")
    ap.add_argument("--warmup", type=int, default=25, help="do_bench warmup (ms)")
    ap.add_argument("--rep", type=int, default=100, help="do_bench repetition time (ms)")
    ap.add_argument("--skip-flex", action="store_true")
    ap.add_argument("--skip-sdpa-masked", action="store_true")
    ap.add_argument("--out-json", help="results path (default benchmarks/results/<date>-<gpu>.json)")
    ap.add_argument("--no-markdown", action="store_true", help="do not touch docs/performance.md")
    ap.add_argument("--copy-to", help="also copy the JSON and docs/performance.md here (e.g. $OUT)")
    ap.add_argument("--from-json", help="only re-render docs/performance.md from a results file")
    ap.add_argument("--backward", action="store_true",
                    help="also time the backward (splat_bwd_ms, flex_bwd_ms: forward + backward "
                         "minus forward, with q, k, v requiring grad)")
    ap.add_argument("--wgmma-artifacts", type=Path,
                    help="a second pack, built with pack_gpu_artifacts.py --mma wgmma: its kernels "
                         "are checked and timed beside the default ones (splat_wgmma_kernel_ms); "
                         "the same as --build wgmma=DIR")
    ap.add_argument("--build", action="append", default=[], metavar="NAME=DIR",
                    help="another pack of the same layouts (another instruction, loads, BLOCK_N, "
                         "...): its kernels are checked and timed beside the default ones "
                         "(splat_NAME_kernel_ms, splat_NAME_rel_err); repeatable")
    args = ap.parse_args(argv)

    if args.from_json:
        rows = json.loads(Path(args.from_json).read_text())
        first = rows[0] if rows else {}
        meta = {k: first.get(k) for k in ("date", "gpu", "torch", "triton", "B", "H")}
        meta["json"] = os.path.relpath(Path(args.from_json).resolve(), ROOT)
        write_markdown(render_markdown(rows, meta))
        print(f"wrote {PERF_MD}")
        return 0

    import torch
    import triton

    if not torch.cuda.is_available():
        raise SystemExit("bench_attention.py needs a CUDA GPU")
    if not args.artifacts:
        raise SystemExit("set SPLAT_ARTIFACT_DIR (or --artifacts) to the pack of "
                         "scripts/pack_gpu_artifacts.py --bench")
    art_dir = Path(args.artifacts)
    catalog = _catalog(art_dir)
    builds = [(name, d, _catalog(d)) for name, d in _builds(args)]
    fams = [f for f in T.BENCH_FAMILIES
            if not args.patterns or f.name in args.patterns.split(",")]
    lengths = [int(x) for x in args.lengths.split(",")]
    dims = [int(x) for x in args.head_dims.split(",")]

    flex_compiled = None
    if not args.skip_flex:
        flex_compiled = C.flex_compiled()

    gpu = torch.cuda.get_device_name()
    date = _dt.date.today().isoformat()
    meta = dict(date=date, gpu=gpu, torch=torch.__version__, triton=triton.__version__,
                B=args.B, H=args.H, dtype="bf16", cuda=torch.version.cuda)
    out_json = Path(args.out_json) if args.out_json else RESULTS / f"{date}-{_slug(gpu)}.json"
    rows = []
    for fam in fams:
        for L in lengths:
            for D in dims:
                t0 = time.perf_counter()
                row = run_row(fam, L, D, args, catalog, art_dir, flex_compiled, builds)
                row.update(date=date, torch=meta["torch"], triton=meta["triton"], cuda=meta["cuda"])
                rows.append(row)
                print(f"{fam.name:14s} L={L:6d} D={D:3d} dens={row['density']:.4f} "
                      f"splat={_f(row['splat_fused_ms'])} kern={_f(row['splat_fused_kernel_ms'])} "
                      f"flex={_f(row['flex_ms'])} sdpa={_f(row['sdpa_ms'])} "
                      f"sdpa+mask={_f(row['sdpa_masked_ms'])} err={_f(row.get('splat_rel_err'), '{:.1e}')} "
                      f"({time.perf_counter() - t0:.1f}s) {'; '.join(row['notes'])}", flush=True)
                C.save_rows(out_json, rows)
    meta["json"] = os.path.relpath(out_json, ROOT)
    print(f"wrote {out_json}")
    if not args.no_markdown:
        write_markdown(render_markdown(rows, meta))
        print(f"wrote {PERF_MD}")
    if args.copy_to:
        dest = Path(args.copy_to)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(out_json, dest / out_json.name)
        if not args.no_markdown:
            shutil.copy(PERF_MD, dest / PERF_MD.name)
    bad = [r for r in rows if r.get("splat_ok") is False
           or any(r.get(f"splat_{name}_ok") is False for name, _, _ in builds)]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

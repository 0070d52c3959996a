#!/usr/bin/env python3
"""Scratch GPU check of the fused forward kernel (design.md §3).  To be replaced by splat.runtime.

Two steps, because the GPU machine has no MLIR:

  build  (CPU machine, needs the MLIR bindings):
      python benchmarks/scratch_kernel_check.py build --out .device
  run    (GPU machine, needs torch + cuda-bindings (+ triton for timing); no MLIR):
      python .device/scratch_kernel_check.py run --dir .device [--out DIR]
  sanitize (small launches, meant to run under compute-sanitizer with
            PYTORCH_NO_CUDA_MEMORY_CACHING=1):
      python .device/scratch_kernel_check.py sanitize --dir .device

Schedules are hand-built tile tables (design.md §2): dense, symmetric sliding window |i-j| <= w,
a dilated window (rows and keys of one parity: row_step = col_step = 2) and a "mixed" one with
two segments per tile, a partial rho range, an empty segment and a tile with no segments.
The reference is float64, computed from the same tables.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import sys
import time

import numpy as np

BM = 64  # BLOCK_M of the kernel

# (tag, dtype, head_dim, block_n, min_blocks_per_sm, single_barrier); None = the builder's
# per-head-dim default (fused_forward.DEFAULTS).  The first four are the defaults.
VARIANTS = [
    ("bf16_d64", "bf16", 64, None, None, True),
    ("bf16_d128", "bf16", 128, None, None, True),
    ("f16_d64", "f16", 64, None, None, True),
    ("f16_d128", "f16", 128, None, None, True),
    ("bf16_d64_noocc", "bf16", 64, 64, 0, True),
    ("bf16_d64_bn128", "bf16", 64, 128, 0, True),
    ("bf16_d64_2bar", "bf16", 64, 64, 4, False),
    ("bf16_d128_bn64", "bf16", 128, 64, 0, True),
    ("bf16_d128_bn64_2bar", "bf16", 128, 64, 0, False),
    ("bf16_d128_2bar", "bf16", 128, 32, 0, False),
]
MAIN = VARIANTS[:4]


# ------------------------------------------------------------------------------------------------
# build (CPU)
# ------------------------------------------------------------------------------------------------

def build(out_dir: str) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "python"))
    from splat.lowering.fused_forward import FusedForwardConfig, build_fused_forward
    from splat.lowering.to_ptx import lower_to_ptx, ptx_param_count, ptxas_check

    os.makedirs(out_dir, exist_ok=True)
    meta = {}
    for tag, dtype, d, bn, occ, one_bar in VARIANTS:
        cfg = FusedForwardConfig(dtype, d, bn, occ, one_bar)
        ptx = lower_to_ptx(build_fused_forward(None, dtype=dtype, head_dim=d, block_n=bn,
                                               min_blocks_per_sm=occ, single_barrier=one_bar))
        info = ptxas_check(ptx)[cfg.name]
        with open(os.path.join(out_dir, f"{tag}.ptx"), "w") as f:
            f.write(ptx)
        meta[tag] = {"name": cfg.name, "dtype": dtype, "head_dim": d, "block_n": cfg.block_n,
                     "min_blocks_per_sm": cfg.min_blocks_per_sm, "single_barrier": one_bar,
                     "shared_bytes": cfg.shared_bytes,
                     "ptx": f"{tag}.ptx", "num_params": ptx_param_count(ptx, cfg.name),
                     "ptxas": info}
        print(tag, meta[tag])
    with open(os.path.join(out_dir, "kernels.json"), "w") as f:
        json.dump(meta, f, indent=1)


# ------------------------------------------------------------------------------------------------
# schedules (numpy int32 tables, design.md §2)
# ------------------------------------------------------------------------------------------------

def _tables(rt, sg):
    return np.asarray(rt, np.int32).reshape(-1, 5), np.asarray(sg, np.int32).reshape(-1, 9)


def sched_dense(lq, lk):
    rt, sg = [], []
    for row0 in range(0, lq, BM):
        n = min(BM, lq - row0)
        rt.append([row0, 1, n, len(sg), len(sg) + 1])
        sg.append([0, 1, lk, 0, n, 0, 0, 0, lk])
    return _tables(rt, sg)


def sched_window(l, w):
    """Row i attends to keys j with |i - j| <= w (clipped to [0, l))."""
    rt, sg = [], []
    for row0 in range(0, l, BM):
        n = min(BM, l - row0)
        col0 = max(0, row0 - w)
        cend = min(l, row0 + n - 1 + w + 1)
        rt.append([row0, 1, n, len(sg), len(sg) + 1])
        sg.append([col0, 1, cend - col0, 0, n, 1, row0 - w - col0, 1, row0 + w + 1 - col0])
    return _tables(rt, sg)


def sched_dilated(l, w, dil=2):
    """Row i attends to j = i + dil*d, |d| <= w: one dense window per residue class mod dil."""
    rt, sg = [], []
    for r in range(dil):
        nk = len(range(r, l, dil))
        last_col = r + dil * ((l - 1 - r) // dil)
        for k0 in range(0, nk, BM):
            n = min(BM, nk - k0)
            row0 = r + dil * k0
            i_last = row0 + dil * (n - 1)
            col0 = max(r, row0 - dil * w)
            cmax = min(last_col, i_last + dil * w)
            ncols = (cmax - col0) // dil + 1
            lo_b = (row0 - dil * w - col0) // dil
            hi_b = (row0 + dil * w - col0) // dil + 1
            rt.append([row0, dil, n, len(sg), len(sg) + 1])
            sg.append([col0, dil, ncols, 0, n, 1, lo_b, 1, hi_b])
    return _tables(rt, sg)


def sched_mixed(l, w, g):
    """Global keys [0, g) for every row + a window outside them (2 segments per tile), with
    edge cases: tile 1's window only for rho in [5, 50), tile 2 has an extra empty segment,
    the last tile has no segments (its rows must come out 0 / -inf)."""
    rt, sg = [], []
    starts = list(range(0, l, BM))
    for ti, row0 in enumerate(starts):
        n = min(BM, l - row0)
        first = len(sg)
        if ti == len(starts) - 1:
            rt.append([row0, 1, n, first, first])
            continue
        sg.append([0, 1, g, 0, n, 0, 0, 0, g])
        col0 = max(g, row0 - w)
        ncols = max(0, min(l, row0 + n - 1 + w + 1) - col0)
        rho_lo, rho_hi = (5, min(50, n)) if ti == 1 else (0, n)
        sg.append([col0, 1, ncols, rho_lo, rho_hi, 1, row0 - w - col0, 1, row0 + w + 1 - col0])
        if ti == 2:
            sg.append([0, 1, 0, 0, n, 0, 0, 0, 0])
        rt.append([row0, 1, n, first, len(sg)])
    return _tables(rt, sg)


def coverage(lq, lk, rt, sg):
    """float64 [lq, lk]: how many times the tables cover each (row, key)."""
    w = np.zeros((lq, lk), np.float64)
    for row0, rs, n, sb, se in rt:
        rho = np.arange(n)[:, None]
        for col0, cs, nc, rlo, rhi, la, lb, ha, hb in sg[sb:se]:
            u = np.arange(nc)[None, :]
            m = (rho >= rlo) & (rho < rhi) & (u >= la * rho + lb) & (u < ha * rho + hb)
            ri, ui = np.nonzero(m)
            np.add.at(w, (row0 + rs * ri, col0 + cs * ui), 1.0)
    return w


def nnz_of(rt, sg):
    """Number of covered (row, key) pairs (the tables' segments are disjoint)."""
    total = 0
    for _, _, n, sb, se in rt:
        rho = np.arange(n)[:, None]
        for _, _, nc, rlo, rhi, la, lb, ha, hb in sg[sb:se]:
            u = np.arange(nc)[None, :]
            total += int(((rho >= rlo) & (rho < rhi) & (u >= la * rho + lb) &
                          (u < ha * rho + hb)).sum())
    return float(total)


def check_partition(lq, rt):
    rows = np.concatenate([r0 + rs * np.arange(n) for r0, rs, n, _, _ in rt])
    assert np.array_equal(np.sort(rows), np.arange(lq)), "row tiles do not partition [0, Lq)"


# ------------------------------------------------------------------------------------------------
# launching (GPU)
# ------------------------------------------------------------------------------------------------

def _cu():
    try:
        from cuda.bindings import driver
    except ImportError:  # older cuda-python
        from cuda import cuda as driver
    return driver


def _ok(res, what):
    cu = _cu()
    err = res[0] if isinstance(res, tuple) else res
    if err != cu.CUresult.CUDA_SUCCESS:
        raise RuntimeError(f"{what}: {err}")
    return res[1] if isinstance(res, tuple) and len(res) == 2 else res


def _handle_value(h):
    for get in (int, lambda x: int(x.getPtr())):
        try:
            return get(h)
        except (TypeError, AttributeError):
            pass
    return 1  # unknown: assume torch's context is current


class Kernel:
    def __init__(self, ptx_path, meta):
        import torch
        cu = _cu()
        torch.zeros(1, device="cuda")  # torch creates / binds the primary context
        _ok(cu.cuInit(0), "cuInit")
        ctx = _ok(cu.cuCtxGetCurrent(), "cuCtxGetCurrent")
        if not _handle_value(ctx):
            dev = _ok(cu.cuDeviceGet(0), "cuDeviceGet")
            ctx = _ok(cu.cuDevicePrimaryCtxRetain(dev), "retain")
            _ok(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
        self.meta = meta
        with open(ptx_path, "rb") as f:
            self._image = f.read() + b"\0"
        self.module = _ok(cu.cuModuleLoadData(self._image), "cuModuleLoadData")
        self.fn = _ok(cu.cuModuleGetFunction(self.module, meta["name"].encode()), "getFunction")
        _ok(cu.cuFuncSetAttribute(
            self.fn, cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            meta["shared_bytes"]), "cuFuncSetAttribute")

    def prepare(self, q, k, v, o, lse, row_tiles, segments, scale):
        """Returns a no-argument launcher (params packed once)."""
        import torch
        cu = _cu()
        vals = []
        for t in (q, k, v, o, lse, row_tiles, segments):
            assert t.is_cuda and t.is_contiguous()
            vals += [ctypes.c_uint64(t.data_ptr()), ctypes.c_uint64(t.data_ptr()), ctypes.c_uint64(0)]
            vals += [ctypes.c_uint64(s) for s in t.shape] + [ctypes.c_uint64(s) for s in t.stride()]
        vals.append(ctypes.c_float(scale))
        assert len(vals) == self.meta["num_params"], (len(vals), self.meta["num_params"])
        ptrs = (ctypes.c_void_p * len(vals))(*[ctypes.addressof(x) for x in vals])
        grid = (row_tiles.shape[0], q.shape[1], q.shape[0])
        keep = (vals, ptrs, q, k, v, o, lse, row_tiles, segments)
        smem = self.meta["shared_bytes"]

        def launch():
            stream = cu.CUstream(torch.cuda.current_stream().cuda_stream)
            _ok(cu.cuLaunchKernel(self.fn, *grid, 128, 1, 1, smem, stream,
                                  ctypes.addressof(ptrs), 0), "cuLaunchKernel")
            return keep

        return launch


def reference(q, k, v, wcov, scale):
    """float64 attention over the (multi)set of covered keys; empty rows -> 0 / -inf."""
    import torch
    rep = q.shape[1] // k.shape[1]
    qd = q.double()
    kd = k.double().repeat_interleave(rep, dim=1)
    vd = v.double().repeat_interleave(rep, dim=1)
    w = torch.from_numpy(wcov).to(q.device)
    s = (qd @ kd.transpose(-1, -2)) * scale
    s = s.masked_fill(w == 0, -math.inf)
    m = s.amax(-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    p = w * torch.exp(s - m)
    l = p.sum(-1, keepdim=True)
    o = (p @ vd) / torch.where(l > 0, l, torch.ones_like(l))
    lse = torch.where(l > 0, m + torch.log(torch.where(l > 0, l, torch.ones_like(l))),
                      torch.full_like(l, -math.inf))
    return o, lse.squeeze(-1)


def _tensors(b, h, hkv, lq, lk, d, dtype, seed):
    import torch
    g = torch.Generator(device="cuda").manual_seed(seed)
    tdt = torch.bfloat16 if dtype == "bf16" else torch.float16
    q = torch.randn(b, h, lq, d, device="cuda", dtype=tdt, generator=g)
    k = torch.randn(b, hkv, lk, d, device="cuda", dtype=tdt, generator=g)
    v = torch.randn(b, hkv, lk, d, device="cuda", dtype=tdt, generator=g)
    return q, k, v


def correctness_cases(small=False):
    if small:
        return [("mixed", 300, 300, sched_mixed(300, 70, 16))]
    return [
        ("dense", 1000, 1000, sched_dense(1000, 1000)),
        ("dense_rect", 200, 777, sched_dense(200, 777)),
        ("window_w100", 1000, 1000, sched_window(1000, 100)),
        ("dilated2_w60", 1000, 1000, sched_dilated(1000, 60, 2)),
        ("mixed", 1000, 1000, sched_mixed(1000, 100, 16)),
    ]


def run_correctness(kernels, small=False):
    import torch
    results = []
    b, h, hkv = (1, 2, 1) if small else (2, 4, 2)  # GQA: 2 query heads per kv head
    for name, lq, lk, (rt, sg) in correctness_cases(small):
        check_partition(lq, rt)
        wcov = coverage(lq, lk, rt, sg)
        rt_t = torch.from_numpy(rt).cuda()
        sg_t = torch.from_numpy(sg).cuda()
        empty = torch.from_numpy(wcov.sum(1) == 0).cuda()
        for tag, kern in kernels.items():
            meta = kern.meta
            d = meta["head_dim"]
            scale = 1.0 / math.sqrt(d)
            q, k, v = _tensors(b, h, hkv, lq, lk, d, meta["dtype"], seed=lq + d)
            o = torch.full_like(q, float("nan"))
            lse = torch.full((b, h, lq), float("nan"), device="cuda", dtype=torch.float32)
            try:
                kern.prepare(q, k, v, o, lse, rt_t, sg_t, scale)()
                torch.cuda.synchronize()
            except Exception as e:  # a fault poisons the context: report and stop
                results.append({"case": name, "variant": tag, "ok": False, "error": repr(e)})
                print(f"BAD {name} {tag}: {e!r}", flush=True)
                return results
            o_ref, lse_ref = reference(q, k, v, wcov, scale)
            od = o.double()
            rel = ((od - o_ref).abs().max() / o_ref.abs().max()).item()
            fin = torch.isfinite(lse_ref)
            lse_err = (lse.double()[fin] - lse_ref[fin]).abs().max().item()
            empty_ok = bool((o[:, :, empty] == 0).all().item() and
                            torch.isneginf(lse[:, :, empty]).all().item())
            lse_inf_match = bool((torch.isneginf(lse) == torch.isneginf(lse_ref)).all().item())
            nan = bool(torch.isnan(o).any().item() or torch.isnan(lse).any().item())
            tol = 2e-2 if meta["dtype"] == "bf16" else 2e-3
            ok = rel < tol and lse_err < 1e-2 and empty_ok and lse_inf_match and not nan
            r = {"case": name, "variant": tag, "max_rel_err": rel, "lse_max_abs_err": lse_err,
                 "empty_rows": int(empty.sum().item()), "empty_ok": empty_ok,
                 "lse_inf_match": lse_inf_match, "nan": nan, "ok": ok}
            results.append(r)
            print(f"{'OK ' if ok else 'BAD'} {name:13s} {tag:15s} rel={rel:.2e} "
                  f"lse={lse_err:.2e} empty={r['empty_rows']}/{empty_ok} nan={nan}", flush=True)
    return results


def run_timing(kernels, b=2, h=16, l=4096):
    import torch
    import torch.nn.functional as F
    from triton.testing import do_bench
    out = []
    scheds = [("dense", sched_dense(l, l)), ("window_w256", sched_window(l, 256)),
              ("dilated2_w256", sched_dilated(l, 256, 2))]
    nnz = {name: nnz_of(rt, sg) for name, (rt, sg) in scheds}
    for d in (64, 128):
        for dtype in ("bf16", "f16"):
            q, k, v = _tensors(b, h, h, l, l, d, dtype, seed=7)
            scale = 1.0 / math.sqrt(d)
            t_sdpa = do_bench(lambda: F.scaled_dot_product_attention(q, k, v, scale=scale),
                              warmup=25, rep=100, return_mode="median")
            fl = 4.0 * l * l * d * b * h
            out.append({"kernel": "torch_sdpa_dense", "dtype": dtype, "head_dim": d,
                        "schedule": "dense", "ms": t_sdpa, "tflops": fl / t_sdpa * 1e-9})
            print(f"SDPA dense {dtype} d{d}: {t_sdpa:.3f} ms {fl / t_sdpa * 1e-9:.0f} TFLOP/s",
                  flush=True)
            o_sdpa = F.scaled_dot_product_attention(q, k, v, scale=scale)
            for tag, kern in kernels.items():
                meta = kern.meta
                if meta["dtype"] != dtype or meta["head_dim"] != d:
                    continue
                for name, (rt, sg) in scheds:
                    o = torch.empty_like(q)
                    lse = torch.empty((b, h, l), device="cuda", dtype=torch.float32)
                    launch = kern.prepare(q, k, v, o, lse, torch.from_numpy(rt).cuda(),
                                          torch.from_numpy(sg).cuda(), scale)
                    launch()
                    torch.cuda.synchronize()
                    extra = {}
                    if name == "dense":  # cross-check against SDPA at full size
                        extra["rel_err_vs_sdpa"] = ((o.float() - o_sdpa.float()).abs().max() /
                                                    o_sdpa.float().abs().max()).item()
                    t = do_bench(launch, warmup=25, rep=100, return_mode="median")
                    fl = 4.0 * nnz[name] * d * b * h
                    r = {"kernel": tag, "dtype": dtype, "head_dim": d, "schedule": name,
                         "ms": t, "tflops": fl / t * 1e-9, "nnz": nnz[name], **extra}
                    out.append(r)
                    print(f"{tag:15s} {name:14s} {t:.3f} ms {fl / t * 1e-9:6.0f} TFLOP/s (nnz) "
                          f"{extra}", flush=True)
    return out


def load_kernels(dir_, tags):
    with open(os.path.join(dir_, "kernels.json")) as f:
        meta = json.load(f)
    return {t: Kernel(os.path.join(dir_, meta[t]["ptx"]), meta[t]) for t in tags}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["build", "run", "sanitize"])
    ap.add_argument("--dir", default=".device")
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-timing", action="store_true")
    a = ap.parse_args()
    if a.mode == "build":
        build(a.out or a.dir)
        return
    import torch
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    print(res, flush=True)
    if a.mode == "sanitize":
        kernels = load_kernels(a.dir, [t for t, *_ in MAIN])
        res["correctness"] = run_correctness(kernels, small=True)
    else:
        kernels = load_kernels(a.dir, [t for t, *_ in VARIANTS])
        t0 = time.time()
        res["correctness"] = run_correctness(kernels)
        res["correctness_s"] = time.time() - t0
        if not a.no_timing and all(r["ok"] or "error" not in r for r in res["correctness"]):
            try:
                res["timing"] = run_timing(kernels)
            except Exception as e:
                res["timing_error"] = repr(e)
                print("timing failed:", repr(e), flush=True)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, f"results_{a.mode}.json"), "w") as f:
            json.dump(res, f, indent=1)
    bad = [r for r in res["correctness"] if not r["ok"]]
    print("ALL OK" if not bad else f"{len(bad)} FAILED", flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

"""The split-KV merge kernel (splat.tiling.split): one row's two partial results into one.

``splat_merge_<dtype>_d<D>(o, lse, o_part, lse_part)``: for every row of every (batch, head),

    m = max(lse, lse_part) ;  w = exp(lse - m), w_part = exp(lse_part - m)
    o   <- (w o + w_part o_part) / (w + w_part)       (in f32, rounded once to the dtype)
    lse <- m + log(w + w_part)

rows where both partials are empty (``lse = lse_part = -inf``) keep ``o = 0, lse = -inf``.  Both
fused launches write every row (their row tiles partition ``[0, Lq)``; an empty row is
``0, -inf``), so the merge reads no uninitialised memory.  128 threads, 64 rows per CTA, grid
``(ceil(Lq / 64), H, B)``: each row is D / 8 threads reading and writing one 16-byte chunk each,
so a warp moves whole contiguous rows (coalesced); a barrier per pass of rows keeps a row's
``lse`` from being overwritten before all its threads have read it.  exp / log are ``ex2.approx`` / ``lg2.approx`` (no libdevice), as in the fused kernel.
"""

from __future__ import annotations

from .decomposed import VEC

NUM_THREADS = 128
ROWS_PER_CTA = 64
SCRATCH = ("o_part", "lse_part")
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453


def kernel_name(dtype: str, head_dim: int) -> str:
    return f"splat_merge_{dtype}_d{head_dim}"


def kernel_params(dtype: str) -> list[dict]:
    def memref(name, rank, dt):
        return {"name": name, "kind": "memref", "rank": rank, "dtype": dt}
    return [memref("o", 4, dtype), memref("lse", 3, "f32"),
            memref("o_part", 4, dtype), memref("lse_part", 3, "f32")]


def launch_info(dtype: str, head_dim: int) -> dict:
    """The manifest "kernels" entry (less ``ptx_file``): grid ``"rows"`` with 64 rows per CTA."""
    params = kernel_params(dtype)
    return {"name": kernel_name(dtype, head_dim), "block": [NUM_THREADS, 1, 1], "shared_bytes": 0,
            "params": params,
            "num_ptx_params": sum(3 + 2 * p["rank"] for p in params),
            "grid": "rows", "rows_per_cta": ROWS_PER_CTA, "scratch": list(SCRATCH)}


def scratch_spec(dtype: str) -> dict:
    """The partial results the second fused launch writes (manifest "scratch" entries)."""
    return {"o_part": {"dtype": dtype, "shape": ["B", "H", "Lq", "D"], "align": 16, "init": None},
            "lse_part": {"dtype": "f32", "shape": ["B", "H", "Lq"], "align": 16, "init": None}}


def build_into(module, dtype: str, head_dim: int):
    """Add ``gpu.func @splat_merge_<dtype>_d<D>`` to ``gpu.module @splat_kernels`` (skipped if it
    is there already).  Inside the module's context and a location."""
    from mlir import ir  # noqa: PLC0415  (MLIR is imported lazily: the runtime never needs it)
    from mlir.dialects import arith, gpu, memref, scf, vector  # noqa: PLC0415
    from . import fused_forward as ff  # noqa: PLC0415
    from .decomposed import _func_exists  # noqa: PLC0415

    gm = ff._find_or_create_gpu_module(module)
    name = kernel_name(dtype, head_dim)
    if _func_exists(gm, name):
        return module
    dyn = ir.ShapedType.get_dynamic_size()
    elem = ir.BF16Type.get() if dtype == "bf16" else ir.F16Type.get()
    f32 = ff._f32()
    t4 = ir.MemRefType.get([dyn] * 4, elem)
    t3 = ir.MemRefType.get([dyn] * 3, f32)
    v8 = ir.VectorType.get([VEC], elem)
    f8 = ir.VectorType.get([VEC], f32)
    with ir.InsertionPoint(gm.bodyRegion.blocks[0]):
        fn = gpu.GPUFuncOp(ir.FunctionType.get([t4, t3, t4, t3], []), sym_name=name, kernel=True,
                           known_block_size=[NUM_THREADS, 1, 1])
        entry = fn.add_entry_block()
    lanes = head_dim // VEC          # threads per row, one 16-byte chunk each
    per_pass = NUM_THREADS // lanes  # rows per pass of the CTA
    with ir.InsertionPoint(entry):
        o, lse, o_part, lse_part = entry.arguments
        tid = ff.to_i32(gpu.thread_id(gpu.Dimension.x))
        row0 = ff.add(ff.mul(ff.to_i32(gpu.block_id(gpu.Dimension.x)), ROWS_PER_CTA),
                      arith.divui(tid, ff.ci(lanes)))
        chunk = arith.remui(tid, ff.ci(lanes))
        col = ff.to_idx(ff.mul(chunk, VEC))
        h, b = gpu.block_id(gpu.Dimension.y), gpu.block_id(gpu.Dimension.z)
        lq = ff.to_i32(memref.dim(o, ff.cx(2)))
        for p in range(ROWS_PER_CTA // per_pass):
            row = ff.add(row0, per_pass * p)
            valid = ff.icmp("slt", row, lq)
            r = ff.to_idx(ff.smin(row, ff.sub(lq, ff.ci(1))))  # clamped: loads stay in bounds
            l1 = memref.load(lse, [b, h, r])
            l2 = memref.load(lse_part, [b, h, r])
            x1 = arith.extf(f8, vector.load(v8, o, [b, h, r, col], alignment=16))
            x2 = arith.extf(f8, vector.load(v8, o_part, [b, h, r, col], alignment=16))
            m = ff.fmax(l1, l2)
            # exp(l - m) = exp2((l - m) log2 e); a -inf partial gets weight 0
            w1 = ff.exp2(ff.mul(ff.sub(l1, m), ff.cf(_LOG2E)))
            w2 = ff.exp2(ff.mul(ff.sub(l2, m), ff.cf(_LOG2E)))
            total = ff.add(w1, w2)
            inv = arith.divf(ff.cf(1.0), total)
            y = arith.addf(arith.mulf(vector.broadcast(f8, ff.mul(w1, inv)), x1),
                           arith.mulf(vector.broadcast(f8, ff.mul(w2, inv)), x2))
            # every lane of the row has read lse before one of them overwrites it
            gpu.barrier()
            live = ff.band(valid, ff.fcmp("ogt", m, ff.cf(float("-inf"))))
            store = scf.IfOp(live)
            with ir.InsertionPoint(store.then_block):
                vector.store(arith.truncf(v8, y), o, [b, h, r, col], alignment=16)
                first = scf.IfOp(ff.icmp("eq", chunk, ff.ci(0)))
                with ir.InsertionPoint(first.then_block):
                    memref.store(ff.add(m, ff.mul(ff.log2(total), ff.cf(_LN2))), lse, [b, h, r])
                    ff._yield([])
                ff._yield([])
        gpu.return_([])
    return module


def build_merge(module_or_none, *, dtype: str, head_dim: int):
    """The merge kernel in ``gpu.module @splat_kernels`` of ``module_or_none`` (or a new module)."""
    from .modules import build_in_module  # noqa: PLC0415
    return build_in_module(module_or_none, lambda module: build_into(module, dtype, head_dim))

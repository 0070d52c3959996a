"""The wgmma kernel's tile layouts (splat.lowering.wgmma.TileLayout), evaluated on the CPU: the
index arithmetic each layout emits for the copies (which thread copies which 16-byte chunk, and
where it lands) is JIT-compiled with MLIR's ExecutionEngine and run for every thread, then
checked against an independent numpy model of the layout (a bug there once left half of each
D = 256 row unwritten). The descriptors the kernel builds, with its per-k16-step offsets, are
then read back through a model of how wgmma addresses an operand (CUTLASS's canonical layouts
of the PTX matrix descriptor) and must land on what the copies wrote. The model is not the
hardware: the GPU suite is the last word; this keeps a layout edit honest on a CPU."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

pytest.importorskip("mlir.execution_engine")
from mlir import ir, passmanager  # noqa: E402
from mlir.dialects import arith, func, memref  # noqa: E402
from mlir.execution_engine import ExecutionEngine  # noqa: E402
from mlir.runtime import get_ranked_memref_descriptor  # noqa: E402

from splat.lowering import wgmma  # noqa: E402
from splat.lowering.builder import ci, cx  # noqa: E402

LAYOUTS = {"interleaved": wgmma.INTERLEAVED, "swizzled": wgmma.SWIZZLED_128B}
LOWER = ("builtin.module(convert-arith-to-llvm, finalize-memref-to-llvm, convert-func-to-llvm, "
         "convert-index-to-llvm, reconcile-unrealized-casts)")


def copy_plan(layout, threads: int, rows: int, chunks: int) -> np.ndarray:
    """``[thread, pass, (row, chunk, element offset)]`` as the kernel computes them."""
    with ir.Context(), ir.Location.unknown():
        module = ir.Module.create()
        i32 = ir.IntegerType.get_signless(32)
        with ir.InsertionPoint(module.body):
            # the number of passes is the layout's: probe it with a placeholder function
            probe = func.FuncOp("probe", ([i32], []))
            with ir.InsertionPoint(probe.add_entry_block()):
                tid = probe.arguments[0]
                n_pass = len(layout.copy_units(arith.shrui(tid, ci(3)), arith.andi(tid, ci(7)),
                                               threads, rows, chunks))
                func.ReturnOp([])
            out_ty = ir.MemRefType.get([n_pass, 3], i32)
            f = func.FuncOp("units", ([i32, out_ty], []))
            f.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
            with ir.InsertionPoint(f.add_entry_block()):
                tid, out = f.arguments
                units = layout.copy_units(arith.shrui(tid, ci(3)), arith.andi(tid, ci(7)),
                                          threads, rows, chunks)
                for p, (row, chunk) in enumerate(units):
                    for j, value in enumerate((row, chunk, layout.offset(row, chunk, rows))):
                        memref.store(value, out, [cx(p), cx(j)])
                func.ReturnOp([])
        passmanager.PassManager.parse(LOWER).run(module.operation)
        engine = ExecutionEngine(module, opt_level=0)
        plan = np.zeros((threads, n_pass, 3), np.int32)
        for t in range(threads):
            arr = np.zeros((n_pass, 3), np.int32)
            desc = ctypes.pointer(ctypes.pointer(get_ranked_memref_descriptor(arr)))
            engine.invoke("units", ctypes.pointer(ctypes.c_int32(t)), desc)
            plan[t] = arr
        return plan


def expected_offset(name: str, row, chunk, rows: int):
    """The numpy model: interleaved = core matrices chunk-column-major; swizzled = D blocks of
    64 elements, row r the 128-byte line r of its block, chunk j at j ^ (r mod 8)."""
    if name == "interleaved":
        return (chunk * (rows // 8) + row // 8) * 64 + (row % 8) * 8
    block, j = chunk // 8, chunk % 8
    return (block * rows + row) * 64 + (j ^ (row % 8)) * 8


CASES = [(name, threads, rows, d) for name in LAYOUTS for threads in (128, 256)
         for rows in (32, 64, 128) for d in (64, 128, 256)]


@pytest.mark.parametrize("name,threads,rows,d", CASES,
                         ids=[f"{n}-t{t}-r{r}-d{d}" for n, t, r, d in CASES])
def test_every_chunk_is_copied_once_to_its_place_in_whole_lines(name, threads, rows, d):
    chunks = d // 8
    plan = copy_plan(LAYOUTS[name], threads, rows, chunks)
    row, chunk, offset = plan[..., 0], plan[..., 1], plan[..., 2]
    # every (row, chunk) of the tile exactly once, each to its own 16-byte slot
    seen = np.zeros((rows, chunks), int)
    np.add.at(seen, (row.ravel(), chunk.ravel()), 1)
    assert (seen == 1).all()
    assert np.array_equal(offset, expected_offset(name, row, chunk, rows))
    assert sorted(offset.ravel() // 8) == list(range(rows * chunks))
    # each 8 consecutive threads of a pass fill 128 contiguous bytes of shared memory
    groups = offset.reshape(threads // 8, 8, -1) // 64
    assert (groups == groups[:, :1]).all()
    if name == "swizzled":  # ... and read one row's 128 contiguous bytes of global memory
        rows8 = row.reshape(threads // 8, 8, -1)
        cols8 = chunk.reshape(threads // 8, 8, -1)
        assert (rows8 == rows8[:, :1]).all()
        assert (cols8 - cols8[:, :1] == np.arange(8)[None, :, None]).all()


# ------------------------------------------------------------------ descriptors against the copy


def descriptors(layout, rows: int) -> tuple[int, int]:
    """The layout's K-major and MN-major descriptors of a tile at shared address 0."""
    with ir.Context(), ir.Location.unknown():
        module = ir.Module.create()
        i64 = ir.IntegerType.get_signless(64)
        out_ty = ir.MemRefType.get([2], i64)
        with ir.InsertionPoint(module.body):
            f = func.FuncOp("descs", ([out_ty], []))
            f.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
            with ir.InsertionPoint(f.add_entry_block()):
                (out,) = f.arguments
                zero = arith.constant(i64, 0)
                for j, desc in enumerate((layout.k_major(zero, rows), layout.mn_major(zero, rows))):
                    memref.store(desc, out, [cx(j)])
                func.ReturnOp([])
        passmanager.PassManager.parse(LOWER).run(module.operation)
        arr = np.zeros(2, np.int64)
        ExecutionEngine(module, opt_level=0).invoke(
            "descs", ctypes.pointer(ctypes.pointer(get_ranked_memref_descriptor(arr))))
        return int(arr[0]), int(arr[1])


def _fields(desc: int) -> tuple[int, int, int]:
    """(leading byte offset, stride byte offset, swizzle mode) of a descriptor (PTX ISA)."""
    return ((desc >> 16) & 0x3FFF) << 4, ((desc >> 32) & 0x3FFF) << 4, desc >> 62


def _swizzle(byte: np.ndarray, mode: int) -> np.ndarray:
    """The 128-byte swizzle on shared addresses: bits 4-6 ^= bits 7-9."""
    return byte ^ (((byte >> 7) & 7) << 4) if mode == 1 else byte


def k_major_bytes(desc: int, start: int, mn: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Where wgmma reads element (m or n, k) of a K-major operand, per CUTLASS's canonical
    layouts (T = 8 16-bit elements): interleaved ((8,m),(T,2k)):((1T,SBO),(1,LBO)), 128-byte
    swizzled ((8,m),(T,2k)):((8T,SBO),(1,T)) then swizzled."""
    lead, stride, mode = _fields(desc)
    if mode == 0:
        byte = (mn % 8) * 16 + (mn // 8) * stride + (k % 8) * 2 + (k // 8) * lead
    else:
        byte = (mn % 8) * 128 + (mn // 8) * stride + k * 2
    return _swizzle(start + byte, mode)


def mn_major_bytes(desc: int, start: int, mn: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The same for an MN-major operand: interleaved ((T,1,m),(8,k)):((1,T,SBO),(1T,LBO)),
    128-byte swizzled ((T,8,m),(8,k)):((1,T,LBO),(8T,SBO))."""
    lead, stride, mode = _fields(desc)
    if mode == 0:
        byte = (mn % 8) * 2 + (mn // 8) * stride + (k % 8) * 16 + (k // 8) * lead
    else:
        byte = (mn % 64) * 2 + (mn // 64) * lead + (k % 8) * 128 + (k // 8) * stride
    return _swizzle(start + byte, mode)


@pytest.mark.parametrize("name", LAYOUTS)
@pytest.mark.parametrize("rows,d", [(32, 64), (64, 64), (64, 128), (128, 128), (32, 256),
                                    (64, 256), (128, 256)])
def test_descriptors_read_what_the_copies_wrote(name, rows, d):
    """For every k16 step the kernel issues, the element wgmma reads through the layout's
    descriptor and step is the one the copy put there: S = Q Kᵀ reads the tile K-major (rows
    = M or N, K = D; 64 rows a warpgroup: `row_bytes`), O += P V reads it MN-major (K = the
    tile's rows, N = D)."""
    layout = LAYOUTS[name]
    chunks = d // 8
    plan = copy_plan(layout, 128, rows, chunks).reshape(-1, 3)
    where = np.full((rows, d), -1)  # byte address of element (row, column) after the copy
    for row, chunk, offset in plan:
        where[row, chunk * 8:chunk * 8 + 8] = (offset + np.arange(8)) * 2
    k_desc, mn_desc = descriptors(layout, rows)
    for kk in range(d // 16):  # S = Q Kᵀ: a warpgroup's 64 rows (or all, if fewer), K = D
        for first in range(0, rows, 64):
            mn = np.arange(min(64, rows))[:, None]
            k = np.arange(16)[None, :]
            start = layout.row_bytes(first) + layout.k_step(kk, rows)
            got = k_major_bytes(k_desc, start, mn, k)
            assert np.array_equal(got, where[first + mn, 16 * kk + k]), (kk, first)
    for kk in range(rows // 16):  # O += P V: K = 16 tile rows a step, N = D
        n = np.arange(d)[:, None]
        k = np.arange(16)[None, :]
        got = mn_major_bytes(mn_desc, layout.mn_step(kk), n, k)
        assert np.array_equal(got, where[16 * kk + k, n]), kk

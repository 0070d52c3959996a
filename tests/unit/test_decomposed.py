"""The decomposed path (sddmm -> softmax -> spmm over compressed scores): tables, math, PTX.

* ``decomposed_tables`` is exact: the columns it enumerates per row are the ACSR's mask, each
  once, for several patterns (one with a block remainder, one with empty rows).
* The kernels' algorithm, emulated lane by lane where it is not plain math (the warp-uniform
  piece cursor, the butterfly reduction), enumerates the same columns.
* A numpy f32 emulation of the three kernels' math over the tables matches
  ``splat.tiling.reference_attention`` (fp64) within 1e-5 (GQA included).
* All three kernels build for bf16/f16 x D=64/128, lower to sm_90a PTX, and ptxas assembles them
  with no spills; the PTX parameter counts match ``decomposed_launch_info``.
"""

import os
import re
import sys

import numpy as np
import pytest

try:
    import splat  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))

from splat import patterns as P
from splat.abi import decomposed_kernel_names as kernel_names  # noqa: E402
from splat.abi import default_scale as abi_default_scale  # noqa: E402
from splat.analysis import analyze  # noqa: E402
from splat.analysis.acsr import ACSR, BlockRemainder, Piece  # noqa: E402
from splat.tiling import reference_attention  # noqa: E402
from splat.tiling.decomposed import (  # noqa: E402
    CHUNK, GROUP, columns_from_tables, decomposed_launch_info, decomposed_tables,
    emulate_decomposed, grid_of, score_width)

VARIANTS = [(dt, d) for dt in ("bf16", "f16") for d in (64, 128)]


def _with_empty_rows_and_remainder() -> ACSR:
    """Lq=300, Lk=250 with empty rows (0..4 and 100..149) and a two-block remainder:

    * a band piece on rows 5..99 (cols i-5 .. i), a strided piece on the even rows 150..298
      (cols t, t+3, ..., t+117) and a global-column piece on rows 150..299 (cols 200..209);
    * remainder block (2, 1) (rows 64..95, cols 32..63, minus what the band covers) and block
      (8, 7) (rows 256..287, cols 224..249 after clipping to Lk), random, several runs per row.
    """
    pieces = (
        Piece(5, 100, 1, 1, 1, 0, 0, 6),
        Piece(150, 300, 2, 3, 1, 0, 0, 40),
        Piece(150, 300, 1, 1, 0, 200, 0, 10),
    )
    only = ACSR(300, 250, pieces)
    rng = np.random.default_rng(3)
    B = 32
    blocks = np.array([[2, 1], [8, 7]], dtype=np.int32)
    masks = rng.random((2, B, B)) < 0.3
    masks[0] &= ~only.mask_rows(64, 96)[:, 32:64]
    masks[1, :, 26:] = False
    masks[1, :, :26] &= ~only.mask_rows(256, 288)[:, 224:250]
    return ACSR(300, 250, pieces, BlockRemainder(B, blocks, masks)).validate()


def _patterns():
    return [
        ("window", P.window(37, 300).acsr()),
        ("dilated", P.dilated(9, 4, 300).acsr()),
        ("strided", P.strided(20, 16, 300).acsr()),
        # The general analysis of these masks leaves small irregular leftovers (a remainder).
        ("bigbird_rem", analyze(P.bigbird(24, [0, 3, 200], 2, 32, 0, 300).mask())),
        ("longformer_rem", analyze(P.longformer(40, [0, 5, 77], 320, 280).mask())),
        ("random_mask", P.from_mask(np.random.default_rng(0).random((200, 170)) < 0.05).acsr()),
        ("empty_rows_rem", _with_empty_rows_and_remainder()),
    ]


PATTERNS = _patterns()


def test_patterns_cover_the_cases():
    names = {n for n, a in PATTERNS if a.remainder is not None}
    assert {"bigbird_rem", "longformer_rem", "empty_rows_rem"} <= names
    empty = dict(PATTERNS)["empty_rows_rem"].row_nnz()
    assert (empty == 0).any() and (empty > 0).any()


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


def _coverage(tables, Lq, Lk) -> np.ndarray:
    """How many times the tables enumerate each (row, col)."""
    nnz = tables["row_nnz"]
    col = columns_from_tables(tables["row_pieces"], nnz, score_width(int(nnz.max(initial=0))))
    cnt = np.zeros((Lq, Lk), dtype=np.int64)
    r, c = np.nonzero(col >= 0)
    assert (col[r, c] < Lk).all()
    np.add.at(cnt, (r, col[r, c]), 1)
    return cnt


@pytest.mark.parametrize("name,acsr", PATTERNS, ids=[n for n, _ in PATTERNS])
def test_tables_are_exact(name, acsr):
    t = decomposed_tables(acsr)
    rp, nnz = t["row_pieces"], t["row_nnz"]
    assert rp.dtype == np.int32 and nnz.dtype == np.int32
    assert rp.ndim == 3 and rp.shape[0] == acsr.Lq and rp.shape[2] == 3 and rp.shape[1] >= 1
    assert nnz.shape == (acsr.Lq,)
    np.testing.assert_array_equal(nnz, acsr.row_nnz())
    np.testing.assert_array_equal(nnz, rp[:, :, 2].sum(axis=1))
    # used slots first, unused slots all zero
    used = rp[:, :, 2] > 0
    assert not (~used[:, :-1] & used[:, 1:]).any(), "an unused slot before a used one"
    assert (rp[~used] == 0).all()
    assert (rp[used][:, 1] >= 1).all()
    cnt = _coverage(t, acsr.Lq, acsr.Lk)
    assert cnt.max(initial=0) <= 1, "a (row, col) enumerated twice"
    np.testing.assert_array_equal(cnt.astype(bool), acsr.to_mask())


def test_tables_piece_order_then_remainder_runs():
    a = dict(PATTERNS)["empty_rows_rem"]
    t = decomposed_tables(a)
    rp = t["row_pieces"]
    # row 64: the band piece (cols 59..64) first, then the remainder's runs in column order
    i = 64
    assert tuple(rp[i, 0]) == (59, 1, 6)
    runs = [tuple(x) for x in rp[i, 1:] if x[2] > 0]
    rem_cols = sorted(set(a.row_columns(i).tolist()) - set(range(59, 65)))
    assert [c for off, s, n in runs for c in range(off, off + n)] == rem_cols
    assert all(s == 1 for _, s, _ in runs)
    assert all(runs[k][0] + runs[k][2] < runs[k + 1][0] for k in range(len(runs) - 1))  # maximal
    # row 150: the strided piece, then the global-column piece (ACSR order); row 151 only the latter
    assert tuple(rp[150, 0]) == (0, 3, 40) and tuple(rp[150, 1]) == (200, 1, 10)
    assert tuple(rp[151, 0]) == (200, 1, 10)
    # an empty row
    assert t["row_nnz"][120] == 0 and (rp[120] == 0).all()


def test_tables_at_4096_are_small():
    a = P.bigbird(64, np.arange(64), 3, 64, 0, 4096).acsr()
    t = decomposed_tables(a)
    assert t["row_pieces"].shape[1] <= 16
    np.testing.assert_array_equal(t["row_nnz"], a.row_nnz())
    assert score_width(a.max_row_nnz) == 4096


# ---------------------------------------------------------------------------------------------
# the kernels' index logic, lane by lane
# ---------------------------------------------------------------------------------------------


def _walk_row(row_pieces_row: np.ndarray, nnz: int) -> np.ndarray:
    """Emulates ``_Emitter.walk_columns`` over all chunks of one row: the cursor (pc, sc) and the
    while loop exactly as emitted; returns col for n < nnz."""
    nslots = row_pieces_row.shape[0]
    out = np.full(nnz, -1, dtype=np.int64)
    pc = sc = 0
    for n0 in range(0, nnz, CHUNK):
        n = n0 + np.arange(CHUNK)
        p, start, col, p_vis, s_vis = pc, sc, np.zeros(CHUNK, np.int64), pc, sc
        visits = 0
        while p < nslots and start <= n0 + CHUNK - 1:
            off, stride, cnt = (int(x) for x in row_pieces_row[p])
            col = np.where(n >= start, off + stride * (n - start), col)
            p, start, p_vis, s_vis = p + 1, start + cnt, p, start
            visits += 1
        assert visits >= 1
        at_next = start == n0 + CHUNK
        pc, sc = (p, start) if at_next else (p_vis, s_vis)
        valid = n < nnz
        out[n[valid]] = col[valid]
    return out


@pytest.mark.parametrize("name,acsr", PATTERNS, ids=[n for n, _ in PATTERNS])
def test_cursor_walk_matches_tables(name, acsr):
    t = decomposed_tables(acsr)
    rp, nnz = t["row_pieces"], t["row_nnz"]
    ref = columns_from_tables(rp, nnz, score_width(int(nnz.max(initial=0))))
    for i in range(acsr.Lq):
        got = _walk_row(rp[i], int(nnz[i]))
        np.testing.assert_array_equal(got, ref[i, :nnz[i]], err_msg=f"row {i}")


def test_cursor_walk_many_short_slots():
    """Slots shorter than a chunk, slots ending exactly on chunk boundaries, one long slot."""
    counts = [3, 29, 32, 1, 1, 64, 5, 31, 2, 100]
    rp = np.array([[1000 * k, k + 1, c] for k, c in enumerate(counts)], dtype=np.int32)
    nnz = sum(counts)
    ref = columns_from_tables(rp[None], np.array([nnz]), score_width(nnz))[0, :nnz]
    np.testing.assert_array_equal(_walk_row(rp, nnz), ref)


def test_butterfly_puts_entry_r_on_lane_r():
    """The sddmm group reduction: lane r of an 8-lane group ends with the sum over the group of
    the partials for key s = r."""
    rng = np.random.default_rng(1)
    part = rng.standard_normal((GROUP, GROUP))  # [lane r, key s]
    vals = [part[:, s].copy() for s in range(GROUP)]  # vals[s][lane]
    lanes = np.arange(GROUP)
    for bit in (4, 2, 1):
        upper = (lanes & bit) != 0
        half = len(vals) // 2
        new = []
        for j in range(half):
            lo, hi = vals[j], vals[j + half]
            send = np.where(upper, lo, hi)
            keep = np.where(upper, hi, lo)
            new.append(keep + send[lanes ^ bit])
        vals = new
    np.testing.assert_allclose(vals[0], part.sum(axis=0), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# math: numpy emulation vs the fp64 reference
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,acsr", PATTERNS, ids=[n for n, _ in PATTERNS])
@pytest.mark.parametrize("heads", [(4, 4), (4, 2)], ids=["mha", "gqa"])
def test_emulation_matches_reference(name, acsr, heads):
    H, Hkv = heads
    rng = np.random.default_rng(sum(name.encode()) + H + Hkv)
    B, D = 2, 32
    q = rng.standard_normal((B, H, acsr.Lq, D)).astype(np.float32)
    k = rng.standard_normal((B, Hkv, acsr.Lk, D)).astype(np.float32)
    v = rng.standard_normal((B, Hkv, acsr.Lk, D)).astype(np.float32)
    scale = abi_default_scale(D)
    t = decomposed_tables(acsr)
    o, lse, probs = emulate_decomposed(q, k, v, t["row_pieces"], t["row_nnz"], scale)
    ro, rl = reference_attention(q, k, v, acsr.to_mask(), scale)
    assert o.dtype == np.float32 and lse.dtype == np.float32
    np.testing.assert_allclose(o, ro, rtol=0, atol=1e-5)
    fin = np.isfinite(rl)
    np.testing.assert_array_equal(np.isneginf(lse), ~fin)
    np.testing.assert_allclose(lse[fin], rl[fin], rtol=0, atol=1e-5)
    # softmax contract: entries past nnz(i) are 0, live rows sum to 1, empty rows are all 0
    nnz = t["row_nnz"]
    past = np.arange(probs.shape[-1])[None, :] >= nnz[:, None]
    assert (probs[:, :, past] == 0).all()
    sums = probs.sum(-1)
    np.testing.assert_allclose(sums[:, :, nnz > 0], 1.0, atol=1e-5)
    assert (o[:, :, nnz == 0] == 0).all()


# ---------------------------------------------------------------------------------------------
# launch metadata
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,head_dim", VARIANTS)
def test_launch_info(dtype, head_dim):
    info = decomposed_launch_info(dtype, head_dim, maxnnz=513)
    names = kernel_names(dtype, head_dim)
    ks = info["kernels"]
    assert [k["name"] for k in ks] == [names["sddmm"], names["softmax"], names["spmm"]]
    assert info["score_width"] == 516
    assert info["scratch"]["scores"]["dtype"] == "f32"
    assert info["scratch"]["scores"]["shape"] == ["B", "H", "Lq", 516]
    assert [p["name"] for p in ks[0]["params"]] == ["q", "k", "scores", "row_pieces", "row_nnz", "scale"]
    assert [p["name"] for p in ks[1]["params"]] == ["scores", "lse", "row_nnz"]
    assert [p["name"] for p in ks[2]["params"]] == ["scores", "v", "o", "row_pieces", "row_nnz"]
    assert [k["num_ptx_params"] for k in ks] == [11 + 11 + 11 + 9 + 5 + 1, 11 + 9 + 5,
                                                 11 + 11 + 11 + 9 + 5]
    for k in ks:
        assert k["block"] == [128, 1, 1] and k["shared_bytes"] == 0 and k["grid"] == "rows"
        assert grid_of(k, B=2, H=16, Lq=4096) == (-(-4096 // k["rows_per_cta"]), 16, 2)


def test_score_width():
    assert [score_width(n) for n in (0, 1, 4, 5, 513, 4096)] == [4, 4, 4, 8, 516, 4096]


# ---------------------------------------------------------------------------------------------
# kernels: build, lower, assemble
# ---------------------------------------------------------------------------------------------


def _have(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


needs_mlir = pytest.mark.skipif(not _have("mlir.ir"), reason="MLIR Python bindings not available")


def _have_ptxas():
    try:
        from splat.lowering.to_ptx import find_ptxas
        find_ptxas()
        return True
    except (ImportError, FileNotFoundError):
        return False


@pytest.fixture(scope="module")
def ptx_by_variant():
    from splat.lowering.decomposed import build_decomposed
    from splat.lowering.to_ptx import lower_to_ptx
    out = {}
    for dtype, d in VARIANTS:
        module = build_decomposed(None, dtype=dtype, head_dim=d)
        module.operation.verify()
        out[(dtype, d)] = lower_to_ptx(module)
    return out


@needs_mlir
def test_one_module_holds_several_variants():
    from mlir import ir
    from splat.lowering.decomposed import build_decomposed
    with ir.Context(), ir.Location.unknown():
        m = build_decomposed(None, dtype="bf16", head_dim=64)
        build_decomposed(m, dtype="bf16", head_dim=128)  # splat_softmax_bf16 is shared
        m.operation.verify()
        text = str(m)
    assert text.count("gpu.func @splat_softmax_bf16(") == 1
    assert "gpu.func @splat_sddmm_bf16_d128(" in text and "gpu.func @splat_spmm_bf16_d64(" in text


@needs_mlir
@pytest.mark.parametrize("dtype,head_dim", VARIANTS)
def test_ptx_contents_and_abi(ptx_by_variant, dtype, head_dim):
    from splat.lowering.to_ptx import ptx_param_count
    ptx = ptx_by_variant[(dtype, head_dim)]
    assert re.search(r"^\.target\s+sm_90a", ptx, re.M)
    info = decomposed_launch_info(dtype, head_dim, maxnnz=100)
    for k in info["kernels"]:
        assert f".entry {k['name']}(" in ptx
        assert ptx_param_count(ptx, k["name"]) == k["num_ptx_params"]
    assert "ld.global.v4" in ptx  # 16-byte K/V and score loads
    assert "st.global.v4" in ptx
    assert "shfl.sync.bfly.b32" in ptx and "shfl.sync.idx.b32" in ptx
    assert "ex2.approx.ftz.f32" in ptx and "lg2.approx.f32" in ptx
    assert "call" not in re.sub(r"//.*", "", ptx).split()


@needs_mlir
@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not available")
@pytest.mark.parametrize("dtype,head_dim", VARIANTS)
def test_ptxas_assembles_without_spills(ptx_by_variant, dtype, head_dim, record_property):
    from splat.lowering.to_ptx import ptxas_check
    info = ptxas_check(ptx_by_variant[(dtype, head_dim)])
    for kind, name in kernel_names(dtype, head_dim).items():
        assert name in info, info
        k = info[name]
        record_property(f"{kind}_registers", k["registers"])
        assert k["spill_stores"] == 0 and k["spill_loads"] == 0, (name, k)
        assert k["stack_bytes"] == 0, (name, k)
        assert k["registers"] <= 128, (name, k)

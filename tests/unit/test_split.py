"""Split-KV (splat.tiling.split): when two schedules are taken, that they cover the layout
exactly once between them and that the two partial results merge into the attention."""

import numpy as np
import pytest

from splat import patterns as P
from splat.analysis.acsr import ACSR
from splat.tiling import build_schedule, reference_attention, run_schedule
from splat.tiling.split import merge_partials, plan_split, schedule_cost, split_pieces


def _qkv(rng, L, D=16, B=1, H=2, Hkv=1):
    return (rng.standard_normal((B, H, L, D)).astype(np.float32),
            rng.standard_normal((B, Hkv, L, D)).astype(np.float32),
            rng.standard_normal((B, Hkv, L, D)).astype(np.float32))


def _check_split(acsr: ACSR, main, extra, rng):
    mask = acsr.to_mask()
    cm, om = main.coverage()
    ce, oe = extra.coverage()
    assert om == 0 and oe == 0 and not (cm & ce).any()
    assert np.array_equal(cm | ce, mask)
    q, k, v = _qkv(rng, acsr.Lq)
    o, lse = merge_partials(*run_schedule(main, q, k, v), *run_schedule(extra, q, k, v))
    ro, rl = reference_attention(q, k, v, mask)
    np.testing.assert_allclose(o, ro, atol=2e-5)
    np.testing.assert_allclose(lse, rl, atol=2e-5)


@pytest.mark.parametrize("local, stride, L", [(128, 128, 4096), (16, 8, 300), (40, 32, 1000),
                                              (8, 24, 777)])
def test_strided_is_split_and_exact(local, stride, L):
    a = P.strided(local, stride, L).acsr()
    # the split's mechanics on the affine plan: at the small sizes "auto" finds one schedule
    # of blocks-plan tiles cheaper than a split (tests/unit/test_tile_plans.py covers that)
    single = build_schedule(a, plan="affine")
    main, extra = plan_split(a, single=single, plan="affine")
    assert extra is not None
    assert schedule_cost(main) + schedule_cost(extra) < schedule_cost(single)
    assert (extra.row_tiles[:, 1] > 1).any()  # the strided keys run on residue-class tiles
    _check_split(a, main, extra, np.random.default_rng(L))


def test_split_keeps_the_remainder_in_the_main_schedule():
    m = P.strided(16, 16, 1024).mask()
    m[100:110, 3] = True  # a few irregular cells: a remainder
    m[300, 250:252] = True
    from splat.analysis import analyze
    a = analyze(m)
    assert a.remainder is not None
    # The split's mechanics on the affine plan (with "auto", one block-plan schedule is cheaper
    # here than the split: tests/unit/test_tile_plans.py covers that choice).
    main, extra = plan_split(a, plan="affine")
    assert extra is not None and main.has_masks and not extra.has_masks
    _check_split(a, main, extra, np.random.default_rng(2))


@pytest.mark.parametrize("pattern", [P.window(64, 1024), P.dilated(16, 4, 1024), P.fixed(64, 8, 1024),
                                     P.blocked(64, 1024), P.longformer(32, range(8), 1024),
                                     P.causal(512)])
def test_one_grouping_layouts_keep_one_schedule(pattern):
    a = pattern.acsr()
    s, extra = plan_split(a)
    assert extra is None and s == build_schedule(a)


def test_split_pieces_needs_both_sets():
    assert split_pieces(P.window(8, 100).acsr()) is None
    main, extra = split_pieces(P.strided(16, 16, 256).acsr())
    assert all(p.row_step == 1 and p.stride == 1 for p in main.pieces)
    assert all(p.row_step == 16 for p in extra.pieces if p.T > 1)


def test_merge_partials_edge_cases():
    o1 = np.array([[1.0, 2.0], [0.0, 0.0], [3.0, 3.0], [0.0, 0.0]], np.float32)
    o2 = np.array([[5.0, 6.0], [7.0, 8.0], [0.0, 0.0], [0.0, 0.0]], np.float32)
    l1 = np.array([0.0, -np.inf, 1.0, -np.inf], np.float32)
    l2 = np.array([0.0, 2.0, -np.inf, -np.inf], np.float32)
    o, lse = merge_partials(o1, l1, o2, l2)
    np.testing.assert_allclose(o, [[3.0, 4.0], [7.0, 8.0], [3.0, 3.0], [0.0, 0.0]])
    np.testing.assert_allclose(lse, [np.log(2.0), 2.0, 1.0, -np.inf])


def test_split_artifact_tables_compute_the_attention_and_its_ptx_assembles():
    """The CPU side of the GPU path: a compiled strided artifact carries both schedules' tables;
    run as the kernels run them (numpy executor, the second folded in as the accumulating
    kernel does) they give the attention; the PTX (the fused kernel and its accumulating
    variant) assembles for sm_90a without spills."""
    import splat
    from splat.lowering.to_ptx import ptxas_check
    from splat.tiling import TileSchedule

    L = 1000
    pattern = P.strided(40, 32, L)
    art = splat.compile(pattern, dtype="f16", head_dim=128)
    names = [k["name"] for k in art.manifest["kernels"]]
    assert names == ["splat_fwd_f16_d128", "splat_fwd_f16_d128_acc"]
    report = ptxas_check(art.ptx["kernel.ptx"])
    assert set(report) == {"splat_fwd_f16_d128", "splat_fwd_f16_d128_acc"}
    assert all(r["spill_stores"] == 0 and r["spill_loads"] == 0 for r in report.values())
    bm, bn = art.manifest["kernels"][0]["block_m"], art.manifest["kernels"][0]["block_n"]
    main = TileSchedule(L, L, bm, bn, art.tables["row_tiles"], art.tables["segments"])
    extra = TileSchedule(L, L, bm, bn, art.tables["split_row_tiles"], art.tables["split_segments"])
    assert (extra.row_tiles[:, 3] < extra.row_tiles[:, 4]).all()  # no empty tiles to rewrite
    _check_split(pattern.acsr(), main, extra, np.random.default_rng(3))


def test_split_rows_where_one_launch_has_nothing():
    """splat.testing's strided_gaps: rows [L/4, L/4 + 64) have only strided keys (the main
    launch leaves them empty: 0, -inf), rows [L/2, L/2 + 64) only the local window (the
    accumulating launch has nothing for them).  Exact after the fold; the residue form's tiny
    pieces went to the main schedule's remainder."""
    from splat import testing as T
    from splat.analysis import analyze

    fam = next(f for f in T.TEST_FAMILIES if f.name == "strided_gaps")
    L = 3001
    pattern, _ = T.build_pattern(fam, L)
    a = analyze(pattern)
    main, extra = plan_split(a)
    assert extra is not None
    covered = main.coverage()[0]
    assert not covered[L // 4:L // 4 + 64].any() and covered[L // 2:L // 2 + 64].any()
    _check_split(a, main, extra, np.random.default_rng(4))


def test_union_of_remainders_keeps_every_cell():
    from splat.analysis.acsr import BlockRemainder
    from splat.tiling.split import _union_remainders

    m1 = np.zeros((2, 4, 4), bool)
    m1[0, 0, 0] = m1[1, 3, 3] = True
    m2 = np.zeros((2, 4, 4), bool)
    m2[0, 1, 1] = m2[1, 2, 2] = True
    a = BlockRemainder(4, np.array([[0, 0], [2, 1]], np.int32), m1)
    b = BlockRemainder(4, np.array([[0, 0], [1, 3]], np.int32), m2)
    u = _union_remainders(a, b)
    assert u.blocks.tolist() == [[0, 0], [1, 3], [2, 1]]
    assert u.masks[0, 0, 0] and u.masks[0, 1, 1] and u.masks[1, 2, 2] and u.masks[2, 3, 3]
    assert u.masks.sum() == 4
    assert _union_remainders(None, b) is b and _union_remainders(a, None) is a

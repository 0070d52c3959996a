"""Split-KV (splat.tiling.split): when two schedules are taken, that they cover the layout
exactly once between them and that the two partial results merge into the attention; and that
the measured cost model, the second launch's fixed cost included, makes the choice."""

import dataclasses

import numpy as np
import pytest

from splat import patterns as P
from splat.analysis.acsr import ACSR
from splat.tiling import build_schedule, cost_model, reference_attention, run_schedule
from splat.tiling.split import merge_partials, plan_split, schedule_cost, split_pieces


def _launch_weight(monkeypatch, w_launch: float) -> None:
    """Price a launch's fixed cost at ``w_launch`` key tiles (the split's own code reads the
    model's weights at call time; the tiler's are unchanged)."""
    monkeypatch.setattr(cost_model, "WEIGHTS",
                        dataclasses.replace(cost_model.WEIGHTS, W_LAUNCH=w_launch))


@pytest.fixture
def free_launch(monkeypatch):
    """The split's mechanics at sizes where, as measured, a second launch costs more than the
    split saves: there only a launch without fixed cost makes the split pay."""
    _launch_weight(monkeypatch, 0.0)


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
def test_strided_is_split_and_exact(local, stride, L, free_launch):
    a = P.strided(local, stride, L).acsr()
    # the split's mechanics on the affine plan: at the small sizes "auto" finds one schedule
    # of blocks-plan tiles cheaper than a split (tests/unit/test_tile_plans.py covers that)
    single = build_schedule(a, plan="affine")
    main, extra = plan_split(a, single=single, plan="affine")
    assert extra is not None
    assert schedule_cost(main) + schedule_cost(extra) < schedule_cost(single)
    assert (extra.row_tiles[:, 1] > 1).any()  # the strided keys run on residue-class tiles
    _check_split(a, main, extra, np.random.default_rng(L))


def test_split_keeps_the_remainder_in_the_main_schedule(free_launch):
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


def test_the_split_pays_for_its_second_launch(monkeypatch):
    """strided(16, 8, 1024): the split walks 45 % fewer key tiles and CTAs than one schedule,
    but one more launch costs more than that saves on the H100 (as calibrated); with the launch
    priced at nothing the same layout splits, so the launch's fixed cost is what decides."""
    a = P.strided(16, 8, 1024).acsr()
    single, extra = plan_split(a)
    assert extra is None and single == build_schedule(a)
    _launch_weight(monkeypatch, 0.0)
    assert plan_split(a)[1] is not None


def test_the_split_is_taken_where_the_measured_cost_saves_enough():
    """causal_window(700) | dilated(40, 5) at 4K with BLOCK_N = 32 (D = 128): the two launches
    cost ~0.82 of the one by the measured model (masked key tiles are cheap, CTAs dear), so the
    layout splits; key tiles plus one per CTA, the price before the calibration, saw a 23 %
    saving and kept one schedule."""
    L = 4096
    a = (P.causal_window(700, L) | P.dilated(40, 5, L)).acsr()
    single = build_schedule(a, 64, 32)
    main, extra = plan_split(a, 64, 32, single=single)
    assert extra is not None
    assert schedule_cost(main) + schedule_cost(extra) < 0.85 * schedule_cost(single)


def test_a_split_whose_launch_is_dearer_than_its_saving_is_not_taken(monkeypatch):
    """strided(128, 128, 4K) splits (test_strided_is_split_and_exact) and stops splitting once
    a launch's fixed cost exceeds what the split saves."""
    a = P.strided(128, 128, 4096).acsr()
    single = build_schedule(a)
    main, extra = plan_split(a, single=single)
    saving = schedule_cost(single) - schedule_cost(main) - schedule_cost(extra)
    _launch_weight(monkeypatch, cost_model.WEIGHTS.W_LAUNCH + saving + 1.0)
    assert plan_split(a, single=single) == (single, None)


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

    L = 2048  # large enough that the split pays for its second launch
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


def _reanalysed(acsr: ACSR):
    """split_pieces' extra set re-expressed from its cells (the path without the shortcut)."""
    from splat import analysis
    from splat.tiling.split import _row_local
    other = tuple(p for p in acsr.pieces if not _row_local(p))
    block = acsr.remainder.block if acsr.remainder is not None else 64
    return analysis.acsr_from_intervals(analysis.intervals_from_acsr(ACSR(acsr.Lq, acsr.Lk, other)),
                                        block=block, prefer_residue=True)


@pytest.mark.parametrize("local, stride, L", [(128, 128, 4096), (16, 8, 1000), (40, 24, 2500),
                                              (1, 64, 3000), (100, 7, 777)])
def test_extra_pieces_already_in_residue_form_are_kept_as_the_reanalysis_gives_them(local,
                                                                                    stride, L):
    """Where every piece of the extra set is already one residue class run (strided's), split
    pieces keeps them instead of re-expressing their cells (seconds at 64K): the same pieces
    the re-analysis gives, and the same remainder (none)."""
    from splat.tiling.split import _residue_form, _row_local
    acsr = P.strided(local, stride, L).acsr()
    other = [p for p in acsr.pieces if not _row_local(p)]
    parts = split_pieces(acsr)
    if not other or not all(_residue_form(p) for p in other):
        pytest.skip("no shortcut for this layout")
    slow = _reanalysed(acsr)
    assert slow.remainder is None
    assert sorted(map(str, parts[1].pieces)) == sorted(map(str, slow.pieces))
    np.testing.assert_array_equal(parts[0].to_mask() | parts[1].to_mask(), acsr.to_mask())

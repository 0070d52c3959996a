"""choose_schedule prices the kernel variants without building every variant's tables (lower
bounds, the planned tiles' costs, the winner's tables only): its choice and its tables must be
those of the plain procedure, written out here as choose_schedule was before
(``_reference_choose``: every variant's ``tile_layout``, its tables priced by ``schedule_cost``),
with the tiler's shortcuts off (``schedule.FAST_PATHS``), on the --tables layouts of
benchmarks/bench_analysis.py (smaller), hypothesis-drawn unions and intersections of band
patterns and random masks, split-KV layouts, at D = 64 and 128, both tile orders, split-KV on
and off, forced plans, a given key tile width, and variant tables made to tie or nearly tie.  The bounds the shortcuts rest on are
checked against what they bound."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from splat import patterns as P
from splat.analysis import analyze
from splat.tiling import band_costs as B
from splat.tiling import schedule as S
from splat.tiling import variants as V
from splat.tiling.split import schedule_cost, tiles_cost_range

from test_bands import combination
from test_split_fast import MASKS


def _bench_analysis():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_analysis.py"
    spec = importlib.util.spec_from_file_location("bench_analysis", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


TABLE_LAYOUTS = _bench_analysis().TABLE_LAYOUTS


def _reference_choose(acsr, head_dim, block_n=None, *, order="rows", plan="auto",
                      split_kv=True, variants=None):
    """choose_schedule as it was: every variant's schedule and split built and priced."""
    offered = V.variants_for(head_dim, variants)
    if V._parts(acsr) > V.MAX_PRICED_PARTS:
        offered = offered[:1]
    best = None
    for v in offered:
        schedule, split = V.tile_layout(acsr, v.block_m, block_n or v.block_n_for(head_dim),
                                        order=order, plan=plan, split_kv=split_kv)
        if len(offered) == 1:
            return v, schedule, split
        units = schedule_cost(schedule) + (schedule_cost(split) if split is not None else 0.0)
        ms = units * v.unit_ms(head_dim) / (1.0 if v is offered[0] else V.SWITCH_MARGIN)
        if best is None or ms < best[0]:
            best = (ms, v, schedule, split)
    return best[1:]


def _tables(s) -> str | None:
    return None if s is None else json.dumps(s.to_dict() | {"plans": s.plans.tolist()})


def _same_choice(monkeypatch, acsr, head_dim, *args, **kw):
    fast = V.choose_schedule(acsr, head_dim, *args, **kw)
    with monkeypatch.context() as m:
        m.setattr(S, "FAST_PATHS", False)
        ref = _reference_choose(acsr, head_dim, *args, **kw)
    assert fast[0] == ref[0], (fast[0].name, ref[0].name)
    assert fast[1] == ref[1] and _tables(fast[1]) == _tables(ref[1])
    assert _tables(fast[2]) == _tables(ref[2])


@pytest.mark.parametrize("L, seed", [(2048, 0), (2048, 1), (4096, 2)])
@pytest.mark.parametrize("name", list(TABLE_LAYOUTS))
def test_the_tables_benchmark_layouts_get_the_plain_choice(monkeypatch, name, L, seed):
    acsr = analyze(TABLE_LAYOUTS[name](L, np.random.default_rng(seed)))
    for head_dim in (64, 128):
        for order in ("rows", "heavy_first"):
            for split_kv in (True, False):
                _same_choice(monkeypatch, acsr, head_dim, order=order, split_kv=split_kv)


@pytest.mark.parametrize("name", list(TABLE_LAYOUTS))
def test_forced_plans_and_key_tile_widths_get_the_plain_choice(monkeypatch, name):
    acsr = analyze(TABLE_LAYOUTS[name](2048, np.random.default_rng(5)))
    for plan in ("affine", "blocks"):
        _same_choice(monkeypatch, acsr, 64, order="heavy_first", plan=plan)
    _same_choice(monkeypatch, acsr, 128, 32, order="rows")


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_drawn_band_patterns_get_the_plain_choice(data):
    L = data.draw(st.sampled_from([256, 640, 1024]))
    acsr = analyze(data.draw(combination(L, L)))
    head_dim = data.draw(st.sampled_from([64, 128]))
    order = data.draw(st.sampled_from(["rows", "heavy_first"]))
    with pytest.MonkeyPatch.context() as m:
        _same_choice(m, acsr, head_dim, order=order, split_kv=data.draw(st.booleans()))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([200, 384, 700]),
       st.floats(0.002, 0.05), st.booleans())
def test_random_masks_get_the_plain_choice(seed, L, density, causal):
    """Masks with remainders (mask tiles, blocks plans: prices known within bounds only)."""
    rng = np.random.default_rng(seed)
    mask = rng.random((L, L)) < density
    mask |= np.abs(np.arange(L)[:, None] - np.arange(L)[None, :]) < int(rng.integers(1, 90))
    if causal:
        mask &= np.tri(L, dtype=bool)
    acsr = analyze(mask)
    with pytest.MonkeyPatch.context() as m:
        for head_dim in (64, 128):
            _same_choice(m, acsr, head_dim, order="heavy_first")


@pytest.mark.parametrize("i", range(len(MASKS)))
def test_split_kv_layouts_get_the_plain_choice(monkeypatch, i):
    for head_dim in (64, 128):
        for split_kv in (True, False):
            _same_choice(monkeypatch, MASKS[i], head_dim, order="heavy_first", split_kv=split_kv)


DEFAULT = {"block_m": 64, "warp_rows": 16, "ms_per_unit": {"64": 1e-3, "128": 1e-3}}


def _variants_priced_at(ratio):
    """The default and a 128-row variant whose unit costs ``ratio`` of the default's."""
    tall = {"block_m": 128, "warp_rows": 32, "ms_per_unit": {"64": ratio * 1e-3,
                                                             "128": ratio * 1e-3}}
    return tuple(V._variant(n, e, V.MODEL_FILE) for n, e in enumerate((DEFAULT, tall)))


@pytest.mark.parametrize("shift", [0.0, 1e-12, -1e-12, 1e-8, -1e-8, 1e-3, -1e-3])
def test_ties_and_near_ties_are_decided_on_the_tables(monkeypatch, shift):
    """Variants priced the same to within the planned tiles' rounding, or exactly (the default
    wins a tie), or apart by a little more."""
    for pattern in (P.causal_window(300, 2048), P.documents([700, 900, 448], 2048, causal=True),
                    P.window(100, 2048) | P.global_tokens(range(16), 2048)):
        acsr = analyze(pattern)
        units = [schedule_cost(V.tile_layout(acsr, bm, 64)[0]) for bm in (64, 128)]
        even = units[0] / units[1] * V.SWITCH_MARGIN  # the tall unit at which the two tie
        _same_choice(monkeypatch, acsr, 64, order="heavy_first",
                     variants=_variants_priced_at(even * (1.0 + shift)))


def test_a_clear_loser_is_never_cut(monkeypatch):
    """The lower bound of a variant far dearer than the winner's price stops its pricing: only
    the winner's tiles are cut and its tables assembled."""
    cuts, assembled = [], []
    cut, assemble = S.cut_tiles, S._assemble
    monkeypatch.setattr(S, "cut_tiles", lambda b: cuts.append(b.BM) or cut(b))
    monkeypatch.setattr(S, "_assemble",
                        lambda a, b, *rest: assembled.append(b.BM) or assemble(a, b, *rest))
    acsr = analyze(P.documents([500, 1200, 2396], 4096))
    v, s, _ = V.choose_schedule(acsr, 64, variants=_variants_priced_at(0.2))
    assert (v.block_m, s.block_m, cuts, assembled) == (128, 128, [128], [128])


LAYOUTS = [P.causal_window(300, 2048), P.documents([300, 1000, 748], 2048, causal=True),
           P.chunked_causal(400, 2048) | P.causal_window(200, 2048),
           P.window(128, 2048) | P.global_tokens(range(40), 2048),
           P.window(200, 2048) & P.blocked(700, 2048), P.prefix_lm(900, 2048),
           P.documents([64] * 32, 2048) & P.causal_window(48, 2048)]


@pytest.mark.parametrize("shape", [(64, 64), (128, 64), (128, 32), (64, 128)])
@pytest.mark.parametrize("i", range(len(LAYOUTS)))
def test_the_bounds_hold(i, shape):
    """relaxed_tiles_floor <= first_tiles_floor <= the kept tiles' cost (up to rounding);
    tiles_cost_range holds the launch cost; _units_floor bounds the schedule and split."""
    acsr = analyze(LAYOUTS[i])
    block_m, block_n = shape
    for plan in S.PLANS:
        b = S.tile_builder(acsr, block_m, block_n, plan)
        relaxed = S.relaxed_tiles_floor(b)
        tiles = S.cut_tiles(b)
        first = S.first_tiles_floor(b)
        kept, built = S.plan_tiles_rest(acsr, b, tiles)
        cost = sum(r[2] for _, r in built)
        assert relaxed <= first * (1 + 1e-12) and first <= cost * (1 + 1e-12)
        low, high = tiles_cost_range(kept, built)
        launch = schedule_cost(S._assemble(acsr, kept, built, "rows"))
        assert low <= launch * (1 + 1e-12) and launch <= high * (1 + 1e-12)
    keys, exact = V._piece_row_keys(acsr)
    schedule, split = V.tile_layout(acsr, block_m, block_n)
    units = schedule_cost(schedule) + (schedule_cost(split) if split is not None else 0.0)
    need = V._key_tiles_needed(acsr, keys, exact, block_n)
    assert V._units_floor(acsr, need, block_m) <= units * (1 + 1e-12)


@pytest.mark.parametrize("i", range(len(LAYOUTS)))
def test_band_tile_floors_bound_every_plan(i):
    """band_tile_floors never exceeds the cost of the plan a builder makes (auto, affine), on
    tiles anywhere in the rows, of any height."""
    acsr = analyze(LAYOUTS[i])
    rng = np.random.default_rng(i)
    for block_m, block_n in ((64, 64), (128, 32)):
        lo = rng.integers(0, acsr.Lq - 1, 150)
        nrows = np.minimum(rng.integers(1, block_m + 1, 150), acsr.Lq - lo)
        for plan in ("auto", "affine"):
            b = S._Builder(acsr, block_m, block_n, plan)
            floors = B.band_tile_floors(b.bands, lo, nrows, block_m, block_n, acsr.Lk)
            costs = [b.tile(r, 1, n)[2] for r, n in zip(lo.tolist(), nrows.tolist())]
            assert (floors <= np.array(costs) + 1e-9).all()


def test_row_keys_are_the_pieces_counts():
    for pattern in (P.strided(96, 64, 1500), P.dilated(40, 3, 1500), LAYOUTS[3],
                    P.fixed(128, 8, 1500), P.bigbird(96, range(8), 2, 64, 0, 1500)):
        acsr = analyze(pattern)
        want = np.zeros(acsr.Lq, dtype=np.int64)
        for p in acsr.pieces:
            want[p.r0:p.r1:p.row_step] += p.counts()
        keys, exact = V._piece_row_keys(acsr)
        assert np.array_equal(keys, want) and exact


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-6, 6), st.integers(-300, 300), st.integers(0, 60),
                          st.integers(0, 70), st.integers(-400, 400)), min_size=1, max_size=40))
def test_excess_sums_are_the_row_sums(rows):
    """band_costs._excess_sum: sum over rho in [rl, rh) of max(x - (p*rho + q), 0)."""
    p, q, rl, n, x = (np.array(c, dtype=np.int64) for c in zip(*rows))
    rh = rl + n
    want = [sum(max(xx - (pp * r + qq), 0) for r in range(a, b))
            for pp, qq, a, b, xx in zip(p.tolist(), q.tolist(), rl.tolist(), rh.tolist(),
                                        x.tolist())]
    assert B._excess_sum(x, p, q, rl, rh).tolist() == want

"""plan_split's shortcuts decide and build exactly what the plain procedure does.

The plain procedure (``_reference_plan_split``, plan_split as it was before the shortcuts):
build the extra schedule and the main one with ``build_schedule``, then compare costs.  The fast
one refuses from the main schedule's tile costs before assembling its tables
(``schedule.plan_tiles``, ``tiles_cost_range``).  (Both price row steps through
``_Builder._chunk_cost``, which stops pricing a step that cannot win; tests/unit/
test_tiling_fast_paths.py compares that with full pricing.)"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from splat import patterns as P
from splat.analysis import analyze
from splat.tiling import build_schedule
from splat.tiling import schedule as S
from splat.tiling import split as SP
from splat.tiling.split import plan_split, schedule_cost, split_pieces


def _reference_plan_split(acsr, block_m=64, block_n=64, *, single=None, order="rows",
                          plan="auto"):
    single = (single if single is not None
              else build_schedule(acsr, block_m, block_n, order=order, plan=plan))
    parts = split_pieces(acsr)
    if parts is None:
        return single, None
    budget = SP._SPLIT_MARGIN * schedule_cost(single)
    extra = build_schedule(parts[1], block_m, block_n, order=order, plan="affine")
    if extra.has_masks:
        return single, None
    extra = SP._without_empty_tiles(extra)
    if schedule_cost(extra) + SP._main_cost_bound(acsr.Lq, block_m) > budget:
        return single, None
    main = build_schedule(parts[0], block_m, block_n, order=order, plan=plan)
    if not SP._partitions_rows(main) or schedule_cost(main) + schedule_cost(extra) > budget:
        return single, None
    return main, extra


def _digest(s) -> str | None:
    if s is None:
        return None
    h = hashlib.sha256(repr((s.Lq, s.Lk, s.block_m, s.block_n)).encode())
    for a in (s.row_tiles, s.segments, s.mask_ptr, s.mask_tiles, s.mask_bits, s.plans):
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _masks():
    """Strided and dilated layouts (with globals, causal or not), where split_pieces finds two
    sets: splits taken, refused early, refused on the main schedule."""
    rng = np.random.default_rng(7)
    out = [P.strided(16, 8, 1024).acsr(), P.strided(128, 128, 4096).acsr(),
           (P.causal_window(700, 4096) | P.dilated(40, 5, 4096)).acsr()]
    for k in range(6):
        L = int(rng.choice([1024, 1536, 2048]))
        s, w = int(rng.integers(12, 150)), int(rng.integers(8, 200))
        q, kk = np.arange(L)[:, None], np.arange(L)[None, :]
        causal = kk <= q
        if k % 2 == 0:
            m = causal & (((q - kk) < w) | ((q - kk) % s == 0))
        else:
            d = int(rng.integers(2, 6))
            m = causal & ((q - kk) % d == 0) & ((q - kk) < w * d)
            m |= causal & ((q - kk) % s == 0)
        g = rng.choice(L, size=int(rng.integers(0, 6)), replace=False)
        m[g, :] = True  # global query rows (the main set, with its remainder)
        out.append(analyze(m))
    return out


MASKS = _masks()


@pytest.mark.parametrize("block_n", [64, 32])
@pytest.mark.parametrize("i", range(len(MASKS)))
def test_plan_split_matches_the_plain_procedure(i, block_n):
    a = MASKS[i]
    for order, plan in (("heavy_first", "auto"), ("rows", "affine")):
        single = build_schedule(a, 64, block_n, order=order, plan=plan)
        fast = plan_split(a, 64, block_n, single=single, order=order, plan=plan)
        ref = _reference_plan_split(a, 64, block_n, single=single, order=order, plan=plan)
        assert (fast[1] is None) == (ref[1] is None)
        assert [_digest(x) for x in fast] == [_digest(x) for x in ref]


@pytest.mark.parametrize("i", range(len(MASKS)))
def test_planned_tiles_are_build_schedules_and_bound_its_cost(i):
    """plan_tiles + _assemble is build_schedule; tiles_cost_range holds the launch cost
    (beyond rounding), which it is without mask tiles."""
    a = MASKS[i]
    parts = split_pieces(a)
    for acsr in (a,) + (tuple(parts) if parts else ()):
        for plan in S.PLANS:
            ref = build_schedule(acsr, 64, 32, order="heavy_first", plan=plan)
            b, built = S.plan_tiles(acsr, 64, 32, plan)
            low, high = SP.tiles_cost_range(b, built)
            assert _digest(S._assemble(acsr, b, built, "heavy_first")) == _digest(ref)
            cost = schedule_cost(ref)
            assert low <= cost * (1 + 1e-12) and cost <= high * (1 + 1e-12)
            if not ref.has_masks:
                assert low == high == pytest.approx(cost, rel=1e-12)


def test_the_bound_is_tight_on_blocks_plans_with_mask_tiles():
    """The mask kernel's extra counts in the bound (a strided|global layout whose main
    schedule takes blocks plans: without it the bound was ~5 % low and refused nothing)."""
    L = 3072
    q, k = np.arange(L)[:, None], np.arange(L)[None, :]
    m = (k <= q) & (((q - k) < 148) | ((q - k) % 148 == 0))
    m[np.random.default_rng(3).choice(L, 8, replace=False), :] = True
    a = analyze(m)
    main = split_pieces(a)[0]
    b, built = S.plan_tiles(main, 64, 32, "auto")
    full = schedule_cost(S._assemble(main, b, built, "rows"))
    assert 0.995 * full <= SP.tiles_cost_range(b, built)[0] <= full * (1 + 1e-12)


def test_bad_arguments_still_raise():
    a = P.strided(16, 8, 300).acsr()
    with pytest.raises(ValueError):
        plan_split(a, 0, 64)
    with pytest.raises(ValueError):
        plan_split(a, 64, 64, plan="nope")

"""Two plans per row tile (docs/design.md section 2, splat.tiling.block_plan): the affine plan
(segments over compressed keys) and the blocks plan (aligned BLOCK_N key blocks, dense runs as
segments, the rest as mask tiles), chosen per tile by the cost model with plan="auto".

Exactness on masks nobody designed the tiler for, the cost choice on fragmented masks, no change
on the named families, and the forced option through the pass."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from splat import patterns as P
from splat.analysis import analyze
from splat.tiling import build_schedule, reference_attention, run_schedule
from splat.tiling.tile_schedule import PLAN_BLOCKS, TileSchedule

PLANS = ("auto", "affine", "blocks")


# -- masks nobody named ------------------------------------------------------------------------

def _family(rng, L, Lk=None):
    """One family of splat.patterns with random parameters, as a mask."""
    Lk = L if Lk is None else Lk
    kind = rng.choice(["window", "causal_window", "dilated", "strided", "blocked", "longformer",
                       "random_blocks", "global_tokens"])
    w = int(rng.integers(2, 40))
    if kind == "window":
        p = P.window(w, L, Lk)
    elif kind == "causal_window":
        p = P.causal_window(w, L, Lk)
    elif kind == "dilated":
        p = P.dilated(w, int(rng.integers(2, 7)), L, Lk)
    elif kind == "strided":
        p = P.strided(w, int(rng.integers(3, 40)), L, Lk)
    elif kind == "blocked":
        p = P.blocked(int(rng.integers(8, 100)), L, Lk)
    elif kind == "longformer":
        p = P.longformer(w, sorted(rng.choice(min(L, Lk), 3, replace=False).tolist()), L, Lk)
    elif kind == "random_blocks":
        p = P.random_blocks(int(rng.integers(8, 48)), 2, int(rng.integers(100)), L, Lk)
    else:
        p = P.global_tokens(sorted(rng.choice(min(L, Lk), 4, replace=False).tolist()), L, Lk)
    return p.mask()


def _combined(seed):
    """A union or intersection of 2-3 random families (a window keeps intersections alive)."""
    rng = np.random.default_rng(seed)
    L = int(rng.integers(150, 420))
    m = _family(rng, L)
    for _ in range(int(rng.integers(1, 3))):
        other = _family(rng, L)
        if rng.random() < 0.3:
            m = m & (other | P.window(int(rng.integers(4, 30)), L).mask())
        else:
            m = m | other
    return m


def _rational_slope(seed):
    """Cross-attention with Lq != Lk: keys near floor(q * Lk / Lq), sometimes dilated."""
    rng = np.random.default_rng(seed)
    Lq, Lk = (int(x) for x in rng.integers(100, 400, size=2))
    w = int(rng.integers(2, 30))
    q, k = np.arange(Lq)[:, None], np.arange(Lk)[None, :]
    d = k - (q * Lk) // Lq
    m = np.abs(d) <= w
    if rng.random() < 0.5:
        m &= d % int(rng.integers(2, 5)) == 0
    return m


def _random(seed):
    rng = np.random.default_rng(seed)
    Lq, Lk = (int(x) for x in rng.integers(60, 350, size=2))
    return rng.random((Lq, Lk)) < rng.uniform(0.01, 0.05)


def _packed_docs(seed):
    rng = np.random.default_rng(seed)
    L = int(rng.integers(100, 400))
    cuts = np.sort(rng.choice(np.arange(1, L), int(rng.integers(2, 9)), replace=False))
    doc = np.searchsorted(cuts, np.arange(L), side="right")
    m = doc[:, None] == doc[None, :]
    if rng.random() < 0.5:
        m &= np.arange(L)[None, :] <= np.arange(L)[:, None]
    return m


MASKS = ([("combined", s, _combined) for s in range(8)]
         + [("rational_slope", s, _rational_slope) for s in range(5)]
         + [("random", s, _random) for s in range(4)]
         + [("packed_docs", s, _packed_docs) for s in range(3)])


def _check_exact(mask, s: TileSchedule, rng):
    s.validate()
    cov, overlaps = s.coverage()
    assert overlaps == 0
    assert np.array_equal(cov, mask)
    Lq, Lk = mask.shape
    q = rng.standard_normal((1, 2, Lq, 16)).astype(np.float32)
    k = rng.standard_normal((1, 1, Lk, 16)).astype(np.float32)
    v = rng.standard_normal((1, 1, Lk, 16)).astype(np.float32)
    o, lse = run_schedule(s, q, k, v)
    ro, rl = reference_attention(q, k, v, mask)
    np.testing.assert_allclose(o, ro, atol=3e-5)
    np.testing.assert_allclose(lse, rl, atol=3e-5)


@pytest.mark.parametrize("kind, seed, make", MASKS, ids=[f"{k}-{s}" for k, s, _ in MASKS])
def test_every_plan_is_exact(kind, seed, make):
    mask = make(seed)
    acsr = analyze(P.from_mask(mask))
    rng = np.random.default_rng(seed)
    for plan in PLANS:
        for bm, bn in ((64, 64), (32, 16)):
            s = build_schedule(acsr, bm, bn, plan=plan)
            assert s.plans.shape == (s.n_tiles,)
            if plan == "affine":
                assert not s.plans.any()
            if plan == "blocks":
                assert s.plans[(s.row_tiles[:, 3] < s.row_tiles[:, 4])
                               | (np.diff(s.mask_ptr) > 0)].all()
            _check_exact(mask, s, rng)


def test_blocks_plan_tables_are_aligned_blocks():
    """Forced blocks: every segment is a dense run of aligned blocks on all tile rows, every mask
    tile starts on a block boundary, and no block is walked twice by one tile."""
    mask = _combined(3)
    s = build_schedule(analyze(P.from_mask(mask)), 64, 32, plan="blocks")
    for i, (row0, step, nrows, b, e) in enumerate(s.row_tiles.tolist()):
        starts = []
        for col0, cs, ncols, rl, rh, la, lb, ha, hb in s.segments[b:e].tolist():
            assert col0 % 32 == 0 and cs == 1 and (rl, rh) == (0, nrows)
            assert (la, lb, ha, hb) == (0, 0, 0, ncols)
            starts += list(range(col0 // 32, (col0 + ncols - 1) // 32 + 1))
        for col0, ncols in s.mask_tiles[s.mask_ptr[i]:s.mask_ptr[i + 1]].tolist():
            assert col0 % 32 == 0 and ncols <= 32
            starts.append(col0 // 32)
        assert len(starts) == len(set(starts))


# -- the cost choice ---------------------------------------------------------------------------

def _fragmented():
    L = 1024
    rng = np.random.default_rng(5)
    q, k = np.arange(768)[:, None], np.arange(1024)[None, :]
    doc_holes = P.window(48, L).mask() & ((np.arange(L) % 5 != 2)[:, None])
    return {
        "dilated3|dilated5": P.dilated(48, 3, L).mask() | P.dilated(48, 5, L).mask(),
        "dilated3|dilated7|window": (P.dilated(40, 3, L).mask() | P.dilated(40, 7, L).mask()
                                     | P.window(16, L).mask()),
        "slope 4/3 window": np.abs(k - (q * 1024) // 768) <= 40,
        "slope 4/3 dilated": (np.abs(k - (q * 1024) // 768) <= 80)
        & ((k - (q * 1024) // 768) % 2 == 0),
        "window|random 2%": P.window(48, L).mask() | (rng.random((L, L)) < 0.02),
        "window with holes": doc_holes,
    }


@pytest.mark.parametrize("name", sorted(_fragmented()))
def test_auto_picks_blocks_on_fragmented_masks(name):
    mask = _fragmented()[name]
    acsr = analyze(P.from_mask(mask))
    affine = build_schedule(acsr, 64, 64, plan="affine")
    blocks = build_schedule(acsr, 64, 64, plan="blocks")
    auto = build_schedule(acsr, 64, 64)
    st, sa, sb = auto.stats(), affine.stats(), blocks.stats()
    # some tiles take the blocks plan, and the mix walks no more key tiles than either plan
    # alone (the rational slopes: residue-class affine tiles beside blocks tiles)
    assert st.get("tiles_blocks_plan", 0) > 0
    assert st["key_tiles"] <= min(sa["key_tiles"], sb["key_tiles"])
    assert st["key_tiles"] < 0.75 * sa["key_tiles"]
    _check_exact(mask, auto, np.random.default_rng(0))


def test_random_masks_do_not_need_the_blocks_plan():
    """A uniformly random mask is all remainder: the affine plan already walks one mask tile per
    occupied key window, so the blocks plan is not 25 % cheaper and "auto" stays affine."""
    mask = np.random.default_rng(9).random((700, 900)) < 0.05
    acsr = analyze(P.from_mask(mask))
    assert build_schedule(acsr, 64, 64) == build_schedule(acsr, 64, 64, plan="affine")


NAMED = {
    "window": lambda L: P.window(128, L),
    "causal_window": lambda L: P.causal_window(256, L),
    "dilated": lambda L: P.dilated(64, 4, L),
    "dilated_small": lambda L: P.dilated(32, 2, L),
    "strided": lambda L: P.strided(128, 128, L),
    "longformer": lambda L: P.longformer(128, list(range(16)) + [L // 2], L),
    "bigbird": lambda L: P.bigbird(64, list(range(64)) + [L // 2], 3, 64, 1, L),
    "bigbird_wide": lambda L: P.bigbird(192, list(range(64)) + [L // 2], 3, 64, 1, L),
    "blocked": lambda L: P.blocked(256, L),
    "fixed": lambda L: P.fixed(128, 16, L),
}


@pytest.mark.parametrize("L", [1024, 2048, 3001, 4096])
@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_families_keep_the_affine_tables(name, L):
    acsr = NAMED[name](L).acsr()
    for bn in (64, 32):
        auto = build_schedule(acsr, 64, bn)
        assert auto == build_schedule(acsr, 64, bn, plan="affine")
        assert not auto.plans.any() and "tiles_blocks_plan" not in auto.stats()


# -- the option --------------------------------------------------------------------------------

def test_build_schedule_rejects_an_unknown_plan():
    with pytest.raises(ValueError, match="plan"):
        build_schedule(P.window(8, 64).acsr(), plan="bogus")


def test_plans_survive_to_dict_but_not_the_attribute():
    acsr = analyze(P.from_mask(_fragmented()["window with holes"]))
    s = build_schedule(acsr, 64, 64)
    assert s.plans.any()
    back = TileSchedule.from_dict(s.to_dict())
    assert np.array_equal(back.plans, s.plans) and back == s
    # tables only (#splat.tile_schedule, artifacts): unknown plans read as affine
    bare = TileSchedule(s.Lq, s.Lk, s.block_m, s.block_n, s.row_tiles, s.segments, s.mask_ptr,
                        s.mask_tiles, s.mask_bits)
    assert not bare.plans.any() and bare == s
    assert s.stats()["tiles_blocks_plan"] == int(np.count_nonzero(s.plans == PLAN_BLOCKS))


def _tile_pass(layout: str, options: str) -> subprocess.CompletedProcess:
    text = (f"func.func @f(%q: tensor<1x1x512x64xbf16>) -> tensor<1x1x512x64xbf16> {{\n"
            f"  %o = splat.attention %q, %q, %q layout({layout}) : tensor<1x1x512x64xbf16>, "
            f"tensor<1x1x512x64xbf16>, tensor<1x1x512x64xbf16> -> tensor<1x1x512x64xbf16>\n"
            f"  return %o : tensor<1x1x512x64xbf16>\n}}\n")
    pipeline = f"builtin.module(splat-analyze-regularity, splat-tile-acsr{{{options}}})"
    return subprocess.run([sys.executable, "-m", "splat.tools.splat_opt", "-",
                           f"--pass-pipeline={pipeline}"], input=text, capture_output=True,
                          text=True)


def _schedule_text(out: str) -> str:
    i = out.index("schedule(")
    return out[i:out.index(">)", i)]


def test_pass_option_forces_the_plan():
    layout = "#splat.dilated<w = 24, stride = 3>"
    auto = _tile_pass(layout, "block-n=64 split-kv=false")
    affine = _tile_pass(layout, "block-n=64 split-kv=false plan=affine")
    blocks = _tile_pass(layout, "block-n=64 split-kv=false plan=blocks")
    for r in (auto, affine, blocks):
        assert r.returncode == 0, r.stderr
    assert _schedule_text(auto.stdout) == _schedule_text(affine.stdout)
    assert _schedule_text(blocks.stdout) != _schedule_text(affine.stdout)
    assert "mask_tiles" in _schedule_text(blocks.stdout)


def test_pass_rejects_a_bad_plan_with_a_location():
    r = _tile_pass("#splat.window<w = 8>", "plan=bogus")
    assert r.returncode != 0
    assert "plan must be one of" in r.stderr and "bogus" in r.stderr
    assert r.stderr.startswith("<stdin>:")  # located, like tile-order's error


def test_plans_survive_the_ir_and_reach_the_manifest():
    """#splat.tile_schedule carries the plans, so splat.compile's manifest counts them."""
    import splat
    from splat import testing as T
    from splat.ir import make_context
    from splat.tiling.schedule_attr import attr_to_schedule, schedule_to_attr

    family = next(f for f in T.TEST_FAMILIES if f.name == "dilated_union")
    pattern, _ = T.build_pattern(family, 1024)
    acsr = splat.analyze(pattern)
    schedule = build_schedule(acsr, 64, 64, plan="blocks")
    assert schedule.plans.any()
    with make_context():
        back = attr_to_schedule(schedule_to_attr(schedule), acsr.Lq, acsr.Lk)
    np.testing.assert_array_equal(back.plans, schedule.plans)
    stats = splat.compile(acsr).manifest["stats"]
    assert stats["tiles_blocks_plan"] == int((build_schedule(acsr, 64, 64).plans == 1).sum()) > 0


def test_compile_forces_the_plan_and_keys_it():
    """splat.compile(plan=...) and block_n reach the tiler, and an artifact compiled with a
    non-default option never shares its key with the default one (launchers and caches are
    keyed by it: the calibration once timed the same launcher under two plans)."""
    import splat

    acsr = splat.analyze(P.dilated(24, 3, 512, 512))
    auto = splat.compile(acsr, head_dim=64)
    blocks = splat.compile(acsr, head_dim=64, plan="blocks")
    narrow = splat.compile(acsr, head_dim=64, block_n=32)
    assert blocks.manifest["stats"].get("tiles_blocks_plan", 0) > 0
    assert "tiles_blocks_plan" not in auto.manifest["stats"]
    assert len({auto.key, blocks.key, narrow.key}) == 3
    assert blocks.manifest["options"] == {"plan": "blocks"}
    assert narrow.manifest["options"] == {"block_n": 32}
    assert "options" not in auto.manifest
    assert splat.compile(acsr, head_dim=64, plan="auto").key == auto.key
    with pytest.raises(ValueError, match="plan must be one of"):
        splat.compile(acsr, head_dim=64, plan="bogus")


# -- the measured cost model ----------------------------------------------------------------------

def test_committed_cost_model_is_the_fit_of_its_calibration_run():
    """cost_model.json is what benchmarks/calibrate_cost.py --fit writes from the committed
    calibration results it names (no hand-edited weights), fitted on both plans' launches (the
    run it names timed each plan with its own launcher) and on split-KV's two-launch rows."""
    import json
    import sys
    from pathlib import Path

    from splat.tiling import cost_model

    root = Path(__file__).resolve().parents[2]
    model = json.loads(cost_model.MODEL_FILE.read_text())
    sys.path.insert(0, str(root / "benchmarks"))
    try:
        import calibrate_cost
    finally:
        sys.path.remove(str(root / "benchmarks"))
    res = json.loads((root / model["source"]).read_text())
    plans = model["plans_fitted"]
    rows = [r for r in res["rows"] if plans == "all" or r["plan"] in plans.split(",")]
    assert {r["plan"] for r in rows} == {"affine", "blocks"}
    assert any(r["features"]["launches"] == 2 for r in rows)  # W_LAUNCH is measured
    weights = calibrate_cost.model_weights(calibrate_cost.fit(rows, res["sms"], res["B"], res["H"]))
    assert weights == pytest.approx(model["weights"], rel=1e-9, abs=1e-12)
    assert cost_model.WEIGHTS == cost_model.CostWeights(**model["weights"])


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(format="other/1"), "not a splat-cost-model/1 file"),
    (lambda m: m["weights"].pop("W_TILE"), "'weights' must hold"),
    (lambda m: m["weights"].update(W_SEG=-1.0), "W_SEG must be a finite number"),
    (lambda m: m["weights"].update(W_BITS="0.1"), "W_BITS must be a finite number"),
    (lambda m: m["weights"].update(W_MASKED=float("nan")), "W_MASKED must be a finite number"),
])
def test_a_tampered_cost_model_is_refused(tmp_path, edit, message):
    import json

    from splat.tiling import cost_model

    model = json.loads(cost_model.MODEL_FILE.read_text())
    edit(model)
    path = tmp_path / "cost_model.json"
    path.write_text(json.dumps(model))
    with pytest.raises(ValueError, match=message):
        cost_model.load(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read the tiler's cost model"):
        cost_model.load(path)

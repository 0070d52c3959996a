"""benchmarks/calibrate_cost.py: the fit recovers known weights from synthetic timings, and the
features are read from a manifest's schedule statistics as the tiler's cost model counts them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import calibrate_cost as CC  # noqa: E402
from splat import abi  # noqa: E402


def _rows(rng, weights, D, n=80, sms=132, B=2, H=16, unit=5e-4, noise=0.0):
    rows = []
    for _ in range(n):
        f = dict(ctas=int(rng.integers(16, 300)), segments=int(rng.integers(0, 3000)),
                 full_tiles=int(rng.integers(0, 5000)), masked_tiles=int(rng.integers(0, 5000)),
                 mask_tiles=int(rng.integers(0, 3000)), launches=int(rng.integers(1, 3)))
        masked_kernel = bool(f["mask_tiles"]) and rng.random() < 0.8
        kernels = ["splat_fwd_bf16_d64" + ("_masked" if masked_kernel else "")]
        row = dict(D=D, ok=True, features=f, kernels=kernels, plan="affine")
        cols = CC._columns(row)
        ms = unit * B * H / sms * sum(w * c for w, c in zip(weights, cols))
        row["ms"] = ms * (1 + noise * rng.standard_normal())
        rows.append(row)
    return rows


def test_fit_recovers_the_weights_it_was_given():
    rng = np.random.default_rng(0)
    true = dict(ctas=2.5, segments=0.1, full_tiles=1.0, masked_tiles=1.15, mask_tiles=1.3,
                launches=100.0, mask_kernel_tiles=0.06)
    weights = [true[c] for c in CC.FIT_COLUMNS]
    rows = _rows(rng, weights, 64) + _rows(rng, weights, 128)
    per_d = CC.fit(rows, sms=132, B=2, H=16)
    for D in (64, 128):
        assert per_d[D]["weights"] == pytest.approx(true, rel=1e-6)
        assert per_d[D]["median_abs_rel_err"] < 1e-9
    model = CC.model_weights(per_d)
    assert model == pytest.approx(dict(W_TILE=2.5, W_SEG=0.1, W_MASKED=0.15, W_BITS=0.15,
                                       W_MASK_KERNEL=0.06, W_LAUNCH=100.0), rel=1e-6)


def test_fit_is_robust_to_timing_noise_and_keeps_weights_non_negative():
    rng = np.random.default_rng(1)
    weights = [2.0, 0.0, 1.0, 1.1, 1.2, 80.0, 0.05]
    per_d = CC.fit(_rows(rng, weights, 64, n=200, noise=0.03), sms=132, B=2, H=16)
    w = per_d[64]["weights"]
    assert all(v >= 0 for v in w.values())
    assert w["ctas"] == pytest.approx(2.0, rel=0.25) and w["masked_tiles"] == pytest.approx(1.1, rel=0.1)


def test_features_sum_both_launches_of_a_split_artifact():
    st = dict(tiles=10, segments=30, key_tiles=100, masked_key_tiles=40, mask_tiles=15)
    f = CC.features({"stats": st, "split_stats": dict(st, mask_tiles=0, masked_key_tiles=5)})
    assert f == dict(ctas=20, segments=60, full_tiles=60 + 95, masked_tiles=25 + 5,
                     mask_tiles=15, launches=2)


def test_fit_variants_keeps_wgmma_builds_apart_and_writes_entries_the_tiler_loads():
    """Rows of the default variant, a 128-row mma.sync variant and a 128-row wgmma build (one
    unit costs s ms each): the fit recovers each s, lists the default first and the wgmma build
    last with its instruction and K/V loads, and splat.tiling.variants accepts every entry."""
    from splat.tiling import variants as V
    from splat.tiling.cost_model import WEIGHTS

    rng = np.random.default_rng(3)
    scales = {(64, 16, "mma_sync", "compute"): 2e-4, (128, 32, "mma_sync", "compute"): 3e-4,
              (128, 16, "wgmma", "producer"): 1e-4}
    rows = []
    for (block_m, warp_rows, mma, loads), s in scales.items():
        for n in range(6):
            f = dict(ctas=int(rng.integers(50, 500)), segments=int(rng.integers(50, 900)),
                     full_tiles=int(rng.integers(100, 9000)), masked_tiles=int(rng.integers(0, 900)),
                     mask_tiles=0, launches=1)
            r = dict(name=f"m{n}", D=128, ok=True, features=f, block_m=block_m,
                     warp_rows=warp_rows, block_n=32)
            if mma != "mma_sync":
                r.update(mma=mma, kv_loads=loads)
            r["ms"] = s * CC._units(r, WEIGHTS)
            rows.append(r)
    rng.shuffle(rows)
    out = CC.fit_variants([{"rows": rows}])
    assert [(e["block_m"], e["warp_rows"], e.get("mma"), e.get("kv_loads")) for e in out] == [
        (64, 16, None, None), (128, 32, None, None), (128, 16, "wgmma", "producer")]
    for e, s in zip(out, scales.values()):
        assert e["ms_per_unit"]["128"] == pytest.approx(s, rel=1e-9)
    found = tuple(V._variant(n, e, V.MODEL_FILE) for n, e in enumerate(out))
    assert [v.name for v in found] == ["m64w16", "m128w32", "m128w16-wgmma-producer"]


def test_fit_variants_puts_runs_of_other_days_on_one_scale_through_the_default():
    """Run 1 times the default and a wgmma build at D = 128; run 2 (another day, a card 10 %
    slower) the default at D = 64 and 128 and a 128-row mma.sync variant. The fit keeps run 1's
    times at D = 128, scales run 2's there by run 1's default over its own, and takes D = 64 from
    run 2 alone; a run without the default at a head dim it measured, or another card, is an
    error."""
    from splat.tiling.cost_model import WEIGHTS

    rng = np.random.default_rng(5)

    def rows(kind, D, s):
        (block_m, warp_rows, mma, loads), out = kind, []
        for n in range(5):
            f = dict(ctas=int(rng.integers(50, 500)), segments=int(rng.integers(50, 900)),
                     full_tiles=int(rng.integers(100, 9000)), masked_tiles=0, mask_tiles=0,
                     launches=1)
            r = dict(name=f"m{n}", D=D, ok=True, features=f, block_m=block_m,
                     warp_rows=warp_rows, block_n=abi.DEFAULT_BLOCK_N[D], mma=mma, kv_loads=loads)
            r["ms"] = s * CC._units(r, WEIGHTS)
            out.append(r)
        return out

    base, m128, wg = ((64, 16, "mma_sync", "compute"), (128, 32, "mma_sync", "compute"),
                      (128, 16, "wgmma", "producer"))
    day1 = dict(gpu="G", date="2026-12-08", rows=rows(base, 128, 2e-4) + rows(wg, 128, 3e-4))
    day2 = dict(gpu="G", date="2026-12-07", rows=rows(base, 128, 2.2e-4) + rows(base, 64, 1e-4)
                + rows(m128, 128, 3.3e-4) + rows(m128, 64, 1.5e-4))
    out = CC.fit_variants([day1, day2])
    got = {(e["block_m"], e.get("mma", "mma_sync")): e["ms_per_unit"] for e in out}
    assert list(got) == [(64, "mma_sync"), (128, "mma_sync"), (128, "wgmma")]
    assert got[(64, "mma_sync")] == pytest.approx({"64": 1e-4, "128": 2e-4}, rel=1e-9)
    assert got[(128, "mma_sync")] == pytest.approx({"64": 1.5e-4, "128": 3e-4}, rel=1e-9)
    assert got[(128, "wgmma")] == pytest.approx({"128": 3e-4}, rel=1e-9)
    assert out[1]["fit"]["128"]["scaled_by"] == pytest.approx(2 / 2.2)
    with pytest.raises(ValueError, match="measured m128w32 at D = 64 without the default"):
        CC.fit_variants([day1, dict(day2, rows=rows(base, 128, 2e-4) + rows(m128, 64, 1e-4))])
    with pytest.raises(ValueError, match="one kind of card"):
        CC.fit_variants([day1, dict(day2, gpu="other")])

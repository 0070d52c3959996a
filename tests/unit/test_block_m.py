"""128-row tiles (``block_m=128``): the tiler, the kernel, the artifact and the runtime checks
agree on the tile height, and a schedule of 128-row tiles computes the same attention.

A CTA of the fused kernel runs a warp per 16 rows, so 128-row tiles take 256 threads; the
manifest records ``block_m`` and ``block`` and the runtime refuses any disagreement (a kernel
that believes its tiles are 64 rows would leave rows 64..127 of every tile unwritten).
"""

from __future__ import annotations

import numpy as np
import pytest

from splat import abi
from splat.runtime import artifact as A
from splat.runtime import integrity as I
from splat.runtime import launcher as L
from splat.runtime.artifact import ArtifactError

pytest.importorskip("mlir")
splat = pytest.importorskip("splat.compiler")
from splat import analyze, patterns  # noqa: E402
from splat.tiling.executor import reference_attention, run_schedule  # noqa: E402
from splat.tiling.schedule import build_schedule  # noqa: E402


@pytest.fixture(scope="module")
def tall():
    """block_m=128 artifacts: plain, masked (an irregular remainder) and split-KV."""
    rng = np.random.default_rng(5)
    i, j = np.arange(300)[:, None], np.arange(340)[None, :]
    scattered = (np.abs(i - j) <= 9) | (rng.random((300, 340)) < 0.03)
    tall = dict(block_m=128, warp_rows=16)
    out = {"plain": splat.compile(patterns.window(40, 700), **tall),
           "masked": splat.compile(scattered, **tall),
           "split": splat.compile(patterns.strided(32, 64, 4096), **tall)}
    return out


def test_kernels_run_a_warp_per_16_rows(tall):
    for art in tall.values():
        for k in art.kernels:
            assert k["block_m"] == 128 and k["block"] == [256, 1, 1]
        assert int(art.tables["row_tiles"][:, 2].max()) > abi.BLOCK_M  # tiles really are taller
    assert "mask_bits" in tall["masked"].tables
    assert tall["masked"].tables["mask_bits"].shape[1] == 128
    assert len(tall["split"].kernels) == 2


def test_block_m_is_part_of_the_key():
    """A tile height given is part of the key; without one the stages choose the kernel variant
    and the key is the pattern's default (the same choice every time)."""
    pat = patterns.window(40, 700)
    keys = {splat.compile(pat, block_m=bm).key for bm in (64, 128)}
    assert len(keys) == 2 and splat.compile(pat).key not in keys
    assert splat.compile(pat).key == splat.compile(pat).key


@pytest.mark.parametrize("bad", [96, 32, 0, 128.0, True, "128"])
def test_other_tile_heights_are_refused(bad):
    with pytest.raises(ValueError, match="block_m"):
        splat.compile(patterns.window(4, 100), block_m=bad)


def test_tall_artifacts_pass_every_check(tall, tmp_path):
    for name, art in tall.items():
        plan = L.check_artifact(art.copy())
        assert plan.tile_Lq == art.shapes["Lq"]
        A.load(A.save(art, tmp_path / name))


def _refused(art, match):
    with pytest.raises(ArtifactError, match=match):
        L.check_artifact(art)


def test_block_and_block_m_must_agree(tall):
    art = tall["plain"].copy()
    art.manifest["kernels"][0]["block"] = [128, 1, 1]  # 64-row threads on 128-row tiles
    _refused(art, r"block \[128, 1, 1\].*\[256, 1, 1\] for 128-row tiles")
    art = tall["plain"].copy()
    k = art.manifest["kernels"][0]
    k["block_m"], k["block"] = 64, [128, 1, 1]  # a consistent 64-row kernel: the tables are not
    k["shared_bytes"] = I.fused_shared_bytes(art.head_dim, k["block_n"], False, k["mma"], 64)
    _refused(art, "1 <= nrows <= 64")


def test_split_launches_share_one_tile_height(tall):
    art = tall["split"].copy()
    k = art.manifest["kernels"][1]
    k["block_m"], k["block"] = 64, [128, 1, 1]
    k["shared_bytes"] = I.fused_shared_bytes(art.head_dim, k["block_n"], False, k["mma"], 64)
    _refused(art, "one row tile shape per artifact")


def test_mask_bits_rows_follow_block_m(tall):
    art = tall["masked"].copy()
    bits = np.ascontiguousarray(art.tables["mask_bits"][:, :64])
    art.tables["mask_bits"] = bits
    art.manifest["tables"]["mask_bits"]["shape"] = list(bits.shape)
    _refused(art, r"mask_bits is \[\d+, 64, \d+\].*, 128, ")


@pytest.mark.parametrize("seed", range(6))
def test_tall_schedules_compute_the_reference(seed):
    """Random compositions, Lq != Lk, every plan: 128-row schedules reproduce fp64 attention
    (the executor computes in float32)."""
    rng = np.random.default_rng(seed)
    lq, lk = (int(x) for x in rng.integers(150, 700, size=2))
    pick = [patterns.window(int(rng.integers(4, 90)), lq, lk),
            patterns.causal_window(int(rng.integers(8, 200)), lq, lk),
            patterns.strided(int(rng.integers(4, 40)), int(rng.integers(3, 50)), lq, lk),
            patterns.global_tokens(sorted(rng.choice(lk, 3, replace=False).tolist()), lq, lk)]
    a, b = rng.choice(len(pick), 2, replace=False)
    pat = pick[a] | pick[b] if seed % 2 else pick[a] & pick[b]
    acsr = analyze(pat)
    mask = pat.mask()
    q, k, v = (rng.standard_normal((1, 2, n, 16)) for n in (lq, lk, lk))
    ref = reference_attention(q, k, v, mask)
    ref = ref[0] if isinstance(ref, tuple) else ref
    for plan in ("auto", "affine", "blocks"):
        sched = build_schedule(acsr, 128, 64, plan=plan)
        assert sched.block_m == 128 and int(sched.row_tiles[:, 2].max()) <= 128
        out = run_schedule(sched, q, k, v)
        out = out[0] if isinstance(out, tuple) else out
        np.testing.assert_allclose(out, ref, atol=2e-5, rtol=0, err_msg=f"{pat} plan={plan}")

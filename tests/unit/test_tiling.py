"""Tiling stage: schedule invariants and the numpy executor against a dense fp64 reference."""

import json
import math

import numpy as np
import pytest

from splat.analysis.acsr import ACSR, BlockRemainder, Piece
from splat.tiling import TileSchedule, build_schedule, reference_attention, run_schedule
from splat.tiling.tile_schedule import key_tile_full

try:  # the real pattern constructors and the analysis
    from splat import patterns as P
    from splat.analysis import analyze
except ImportError:  # pragma: no cover - depends on the other stages
    P = analyze = None

needs_patterns = pytest.mark.skipif(P is None, reason="splat.patterns / splat.analysis not available")


# -- ACSRs built directly from pieces ----------------------------------------------------------

def window(L, w):
    return ACSR(L, L, (Piece(0, w, 1, 1, 0, 0, 1, w + 1),
                       Piece(w, L - w, 1, 1, 1, 0, 0, 2 * w + 1),
                       Piece(L - w, L, 1, 1, 1, L - 2 * w, -1, 2 * w)))


def causal(L):
    return ACSR(L, L, (Piece(0, L, 1, 1, 0, 0, 1, 1),))


def causal_window(L, w):
    return ACSR(L, L, (Piece(0, w, 1, 1, 0, 0, 1, 1), Piece(w, L, 1, 1, 1, 1, 0, w)))


def dilated(L, d, w):
    """Causal dilated window: row i attends i - d*j, j < w, clipped at 0."""
    ps = [Piece(d * (w - 1), L, 1, d, 1, 0, 0, w)]
    ps += [Piece(c, d * (w - 1), d, d, 0, c, 1, 1) for c in range(min(d, d * (w - 1)))]
    return ACSR(L, L, tuple(ps))


def strided(L, l):
    """Sparse-transformer strided: causal window of l plus every l-th earlier column."""
    ps = [Piece(0, l, 1, 1, 0, 0, 1, 1), Piece(l, L, 1, 1, 1, 1, 0, l)]
    ps += [Piece(c + l, L, l, l, 0, c, 1, 1) for c in range(l) if c + l < L]
    return ACSR(L, L, tuple(ps))


def blocked(L, B):
    return ACSR(L, L, tuple(Piece(b, min(b + B, L), 1, 1, 0, b, 0, min(B, L - b))
                            for b in range(0, L, B)))


def global_window(L, g, w):
    """g global tokens (rows and columns) plus a causal window of w on the other rows."""
    ps = [Piece(0, g, 1, 1, 0, 0, 0, L),                 # global rows see everything
          Piece(g, L, 1, 1, 0, 0, 0, g),                 # everyone sees the global columns
          Piece(g, g + w, 1, 1, 0, g, 1, 1),             # window, clipped at g
          Piece(g + w, L, 1, 1, 1, g + 1, 0, w)]
    return ACSR(L, L, tuple(ps))


def random_remainder(rng, Lq, Lk, B, nblocks, density, covered=None):
    nrb, ncb = -(-Lq // B), -(-Lk // B)
    idx = np.sort(rng.choice(nrb * ncb, size=min(nblocks, nrb * ncb), replace=False))
    blocks = np.stack([idx // ncb, idx % ncb], 1)
    masks = rng.random((len(idx), B, B)) < density
    r = blocks[:, 0:1] * B + np.arange(B)
    c = blocks[:, 1:2] * B + np.arange(B)
    masks &= (r[:, :, None] < Lq) & (c[:, None, :] < Lk)
    if covered is not None:
        pad = np.zeros((nrb * B, ncb * B), dtype=bool)
        pad[:Lq, :Lk] = covered
        masks &= ~pad[r[:, :, None], c[:, None, :]]
    keep = masks.any(axis=(1, 2))
    if not keep.any():
        return None
    return BlockRemainder(B, blocks[keep], masks[keep])


def random_acsr(rng, Lq, Lk, npieces=6, rem_blocks=6, rem_block=16):
    """Random disjoint pieces (any row step, stride, signs of the slopes) plus a remainder."""
    covered = np.zeros((Lq, Lk), dtype=bool)
    pieces = []
    for _ in range(300):
        if len(pieces) >= npieces:
            break
        p = int(rng.choice([1, 1, 1, 2, 3, 4]))
        s = int(rng.choice([1, 1, 2, 3, 5]))
        r0 = int(rng.integers(0, Lq))
        r1 = int(rng.integers(r0 + 1, min(Lq, r0 + 400) + 1))
        T = -(-(r1 - r0) // p)
        oa = int(rng.integers(-3, 4))
        ca = int(rng.integers(-1, 2))
        cb = int(rng.integers(1, 60)) + (-ca * (T - 1) if ca < 0 else 0)
        ob = int(rng.integers(0, Lk)) + (-oa * (T - 1) if oa < 0 else 0)
        pc = Piece(r0, r1, p, s, oa, ob, ca, cb)
        one = ACSR(Lq, Lk, (pc,))
        try:
            one.validate()
        except ValueError:
            continue
        m = one.to_mask()
        if (m & covered).any():
            continue
        covered |= m
        pieces.append(pc)
    rem = random_remainder(rng, Lq, Lk, rem_block, rem_blocks, 0.3, covered) if rem_blocks else None
    return ACSR(Lq, Lk, tuple(pieces), rem).validate()


def piece_families(L):
    """name -> ACSR built directly from pieces (independent of patterns/analysis)."""
    rng = np.random.default_rng(L)
    fam = {
        "window": window(L, L // 16),
        "causal_window": causal_window(L, L // 8),
        "dilated": dilated(L, 3, L // 24),
        "strided": strided(L, int(math.isqrt(L))),
        "blocked": blocked(L, 48),
        "global_window": global_window(L, 16, L // 16),
    }
    cw = causal_window(L, L // 16)
    fam["window_plus_random"] = ACSR(L, L, cw.pieces,
                                     random_remainder(rng, L, L, 32, L // 16, 0.4, cw.to_mask()))
    fam["remainder_blocks"] = ACSR(L, L, (), random_remainder(rng, L, L, 64, L // 8, 1.0))
    return fam


PATTERN_NAMES = ("window", "causal", "causal_window", "dilated", "strided", "fixed", "blocked",
                 "global_tokens", "random_blocks", "longformer", "bigbird", "from_mask",
                 "sparse_rows")


def make_pattern(name, Lq, Lk=None, scale=1):
    """The pattern families of splat.patterns; ``scale`` = 1 gives the parameters of
    splat.testing.TEST_FAMILIES (meant for L = 4096), 4 a quarter of them."""
    Lk = Lq if Lk is None else Lk
    glob = list(range(16 // scale)) + [min(Lq, Lk) // 2]
    glob64 = list(range(64 // scale)) + [min(Lq, Lk) // 2]
    if name == "window":
        return P.window(128 // scale, Lq, Lk)
    if name == "causal":
        return P.causal(Lq, Lk)
    if name == "causal_window":
        return P.causal_window(256 // scale, Lq, Lk)
    if name == "dilated":
        return P.dilated(64 // scale, 4, Lq, Lk)
    if name == "strided":
        return P.strided(128 // scale, 128 // scale, Lq, Lk)
    if name == "fixed":
        return P.fixed(128 // scale, 16 // scale, Lq, Lk)
    if name == "blocked":
        return P.blocked(256 // scale, Lq, Lk)
    if name == "global_tokens":
        return P.global_tokens(glob, Lq, Lk)
    if name == "random_blocks":
        return P.random_blocks(64 // scale, 3, 0, Lq, Lk)
    if name == "longformer":
        return P.longformer(128 // scale, glob, Lq, Lk)
    if name == "bigbird":
        return P.bigbird(64 // scale, glob64, 3, 64 // scale, 1, Lq, Lk)
    if name == "from_mask":  # irregular: goes to the block remainder
        rng = np.random.default_rng(Lq * 7 + Lk)
        m = rng.random((Lq, Lk)) < 0.02
        m |= np.abs(np.arange(Lq)[:, None] - np.arange(Lk)[None, :]) <= 8
        return P.from_mask(m)
    if name == "sparse_rows":  # a window with empty rows (whole row tiles and single rows)
        return P.from_mask_fn(lambda q, k: (np.abs(q - k) <= 64 // scale) & ((q // 64) % 3 != 1)
                              & (q % 5 != 2), Lq, Lk)
    raise ValueError(name)


def pattern_acsr(name, Lq, Lk=None, scale=1):
    return analyze(make_pattern(name, Lq, Lk, scale))


# -- invariants --------------------------------------------------------------------------------

def check_schedule(acsr: ACSR, s: TileSchedule):
    s.validate()
    BM, BN = s.block_m, s.block_n
    # row tiles partition [0, Lq)
    rows = np.concatenate([s.tile_rows(i) for i in range(s.n_tiles)])
    assert np.array_equal(np.sort(rows), np.arange(acsr.Lq))
    assert (s.row_tiles[:, 2] <= BM).all()
    # segments (and mask tiles) reconstruct the mask exactly, with no element twice
    mask, overlaps = s.coverage()
    assert overlaps == 0
    truth = acsr.to_mask()
    assert np.array_equal(mask, truth)
    # the full-tile rule is sound: a key tile declared full has every element allowed
    for i, (row0, step, nrows, b, e) in enumerate(s.row_tiles.tolist()):
        r = s.tile_rows(i)
        for seg in s.segments[b:e].tolist():
            col0, cs, ncols = seg[:3]
            for u0 in range(0, ncols, BN):
                if key_tile_full(seg, nrows, u0, BM, BN):
                    cols = col0 + cs * np.arange(u0, u0 + BN)
                    assert truth[np.ix_(r, cols)].all()
    st = s.stats()
    assert st["nnz"] == acsr.nnz
    assert 0 < st["efficiency"] <= 1 or acsr.nnz == 0
    return st


@pytest.mark.parametrize("name", list(piece_families(1024)))
def test_piece_family_schedule_invariants(name):
    acsr = piece_families(1024)[name]
    acsr.validate()
    for bm, bn in ((64, 64), (32, 16)):
        check_schedule(acsr, build_schedule(acsr, bm, bn))


@needs_patterns
@pytest.mark.parametrize("name", PATTERN_NAMES)
def test_pattern_family_schedule_invariants(name):
    for (Lq, Lk), (bm, bn) in (((1024, 1024), (64, 64)), ((1000, 777), (64, 64)), ((777, 1000), (32, 16))):
        check_schedule(pattern_acsr(name, Lq, Lk, scale=4), build_schedule(pattern_acsr(name, Lq, Lk, 4), bm, bn))


@needs_patterns
def test_family_efficiency_at_4096():
    st = {n: build_schedule(pattern_acsr(n, 4096)).stats() for n in PATTERN_NAMES}
    for n, x in st.items():
        assert x["nnz"] == pattern_acsr(n, 4096).nnz, n
    # Regular windows: every tile full-height, ~5 key tiles per tile, > 75% of the work useful.
    assert st["window"]["tiles"] == 64 and st["window"]["segments"] == 64
    assert st["window"]["efficiency"] > 0.8 and st["causal_window"]["efficiency"] > 0.8
    assert st["causal"]["efficiency"] > 0.98 and st["causal"]["masked_key_tiles"] == 64
    assert st["blocked"]["efficiency"] == 1.0 and st["blocked"]["masked_key_tiles"] == 0
    assert st["random_blocks"]["efficiency"] == 1.0 and st["random_blocks"]["masked_key_tiles"] == 0
    # Dilated: one dense windowed problem per residue class (row step = dilation).
    sd = build_schedule(pattern_acsr("dilated", 4096))
    assert (sd.row_tiles[:, 1] == 4).sum() >= 60
    assert st["dilated"]["efficiency"] > 0.55
    # Strided: the stride part goes "transposed" (one key tile per earlier stride block).
    assert st["strided"]["key_tiles"] < 1200
    # Fixed: the 16 summary columns of every earlier block are stacked into 16 stride-128 problems.
    sf = build_schedule(pattern_acsr("fixed", 4096))
    assert (sf.segments[:, 1] == 128).sum() > 100 and st["fixed"]["efficiency"] > 0.33
    assert st["longformer"]["efficiency"] > 0.45 and st["bigbird"]["efficiency"] > 0.6
    assert st["from_mask"]["mask_tiles"] > 0


@pytest.mark.parametrize("seed", range(12))
def test_random_acsr_schedule_invariants(seed):
    rng = np.random.default_rng(seed)
    Lq, Lk = int(rng.integers(1, 400)), int(rng.integers(1, 400))
    acsr = random_acsr(rng, Lq, Lk, npieces=int(rng.integers(0, 8)), rem_blocks=int(rng.integers(0, 6)),
                       rem_block=int(rng.choice([8, 16, 32])))
    bm, bn = [(64, 64), (16, 32), (8, 8), (64, 40)][seed % 4]
    check_schedule(acsr, build_schedule(acsr, bm, bn))


def test_empty_and_tiny():
    for Lq, Lk in ((1, 1), (5, 3), (130, 70)):
        acsr = ACSR(Lq, Lk)
        s = build_schedule(acsr)
        check_schedule(acsr, s)
        assert s.n_segments == 0 and s.stats()["empty_tiles"] == s.n_tiles
    acsr = ACSR(1, 1, (Piece(0, 1, 1, 1, 0, 0, 0, 1),))
    s = build_schedule(acsr)
    assert s.row_tiles.tolist() == [[0, 1, 1, 0, 1]]
    assert s.segments.tolist() == [[0, 1, 1, 0, 1, 0, 0, 0, 1]]


def test_window_segment_is_exact_affine():
    """Interior tile of a symmetric window of half-width 128: one segment, lo = rho, hi = rho + 257."""
    s = build_schedule(window(4096, 128))
    i = int(np.flatnonzero(s.row_tiles[:, 0] == 1024)[0])
    assert s.row_tiles[i].tolist()[:3] == [1024, 1, 64]
    (seg,) = s.tile_segments(i).tolist()
    assert seg == [1024 - 128, 1, 257 + 63, 0, 64, 1, 0, 1, 257]
    full = [key_tile_full(seg, 64, u0, 64, 64) for u0 in range(0, 320, 64)]
    assert full == [False, True, True, True, False]


def test_dilated_piece_split_by_residue():
    """One piece with stride 2 and offset slope 1: the rows split into 2 residue classes."""
    L = 576
    acsr = ACSR(L, L, (Piece(0, L - 64, 1, 2, 1, 0, 0, 32),))
    s = build_schedule(acsr)
    check_schedule(acsr, s)
    assert s.n_segments == s.n_tiles - 1  # 64 tail rows have no keys
    rt = s.row_tiles[s.row_tiles[:, 3] < s.row_tiles[:, 4]]
    assert (rt[:, 1] == 2).all() and (rt[:, 2] == 64).all()
    seg = s.segments[0].tolist()
    assert seg[1] == 2 and seg[5:] == [1, 0, 1, 32]   # u in [rho, rho + 32) of col0 + 2u


def test_coalesces_split_lines():
    """A diagonal split into pieces at odd rows tiles as if it were one piece."""
    L = 1024
    b = [0, 100, 333, 700, 701, L]
    acsr = ACSR(L, L, tuple(Piece(x, y, 1, 1, 1, x, 0, 1) for x, y in zip(b, b[1:])))
    s = build_schedule(acsr)
    check_schedule(acsr, s)
    assert s.n_tiles == L // 64 and s.n_segments == L // 64


def test_remainder_mask_tiles():
    rng = np.random.default_rng(3)
    acsr = ACSR(300, 200, (), random_remainder(rng, 300, 200, 32, 20, 0.5))
    s = build_schedule(acsr)
    check_schedule(acsr, s)
    assert s.n_segments == 0 and s.n_mask_tiles > 0
    assert (s.mask_tiles[:, 1] <= 64).all()


def test_roundtrip_dict_json():
    rng = np.random.default_rng(5)
    acsr = random_acsr(rng, 200, 150, 5, 4)
    s = build_schedule(acsr, 32, 64)
    d = json.loads(json.dumps(s.to_dict()))
    s2 = TileSchedule.from_dict(d)
    assert s2 == s
    assert s.row_tiles.dtype == np.int32 and s.segments.dtype == np.int32
    assert "tiles" in s.summary() and s.to_text().startswith("TileSchedule")


def test_validate_rejects_broken_schedules():
    s = build_schedule(causal_window(256, 32))
    bad = TileSchedule.from_dict(s.to_dict())
    bad.row_tiles[0, 2] -= 1  # a row belongs to no tile
    with pytest.raises(ValueError):
        bad.validate()
    bad = TileSchedule.from_dict(s.to_dict())
    bad.segments[0, 8] += 1000  # hi beyond ncols
    with pytest.raises(ValueError):
        bad.validate()


def test_heavy_first_order():
    acsr = causal(1024)
    s = build_schedule(acsr, order="heavy_first")
    check_schedule(acsr, s)
    work = [sum(math.ceil(g[2] / 64) for g in s.tile_segments(i).tolist()) for i in range(s.n_tiles)]
    assert work == sorted(work, reverse=True)


# -- executor ----------------------------------------------------------------------------------

def _inputs(rng, B, H, Hkv, Lq, Lk, D):
    q = rng.standard_normal((B, H, Lq, D)).astype(np.float32)
    k = rng.standard_normal((B, Hkv, Lk, D)).astype(np.float32)
    v = rng.standard_normal((B, Hkv, Lk, D)).astype(np.float32)
    return q, k, v


def check_executor(acsr, s, rng, B=1, H=2, Hkv=1, D=16, scale=None):
    q, k, v = _inputs(rng, B, H, Hkv, acsr.Lq, acsr.Lk, D)
    cnt = {}
    o, lse = run_schedule(s, q, k, v, scale, counters=cnt)
    ro, rlse = reference_attention(q, k, v, acsr.to_mask(), scale)
    assert o.dtype == np.float32 and o.shape == ro.shape
    denom = max(np.abs(ro).max(), 1e-30)
    assert np.abs(o - ro).max() / denom < 1e-5
    empty = ~acsr.to_mask().any(axis=1)
    assert np.isneginf(lse[..., empty]).all() and (o[..., empty, :] == 0).all()
    fin = np.isfinite(rlse)
    assert np.array_equal(np.isfinite(lse), fin)
    if fin.any():
        assert np.abs(lse[fin] - rlse[fin]).max() < 1e-4
    st = s.stats()
    assert cnt["key_tiles"] == st["key_tiles"] and cnt["masked_key_tiles"] == st["masked_key_tiles"]


@pytest.mark.parametrize("name", list(piece_families(640)))
def test_executor_piece_families(name):
    acsr = piece_families(640)[name]
    rng = np.random.default_rng(1)
    check_executor(acsr, build_schedule(acsr), rng, B=2, H=4, Hkv=2, D=32)


@needs_patterns
@pytest.mark.parametrize("name", PATTERN_NAMES)
def test_executor_pattern_families(name):
    rng = np.random.default_rng(2)
    acsr = pattern_acsr(name, 700, 650, scale=4)  # not a multiple of the tile, Lq != Lk
    check_executor(acsr, build_schedule(acsr), rng, B=2, H=4, Hkv=2, D=32)


@pytest.mark.parametrize("seed", range(10))
def test_executor_random_shapes(seed):
    """L not a multiple of the tile, Lq != Lk, GQA, empty rows, odd tile shapes."""
    rng = np.random.default_rng(100 + seed)
    Lq, Lk = int(rng.integers(1, 300)), int(rng.integers(1, 300))
    acsr = random_acsr(rng, Lq, Lk, npieces=int(rng.integers(0, 7)), rem_blocks=int(rng.integers(0, 5)),
                       rem_block=int(rng.choice([8, 16, 32])))
    bm, bn = [(64, 64), (16, 32), (32, 8), (64, 48)][seed % 4]
    s = build_schedule(acsr, bm, bn)
    check_schedule(acsr, s)
    H, Hkv = [(1, 1), (4, 2), (6, 3), (4, 1)][seed % 4]
    check_executor(acsr, s, rng, B=int(rng.integers(1, 3)), H=H, Hkv=Hkv, D=int(rng.choice([8, 16, 24])),
                   scale=float(rng.uniform(0.05, 0.5)))


def test_executor_large_scores_stable():
    """Large logits: the online softmax must rescale, not overflow."""
    acsr = causal(300)
    s = build_schedule(acsr)
    rng = np.random.default_rng(7)
    q, k, v = _inputs(rng, 1, 1, 1, 300, 300, 16)
    o, lse = run_schedule(s, q * 30, k, v, 1.0)
    ro, rlse = reference_attention(q * 30, k, v, acsr.to_mask(), 1.0)
    assert np.isfinite(o).all()
    assert np.abs(o - ro).max() / np.abs(ro).max() < 1e-5


def test_reference_matches_dense_softmax():
    rng = np.random.default_rng(2)
    q, k, v = _inputs(rng, 1, 2, 2, 7, 9, 4)
    mask = rng.random((7, 9)) < 0.5
    mask[3] = False
    o, lse = reference_attention(q, k, v, mask, 0.5)
    s = np.einsum("bhmd,bhnd->bhmn", q.astype(np.float64), k.astype(np.float64)) * 0.5
    for i in range(7):
        if not mask[i].any():
            assert (o[:, :, i] == 0).all() and np.isneginf(lse[:, :, i]).all()
            continue
        w = np.exp(s[:, :, i, mask[i]])
        ref = np.einsum("bhn,bhnd->bhd", w / w.sum(-1, keepdims=True), v[:, :, mask[i]].astype(np.float64))
        assert np.allclose(o[:, :, i], ref) and np.allclose(lse[:, :, i], np.log(w.sum(-1)))


def test_a_schedule_that_cannot_fit_in_memory_is_refused_up_front(monkeypatch):
    """The tiler's memory is estimated before any work (2**31 rows once ran for minutes and
    took 7 GB before failing); the message says how much and what is available."""
    import time

    from splat import patterns as P
    from splat.analysis import analyze
    from splat.tiling import schedule as S

    acsr = analyze(P.window(4, 1 << 20))
    monkeypatch.setattr(S, "available_memory", lambda: 8 << 20)  # 8 MiB
    t0 = time.perf_counter()
    with pytest.raises(MemoryError, match=r"tiling Lq = 1048576 rows needs about .* GiB.*available"):
        S.build_schedule(acsr, 64, 64)
    assert time.perf_counter() - t0 < 1.0  # refused before tiling, not after
    monkeypatch.setattr(S, "available_memory", lambda: None)  # unknown: no check
    assert S.build_schedule(analyze(P.window(4, 256)), 64, 64).n_tiles == 4

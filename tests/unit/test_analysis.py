"""General analysis: exactness on arbitrary masks and on unions/intersections of the families,
interval extraction and algebra, piece counts, the chunked path, bad input."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from splat import analysis, patterns as P
from splat.analysis import acsr_from_mask, analyze, intervals_from_mask, runs_from_intervals, runs_from_mask


def check(a, m):
    a.validate()
    assert np.array_equal(a.to_mask(), m)
    assert a.nnz == int(m.sum())


# -- random masks --------------------------------------------------------------------------------

@st.composite
def masks(draw):
    """Random masks with the awkward rows mixed in: empty, full, one column, runs, strides."""
    Lq, Lk = draw(st.integers(1, 80)), draw(st.integers(1, 140))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    m = rng.random((Lq, Lk)) < draw(st.sampled_from([0.0, 0.02, 0.2, 0.5, 0.9, 1.0]))
    for i in range(Lq):
        kind = rng.integers(8)
        if kind == 0:
            m[i] = False
        elif kind == 1:
            m[i] = True
        elif kind == 2:
            m[i] = False
            m[i, rng.integers(Lk)] = True
        elif kind == 3:  # a strided run
            s = int(rng.integers(1, 6))
            m[i, int(rng.integers(Lk))::s] = True
    return m


@settings(max_examples=150, deadline=None)
@given(masks(), st.sampled_from([1, 3, 8, 64]))
def test_random_masks_are_exact(m, block):
    a = analyze(m, block=block)
    check(a, m)
    if a.remainder is not None:
        assert a.remainder.block == block


@settings(max_examples=80, deadline=None)
@given(masks())
def test_intervals_from_mask(m):
    iv = intervals_from_mask(m)
    assert np.array_equal(iv.to_mask(), m)
    # maximal: intervals of one row never touch
    same_row = iv.row[1:] == iv.row[:-1]
    assert (iv.start[1:][same_row] > iv.stop[:-1][same_row]).all()
    assert iv.nnz == int(m.sum())


@pytest.mark.parametrize("Lk", [63, 64, 65, 128, 130])
def test_intervals_at_word_edges(Lk):
    m = np.zeros((4, Lk), bool)
    m[0] = True
    m[1, -1] = True
    m[2, 62:66] = True
    m[3, ::2] = True
    assert np.array_equal(intervals_from_mask(m).to_mask(), m)


# -- families, unions and intersections --------------------------------------------------------

@st.composite
def patterns(draw, Lq, Lk, depth=2):
    small = st.integers(1, 10)
    leaves = [
        lambda: P.window(draw(small), Lq, Lk),
        lambda: P.causal(Lq, Lk),
        lambda: P.causal_window(draw(small), Lq, Lk),
        lambda: P.dilated(draw(small), draw(st.integers(1, 5)), Lq, Lk),
        lambda: P.strided(draw(small), draw(st.integers(1, 8)), Lq, Lk),
        lambda: (lambda B: P.fixed(B, draw(st.integers(1, B)), Lq, Lk))(draw(st.integers(1, 12))),
        lambda: P.blocked(draw(st.integers(1, 16)), Lq, Lk),
        lambda: P.global_tokens(draw(st.lists(st.integers(0, min(Lq, Lk) - 1), min_size=1, max_size=3)), Lq, Lk),
        lambda: P.random_blocks(draw(st.integers(1, 8)), draw(st.integers(1, 2)), draw(st.integers(0, 99)), Lq, Lk),
    ]
    p = leaves[draw(st.integers(0, len(leaves) - 1))]()
    if depth and draw(st.booleans()):
        q = draw(patterns(Lq, Lk, depth - 1))
        p = p | q if draw(st.booleans()) else p & q
    return p


@st.composite
def combos(draw):
    Lq, Lk = draw(st.integers(1, 100)), draw(st.integers(1, 100))
    return draw(patterns(Lq, Lk))


@settings(max_examples=120, deadline=None)
@given(combos())
def test_family_combinations_are_exact(p):
    m = p.mask()
    check(analyze(m), m)
    check(p.acsr(), m)  # analytic or interval algebra + analysis, never the mask
    assert np.array_equal(p.intervals().to_mask(), m)


def test_debug_mode_checks(monkeypatch):
    monkeypatch.setenv("SPLAT_DEBUG", "1")
    m = P.bigbird(3, [0, 5], 1, 8, 0, 90, 77).mask()
    check(analyze(m), m)
    p = P.longformer(3, [1], 50) & P.causal(50)
    check(analyze(p), p.mask())


def test_pattern_with_analytic_acsr_is_returned_as_is():
    p = P.window(4, 40)
    assert analyze(p) is p.acsr()


# -- documented piece counts through the general analysis ---------------------------------------
# (docs/acsr.md; Lq = Lk = 1000 >> parameters)

COUNTS = [
    ("window(16)", lambda d, q, k: np.abs(d) <= 16, 3),
    ("causal", lambda d, q, k: d >= 0, 1),
    ("causal_window(16)", lambda d, q, k: (d >= 0) & (d <= 16), 2),
    ("dilated(8,4)", lambda d, q, k: (np.abs(d) <= 32) & (d % 4 == 0), 9),
    ("dilated(3,8)", lambda d, q, k: (np.abs(d) <= 24) & (d % 8 == 0), 7),
    ("strided(16,8)", lambda d, q, k: (d >= 0) & ((d < 16) | (d % 8 == 0)), 10),
    ("fixed(50,4)", lambda d, q, k: (d >= 0) & ((q // 50 == k // 50) | (k % 50 >= 46)), 38),
    ("blocked(50)", lambda d, q, k: q // 50 == k // 50, 20),
    ("global(0:8)", lambda d, q, k: (q < 8) | (k < 8), 2),
    ("longformer(16, 0:8)", lambda d, q, k: (np.abs(d) <= 16) | (q < 8) | (k < 8), 5),
]


@pytest.mark.parametrize("name, fn, count", COUNTS, ids=[c[0] for c in COUNTS])
def test_piece_counts_from_masks(name, fn, count):
    q, k = np.arange(1000)[:, None], np.arange(1000)[None, :]
    m = fn(q - k, q, k)
    a = analyze(m)
    check(a, m)
    assert len(a.pieces) == count and a.remainder is None


def test_random_masks_go_to_the_remainder():
    m = np.random.default_rng(0).random((200, 150)) < 0.05
    a = analyze(m, block=32)
    check(a, m)
    assert a.remainder is not None and a.remainder.nnz > 0.9 * m.sum()


# -- the chunked path never builds the full mask ------------------------------------------------

def test_from_mask_fn_at_32k_is_chunked():
    L, w = 32768, 64
    p = P.from_mask_fn(lambda q, k: np.abs(q - k) <= w, L)
    tracemalloc.start()
    try:
        a = analyze(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20  # the full bool mask alone would be 1 GiB
    assert a == P.window(w, L).acsr()


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("arg, kw, exc, msg", [
    (np.ones((3, 3), np.uint8), {}, TypeError, "dtype bool"),
    (np.ones(3, bool), {}, ValueError, "2-D"),
    (np.ones((3, 0), bool), {}, ValueError, "Lk >= 1"),
    ([[True]], {}, TypeError, "bool ndarray mask or a splat.patterns.Pattern"),
    (np.ones((3, 3), bool), {"block": 0}, ValueError, "block must be a positive int"),
    (np.ones((3, 3), bool), {"block": 2.0}, ValueError, "block must be a positive int"),
])
def test_bad_input(arg, kw, exc, msg):
    with pytest.raises(exc, match=msg):
        analyze(arg, **kw)


def test_interval_algebra():
    rng = np.random.default_rng(3)
    a = rng.random((30, 70)) < 0.4
    b = rng.random((30, 70)) < 0.4
    ia, ib = intervals_from_mask(a), intervals_from_mask(b)
    assert np.array_equal(analysis.union(ia, ib).to_mask(), a | b)
    assert np.array_equal(analysis.intersection(ia, ib).to_mask(), a & b)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 30), st.integers(1, 40), st.floats(0.0, 1.0), st.floats(0.0, 1.0),
       st.integers(0, 2**32 - 1))
def test_interval_algebra_on_random_masks(Lq, Lk, da, db, seed):
    """Union and intersection of maximal interval sets are the masks' | and &, and maximal."""
    rng = np.random.default_rng(seed)
    a, b = rng.random((Lq, Lk)) < da, rng.random((Lq, Lk)) < db
    ia, ib = intervals_from_mask(a), intervals_from_mask(b)
    for got, want in ((analysis.union(ia, ib), a | b), (analysis.intersection(ia, ib), a & b)):
        truth = intervals_from_mask(want)
        for f in ("row", "start", "stop"):
            assert np.array_equal(getattr(got, f), getattr(truth, f))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(1, 40), st.integers(0, 60), st.integers(0, 2**32 - 1))
def test_merge_of_any_intervals_is_their_union(Lq, Lk, n, seed):
    """intervals_from_acsr's merge: intervals in any order, overlapping, touching or nested,
    become the maximal intervals of the cells they cover."""
    from splat.analysis.intervals import _merge
    rng = np.random.default_rng(seed)
    row = rng.integers(0, Lq, n)
    start = rng.integers(0, Lk, n)
    stop = np.minimum(start + rng.integers(1, Lk + 1, n), Lk)
    mask = np.zeros((Lq, Lk), dtype=bool)
    for r, s, e in zip(row.tolist(), start.tolist(), stop.tolist()):
        mask[r, s:e] = True
    got, truth = _merge(Lq, Lk, row, start, stop), intervals_from_mask(mask)
    for f in ("row", "start", "stop"):
        assert np.array_equal(getattr(got, f), getattr(truth, f))


# -- vertical compression --------------------------------------------------------------------------

def _structured_mask(rng, L, C):
    """Bands of slope 0 / 1, blocks, noise, full columns and fixed-like blocks: affine stretches
    that meet each other (runs merging or crossing), which the compression must notice."""
    m = np.zeros((L, C), bool)
    i, j = np.arange(L)[:, None], np.arange(C)[None, :]
    for _ in range(rng.integers(1, 6)):
        kind = rng.integers(0, 6)
        if kind == 0:
            a0, a1 = rng.integers(0, 2, 2)
            b0, w = rng.integers(-L, C), rng.integers(1, 40)
            m |= (j >= a0 * i + b0) & (j < a1 * i + b0 + w)
        elif kind == 1:
            r0, c0 = rng.integers(0, L), rng.integers(0, C)
            h, w = rng.integers(1, 60, 2)
            m[r0:r0 + h, c0:c0 + w] = True
        elif kind == 2:
            m |= rng.random((L, C)) < rng.choice([0.0005, 0.01])
        elif kind == 3:
            m[:, rng.integers(0, C, rng.integers(1, 5))] = True
        elif kind == 4:
            B = int(rng.integers(8, 64))
            c = int(rng.integers(1, B))
            m |= ((i // B == j // B) & (j <= i)) | (j % B >= B - c)
        else:  # isolated cells on a lattice that stays or moves right (dilated, strided), in a band
            a, s = int(rng.integers(0, 2)), int(rng.integers(2, 40))
            lo, w = rng.integers(-L, C), rng.integers(s, 8 * s)
            m |= ((j - a * i) % s == 0) & (j >= int(rng.integers(0, 2)) * i + lo) & (j < i + lo + w)
    if rng.random() < 0.3:
        m[rng.integers(0, L):] = False
    return m


@pytest.mark.parametrize("seed", range(4))
def test_vertical_compression_changes_nothing(seed):
    """analyze(mask) leaves out rows that continue the rows around them affinely; the pieces
    must be exactly those of the uncompressed analysis (and the result exact), also where a
    left-out block fails verification or a piece with left-out rows goes to the remainder."""
    rng = np.random.default_rng(seed)
    for it in range(60):
        L = int(rng.choice([40, 100, 300]))
        C = int(rng.choice([L, 64, 128, 200, L + 37]))
        m = _structured_mask(rng, L, C)
        mp = int(rng.choice([1, 8, 40]))
        chunk = 64 * C if it % 3 == 0 else 1 << 23  # several chunks, or one
        a = acsr_from_mask(m, min_piece_nnz=mp, chunk_cells=chunk)
        b = acsr_from_mask(m, min_piece_nnz=mp, compress=False, chunk_cells=chunk)
        check(a, m)
        assert a == b, (seed, it)


@pytest.mark.parametrize("name", ["window", "causal_window", "fixed", "blocked", "longformer", "bigbird",
                                  "dilated", "strided", "global_tokens", "random_blocks"])
def test_vertical_compression_on_families(name):
    L = 1024
    p = {"window": P.window(32, L), "causal_window": P.causal_window(32, L), "fixed": P.fixed(64, 8, L),
         "blocked": P.blocked(64, L), "longformer": P.longformer(32, range(8), L),
         "bigbird": P.bigbird(24, range(8), 3, 16, 0, L), "dilated": P.dilated(40, 16, L),
         "strided": P.strided(32, 32, L), "global_tokens": P.global_tokens([3, 500], L),
         "random_blocks": P.random_blocks(32, 2, 0, L)}[name]
    m = p.mask()
    chunk = 200 * L  # chunks that cut stretches
    r = runs_from_mask(m, compress=True, chunk_cells=chunk)
    assert r.crow is not None and r.row.size < runs_from_mask(m, chunk_cells=chunk).row.size
    a = acsr_from_mask(m, chunk_cells=chunk)
    check(a, m)
    assert a == acsr_from_mask(m, compress=False, chunk_cells=chunk) == analyze(m)


@pytest.mark.parametrize("seed", range(3))
def test_fused_stride_check_matches_chaining(seed):
    """runs_from_mask checks the chunk's usual stride (guessed from sample rows, kept across
    chunks) without popcounts; rows that fail it (other strides, gaps, a broken progression,
    intervals inside the span) take the counted path.  The runs must be those of the plain
    chaining (runs_from_intervals), also across chunks where the stride changes, for word
    and non-word strides and both packing paths (Lk a multiple of 64 or not)."""
    rng = np.random.default_rng(seed)
    for it in range(12):
        L = int(rng.choice([256, 400]))
        C = int(rng.choice([L, L + 37, 512]))
        s = int(rng.choice([3, 4, 64, 128, 70]))
        i = np.arange(L)[:, None]
        j = np.arange(C)[None, :]
        m = ((i - j) % s == 0) & (j <= i)
        if it % 2:
            m[L // 2:] = ((i[L // 2:] - j) % (s + 1) == 0) & (j <= i[L // 2:])  # stride changes
        if it % 3 == 2:
            m = np.ascontiguousarray(m[:, ::-1])  # cells up to the last column (carries between rows)
        rows = rng.choice(L, size=L // 8, replace=False)
        for r in rows[: L // 32]:
            m[r, rng.integers(0, C)] ^= True  # broken progressions
        for r in rows[L // 32: L // 16]:
            m[r, :] = False
            m[r, rng.choice(C, size=2, replace=False)] = True  # two cells, any gap
        for r in rows[L // 16: L // 12]:
            a = int(rng.integers(0, C - 3))
            m[r, a:a + 3] = True  # an interval inside the span
        ref = runs_from_intervals(intervals_from_mask(m))
        got = runs_from_mask(m, chunk_cells=int(rng.choice([64 * C, 1 << 23])))
        for f in ("row", "off", "stride", "cnt"):
            assert np.array_equal(getattr(got, f), getattr(ref, f)), (seed, it, f)
        check(analyze(m), m)


def test_fused_stride_check_keeps_rows_apart():
    """The fused check shifts all rows as one flat array: the bits that the row above's last
    word carries into a row must not hide a cell (here a stray cell at column 66 under a cell
    at column 252 of the row above, stride 70)."""
    L, C, s = 128, 256, 70
    i = np.arange(L)[:, None]
    j = np.arange(C)[None, :]
    m = (j % s == i % s) & (j >= i % s)
    m[40, 252] = True
    m[41, 66] = True
    ref = runs_from_intervals(intervals_from_mask(m))
    got = runs_from_mask(m)
    for f in ("row", "off", "stride", "cnt"):
        assert np.array_equal(getattr(got, f), getattr(ref, f)), f
    check(analyze(m), m)


@pytest.mark.parametrize("seed", range(3))
def test_threaded_scan_matches_one_thread(monkeypatch, seed):
    """runs_from_mask splits the row chunks into one contiguous span per thread, each with its
    own buffers and carried stride; the runs (and the compressed rows) must not depend on how
    many threads scan, including spans that cut a piece or a left-out block."""
    rng = np.random.default_rng(seed)
    for it in range(20):
        L = int(rng.choice([100, 300]))
        C = int(rng.choice([L, 128, L + 37]))
        m = _structured_mask(rng, L, C)
        chunk = int(rng.choice([8, 32, 64])) * C
        got = {}
        for threads in ("1", "2", "5"):
            monkeypatch.setenv("SPLAT_ANALYSIS_THREADS", threads)
            got[threads] = (runs_from_mask(m, compress=True, chunk_cells=chunk),
                            acsr_from_mask(m, chunk_cells=chunk))
        r1, a1 = got["1"]
        check(a1, m)
        for threads in ("2", "5"):
            r, a = got[threads]
            assert a == a1, (seed, it, threads)
            for f in ("row", "off", "stride", "cnt", "crow", "gap"):
                x, y = getattr(r, f), getattr(r1, f)
                assert (x is None and y is None) or np.array_equal(x, y), (seed, it, threads, f)


@pytest.mark.parametrize("bad", ["0", "-2", "two"])
def test_bad_thread_count_is_named(monkeypatch, bad):
    monkeypatch.setenv("SPLAT_ANALYSIS_THREADS", bad)
    with pytest.raises(ValueError, match="SPLAT_ANALYSIS_THREADS"):
        analyze(np.eye(8, dtype=bool))


def test_copy_and_shift_rows_are_left_out_without_verification():
    """Rows that copy the row above or move it one column right are left out even with isolated
    cells (strided, dilated); the ramps' short stretches, regrouped by residue class, get their
    left-out rows back.  Pieces identical to the uncompressed analysis."""
    L = 2048
    for p in (P.strided(64, 64, L), P.dilated(20, 16, L), P.window(40, L) | P.dilated(20, 8, L)):
        m = p.mask()
        chunk = 256 * L
        r = runs_from_mask(m, compress=True, chunk_cells=chunk)
        full = runs_from_mask(m, chunk_cells=chunk)
        assert r.crow is not None and 2 * r.row.size < full.row.size
        a = acsr_from_mask(m, chunk_cells=chunk)
        b = acsr_from_mask(m, compress=False, chunk_cells=chunk)
        check(a, m)
        assert a == b and len(a.pieces) == len(p.acsr().pieces)


def test_shift_stops_at_the_last_column():
    """A row equal to the row above shifted right except for a cell that would move past the last
    column (Lk a multiple of 64) is not a shift."""
    L, C = 256, 128
    i, j = np.arange(L)[:, None], np.arange(C)[None, :]
    m = (j >= i % 100) & (j < i % 100 + 40) | (j == C - 1)
    a = acsr_from_mask(m, chunk_cells=64 * C)
    check(a, m)
    assert a == acsr_from_mask(m, compress=False, chunk_cells=64 * C)


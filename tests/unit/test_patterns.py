"""Pattern families: predicates against independent definitions, analytic ACSRs (exact, valid,
identical to the general analysis), combinators, from_mask / from_mask_fn, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from splat import patterns as P
from splat.patterns import families, pattern, pieces
from splat.analysis.acsr import ACSR
from splat.analysis import analyze
from splat.analysis.intervals import consecutive_runs


def grid(Lq, Lk):
    return np.arange(Lq)[:, None], np.arange(Lk)[None, :]


# Independent definitions written out from the family descriptions (numpy on index grids).
def reference(name, Lq, Lk, **kw):
    q, k = grid(Lq, Lk)
    d = q - k
    if name == "window":
        return np.abs(d) <= kw["w"]
    if name == "causal":
        return d >= 0
    if name == "causal_window":
        return (d >= 0) & (d <= kw["w"])
    if name == "dilated":
        return (np.abs(d) <= kw["w"] * kw["stride"]) & (d % kw["stride"] == 0)
    if name == "strided":
        return (d >= 0) & ((d < kw["local"]) | (d % kw["stride"] == 0))
    if name == "fixed":
        B = kw["block"]
        return (d >= 0) & ((q // B == k // B) | (k % B >= B - kw["summary"]))
    if name == "blocked":
        return q // kw["block"] == k // kw["block"]
    if name == "global_tokens":
        g = np.asarray(kw["idx"])
        return np.isin(q, g) | np.isin(k, g)
    raise KeyError(name)


def build(name, Lq, Lk, **kw):
    return getattr(P, name)(*kw.values(), Lq, Lk)


def check_exact(p: P.Pattern, m: np.ndarray):
    assert np.array_equal(p.mask(), m)
    a = p.acsr()
    a.validate()
    assert np.array_equal(a.to_mask(), m)
    assert a.nnz == int(m.sum())


# -- each family against its definition, over random sizes and parameters ----------------------

sizes = st.tuples(st.integers(1, 90), st.integers(1, 90))


@st.composite
def family(draw):
    name = draw(st.sampled_from(["window", "causal", "causal_window", "dilated", "strided", "fixed",
                                 "blocked", "global_tokens"]))
    small = st.integers(1, 12)
    kw = {"window": lambda: {"w": draw(small)},
          "causal": lambda: {},
          "causal_window": lambda: {"w": draw(small)},
          "dilated": lambda: {"w": draw(small), "stride": draw(st.integers(1, 6))},
          "strided": lambda: {"local": draw(small), "stride": draw(st.integers(1, 9))},
          "fixed": lambda: (lambda B: {"block": B, "summary": draw(st.integers(1, B))})(draw(st.integers(1, 16))),
          "blocked": lambda: {"block": draw(st.integers(1, 20))},
          "global_tokens": lambda: {"idx": draw(st.lists(st.integers(0, 30), min_size=1, max_size=5))},
          }[name]()
    return name, kw


@settings(max_examples=150, deadline=None)
@given(family(), sizes)
def test_family_analytic_acsr_is_exact(fam, shape):
    name, kw = fam
    Lq, Lk = shape
    if name == "global_tokens":
        kw = {"idx": [g for g in kw["idx"] if g < max(Lq, Lk)] or [0]}
    p = build(name, Lq, Lk, **kw)
    assert p.analytic
    check_exact(p, reference(name, Lq, Lk, **kw))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.integers(1, 3), st.integers(0, 1000), sizes)
def test_random_blocks(block, per_row, seed, shape):
    Lq, Lk = shape
    p = P.random_blocks(block, per_row, seed, Lq, Lk)
    m = p.mask()
    check_exact(p, m)
    # every row block sees min(per_row, #column blocks) whole column blocks
    ncb = -(-Lk // block)
    for rb in range(-(-Lq // block)):
        row = m[rb * block]
        blocks = {c // block for c in np.flatnonzero(row)}
        assert len(blocks) == min(per_row, ncb)
        assert all(row[b * block:(b + 1) * block].all() for b in blocks)
    assert np.array_equal(P.random_blocks(block, per_row, seed, Lq, Lk).mask(), m)  # reproducible


# -- analytic == general analysis, as ACSR content ---------------------------------------------

L = 384
STRUCTURAL = [
    P.window(16, L), P.window(5, L),
    P.causal(L), P.causal_window(7, L),
    P.dilated(8, 4, L), P.dilated(3, 8, L), P.dilated(5, 5, L), P.dilated(4, 1, L),
    P.strided(16, 8, L), P.strided(13, 8, L), P.strided(16, 16, L), P.strided(1, 4, L),
    P.strided(100, 64, 1000), P.strided(64, 100, 1000), P.strided(128, 128, 1000),
    P.fixed(32, 4, L), P.fixed(32, 1, L), P.fixed(24, 24, L),
    P.blocked(32, L), P.blocked(50, L),
    P.global_tokens(range(4), L), P.global_tokens([7, 100, 193, 286], L), P.global_tokens([10, 11, 200], L),
    P.random_blocks(32, 2, 0, L), P.random_blocks(16, 3, 7, L),
]


@pytest.mark.parametrize("p", STRUCTURAL, ids=lambda p: p.name)
def test_analytic_equals_general_analysis(p):
    m = p.mask()
    general = analyze(m)
    assert general.remainder is None
    assert p.acsr() == general


# Piece counts for Lq = Lk = L >> parameters (docs/acsr.md and the splat.analysis docstring).
DOCUMENTED_COUNTS = [
    (P.window(16, 1000), 3),
    (P.causal(1000), 1),
    (P.causal_window(16, 1000), 2),
    (P.dilated(8, 4, 1000), 1 + 2 * 4),     # 1 + 2 min(w, s)
    (P.dilated(3, 8, 1000), 1 + 2 * 3),
    (P.strided(16, 8, 1000), 2 + 8),        # 2 + s
    (P.strided(13, 8, 1000), 2 + 8),
    (P.strided(100, 64, 1000), 2 + 14),    # 2 + min(s, ceil((L - top) / s)), top = 128
    (P.fixed(50, 4, 1000), 2 * 20 - 2),     # 2 nb - 2
    (P.blocked(50, 1000), 20),              # nb
    (P.global_tokens(range(8), 1000), 2),
    (P.longformer(16, range(8), 1000), 5),
]


@pytest.mark.parametrize("p, count", DOCUMENTED_COUNTS, ids=lambda x: getattr(x, "name", str(x)))
def test_documented_piece_counts(p, count):
    a = p.acsr()
    assert len(a.pieces) == count and a.remainder is None
    if p.analytic:
        assert len(analyze(p.mask()).pieces) == count


# -- combinators -------------------------------------------------------------------------------

def test_union_and_intersection():
    Lq, Lk = 70, 53
    a, b = P.window(3, Lq, Lk), P.dilated(4, 5, Lq, Lk)
    ma, mb = a.mask(), b.mask()
    for p, m in ((a | b, ma | mb), (a & b, ma & mb), ((a | b) & P.causal(Lq, Lk), (ma | mb) & P.causal(Lq, Lk).mask())):
        assert not p.analytic and p.analytic_acsr() is None
        check_exact(p, m)
    assert "|" in (a | b).name and "&" in (a & b).name


def test_longformer_and_bigbird():
    Lq = 150
    lf = P.longformer(4, [0, 75], Lq)
    check_exact(lf, reference("window", Lq, Lq, w=4) | reference("global_tokens", Lq, Lq, idx=[0, 75]))
    bb = P.bigbird(4, [0], 2, 16, 3, Lq)
    rb = P.random_blocks(16, 2, 3, Lq).mask()
    check_exact(bb, reference("window", Lq, Lq, w=4) | reference("global_tokens", Lq, Lq, idx=[0]) | rb)
    assert "longformer" in lf.describe() and "bigbird" in bb.describe()



def reference_union(Lq, Lk, w, globals_, block=None, chosen=None):
    """window(w) | global_tokens(globals_) | random blocks, from the definitions."""
    m = reference("window", Lq, Lk, w=w) | reference("global_tokens", Lq, Lk, idx=list(globals_))
    if chosen is not None:
        m |= chosen
    return m


@st.composite
def union_params(draw):
    Lq, Lk = draw(st.integers(1, 80)), draw(st.integers(1, 80))
    w = draw(st.integers(1, 100))  # windows larger than L included
    n = max(Lq, Lk)
    g = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=7))  # any order, duplicates
    return Lq, Lk, w, g


@settings(max_examples=300, deadline=None)
@given(union_params(), st.integers(1, 13), st.integers(1, 4), st.integers(0, 10**6), st.booleans())
def test_longformer_bigbird_analytic_exact(params, block, per_row, seed, big):
    Lq, Lk, w, g = params
    if big:
        p = P.bigbird(w, g, per_row, block, seed, Lq, Lk)
        m = reference_union(Lq, Lk, w, g) | P.random_blocks(block, per_row, seed, Lq, Lk).mask()
    else:
        p = P.longformer(w, g, Lq, Lk)
        m = reference_union(Lq, Lk, w, g)
    assert p.analytic
    a = p.acsr()
    a.validate()  # in bounds, counts >= 0, pieces (and remainder) disjoint
    assert np.array_equal(a.to_mask(), m)
    assert a.nnz == int(m.sum())


def test_longformer_bigbird_analytic_loops():
    rng = np.random.default_rng(5)
    for _ in range(60):
        Lq, Lk = (int(x) for x in rng.integers(40, 400, size=2))
        w = int(rng.integers(1, 120))
        g = rng.integers(0, max(Lq, Lk), size=int(rng.integers(1, 40))).tolist()
        if rng.random() < 0.3:
            g += list(range(int(rng.integers(0, 30))))  # a contiguous block of globals too
        block, per_row, seed = int(rng.integers(3, 70)), int(rng.integers(1, 5)), int(rng.integers(0, 999))
        for p, m in ((P.longformer(w, g, Lq, Lk), reference_union(Lq, Lk, w, g)),
                     (P.bigbird(w, g, per_row, block, seed, Lq, Lk),
                      reference_union(Lq, Lk, w, g) | P.random_blocks(block, per_row, seed, Lq, Lk).mask())):
            a = p.acsr()
            a.validate()
            assert np.array_equal(a.to_mask(), m), p.name


def test_longformer_bigbird_piece_counts():
    # reasonably few pieces: no more than the general analysis of the mask finds
    for p in (P.longformer(64, range(16), 1024), P.longformer(40, [3, 900, 7, 500], 1000, 900),
              P.bigbird(64, range(64), 3, 64, 0, 1024), P.bigbird(48, [5, 700, 701], 2, 32, 1, 1000, 1100)):
        a, general = p.acsr(), analyze(p.mask())
        assert len(a.pieces) + (a.remainder.n if a.remainder else 0) <= \
            len(general.pieces) + (general.remainder.n if general.remainder else 0), p.name


def test_combining_different_shapes_fails():
    with pytest.raises(ValueError, match="cannot combine"):
        P.causal(10) | P.causal(10, 11)


# -- masks and mask functions ------------------------------------------------------------------

def test_from_mask():
    rng = np.random.default_rng(1)
    m = rng.random((33, 47)) < 0.3
    p = P.from_mask(m)
    assert (p.Lq, p.Lk) == (33, 47)
    check_exact(p, m)
    m[0, 0] = not m[0, 0]  # the pattern holds a copy
    assert p.mask()[0, 0] != m[0, 0]


def test_from_mask_fn_is_chunked(monkeypatch):
    monkeypatch.setattr(pattern, "_CHUNK_CELLS", 64 * 10)
    calls = []

    def fn(q, k):
        calls.append(q.shape[0])
        return (q - k) % 7 == 0

    p = P.from_mask_fn(fn, 100, 64)
    check_exact(p, reference("dilated", 100, 64, w=100, stride=7))
    assert max(calls) == 10


@pytest.mark.parametrize("fn, exc, msg", [
    (lambda q, k: (q - k).astype(np.int8), TypeError, "bool"),
    (lambda q, k: np.ones((1, 1), bool), ValueError, "shape"),
    (lambda q, k: True, TypeError, "bool ndarray"),
])
def test_from_mask_fn_bad_return(fn, exc, msg):
    p = P.from_mask_fn(fn, 10, 12)
    with pytest.raises(exc, match=msg):
        p.mask()
    with pytest.raises(exc, match=msg):
        p.acsr()


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make, exc, msg", [
    (lambda: P.window(0, 10), ValueError, "w must be >= 1"),
    (lambda: P.window(-3, 10), ValueError, "w must be >= 1"),
    (lambda: P.window(2.5, 10), TypeError, "w must be an int"),
    (lambda: P.window(2, 0), ValueError, "Lq must be >= 1"),
    (lambda: P.window(2, 10, -1), ValueError, "Lk must be >= 1"),
    (lambda: P.causal(10, 0), ValueError, "Lk must be >= 1"),
    (lambda: P.causal_window(0, 10), ValueError, "w must be >= 1"),
    (lambda: P.dilated(2, 0, 10), ValueError, "stride must be >= 1"),
    (lambda: P.strided(0, 2, 10), ValueError, "local must be >= 1"),
    (lambda: P.strided(2, -2, 10), ValueError, "stride must be >= 1"),
    (lambda: P.fixed(0, 1, 10), ValueError, "block must be >= 1"),
    (lambda: P.fixed(4, 0, 10), ValueError, "summary must be >= 1"),
    (lambda: P.fixed(4, 5, 10), ValueError, "summary must be <= block"),
    (lambda: P.blocked(0, 10), ValueError, "block must be >= 1"),
    (lambda: P.global_tokens([3, 10], 10), ValueError, r"idx must lie in \[0, 10\)"),
    (lambda: P.global_tokens([-1], 10), ValueError, "idx must lie in"),
    (lambda: P.global_tokens([[1]], 10), TypeError, "1-D sequence of ints"),
    (lambda: P.global_tokens([1.5], 10), TypeError, "1-D sequence of ints"),
    (lambda: P.random_blocks(0, 1, 0, 10), ValueError, "block must be >= 1"),
    (lambda: P.random_blocks(4, 0, 0, 10), ValueError, "per_row must be >= 1"),
    (lambda: P.random_blocks(4, 1, -1, 10), ValueError, "seed must be >= 0"),
    (lambda: P.longformer(0, [1], 10), ValueError, "w must be >= 1"),
    (lambda: P.longformer(2, [10], 10), ValueError, "must lie in"),
    (lambda: P.bigbird(2, [1], 0, 4, 0, 10), ValueError, "per_row must be >= 1"),
    (lambda: P.from_mask(np.ones((3, 3), np.int8)), TypeError, "dtype bool"),
    (lambda: P.from_mask(np.ones((3, 3, 3), bool)), ValueError, "2-D"),
    (lambda: P.from_mask(np.ones((0, 3), bool)), ValueError, "Lq >= 1"),
    (lambda: P.from_mask([[True]]), TypeError, "ndarray"),
    (lambda: P.from_mask_fn("q<k", 10), TypeError, "callable"),
    (lambda: P.from_mask_fn(lambda q, k: q >= k, 0), ValueError, "Lq must be >= 1"),
])
def test_bad_input(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()


def test_describe_and_repr():
    p = P.dilated(2, 3, 20, 30)
    assert p.describe() == "dilated(w=2, stride=3) [20x30, analytic]"
    assert "analysed" in (p | P.causal(20, 30)).describe()
    assert repr(p).startswith("<Pattern dilated")
    assert isinstance(p.acsr(), ACSR)


# -- pictures ----------------------------------------------------------------------------------

def test_viz_labels_and_png(tmp_path):
    from splat import viz

    p = P.dilated(3, 4, 60, 50) | P.global_tokens([7], 60, 50)
    a = analyze(p, block=8)
    labels = viz.label_image(a)
    assert np.array_equal(labels != -1, p.mask())
    assert set(np.unique(labels)) <= set(range(-2, len(a.pieces)))
    pytest.importorskip("matplotlib")
    out = tmp_path / "d.png"
    viz.plot(p, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert viz.main(["window", "--L", "40", "-o", str(tmp_path / "w.png")]) == 0
    with pytest.raises(ValueError, match="unknown family"):
        viz.family("nope", 10)


# -- internal fast paths of the analytic constructors ------------------------------------------

def test_fast_helpers_match_plain_numpy():
    rng = np.random.default_rng(5)
    for n, hi in ((0, 10), (1, 10), (50, 3), (1000, 10**6)):
        key = rng.integers(0, hi, n)
        assert np.array_equal(pieces._stable_order(key, hi), np.argsort(key, kind="stable"))
        assert np.array_equal(pieces._stable_order(key, 1 << 62), np.argsort(key, kind="stable"))  # fallback
        assert np.array_equal(pieces._unique(key), np.unique(key))
        s0, s1 = consecutive_runs(np.unique(key))
        assert [(a, b) for a, b in zip(s0.tolist(), s1.tolist())] == families._runs_of(np.unique(key))
    for nrb, ncb, r, B, Lk in ((1, 1, 1, 4, 3), (7, 9, 3, 5, 43), (40, 12, 5, 8, 90)):
        idx = np.sort(np.stack([rng.choice(ncb, r, replace=False) for _ in range(nrb)]), axis=1)
        rb, c0, c1 = pieces._block_runs(idx, B, Lk)
        ref = [(b, s * B, min((e + 1) * B, Lk)) for b in range(nrb) for s, e in
               ((a, b_ - 1) for a, b_ in families._runs_of(idx[b]))]
        assert list(zip(rb.tolist(), c0.tolist(), c1.tolist())) == ref


def test_trusted_acsr_equals_checked_constructor():
    a = P.bigbird(1, [5], 2, 4, 0, 40).acsr()  # has pieces and a remainder (tiny pieces)
    assert a.remainder is not None
    b = ACSR(a.Lq, a.Lk, list(a.pieces), a.remainder)
    t = ACSR._trusted(a.Lq, a.Lk, a.pieces, a.remainder)
    assert t == b and t.pieces == b.pieces and type(t.pieces) is tuple and t.table.shape == b.table.shape
    empty = type(a.remainder)(a.remainder.block, np.zeros((0, 2), np.int32),
                              np.zeros((0, a.remainder.block, a.remainder.block), bool))
    assert ACSR._trusted(a.Lq, a.Lk, a.pieces, empty).remainder is None
    assert ACSR(a.Lq, a.Lk, a.pieces, empty).remainder is None
    with pytest.raises(TypeError, match="must be a Piece"):  # the public constructor still checks
        ACSR(a.Lq, a.Lk, a.pieces + ((1, 2),))

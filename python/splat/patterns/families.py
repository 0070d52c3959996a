"""The named pattern families (window, causal, dilated, strided, blocked, documents, global
tokens, Longformer, BigBird, ...) and patterns of arbitrary masks or predicates; each
returns a :class:`~splat.patterns.pattern.Pattern` (package docstring)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import analysis
from ..analysis.acsr import ACSR, Piece
from .pattern import Pattern, _int, _sizes
from .pieces import _band, _greedy_track, _piece, _acsr, _rect_table, _block_runs, _union_acsr

# ---------------------------------------------------------------------------------------------
# Named families
# ---------------------------------------------------------------------------------------------

def window(w: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Sliding window: ``|q - k| <= w``."""
    w = _int("w", w)
    Lq, Lk = _sizes(Lq, Lk)
    return Pattern(Lq, Lk, lambda q, k: np.abs(q - k) <= w, name=f"window(w={w})",
                   analytic=lambda: _acsr(Lq, Lk, _band(Lk, 0, Lq, 1, 1, (1, -w), (1, w))))


def causal(Lq: int, Lk: int | None = None) -> Pattern:
    """Causal: ``k <= q``."""
    Lq, Lk = _sizes(Lq, Lk)
    return Pattern(Lq, Lk, lambda q, k: k <= q, name="causal",
                   analytic=lambda: _acsr(Lq, Lk, _band(Lk, 0, Lq, 1, 1, (0, 0), (1, 0))))


def causal_window(w: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Causal sliding window: ``0 <= q - k <= w``."""
    w = _int("w", w)
    Lq, Lk = _sizes(Lq, Lk)
    return Pattern(Lq, Lk, lambda q, k: (q - k >= 0) & (q - k <= w), name=f"causal_window(w={w})",
                   analytic=lambda: _acsr(Lq, Lk, _band(Lk, 0, Lq, 1, 1, (1, -w), (1, 0))))


def dilated(w: int, stride: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Dilated window: ``|q - k| <= w*stride`` and ``(q - k) % stride == 0``."""
    w, s = _int("w", w), _int("stride", stride)
    Lq, Lk = _sizes(Lq, Lk)
    reach = w * s

    def build():
        if s == 1:
            return _acsr(Lq, Lk, _band(Lk, 0, Lq, 1, 1, (1, -reach), (1, reach)))
        # Body: rows never clipped, one row_step-1 piece; the ramps above and below it are
        # affine per residue class of the row.  When w <= s the ramps are cut into stretches of
        # s rows instead (fewer pieces), as the analysis does.
        b0, b1 = reach, min(Lq, Lk - reach)
        if b0 >= b1:
            b0 = b1 = min(reach, Lq)
        pieces = _band(Lk, b0, b1, 1, s, (1, -reach), (1, reach)) if b0 < b1 else []
        if w <= s and Lq == Lk and Lk >= 2 * reach:
            # Unclipped square case in closed form: top-ramp stretch j (rows js .. js+s-1)
            # holds columns i mod s, +s, ... (count w+1+j); bottom-ramp stretch j starts at
            # row Lk - reach + js, columns from i - reach (count 2w - j).
            top = [(j * s, j * s + s, 1, -j * s, 0, w + 1 + j) for j in range(w)]
            bottom = [(b1 + j * s, b1 + j * s + s, 1, -reach, 0, 2 * w - j) for j in range(w)]
            return _acsr(Lq, Lk, pieces + _greedy_track(top, 0, 1, s) + _greedy_track(bottom, 0, 1, s))
        for lo_row, hi_row in ((0, b0), (b1, Lq)):
            pieces += _dilated_ramp(Lk, lo_row, hi_row, w, s)
        return _acsr(Lq, Lk, pieces)

    return Pattern(Lq, Lk, lambda q, k: (np.abs(q - k) <= reach) & ((q - k) % s == 0),
                   name=f"dilated(w={w}, stride={s})", analytic=build)


def _dilated_ramp(Lk, r0, r1, w, s) -> list[Piece]:
    if r0 >= r1:
        return []
    per_residue = [p for rho in range(r0, min(r1, r0 + s))
                   for p in _band(Lk, rho, r1, s, s, (1, -w * s), (1, w * s))]
    if w > s:
        return per_residue
    # Stretches of s consecutive rows: exact only where the analysis would see one track of
    # row_step 1, which needs the residue-wise clipping to be affine inside each stretch; take
    # them when they are valid and fewer.
    blocks = _dilated_blocks(Lk, r0, r1, w, s)
    return blocks if blocks is not None and len(blocks) <= len(per_residue) else per_residue


def _dilated_blocks(Lk, r0, r1, w, s) -> list[Piece] | None:
    """Row_step-1 cut of a clipped dilated ramp (Lq != Lk or L < 2*w*s).  Builds (offset, count)
    row by row over the ramp and lets the greedy cutter group them; ramps over 8192 rows fall back
    to residue pieces (exact too, maybe more of them than the analysis finds)."""
    if r1 - r0 > 8192:  # keep the per-row form affordable; per-residue pieces are exact too
        return None
    i = np.arange(r0, r1, dtype=np.int64)
    lo = np.where(i - w * s >= 0, i - w * s, i % s)
    hi_raw = np.minimum(i + w * s, Lk - 1)
    hi = hi_raw - (hi_raw - i) % s
    cnt = np.where(hi >= lo, (hi - lo) // s + 1, 0)
    if (cnt <= 0).any():
        return None
    regimes = [(t, t + 1, 0, int(lo[t]), 0, int(cnt[t])) for t in range(i.size)]
    pieces = _greedy_track(regimes, r0, 1, s)
    return pieces


def strided(local: int, stride: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Sparse Transformer "strided": causal, and ``q - k < local`` or ``(q - k) % stride == 0``."""
    l, s = _int("local", local), _int("stride", stride)
    Lq, Lk = _sizes(Lq, Lk)

    def build():
        if s == 1:
            return causal(Lq, Lk).analytic_acsr()
        # When stride divides local, the stride element k = q - local touches the local window
        # and joins it (the analysis sees one interval), otherwise the stride part stops below.
        merged = l % s == 0
        width = l if merged else l - 1
        top = l + s if merged else s * -(-l // s)  # distance of the highest separate element
        if l == 1:  # the local window is the diagonal alone: it chains with the stride part
            width, top = -1, 0
        pieces = _band(Lk, 0, Lq, 1, 1, (1, -width), (1, 0)) if width >= 0 else []
        return _acsr(Lq, Lk, pieces + _strided_part(Lq, Lk, s, top))

    return Pattern(Lq, Lk, lambda q, k: (q >= k) & ((q - k < l) | ((q - k) % s == 0)),
                   name=f"strided(local={l}, stride={s})", analytic=build)


def _strided_part(Lq, Lk, s, top) -> list[Piece]:
    """Columns ``k = q - top - m*s >= 0`` (``top`` a multiple of s): one piece per residue class
    of the row (offset = residue, count grows by one per class row), or one per aligned block of
    s rows (offset grows by one per row, count constant) - whichever is fewer, as the analysis
    chooses.  The block form needs the columns unclipped by Lk."""
    def residue():
        return [p for rho in range(min(s, Lq))
                for p in _band(Lk, rho, Lq, s, s, (1, -(Lq + Lk) * s), (1, -top))]

    # Unclipped, each residue class with rows past `top` is one piece and each block is one.
    if Lq - top > Lk or top >= Lq or -(-(Lq - top) // s) > min(s, Lq - top):
        return residue()
    regimes = [(j * s, min(Lq, j * s + s), 1, -j * s, 0, j - top // s + 1)
               for j in range(top // s, -(-Lq // s))]
    if s >= 3:
        # Every block but the last has >= 3 rows on one line, and the next block's first row is
        # never on it (the offset drops back by s - 1): the greedy cut is one piece per block.
        return [_piece(0, 1, s, t0, t1 - t0, oa, oa * t0 + ob, ca, ca * t0 + cb)
                for t0, t1, oa, ob, ca, cb in regimes]
    return _greedy_track(regimes, 0, 1, s)


def fixed(block: int, summary: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Sparse Transformer "fixed": causal, and same block or ``k % block >= block - summary``."""
    B, c = _int("block", block), _int("summary", summary)
    if c > B:
        raise ValueError(f"summary must be <= block ({B}), got {c}")
    Lq, Lk = _sizes(Lq, Lk)

    def build():
        if c == B:
            return causal(Lq, Lk).analytic_acsr()
        nb = -(-Lq // B)
        if Lq <= Lk:  # no triangle is clipped: the whole table at once, O(L / B) numpy
            return ACSR._from_table(Lq, Lk, _fixed_table(B, c, Lq, Lk), check=False)
        pieces = []
        for b in range(nb):
            # own block, joined with the summary columns of the block before (they touch)
            lo = 0 if b == 0 else b * B - c
            r1 = min(Lq, b * B + B)
            if r1 <= Lk:  # unclipped: one triangle, written directly (this loop is O(L / B))
                pieces.append(_piece(b * B, 1, 1, 0, r1 - b * B, 0, lo, 1, b * B - lo + 1))
            else:
                pieces += _band(Lk, b * B, r1, 1, 1, (0, lo), (1, 0))
        if c == 1:
            # one summary column per block: the analysis chains them into a stride-B run per
            # row block (count = summary columns left of the block before, clipped to Lk)
            n_cols = 0 if Lk < B else (Lk - B) // B + 1
            for b in range(2, nb):
                n = min(b - 1, n_cols)
                if n > 0:
                    pieces.append(_piece(b * B, 1, B, 0, min(Lq, b * B + B) - b * B, 0, B - 1, 0, n))
            return _acsr(Lq, Lk, pieces)
        for j in range(nb - 2):
            # summary of block j, seen by every row two blocks on
            c0, c1 = j * B + B - c, min(j * B + B, Lk)
            if c0 < c1:
                pieces.append(Piece((j + 2) * B, Lq, 1, 1, 0, c0, 0, c1 - c0))
        return _acsr(Lq, Lk, pieces)

    return Pattern(Lq, Lk, lambda q, k: (q >= k) & ((q // B == k // B) | (k % B >= B - c)),
                   name=f"fixed(block={B}, summary={c})", analytic=build)


def _fixed_table(B: int, c: int, Lq: int, Lk: int) -> np.ndarray:
    """Canonical piece table of ``fixed(B, c < B)`` with ``Lq <= Lk``: the loops of ``fixed``'s
    general construction, vectorised (same pieces, same order)."""
    I64 = np.int64
    nb = -(-Lq // B)
    b = np.arange(nb, dtype=I64)
    r0 = b * B
    T = np.minimum(Lq, r0 + B) - r0
    lo = np.where(b == 0, 0, r0 - c)
    tri = np.stack([r0, r0 + T, np.ones(nb, I64), np.ones(nb, I64), np.zeros(nb, I64), lo,
                    (T > 1).astype(I64), r0 - lo + 1], axis=1)
    if c == 1:  # one stride-B run per row block of the summary columns left of the block before
        n_cols = 0 if Lk < B else (Lk - B) // B + 1
        bb = b[2:]
        n = np.minimum(bb - 1, n_cols)
        bb, n = bb[n > 0], n[n > 0]
        m = bb.size
        Ts = np.minimum(Lq, bb * B + B) - bb * B
        summ = np.stack([bb * B, bb * B + Ts, np.ones(m, I64), np.where(n > 1, B, 1), np.zeros(m, I64),
                         np.full(m, B - 1, I64), np.zeros(m, I64), n], axis=1)
    else:  # summary of block j, seen by every row two blocks on
        j = b[:max(nb - 2, 0)]
        c0, c1 = j * B + B - c, np.minimum(j * B + B, Lk)
        j, c0, c1 = j[c0 < c1], c0[c0 < c1], c1[c0 < c1]
        m = j.size
        summ = np.stack([(j + 2) * B, np.full(m, Lq, I64), np.ones(m, I64), np.ones(m, I64),
                         np.zeros(m, I64), c0, np.zeros(m, I64), c1 - c0], axis=1)
    return np.concatenate([tri, summ.reshape(-1, 8)])


def blocked(block: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Block diagonal: ``q // block == k // block``."""
    B = _int("block", block)
    Lq, Lk = _sizes(Lq, Lk)

    def build():
        pieces = []
        for b in range(-(-min(Lq, Lk) // B)):
            r0, r1, c1 = b * B, min(Lq, b * B + B), min(Lk, b * B + B)
            pieces.append(_piece(r0, 1, 1, 0, r1 - r0, 0, r0, 0, c1 - r0))
        return _acsr(Lq, Lk, pieces)

    return Pattern(Lq, Lk, lambda q, k: q // B == k // B, name=f"blocked(block={B})", analytic=build)


def documents(lengths, Lq: int | None = None, Lk: int | None = None, *,
              causal: bool = False) -> Pattern:
    """Packed documents: a query sees the keys of its own document (``causal``: only those not
    after it). ``lengths`` are the documents' lengths in order; they must sum to at most
    ``min(Lq, Lk)`` (default: their sum); rows and keys past the last document see nothing.
    One piece per document, built in O(documents): a new layout every training step costs
    no mask evaluation."""
    lens = np.asarray(lengths)
    if lens.ndim != 1 or lens.size == 0 or not np.issubdtype(lens.dtype, np.integer):
        raise ValueError(f"lengths must be a non-empty 1-D sequence of ints, got {lengths!r:.80}")
    if (lens < 1).any():
        raise ValueError("lengths must all be >= 1")
    total = int(lens.sum())
    Lq, Lk = _sizes(total if Lq is None else Lq, Lk)
    if total > min(Lq, Lk):
        raise ValueError(f"lengths sum to {total}, more than min(Lq, Lk) = {min(Lq, Lk)}")
    ends = np.cumsum(lens.astype(np.int64))
    starts = ends - lens

    def document(x):  # document of each position, -1 past the last (no table of L entries)
        return np.where(x < total, np.searchsorted(ends, x, side="right"), -1)

    def contains(q, k):
        dq, dk = document(q), document(k)
        same = (dq == dk) & (dq >= 0)
        return same & (k <= q) if causal else same

    def build():
        pieces = [_piece(r0, 1, 1, 0, r1 - r0, 0, r0, 1 if causal else 0, 1 if causal else r1 - r0)
                  for r0, r1 in zip(starts.tolist(), ends.tolist())]
        return _acsr(Lq, Lk, pieces)

    kind = "causal_documents" if causal else "documents"
    return Pattern(Lq, Lk, contains, name=f"{kind}(n={lens.size}, total={total})", analytic=build)


def prefix_lm(prefix: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Prefix LM: every query sees the first ``prefix`` keys; past them, attention is causal
    (``k < prefix or k <= q``)."""
    P = _int("prefix", prefix, minimum=0)
    Lq, Lk = _sizes(Lq, Lk)

    def build():
        # rows below the prefix see [0, prefix); the others [0, max(prefix, q + 1))
        head = _band(Lk, 0, min(P, Lq), 1, 1, (0, 0), (0, P - 1)) if P else []
        tail = _band(Lk, min(P, Lq), Lq, 1, 1, (0, 0), (1, 0))
        return _acsr(Lq, Lk, head + tail)

    return Pattern(Lq, Lk, lambda q, k: (k < P) | (k <= q), name=f"prefix_lm(prefix={P})",
                   analytic=build)


def chunked_causal(chunk: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Chunked causal attention: causal within chunks of ``chunk`` tokens
    (``q // chunk == k // chunk and k <= q``), one piece per chunk."""
    C = _int("chunk", chunk)
    Lq, Lk = _sizes(Lq, Lk)

    def build():
        pieces = []
        for r0 in range(0, min(Lq, Lk), C):
            pieces += _band(Lk, r0, min(Lq, r0 + C), 1, 1, (0, r0), (1, 0))
        return _acsr(Lq, Lk, pieces)

    return Pattern(Lq, Lk, lambda q, k: (q // C == k // C) & (k <= q),
                   name=f"chunked_causal(chunk={C})", analytic=build)


def _index_set(name: str, idx, limit: int) -> np.ndarray:
    arr = np.asarray(idx)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise TypeError(f"{name} must be a 1-D sequence of ints, got {arr.dtype} shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= limit):
        raise ValueError(f"{name} must lie in [0, {limit}), got min {arr.min()} max {arr.max()}")
    return np.unique(arr.astype(np.int64))


def _runs_of(sorted_idx: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers as [start, stop) pairs."""
    if sorted_idx.size == 0:
        return []
    brk = np.flatnonzero(np.diff(sorted_idx) != 1) + 1
    starts = np.concatenate([[0], brk])
    stops = np.concatenate([brk, [sorted_idx.size]])
    return [(int(sorted_idx[a]), int(sorted_idx[b - 1]) + 1) for a, b in zip(starts, stops)]


def global_tokens(idx, Lq: int, Lk: int | None = None) -> Pattern:
    """Global tokens: rows in ``idx`` attend every key and every row attends the columns ``idx``
    (indices beyond Lq or Lk only act on the side where they exist)."""
    Lq, Lk = _sizes(Lq, Lk)
    g = _index_set("idx", idx, max(Lq, Lk))
    rows, cols = g[g < Lq], g[g < Lk]
    is_row = np.zeros(Lq, dtype=bool)
    is_row[rows] = True
    is_col = np.zeros(Lk, dtype=bool)
    is_col[cols] = True

    def build():
        # full rows, and per range of the other rows the column runs as the analysis splits a
        # row (intervals, equal-gap singletons chained into strided runs)
        return ACSR._from_table(Lq, Lk, analysis.cross_table(Lq, Lk, rows, cols), check=False)

    p = Pattern(Lq, Lk, lambda q, k: is_row[q] | is_col[k],
                name=f"global_tokens({_short(g)})", analytic=build)
    p._cross = (rows, cols)
    return p


def _short(g: np.ndarray) -> str:
    runs = _runs_of(g)
    return ",".join(f"{a}" if b == a + 1 else f"{a}:{b}" for a, b in runs[:4]) + (",..." if len(runs) > 4 else "")


def random_blocks(block: int, per_row: int, seed: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Each row block attends ``per_row`` distinct random column blocks (numpy
    ``default_rng(seed)``; reproducible)."""
    B, r = _int("block", block), _int("per_row", per_row)
    seed = _int("seed", seed, minimum=0)
    Lq, Lk = _sizes(Lq, Lk)
    nrb, ncb = -(-Lq // B), -(-Lk // B)
    rng = np.random.default_rng(seed)
    chosen = np.zeros((nrb, ncb), dtype=bool)
    idx = np.empty((nrb, min(r, ncb)), dtype=np.int64)
    for rb in range(nrb):
        idx[rb] = rng.choice(ncb, size=min(r, ncb), replace=False)
    idx.sort(axis=1)
    chosen[np.arange(nrb)[:, None], idx] = True

    def build():
        # Column runs of each row block; a run continues the piece above it when the analysis
        # would link it there (left/right alignment by least movement, as in
        # analysis.tracks.order_by_track) and it is the same run.  Only row blocks holding a run
        # equal to one of the block above can continue anything, so the alignment runs on those
        # few pairs only.
        rb, c0, c1 = _block_runs(idx, B, Lk)
        n = rb.size
        K = (Lk + 1) * (Lk + 1)
        key = rb * K + c0 * (Lk + 1) + c1  # ascending: row-block major, runs left to right
        q = key - K
        pos = np.minimum(np.searchsorted(key, q), n - 1)
        hit = np.flatnonzero((rb > 0) & (key[pos] == q))
        head = np.arange(n)
        if hit.size:
            first = np.searchsorted(rb, np.arange(nrb + 1))
            runs = list(zip(c0.tolist(), c1.tolist()))
            for b in np.unique(rb[hit]).tolist():
                prev, cur = runs[first[b - 1]:first[b]], runs[first[b]:first[b + 1]]
                shift = _align(prev, cur)
                for k, run in enumerate(cur):
                    j = k - shift
                    if 0 <= j < len(prev) and prev[j] == run:
                        head[first[b] + k] = head[first[b - 1] + j]
        last = rb.copy()
        np.maximum.at(last, head, rb)
        h = np.flatnonzero(head == np.arange(n))
        tab = _rect_table(rb[h] * B, np.minimum(Lq, last[h] * B + B), c0[h], c1[h])
        return ACSR._from_table(Lq, Lk, tab, check=False)

    p = Pattern(Lq, Lk, lambda q, k: chosen[q // B, k // B],
                name=f"random_blocks(block={B}, per_row={r}, seed={seed})", analytic=build)
    p._chosen_idx = idx
    return p


def _align(prev: list[tuple[int, int]], cur: list[tuple[int, int]]) -> int:
    """The shift with which the analysis pairs run k of ``cur`` with run k - shift of ``prev``
    (runs are [start, stop) intervals; mirrors analysis.tracks.order_by_track)."""
    d = len(cur) - len(prev)

    def stats(sh):  # (#pairs that moved little, total movement)
        good = move = 0
        for k in range(len(cur)):
            if 0 <= k - sh < len(prev):
                do, dl = abs(cur[k][0] - prev[k - sh][0]), abs(cur[k][1] - prev[k - sh][1])
                good += do <= 4 or dl <= 4  # stride-1 runs: "near" is 2 + 2*stride
                move += do + dl
        return good, move

    shift = d if d and stats(d)[1] < stats(0)[1] else 0
    best = stats(shift)
    if best[0] < min(len(prev), len(cur)):
        for c in (d, -1, 1, d - 1, d + 1):
            g, m = stats(c)
            if g > best[0] or (g == best[0] and m < best[1]):
                shift, best = c, (g, m)
    return shift


def longformer(w: int, globals, Lq: int, Lk: int | None = None) -> Pattern:
    """Longformer: sliding window ``w`` plus global tokens (analytic ACSR: ``_union_acsr``)."""
    p = window(w, Lq, Lk) | global_tokens(globals, Lq, Lk)
    g = _index_set("globals", globals, max(p.Lq, p.Lk))
    p.name = f"longformer(w={w}, globals={_short(g)})"
    p._analytic = lambda: _union_acsr(p.Lq, p.Lk, int(w), g, None, None)
    p._intervals = None  # intervals come from the analytic ACSR
    return p


def bigbird(w: int, globals, random: int, block: int, seed: int, Lq: int, Lk: int | None = None) -> Pattern:
    """BigBird: sliding window ``w``, global tokens and ``random`` random blocks per row block
    (analytic ACSR: ``_union_acsr``)."""
    rbp = random_blocks(block, random, seed, Lq, Lk)
    p = window(w, Lq, Lk) | global_tokens(globals, Lq, Lk) | rbp
    g = _index_set("globals", globals, max(p.Lq, p.Lk))
    chosen = rbp._chosen_idx
    p.name = f"bigbird(w={w}, random={random}, block={block}, seed={seed})"
    p._analytic = lambda: _union_acsr(p.Lq, p.Lk, int(w), g, int(block), chosen)
    p._intervals = None
    return p


# ---------------------------------------------------------------------------------------------
# Arbitrary masks
# ---------------------------------------------------------------------------------------------

def from_mask(mask) -> Pattern:
    """A pattern from an explicit bool ``(Lq, Lk)`` ndarray (copied)."""
    m = analysis.check_mask(mask).copy()
    m.setflags(write=False)
    Lq, Lk = m.shape
    p = Pattern(Lq, Lk, lambda q, k: m[q, k], name=f"mask({Lq}x{Lk})",
                intervals=lambda: analysis.intervals_from_mask(m))
    p.mask_rows = lambda i0, i1: m[i0:i1]  # rows are already there
    return p


def from_mask_fn(fn: Callable, Lq: int, Lk: int | None = None, *, name: str | None = None) -> Pattern:
    """A pattern from a vectorised predicate ``fn(q_idx, k_idx) -> bool array``; it is called on
    row chunks with ``q_idx`` of shape ``(rows, 1)`` and ``k_idx`` of shape ``(1, Lk)`` and must
    return a bool array of shape ``(rows, Lk)``."""
    if not callable(fn):
        raise TypeError(f"fn must be callable fn(q_idx, k_idx) -> bool array, got {type(fn).__name__}")
    Lq, Lk = _sizes(Lq, Lk)

    def checked(q, k):
        out = fn(q, k)
        shape = np.broadcast_shapes(np.shape(q), np.shape(k))
        if not isinstance(out, np.ndarray) or out.dtype != np.bool_:
            raise TypeError(f"mask fn must return a bool ndarray, got "
                            f"{getattr(out, 'dtype', type(out).__name__)}")
        if out.shape != shape:
            raise ValueError(f"mask fn returned shape {out.shape}, expected {shape} "
                             f"(the broadcast of q_idx {np.shape(q)} and k_idx {np.shape(k)})")
        return out

    return Pattern(Lq, Lk, checked, name=name or getattr(fn, "__name__", "mask_fn"))

"""ACSR data model (docs/design.md section 1): pieces, remainder, materialisation, validation,
text and dict round trips."""

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from splat.analysis.acsr import ACSR, BlockRemainder, Piece, pieces_from_table


def brute_mask(a: ACSR) -> np.ndarray:
    """Reference materialisation straight from the definitions, element by element."""
    m = np.zeros((a.Lq, a.Lk), dtype=bool)
    for p in a.pieces:
        for t in range(p.T):
            i = p.r0 + p.row_step * t
            for j in range(p.cnt_a * t + p.cnt_b):
                m[i, p.off_a * t + p.off_b + p.stride * j] = True
    if a.remainder is not None:
        B = a.remainder.block
        for (rb, cb), blk in zip(a.remainder.blocks, a.remainder.masks):
            for r, c in np.argwhere(blk):
                m[rb * B + r, cb * B + c] = True
    return m


def window3(L=10, w=2) -> ACSR:
    return ACSR(L, L, (Piece(0, w, 1, 1, 0, 0, 1, w + 1),
                       Piece(w, L - w, 1, 1, 1, 0, 0, 2 * w + 1),
                       Piece(L - w, L, 1, 1, 1, L - 2 * w, -1, 2 * w)))


def test_piece_geometry():
    p = Piece(3, 12, 4, 2, 1, 5, -1, 4)  # rows 3, 7, 11
    assert p.T == 3 and p.last_row == 11
    assert p.rows().tolist() == [3, 7, 11]
    assert p.offsets().tolist() == [5, 6, 7]
    assert p.counts().tolist() == [4, 3, 2]
    assert p.columns(1).tolist() == [6, 8, 10]
    assert p.nnz == 9
    assert p.local_row(7) == 1 and p.local_row(8) is None and p.local_row(15) is None
    with pytest.raises(IndexError):
        p.columns(3)


def test_window_pieces_materialise():
    a = window3().validate()
    q, k = np.indices((10, 10))
    assert np.array_equal(a.to_mask(), np.abs(q - k) <= 2)
    assert a.nnz == int((np.abs(q - k) <= 2).sum())
    assert a.max_row_nnz == 5
    assert a.row_columns(0).tolist() == [0, 1, 2]
    assert a.row_columns(5).tolist() == [3, 4, 5, 6, 7]
    assert a.density == pytest.approx(a.nnz / 100)


def test_mask_rows_and_chunks_agree_with_to_mask():
    a = window3(37, 4)
    full = a.to_mask()
    assert np.array_equal(a.mask_rows(5, 20), full[5:20])
    got = np.concatenate([rows for _, rows in a.iter_mask_chunks()])
    assert np.array_equal(got, full)


def test_remainder_materialises_and_clips():
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[0, 0, 0] = masks[0, 3, 3] = True
    masks[1, 1, 1] = True
    a = ACSR(10, 6, (Piece(0, 2, 1, 1, 0, 4, 0, 2),),
             BlockRemainder(4, np.array([[0, 0], [2, 1]]), masks)).validate()
    m = a.to_mask()
    assert np.array_equal(m, brute_mask(a))
    assert m[0, 0] and m[3, 3] and m[9, 5] and m.sum() == 2 * 2 + 3
    assert a.row_columns(9).tolist() == [5]
    assert a.row_nnz().tolist() == [3, 2, 0, 1, 0, 0, 0, 0, 0, 1]


def test_empty_remainder_is_none():
    a = ACSR(4, 4, (), BlockRemainder(2, np.zeros((0, 2), np.int32), np.zeros((0, 2, 2), bool)))
    assert a.remainder is None and a.nnz == 0 and not a.to_mask().any()


@pytest.mark.parametrize("piece, msg", [
    (Piece(0, 11, 1, 1, 0, 0, 0, 1), "r1=11 > Lq=10"),
    (Piece(0, 4, 1, 1, 0, 0, -1, 2), "negative count"),
    (Piece(0, 4, 1, 1, -1, 2, 0, 2), "outside"),
    (Piece(0, 4, 1, 3, 0, 0, 0, 4), "outside"),  # last column 9 with Lk = 8
    (Piece(0, 4, 1, 1, 2, 3, 0, 2), "outside"),  # row 3: columns 9..10
])
def test_validate_bounds(piece, msg):
    with pytest.raises(ValueError, match=msg):
        ACSR(10, 8, (piece,)).validate()


def test_validate_bounds_only_where_counts_are_positive():
    # count(t) = 1 - t: only row 0 holds a column (3); the offset 8 of the empty row 1 is
    # outside [0, 4) and that is fine.
    ACSR(2, 4, (Piece(0, 2, 1, 1, 5, 3, -1, 1),)).validate()


def test_validate_overlap_names_pieces():
    a = ACSR(10, 10, window3().pieces + (Piece(3, 9, 3, 1, 0, 4, 0, 1),))
    with pytest.raises(ValueError, match=r"pieces 1 and 3 overlap at \(row, col\) = \(3, 4\)"):
        a.validate()


def test_validate_strided_pieces_interleave_without_overlap():
    even = Piece(0, 8, 1, 2, 0, 0, 0, 4)
    odd = Piece(0, 8, 1, 2, 0, 1, 0, 4)
    ACSR(8, 8, (even, odd)).validate()
    clash = Piece(0, 8, 1, 3, 0, 0, 0, 3)  # 0, 3, 6: 0 and 6 are even
    with pytest.raises(ValueError, match="overlap"):
        ACSR(8, 8, (odd, clash, even)).validate()


def test_validate_remainder_errors():
    masks = np.ones((1, 4, 4), bool)
    with pytest.raises(ValueError, match="outside the matrix"):
        ACSR(6, 6, (), BlockRemainder(4, np.array([[1, 1]]), masks)).validate()
    with pytest.raises(ValueError, match="overlaps a piece"):
        ACSR(8, 8, (Piece(0, 1, 1, 1, 0, 0, 0, 1),), BlockRemainder(4, np.array([[0, 0]]), masks)).validate()
    two = np.zeros((2, 4, 4), bool)
    with pytest.raises(ValueError, match="sorted and unique"):
        ACSR(8, 8, (), BlockRemainder(4, np.array([[1, 0], [0, 0]]), two)).validate()


@pytest.mark.parametrize("args, exc", [
    ((0, 0, 1, 1, 0, 0, 0, 1), ValueError),
    ((-1, 2, 1, 1, 0, 0, 0, 1), ValueError),
    ((0, 2, 0, 1, 0, 0, 0, 1), ValueError),
    ((0, 2, 1, 0, 0, 0, 0, 1), ValueError),
    ((0, 2.0, 1, 1, 0, 0, 0, 1), TypeError),
    ((0, 2, 1, True, 0, 0, 0, 1), TypeError),
])
def test_piece_rejects_bad_fields(args, exc):
    with pytest.raises(exc):
        Piece(*args)


def test_pieces_from_table_equals_piece_constructor():
    rng = np.random.default_rng(0)
    tab = rng.integers(-5, 50, size=(40, 8))
    tab[:, 0] = np.abs(tab[:, 0])
    tab[:, 1] = tab[:, 0] + 1 + np.abs(tab[:, 1])
    tab[:, 2:4] = 1 + np.abs(tab[:, 2:4])
    fast = pieces_from_table(tab)
    assert fast == [Piece(*t) for t in tab.tolist()]
    assert all(type(v) is int for p in fast for v in p.as_tuple())
    assert len({hash(p) for p in fast}) == len(set(map(tuple, tab.tolist())))


@pytest.mark.parametrize("col, value", [(0, -1), (1, 0), (2, 0), (3, 0)])
def test_pieces_from_table_rejects_what_piece_rejects(col, value):
    tab = np.array([[0, 4, 1, 1, 0, 0, 0, 2]] * 3)
    tab[1, col] = value
    with pytest.raises(ValueError, match="r0|row_step|stride"):
        pieces_from_table(tab)


def test_acsr_from_table_makes_pieces_on_first_use():
    tab = np.array([[0, 4, 1, 1, 0, 0, 1, 1], [4, 10, 2, 3, 1, 0, 0, 2]])
    a = ACSR._from_table(10, 12, tab)
    b = ACSR(10, 12, tuple(Piece(*t) for t in tab.tolist()))
    assert "pieces" not in vars(a) and not a.table.flags.writeable
    assert np.array_equal(a.table, b.table)
    assert a.pieces == b.pieces and a.pieces is a.pieces and a == b
    assert np.array_equal(a.to_mask(), brute_mask(b))
    with pytest.raises(ValueError, match="row_step"):
        ACSR._from_table(10, 12, np.array([[0, 4, 0, 1, 0, 0, 1, 1]]))


def test_constructor_errors():
    with pytest.raises(ValueError, match="Lq >= 1"):
        ACSR(0, 4)
    with pytest.raises(TypeError, match="Piece"):
        ACSR(4, 4, ((0, 1, 1, 1, 0, 0, 0, 1),))
    with pytest.raises(ValueError, match="masks must be bool"):
        BlockRemainder(2, np.array([[0, 0]]), np.ones((1, 2, 3), bool))
    with pytest.raises(ValueError, match="blocks must be an int array"):
        BlockRemainder(2, np.array([0, 0, 1]), np.ones((1, 2, 2), bool))


def test_text_form():
    a = window3()
    text = a.to_text()
    assert text.splitlines()[0] == "acsr Lq=10 Lk=10 pieces=3 remainder=0"
    assert text.splitlines()[3] == "piece rows=8:10:1 stride=1 offset=1*t+6 count=-1*t+4"
    assert ACSR.from_text(text) == a
    with pytest.raises(ValueError, match="header"):
        ACSR.from_text("pieces")
    with pytest.raises(ValueError, match="bad piece line"):
        ACSR.from_text("acsr Lq=4 Lk=4 pieces=1 remainder=0\npiece rows=0:1 stride=1")


def test_equality_is_on_content():
    a = window3()
    shuffled = ACSR(10, 10, tuple(reversed(a.pieces)))
    assert a == shuffled
    # r1 may be any value past the last row; one-row pieces ignore their slopes
    assert ACSR(10, 10, (Piece(0, 9, 4, 1, 0, 0, 0, 1),)) == ACSR(10, 10, (Piece(0, 10, 4, 1, 0, 0, 0, 1),))
    assert ACSR(10, 10, (Piece(2, 3, 5, 1, 7, 0, 9, 1),)) == ACSR(10, 10, (Piece(2, 3, 1, 1, 0, 0, 0, 1),))
    assert a != ACSR(10, 10, a.pieces[:2])
    assert a != ACSR(10, 11, a.pieces)


# -- property tests over random valid ACSRs -----------------------------------------------------

@st.composite
def acsrs(draw):
    """Random valid ACSRs: pieces are generated row by row into free columns, then a remainder
    takes some of the still free cells."""
    Lq = draw(st.integers(1, 40))
    Lk = draw(st.integers(1, 40))
    taken = np.zeros((Lq, Lk), dtype=bool)
    pieces = []
    for _ in range(draw(st.integers(0, 5))):
        r0 = draw(st.integers(0, Lq - 1))
        step = draw(st.integers(1, 4))
        stride = draw(st.integers(1, 4))
        T = draw(st.integers(1, max(1, (Lq - 1 - r0) // step + 1)))
        off_a, off_b = draw(st.integers(-2, 2)), draw(st.integers(0, Lk - 1))
        cnt_a, cnt_b = draw(st.integers(-1, 1)), draw(st.integers(0, 6))
        p = Piece(r0, r0 + step * (T - 1) + 1, step, stride, off_a, off_b, cnt_a, cnt_b)
        cells = [(p.r0 + p.row_step * t, c) for t in range(p.T) for c in
                 (p.columns(t) if p.count(t) > 0 else [])]
        if any(p.count(t) < 0 for t in range(p.T)):
            continue
        if any(c < 0 or c >= Lk or taken[r, c] for r, c in cells):
            continue
        for r, c in cells:
            taken[r, c] = True
        pieces.append(p)
    remainder = None
    if draw(st.booleans()):
        B = draw(st.integers(1, 8))
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        extra = ~taken & (rng.random((Lq, Lk)) < 0.2)
        rows, cols = np.nonzero(extra)
        if rows.size:
            ncb = -(-Lk // B)
            key = (rows // B) * ncb + cols // B
            ukey, inv = np.unique(key, return_inverse=True)
            masks = np.zeros((ukey.size, B, B), bool)
            masks[inv, rows % B, cols % B] = True
            remainder = BlockRemainder(B, np.stack(np.divmod(ukey, ncb), 1), masks)
    return ACSR(Lq, Lk, tuple(pieces), remainder)


@settings(max_examples=60, deadline=None)
@given(acsrs())
def test_property_materialise_validate_roundtrip(a):
    a.validate()
    m = a.to_mask()
    assert np.array_equal(m, brute_mask(a))
    assert a.nnz == int(m.sum())
    assert a.max_row_nnz == int(m.sum(axis=1).max())
    for i in {0, a.Lq // 2, a.Lq - 1}:
        assert a.row_columns(i).tolist() == np.flatnonzero(m[i]).tolist()
    assert ACSR.from_text(a.to_text()) == a
    d = json.loads(json.dumps(a.to_dict()))  # plain ints and lists only
    assert ACSR.from_dict(d) == a
    assert np.array_equal(a.normalized().to_mask(), m)


@settings(max_examples=40, deadline=None)
@given(acsrs(), st.integers(0, 2**16))
def test_property_overlap_is_detected(a, seed):
    """Adding a copy of any piece's cell as a one-cell piece must be reported as an overlap."""
    if not a.pieces:
        return
    rng = np.random.default_rng(seed)
    p = a.pieces[rng.integers(len(a.pieces))]
    rows = [t for t in range(p.T) if p.count(t) > 0]
    if not rows:
        return
    t = rows[rng.integers(len(rows))]
    col = int(p.columns(t)[rng.integers(p.count(t))])
    dup = Piece(p.r0 + p.row_step * t, p.r0 + p.row_step * t + 1, 1, 1, 0, col, 0, 1)
    with pytest.raises(ValueError, match="overlap"):
        ACSR(a.Lq, a.Lk, a.pieces + (dup,)).validate()

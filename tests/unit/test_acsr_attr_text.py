"""acsr_to_attr writes the whole ``#splat.acsr`` attribute as one text: the same attribute as
one parsed ``#splat.piece`` per piece, and the verifier still sees every layout."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from mlir import ir

from splat import patterns as P
from splat.analysis import analyze
from splat.analysis.acsr import ACSR, Piece
from splat.analysis.acsr_attr import acsr_to_attr, attr_to_acsr, remainder_to_attr
from splat.dialects import splat as splat_d
from splat.ir import make_context


def per_piece(a: ACSR) -> ir.Attribute:
    """The attribute built piece by piece (the construction acsr_to_attr replaced)."""
    pieces = [splat_d.piece(*p.as_tuple()) for p in a.pieces]
    return splat_d.acsr(a.Lq, a.Lk, pieces, remainder_to_attr(a.remainder))


@st.composite
def layouts(draw):
    Lq, Lk = draw(st.integers(1, 150)), draw(st.integers(1, 150))
    m = min(Lq, Lk)
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return P.strided(draw(st.integers(1, m)), draw(st.integers(1, 9)), Lq, Lk).acsr()
    if kind == 1:
        return P.dilated(draw(st.integers(1, 9)), draw(st.integers(1, 5)), Lq, Lk).acsr()
    if kind == 2:  # a remainder
        return analyze(np.random.default_rng(draw(st.integers(0, 99))).random((Lq, Lk)) < 0.1)
    return analyze(P.strided(draw(st.integers(1, m)), draw(st.integers(2, 9)), Lq, Lk)
                   | P.global_tokens(draw(st.lists(st.integers(0, m - 1), min_size=1, max_size=4)), Lq, Lk))


@settings(max_examples=80, deadline=None)
@given(layouts())
def test_one_text_is_the_per_piece_attribute(a):
    with make_context(), ir.Location.unknown():
        attr = acsr_to_attr(a)
        assert attr == per_piece(a)
        assert attr_to_acsr(attr) == a


def test_the_verifier_still_refuses_bad_layouts():
    overlapping = ACSR(10, 10, (Piece(0, 4, 1, 1, 0, 0, 0, 3), Piece(2, 6, 1, 1, 0, 1, 0, 3)))
    with make_context(), ir.Location.unknown():
        with pytest.raises(ir.MLIRError):
            acsr_to_attr(overlapping)

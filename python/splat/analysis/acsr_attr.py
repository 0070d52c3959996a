"""Conversion between :class:`splat.acsr.ACSR` and the ``#splat.acsr`` attribute.

The attribute is built from text, so the C++ verifier checks every layout
Python produces; it is read back by parsing its printed form (the dialect has
no Python attribute accessors, keeping the C++ surface small).
"""

from __future__ import annotations

import re

import numpy as np
from mlir import ir

from .acsr import ACSR, BlockRemainder, Piece
from ..dialects import splat as splat_d

_PIECE = re.compile(r"#splat\.piece<rows (-?\d+) to (-?\d+) step (-?\d+), stride (-?\d+), "
                    r"offset\s*\((-?\d+), (-?\d+)\), count\s*\((-?\d+), (-?\d+)\)>")
_HEADER = re.compile(r"#splat\.acsr<lq = (\d+), lk = (\d+), pieces = ")
_REMAINDER = re.compile(r"remainder = (?:#splat\.block_remainder)?<block (\d+), blocks\s*\[([^\]]*)\]"
                        r"(?:, masks (dense<.*> : tensor<[^>]*>))?>")


def acsr_to_attr(acsr: ACSR) -> ir.Attribute:
    """The ``#splat.acsr`` attribute of ``acsr`` (in the current context)."""
    pieces = [splat_d.piece(p.r0, p.r1, p.row_step, p.stride, p.off_a, p.off_b, p.cnt_a, p.cnt_b)
              for p in acsr.pieces]
    remainder = None
    if acsr.remainder is not None:
        rem = acsr.remainder
        masks = None
        if not rem.masks.all():  # full blocks need no mask
            masks = ir.DenseElementsAttr.get(np.ascontiguousarray(rem.masks))
        remainder = splat_d.block_remainder(rem.block, rem.blocks.reshape(-1).tolist(), masks)
    return splat_d.acsr(acsr.Lq, acsr.Lk, pieces, remainder)


def is_acsr_attr(attr: ir.Attribute) -> bool:
    return str(attr).startswith("#splat.acsr<")


def attr_to_acsr(attr: ir.Attribute) -> ACSR:
    """The :class:`ACSR` of a ``#splat.acsr`` attribute."""
    text = str(attr)
    header = _HEADER.match(text)
    if header is None:
        raise ValueError(f"not a #splat.acsr attribute: {text[:80]}")
    lq, lk = int(header.group(1)), int(header.group(2))
    pieces = tuple(Piece(*map(int, m.groups())) for m in _PIECE.finditer(text))
    remainder = None
    rem = _REMAINDER.search(text)
    if rem is not None:
        block = int(rem.group(1))
        blocks = np.array([int(v) for v in rem.group(2).split(",") if v.strip()],
                          dtype=np.int32).reshape(-1, 2)
        if rem.group(3):
            dense = ir.DenseIntElementsAttr(ir.Attribute.parse(rem.group(3)))
            shape = (blocks.shape[0], block, block)
            if dense.is_splat:  # the buffer of a splat holds one element only
                masks = np.full(shape, bool(ir.BoolAttr(dense.get_splat_value()).value))
            else:
                masks = np.array(dense).astype(bool).reshape(shape)
        else:
            masks = np.ones((blocks.shape[0], block, block), dtype=bool)
        remainder = BlockRemainder(block, blocks, masks)
    return ACSR(lq, lk, pieces, remainder)

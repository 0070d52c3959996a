"""Conversion between :class:`splat.analysis.acsr.ACSR` and the ``#splat.acsr`` attribute.

The attribute is built from text, so the C++ verifier checks every layout
Python produces; it is read back through the typed view
:class:`splat.dialects.splat.ACSRAttr` (the dialect's C API).
"""

from __future__ import annotations

import numpy as np
from mlir import ir

from .acsr import ACSR, BlockRemainder, Piece
from ..dialects import splat as splat_d


def acsr_to_attr(acsr: ACSR) -> ir.Attribute:
    """The ``#splat.acsr`` attribute of ``acsr`` (in the current context), from its piece table
    as one text (:func:`splat.dialects.splat.acsr_of_table`)."""
    return splat_d.acsr_of_table(acsr.Lq, acsr.Lk, acsr.table[:, :8], remainder_to_attr(acsr.remainder))


def remainder_to_attr(rem: BlockRemainder | None) -> ir.Attribute | None:
    """The ``#splat.block_remainder`` attribute of a remainder (None for none)."""
    if rem is None:
        return None
    masks = None
    if not rem.masks.all():  # full blocks need no mask
        masks = ir.DenseElementsAttr.get(np.ascontiguousarray(rem.masks))
    return splat_d.block_remainder(rem.block, rem.blocks.reshape(-1).tolist(), masks)


def is_acsr_attr(attr: ir.Attribute) -> bool:
    return splat_d.ACSRAttr.isinstance(attr)


def attr_to_acsr(attr: ir.Attribute) -> ACSR:
    """The :class:`ACSR` of a ``#splat.acsr`` attribute (ValueError for another kind)."""
    view = splat_d.ACSRAttr(attr)
    pieces = tuple(Piece(*row) for row in view.piece_table.tolist())
    remainder = None
    rem = view.remainder
    if rem is not None:
        blocks = rem.blocks.astype(np.int32)
        masks = rem.masks
        if masks is None:  # absent: every listed block is fully allowed
            masks = np.ones((blocks.shape[0], rem.block, rem.block), dtype=bool)
        remainder = BlockRemainder(rem.block, blocks, masks)
    return ACSR(view.lq, view.lk, pieces, remainder)

"""Typed views of the splat dialect's attributes (in the spirit of ``sparse_tensor.EncodingAttr``).

Each class is an ``ir.Attribute`` checked to be of one kind: ``WindowAttr(attr)`` casts (a
``ValueError`` naming the expected kind when ``attr`` is another kind, a ``TypeError`` when it
is no attribute), ``WindowAttr.isinstance(attr)`` tests, and properties read the parameters
through the dialect's C API as ints and numpy arrays. Nothing here parses printed attributes.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from mlir import ir

from .. import abi
from . import _splat_capi as capi

__all__ = [
    "SplatAttr", "PatternAttr", "WindowAttr", "CausalAttr", "CausalWindowAttr", "DilatedAttr",
    "StridedAttr", "FixedAttr", "BlockedAttr", "GlobalTokensAttr", "RandomBlocksAttr",
    "UnionAttr", "IntersectAttr", "PieceAttr", "BlockRemainderAttr", "ACSRAttr",
    "TileScheduleAttr", "PIECE_FIELDS", "pattern_view",
]

# The fields of one #splat.piece, in the C API's order (MLIR_SPLAT_PIECE_FIELDS).
PIECE_FIELDS = ("r0", "r1", "step", "stride", "off_a", "off_b", "cnt_a", "cnt_b")


def _short(attr: ir.Attribute, limit: int = 120) -> str:
    text = str(attr)  # for error messages only: schedules can print to megabytes
    return text if len(text) <= limit else text[:limit] + "..."


class SplatAttr(ir.Attribute):
    """Base of the views. ``_kind`` names the kind in the C API
    (``mlirAttributeIsASplat<_kind>Attr``); ``_what`` names it in messages."""

    _kind: ClassVar[str]
    _what: ClassVar[str]

    def __init__(self, attr: ir.Attribute):
        if not isinstance(attr, ir.Attribute):
            raise TypeError(f"{type(self).__name__} needs an ir.Attribute, got "
                            f"{type(attr).__name__}")
        if not type(self).isinstance(attr):
            raise ValueError(f"expected a {self._what} attribute, got {_short(attr)}")
        super().__init__(attr)

    @classmethod
    def isinstance(cls, attr) -> bool:
        return isinstance(attr, ir.Attribute) and capi.is_a(cls._kind, attr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_short(self)})"


class _IntParam:
    """An int64 parameter, read by ``mlirSplat<Kind>AttrGet<Param>`` of the owning class."""

    def __init__(self, c_param: str):
        self._c_param = c_param

    def __set_name__(self, owner, name):
        self._kind = owner._kind

    def __get__(self, attr, owner=None):
        if attr is None:
            return self
        return capi.get_int(self._kind, self._c_param, attr)


# ------------------------------------------------------------------------------------ patterns

class PatternAttr(SplatAttr):
    """Any pattern attribute (PatternAttrInterface); :func:`pattern_view` gives its own view."""
    _kind, _what = "Pattern", "splat pattern"


class WindowAttr(PatternAttr):
    _kind, _what = "Window", "#splat.window"
    w = _IntParam("W")


class CausalAttr(PatternAttr):
    _kind, _what = "Causal", "#splat.causal"


class CausalWindowAttr(PatternAttr):
    _kind, _what = "CausalWindow", "#splat.causal_window"
    w = _IntParam("W")


class DilatedAttr(PatternAttr):
    _kind, _what = "Dilated", "#splat.dilated"
    w = _IntParam("W")
    stride = _IntParam("Stride")


class StridedAttr(PatternAttr):
    _kind, _what = "Strided", "#splat.strided"
    local = _IntParam("Local")
    stride = _IntParam("Stride")


class FixedAttr(PatternAttr):
    _kind, _what = "Fixed", "#splat.fixed"
    block = _IntParam("Block")
    summary = _IntParam("Summary")


class BlockedAttr(PatternAttr):
    _kind, _what = "Blocked", "#splat.blocked"
    block = _IntParam("Block")


class GlobalTokensAttr(PatternAttr):
    _kind, _what = "GlobalTokens", "#splat.global_tokens"

    @property
    def indices(self) -> np.ndarray:
        """int64 [n]."""
        return capi.get_i64_array(self._kind, "Indices", self)


class RandomBlocksAttr(PatternAttr):
    _kind, _what = "RandomBlocks", "#splat.random_blocks"
    block = _IntParam("Block")
    per_row = _IntParam("PerRow")
    seed = _IntParam("Seed")


class _MembersAttr(PatternAttr):
    @property
    def members(self) -> list[ir.Attribute]:
        """The member patterns, in order."""
        return list(ir.ArrayAttr(capi.get_attr(self._kind, "Members", self)))


class UnionAttr(_MembersAttr):
    _kind, _what = "Union", "#splat.union"


class IntersectAttr(_MembersAttr):
    _kind, _what = "Intersect", "#splat.intersect"


_PATTERN_VIEWS = (WindowAttr, CausalAttr, CausalWindowAttr, DilatedAttr, StridedAttr, FixedAttr,
                  BlockedAttr, GlobalTokensAttr, RandomBlocksAttr, UnionAttr, IntersectAttr)


def pattern_view(attr: ir.Attribute) -> PatternAttr:
    """The view of a pattern attribute's own kind (``WindowAttr``, ``UnionAttr``, ...)."""
    for view in _PATTERN_VIEWS:
        if view.isinstance(attr):
            return view(attr)
    PatternAttr(attr)  # raises, naming what was expected
    raise AssertionError(f"pattern kind without a view: {_short(attr)}")


# ---------------------------------------------------------------------------------- the layout

class PieceAttr(SplatAttr):
    _kind, _what = "Piece", "#splat.piece"

    @property
    def fields(self) -> tuple[int, ...]:
        """(r0, r1, step, stride, off_a, off_b, cnt_a, cnt_b)."""
        return tuple(capi.fill_i64(self._kind, "Fields", self, len(PIECE_FIELDS)).tolist())

    r0, r1, step, stride, off_a, off_b, cnt_a, cnt_b = (
        property(lambda self, i=i: self.fields[i], doc=f"the piece's {name}")
        for i, name in enumerate(PIECE_FIELDS))

    @property
    def num_rows(self) -> int:
        return -(-(self.r1 - self.r0) // self.step)


class BlockRemainderAttr(SplatAttr):
    _kind, _what = "BlockRemainder", "#splat.block_remainder"
    block = _IntParam("Block")

    @property
    def blocks(self) -> np.ndarray:
        """int64 [n, 2]: (row_block, col_block) per block."""
        return capi.get_i64_array(self._kind, "Blocks", self).reshape(-1, 2)

    @property
    def masks_attr(self) -> ir.Attribute | None:
        """The i1 DenseElementsAttr of the blocks' masks; None when every block is full."""
        return capi.get_attr(self._kind, "Masks", self)

    @property
    def masks(self) -> np.ndarray | None:
        """bool [n, block, block]; None when every block is full."""
        attr = self.masks_attr
        if attr is None:
            return None
        dense = ir.DenseIntElementsAttr(attr)
        shape = (len(self.blocks), self.block, self.block)
        if dense.is_splat:  # the buffer of a splat holds one element only
            return np.full(shape, bool(ir.BoolAttr(dense.get_splat_value()).value))
        return np.array(dense).astype(bool).reshape(shape)


class ACSRAttr(SplatAttr):
    _kind, _what = "ACSR", "#splat.acsr"
    lq = _IntParam("Lq")
    lk = _IntParam("Lk")

    @property
    def num_pieces(self) -> int:
        return capi.get_count(self._kind, "NumPieces", self)

    @property
    def pieces(self) -> list[PieceAttr]:
        return [PieceAttr(p) for p in ir.ArrayAttr(capi.get_attr(self._kind, "Pieces", self))]

    @property
    def piece_table(self) -> np.ndarray:
        """int64 [n, 8]: every piece's fields (:data:`PIECE_FIELDS`), in one C call."""
        width = len(PIECE_FIELDS)
        return capi.fill_i64(self._kind, "PieceTable", self,
                             self.num_pieces * width).reshape(-1, width)

    @property
    def remainder(self) -> BlockRemainderAttr | None:
        attr = capi.get_attr(self._kind, "Remainder", self)
        return None if attr is None else BlockRemainderAttr(attr)


# ------------------------------------------------------------------------------- tile schedule

class TileScheduleAttr(SplatAttr):
    """A ``#splat.tile_schedule`` (the op attributes ``schedule`` and ``split_schedule``).
    Tables are int32 arrays with the columns of :mod:`splat.abi`."""

    _kind, _what = "TileSchedule", "#splat.tile_schedule"
    block_m = _IntParam("BlockM")
    block_n = _IntParam("BlockN")

    def _table(self, param: str) -> np.ndarray | None:
        return capi.get_i32_table(self._kind, param, self)

    @property
    def row_tiles(self) -> np.ndarray:
        """int32 [n, len(abi.ROW_TILE_FIELDS)]."""
        return self._table("RowTiles").reshape(-1, len(abi.ROW_TILE_FIELDS))

    @property
    def segments(self) -> np.ndarray:
        """int32 [n, len(abi.SEGMENT_FIELDS)]."""
        return self._table("Segments").reshape(-1, len(abi.SEGMENT_FIELDS))

    @property
    def has_masks(self) -> bool:
        """Whether the schedule carries mask tables (the verifier wants all three or none)."""
        return self._table("MaskPtr") is not None

    @property
    def mask_ptr(self) -> np.ndarray | None:
        """int32 [n_row_tiles + 1], or None."""
        return self._table("MaskPtr")

    @property
    def mask_tiles(self) -> np.ndarray | None:
        """int32 [n, len(abi.MASK_TILE_FIELDS)], or None."""
        table = self._table("MaskTiles")
        return None if table is None else table.reshape(-1, len(abi.MASK_TILE_FIELDS))

    @property
    def plans(self) -> np.ndarray | None:
        """int32 [n_row_tiles]: the tiler's plan per row tile (0 affine, 1 blocks), or None
        when the schedule does not record it (every tile affine)."""
        return self._table("Plans")

    @property
    def mask_bits(self) -> np.ndarray | None:
        """int32 [n, block_m, abi.mask_words(block_n)], or None."""
        table = self._table("MaskBits")
        if table is None:
            return None
        return table.reshape(-1, self.block_m, abi.mask_words(self.block_n))

"""The splat dialect's Python ops (generated), attribute builders and typed attribute views.

Attributes are built from their textual form, which the C++ verifiers check,
so Python cannot make an attribute the parser would reject. They are read
back through the typed views of :mod:`.splat_attrs` (``ACSRAttr``,
``TileScheduleAttr``, ``WindowAttr``, ...), never by parsing printed text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from mlir import ir

from ._splat_ops_gen import *  # noqa: F401,F403
from ._splat_ops_gen import _Dialect  # noqa: F401
from .splat_attrs import *  # noqa: F401,F403


def _attr(text: str) -> ir.Attribute:
    return ir.Attribute.parse(text)


def _check_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return value


def _params(**params) -> str:
    return ", ".join(f"{k} = {_check_int(k, v)}" for k, v in params.items())


def window(w: int) -> ir.Attribute:
    return _attr(f"#splat.window<{_params(w=w)}>")


def causal() -> ir.Attribute:
    return _attr("#splat.causal")


def causal_window(w: int) -> ir.Attribute:
    return _attr(f"#splat.causal_window<{_params(w=w)}>")


def dilated(w: int, stride: int) -> ir.Attribute:
    return _attr(f"#splat.dilated<{_params(w=w, stride=stride)}>")


def strided(local: int, stride: int) -> ir.Attribute:
    return _attr(f"#splat.strided<{_params(local=local, stride=stride)}>")


def fixed(block: int, summary: int) -> ir.Attribute:
    return _attr(f"#splat.fixed<{_params(block=block, summary=summary)}>")


def blocked(block: int) -> ir.Attribute:
    return _attr(f"#splat.blocked<{_params(block=block)}>")


def global_tokens(indices: Iterable[int]) -> ir.Attribute:
    values = ", ".join(str(_check_int("indices", i)) for i in indices)
    return _attr(f"#splat.global_tokens<[{values}]>")


def random_blocks(block: int, per_row: int, seed: int) -> ir.Attribute:
    return _attr(f"#splat.random_blocks<{_params(block=block, per_row=per_row, seed=seed)}>")


def union(members: Sequence[ir.Attribute]) -> ir.Attribute:
    return _attr(f"#splat.union<[{', '.join(str(m) for m in members)}]>")


def intersect(members: Sequence[ir.Attribute]) -> ir.Attribute:
    return _attr(f"#splat.intersect<[{', '.join(str(m) for m in members)}]>")


_PIECE = "#splat.piece<rows {} to {} step {}, stride {}, offset ({}, {}), count ({}, {})>"


def piece(r0: int, r1: int, step: int, stride: int, off_a: int, off_b: int,
          cnt_a: int, cnt_b: int) -> ir.Attribute:
    for name, value in dict(r0=r0, r1=r1, step=step, stride=stride, off_a=off_a,
                            off_b=off_b, cnt_a=cnt_a, cnt_b=cnt_b).items():
        _check_int(name, value)
    return _attr(_PIECE.format(r0, r1, step, stride, off_a, off_b, cnt_a, cnt_b))


def block_remainder(block: int, blocks: Sequence[int],
                    masks: ir.Attribute | None = None) -> ir.Attribute:
    text = f"block {_check_int('block', block)}, blocks [{', '.join(str(int(b)) for b in blocks)}]"
    if masks is not None:
        text += f", masks {masks}"
    return _attr(f"#splat.block_remainder<{text}>")


def acsr(lq: int, lk: int, pieces: Sequence[ir.Attribute],
         remainder: ir.Attribute | None = None) -> ir.Attribute:
    return _acsr(lq, lk, ", ".join(str(p) for p in pieces), remainder)


def acsr_of_table(lq: int, lk: int, table: np.ndarray,
                  remainder: ir.Attribute | None = None) -> ir.Attribute:
    """``acsr`` of the pieces of an int ``[n, 8]`` table (the ``piece`` fields in order), written
    as one text and parsed once: a piece attribute each, printed back into the text, cost ~10 us
    a piece (69 ms for the 6000 pieces of a random block mask)."""
    rows = np.asarray(table, dtype=np.int64).reshape(-1, 8).tolist()  # plain ints
    return _acsr(lq, lk, ", ".join(_PIECE.format(*row) for row in rows), remainder)


def _acsr(lq: int, lk: int, pieces: str, remainder: ir.Attribute | None) -> ir.Attribute:
    text = f"{_params(lq=lq, lk=lk)}, pieces = [{pieces}]"
    if remainder is not None:
        text += f", remainder = {remainder}"
    return _attr(f"#splat.acsr<{text}>")


def tile_schedule(block_m: int, block_n: int, row_tiles: Sequence[int],
                  segments: Sequence[int], mask_ptr: Sequence[int] | None = None,
                  mask_tiles: Sequence[int] | None = None,
                  mask_bits: Sequence[int] | None = None,
                  plans: Sequence[int] | None = None) -> ir.Attribute:
    """Flattened int32 tables (see docs/design.md section 2); the mask tables
    are given together, for schedules of layouts with an irregular remainder;
    ``plans`` records the tiler's plan per row tile (0 affine, 1 blocks)."""
    def i32s(values):
        # the tables hold millions of words for fragmented layouts: tolist() and a list's repr
        # ("[1, 2, 3]", the attribute's syntax) run in C, twice as fast as joining map(str),
        # where a generator of str(int(v)) over numpy scalars took seconds
        ints = (values.astype(np.int64, copy=False).ravel().tolist()
                if isinstance(values, np.ndarray) else [int(v) for v in values])
        return repr(ints)
    text = (f"{_params(block_m=block_m, block_n=block_n)}, "
            f"row_tiles = {i32s(row_tiles)}, segments = {i32s(segments)}")
    if mask_ptr is not None:
        text += (f", mask_ptr = {i32s(mask_ptr)}, mask_tiles = {i32s(mask_tiles)}, "
                 f"mask_bits = {i32s(mask_bits)}")
    if plans is not None:
        text += f", plans = {i32s(plans)}"
    return _attr(f"#splat.tile_schedule<{text}>")

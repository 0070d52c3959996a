"""Pattern attributes (``#splat.window<w = 128>``, unions, ...) -> :class:`splat.patterns.Pattern`."""

from __future__ import annotations

from mlir import ir

from .. import patterns
from ..dialects import splat as splat_d

# One builder per pattern view: (view, lq, lk) -> Pattern.
_BUILDERS = {
    splat_d.WindowAttr: lambda a, lq, lk: patterns.window(a.w, lq, lk),
    splat_d.CausalAttr: lambda a, lq, lk: patterns.causal(lq, lk),
    splat_d.CausalWindowAttr: lambda a, lq, lk: patterns.causal_window(a.w, lq, lk),
    splat_d.DilatedAttr: lambda a, lq, lk: patterns.dilated(a.w, a.stride, lq, lk),
    splat_d.StridedAttr: lambda a, lq, lk: patterns.strided(a.local, a.stride, lq, lk),
    splat_d.FixedAttr: lambda a, lq, lk: patterns.fixed(a.block, a.summary, lq, lk),
    splat_d.BlockedAttr: lambda a, lq, lk: patterns.blocked(a.block, lq, lk),
    splat_d.GlobalTokensAttr: lambda a, lq, lk: patterns.global_tokens(a.indices.tolist(), lq, lk),
    splat_d.RandomBlocksAttr: lambda a, lq, lk: patterns.random_blocks(a.block, a.per_row,
                                                                       a.seed, lq, lk),
}


def attr_to_pattern(attr: ir.Attribute, lq: int, lk: int) -> patterns.Pattern:
    """The :class:`Pattern` of a pattern attribute for an ``lq x lk`` attention.

    Raises ValueError when ``attr`` is not a pattern attribute, or when the pattern does not
    fit the sizes (e.g. a global token index past ``lq``)."""
    view = splat_d.pattern_view(attr)
    if isinstance(view, (splat_d.UnionAttr, splat_d.IntersectAttr)):
        members = [attr_to_pattern(m, lq, lk) for m in view.members]
        result = members[0]
        for member in members[1:]:
            result = (result | member) if isinstance(view, splat_d.UnionAttr) else (result & member)
        return result
    return _BUILDERS[type(view)](view, lq, lk)

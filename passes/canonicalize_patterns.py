"""splat-canonicalize-patterns: put pattern attributes in canonical form.

Nested unions (intersections) are flattened into one, repeated members are
dropped, and a union of a single member becomes that member. Later passes
then see one flat list of families per layout.
"""

from __future__ import annotations

from mlir import ir

from ..dialects import splat as splat_d
from .registry import SplatPass, failures_at, layout_ops, register_pass


def canonical_pattern(attr: ir.Attribute) -> ir.Attribute:
    """The canonical form of a pattern attribute (others are returned as is)."""
    for view, build in ((splat_d.UnionAttr, splat_d.union),
                        (splat_d.IntersectAttr, splat_d.intersect)):
        if not view.isinstance(attr):
            continue
        members: list[ir.Attribute] = []
        for member in view(attr).members:
            member = canonical_pattern(member)
            flattened = view(member).members if view.isinstance(member) else [member]
            for m in flattened:
                if m not in members:  # attributes are uniqued: equal means same parameters
                    members.append(m)
        return members[0] if len(members) == 1 else build(members)
    return attr


@register_pass
class CanonicalizePatterns(SplatPass):
    argument = "splat-canonicalize-patterns"
    summary = "Flatten nested pattern unions/intersections and drop duplicates"

    def run(self, op: ir.Operation) -> None:
        for target in layout_ops(op):
            with failures_at(target):
                layout = target.attributes["layout"]
                canonical = canonical_pattern(layout)
                if canonical != layout:
                    target.attributes["layout"] = canonical

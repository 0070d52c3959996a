"""splat-canonicalize-patterns: put pattern attributes in canonical form.

Nested unions (intersections) are flattened into one, repeated members are
dropped, and a union of a single member becomes that member. Later passes
then see one flat list of families per layout.
"""

from __future__ import annotations

from mlir import ir

from ..dialects import splat as splat_d
from .registry import SplatPass, layout_ops, register_pass


def canonical_pattern(attr: ir.Attribute) -> ir.Attribute:
    """The canonical form of a pattern attribute (others are returned as is)."""
    text = str(attr)
    for kind, build in (("union", splat_d.union), ("intersect", splat_d.intersect)):
        if not text.startswith(f"#splat.{kind}<"):
            continue
        members = []
        for member in _members(attr):
            member = canonical_pattern(member)
            flattened = _members(member) if str(member).startswith(f"#splat.{kind}<") else [member]
            for m in flattened:
                if str(m) not in {str(x) for x in members}:
                    members.append(m)
        return members[0] if len(members) == 1 else build(members)
    return attr


def _members(attr: ir.Attribute) -> list[ir.Attribute]:
    # The members of a union/intersect: its one ArrayAttr parameter, reached
    # through the generic attribute printing of the array.
    inner = str(attr)[str(attr).index("<") + 1:-1]
    return list(ir.ArrayAttr(ir.Attribute.parse(inner)))


@register_pass
class CanonicalizePatterns(SplatPass):
    argument = "splat-canonicalize-patterns"
    summary = "Flatten nested pattern unions/intersections and drop duplicates"

    def run(self, op: ir.Operation) -> None:
        for target in layout_ops(op):
            layout = target.attributes["layout"]
            canonical = canonical_pattern(layout)
            if str(canonical) != str(layout):
                target.attributes["layout"] = canonical

"""splat-analyze-regularity: pattern layouts -> exact ``#splat.acsr`` layouts.

The analysis (``splat.analysis``) runs just in time, at compile time, for the
op's static Lq x Lk; its result reconstructs the pattern exactly.
``splat-test-print-acsr`` prints the pieces (for lit tests and debugging).
"""

from __future__ import annotations

from mlir import ir

from ..analysis.acsr_attr import acsr_to_attr, attr_to_acsr, is_acsr_attr
from ..analysis import analyze
from ..patterns.pattern_attr import attr_to_pattern
from .registry import (PassError, PassOption, SplatPass, failures_at, layout_ops,
                       producing_sddmm, register_pass)


def static_lengths(op: ir.Operation) -> tuple[int, int]:
    """(Lq, Lk) of a splat op; both must be static to analyse its layout. A softmax takes
    them from the splat.sddmm that produces its scores."""
    if op.name == "splat.softmax":
        producer = producing_sddmm(op)
        if producer is None:
            raise PassError("splat.softmax does not know Lk by itself: its scores must come "
                            "from a splat.sddmm", op)
        op = producer
    rows = ir.RankedTensorType(op.operands[0].type).shape[2]
    keys = ir.RankedTensorType(op.operands[1].type).shape[2]
    if ir.ShapedType.is_dynamic_size(rows) or ir.ShapedType.is_dynamic_size(keys):
        raise PassError("needs static query and key lengths to analyse its layout", op)
    return rows, keys


@register_pass
class AnalyzeRegularity(SplatPass):
    argument = "splat-analyze-regularity"
    summary = "Rewrite pattern layouts into exact #splat.acsr layouts (the regularity analysis)"
    options_spec = (PassOption("block", int, 64, "block size of the irregular remainder"),)

    def run(self, op: ir.Operation) -> None:
        # One analysis per (layout, Lq, Lk); attributes are uniqued, so they are their own key.
        analysed: dict[tuple[ir.Attribute, int, int], ir.Attribute] = {}
        for target in layout_ops(op):
            with failures_at(target):
                layout = target.attributes["layout"]
                if is_acsr_attr(layout):
                    continue
                lq, lk = static_lengths(target)
                key = (layout, lq, lk)
                if key not in analysed:
                    try:
                        acsr = analyze(attr_to_pattern(layout, lq, lk),
                                       block=self.options["block"])
                    except (ValueError, OverflowError) as e:  # (parameters past int64)
                        raise PassError(f"cannot analyse {layout} for {lq}x{lk}: {e}",
                                        target) from None
                    analysed[key] = acsr_to_attr(acsr)
                target.attributes["layout"] = analysed[key]


@register_pass
class TestPrintACSR(SplatPass):
    argument = "splat-test-print-acsr"
    summary = "Print the ACSR pieces of every analysed layout (testing aid)"

    def run(self, op: ir.Operation) -> None:
        for target in layout_ops(op):
            with failures_at(target):
                layout = target.attributes["layout"]
                if not is_acsr_attr(layout):
                    print(f"{target.name}: not analysed: {layout}")
                    continue
                acsr = attr_to_acsr(layout)
                print(f"{target.name}: {acsr.Lq}x{acsr.Lk} nnz={acsr.nnz} "
                      f"density={acsr.density:.4f} pieces={len(acsr.pieces)}")
                print(acsr.to_text())

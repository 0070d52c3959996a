"""splat-lower-to-gpu: tiled splat.attention -> gpu.module kernel + runtime call.

Each tiled ``splat.attention`` becomes a call to a private host function
``@splat_attention_<n>`` that names its kernel (``splat.kernel``), layout,
schedule and scale: the host program now calls into SPLAT's runtime, which
launches the kernel of ``gpu.module @splat_kernels`` over the schedule (with a
split schedule, then ``splat_fwd_<dtype>_d<D>_acc`` over that one, which folds
its result into the rows' o and lse). An op tiled for the backward
(``col_schedule``, splat-tile-acsr{backward}) gets the dQ and dK/dV kernels
instead, and its call names both (``splat.kernel``, ``splat.dkv_kernel``). One
kernel serves every layout with the same element type and head dim (the
schedule is a run-time table), so the module holds one ``gpu.func`` per
(dtype, D).
"""

from __future__ import annotations

from mlir import ir
from mlir.dialects import func

from .. import abi
from ..analysis.acsr_attr import is_acsr_attr
from ..dialects import splat as splat_d
from ..lowering.emit import emit_backward_kernels, emit_decomposed_kernels, emit_kernel
from ..lowering.fused_config import kernel_launch_info
from ..tiling.variants import Kernel, resolve_kernel
from .registry import (PassError, PassOption, SplatPass, failures_at, producing_sddmm,
                       register_pass, walk_ops)

_DECOMPOSED = ("splat.sddmm", "splat.softmax", "splat.spmm")


def kernel_dtype(op: ir.Operation, operand: int = 0) -> str:
    element = str(ir.RankedTensorType(op.operands[operand].type).element_type)
    if element not in abi.DTYPES:
        raise PassError(f"the GPU kernels support bf16 and f16 inputs, got {element}", op)
    return element


def kernel_head_dim(op: ir.Operation, operand: int = 0) -> int:
    head_dim = ir.RankedTensorType(op.operands[operand].type).shape[3]
    if head_dim not in abi.HEAD_DIMS:
        shown = "dynamic" if ir.ShapedType.is_dynamic_size(head_dim) else head_dim
        raise PassError(f"the GPU kernels support head dim {_either(abi.HEAD_DIMS)}, got "
                        f"{shown}", op)
    return head_dim


def _either(choices: tuple) -> str:
    *others, last = choices
    return f"{', '.join(map(str, others))} or {last}" if others else str(last)


def _schedule_attr(op: ir.Operation, name: str) -> splat_d.TileScheduleAttr:
    """The op's tile schedule attribute ``name``, typed; another kind is a located error."""
    try:
        return splat_d.TileScheduleAttr(op.attributes[name])
    except ValueError as e:
        raise PassError(f"'{name}': {e}", op) from None


def chosen_kernel(target: ir.Operation) -> dict:
    """The op's ``kernel`` attribute (splat-tile-acsr's chosen variant) as a checked dict, or
    {} where there is none."""
    if "kernel" not in target.attributes:
        return {}
    try:
        d = ir.DictAttr(target.attributes["kernel"])
        out = {"mma": ir.StringAttr(d["mma"]).value, "kv_loads": ir.StringAttr(d["kv_loads"]).value,
               "warp_rows": ir.IntegerAttr(d["warp_rows"]).value}
    except (ValueError, KeyError, IndexError, TypeError):
        raise PassError("'kernel' must be {mma = \"...\", kv_loads = \"...\", warp_rows = N}",
                        target) from None
    if (out["mma"] not in abi.MMA_KINDS or out["kv_loads"] not in abi.KV_LOADS
            or out["warp_rows"] not in abi.WARP_ROWS_CHOICES):
        raise PassError(f"'kernel' names no kernel build: mma {out['mma']!r}, kv_loads "
                        f"{out['kv_loads']!r}, warp_rows {out['warp_rows']}", target)
    return out


@register_pass
class LowerToGPU(SplatPass):
    argument = "splat-lower-to-gpu"
    summary = ("Lower tiled splat.attention (fused) and splat.sddmm/softmax/spmm (decomposed) to "
               "gpu.module kernels and runtime calls")
    options_spec = (
        PassOption("mma", str, "auto", "the fused kernel's tensor-core instruction: "
                   "'mma_sync' (sm_80 and newer), 'wgmma' (sm_90a) or 'auto' (the kernel "
                   "variant splat-tile-acsr chose, its 'kernel' attribute; else mma_sync)"),
        PassOption("warp-rows", int, 0, "query rows per warp of the fused kernel: "
                   "16, or 32 (two m16 tiles share each K/V fragment; mma_sync only); 0: the "
                   "kernel variant's (the op's 'kernel' attribute, else splat.tiling.variants' "
                   "for the schedule's tile height)"),
        PassOption("kv-loads", str, "auto", "who gathers K/V for the fused kernel: "
                   "'compute' (its own warps), 'producer' (a producer warpgroup behind "
                   "mbarriers; mma wgmma only) or 'auto' (the kernel variant's)"),
    )

    def run(self, op: ir.Operation) -> None:
        if self.options["mma"] not in ("auto",) + abi.MMA_KINDS:
            raise PassError(f"option 'mma' must be one of auto, {', '.join(abi.MMA_KINDS)}; got "
                            f"'{self.options['mma']}'", op)
        if self.options["warp-rows"] not in (0,) + abi.WARP_ROWS_CHOICES:
            raise PassError(f"option 'warp-rows' must be {_either(abi.WARP_ROWS_CHOICES)} (or "
                            f"0: the kernel variant's); got {self.options['warp-rows']}", op)
        if self.options["kv-loads"] not in ("auto",) + abi.KV_LOADS:
            raise PassError(f"option 'kv-loads' must be {_either(abi.KV_LOADS)} (or auto); got "
                            f"'{self.options['kv-loads']}'", op)
        if self.options["kv-loads"] == "producer" and self.options["mma"] == "mma_sync":
            raise PassError("option 'kv-loads' producer needs mma wgmma (the mma_sync kernel's "
                            "warps gather their own K/V)", op)
        self._lower_fused(op)
        self._lower_decomposed(op)

    def _lower_decomposed(self, op: ir.Operation) -> None:
        """sddmm -> softmax -> spmm: three SIMT kernels (the paper's design), one call each.
        Kernels are chosen for every op before any op is replaced, since a softmax takes its
        dtype and head dim from the sddmm that feeds it."""
        plan = []
        for target in walk_ops(op, lambda o: o.name in _DECOMPOSED):
            with failures_at(target):
                if not is_acsr_attr(target.attributes["layout"]):
                    raise PassError("layout is not analysed yet: run splat-analyze-regularity "
                                    "first", target)
                kind = target.name.split(".")[1]
                source = target
                if kind == "softmax":  # f32 scores only: the feeding sddmm decides dtype and D
                    source = producing_sddmm(target)
                    if source is None:
                        raise PassError("splat.softmax must consume a splat.sddmm to be lowered",
                                        target)
                operand = 1 if kind == "spmm" else 0  # v for spmm, q otherwise
                plan.append((target, kind, kernel_dtype(source, operand),
                             kernel_head_dim(source, operand)))
        emitted: set[tuple[str, int]] = set()
        for n, (target, kind, dtype, head_dim) in enumerate(plan):
            with failures_at(target):
                if (dtype, head_dim) not in emitted:
                    emit_decomposed_kernels(op, dtype=dtype, head_dim=head_dim)
                    emitted.add((dtype, head_dim))
                self._replace_with_call(target, f"splat_{kind}_{n}",
                                        abi.decomposed_kernel_names(dtype, head_dim)[kind],
                                        head_dim)

    def _lower_fused(self, op: ir.Operation) -> None:
        targets = walk_ops(op, lambda o: o.name == "splat.attention")
        emitted: dict[tuple, tuple[int, int]] = {}  # kernel variant -> tile shape
        for n, target in enumerate(targets):
            with failures_at(target):
                if "schedule" not in target.attributes:
                    raise PassError("has no tile schedule: run splat-tile-acsr before "
                                    "splat-lower-to-gpu", target)
                if not ir.BoolAttr(target.attributes["zero_empty_rows"]).value:
                    raise PassError("zero_empty_rows = false is not supported by the fused kernel",
                                    target)
                dtype, head_dim = kernel_dtype(target), kernel_head_dim(target)
                if "col_schedule" in target.attributes:
                    self._lower_backward(op, target, n, dtype, head_dim, emitted)
                    continue
                schedule = _schedule_attr(target, "schedule")
                shape = (schedule.block_m, schedule.block_n)
                if (shape[0] not in abi.BLOCK_M_CHOICES
                        or shape[1] not in abi.BLOCK_N_CHOICES):
                    raise PassError(f"the kernel needs tiles of {_either(abi.BLOCK_M_CHOICES)} "
                                    f"rows by {_either(abi.BLOCK_N_CHOICES)} keys; the schedule "
                                    f"has block_m = {shape[0]}, block_n = {shape[1]}", target)
                kernel = self._kernel(target, shape[0], head_dim)
                if kernel.mma == "wgmma" and head_dim not in abi.WGMMA_HEAD_DIMS:
                    raise PassError(abi.wgmma_head_dim_error(head_dim), target)
                # Layouts with an irregular remainder get the kernel variant that also walks the
                # schedule's explicitly masked key tiles; the plain kernel stays lean.
                masked = schedule.has_masks
                self._emit_once(op, target, emitted, dtype, head_dim, shape, kernel,
                                masked=masked)
                if "split_schedule" in target.attributes:
                    # split-KV: the second schedule runs the accumulating kernel, which folds its
                    # result into the o and lse the first launch wrote
                    split = _schedule_attr(target, "split_schedule")
                    if split.has_masks or (split.block_m, split.block_n) != shape:
                        raise PassError("a split schedule must have no mask tiles and the tile "
                                        "shape of the schedule", target)
                    self._emit_once(op, target, emitted, dtype, head_dim, shape, kernel,
                                    accumulate=True)
                self._replace_with_call(target, f"splat_attention_{n}",
                                        abi.fused_kernel_name(dtype, head_dim, masked), head_dim)

    def _lower_backward(self, op: ir.Operation, target: ir.Operation, n: int, dtype: str,
                        head_dim: int, emitted: dict) -> None:
        """The dQ kernel over ``schedule`` and the dK/dV kernel over ``col_schedule``
        (option ``mma``: `abi.backward_mma`; the schedules' tile height), and their
        accumulating variants over the splits (``split_schedule``, ``col_split_schedule``),
        once per module and variant."""
        if head_dim not in abi.BACKWARD_HEAD_DIMS:
            raise PassError(f"the backward kernels support head dim "
                            f"{_either(abi.BACKWARD_HEAD_DIMS)}, got {head_dim}", target)
        if self.options["warp-rows"] not in (0, abi.WARP_ROWS) or \
                self.options["kv-loads"] == "producer":
            raise PassError(f"the backward kernels run {abi.WARP_ROWS}-row warps without a "
                            f"producer warpgroup; got warp-rows={self.options['warp-rows']} "
                            f"kv-loads={self.options['kv-loads']}", target)
        mma = abi.backward_mma(self.options["mma"])
        attrs = target.attributes
        rows, cols = _schedule_attr(target, "schedule"), _schedule_attr(target, "col_schedule")
        splits = {name: _schedule_attr(target, name) for name in
                  ("split_schedule", "col_split_schedule") if name in attrs}
        shape = (rows.block_m, rows.block_n)
        heights = abi.backward_block_ms(mma, head_dim)
        if shape[0] not in heights or shape[1] not in abi.BLOCK_N_CHOICES or any(
                (s.block_m, s.block_n) != shape for s in [cols, *splits.values()]):
            raise PassError(f"the {mma} backward kernels need {_either(heights)}-row tiles of "
                            f"{_either(abi.BLOCK_N_CHOICES)} keys, one shape in every schedule; "
                            f"the row schedule's is {shape[0]} x {shape[1]}", target)
        if any(s.has_masks for s in splits.values()):
            raise PassError("a split schedule must have no mask tiles", target)
        rows_split, cols_split = "split_schedule" in splits, "col_split_schedule" in splits
        variant = ("backward", dtype, head_dim, rows.has_masks, cols.has_masks, rows_split,
                   cols_split, mma)
        if variant in emitted and emitted[variant] != shape:
            raise PassError(f"every {dtype} D={head_dim} backward of a module must use one tile "
                            f"shape", target)
        if variant not in emitted:
            emit_backward_kernels(op, dtype=dtype, head_dim=head_dim, block_n=shape[1],
                                  rows_masked=rows.has_masks, cols_masked=cols.has_masks,
                                  rows_split=rows_split, cols_split=cols_split, mma=mma,
                                  block_m=shape[0])
            emitted[variant] = shape
        self._replace_with_call(target, f"splat_attention_backward_{n}",
                                abi.dq_kernel_name(dtype, head_dim, rows.has_masks), head_dim,
                                dkv_kernel=abi.dkv_kernel_name(dtype, head_dim, cols.has_masks))

    def _kernel(self, target: ir.Operation, block_m: int, head_dim: int) -> Kernel:
        """The op's fused kernel build: each option as given, or where left to the schedule
        ("auto", 0) the variant splat-tile-acsr chose (the op's ``kernel`` attribute)."""
        try:
            return resolve_kernel(self.options["mma"], self.options["kv-loads"],
                                  self.options["warp-rows"], chosen_kernel(target), block_m,
                                  head_dim)
        except ValueError as e:
            raise PassError(str(e), target) from None

    def _emit_once(self, op: ir.Operation, target: ir.Operation, emitted: dict, dtype: str,
                   head_dim: int, shape: tuple[int, int], kernel: Kernel, *,
                   masked: bool = False, accumulate: bool = False) -> None:
        """Emit the kernel variant once per module; all its users must share one tile shape
        (block_m, block_n) and build: the kernel's name carries neither."""
        variant = (dtype, head_dim, masked, accumulate)
        if variant in emitted and emitted[variant] != (shape, kernel):
            (m, n), other = emitted[variant]
            raise PassError(f"every {dtype} D={head_dim} attention of a module must use one "
                            f"tile shape and kernel build; this one uses {shape[0]} x "
                            f"{shape[1]} ({kernel.describe()}), another {m} x {n} "
                            f"({other.describe()})", target)
        if variant not in emitted:
            if kernel.mma == "wgmma":  # sm_90a only: its limit is known here
                need = kernel_launch_info(dtype, head_dim, shape[1], mask_tiles=masked,
                                          accumulate=accumulate, mma="wgmma", block_m=shape[0],
                                          load_warpgroup=kernel.load_warpgroup)["shared_bytes"]
                if need > abi.SM90_SHARED_BYTES:
                    raise PassError(
                        f"the wgmma kernel"
                        f"{' with a producer warpgroup' if kernel.load_warpgroup else ''} for "
                        f"{shape[0]} x {shape[1]} tiles{' with mask tiles' if masked else ''} "
                        f"needs {need} bytes of shared memory, more than the "
                        f"{abi.SM90_SHARED_BYTES} a CTA may have on sm_90a: tile with a smaller "
                        f"block-n", target)
            emit_kernel(op, dtype=dtype, head_dim=head_dim, block_n=shape[1], block_m=shape[0],
                        mask_tiles=masked, accumulate=accumulate, mma=kernel.mma,
                        warp_rows=kernel.warp_rows, load_warpgroup=kernel.load_warpgroup)
            emitted[variant] = (shape, kernel)

    @staticmethod
    def _replace_with_call(target: ir.Operation, name: str, kernel: str,
                           head_dim: int, dkv_kernel: str | None = None) -> None:
        attrs = target.attributes
        scale = (ir.FloatAttr(attrs["scale"]) if "scale" in attrs
                 else ir.FloatAttr.get_f32(abi.default_scale(head_dim)))
        fn_type = ir.FunctionType.get([v.type for v in target.operands],
                                      [r.type for r in target.results])
        # Declared right before the function that calls it.
        caller = target.parent
        while caller.parent is not None and caller.parent.name != "builtin.module":
            caller = caller.parent
        with ir.InsertionPoint(caller), target.location:
            decl = func.FuncOp(name, fn_type, visibility="private")
            decl.attributes["splat.kernel"] = ir.SymbolRefAttr.get(
                [abi.GPU_MODULE_NAME, kernel])
            decl.attributes["splat.layout"] = attrs["layout"]
            if "schedule" in attrs:
                decl.attributes["splat.schedule"] = attrs["schedule"]
            if "split_schedule" in attrs:
                decl.attributes["splat.split_schedule"] = attrs["split_schedule"]
            if dkv_kernel is not None:
                decl.attributes["splat.dkv_kernel"] = ir.SymbolRefAttr.get(
                    [abi.GPU_MODULE_NAME, dkv_kernel])
                decl.attributes["splat.col_schedule"] = attrs["col_schedule"]
                if "col_split_schedule" in attrs:
                    decl.attributes["splat.col_split_schedule"] = attrs["col_split_schedule"]
            if target.name in ("splat.attention", "splat.sddmm"):
                decl.attributes["splat.scale"] = scale
        with ir.InsertionPoint(target), target.location:
            call = func.CallOp(decl, list(target.operands))
        for old, new in zip(target.results, call.results):
            old.replace_all_uses_with(new)
        target.erase()

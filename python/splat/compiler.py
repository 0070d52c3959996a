"""The compiler: pattern -> PTX artifact, through the stages of ``splat.stages.STAGES``.

The pattern (or mask) is analysed here in Python (``splat.analysis``, numpy) and written into
the attention IR as a ``#splat.acsr`` layout; the stages then run in order (analyze keeps an
ACSR layout as it is, tile, lower, nvvm, ptx). The kernels do not depend on the mask, so the
stages that only lower the ``gpu.module`` are skipped when ``splat.lowering.ptx_cache`` has the
PTX of the same module text. ``SPLAT_DUMP_DIR`` (or ``dump_dir=``) writes the IR after each
stage as ``<n>-<stage>.mlir``, and the PTX (every stage runs then). The same stages run in
``splat-opt`` as ``--pass-pipeline='builtin.module(splat-to-ptx)'``.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
from mlir import ir
from mlir.dialects import func

from . import abi
from .analysis.acsr import ACSR
from .analysis.acsr_attr import acsr_to_attr
from .analysis import analyze
from .dialects import splat as splat_d
from .ir import make_context
from .lowering import backward_kernels, fused_config, ptx_cache
from .pipeline import build_pass_manager
from .runtime.artifact import FORMAT, Artifact, artifact_key
from .stages import CHIPS, STAGES, StageOptions, check_option
from .tiling.schedule import PLANS
from .tiling import decomposed
from .tiling.schedule_attr import attr_to_schedule
from .passes.lower_to_gpu import chosen_kernel
from .tiling.variants import resolve_kernel
from .tools.extract_ptx import binaries_ptx
from .version import compiler_version

_ELEMENT_TYPES = {"bf16": ir.BF16Type, "f16": ir.F16Type}


class CompileError(RuntimeError):
    """A stage failed; the message holds its diagnostics."""


def _qkv_types(lq: int, lk: int, dtype: str, head_dim: int):
    """q (and o) ``?x?xLqxD``, k/v ``?x?xLkxD`` tensor types: B and H stay dynamic, the kernels
    serve every batch and head count."""
    if dtype not in _ELEMENT_TYPES:
        raise ValueError(f"dtype must be one of {sorted(_ELEMENT_TYPES)}, got {dtype!r}")
    element = _ELEMENT_TYPES[dtype].get()
    dyn = ir.ShapedType.get_dynamic_size()
    return (ir.RankedTensorType.get([dyn, dyn, lq, head_dim], element),
            ir.RankedTensorType.get([dyn, dyn, lk, head_dim], element))


def attention_module(layout: ir.Attribute, *, lq: int, lk: int, dtype: str, head_dim: int,
                     scale: float | None = None) -> ir.Module:
    """``func @attention(q, k, v) -> o`` holding one splat.attention."""
    q_t, kv_t = _qkv_types(lq, lk, dtype, head_dim)
    module = ir.Module.create()
    with ir.InsertionPoint(module.body):
        @func.FuncOp.from_py_func(q_t, kv_t, kv_t, name="attention")
        def _attention(q, k, v):
            kwargs = {} if scale is None else {"scale": ir.FloatAttr.get_f32(scale)}
            return splat_d.AttentionOp(q_t, q, k, v, layout, **kwargs).result
    return module


def decomposed_module(layout: ir.Attribute, *, lq: int, lk: int, width: int, dtype: str,
                      head_dim: int, scale: float | None = None) -> ir.Module:
    """``func @attention(q, k, v) -> o`` as splat.sddmm -> splat.softmax -> splat.spmm over a
    compressed ``B x H x Lq x width`` f32 score tensor."""
    q_t, kv_t = _qkv_types(lq, lk, dtype, head_dim)
    dyn = ir.ShapedType.get_dynamic_size()
    s_t = ir.RankedTensorType.get([dyn, dyn, lq, width], ir.F32Type.get())
    module = ir.Module.create()
    with ir.InsertionPoint(module.body):
        @func.FuncOp.from_py_func(q_t, kv_t, kv_t, name="attention")
        def _attention(q, k, v):
            kwargs = {} if scale is None else {"scale": ir.FloatAttr.get_f32(scale)}
            scores = splat_d.SddmmOp(s_t, q, k, layout, **kwargs).result
            probs = splat_d.SoftmaxOp(s_t, scores, layout).result
            return splat_d.SpmmOp(q_t, probs, v, layout).result
    return module


def _as_acsr(pattern) -> ACSR:
    if isinstance(pattern, ACSR):
        # checked when compile() builds its #splat.acsr attribute: the dialect's verifier checks
        # what ACSR.validate() does (bounds, disjoint pieces, remainder), in time linear in the
        # pieces and rows, where validate() expands remainder rows (seconds for 1 000 blocks)
        return pattern
    if isinstance(pattern, np.ndarray):
        from .patterns import from_mask
        pattern = from_mask(pattern)
    return analyze(pattern)


VARIANTS = ("fused", "decomposed", "backward")


def compile(pattern, *, dtype: str = "bf16", head_dim: int = 64, target: str = "sm_90a",
            scale: float | None = None, block_n: int | None = None, variant: str = "fused",
            plan: str = "auto", mma: str = "auto", block_m: int | None = None,
            warp_rows: int | None = None, kv_loads: str = "auto",
            dump_dir: str | os.PathLike | None = None) -> Artifact:
    """Compile ``pattern`` (a Pattern, an ACSR or a bool mask) into an
    :class:`~splat.runtime.Artifact` (PTX + manifest + tables).

    ``variant="fused"``: one flash-style kernel over the tile schedule; ``"decomposed"``: the
    paper's sddmm -> softmax -> spmm kernels over a compressed score tensor (for comparison);
    ``"backward"``: the gradient kernels (dQ over the row schedule, dK/dV over the column
    schedule; docs/design.md §6), launched by ``Launcher.backward`` with the forward's lse.
    ``plan``: the row tile plans, ``"auto"`` (per tile by the cost model) or forced ``"affine"`` /
    ``"blocks"`` (tests, benchmarks, benchmarks/calibrate_cost.py).
    ``mma``: the fused kernel's tensor-core instruction, ``"auto"`` (the kernel variant the
    tiler prices lowest among the target's instructions, ``abi.mma_offer``: mma.sync unless
    cost_model.json lists measured wgmma variants, for sm_90a), or forced ``"mma_sync"`` /
    ``"wgmma"`` (sm_90a only); for ``variant="backward"`` the gradient kernels' instruction,
    ``"auto"`` being wgmma on sm_90a and mma_sync elsewhere (`abi.backward_mma`).
    ``block_m``: query rows per row tile, ``abi.BLOCK_M_CHOICES``; default: the kernel variant
    (``splat.tiling.variants``) whose schedule the measured cost model prices lowest (the
    wgmma kernel: ``abi.WGMMA_BLOCK_M``; the decomposed variant: ``abi.BLOCK_M``).
    ``warp_rows``: query rows per warp of the fused kernel, ``abi.WARP_ROWS_CHOICES``; default:
    the variant's for the tile height (16 for 64 rows; 32 = two m16 tiles a warp sharing each
    K/V fragment, mma.sync only).  The manifest records both.
    ``kv_loads``: who gathers K/V for the wgmma kernel, ``"compute"`` (its own warps, between
    CTA barriers) or ``"producer"`` (a producer warpgroup behind mbarriers; the manifest records
    ``load_warpgroup``); ``"auto"``: ``abi.resolve_kv_loads``."""
    # Every argument is checked here, before any of it reaches MLIR or LLVM (where a bad value
    # can abort the process or be spliced into a pipeline).
    # The tile shape options given explicitly: part of the artifact's key (below), as what the
    # stages choose without them is the pattern's default artifact.
    given = {k: v for k, v in (("block_n", block_n), ("block_m", block_m),
                               ("warp_rows", warp_rows)) if v is not None}
    if not isinstance(dtype, str) or dtype not in _ELEMENT_TYPES:
        raise ValueError(f"dtype must be one of {sorted(_ELEMENT_TYPES)}, got {dtype!r}")
    try:
        head_dim = check_option("head_dim", head_dim, abi.HEAD_DIMS)
    except ValueError:
        raise ValueError(f"head_dim must be one of {', '.join(map(str, abi.HEAD_DIMS))}, "
                         f"got {head_dim!r}") from None
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    backward = variant == "backward"
    if backward and head_dim not in abi.BACKWARD_HEAD_DIMS:
        raise ValueError(f"head_dim: the backward kernels are built for "
                         f"{' or '.join(map(str, abi.BACKWARD_HEAD_DIMS))}, got {head_dim}")
    if backward and warp_rows not in (None, abi.WARP_ROWS):
        raise ValueError(f"warp_rows: variant 'backward' runs {abi.WARP_ROWS}-row warps; leave "
                         f"warp_rows unset")
    check_option("target", target, CHIPS)
    check_option("plan", plan, PLANS)
    check_option("mma", mma, ("auto",) + abi.MMA_KINDS)
    if mma == "wgmma" and not backward and head_dim not in abi.WGMMA_HEAD_DIMS:
        raise ValueError(abi.wgmma_head_dim_error(head_dim))
    check_option("kv_loads", kv_loads, ("auto",) + abi.KV_LOADS)
    loads_error = abi.wgmma_loads_error(head_dim, producer=kv_loads != "compute")
    if mma == "wgmma" and not backward and loads_error:
        raise ValueError(f"kv_loads: {loads_error}")
    # 0: the chosen kernel variant's (the tuned abi.DEFAULT_BLOCK_N unless the variant has its own)
    block_n = 0 if block_n is None else check_option("block_n", block_n, abi.BLOCK_N_CHOICES)
    # 0: chosen by the stages (the tile pass prices the kernel variants; the lowering takes the
    # chosen variant's warp shape)
    if kv_loads == "producer" and (mma == "mma_sync" or variant != "fused"
                                   or target not in abi.WGMMA_CHIPS):
        raise ValueError(f"kv_loads 'producer' needs the fused variant with mma 'wgmma' (target "
                         f"sm_90a); got variant {variant!r}, mma {mma!r}, target {target!r}")
    if block_m is not None:
        block_m = check_option("block_m", block_m, abi.BLOCK_M_CHOICES)
        why = backward and abi.backward_block_m_error(block_m, abi.backward_mma(mma, target),
                                                      head_dim)
        if why:
            raise ValueError(f"block_m: {why}")
    elif backward:
        block_m = abi.BACKWARD_BLOCK_M
    elif variant == "fused":  # the kernel variant the tiler prices lowest
        block_m = 0
    else:
        block_m = abi.BLOCK_M
    warp_rows = 0 if warp_rows is None else check_option("warp_rows", warp_rows,
                                                         abi.WARP_ROWS_CHOICES)
    if backward:
        warp_rows = abi.WARP_ROWS
    if warp_rows > abi.WARP_ROWS and head_dim > abi.MAX_HEAD_DIM_32_ROW_WARPS:
        raise ValueError(f"warp_rows: {warp_rows}-row warps need head_dim <= "
                         f"{abi.MAX_HEAD_DIM_32_ROW_WARPS} (a warp's output accumulators would not "
                         f"fit its registers); got head_dim {head_dim}")
    scale = _checked_scale(scale)
    _check_lengths(pattern)
    acsr = _as_acsr(pattern)
    dump_dir = dump_dir or os.environ.get("SPLAT_DUMP_DIR")
    dump = Path(dump_dir) if dump_dir else None
    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
    with make_context(), ir.Location.unknown():
        try:
            layout = acsr_to_attr(acsr)
        except ir.MLIRError as e:  # the #splat.acsr verifier refused a hand-built layout
            why = "; ".join(d.message for d in e.error_diagnostics) or str(e)
            raise ValueError(f"pattern: invalid ACSR layout: {why}") from None
        if variant != "decomposed":
            module = attention_module(layout, lq=acsr.Lq, lk=acsr.Lk, dtype=dtype,
                                      head_dim=head_dim, scale=scale)
        else:
            width = decomposed.score_width(acsr.max_row_nnz)
            module = decomposed_module(layout, lq=acsr.Lq, lk=acsr.Lk, width=width, dtype=dtype,
                                       head_dim=head_dim, scale=scale)
        schedule = split = columns = col_split = ptx = cache_key = None
        options = StageOptions(chip=target, block_n=block_n, block_m=block_m, plan=plan,
                               mma=mma, warp_rows=warp_rows, kv_loads=kv_loads,
                               backward=backward)
        # the options that change the artifact, where given or not the defaults: part of its
        # key, so two compiles of one pattern never share a key (launchers are cached by it)
        keyed = {k: int(v) for k, v in given.items()}
        if plan != "auto":
            keyed["plan"] = plan
        if mma != "auto":
            keyed["mma"] = mma
        if kv_loads != "auto":
            keyed["kv_loads"] = kv_loads
        for n, stage in enumerate(STAGES):
            if stage.kernels_only and ptx is not None:
                continue  # the same kernels were lowered before
            try:
                build_pass_manager(stage.pipeline(options)).run(module.operation)
            except ir.MLIRError as e:
                raise CompileError(f"stage '{stage.name}' failed: {e}") from None
            if stage.name == "tile" and variant != "decomposed":
                op = _attention_op(module)
                attrs = op.attributes
                schedule = attr_to_schedule(attrs["schedule"], acsr.Lq, acsr.Lk)
                # the build splat-lower-to-gpu will make: the options, else the tiler's choice
                kernel = resolve_kernel("mma_sync" if backward else mma, kv_loads, warp_rows,
                                        chosen_kernel(op), schedule.block_m, head_dim)
                if "split_schedule" in attrs:
                    split = attr_to_schedule(attrs["split_schedule"], acsr.Lq, acsr.Lk)
                if "col_schedule" in attrs:  # the transposed layout's: Lk "rows" of Lq "keys"
                    columns = attr_to_schedule(attrs["col_schedule"], acsr.Lk, acsr.Lq)
                if "col_split_schedule" in attrs:
                    col_split = attr_to_schedule(attrs["col_split_schedule"], acsr.Lk, acsr.Lq)
            if stage.name == "lower" and dump is None:
                kernels = _gpu_module(module)
                cache_key = ptx_cache.ptx_key(str(kernels), repr(options), compiler_version())
                ptx = ptx_cache.lookup(cache_key, _kernel_names(kernels))
            _dump(dump, n, stage.name, module)
        if ptx is None:
            ptx = binaries_ptx(module)[abi.GPU_MODULE_NAME]
            if cache_key is not None:
                ptx_cache.store(cache_key, ptx)
    if dump is not None:
        (dump / "kernel.ptx").write_text(ptx)
    if variant == "decomposed":
        art = _decomposed_artifact(acsr, ptx, dtype=dtype, head_dim=head_dim, target=target,
                                   scale=scale, options=keyed)
    elif backward:
        art = _backward_artifact(acsr, (schedule, split), (columns, col_split), ptx,
                                 dtype=dtype, head_dim=head_dim, target=target, scale=scale,
                                 options=keyed, mma=abi.backward_mma(mma, target))
    else:
        art = _artifact(acsr, schedule, ptx, dtype=dtype, head_dim=head_dim, target=target,
                        scale=scale, block_n=schedule.block_n, mma=kernel.mma,
                        split=split, options=keyed, block_m=schedule.block_m,
                        load_warpgroup=kernel.load_warpgroup, warp_rows=kernel.warp_rows)
    _check_shared_memory(art, target)
    return art


def _check_shared_memory(art: Artifact, target: str) -> None:
    """Refuse an artifact whose kernels need more shared memory than a CTA may have on
    ``target`` (sm_86 and sm_89 allow 99 KiB: the D = 256 masked forward and the wider backward
    kernels do not fit), rather than leaving it to fail at launch."""
    limit = abi.MAX_SHARED_BYTES[target]
    for k in art.manifest["kernels"]:
        if k["shared_bytes"] > limit:
            roomier = [f"{t}: {b}" for t, b in abi.MAX_SHARED_BYTES.items() if b >= k["shared_bytes"]]
            way_out = [f"a smaller block_n (this one is {k['block_n']})"] if k.get(
                "block_n", 0) > min(abi.BLOCK_N_CHOICES) else []
            if roomier:
                way_out.append(f"a chip with more ({', '.join(roomier)})")
            if art.head_dim > min(abi.HEAD_DIMS):
                way_out.append("a smaller head_dim")
            raise ValueError(
                f"target {target}: kernel {k['name']} needs {k['shared_bytes']} bytes of shared "
                f"memory, more than the {limit} a CTA may have on {target} (head_dim "
                f"{art.head_dim}); compile with {' or '.join(way_out)}")


_F32_MAX = 3.4028234663852886e38


def _check_lengths(pattern) -> None:
    """Refuse sizes the int32 tables cannot index before analysing or tiling anything (a
    2**31-row window used to run for minutes and exhaust memory first)."""
    shape = getattr(pattern, "shape", None) or (getattr(pattern, "Lq", 0), getattr(pattern, "Lk", 0))
    lq, lk = (int(x) for x in tuple(shape)[:2])
    if max(lq, lk) > abi.MAX_LENGTH:
        raise ValueError(f"pattern is {lq} x {lk}: Lq and Lk must be <= {abi.MAX_LENGTH} (the "
                         f"schedule tables and kernel indices are int32)")


def _checked_scale(scale) -> float | None:
    """None, or the scale as a float: finite, > 0 (the kernel takes the running max on raw
    scores and scales afterwards) and representable in f32."""
    if scale is None:
        return None
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise ValueError(f"scale must be a number, got {type(scale).__name__} {scale!r:.40}")
    value = float(scale)
    if not (math.isfinite(value) and 0.0 < value <= _F32_MAX):
        raise ValueError(f"scale must be finite, > 0 and fit f32, got {scale!r}")
    return value


def _gpu_module(module: ir.Module) -> ir.Operation:
    return next(op.operation for op in module.body.operations
                if op.operation.name == "gpu.module"
                and ir.StringAttr(op.attributes["sym_name"]).value == abi.GPU_MODULE_NAME)


def _kernel_names(gpu_module: ir.Operation) -> list[str]:
    return [ir.StringAttr(op.attributes["sym_name"]).value
            for op in gpu_module.regions[0].blocks[0].operations
            if op.operation.name == "gpu.func"]


def _attention_op(module: ir.Module) -> ir.Operation:
    body = module.body.operations[0].regions[0].blocks[0]
    return next(op.operation for op in body.operations if op.operation.name == "splat.attention")


def _dump(directory: Path | None, n: int, stage: str, module) -> None:
    # printed only when dumping: the module carries the schedule tables as attributes, whose
    # text costs ~0.1 s a stage for fragmented layouts
    if directory is not None:
        (directory / f"{n}-{stage}.mlir").write_text(str(module))


def _manifest(acsr: ACSR, *, dtype: str, head_dim: int, target: str, scale: float | None,
              variant: str, kernels: list, tables: dict, options: dict) -> dict:
    """The manifest fields every variant shares (docs/design.md section 4)."""
    acsr_text = acsr.to_text()
    for kernel in kernels:
        kernel["ptx_file"] = "kernel.ptx"
    return {
        "format": FORMAT,
        "compiler_version": compiler_version(),
        "key": artifact_key(acsr=acsr_text, Lq=acsr.Lq, Lk=acsr.Lk, dtype=dtype,
                            head_dim=head_dim, target=target,
                            compiler_version=compiler_version(), variant=variant,
                            options=options),
        "variant": variant,
        "target": target,
        "dtype": dtype,
        "head_dim": head_dim,
        "shapes": {"Lq": acsr.Lq, "Lk": acsr.Lk},
        "scale": scale if scale is not None else abi.default_scale(head_dim),
        "kernels": kernels,
        "tables": {name: {"file": f"{name}.npy", "dtype": "int32", "shape": list(t.shape)}
                   for name, t in tables.items()},
        "acsr": acsr_text,
        **({"options": dict(options)} if options else {}),
    }


def _decomposed_artifact(acsr: ACSR, ptx: str, *, dtype: str, head_dim: int, target: str,
                         scale: float | None, options: dict) -> Artifact:
    info = decomposed.decomposed_launch_info(dtype, head_dim, acsr.max_row_nnz)
    tables = decomposed.decomposed_tables(acsr)
    manifest = _manifest(acsr, dtype=dtype, head_dim=head_dim, target=target, scale=scale,
                         variant="decomposed", kernels=info["kernels"], tables=tables,
                         options=options)
    manifest["scratch"] = info["scratch"]
    return Artifact(manifest=manifest, ptx={"kernel.ptx": ptx}, tables=tables).validate()


def _artifact(acsr: ACSR, schedule, ptx: str, *, dtype: str, head_dim: int, target: str,
              scale: float | None, block_n: int, mma: str, options: dict,
              split=None, block_m: int = abi.BLOCK_M,
              warp_rows: int = abi.WARP_ROWS, load_warpgroup: bool = False) -> Artifact:
    kernel = fused_config.kernel_launch_info(dtype, head_dim, block_n,
                                             mask_tiles=schedule.has_masks, mma=mma,
                                             block_m=block_m, warp_rows=warp_rows,
                                             load_warpgroup=load_warpgroup)
    tables = schedule.kernel_tables()
    kernels = [kernel]
    if split is not None:
        # split-KV: then the accumulating kernel over the second schedule, folding its result
        # into the o and lse the first launch wrote (splat.tiling.split)
        tables.update(split.kernel_tables(abi.SPLIT_TABLES))
        kernels.append(_split_launch(dtype, head_dim, block_n, mma, block_m, warp_rows,
                                     load_warpgroup))
    manifest = _manifest(acsr, dtype=dtype, head_dim=head_dim, target=target, scale=scale,
                         variant="fused", kernels=kernels, tables=tables, options=options)
    manifest["stats"] = schedule.stats()
    if split is not None:
        manifest["split_stats"] = split.stats()
    return Artifact(manifest=manifest, ptx={"kernel.ptx": ptx}, tables=tables).validate()


def _backward_artifact(acsr: ACSR, rows: tuple, columns: tuple, ptx: str, *, dtype: str,
                       head_dim: int, target: str, scale: float | None,
                       options: dict, mma: str) -> Artifact:
    """dQ over the row schedule's tables (the forward's names) and its split's
    (``abi.SPLIT_TABLES``), then dK/dV over the column schedule's (``abi.COL_TABLES``) and its
    split's (``abi.COL_SPLIT_TABLES``): launched in that order by ``Launcher.backward``.
    ``rows``, ``columns``: (schedule, split or None); ``mma``: the kernels' instruction."""
    (main, split), (cols, col_split) = rows, columns
    tables = main.kernel_tables() | cols.kernel_tables(abi.COL_TABLES)
    info = functools.partial(backward_kernels.launch_info, dtype=dtype, head_dim=head_dim,
                             block_n=main.block_n, mma=mma, block_m=main.block_m)
    kernels = [info("dq", masked=main.has_masks)]
    if split is not None:
        tables.update(split.kernel_tables(abi.SPLIT_TABLES))
        kernels.append(info("dq", masked=False, accumulate=True))
    kernels.append(info("dkv", masked=cols.has_masks))
    if col_split is not None:
        tables.update(col_split.kernel_tables(abi.COL_SPLIT_TABLES))
        kernels.append(info("dkv", masked=False, accumulate=True))
    manifest = _manifest(acsr, dtype=dtype, head_dim=head_dim, target=target, scale=scale,
                         variant="backward", kernels=kernels, tables=tables, options=options)
    manifest["stats"] = main.stats()
    manifest["col_stats"] = cols.stats()
    for name, sched in (("split_stats", split), ("col_split_stats", col_split)):
        if sched is not None:
            manifest[name] = sched.stats()
    return Artifact(manifest=manifest, ptx={"kernel.ptx": ptx}, tables=tables).validate()


def _split_launch(dtype: str, head_dim: int, block_n: int, mma: str, block_m: int,
                  warp_rows: int, load_warpgroup: bool) -> dict:
    """The accumulating kernel's entry, bound to the split schedule's tables (its grid: one CTA
    per split row tile)."""
    k = fused_config.kernel_launch_info(dtype, head_dim, block_n, accumulate=True, mma=mma,
                                        block_m=block_m, warp_rows=warp_rows,
                                        load_warpgroup=load_warpgroup)
    k["params"] = [dict(p, name=abi.SPLIT_TABLES.get(p["name"], p["name"])) for p in k["params"]]
    k["tables"] = [abi.SPLIT_TABLES.get(t, t) for t in k["tables"]]
    k["tile_table"] = abi.SPLIT_TABLES["row_tiles"]
    return k

"""``splat_attention``: SPLAT attention as a JAX primitive (``jax.jit``, ``jax.vmap``; issue 13).

``h = splat.jax.prepare(pattern, head_dim=64, dtype="bf16")`` resolves and checks the artifact
once (`splat.runtime.prepared`) and returns a `JaxAttention`; ``h(q, k, v)`` binds the
primitive with the handle's key and scale as static parameters. Its lowering emits the
artifact's kernels as XLA custom calls on XLA's stream, through one of the two launch routes of
`splat.jax_ffi` (SPLAT's FFI handler library, or jaxlib's GPU kernel-call handler): no
PyTorch, no host synchronisation and no Python on the launch path; the call is part of the
compiled program.

How the kernel ABI maps onto a custom call (docs/runtime.md, "The JAX primitive"): a memref
parameter of the MLIR kernel is ``allocated ptr, aligned ptr, offset, sizes, strides``; the
pointers are buffers of the call, offset, sizes and strides (row-major) are constants of the
problem size, which is static under ``jit``. The schedule tables are constants of the program.
The first kernel's ``o`` and ``lse`` are results of its call (on the jaxlib route, operands
filled and aliased to the results, since that handler takes buffers in operand order); a
split-KV artifact's second kernel takes them as aliased operands and folds into them.

Batching (``vmap``): the mapped axis of q, k and v is folded into the batch axis (an unmapped
argument is broadcast first), one call runs, and the results are unfolded.

Gradients (issue 14): the handle's function is a ``jax.custom_vjp``. Its backward binds
``splat_attention_backward`` (q, k, v, dO, o, lse and the lse cotangent),
which lowers the backward artifact of the handle's layout (`resolve_backward`, found when the
gradient is first traced) the same way: dQ, then dK/dV, as custom calls.

Limits: fused artifacts only (the decomposed variant needs scratch buffers). JAX is imported on
first use.
"""

from __future__ import annotations

import functools
import math
import threading
import zlib
from typing import Any

import numpy as np

from . import jax_ffi
from .runtime.artifact import Artifact
from .runtime.launcher import Shapes
from .runtime.prepared import handle_key, resolve_backward, resolve_prepared
from .runtime.resolve import AUTO_TARGET
from .runtime.validate import (SplatInputError, TensorDesc, default_scale, normalize_dtype,
                               validate_against_artifact, validate_inputs)

__all__ = ["JaxAttention", "prepare", "check_arrays", "PRIMITIVE_NAME"]

PRIMITIVE_NAME = "splat_attention"
BACKWARD_PRIMITIVE_NAME = "splat_attention_backward"
# jaxlib's GPU kernel-call handler (XLA FFI, API version 4) and its parameter types
_KERNEL_CALL_TARGET = "triton_kernel_call_ffi"
_SCALAR_TYPES = {"f32": "fp32", "i32": "i32"}

_artifacts: dict[str, Artifact] = {}  # artifact key -> artifact (the primitive's registry)
_lock = threading.Lock()
_primitive: Any = None
_bwd_primitive: Any = None
_backward_keys: dict[str, str] = {}  # forward artifact key -> its backward artifact's key


def _jax():
    try:
        import jax  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"splat.jax needs JAX ({e})") from None
    return jax


# ------------------------------------------------------------------------------ the primitive


def _define_primitive():
    """Define the primitives once per process (the forward and the backward): abstract
    evaluation, the CUDA lowering, the batching rule."""
    global _primitive, _bwd_primitive
    if _primitive is not None:
        return _primitive
    _jax()
    from jax.extend import core as jex_core  # noqa: PLC0415
    from jax.interpreters import batching, mlir  # noqa: PLC0415

    def define(name, abstract_eval, lowering):
        prim = jex_core.Primitive(name)
        prim.multiple_results = True
        prim.def_impl(lambda *args, key, scale: _eager(prim, key, scale)(*args))
        prim.def_abstract_eval(abstract_eval)
        mlir.register_lowering(prim, lowering, platform="cuda")
        mlir.register_lowering(prim, _no_cpu_lowering, platform="cpu")
        batching.primitive_batchers[prim] = functools.partial(_batch, prim)
        return prim

    with _lock:
        if _primitive is None:
            _bwd_primitive = define(BACKWARD_PRIMITIVE_NAME, _backward_abstract_eval,
                                    _backward_lowering)
            _primitive = define(PRIMITIVE_NAME, _abstract_eval, _lowering)
    return _primitive


@functools.lru_cache(maxsize=256)
def _eager(prim, key: str, scale: float):
    """The compiled program of an eager call (a primitive runs through jit): one per handle,
    so repeated eager calls reuse it instead of tracing and compiling a new function."""
    jax = _jax()
    return jax.jit(functools.partial(prim.bind, key=key, scale=scale))


def _backward_abstract_eval(q, k, v, do, o, lse, dlse, *, key: str, scale: float):
    """dq like q, dk like k, dv like v (the inputs were checked by the forward)."""
    jax = _jax()
    return tuple(jax.core.ShapedArray(x.shape, x.dtype) for x in (q, k, v))


def _backward_lowering(ctx, *args, key: str, scale: float):
    jax = _jax()
    B, H, Lq, _ = ctx.avals_in[0].shape
    delta = jax.core.ShapedArray((B, H, Lq), np.float32)  # the dQ kernel's, for dK/dV's
    return _lower_kernels(ctx, _artifacts[key], ("q", "k", "v", "do", "o", "lse", "dlse"),
                          args, ("dq", "dk", "dv"), scale, temps={"delta": delta})


@functools.lru_cache(maxsize=1)
def _differentiable():
    """``attend(q, k, v, key, scale) -> (o, lse)`` with the backward kernels as its VJP."""
    jax = _jax()
    import jax.numpy as jnp  # noqa: PLC0415

    @functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
    def attend(q, k, v, key, scale):
        return tuple(_primitive.bind(q, k, v, key=key, scale=scale))

    def forward(q, k, v, key, scale):
        o, lse = _primitive.bind(q, k, v, key=key, scale=scale)
        return (o, lse), (q, k, v, o, lse)

    def backward(key, scale, saved, cotangents):
        q, k, v, o, lse = saved
        do, dlse = cotangents  # dS = P (dP - Δ) with Δ = rowsum(dO O) - dlse (the dQ kernel's)
        return tuple(_bwd_primitive.bind(q, k, v, do.astype(q.dtype), o, lse,
                                         dlse.astype(jnp.float32), key=_backward_key(key),
                                         scale=scale))

    attend.defvjp(forward, backward)
    return attend


def _backward_key(key: str) -> str:
    """The registry key of the backward artifact of forward artifact ``key`` (resolved once)."""
    hit = _backward_keys.get(key)
    if hit is None:
        art = resolve_backward(_artifacts[key])
        hit = handle_key(art)
        with _lock:
            _artifacts.setdefault(hit, art)
            _backward_keys[key] = hit
    return hit


def _abstract_eval(q, k, v, *, key: str, scale: float):
    """(o like q, float32 lse (B, H, Lq)), after the entry points' input checks
    (`splat.runtime.validate`; the sizes are static here). Placement is not known for an
    abstract value: `check_arrays` and the CPU lowering refuse the CPU."""
    jax = _jax()
    descs = (TensorDesc(n, tuple(x.shape), str(x.dtype), "cuda") for n, x in
             (("q", q), ("k", k), ("v", v)))
    shapes, dtype, _ = validate_inputs(*descs)
    validate_against_artifact(shapes, dtype, _artifacts[key])
    B, H, Lq, _ = q.shape
    return (jax.core.ShapedArray(q.shape, q.dtype),
            jax.core.ShapedArray((B, H, Lq), np.float32))


def check_arrays(**arrays) -> None:
    """SplatInputError naming the argument unless each is a jax.Array (or a tracer of one)
    and, where it is concrete, lives on one CUDA GPU (types first, then placement)."""
    jax = _jax()
    for name, x in arrays.items():
        if not isinstance(x, jax.Array):
            raise SplatInputError(name, f"expected a jax.Array, got {type(x).__name__}")
    for name, x in arrays.items():
        if isinstance(x, jax.core.Tracer):
            continue  # placement is XLA's: a CPU lowering refuses below
        devices = x.devices()
        if len(devices) != 1 or next(iter(devices)).platform != "gpu":
            raise SplatInputError(name, f"expected an array on one CUDA GPU, got one on "
                                        f"{sorted(d.platform for d in devices)}")


def _no_cpu_lowering(ctx, *args, **params):
    raise SplatInputError("q", "splat.jax runs on CUDA GPUs only; this computation is placed "
                               "on the CPU")


def _batch(prim, args, dims, *, key: str, scale: float):
    """vmap: fold the mapped axis into the batch axis (B), call once, unfold. An unmapped
    argument (dimension None) is broadcast along the mapped axis first."""
    import jax.numpy as jnp  # noqa: PLC0415

    size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
    folded = []
    for a, d in zip(args, dims):
        a = jnp.broadcast_to(a, (size,) + a.shape) if d is None else jnp.moveaxis(a, d, 0)
        folded.append(a.reshape((size * a.shape[1],) + a.shape[2:]))
    outs = prim.bind(*folded, key=key, scale=scale)
    return tuple(x.reshape((size, -1) + x.shape[1:]) for x in outs), (0,) * len(outs)


def _launch_sizes(art: Artifact, kernel: dict, shapes: Shapes) -> tuple[tuple, int]:
    """``(grid, threads)`` of one kernel: a CTA per (row tile, head, batch), or for the
    backward's dK/dV (grid "col_tiles") per (column tile, kv head, batch)."""
    if kernel["grid"] not in ("row_tiles", "col_tiles"):
        raise SplatInputError("pattern", f"kernel {kernel['name']!r} is not a fused row-tile "
                                         f"kernel; splat.jax runs fused artifacts only")
    block = [int(x) for x in kernel["block"]]
    if block[1:] != [1, 1] or block[0] % 32:
        raise SplatInputError("pattern", f"kernel {kernel['name']!r} block {block} is not "
                                         f"whole warps along x")
    table = kernel.get("tile_table", "row_tiles")
    heads = shapes.Hkv if kernel["grid"] == "col_tiles" else shapes.H
    grid = (int(np.asarray(art.tables[table]).shape[0]), heads, shapes.B)
    return grid, block[0]


def _jaxlib_call(art: Artifact, kernel: dict, params, shapes: Shapes, cc: int) -> bytes:
    """jaxlib's serialized kernel call (PTX, grid, block, shared memory, parameters): an array
    parameter takes the call's next operand, so a memref's allocated pointer is passed as 0
    (the kernel reads through the aligned one)."""
    from jax._src.lib import gpu_triton  # noqa: PLC0415

    grid, threads = _launch_sizes(art, kernel, shapes)
    ptx_params = [gpu_triton.create_scalar_parameter(0, "i64") if kind == "alloc" else
                  gpu_triton.create_array_parameter(0, 0) if kind == "buffer" else
                  gpu_triton.create_scalar_parameter(value, _SCALAR_TYPES.get(kind, kind))
                  for kind, value in params]
    handle = gpu_triton.TritonKernel(kernel["name"], threads // 32, 1,
                                     int(kernel["shared_bytes"]), art.ptx[kernel["ptx_file"]],
                                     "", cc)
    call = gpu_triton.TritonKernelCall(handle, *grid, ptx_params)
    return zlib.compress(call.to_proto(kernel["name"], b""))


def _lowering(ctx, q, k, v, *, key: str, scale: float):
    """The forward artifact's kernels: o and lse (docstring of `_lower_kernels`)."""
    return _lower_kernels(ctx, _artifacts[key], ("q", "k", "v"), (q, k, v), ("o", "lse"),
                          scale)


def _lower_kernels(ctx, art: Artifact, in_names, ins, out_names, scale: float,
                   temps: dict | None = None) -> list:
    """An artifact's kernels, in launch order, as custom calls on XLA's stream (the route of
    `splat.jax_ffi.launch_route`). A call's results are the outputs among its kernel's buffers:
    new ones are results of the call, ones an earlier call produced (a split-KV artifact's o
    and lse, folded into by the accumulating kernel) are operands aliased to its results.
    ``temps`` (name -> aval): buffers one call produces for later ones (the backward's delta),
    results of their calls but not of the primitive."""
    jax = _jax()
    # jax's lowering helpers (constants, fills) are not all public; jaxlib's kernel-call
    # handler is jaxlib-internal too (module docstring)
    from jax._src.interpreters import mlir  # noqa: PLC0415

    route = jax_ffi.launch_route()
    temps = temps or {}
    avals = dict(zip(in_names, ctx.avals_in)) | dict(zip(out_names, ctx.avals_out)) | temps
    B, H, Lq, D = avals["q"].shape
    shapes = Shapes(B, H, avals["k"].shape[1], Lq, avals["k"].shape[2], D)
    values = {n: (x, avals[n]) for n, x in zip(in_names, ins)}
    for name, t in art.tables.items():
        t = np.ascontiguousarray(t, dtype=np.int32)
        values[name] = (mlir.ir_constant(t), jax.core.ShapedArray(t.shape, np.int32))
    table_shapes = {name: np.shape(t) for name, t in art.tables.items()}
    fill = {"lse": -math.inf}  # the rest 0 (every element is overwritten: only a buffer)
    for kernel in art.kernels:
        params = jax_ffi.kernel_params(kernel, shapes, scale, table_shapes)
        names = list(dict.fromkeys(v for kind, v in params if kind == "buffer"))
        results = [n for n in (*temps, *out_names) if n in names]
        if route == "jaxlib":  # its outputs must be operands: fill the new ones
            for n in results:
                if n not in values:
                    values[n] = (_filled(mlir, ctx, fill.get(n, 0.0), avals[n]), avals[n])
        operands = [n for n in names if n in values]
        aliases = {operands.index(n): i for i, n in enumerate(results) if n in operands}
        sub = ctx.replace(avals_in=[values[n][1] for n in operands],
                          avals_out=[avals[n] for n in results])
        if route == "jaxlib":
            opaque = _jaxlib_call(art, kernel, params, shapes, _compute_capability())
            rule = jax.ffi.ffi_lowering(_KERNEL_CALL_TARGET, api_version=4,
                                        operand_output_aliases=aliases)
            produced = rule(sub, *[values[n][0] for n in operands], opaque=opaque)
        else:
            grid, _ = _launch_sizes(art, kernel, shapes)
            kernel_key = jax_ffi.register_kernel(kernel, art.ptx[kernel["ptx_file"]])
            table = jax_ffi.ffi_param_table(params, operands + results)
            rule = jax.ffi.ffi_lowering(jax_ffi.FFI_TARGET, operand_output_aliases=aliases)
            produced = rule(sub, *[values[n][0] for n in operands], kernel=kernel_key,
                            grid=np.asarray(grid, dtype=np.int64), params=table)
        for n, x in zip(results, produced):
            values[n] = (x, avals[n])
    return [values[n][0] for n in out_names]


def _filled(mlir, ctx, value: float, aval):
    """An ``aval``-shaped array of ``value`` (the kernel overwrites every element: it is only
    the buffer the output is aliased to)."""
    if hasattr(mlir, "full_like_aval"):
        return mlir.full_like_aval(ctx, value, aval)
    from jax._src.lib.mlir.dialects import hlo  # noqa: PLC0415

    scalar = mlir.ir_constant(np.array(value, dtype=aval.dtype))
    return hlo.broadcast_in_dim(mlir.aval_to_ir_type(aval), scalar, mlir.dense_int_array([]))


def _compute_capability() -> int:
    from jax._src.lib import gpu_triton  # noqa: PLC0415

    return int(gpu_triton.get_compute_capability(0))


# ------------------------------------------------------------------------------ the handle


class JaxAttention:
    """A prepared SPLAT attention for JAX: ``h(q, k, v) -> o`` (and ``lse`` with
    ``return_lse=True``), traceable by ``jax.jit`` and ``jax.vmap``. Immutable and hashable
    (usable as a static argument); equal when the artifact key and scale agree."""

    __slots__ = ("key", "scale", "dtype", "head_dim", "artifact", "__weakref__")

    def __init__(self, pattern: Any = None, *, head_dim: int | None = None, dtype: Any = None,
                 Lq: int | None = None, Lk: int | None = None, scale: Any = None,
                 artifact: Any = None, target: str = AUTO_TARGET):
        art = resolve_prepared(pattern, head_dim, dtype, Lq, Lk, artifact, target, "fused")
        if any(k["grid"] != "row_tiles" for k in art.kernels):
            raise SplatInputError("artifact", "splat.jax runs fused artifacts only")
        key = handle_key(art)
        with _lock:
            _artifacts.setdefault(key, art)
        fields = dict(key=key, scale=default_scale(scale, art.head_dim, art),
                      dtype=normalize_dtype(art.dtype), head_dim=int(art.head_dim), artifact=art)
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError("JaxAttention is immutable; prepare another")

    def __call__(self, q, k, v, *, return_lse: bool = False):
        check_arrays(q=q, k=k, v=v)
        _define_primitive()
        o, lse = _differentiable()(q, k, v, self.key, float(self.scale))
        return (o, lse) if return_lse else o

    def __eq__(self, other):
        return isinstance(other, JaxAttention) and (other.key, other.scale) == (self.key,
                                                                                 self.scale)

    def __hash__(self):
        return hash((JaxAttention, self.key, self.scale))

    def __repr__(self):
        return (f"JaxAttention(key={self.key[:12]!r}, dtype={self.dtype}, "
                f"head_dim={self.head_dim}, scale={self.scale:g})")


def prepare(pattern: Any = None, *, head_dim: int | None = None, dtype: Any = None,
            Lq: int | None = None, Lk: int | None = None, scale: Any = None,
            artifact: Any = None, target: str = AUTO_TARGET) -> JaxAttention:
    """A `JaxAttention` for `pattern` (or `artifact`): make it once, outside ``jit``."""
    return JaxAttention(pattern, head_dim=head_dim, dtype=dtype, Lq=Lq, Lk=Lk, scale=scale,
                        artifact=artifact, target=target)

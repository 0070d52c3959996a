"""``splat_attention``: SPLAT attention as a JAX primitive (``jax.jit``, ``jax.vmap``; issue 13).

``h = splat.jax.prepare(pattern, head_dim=64, dtype="bf16")`` resolves and checks the artifact
once (`splat.runtime.prepared`) and returns a `JaxAttention`; ``h(q, k, v)`` binds the
primitive with the handle's key and scale as static parameters. Its lowering emits the
artifact's kernels as XLA custom calls of jaxlib's GPU kernel-call handler (the one Pallas'
and jax-triton's Triton kernels go through: ``jax._src.lib.gpu_triton``), which loads PTX, sets
the dynamic shared memory and launches on XLA's stream. So there is no PyTorch, no host
synchronisation and no Python on the launch path: the call is part of the compiled program.

How the kernel ABI maps onto that handler (docs/runtime.md, "The JAX primitive"): the handler
fills the kernel's parameters in order from a list of array parameters (the next buffer of the
custom call: its operands, in order) and scalar parameters (a value fixed at lowering). A
memref parameter of the MLIR kernel is ``allocated ptr, aligned ptr, offset, sizes, strides``:
the aligned pointer is the buffer; the allocated pointer is never dereferenced by the kernel
(it reads through the aligned one) and is passed as 0; offset, sizes and strides (row-major)
are scalars of the problem size, which is static under ``jit``. The schedule tables are
constants of the program. The outputs ``o`` and ``lse`` are operands aliased to the results
(their buffers are in the operand list, where the kernel's parameter order needs them); a
split-KV artifact's second kernel takes the first's results the same way and folds into them.

Batching (``vmap``): the mapped axis of q, k and v is folded into the batch axis (an unmapped
argument is broadcast first), one call runs, and the results are unfolded.

Limits: fused artifacts only (the decomposed variant needs scratch buffers); forward only (the
backward is issue 14). JAX is imported on first use.
"""

from __future__ import annotations

import functools
import math
import threading
import zlib
from typing import Any

import numpy as np

from .runtime.artifact import Artifact
from .runtime.launcher import Shapes, tensor_shapes
from .runtime.prepared import handle_key, resolve_prepared
from .runtime.resolve import DEFAULT_TARGET
from .runtime.validate import (SplatInputError, TensorDesc, default_scale, normalize_dtype,
                               validate_against_artifact, validate_inputs)

__all__ = ["JaxAttention", "prepare", "check_arrays", "PRIMITIVE_NAME"]

PRIMITIVE_NAME = "splat_attention"
# jaxlib's GPU kernel-call handler (XLA FFI, API version 4) and its parameter types
_KERNEL_CALL_TARGET = "triton_kernel_call_ffi"
_SCALAR_TYPES = {"f32": "fp32", "i32": "i32"}

_artifacts: dict[str, Artifact] = {}  # artifact key -> artifact (the primitive's registry)
_lock = threading.Lock()
_primitive: Any = None


def _jax():
    try:
        import jax  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"splat.jax needs JAX ({e})") from None
    return jax


# ------------------------------------------------------------------------------ the primitive


def _define_primitive():
    """Define the primitive once per process: abstract evaluation, the CUDA lowering, the
    batching rule."""
    global _primitive
    if _primitive is not None:
        return _primitive
    jax = _jax()
    from jax.extend import core as jex_core  # noqa: PLC0415
    from jax.interpreters import batching, mlir  # noqa: PLC0415

    with _lock:
        if _primitive is None:
            p = jex_core.Primitive(PRIMITIVE_NAME)
            p.multiple_results = True
            p.def_impl(lambda *args, key, scale: _eager(key, scale)(*args))
            p.def_abstract_eval(_abstract_eval)
            mlir.register_lowering(p, _lowering, platform="cuda")
            mlir.register_lowering(p, _no_cpu_lowering, platform="cpu")
            batching.primitive_batchers[p] = _batch
            _primitive = p
    return _primitive


@functools.lru_cache(maxsize=256)
def _eager(key: str, scale: float):
    """The compiled program of an eager call (a primitive runs through jit): one per handle,
    so repeated eager calls reuse it instead of tracing and compiling a new function."""
    jax = _jax()
    return jax.jit(functools.partial(_primitive.bind, key=key, scale=scale))


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


def _batch(args, dims, *, key: str, scale: float):
    """vmap: fold the mapped axis into the batch axis (B), call once, unfold. An unmapped
    argument (dimension None) is broadcast along the mapped axis first."""
    import jax.numpy as jnp  # noqa: PLC0415

    size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
    folded = []
    for a, d in zip(args, dims):
        a = jnp.broadcast_to(a, (size,) + a.shape) if d is None else jnp.moveaxis(a, d, 0)
        folded.append(a.reshape((size * a.shape[1],) + a.shape[2:]))
    o, lse = _primitive.bind(*folded, key=key, scale=scale)
    return (o.reshape((size, -1) + o.shape[1:]), lse.reshape((size, -1) + lse.shape[1:])), (0, 0)


def _row_major_strides(shape) -> list[int]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= int(n)
    return strides[::-1]


def _kernel_calls(art: Artifact, shapes: Shapes, scale: float, compute_capability: int):
    """Per kernel of the artifact, in launch order: ``(serialized call, operand names)``: the
    kernel-call handler's description of the launch (PTX, grid, block, shared memory, the
    parameter list) and the buffers its array parameters take, in order."""
    from jax._src.lib import gpu_triton  # noqa: PLC0415

    sizes = shapes._asdict()
    shapes_of = tensor_shapes(shapes)
    calls = []
    for k in art.kernels:
        if k["grid"] != "row_tiles":
            raise SplatInputError("pattern", f"kernel {k['name']!r} is not a fused row-tile "
                                             f"kernel; splat.jax runs fused artifacts only")
        params, operands = [], []
        for p in k["params"]:
            name = p["name"]
            if p["kind"] == "memref":
                shape = shapes_of.get(name)
                if shape is None:
                    if name not in art.tables:
                        raise SplatInputError("pattern", f"kernel {k['name']!r} needs buffer "
                                                         f"{name!r}, which splat.jax cannot give")
                    shape = np.asarray(art.tables[name]).shape
                params.append(gpu_triton.create_scalar_parameter(0, "i64"))  # allocated ptr
                params.append(gpu_triton.create_array_parameter(0, 0))  # aligned ptr: buffer
                params.append(gpu_triton.create_scalar_parameter(0, "i64"))  # offset
                for x in list(shape) + _row_major_strides(shape):
                    params.append(gpu_triton.create_scalar_parameter(int(x), "i64"))
                operands.append(name)
            elif name == "scale":
                params.append(gpu_triton.create_scalar_parameter(float(scale), "fp32"))
            else:
                params.append(gpu_triton.create_scalar_parameter(int(sizes[name]),
                                                                 _SCALAR_TYPES[p["kind"]]))
        table = k.get("tile_table", "row_tiles")
        grid = (int(np.asarray(art.tables[table]).shape[0]), sizes["H"], sizes["B"])
        block = [int(x) for x in k["block"]]
        if block[1:] != [1, 1] or block[0] % 32:
            raise SplatInputError("pattern", f"kernel {k['name']!r} block {block} is not whole "
                                             f"warps along x")
        kernel = gpu_triton.TritonKernel(k["name"], block[0] // 32, 1, int(k["shared_bytes"]),
                                         art.ptx[k["ptx_file"]], "", compute_capability)
        call = gpu_triton.TritonKernelCall(kernel, *grid, params)
        calls.append((zlib.compress(call.to_proto(k["name"], b"")), operands))
    return calls


def _lowering(ctx, q, k, v, *, key: str, scale: float):
    """The artifact's kernels as custom calls of jaxlib's kernel-call handler."""
    jax = _jax()
    # jax's lowering helpers (constants, fills) are not all public; the kernel-call handler
    # itself is jaxlib-internal too (module docstring)
    from jax._src.interpreters import mlir  # noqa: PLC0415

    art = _artifacts[key]
    q_aval, k_aval, _ = ctx.avals_in
    o_aval, lse_aval = ctx.avals_out
    B, H, Lq, D = q_aval.shape
    shapes = Shapes(B, H, k_aval.shape[1], Lq, k_aval.shape[2], D)
    values = {"q": (q, q_aval), "k": (k, k_aval), "v": (v, ctx.avals_in[2]),
              "o": (_filled(mlir, ctx, 0.0, o_aval), o_aval),
              "lse": (_filled(mlir, ctx, -math.inf, lse_aval), lse_aval)}
    for name, t in art.tables.items():
        t = np.ascontiguousarray(t, dtype=np.int32)
        values[name] = (mlir.ir_constant(t), jax.core.ShapedArray(t.shape, np.int32))
    cc = _compute_capability()
    for opaque, names in _kernel_calls(art, shapes, scale, cc):
        aliases = {names.index("o"): 0, names.index("lse"): 1}
        rule = jax.ffi.ffi_lowering(_KERNEL_CALL_TARGET, api_version=4,
                                    operand_output_aliases=aliases)
        sub = ctx.replace(avals_in=[values[n][1] for n in names])
        o, lse = rule(sub, *[values[n][0] for n in names], opaque=opaque)
        values["o"], values["lse"] = (o, o_aval), (lse, lse_aval)
    return [values["o"][0], values["lse"][0]]


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
                 artifact: Any = None, target: str = DEFAULT_TARGET):
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
        o, lse = _define_primitive().bind(q, k, v, key=self.key, scale=float(self.scale))
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
            artifact: Any = None, target: str = DEFAULT_TARGET) -> JaxAttention:
    """A `JaxAttention` for `pattern` (or `artifact`): make it once, outside ``jit``."""
    return JaxAttention(pattern, head_dim=head_dim, dtype=dtype, Lq=Lq, Lk=Lk, scale=scale,
                        artifact=artifact, target=target)

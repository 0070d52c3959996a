"""Thin, checked wrappers over the CUDA driver API (`cuda.bindings.driver`).

Every call's `CUresult` is checked; a failure raises `SplatCudaError` carrying the CUDA error
name (e.g. ``CUDA_ERROR_INVALID_VALUE``), its code and the call that failed. A machine without a
CUDA driver (``libcuda`` missing, or ``cuInit`` failing) or without the ``cuda-bindings`` package
gives a `SplatCudaError` too, never a crash.

Kernel parameters follow MLIR's default memref calling convention (docs/design.md §3): a rank-R
memref is passed as ``3 + 2R`` 64-bit values (allocated pointer, aligned pointer, offset, sizes[R],
strides[R] in elements), an ``f32`` as a 4-byte float and an ``i32`` as a 4-byte int.
`pack_params` builds the ``void*[]`` array ``cuLaunchKernel`` expects and keeps every scalar it
points to alive for as long as the returned array lives.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import re
import threading
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

__all__ = [
    "SplatCudaError", "MemRef", "ensure_init", "device_count", "get_device", "primary_context",
    "current_context", "context_scope", "compute_capability", "device_attribute", "load_module",
    "unload_module", "get_function", "set_max_dynamic_smem", "max_dynamic_smem_optin",
    "mem_alloc", "mem_free", "memcpy_htod", "pack_params", "launch", "ptx_entry_params",
    "check_ptx_abi", "param_count", "raw_handle", "is_current", "launch_raw",
]


class SplatCudaError(RuntimeError):
    """A CUDA driver call failed, or no usable CUDA driver is present.

    Attributes: ``call`` (e.g. ``"cuModuleLoadData"``), ``code`` (int CUresult or None),
    ``name`` (e.g. ``"CUDA_ERROR_INVALID_PTX"`` or None), ``detail`` (extra text or None).
    """

    def __init__(self, call: str, code: int | None = None, name: str | None = None,
                 detail: str | None = None):
        self.call, self.code, self.name, self.detail = call, code, name, detail
        msg = f"{call} failed"
        if name is not None or code is not None:
            msg += f": {name or 'CUresult'} ({code})"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


_lock = threading.RLock()
_driver_mod = None
_init_error: SplatCudaError | None = None
_initialised = False
_primary: dict = {}

# Exceptions the bindings raise when the driver library is absent or lacks a symbol.
# (cuda.pathfinder's DynamicLibNotFoundError derives from RuntimeError.)
_NO_DRIVER_EXC = (RuntimeError, OSError)


def _driver():
    """Import `cuda.bindings.driver` lazily (so `import splat.runtime` needs no CUDA)."""
    global _driver_mod
    if _driver_mod is None:
        try:
            from cuda.bindings import driver as d  # noqa: PLC0415
        except ImportError as e:
            raise SplatCudaError("import cuda.bindings.driver",
                                 detail=f"the cuda-bindings package is not installed ({e}); "
                                        f"install it with `pip install cuda-bindings`") from None
        _driver_mod = d
    return _driver_mod


def _error_name(code: int) -> str:
    try:
        return _driver().CUresult(code).name
    except Exception:  # unknown code
        return f"CUresult {code}"


def _error_string(code: int) -> str | None:
    try:
        d = _driver()
        err, s = d.cuGetErrorString(d.CUresult(code))
        if int(err) == 0 and s:
            return s.decode() if isinstance(s, bytes) else str(s)
    except Exception:
        pass
    return None


def _check(call: str, result: Any, detail: str | None = None):
    """Unpack a bindings result tuple ``(CUresult, *values)``; raise on failure."""
    if isinstance(result, tuple):
        err, values = result[0], result[1:]
    else:
        err, values = result, ()
    code = int(err)
    if code != 0:
        desc = _error_string(code)
        text = "; ".join(x for x in (desc, detail) if x)
        raise SplatCudaError(call, code, _error_name(code), text or None)
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _raw(call: str, *args, detail: str | None = None):
    """Call a driver function and check it, turning a missing driver into SplatCudaError."""
    fn = getattr(_driver(), call)
    try:
        res = fn(*args)
    except _NO_DRIVER_EXC as e:
        raise SplatCudaError(call, detail=f"no usable CUDA driver: {e}") from None
    return _check(call, res, detail)


def ensure_init() -> None:
    """``cuInit(0)`` once per process; raises SplatCudaError when no CUDA driver is present."""
    global _initialised, _init_error
    if _initialised:
        return
    with _lock:
        if _initialised:
            return
        if _init_error is not None:
            raise SplatCudaError(_init_error.call, _init_error.code, _init_error.name,
                                 _init_error.detail)
        try:
            _raw("cuInit", 0)
        except SplatCudaError as e:
            if e.detail is None or "no usable CUDA driver" not in e.detail:
                e = SplatCudaError(e.call, e.code, e.name,
                                   "no usable CUDA driver/GPU" + (f" ({e.detail})" if e.detail else ""))
            _init_error = e
            raise e from None
        _initialised = True


def _call(call: str, *args, detail: str | None = None):
    ensure_init()
    return _raw(call, *args, detail=detail)


# ------------------------------------------------------------------------------ devices/contexts


def device_count() -> int:
    return int(_call("cuDeviceGetCount"))


def get_device(ordinal: int):
    n = device_count()
    if not 0 <= int(ordinal) < n:
        raise SplatCudaError("cuDeviceGet", detail=f"device ordinal {ordinal} out of range "
                                                    f"(this machine has {n} CUDA device(s))")
    return _call("cuDeviceGet", int(ordinal))


def device_attribute(ordinal: int, attr_name: str) -> int:
    d = _driver()
    attr = getattr(d.CUdevice_attribute, attr_name)
    return int(_call("cuDeviceGetAttribute", attr, get_device(ordinal)))


def compute_capability(ordinal: int) -> tuple:
    return (device_attribute(ordinal, "CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR"),
            device_attribute(ordinal, "CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR"))


def max_dynamic_smem_optin(ordinal: int) -> int:
    return device_attribute(ordinal, "CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN")


def primary_context(ordinal: int):
    """The device's primary context (the one PyTorch and JAX use), retained once per process."""
    with _lock:
        ctx = _primary.get(int(ordinal))
        if ctx is None:
            ctx = _call("cuDevicePrimaryCtxRetain", get_device(ordinal))
            _primary[int(ordinal)] = ctx
        return ctx


def current_context():
    """The calling thread's current context, or None."""
    ctx = _call("cuCtxGetCurrent")
    return ctx if ctx is not None and int(ctx) != 0 else None


@contextlib.contextmanager
def context_scope(ctx):
    """Make `ctx` current for the block (push/pop only if it is not current already)."""
    cur = current_context()
    if cur is not None and int(cur) == int(ctx):
        yield ctx
        return
    _call("cuCtxPushCurrent", ctx)
    try:
        yield ctx
    finally:
        _call("cuCtxPopCurrent")


# ------------------------------------------------------------------------------ modules/functions

_LOG_BYTES = 16384


def load_module(ptx: str | bytes):
    """``cuModuleLoadDataEx`` of a PTX text (JIT-compiled for the current context's device).

    On failure the JIT error log is included in the exception."""
    ensure_init()
    d = _driver()
    image = ptx.encode("utf-8") if isinstance(ptx, str) else bytes(ptx)
    if not image.endswith(b"\0"):
        image += b"\0"
    log = bytearray(_LOG_BYTES)
    try:
        opts = [d.CUjit_option.CU_JIT_ERROR_LOG_BUFFER,
                d.CUjit_option.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES]
        res = d.cuModuleLoadDataEx(image, len(opts), opts, [log, _LOG_BYTES])
    except TypeError:  # bindings that do not take a bytearray log buffer
        return _call("cuModuleLoadData", image)
    except _NO_DRIVER_EXC as e:
        raise SplatCudaError("cuModuleLoadDataEx", detail=f"no usable CUDA driver: {e}") from None
    text = bytes(log).split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    return _check("cuModuleLoadDataEx", res, f"JIT log: {text}" if text else None)


def unload_module(module) -> None:
    _call("cuModuleUnload", module)


def get_function(module, name: str):
    return _call("cuModuleGetFunction", module, name.encode("utf-8"),
                 detail=f"kernel {name!r} not found in the module")


def set_max_dynamic_smem(fn, nbytes: int) -> None:
    """Allow `fn` to use `nbytes` of dynamic shared memory (needed above 48 KiB)."""
    d = _driver()
    _call("cuFuncSetAttribute", fn,
          d.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, int(nbytes),
          detail=f"requested {nbytes} bytes of dynamic shared memory")


# ------------------------------------------------------------------------------ memory


def mem_alloc(nbytes: int) -> int:
    return int(_call("cuMemAlloc", max(int(nbytes), 1), detail=f"allocating {nbytes} bytes"))


def mem_alloc_async(nbytes: int, stream) -> int:
    """Stream-ordered allocation (valid for work queued on `stream` after this call)."""
    return int(_call("cuMemAllocAsync", max(int(nbytes), 1), _stream(stream),
                     detail=f"allocating {nbytes} bytes on a stream"))


def mem_free_async(dptr: int, stream) -> None:
    """Stream-ordered free: the memory is released once `stream` has run past this point."""
    d = _driver()
    _call("cuMemFreeAsync", d.CUdeviceptr(int(dptr)), _stream(stream))


def mem_free(dptr: int) -> None:
    d = _driver()
    _call("cuMemFree", d.CUdeviceptr(int(dptr)))


def memcpy_htod(dptr: int, host, nbytes: int) -> None:
    """Synchronous copy of `nbytes` from a host buffer (numpy array, bytes) to device memory."""
    d = _driver()
    if nbytes:
        _call("cuMemcpyHtoD", d.CUdeviceptr(int(dptr)), host, int(nbytes))


# ------------------------------------------------------------------------------ parameters


class MemRef(NamedTuple):
    """A memref argument: a device data pointer, sizes (elements) and optional strides.

    Strides default to the contiguous (row-major) strides of `sizes`."""

    ptr: int
    sizes: tuple
    strides: tuple | None = None


def contiguous_strides(sizes: Sequence[int]) -> tuple:
    out, acc = [], 1
    for s in reversed(list(sizes)):
        out.append(acc)
        acc *= max(int(s), 1)
    return tuple(reversed(out))


def param_count(param_specs: Iterable[Mapping]) -> int:
    """Number of kernel parameters after memref expansion (3 + 2R per rank-R memref)."""
    n = 0
    for p in param_specs:
        n += 3 + 2 * int(p["rank"]) if p["kind"] == "memref" else 1
    return n


_U64_MAX = (1 << 64) - 1


def _as_memref(spec: Mapping, value: Any) -> MemRef:
    name, rank = spec.get("name", "?"), int(spec["rank"])
    if isinstance(value, MemRef):
        m = value
    elif isinstance(value, tuple) and len(value) in (2, 3):
        m = MemRef(*value)
    else:
        raise TypeError(f"param {name!r} (memref rank {rank}) needs a MemRef or (ptr, sizes"
                        f"[, strides]), got {type(value).__name__}")
    sizes = tuple(int(s) for s in m.sizes)
    if len(sizes) != rank:
        raise ValueError(f"param {name!r}: memref of rank {rank} got {len(sizes)} sizes {sizes}")
    if any(s < 0 for s in sizes):
        raise ValueError(f"param {name!r}: negative size in {sizes}")
    strides = contiguous_strides(sizes) if m.strides is None else tuple(int(s) for s in m.strides)
    if len(strides) != rank:
        raise ValueError(f"param {name!r}: memref of rank {rank} got {len(strides)} strides")
    ptr = int(m.ptr)
    if not 0 <= ptr <= _U64_MAX:
        raise ValueError(f"param {name!r}: pointer {ptr:#x} out of range")
    if ptr == 0 and math.prod(sizes) > 0:
        raise ValueError(f"param {name!r}: null pointer for a non-empty memref {sizes}")
    return MemRef(ptr, sizes, strides)


def pack_params(param_specs: Sequence[Mapping], values: Sequence[Any] | Mapping[str, Any]):
    """Build the ``void*[]`` kernel-parameter array for ``cuLaunchKernel``.

    `param_specs`: the manifest's ``params`` list (``{"name", "kind": "memref"|"f32"|"i32",
    "rank"}``). `values`: one value per spec, in order, or a mapping by name. A memref value is a
    `MemRef` or ``(ptr, sizes[, strides])``; it expands to ``allocated ptr, aligned ptr, offset 0,
    sizes[R], strides[R]`` as ``uint64``. ``f32`` → ``c_float``, ``i32`` → ``c_int32``.

    Returns a ctypes ``c_void_p`` array (one address per expanded parameter) that holds a
    reference to every scalar it points at (``.scalars``), plus ``.fields`` (a list of
    ``(param name, field, value)``) for diagnostics.
    """
    specs = list(param_specs)
    if isinstance(values, Mapping):
        missing = [s["name"] for s in specs if s["name"] not in values]
        if missing:
            raise KeyError(f"pack_params: no value for parameter(s) {missing}")
        vals = [values[s["name"]] for s in specs]
    else:
        vals = list(values)
        if len(vals) != len(specs):
            raise ValueError(f"pack_params: {len(specs)} parameters but {len(vals)} values")
    scalars: list = []
    fields: list = []
    for spec, v in zip(specs, vals):
        name, kind = spec.get("name", "?"), spec["kind"]
        if kind == "memref":
            m = _as_memref(spec, v)
            items = [("allocated", m.ptr), ("aligned", m.ptr), ("offset", 0)]
            items += [(f"size{i}", s) for i, s in enumerate(m.sizes)]
            items += [(f"stride{i}", s) for i, s in enumerate(m.strides)]
            for field, x in items:
                scalars.append(ctypes.c_uint64(x))
                fields.append((name, field, x))
        elif kind == "f32":
            x = float(v)
            if not math.isfinite(x):
                raise ValueError(f"param {name!r}: f32 value must be finite, got {x}")
            scalars.append(ctypes.c_float(x))
            fields.append((name, "f32", x))
        elif kind == "i32":
            if isinstance(v, bool) or int(v) != v:
                raise TypeError(f"param {name!r}: i32 needs an integer, got {v!r}")
            x = int(v)
            if not -(1 << 31) <= x < (1 << 31):
                raise ValueError(f"param {name!r}: {x} does not fit in i32")
            scalars.append(ctypes.c_int32(x))
            fields.append((name, "i32", x))
        else:
            raise ValueError(f"param {name!r}: unknown kind {kind!r}")
    arr_t = type("SplatKernelParams", (ctypes.c_void_p * len(scalars),), {})
    arr = arr_t(*[ctypes.addressof(s) for s in scalars])
    arr.scalars = scalars
    arr.fields = fields
    return arr


def _dims(what: str, dims: Sequence[int], limits: Sequence[int]) -> tuple:
    t = tuple(int(x) for x in dims)
    if len(t) != 3:
        raise ValueError(f"launch: {what} must have 3 dimensions, got {dims!r}")
    for i, (x, lim) in enumerate(zip(t, limits)):
        if not 1 <= x <= lim:
            raise ValueError(f"launch: {what}[{i}] = {x} outside [1, {lim}]")
    return t


def _stream(stream):
    d = _driver()
    if stream is None:
        return d.CUstream(0)
    if isinstance(stream, int):
        return d.CUstream(stream)
    return stream


# ------------------------------------------------------------------------------ the hot path
# The bindings wrap every argument of every call in Python objects (CUstream, CUfunction, the
# result tuple): several µs per launch on a slow host. The launcher's per-call work (is its
# context current? launch) goes straight to libcuda through ctypes instead, on the raw handles
# the bindings returned when the module was loaded. dlopen gives the driver library the
# bindings already loaded: one driver in the process.

class _HotPath(NamedTuple):
    launch: Any
    get_current: Any


_hot: _HotPath | None = None


def _load_hot_path() -> _HotPath:
    """libcuda's ``cuLaunchKernel`` and ``cuCtxGetCurrent`` as ctypes functions."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError as e:
        raise SplatCudaError("dlopen", detail=f"libcuda.so.1: {e}") from None
    launch = lib.cuLaunchKernel
    launch.restype = ctypes.c_int
    launch.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 7 + [ctypes.c_void_p] * 3
    get_current = lib.cuCtxGetCurrent
    get_current.restype = ctypes.c_int
    get_current.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    return _HotPath(launch, get_current)


def _hot_path() -> _HotPath:
    global _hot
    if _hot is None:
        ensure_init()  # a SplatCudaError without a usable driver
        _hot = _load_hot_path()
    return _hot


def raw_handle(obj) -> int:
    """The address behind a driver handle (CUfunction, CUcontext, CUstream), an int as is, and
    0 for None (the legacy default stream)."""
    if obj is None:
        return 0
    return obj if isinstance(obj, int) else int(obj)


def is_current(ctx_ptr: int) -> bool:
    """Is the context at address `ctx_ptr` current on the calling thread?"""
    out = ctypes.c_void_p()
    code = _hot_path().get_current(ctypes.byref(out))
    if code:
        raise SplatCudaError("cuCtxGetCurrent", code, _error_name(code), _error_string(code))
    return (out.value or 0) == ctx_ptr


def launch_raw(fn_ptr: int, grid: tuple, block: tuple, shared: int, stream_ptr: int,
               params) -> None:
    """``cuLaunchKernel`` on raw handles (`raw_handle`) through ctypes: the launcher's hot
    path. Dimensions must have been checked by `_dims`; `params` is `pack_params`' array."""
    kp = ctypes.addressof(params) if params is not None and len(params) else None
    code = _hot_path().launch(fn_ptr, grid[0], grid[1], grid[2], block[0], block[1], block[2],
                              shared, stream_ptr, kp, None)
    if code:
        raise SplatCudaError("cuLaunchKernel", code, _error_name(code),
                             "; ".join(x for x in (_error_string(code), f"grid={grid} "
                                                   f"block={block} shared={shared}") if x))


def launch(fn, grid: Sequence[int], block: Sequence[int], shared: int, stream, params) -> None:
    """``cuLaunchKernel(fn, *grid, *block, shared, stream, params, 0)`` with checked arguments.

    `stream`: a CUstream, a raw handle (int, e.g. ``torch.cuda.current_stream().cuda_stream``)
    or None (the legacy default stream). `params`: the array from `pack_params`."""
    g = _dims("grid", grid, (2**31 - 1, 65535, 65535))
    b = _dims("block", block, (1024, 1024, 64))
    if b[0] * b[1] * b[2] > 1024:
        raise ValueError(f"launch: block {b} has more than 1024 threads")
    kp = ctypes.addressof(params) if params is not None and len(params) else 0
    _call("cuLaunchKernel", fn, *g, *b, int(shared), _stream(stream), kp, 0,
          detail=f"grid={g} block={b} shared={shared}")


# ------------------------------------------------------------------------------ PTX checks

_ENTRY = r"\.entry\s+{name}\s*\((?P<params>[^)]*)\)"
_PARAM_TYPE = re.compile(r"\.(?P<ty>[usbf](?:8|16|32|64))\b")
_PARAM_ARRAY = re.compile(r"\[\s*(\d+)\s*\]\s*$")


def ptx_entry_params(ptx: str, name: str) -> list:
    """The ``.param`` types of kernel `name` in a PTX text, e.g. ``['u64', ..., 'f32']``.

    Qualifiers (``.ptr``, ``.align N``, state spaces) are skipped; an array parameter
    ``.b8 p[128]`` is reported as ``'b8[128]'``."""
    m = re.search(_ENTRY.format(name=re.escape(name)), ptx)
    if m is None:
        raise ValueError(f"PTX has no .entry {name!r}")
    out = []
    for decl in m.group("params").split(","):
        decl = decl.strip()
        if not decl.startswith(".param"):
            continue
        t = _PARAM_TYPE.search(decl)
        if t is None:
            raise ValueError(f"kernel {name!r}: cannot read the type of PTX parameter {decl!r}")
        arr = _PARAM_ARRAY.search(decl)
        out.append(t.group("ty") + (f"[{arr.group(1)}]" if arr else ""))
    return out


def _param_bits(ty: str) -> int:
    base, _, count = ty.partition("[")
    return int(re.sub(r"\D", "", base)) * (int(count.rstrip("]")) if count else 1)


def check_ptx_abi(ptx: str, name: str, param_specs: Sequence[Mapping]) -> None:
    """Check that the PTX entry's parameter list matches the manifest (count and widths)."""
    types = ptx_entry_params(ptx, name)
    expected: list = []
    for p in param_specs:
        if p["kind"] == "memref":
            expected += [64] * (3 + 2 * int(p["rank"]))
        else:
            expected.append(32)
    if len(types) != len(expected):
        raise ValueError(f"kernel {name!r}: the PTX declares {len(types)} parameters, the "
                         f"manifest's params expand to {len(expected)} (3 + 2R per rank-R memref)")
    for i, (ty, bits) in enumerate(zip(types, expected)):
        if _param_bits(ty) != bits:
            raise ValueError(f"kernel {name!r}: PTX parameter {i} is .{ty}, expected a "
                             f"{bits}-bit value")

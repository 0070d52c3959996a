"""How ``splat_attention`` launches its kernels from an XLA program: the two launch routes.

Both routes turn one kernel of an artifact into one XLA custom call on XLA's stream; they
differ in the handler that launches it (docs/runtime.md, "The JAX primitive"):

- ``"ffi"``: SPLAT's own XLA FFI handler (``splat_jax_ffi/splat_launch.cc``, built into
  ``splat/_lib/libsplat_jax_ffi.so`` or named by ``$SPLAT_JAX_FFI_LIB``). The call carries a
  64-character kernel key (the kernel is registered with the library once per process) and a
  table saying which buffer or constant each PTX parameter takes, so the outputs are results
  of the call wherever the kernel's ABI puts them.
- ``"jaxlib"``: jaxlib's GPU kernel-call handler (the one Pallas' Triton path uses). Its call
  carries the whole PTX, which the handler hashes on every call, and its kernels take their
  outputs last: SPLAT's o and lse are operands aliased to the results, filled first.

``launch_route()`` picks ``$SPLAT_JAX_LAUNCH`` (``ffi`` | ``jaxlib``), else ``ffi`` where the
library is present, else ``jaxlib``. `kernel_params` expands a kernel's manifest parameters
(MLIR memrefs: allocated and aligned pointer, offset, sizes, strides) into the flat list both
routes encode. Runtime side: imports no MLIR; JAX only inside the functions that need it.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import struct
import threading
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import numpy as np

import splat

from .runtime.driver import contiguous_strides
from .runtime.launcher import Shapes, tensor_shapes
from .runtime.validate import SplatInputError

__all__ = ["LIBRARY_NAME", "ABI_VERSION", "FFI_TARGET", "ROUTES", "Param", "launch_route",
           "find_library", "load_library", "kernel_params", "ffi_param_table",
           "register_kernel"]

LIBRARY_NAME = "libsplat_jax_ffi.so"
ABI_VERSION = 1  # splat_jax_ffi_abi_version() of a library this module can drive
FFI_TARGET = "splat_launch"
ROUTES = ("ffi", "jaxlib")
_ENV_ROUTE = "SPLAT_JAX_LAUNCH"
_ENV_LIBRARY = "SPLAT_JAX_FFI_LIB"
# The handler's parameter kinds (splat_launch.cc): a buffer's pointer, i64, i32, f32 bits.
_KIND_CODES = {"buffer": 0, "alloc": 0, "i64": 1, "i32": 2, "f32": 3}

_lock = threading.Lock()


class Param(NamedTuple):
    """One PTX parameter of a launch: ``kind`` is ``"alloc"`` (a memref's allocated pointer,
    never dereferenced), ``"buffer"`` (its aligned pointer) with the buffer's name as value,
    or a scalar kind (``"i64"``, ``"i32"``, ``"f32"``) with its value."""
    kind: str
    value: object


def kernel_params(kernel: Mapping, shapes: Shapes, scale: float,
                  table_shapes: Mapping[str, tuple]) -> list[Param]:
    """The PTX parameters of ``kernel`` (a manifest entry) for a call of ``shapes``, in order:
    a memref is ``alloc, buffer, offset, sizes..., strides...`` (row-major, dense), a scalar
    is one value. A buffer the call does not have is a SplatInputError naming it."""
    sizes = shapes._asdict()
    buffer_shapes = {**tensor_shapes(shapes), **{n: tuple(s) for n, s in table_shapes.items()}}
    params: list[Param] = []
    for p in kernel["params"]:
        name = p["name"]
        if p["kind"] == "memref":
            shape = buffer_shapes.get(name)
            if shape is None:
                raise SplatInputError("pattern", f"kernel {kernel['name']!r} needs buffer "
                                                 f"{name!r}, which splat.jax cannot give")
            params += [Param("alloc", name), Param("buffer", name), Param("i64", 0)]
            params += [Param("i64", int(x)) for x in list(shape) + list(contiguous_strides(shape))]
        elif name == "scale":
            params.append(Param("f32", float(scale)))
        else:
            params.append(Param(p["kind"], int(sizes[name])))
    return params


def ffi_param_table(params: Sequence[Param], buffers: Sequence[str]) -> np.ndarray:
    """The FFI handler's ``params`` attribute: (kind code, value) int64 pairs, a buffer named
    by its index in ``buffers`` (the call's operands, then its results)."""
    table = []
    for kind, value in params:
        if kind in ("alloc", "buffer"):
            value = buffers.index(value)
        elif kind == "f32":
            value = struct.unpack("<I", struct.pack("<f", value))[0]
        table += [_KIND_CODES[kind], int(value)]
    return np.asarray(table, dtype=np.int64)


# ------------------------------------------------------------------------------ the library


def find_library() -> Path | None:
    """``$SPLAT_JAX_FFI_LIB`` (which must name a file), else the installed
    ``splat/_lib/libsplat_jax_ffi.so``, else None."""
    named = os.environ.get(_ENV_LIBRARY)
    if named:
        path = Path(named)
        if not path.is_file():
            raise SplatInputError(_ENV_LIBRARY, f"{named!r} is not a file")
        return path
    for root in splat.__path__:
        candidate = Path(root) / "_lib" / LIBRARY_NAME
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _library(path: str) -> ctypes.CDLL:
    """Load and check the handler library at ``path`` and register its handler with JAX as
    the CUDA FFI target ``splat_launch`` (once per process)."""
    import jax  # noqa: PLC0415

    try:
        lib = ctypes.CDLL(path)
        version = lib.splat_jax_ffi_abi_version
        register = lib.splat_jax_ffi_register
        handler = lib.SplatLaunch
    except (OSError, AttributeError) as e:
        raise SplatInputError(_ENV_LIBRARY, f"{path} is not a usable SPLAT FFI library "
                                            f"({e})") from None
    version.restype, version.argtypes = ctypes.c_int, []
    if version() != ABI_VERSION:
        raise SplatInputError(_ENV_LIBRARY, f"{path} has interface version {version()}, "
                                            f"this splat drives version {ABI_VERSION}")
    register.restype = ctypes.c_int
    register.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint64,
                         ctypes.c_uint32, ctypes.c_uint32]
    jax.ffi.register_ffi_target(FFI_TARGET, jax.ffi.pycapsule(handler), platform="CUDA")
    return lib


def load_library() -> ctypes.CDLL | None:
    """The loaded handler library, or None where there is none."""
    path = find_library()
    return None if path is None else _library(os.fspath(path))


def launch_route() -> str:
    """``$SPLAT_JAX_LAUNCH`` if set (``ffi`` needs the library), else ``ffi`` where the
    library is present, else ``jaxlib``."""
    route = os.environ.get(_ENV_ROUTE, "").strip().lower()
    if route and route not in ROUTES:
        raise SplatInputError(_ENV_ROUTE, f"expected one of {ROUTES}, got {route!r}")
    if route == "jaxlib":
        return route
    if load_library() is not None:
        return "ffi"
    if route == "ffi":
        raise SplatInputError(_ENV_ROUTE, f"'ffi' needs {LIBRARY_NAME} (build it with "
                                          f"scripts/build_jax_ffi.py, or set {_ENV_LIBRARY})")
    return "jaxlib"


def register_kernel(kernel: Mapping, ptx: str) -> str:
    """Register ``kernel``'s PTX with the handler library; its key (a content hash)."""
    lib = load_library()
    if lib is None:
        raise SplatInputError(_ENV_LIBRARY, f"no {LIBRARY_NAME}")
    name, block, shared = kernel["name"], int(kernel["block"][0]), int(kernel["shared_bytes"])
    data = ptx.encode()
    digest = hashlib.sha256()
    for part in (name.encode(), str(block).encode(), str(shared).encode(), data):
        digest.update(len(part).to_bytes(8, "little") + part)
    key = digest.hexdigest()
    with _lock:
        rc = lib.splat_jax_ffi_register(key.encode(), name.encode(), data, len(data), block,
                                        shared)
    if rc != 0:
        raise SplatInputError("pattern", f"kernel {name!r} could not be registered with the "
                                         f"FFI handler (code {rc})")
    return key

"""An MLIR context with the splat dialect loaded beside every upstream dialect.

The C++ dialect lives in ``splat/_lib/libSplatDialect.so``, linked against the
bindings' own ``libMLIRPythonCAPI.so``: there is one MLIR in the process. The
library exports a C dialect handle; we register it into a Python
``ir.Context`` through MLIR's C API, reached with ctypes.
"""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

import mlir
from mlir import ir
from mlir._mlir_libs import _mlir as _cext

import splat
from splat import version

class _Handle(ctypes.Structure):
    # MlirDialectHandle and MlirContext are both `struct { void *ptr; }`.
    _fields_ = [("ptr", ctypes.c_void_p)]


def _find_library() -> Path:
    path = version.dialect_library()
    if path is None:
        raise ImportError(
            f"{version.DIALECT_LIBRARY} not found under {list(splat.__path__)}: the splat package "
            "was not built; install it with `pip install -e .`")
    return path


@functools.cache
def dialect_library() -> ctypes.CDLL:
    """The loaded ``libSplatDialect.so``: its C API (``SplatCAPI.h``) is reached with ctypes,
    here for the dialect handle and in ``splat.dialects._splat_capi`` for the attribute getters."""
    return ctypes.CDLL(os.fspath(_find_library()))


@functools.cache
def _c_api():
    """Returns (get_handle, register, load) C functions."""
    dialect_lib = dialect_library()
    capi_lib = ctypes.CDLL(os.fspath(
        Path(list(mlir.__path__)[0]) / "_mlir_libs" / "libMLIRPythonCAPI.so"))
    get_handle = dialect_lib.mlirGetDialectHandle__splat__
    get_handle.restype = _Handle
    get_handle.argtypes = []
    register = capi_lib.mlirDialectHandleRegisterDialect
    load = capi_lib.mlirDialectHandleLoadDialect
    register.argtypes = load.argtypes = [_Handle, _Handle]
    register.restype = None
    load.restype = _Handle
    # Parsed splat ops come back as the generated OpView classes.
    _cext.globals.append_dialect_search_prefix("splat.dialects")
    return get_handle, register, load


# Our own prototype of CPython's PyCapsule_GetPointer, not `ctypes.pythonapi.PyCapsule_GetPointer`:
# that attribute is one object per process, whose argtypes other libraries set to their own
# (and setting ours there would change theirs).
capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi))


def _context_pointer(context: ir.Context) -> _Handle:
    return _Handle(capsule_pointer(context._CAPIPtr, b"mlir.ir.Context._CAPIPtr"))


def load_dialect(context: ir.Context) -> None:
    """Registers and loads the splat dialect into ``context``."""
    get_handle, register, load = _c_api()
    handle = get_handle()
    pointer = _context_pointer(context)
    register(handle, pointer)
    load(handle, pointer)
    import splat.dialects.splat  # noqa: F401  (registers the op classes)


def make_context() -> ir.Context:
    """A new context with every upstream dialect and the splat dialect."""
    context = ir.Context()
    load_dialect(context)
    return context

"""ctypes access to the attribute getters of ``libSplatDialect.so`` (``splat_dialect/SplatCAPI.h``).

The functions follow one naming scheme (``mlirAttributeIsASplat<Kind>Attr``,
``mlirSplat<Kind>AttrGet<Param>``), so the helpers here take a kind and a parameter name and
declare the ctypes signature on first use. Array getters hand out pointers into the uniqued
attribute storage; they are copied into numpy arrays at once, so a view never outlives its data.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np
from mlir import ir

from ..ir import capsule_pointer, dialect_library


class MlirAttribute(ctypes.Structure):
    # mlir-c's `struct { const void *ptr; }`, passed and returned by value.
    _fields_ = [("ptr", ctypes.c_void_p)]


# A capsule keeps a pointer to its name, so the name must outlive every capsule made here.
_CAPSULE_NAME = b"mlir.ir.Attribute._CAPIPtr"

# Our own prototype of CPython's PyCapsule_New (and splat.ir's of PyCapsule_GetPointer), not
# `ctypes.pythonapi.PyCapsule_New`: that attribute is one object per process, whose argtypes
# other libraries set to their own (jax.ffi.pycapsule gives it a destructor callback type,
# after which a None destructor is refused).
_get_pointer = capsule_pointer
_new_capsule = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p,
                                 ctypes.c_void_p)(("PyCapsule_New", ctypes.pythonapi))


def unwrap(attr: ir.Attribute) -> MlirAttribute:
    return MlirAttribute(_get_pointer(attr._CAPIPtr, _CAPSULE_NAME))


def wrap(handle: MlirAttribute) -> ir.Attribute | None:
    """The Python attribute of a C handle (None for a null attribute), as its builtin class
    (ArrayAttr, DenseElementsAttr, ...) where the bindings know one."""
    if not handle.ptr:
        return None
    return ir.Attribute._CAPICreate(_new_capsule(handle.ptr, _CAPSULE_NAME, None)).maybe_downcast()


@functools.cache
def _function(name: str, restype, *argtypes):
    function = getattr(dialect_library(), name)
    function.restype = restype
    function.argtypes = [MlirAttribute, *argtypes]
    return function


def is_a(kind: str, attr: ir.Attribute) -> bool:
    return bool(_function(f"mlirAttributeIsASplat{kind}Attr", ctypes.c_bool)(unwrap(attr)))


def get_int(kind: str, param: str, attr: ir.Attribute) -> int:
    return int(_function(f"mlirSplat{kind}AttrGet{param}", ctypes.c_int64)(unwrap(attr)))


def get_count(kind: str, param: str, attr: ir.Attribute) -> int:
    return int(_function(f"mlirSplat{kind}AttrGet{param}", ctypes.c_ssize_t)(unwrap(attr)))


def get_attr(kind: str, param: str, attr: ir.Attribute) -> ir.Attribute | None:
    return wrap(_function(f"mlirSplat{kind}AttrGet{param}", MlirAttribute)(unwrap(attr)))


def _copy(data, size: int, dtype) -> np.ndarray:
    if size == 0:  # an empty array's data pointer may be null
        return np.empty(0, dtype=dtype)
    return np.ctypeslib.as_array(data, shape=(size,)).astype(dtype, copy=True)


def get_i64_array(kind: str, param: str, attr: ir.Attribute) -> np.ndarray:
    """A required int64 array parameter (``const int64_t *get(attr, intptr_t *size)``)."""
    size = ctypes.c_ssize_t()
    function = _function(f"mlirSplat{kind}AttrGet{param}", ctypes.POINTER(ctypes.c_int64),
                         ctypes.POINTER(ctypes.c_ssize_t))
    data = function(unwrap(attr), ctypes.byref(size))
    return _copy(data, size.value, np.int64)


def get_i32_table(kind: str, param: str, attr: ir.Attribute) -> np.ndarray | None:
    """An int32 table (``bool get(attr, const int32_t **data, intptr_t *size)``); None when
    the optional table is absent."""
    data, size = ctypes.POINTER(ctypes.c_int32)(), ctypes.c_ssize_t()
    function = _function(f"mlirSplat{kind}AttrGet{param}", ctypes.c_bool,
                         ctypes.POINTER(ctypes.POINTER(ctypes.c_int32)),
                         ctypes.POINTER(ctypes.c_ssize_t))
    if not function(unwrap(attr), ctypes.byref(data), ctypes.byref(size)):
        return None
    return _copy(data, size.value, np.int32)


def fill_i64(kind: str, param: str, attr: ir.Attribute, count: int) -> np.ndarray:
    """``void get(attr, int64_t *out)`` into a fresh buffer of ``count`` values."""
    out = np.zeros(count, dtype=np.int64)
    function = _function(f"mlirSplat{kind}AttrGet{param}", None, ctypes.POINTER(ctypes.c_int64))
    function(unwrap(attr), out.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)))
    return out

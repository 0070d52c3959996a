"""The JAX primitive's launch routes (`splat.jax_ffi`) on a machine without a GPU: the PTX
parameter list both routes encode, the FFI handler's parameter table, the route choice and its
errors; where JAX is installed, the handler library is built with CMake and a jitted call is
lowered for CUDA with it (one custom call per kernel, no fill kernels). The launches
themselves run in tests/gpu/test_gpu_jax.py."""

from __future__ import annotations

import ctypes
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from splat import abi, jax_ffi
from splat.runtime.launcher import Shapes
from splat.runtime.validate import SplatInputError

ROOT = Path(__file__).resolve().parents[2]
SHAPES = Shapes(B=2, H=4, Hkv=2, Lq=96, Lk=80, D=64)


def _kernel(masked=False):
    return {"name": abi.fused_kernel_name("bf16", 64, masked),
            "params": abi.fused_kernel_params("bf16", masked), "block": [128, 1, 1],
            "shared_bytes": 50000, "grid": "row_tiles"}


def _tables(masked=False):
    t = {"row_tiles": (3, 5), "segments": (7, 9)}
    if masked:
        t.update(mask_ptr=(4,), mask_tiles=(5, 2), mask_bits=(5, 64, 2))
    return t


@pytest.mark.parametrize("masked", [False, True])
def test_kernel_params_follow_the_memref_calling_convention(masked):
    kernel = _kernel(masked)
    params = jax_ffi.kernel_params(kernel, SHAPES, 0.125, _tables(masked))
    assert len(params) == abi.num_ptx_params(kernel["params"])
    # q: allocated and aligned pointer, offset 0, sizes B H Lq D, row-major strides
    assert params[:11] == [("alloc", "q"), ("buffer", "q"), ("i64", 0),
                           ("i64", 2), ("i64", 4), ("i64", 96), ("i64", 64),
                           ("i64", 4 * 96 * 64), ("i64", 96 * 64), ("i64", 64), ("i64", 1)]
    k_sizes = [v for _, v in params[14:18]]
    assert k_sizes == [2, 2, 80, 64]  # k is B x Hkv x Lk x D
    buffers = [v for kind, v in params if kind == "buffer"]
    assert buffers == [p["name"] for p in kernel["params"] if p["kind"] == "memref"]
    assert ("f32", 0.125) in params
    seg = params.index(("buffer", "segments"))
    assert [v for _, v in params[seg + 2:seg + 6]] == [7, 9, 9, 1]


def test_kernel_params_refuse_a_buffer_the_call_does_not_have():
    with pytest.raises(SplatInputError, match="needs buffer 'segments'"):
        jax_ffi.kernel_params(_kernel(), SHAPES, 0.125, {"row_tiles": (3, 5)})


def test_ffi_table_names_buffers_by_index_and_passes_floats_as_bits():
    params = jax_ffi.kernel_params(_kernel(), SHAPES, 0.3, _tables())
    operands = ["q", "k", "v", "row_tiles", "segments"]
    table = jax_ffi.ffi_param_table(params, operands + ["o", "lse"])
    assert table.dtype == np.int64 and table.shape == (2 * len(params),)
    pairs = table.reshape(-1, 2)
    pointer_rows = pairs[pairs[:, 0] == 0]
    # every memref gives two pointer entries (allocated, aligned) for the same buffer
    assert list(pointer_rows[::2, 1]) == [0, 1, 2, 5, 6, 3, 4]  # q k v o lse row_tiles segments
    assert list(pointer_rows[1::2, 1]) == list(pointer_rows[::2, 1])
    (bits,) = pairs[pairs[:, 0] == 3, 1]
    assert struct.unpack("<f", struct.pack("<I", int(bits)))[0] == pytest.approx(0.3)


def test_route_env_is_checked(monkeypatch):
    monkeypatch.delenv("SPLAT_JAX_FFI_LIB", raising=False)
    monkeypatch.setenv("SPLAT_JAX_LAUNCH", "cuda-graphs")
    with pytest.raises(SplatInputError, match="SPLAT_JAX_LAUNCH"):
        jax_ffi.launch_route()
    monkeypatch.setenv("SPLAT_JAX_LAUNCH", "jaxlib")
    assert jax_ffi.launch_route() == "jaxlib"


def test_a_named_library_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv("SPLAT_JAX_FFI_LIB", str(tmp_path / "missing.so"))
    monkeypatch.delenv("SPLAT_JAX_LAUNCH", raising=False)
    with pytest.raises(SplatInputError, match="SPLAT_JAX_FFI_LIB.*not a file"):
        jax_ffi.launch_route()


def test_ffi_route_without_a_library_says_how_to_build_it(monkeypatch):
    monkeypatch.delenv("SPLAT_JAX_FFI_LIB", raising=False)
    monkeypatch.setattr(jax_ffi, "find_library", lambda: None)
    monkeypatch.setenv("SPLAT_JAX_LAUNCH", "ffi")
    with pytest.raises(SplatInputError, match="build_jax_ffi.py"):
        jax_ffi.launch_route()
    monkeypatch.delenv("SPLAT_JAX_LAUNCH")
    assert jax_ffi.launch_route() == "jaxlib"


# ------------------------------------------------------------------ with JAX: the real library


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    jax = pytest.importorskip("jax")
    if shutil.which("cmake") is None:
        pytest.skip("no cmake")
    out = tmp_path_factory.mktemp("ffi")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_jax_ffi.py"),
                    "--include-dir", jax.ffi.include_dir(), "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return out / jax_ffi.LIBRARY_NAME


def test_library_registers_kernels_by_content(library):
    lib = ctypes.CDLL(str(library))
    assert lib.splat_jax_ffi_abi_version() == jax_ffi.ABI_VERSION
    reg = lib.splat_jax_ffi_register
    reg.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint64,
                    ctypes.c_uint32, ctypes.c_uint32]
    ptx = b".version 8.0"
    assert reg(b"k1", b"f", ptx, len(ptx), 128, 0) == 0
    assert reg(b"k1", b"f", ptx, len(ptx), 128, 0) == 0  # same content: fine
    assert reg(b"k1", b"f", ptx, len(ptx), 256, 0) == 1  # same key, other content
    assert reg(b"k2", b"f", ptx, len(ptx), 100, 0) == 2  # not whole warps
    assert reg(b"k3", b"f", ptx, 0, 128, 0) == 2  # no PTX


def test_ffi_lowering_has_one_call_per_kernel_and_no_fills(library, monkeypatch):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import splat.jax as sj
    from splat import testing as T

    monkeypatch.setenv("SPLAT_JAX_FFI_LIB", str(library))
    monkeypatch.setenv("SPLAT_JAX_LAUNCH", "ffi")
    pattern, _ = T.build_pattern(T.F("causal"), 128)
    h = sj.prepare(pattern, head_dim=64, dtype="bf16")
    spec = jax.ShapeDtypeStruct((1, 2, 128, 64), jnp.bfloat16)
    text = jax.jit(h).trace(spec, spec, spec).lower(lowering_platforms=("cuda",)).as_text()
    calls = [line for line in text.splitlines() if "custom_call" in line]
    assert len(calls) == len(h.artifact.kernels)
    assert all("@splat_launch" in c for c in calls)
    assert "broadcast" not in text  # o and lse are results, not filled operands


def test_a_file_that_is_not_the_library_is_refused(monkeypatch, tmp_path):
    """A tampered or foreign file named by SPLAT_JAX_FFI_LIB: a SplatInputError naming the
    variable, never a crash (dlopen fails, or the library lacks SPLAT's entry points)."""
    pytest.importorskip("jax")
    from splat import jax_ffi as jf

    garbage = tmp_path / "libsplat_jax_ffi.so"
    garbage.write_bytes(b"\x7fELF not really" * 64)
    monkeypatch.setenv("SPLAT_JAX_FFI_LIB", str(garbage))
    monkeypatch.delenv("SPLAT_JAX_LAUNCH", raising=False)
    with pytest.raises(SplatInputError, match="SPLAT_JAX_FFI_LIB.*not a usable SPLAT FFI library"):
        jf.launch_route()
    foreign = next(Path(np.__file__).parent.rglob("*.so"), None)  # a real shared object
    if foreign is not None:  # ... without SPLAT's entry points
        monkeypatch.setenv("SPLAT_JAX_FFI_LIB", str(foreign))
        with pytest.raises(SplatInputError, match="not a usable SPLAT FFI library"):
            jf.launch_route()


def test_the_gradient_lowers_to_the_backward_kernels(library, monkeypatch):
    """jax.grad through a handle: the forward's calls, then the backward artifact's dQ and
    dK/dV kernels, each a call of the FFI handler; the lse cotangent enters Δ."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import splat.jax as sj
    from splat import abi
    from splat import testing as T

    monkeypatch.setenv("SPLAT_JAX_FFI_LIB", str(library))
    monkeypatch.setenv("SPLAT_JAX_LAUNCH", "ffi")
    pattern, _ = T.build_pattern(T.F("dilated", w=16, stride=3), 128)
    h = sj.prepare(pattern, head_dim=64, dtype="bf16")

    def loss(q, k, v):
        o, lse = h(q, k, v, return_lse=True)
        return jnp.sum(o.astype(jnp.float32)) + jnp.sum(lse)

    q = jax.ShapeDtypeStruct((1, 4, 128, 64), jnp.bfloat16)
    kv = jax.ShapeDtypeStruct((1, 2, 128, 64), jnp.bfloat16)
    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    text = grad.trace(q, kv, kv).lower(lowering_platforms=("cuda",)).as_text()
    calls = [line for line in text.splitlines() if "custom_call" in line]
    assert len(calls) == len(h.artifact.kernels) + 2
    assert all("@splat_launch" in c for c in calls)
    from splat import jax_op

    backward = jax_op._artifacts[jax_op._backward_keys[h.key]]
    assert [k["name"].removesuffix("_masked") for k in backward.kernels] == [
        abi.dq_kernel_name("bf16", 64), abi.dkv_kernel_name("bf16", 64)]
    shapes = jax.eval_shape(grad, q, kv, kv)
    assert [s.shape for s in shapes] == [q.shape, kv.shape, kv.shape]

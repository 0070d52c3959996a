"""GPU tests of the ``splat_attention`` JAX primitive (``splat.jax.prepare``, issue 13):

- ``jax.jit`` of the handle matches an fp64 reference on every artifact of the GPU suite's pack
  (14 families x D 64/128 x bf16/f16 at L = 4096, GQA), and the eager call bit for bit;
- ``jax.vmap`` over a leading axis and over the batch axis equals the per-slice calls;
- a function with the handle under ``jit`` is traced once for new values;
- the process that runs it never imports torch (a subprocess);
- the two launch routes (`splat.jax_ffi`: SPLAT's FFI handler, jaxlib's kernel-call handler)
  give bit-identical results on a plain, a masked and a split-KV artifact, and the FFI handler
  refuses an unregistered kernel and a bad parameter table with an error.

Artifacts come prebuilt, found in the pack's catalog (the GPU machine has no MLIR); the FFI
handler library is built where JAX's headers are and named by ``$SPLAT_JAX_FFI_LIB``::

    python scripts/pack_gpu_artifacts.py --tests --out .device/artifacts    # where MLIR is
    python scripts/build_jax_ffi.py --out .device/artifacts                 # where JAX is
    SPLAT_ARTIFACT_DIR=.device/artifacts SPLAT_JAX_FFI_LIB=.device/artifacts/libsplat_jax_ffi.so \
        python -m pytest -m gpu tests/gpu/test_gpu_jax.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gpu
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import splat.jax as sj  # noqa: E402
from splat import testing as T  # noqa: E402
from splat.runtime.resolve import load_cached  # noqa: E402
from splat.tiling.executor import reference_attention  # noqa: E402

TOL = {"bf16": 1e-2, "f16": 2e-3}
JDT = {"bf16": jnp.bfloat16, "f16": jnp.float16}
FAMILIES = {str(f): f for f in T.TEST_FAMILIES}


def _entries() -> list:
    d = os.environ.get("SPLAT_ARTIFACT_DIR")
    if not d or not (Path(d) / "catalog.json").is_file():
        return []
    cat = json.loads((Path(d) / "catalog.json").read_text())
    return [e for e in cat["entries"] if e.get("variant", "fused") == "fused"
            and e["family_id"] in FAMILIES and e["L"] <= 4096]


ENTRIES = _entries()


@pytest.fixture(scope="module", autouse=True)
def gpu():
    if not any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("JAX sees no GPU")


def _handle(entry):
    return sj.prepare(artifact=load_cached(Path(os.environ["SPLAT_ARTIFACT_DIR"]) / entry["key"]))


def _qkv(key, B, H, Hkv, L, D, dt):
    kq, kk, kv = jax.random.split(jax.random.PRNGKey(key), 3)
    mk = lambda k, h: jax.random.normal(k, (B, h, L, D), jnp.float32).astype(JDT[dt])
    return mk(kq, H), mk(kk, Hkv), mk(kv, Hkv)


def _rel_error(o, ref) -> float:
    o = np.asarray(o, dtype=np.float64)
    return float(np.abs(o - ref).max() / max(np.abs(ref).max(), 1e-30))


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e['family_id']}-L{e['L']}-D{e['D']}-"
                                                          f"{e['dtype']}")
def test_jit_matches_fp64_and_eager(entry):
    h = _handle(entry)
    L, D, dt = entry["L"], entry["D"], entry["dtype"]
    q, k, v = _qkv(L + D, 2, 4, 2, L, D, dt)
    o, lse = jax.jit(lambda q, k, v: h(q, k, v, return_lse=True))(q, k, v)
    o_eager = h(q, k, v)
    assert bool((o == o_eager).all()), "jit and eager differ"
    mask = T.mask_numpy(FAMILIES[entry["family_id"]], L)
    sl = (slice(None), slice(0, 2))  # heads 0-1 (kv head 0): the reference is dense fp64
    ref_o, ref_lse = reference_attention(np.asarray(q[sl], np.float64),
                                         np.asarray(k[:, :1], np.float64),
                                         np.asarray(v[:, :1], np.float64), mask, h.scale)
    assert _rel_error(o[sl], ref_o) <= TOL[dt]
    live = np.isfinite(ref_lse)
    got = np.asarray(lse[sl], np.float64)
    assert np.isneginf(got[~live]).all() and (np.asarray(o[sl])[~live] == 0).all()
    if live.any():
        assert np.abs(got[live] - ref_lse[live]).max() <= TOL[dt] * max(1.0, np.abs(ref_lse).max())


def _one(dt="bf16", D=64):
    e = [e for e in ENTRIES if e["dtype"] == dt and e["D"] == D]
    if not e:
        pytest.skip("not packed")
    return e[0]


@pytest.mark.parametrize("axis", [0, 1])
def test_vmap_equals_per_slice_calls(axis):
    entry = _one()
    h = _handle(entry)
    L, D = entry["L"], entry["D"]
    q, k, v = _qkv(7, 3, 4, 2, L, D, "bf16")  # vmap over axis 0 (size 3) or 1 (heads)
    if axis == 1:
        q, k, v = q[:, :2], k[:, :2], v[:, :2]  # map over 2 heads with H = Hkv = 1 per slice
    f = jax.jit(jax.vmap(lambda q, k, v: h(q[None], k[None], v[None])[0], in_axes=axis))
    out = f(q, k, v)
    for i in range(q.shape[axis]):
        take = (lambda x: x[i]) if axis == 0 else (lambda x: x[:, i])
        one = h(take(q)[None], take(k)[None], take(v)[None])[0]
        assert bool((out[i] == one).all()), f"slice {i}"


def test_jit_traces_once_for_new_values():
    entry = _one()
    h = _handle(entry)
    traces = []

    @jax.jit
    def f(q, k, v):
        traces.append(1)
        return h(q, k, v)

    for seed in range(3):
        f(*_qkv(seed, 2, 4, 2, entry["L"], entry["D"], "bf16")).block_until_ready()
    assert len(traces) == 1


def test_runs_without_torch():
    entry = _one()
    code = ("import os, sys, jax, jax.numpy as jnp; from pathlib import Path; "
            "import splat.jax as sj; from splat.runtime.resolve import load_cached; "
            f"h = sj.prepare(artifact=load_cached(Path(os.environ['SPLAT_ARTIFACT_DIR']) / "
            f"{entry['key']!r})); "
            f"x = jnp.ones((1, 2, {entry['L']}, {entry['D']}), jnp.bfloat16); "
            "o = jax.jit(h)(x, x, x).block_until_ready(); "
            "assert bool(jnp.isfinite(o.astype(jnp.float32)).all()); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------- the launch routes (jax_ffi)


def _needs_ffi_library():
    from splat import jax_ffi

    if jax_ffi.load_library() is None:
        pytest.skip("no libsplat_jax_ffi.so (scripts/build_jax_ffi.py; $SPLAT_JAX_FFI_LIB)")
    return jax_ffi


def _route_entries() -> list:
    """One artifact per kernel shape: a plain, a masked (remainder) and a split-KV one."""
    chosen = {}
    for e in ENTRIES:
        kernels = load_cached(Path(os.environ["SPLAT_ARTIFACT_DIR"]) / e["key"]).kernels
        kind = ("split" if len(kernels) > 1 else
                "masked" if kernels[0]["name"].endswith("_masked") else "plain")
        chosen.setdefault(kind, e)
    return list(chosen.values())


@pytest.mark.parametrize("entry", _route_entries(), ids=lambda e: e["family_id"])
def test_launch_routes_agree_bit_for_bit(entry, monkeypatch):
    _needs_ffi_library()
    h = _handle(entry)
    q, k, v = _qkv(3, 2, 4, 2, entry["L"], entry["D"], entry["dtype"])
    out = {}
    for route in ("ffi", "jaxlib"):
        monkeypatch.setenv("SPLAT_JAX_LAUNCH", route)
        compiled = jax.jit(lambda q, k, v: h(q, k, v, return_lse=True)).lower(q, k, v).compile()
        text = compiled.as_text()
        assert ("splat_launch" in text) == (route == "ffi")
        out[route] = compiled(q, k, v)
    for a, b in zip(out["ffi"], out["jaxlib"]):
        assert bool(jnp.array_equal(a, b, equal_nan=True))


def _raw_launch(key: str, params, grid=(1, 1, 1)):
    x = jnp.zeros((4,), jnp.float32)
    call = jax.ffi.ffi_call("splat_launch", jax.ShapeDtypeStruct((4,), jnp.float32))
    return jax.jit(lambda x: call(x, kernel=key, grid=np.asarray(grid, np.int64),
                                  params=np.asarray(params, np.int64)))(x).block_until_ready()


def test_handler_refuses_an_unregistered_kernel_and_a_bad_table():
    jax_ffi = _needs_ffi_library()
    with pytest.raises(Exception, match="is not registered"):
        _raw_launch("0" * 64, [0, 0])
    entry = _one()
    art = load_cached(Path(os.environ["SPLAT_ARTIFACT_DIR"]) / entry["key"])
    key = jax_ffi.register_kernel(art.kernels[0], art.ptx[art.kernels[0]["ptx_file"]])
    with pytest.raises(Exception, match="names buffer 7 of 2"):
        _raw_launch(key, [0, 7])
    with pytest.raises(Exception, match="unknown kind 9"):
        _raw_launch(key, [9, 0])
    with pytest.raises(Exception, match="grid must be"):
        _raw_launch(key, [0, 0], grid=(1, 0, 1))

"""GPU tests of the runtime itself, independent of the MLIR compiler.

A naive CUDA kernel with exactly the fused-forward ABI (tests/gpu/ref_kernel.cu, built with
nvcc here) and schedule tables made in this file stand in for the compiler's output. This checks
PTX loading, the memref parameter packing, grid/block/stream, table upload, the > 48 KiB
shared-memory opt-in, driver error reporting, the PyTorch and JAX entry points, GQA, empty rows
and that nothing is written on a failed call.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

torch = pytest.importorskip("torch")

from splat import abi  # noqa: E402
from splat import testing as T  # noqa: E402
from splat.runtime import driver as D  # noqa: E402
from splat.runtime import launcher as L  # noqa: E402
from splat.runtime.artifact import FORMAT, Artifact, content_key  # noqa: E402
from splat.runtime.driver import SplatCudaError  # noqa: E402
from splat.runtime.validate import SplatInputError  # noqa: E402

HERE = Path(__file__).resolve().parent
TOL = {"bf16": 1e-2, "f16": 2e-3}
TDT = {"bf16": torch.bfloat16, "f16": torch.float16}


def _arch() -> str:
    major, minor = torch.cuda.get_device_capability()
    return f"sm_{major}{minor}" + ("a" if major == 9 else "")


@pytest.fixture(scope="module")
def ref_ptx(tmp_path_factory) -> str:
    nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    if not os.path.exists(nvcc):
        pytest.skip("nvcc not found: cannot build the reference kernel")
    out = tmp_path_factory.mktemp("ref") / "ref.ptx"
    subprocess.run([nvcc, "-ptx", f"-arch={_arch()}", "-O3", "-o", str(out),
                    str(HERE / "ref_kernel.cu")], check=True)
    return out.read_text()


# ------------------------------------------------------------------------ schedule tables here


def _runs(cols: np.ndarray):
    """Maximal arithmetic runs (col0, step, n) of sorted columns, greedily."""
    i, n = 0, len(cols)
    while i < n:
        if i + 1 == n:
            yield int(cols[i]), 1, 1
            return
        step = int(cols[i + 1] - cols[i])
        j = i + 1
        while j + 1 < n and cols[j + 1] - cols[j] == step:
            j += 1
        yield int(cols[i]), step, j - i + 1
        i = j + 1


def tables_from_mask(mask: np.ndarray, row_step: int = 1, block_m: int = 64):
    """Row tiles of `row_step` residue classes, one segment per (row, arithmetic run)."""
    Lq = mask.shape[0]
    rt, sg = [], []
    for c in range(row_step):
        rows = np.arange(c, Lq, row_step)
        for t0 in range(0, len(rows), block_m):
            trows = rows[t0:t0 + block_m]
            b = len(sg)
            for rho, r in enumerate(trows):
                for col0, step, n in _runs(np.flatnonzero(mask[r])):
                    sg.append((col0, step, n, rho, rho + 1, 0, 0, 0, n))
            rt.append((int(trows[0]), row_step, len(trows), b, len(sg)))
    return (np.array(rt, np.int32).reshape(-1, len(abi.ROW_TILE_FIELDS)),
            np.array(sg, np.int32).reshape(-1, len(abi.SEGMENT_FIELDS)))


def window_tables(L_: int, w: int, block_m: int = 64):
    """One affine segment per tile (lo/hi slopes 1, negative intercepts clipped by the kernel)."""
    rt, sg = [], []
    for r0 in range(0, L_, block_m):
        n = min(block_m, L_ - r0)
        col0 = max(0, r0 - w)
        last = min(L_ - 1, r0 + n - 1 + w)
        rt.append((r0, 1, n, len(sg), len(sg) + 1))
        sg.append((col0, 1, last - col0 + 1, 0, n, 1, r0 - w - col0, 1, r0 + w + 1 - col0))
    return np.array(rt, np.int32), np.array(sg, np.int32)


def make_artifact(ptx: str, dtype: str, Dh: int, rt, sg, shared: int = 0) -> Artifact:
    name = f"splat_fwd_{dtype}_d{Dh}"
    params = abi.fused_kernel_params(dtype)
    key = content_key(test="ref", dtype=dtype, D=Dh, rt=rt, sg=sg, shared=shared)
    manifest = {
        "format": FORMAT, "compiler_version": "test", "key": key, "target": _arch(),
        "dtype": dtype, "head_dim": Dh, "shapes": None, "scale": None,
        "kernels": [{"name": name, "ptx_file": "ref.ptx", "block": [128, 1, 1],
                     "shared_bytes": shared, "params": params, "grid": "row_tiles",
                     "tables": ["row_tiles", "segments"]}],
        "tables": {"row_tiles": {"file": "row_tiles.npy", "dtype": "int32", "shape": list(rt.shape)},
                   "segments": {"file": "segments.npy", "dtype": "int32", "shape": list(sg.shape)}},
    }
    return Artifact(manifest=manifest, ptx={"ref.ptx": ptx}, tables={"row_tiles": rt, "segments": sg})


def inputs(B, H, Hkv, Lq, Lk, Dh, dtype, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    mk = lambda h, l: torch.randn(B, h, l, Dh, generator=g, device="cuda", dtype=torch.float32).to(TDT[dtype])
    return mk(H, Lq), mk(Hkv, Lk), mk(Hkv, Lk)


def check(o, lse, q, k, v, pred, dtype, scale=None):
    ref_o, ref_lse, empty = T.reference_attention_torch(q, k, v, pred, scale)
    assert not torch.isnan(o).any(), "output has unwritten (NaN-poisoned) elements"
    assert not torch.isnan(lse).any(), "lse has unwritten (NaN-poisoned) elements"
    if empty.any():
        assert (o[:, :, empty] == 0).all(), "empty rows must be exactly 0"
        assert torch.isneginf(lse[:, :, empty]).all(), "empty rows must have lse = -inf"
    err = T.rel_error(o, ref_o)
    assert err <= TOL[dtype], f"relative error {err:.3e} > {TOL[dtype]}"
    live = ~empty
    lerr = (lse[:, :, live].double() - ref_lse[:, :, live]).abs().max().item()
    assert lerr <= 1e-3 * max(1.0, ref_lse[:, :, live].abs().max().item()), f"lse error {lerr:.3e}"


# ------------------------------------------------------------------------------------ the tests


@pytest.mark.parametrize("dtype", ["bf16", "f16"])
@pytest.mark.parametrize("Dh", [64, 128])
@pytest.mark.parametrize("heads", [(4, 4), (8, 2)], ids=["MHA", "GQA"])
def test_affine_window_schedule(ref_ptx, dtype, Dh, heads):
    import splat.torch as st

    Lq, w = 1000, 100
    rt, sg = window_tables(Lq, w)
    art = make_artifact(ref_ptx, dtype, Dh, rt, sg)
    q, k, v = inputs(2, heads[0], heads[1], Lq, Lq, Dh, dtype, seed=Dh + heads[1])
    o = torch.full_like(q, float("nan"))
    lse = torch.full(q.shape[:3], float("nan"), device="cuda")
    st._attention(q, k, v, None, artifact=art, out=o, lse_out=lse)
    torch.cuda.synchronize()
    check(o, lse, q, k, v, lambda a, b: abs(a - b) <= w, dtype)


@pytest.mark.parametrize("row_step", [1, 3])
@pytest.mark.parametrize("fam", T.TEST_FAMILIES, ids=lambda f: f.name)
def test_families_per_row_schedule(ref_ptx, fam, row_step):
    import splat.torch as st

    Lq = 777
    rt, sg = tables_from_mask(T.mask_numpy(fam, Lq), row_step)
    art = make_artifact(ref_ptx, "bf16", 64, rt, sg)
    q, k, v = inputs(1, 4, 2, Lq, Lq, 64, "bf16", seed=row_step)
    o = torch.full_like(q, float("nan"))
    lse = torch.full(q.shape[:3], float("nan"), device="cuda")
    st._attention(q, k, v, None, 0.3, artifact=art, out=o, lse_out=lse)
    torch.cuda.synchronize()
    check(o, lse, q, k, v, fam.predicate(Lq), "bf16", scale=0.3)


def test_public_api_on_a_side_stream_and_lse(ref_ptx, tmp_path):
    import splat.torch as st
    from splat.runtime.artifact import save

    rt, sg = window_tables(640, 64)
    path = save(make_artifact(ref_ptx, "f16", 128, rt, sg), tmp_path / "a")
    q, k, v = inputs(2, 4, 4, 640, 640, 128, "f16", seed=7)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        o, lse = st.attention(q, k, v, artifact=str(path), return_lse=True)
    s.synchronize()
    assert o.dtype == torch.float16 and o.shape == q.shape and lse.dtype == torch.float32
    check(o, lse, q, k, v, lambda a, b: abs(a - b) <= 64, "f16")
    o2 = st.attention(q, k, v, artifact=str(path))
    torch.cuda.synchronize()
    assert torch.equal(o, o2)


def test_large_dynamic_shared_memory_opt_in(ref_ptx):
    import splat.torch as st

    rt, sg = window_tables(256, 32)
    art = make_artifact(ref_ptx, "bf16", 64, rt, sg, shared=100 * 1024)
    q, k, v = inputs(1, 2, 2, 256, 256, 64, "bf16", seed=3)
    o, lse = st.attention(q, k, v, artifact=art, return_lse=True)
    torch.cuda.synchronize()
    check(o, lse, q, k, v, lambda a, b: abs(a - b) <= 32, "bf16")
    too_much = make_artifact(ref_ptx, "bf16", 64, rt, sg, shared=400 * 1024)
    with pytest.raises(SplatCudaError, match="needs 409600 bytes"):
        st.attention(q, k, v, artifact=too_much)


def test_bad_ptx_gives_cuda_error_with_log(ref_ptx):
    rt, sg = window_tables(256, 32)
    bad = ref_ptx.replace("ret;", "ret; bogus.instruction %r1;", 1)
    art = make_artifact(bad, "bf16", 64, rt, sg)
    with pytest.raises(SplatCudaError) as ei:
        L.Launcher(art, torch.cuda.current_device())
    assert ei.value.call.startswith("cuModuleLoadData")
    assert ei.value.name == "CUDA_ERROR_INVALID_PTX", str(ei.value)
    print("error text:", ei.value)


def test_nothing_written_on_failed_calls(ref_ptx):
    import splat.torch as st

    rt, sg = window_tables(256, 32)
    art = make_artifact(ref_ptx, "bf16", 64, rt, sg)
    q, k, v = inputs(1, 4, 2, 256, 256, 64, "bf16", seed=5)
    o = torch.full_like(q, float("nan"))
    cases = [
        (dict(q=q, k=k.transpose(2, 3).contiguous().transpose(2, 3)), "k", "not contiguous"),
        (dict(q=q.cpu()), "q", "CUDA tensor"),
        (dict(q=q.half()), "k", "dtype"),
        (dict(q=q[:, :3].contiguous()), "k", "GQA"),
        (dict(q=q[:, :, :200].contiguous()), "pattern", "covers Lq = 256"),
        (dict(artifact=make_artifact(ref_ptx, "bf16", 128, rt, sg)), "q", "head dim 64"),
        (dict(artifact=make_artifact(ref_ptx, "f16", 64, rt, sg)), "q", "built for f16"),
    ]
    for over, arg, match in cases:
        kw = dict(q=q, k=k, v=v, artifact=art)
        kw.update(over)
        with pytest.raises(SplatInputError, match=match) as ei:
            st._attention(kw["q"], kw["k"], kw["v"], None, artifact=kw["artifact"], out=o)
        assert ei.value.arg == arg
    torch.cuda.synchronize()
    assert torch.isnan(o).all()


def test_launcher_is_cached_and_closes(ref_ptx):
    rt, sg = window_tables(256, 32)
    art = make_artifact(ref_ptx, "bf16", 64, rt, sg)
    dev = torch.cuda.current_device()
    a = L.get_launcher(art, dev)
    assert L.get_launcher(art, dev) is a
    a.close()
    b = L.get_launcher(art, dev)
    assert b is not a
    b.close()


def test_jax_entry(ref_ptx):
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    if not any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("JAX sees no GPU")
    import splat.jax as sj

    rt, sg = window_tables(512, 48)
    art = make_artifact(ref_ptx, "bf16", 64, rt, sg)
    key = jax.random.PRNGKey(0)
    kq, kk, kv = jax.random.split(key, 3)
    q = jax.random.normal(kq, (2, 4, 512, 64), dtype=jnp.float32).astype(jnp.bfloat16)
    k = jax.random.normal(kk, (2, 2, 512, 64), dtype=jnp.float32).astype(jnp.bfloat16)
    v = jax.random.normal(kv, (2, 2, 512, 64), dtype=jnp.float32).astype(jnp.bfloat16)
    o, lse = sj.attention(q, k, v, artifact=art, return_lse=True)
    assert isinstance(o, jax.Array) and o.shape == q.shape and o.dtype == jnp.bfloat16
    to_t = lambda x: torch.from_dlpack(x)
    check(to_t(o), to_t(lse), to_t(q), to_t(k), to_t(v), lambda a, b: abs(a - b) <= 48, "bf16")
    with pytest.raises(SplatInputError, match="q: expected a jax.Array"):
        sj.attention(np.zeros((2, 4, 512, 64)), k, v, artifact=art)

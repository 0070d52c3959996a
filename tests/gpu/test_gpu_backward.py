"""GPU tests of the backward kernels (issue 14; docs/design.md §6): dQ over the row schedule and
dK/dV over the column schedule match the dense fp64 gradients of
`splat.tiling.backward.reference_backward` on fresh random inputs, for test families and an
irregular mask (Lq != Lk, mask tiles, empty rows and columns), at the packed head dims, MHA and
GQA, for whichever build was packed (mma.sync, or the wgmma build on 64- or 128-row tiles).

The kernels and tables come prebuilt (the GPU machine has no MLIR)::

    python scripts/pack_backward_kernels.py --out .device/backward    # where MLIR is
    python scripts/pack_backward_kernels.py --mma wgmma --block-m 128 --out .device/bwd-wg128
    SPLAT_BACKWARD_DIR=.device/backward python -m pytest -m gpu tests/gpu/test_gpu_backward.py

(scripts/device_backward_wgmma.sh runs every build's test, then times the ones that pass.)

lse and o come from the dense fp64 forward (`splat.testing`), with a random lse gradient dlse
(the dQ kernel computes Δ = rowsum(dO ∘ O) − dlse for the dK/dV kernel); the kernels
are launched through the runtime's driver wrappers (parameters in MLIR's memref convention).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gpu
torch = pytest.importorskip("torch")

from splat import testing as T  # noqa: E402
from splat.runtime import driver as drv  # noqa: E402
from splat.runtime.driver import MemRef  # noqa: E402
from splat.tiling.backward import reference_backward  # noqa: E402

TOL = 1e-2  # bf16 inputs, f32 accumulation


def _cases() -> list:
    root = os.environ.get("SPLAT_BACKWARD_DIR")
    if not root or not Path(root).is_dir():
        return []
    return sorted(p for p in Path(root).iterdir() if (p / "case.json").is_file())


@pytest.fixture(scope="module", autouse=True)
def gpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")


def _launch(fn, params, values, grid, block, shared):
    packed = drv.pack_params(params, values)
    drv.launch(fn, grid, block, shared, torch.cuda.current_stream().cuda_stream, packed)


def _memref(t):
    return MemRef(t.data_ptr(), tuple(t.shape), tuple(t.stride()))


@pytest.mark.parametrize("heads", [(4, 4), (4, 2)], ids=["MHA", "GQA"])
@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_kernel_gradients_match_fp64(case, heads):
    info = json.loads((case / "case.json").read_text())
    tables = dict(np.load(case / "tables.npz"))
    mask_np = tables.pop("mask")
    H, Hkv = heads
    B, Lq, Lk, D = 2, info["Lq"], info["Lk"], info["D"]
    scale = 1.0 / math.sqrt(D)
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(Lq + D + H + Hkv)
    q, do = (torch.randn(B, H, Lq, D, generator=g, device=dev).to(torch.bfloat16) for _ in range(2))
    k, v = (torch.randn(B, Hkv, Lk, D, generator=g, device=dev).to(torch.bfloat16) for _ in range(2))
    mask = torch.from_numpy(mask_np).to(dev)
    o64, lse64, _ = T.reference_attention_torch(q, k, v, lambda qi, ki: mask[qi, ki], scale)
    o, lse = o64.to(q.dtype), lse64.float()
    dlse = torch.randn(B, H, Lq, generator=g, device=dev) * torch.isfinite(lse)
    delta = torch.full_like(lse, float("nan"))  # written by the dQ kernel
    dq = torch.full_like(q, float("nan"))
    dk, dv = (torch.full_like(k, float("nan")) for _ in range(2))
    dev_tables = {n: torch.from_numpy(t).to(dev) for n, t in tables.items()}

    drv.ensure_init()
    with drv.context_scope(drv.primary_context(torch.cuda.current_device())):
        module = drv.load_module((case / "kernels.ptx").read_text())
        for kind, grid_y, outputs in (("dq", H, {"dq": dq}), ("dkv", Hkv, {"dk": dk, "dv": dv})):
            spec = info[kind]
            fn = drv.get_function(module, spec["kernel"])
            if spec["shared_bytes"] > 48 * 1024:
                drv.set_max_dynamic_smem(fn, spec["shared_bytes"])
            values = {"q": q, "k": k, "v": v, "do": do, "o": o, "lse": lse, "dlse": dlse,
                      "delta": delta, **outputs, **dev_tables}
            values = {n: _memref(t) for n, t in values.items()}
            values["scale"] = scale
            _launch(fn, spec["params"], values, (spec["n_tiles"], grid_y, B), info["block"],
                    spec["shared_bytes"])
        torch.cuda.synchronize()
        drv.unload_module(module)

    want = reference_backward(*(x.double().cpu().numpy() for x in (q, k, v, do)), mask_np, scale,
                              dlse=dlse.double().cpu().numpy())
    for got, ref, what in zip((dq, dk, dv), want, ("dq", "dk", "dv")):
        got = got.double().cpu().numpy()
        assert not np.isnan(got).any(), f"{what}: elements never written"
        err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)
        assert err <= TOL, f"{what}: relative error {err:.2e}"

"""GPU correctness of the backward through the torch op (issue 14): gradients of
``splat.torch.prepare(...)(q, k, v, return_lse=True)`` against fp64 autograd of dense masked
attention, on fresh random inputs.

Cases: every test family at `splat.testing.TRAIN_LENGTHS` and the masks of
`splat.testing.random_masks` (unions of random terms, Lq != Lk, empty rows and columns), for
D in abi.BACKWARD_HEAD_DIMS (64, 128, 256), bf16 and fp16, MHA and GQA. The loss uses both
outputs, ``sum(o * g) +
sum(lse * g_lse)`` over rows with keys, so the lse gradient path is checked too. The forward
artifact comes from the catalog; the backward one is found the way a user's is: by the op,
from the layout the forward artifact records, in ``$SPLAT_ARTIFACT_DIR`` (no compiler here).
Relative error (max |g - ref| / max |ref|) per gradient <= 1e-2.

    python scripts/pack_gpu_artifacts.py --train --out .device/train --tar   # where MLIR is
    SPLAT_ARTIFACT_DIR=/tmp/train python -m pytest -m gpu tests/gpu/test_gpu_train.py

``SPLAT_GPU_REPORT=path.json`` writes every case's errors and the GPU name.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from splat import testing as T

pytestmark = pytest.mark.gpu
torch = pytest.importorskip("torch")

TOL = 1e-2
HEADS = {"MHA": (4, 4), "GQA": (8, 2)}
_REPORT: list = []


def _entries() -> list:
    d = os.environ.get("SPLAT_ARTIFACT_DIR")
    if not d or not (Path(d) / "catalog.json").is_file():
        return []
    cat = json.loads((Path(d) / "catalog.json").read_text())
    return sorted((e for e in cat["entries"] if e.get("variant") == "fused"
                   and "train" in e.get("suites", [])),
                  key=lambda e: (e["family_id"], e["L"], e["D"], e["dtype"]))


def _id(e) -> str:
    return f"{e['family_id']}-L{e['L']}-D{e['D']}-{e['dtype']}"


@pytest.fixture(scope="module", autouse=True)
def gpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPLAT_NO_COMPILE", "1")  # the backward artifact must come from the pack
        yield
    path = os.environ.get("SPLAT_GPU_REPORT")
    if path and _REPORT:
        Path(path).write_text(json.dumps({"gpu": torch.cuda.get_device_name(),
                                          "cases": _REPORT}, indent=1))


def _mask(entry) -> torch.Tensor:
    masks = dict(T.random_masks(0, 6))  # as scripts/pack_gpu_artifacts.py --train packs them
    if entry["family_id"] in masks:
        m = masks[entry["family_id"]]
    else:
        fam = next(f for f in T.TEST_FAMILIES if str(f) == entry["family_id"])
        m = T.mask_numpy(fam, entry["L"])
    return torch.from_numpy(m).cuda()


def _reference(q, k, v, mask, scale, g_o, g_lse):
    """fp64 autograd of dense masked attention; rows without keys give o = 0 and no gradient."""
    q, k, v = (t.detach().double().requires_grad_() for t in (q, k, v))
    group = q.shape[1] // k.shape[1]
    kk, vv = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    s = torch.einsum("bhmd,bhnd->bhmn", q, kk) * scale
    s = s.masked_fill(~mask, -math.inf)
    live = mask.any(1)
    s = torch.where(live[:, None], s, torch.zeros_like(s))  # empty rows: finite, dropped below
    lse = torch.logsumexp(s, -1)
    p = torch.exp(s - lse[..., None]) * live[:, None]
    o = torch.einsum("bhmn,bhnd->bhmd", p, vv)
    loss = (o * g_o.double()).sum() + (lse * g_lse.double() * live).sum()
    loss.backward()
    return q.grad, k.grad, v.grad


@pytest.mark.parametrize("mode", list(HEADS))
@pytest.mark.parametrize("entry", _entries(), ids=_id)
def test_gradients_match_fp64(entry, mode):
    import splat.torch as st
    from splat.runtime.resolve import load_cached

    art = load_cached(Path(os.environ["SPLAT_ARTIFACT_DIR"]) / entry["key"])
    H, Hkv = HEADS[mode]
    Lq, Lk, D = entry["L"], entry.get("Lk", entry["L"]), entry["D"]
    B = 2
    dt = {"bf16": torch.bfloat16, "f16": torch.float16}[entry["dtype"]]
    q = torch.randn(B, H, Lq, D, device="cuda").to(dt).requires_grad_()
    k = torch.randn(B, Hkv, Lk, D, device="cuda").to(dt).requires_grad_()
    v = torch.randn(B, Hkv, Lk, D, device="cuda").to(dt).requires_grad_()
    g_o = torch.randn(B, H, Lq, D, device="cuda").to(dt)
    g_lse = torch.randn(B, H, Lq, device="cuda")
    mask = _mask(entry)
    live = mask.any(1)
    h = st.prepare(artifact=art)
    o, lse = h(q, k, v, return_lse=True)
    loss = (o.float() * g_o.float()).sum() + torch.where(live, lse * g_lse, 0).sum()
    loss.backward()
    want = _reference(q, k, v, mask, h.scale, g_o, g_lse)
    errs = {}
    for name, got, ref in zip(("dq", "dk", "dv"), (q.grad, k.grad, v.grad), want):
        assert got is not None and got.dtype == dt and got.shape == ref.shape, name
        assert torch.isfinite(got).all(), f"{name}: non-finite gradient"
        errs[name] = T.rel_error(got, ref)
    _REPORT.append(dict(case=f"{_id(entry)}-{mode}", Lk=Lk, **errs))
    bad = {n: e for n, e in errs.items() if e > TOL}
    assert not bad, f"relative errors above {TOL}: {bad}"


def _jax_entries() -> list:
    """A few cases for JAX: one family with a remainder, one without, the random masks (bf16)."""
    keep = ("window", "longformer")
    return [e for e in _entries() if e["dtype"] == "bf16" and e["L"] != 3001
            and (e["family"] in keep or e["family_id"].startswith("r0."))]


@pytest.mark.parametrize("mode", list(HEADS))
@pytest.mark.parametrize("entry", _jax_entries(), ids=_id)
def test_jax_gradients_match_fp64(entry, mode):
    """jax.grad through `splat.jax.prepare(...)` (its custom VJP: the backward artifact's
    kernels as custom calls) against the dense fp64 reference, lse cotangent included."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    import numpy as np

    import splat.jax as sj
    from splat.runtime.resolve import load_cached
    from splat.tiling.backward import reference_backward

    art = load_cached(Path(os.environ["SPLAT_ARTIFACT_DIR"]) / entry["key"])
    h = sj.prepare(artifact=art)
    H, Hkv = HEADS[mode]
    Lq, Lk, D = entry["L"], entry.get("Lk", entry["L"]), entry["D"]
    mask = _mask(entry).cpu().numpy()
    rng = np.random.default_rng()  # fresh inputs
    q, do = (rng.standard_normal((2, H, Lq, D)).astype(np.float32) for _ in range(2))
    k, v = (rng.standard_normal((2, Hkv, Lk, D)).astype(np.float32) for _ in range(2))
    g_lse = rng.standard_normal((2, H, Lq)).astype(np.float32) * mask.any(1)
    bf = [jnp.asarray(x, dtype=jnp.bfloat16) for x in (q, k, v, do)]

    def loss(q, k, v):
        o, lse = h(q, k, v, return_lse=True)
        live = jnp.asarray(mask.any(1))
        return (jnp.sum(o.astype(jnp.float32) * bf[3].astype(jnp.float32))
                + jnp.sum(jnp.where(live, lse, 0.0) * g_lse))

    got = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(*bf[:3])
    host = [np.asarray(x.astype(jnp.float32), dtype=np.float64) for x in bf]
    want = reference_backward(*host, mask, h.scale, dlse=g_lse.astype(np.float64))
    errs = {}
    for name, g, w in zip(("dq", "dk", "dv"), got, want):
        g = np.asarray(g.astype(jnp.float32), dtype=np.float64)
        assert np.isfinite(g).all(), f"{name}: non-finite gradient"
        errs[name] = float(np.abs(g - w).max() / max(np.abs(w).max(), 1e-30))
    _REPORT.append(dict(case=f"jax-{_id(entry)}-{mode}", Lk=Lk, **errs))
    bad = {n: e for n, e in errs.items() if e > TOL}
    assert not bad, f"relative errors above {TOL}: {bad}"

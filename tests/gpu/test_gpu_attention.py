"""GPU correctness of the compiled fused kernel against an fp64 reference.

Every pattern family (splat.testing.TEST_FAMILIES) × L ∈ {1024, 4096, 16384, 3001}
× D ∈ abi.HEAD_DIMS (64, 128, 256)
× {bf16, fp16} × {MHA, GQA}, fresh random inputs per case, output and lse poisoned with NaN
before the launch; relative error (max |o - ref| / max |ref|) ≤ 1e-2 (bf16) / 2e-3 (fp16);
rows without keys must be exactly 0 with lse = -inf.

The GPU machine has no MLIR: the artifacts are compiled beforehand by
``scripts/pack_gpu_artifacts.py --tests`` into a directory holding ``catalog.json``, which
``SPLAT_ARTIFACT_DIR`` points to. Run::

    python scripts/pack_gpu_artifacts.py --tests --out .device/artifacts     # where MLIR is
    SPLAT_ARTIFACT_DIR=.device/artifacts python -m pytest -m gpu tests/gpu   # on the GPU

``SPLAT_GPU_REPORT=path.json`` writes every case's errors and the GPU name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from splat import abi
from splat import testing as T

pytestmark = pytest.mark.gpu

TOL = {"bf16": 1e-2, "f16": 2e-3}
HEADS = {"MHA": (4, 4), "GQA": (8, 2)}
CASES = [(fam, L, Dh, dt, mode) for fam in T.TEST_FAMILIES for L in T.TEST_LENGTHS
         for Dh in abi.HEAD_DIMS for dt in ("bf16", "f16") for mode in HEADS]
_REPORT: list = []


def _case_id(c):
    fam, L, Dh, dt, mode = c
    return f"{fam.name}-L{L}-D{Dh}-{dt}-{mode}"


def catalog_entries(variant: str = "fused") -> dict:
    d = os.environ.get("SPLAT_ARTIFACT_DIR")
    if not d or not (Path(d) / "catalog.json").is_file():
        return {}
    cat = json.loads((Path(d) / "catalog.json").read_text())
    return {(e["family_id"], e["L"], e["D"], e["dtype"]): e for e in cat["entries"]
            if e.get("variant", "fused") == variant}


@pytest.fixture(scope="module")
def catalog():
    entries = catalog_entries()
    if not entries:
        pytest.skip("no prebuilt artifacts: run scripts/pack_gpu_artifacts.py --tests and set "
                    "SPLAT_ARTIFACT_DIR to its output directory")
    return entries


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    path = os.environ.get("SPLAT_GPU_REPORT")
    if path and _REPORT:
        import torch

        Path(path).write_text(json.dumps({"gpu": torch.cuda.get_device_name(), "cases": _REPORT},
                                         indent=1))


def _load(entry):
    from splat.runtime.resolve import load_cached

    return load_cached(Path(os.environ["SPLAT_ARTIFACT_DIR"]) / entry["key"])


def _run_case(fam, L, Dh, dt, mode, art, pattern=None):
    import torch

    import splat.torch as st

    H, Hkv = HEADS[mode]
    B = 1 if L >= 16384 else 2
    tdt = {"bf16": torch.bfloat16, "f16": torch.float16}[dt]
    q = torch.randn(B, H, L, Dh, device="cuda").to(tdt)  # fresh inputs (global RNG, unseeded)
    k = torch.randn(B, Hkv, L, Dh, device="cuda").to(tdt)
    v = torch.randn(B, Hkv, L, Dh, device="cuda").to(tdt)
    o = torch.full_like(q, float("nan"))
    lse = torch.full((B, H, L), float("nan"), device="cuda")
    if pattern is None:
        st._attention(q, k, v, None, artifact=art, out=o, lse_out=lse)
    else:  # the public path: pattern -> content key -> $SPLAT_ARTIFACT_DIR
        o, lse = st.attention(q, k, v, pattern, return_lse=True)
    torch.cuda.synchronize()
    ref_o, ref_lse, empty = T.reference_attention_torch(q, k, v, fam)
    nan_o, nan_lse = int(torch.isnan(o).sum()), int(torch.isnan(lse).sum())
    err = T.rel_error(torch.nan_to_num(o), ref_o)
    live = ~empty
    lse_err = 0.0
    if live.any():
        d = (lse[:, :, live].double() - ref_lse[:, :, live]).abs().max().item()
        lse_err = d / max(1.0, ref_lse[:, :, live].abs().max().item())
    empty_ok = bool((o[:, :, empty] == 0).all() and torch.isneginf(lse[:, :, empty]).all())
    _REPORT.append(dict(case=_case_id((fam, L, Dh, dt, mode)), rel_err=err, lse_rel_err=lse_err,
                        nan_out=nan_o, nan_lse=nan_lse, empty_rows=int(empty.sum()),
                        empty_ok=empty_ok))
    assert nan_o == 0 and nan_lse == 0, f"{nan_o} output / {nan_lse} lse elements never written"
    assert empty_ok, "rows without keys must give o = 0 exactly and lse = -inf"
    assert err <= TOL[dt], f"relative error {err:.3e} > {TOL[dt]}"
    assert lse_err <= TOL[dt], f"lse relative error {lse_err:.3e} > {TOL[dt]}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_fused_attention_matches_fp64(catalog, case):
    fam, L, Dh, dt, mode = case
    entry = catalog.get((str(fam), L, Dh, dt))
    if entry is None:
        pytest.skip(f"{_case_id(case)} was not packed (pack_gpu_artifacts.py --tests packs all)")
    _run_case(fam, L, Dh, dt, mode, _load(entry))


@pytest.mark.parametrize("fam", T.TEST_FAMILIES[:4] + T.TEST_FAMILIES[-3:], ids=lambda f: f.name)
def test_lookup_by_pattern_content_key(catalog, fam, monkeypatch):
    """splat.torch.attention(q, k, v, pattern) finds the prebuilt artifact by content key."""
    pytest.importorskip("splat.patterns")
    monkeypatch.setenv("SPLAT_NO_COMPILE", "1")
    entry = catalog.get((str(fam), 1024, 64, "bf16"))
    if entry is None:
        pytest.skip("not packed")
    pattern, _ = T.build_pattern(fam, 1024, route=entry["route"].split()[0])
    _run_case(fam, 1024, 64, "bf16", "GQA", None, pattern=pattern)


DECOMPOSED_CASES = [(fam, 4096, Dh, "bf16", mode) for fam in T.BENCH_FAMILIES
                    for Dh in abi.HEAD_DIMS
                    for mode in HEADS]


@pytest.mark.parametrize("case", DECOMPOSED_CASES, ids=_case_id)
def test_decomposed_attention_matches_fp64(case):
    """The paper's sddmm -> softmax -> spmm path (packed by pack_gpu_artifacts.py --decomposed)."""
    fam, L, Dh, dt, mode = case
    entry = catalog_entries("decomposed").get((str(fam), L, Dh, dt))
    if entry is None:
        pytest.skip(f"{_case_id(case)}: no decomposed artifact packed")
    _run_case(fam, L, Dh, dt, mode, _load(entry))

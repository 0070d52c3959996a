"""Ampere and Ada targets (sm_80, sm_86, sm_89): the mma.sync kernels, built for the target chip,
assemble for it without spills; a kernel that needs more shared memory than the chip gives a
CTA is refused at compile time, naming the target; the wgmma build stays sm_90a's.

No GPU needed: PTX from the MLIR bindings, ptxas from the nvidia-cuda-nvcc wheel. (Not run on
such a GPU yet: the kernels are the ones the H100 runs, built for the older chip.)
"""

import numpy as np
import pytest

pytest.importorskip("mlir.ir")

import splat  # noqa: E402
from splat import abi  # noqa: E402
from splat import testing as T  # noqa: E402
from splat.lowering.to_ptx import have_ptxas, ptxas_check  # noqa: E402
from splat.runtime.launcher import _target_hint  # noqa: E402
from splat.stages import CHIPS  # noqa: E402

OLDER = ("sm_80", "sm_86", "sm_89")


def _family(name):
    return next(f for f in T.TEST_FAMILIES if f.name == name)


@pytest.mark.parametrize("chip", OLDER)
@pytest.mark.parametrize("head_dim", abi.HEAD_DIMS)
def test_forward_builds_for_the_chip_without_spills(chip, head_dim):
    # window: plain segments; random_blocks: the masked kernel (mask tiles)
    for fam in ("window", "random_blocks"):
        mask = T.mask_numpy(_family(fam), 1024)
        try:
            art = splat.compile(mask, head_dim=head_dim, target=chip)
        except ValueError as e:  # only the 99 KiB chips refuse, and only D = 256 masked
            assert chip != "sm_80" and head_dim == 256 and "masked" in str(e), e
            assert f"target {chip}: kernel splat_fwd_bf16_d256_masked needs" in str(e)
            continue
        ptx = art.ptx["kernel.ptx"]
        assert f".target {chip}" in ptx and "wgmma" not in ptx
        assert art.target == chip and art.manifest["kernels"][0]["mma"] == "mma_sync"
        for k in art.manifest["kernels"]:
            assert k["shared_bytes"] <= abi.MAX_SHARED_BYTES[chip]
        if have_ptxas():
            for name, stats in ptxas_check(ptx, arch=chip).items():
                assert stats["spill_stores"] == 0 and stats["stack_bytes"] == 0, (name, stats)


def test_shared_memory_beyond_the_chip_is_refused_at_compile_time():
    """sm_86 / sm_89 give a CTA 99 KiB, sm_80 163 KiB, sm_90 227 KiB: the D = 128 dK/dV kernel
    (103 KiB) builds for sm_80 but not sm_89, the D = 256 backward for sm_90a only."""
    mask = T.mask_numpy(_family("window"), 512)
    with pytest.raises(ValueError, match=r"target sm_89: kernel splat_bwd_dkv_bf16_d128 needs "
                                         r"105472 bytes of shared memory, more than the 101376"):
        splat.compile(mask, head_dim=128, target="sm_89", variant="backward")
    splat.compile(mask, head_dim=128, target="sm_80", variant="backward")
    with pytest.raises(ValueError, match="more than the 166912 a CTA may have on sm_80"):
        splat.compile(mask, head_dim=256, target="sm_80", variant="backward")
    splat.compile(mask, head_dim=256, target="sm_90a", variant="backward")


def test_wgmma_stays_an_sm_90a_build():
    mask = np.tril(np.ones((128, 128), dtype=bool))
    for chip in OLDER:
        with pytest.raises(ValueError, match=f"mma wgmma needs chip sm_90a; got chip {chip}"):
            splat.compile(mask, head_dim=128, target=chip, mma="wgmma")


def test_every_target_has_a_shared_memory_limit_and_a_launch_hint():
    assert set(CHIPS) == set(abi.MAX_SHARED_BYTES)
    # the launcher's advice when an artifact's target does not run on the device
    assert _target_hint((8, 6)) == "; compile with target='sm_86'"
    assert _target_hint((9, 0)) == "; compile with target='sm_90a'"
    assert "no target SPLAT builds for runs there" in _target_hint((7, 5))
    assert abi.target_runs_on("sm_80", (8, 9)) and not abi.target_runs_on("sm_89", (8, 6))


def test_frontends_default_to_the_device_target(monkeypatch):
    """target="auto" (the torch and JAX frontends' default) resolves to the newest target the
    first CUDA device runs, DEFAULT_TARGET without a driver (ahead-of-time on a CPU machine),
    and refuses a pre-Ampere device by naming the argument."""
    from splat.runtime import driver as drv
    from splat.runtime import resolve as R
    from splat.runtime.validate import SplatInputError

    def no_driver():
        raise drv.SplatCudaError("cuInit", detail="no CUDA driver")

    monkeypatch.setattr(R, "_device_targets", {})
    monkeypatch.setattr(drv, "ensure_init", no_driver)
    assert R.device_target() == R.DEFAULT_TARGET
    monkeypatch.setattr(drv, "ensure_init", lambda: None)
    for cc, want in (((8, 0), "sm_80"), ((8, 6), "sm_86"), ((8, 9), "sm_89"), ((9, 0), "sm_90a"),
                     ((10, 0), "sm_90")):
        monkeypatch.setattr(R, "_device_targets", {})
        monkeypatch.setattr(drv, "compute_capability", lambda ordinal, cc=cc: cc)
        assert R.device_target() == want
    monkeypatch.setattr(R, "_device_targets", {})
    monkeypatch.setattr(drv, "compute_capability", lambda ordinal: (7, 5))
    with pytest.raises(SplatInputError, match="target.*compute capability 7.5"):
        R.device_target()
    # the artifact an "auto" call resolves is the device target's
    monkeypatch.setattr(R, "_device_targets", {0: "sm_80"})
    mask = np.tril(np.ones((128, 128), dtype=bool))
    art = R.resolve_artifact(mask, dtype="bf16", head_dim=64, Lq=128, Lk=128,
                             target=R.AUTO_TARGET)
    assert art.target == "sm_80" and ".target sm_80" in art.ptx["kernel.ptx"]

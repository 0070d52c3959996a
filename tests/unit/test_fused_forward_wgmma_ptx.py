"""The Hopper (wgmma) variant of the fused kernel builds, lowers to sm_90a PTX and assembles
without spills, for every dtype, head dim, key tile size and kernel variant; the target picks it.

No GPU needed (the GPU suite checks its numbers): PTX from the MLIR bindings, ptxas from the
nvidia-cuda-nvcc wheel.
"""

import re

import numpy as np
import pytest

pytest.importorskip("mlir.ir")

import splat  # noqa: E402
from splat import abi  # noqa: E402
from splat.lowering.fused_config import FusedForwardConfig, kernel_launch_info  # noqa: E402
from splat.lowering.fused_forward import build_into  # noqa: E402
from splat.lowering.modules import build_in_module  # noqa: E402
from splat.lowering.to_ptx import have_ptxas, lower_to_ptx, ptxas_check  # noqa: E402
from splat.stages import StageOptions  # noqa: E402
from test_producer_protocol import flows  # noqa: E402

CONFIGS = [dict(dtype=dt, head_dim=d, block_n=bn, mask_tiles=mt, accumulate=acc,
                load_warpgroup=lw)
           for dt in ("bf16", "f16") for d in abi.WGMMA_HEAD_DIMS for bn in (None, 64)
           for mt, acc in ((False, False), (True, False), (False, True))
           for lw in (False, True) if lw or d not in abi.WGMMA_PRODUCER_ONLY_HEAD_DIMS]


def _config(kw) -> FusedForwardConfig:
    return FusedForwardConfig(kw["dtype"], kw["head_dim"], kw.get("block_n"),
                              mask_tiles=kw.get("mask_tiles", False),
                              accumulate=kw.get("accumulate", False), mma="wgmma",
                              load_warpgroup=kw.get("load_warpgroup"))


def _ptx(**kw) -> str:
    cfg = _config(kw)
    return lower_to_ptx(build_in_module(None, lambda m: build_into(m, cfg)))



@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: "-".join(map(str, kw.values())))
def test_wgmma_ptx_assembles_without_spills(kw):
    ptx = _ptx(**kw)
    cfg = _config(kw)
    bn, d, ty = cfg.block_n, kw["head_dim"], kw["dtype"]
    # S = Q K^T: one m64n{BLOCK_N}k16 per k16 step of D, B K-contiguous (no transpose)
    assert len(re.findall(rf"wgmma\.mma_async\.sync\.aligned\.m64n{bn}k16\.f32\.{ty}\.{ty} "
                          r"[^;]*, 0;", ptx)) == d // 16
    # O += P V: one m64n{D}k16 per 16 keys, B (V) D-contiguous: transposed; issued in the key
    # loop for the previous tile and once after it for the last
    assert len(re.findall(rf"wgmma\.mma_async\.sync\.aligned\.m64n{d}k16\.f32\.{ty}\.{ty} "
                          r"[^;]*, 1;", ptx)) == 2 * (bn // 16)
    assert "mma.sync" not in ptx and "ldmatrix.sync.aligned.m8n8.x4.trans" not in ptx
    # S of tile j is waited for with the previous tile's P V still in flight
    for op in ("wgmma.fence.sync.aligned", "wgmma.commit_group.sync.aligned",
               "wgmma.wait_group.sync.aligned 0", "wgmma.wait_group.sync.aligned 1",
               "fence.proxy.async.shared::cta"):
        assert op in ptx
    producer_ops = ("mbarrier.init.shared::cta.b64", "setmaxnreg.dec.sync.aligned.u32",
                    "setmaxnreg.inc.sync.aligned.u32")
    if not cfg.load_warpgroup:
        assert not any(op in ptx for op in producer_ops)
    else:  # the producer warpgroup and the compute ones meet at mbarriers only
        for op in ("mbarrier.init.shared::cta.b64", "mbarrier.arrive.release.cta.shared::cta.b64",
                   "mbarrier.try_wait.parity.acquire.cta.shared::cta.b64",
                   f"bar.sync 1, {cfg.compute_threads};", f".maxntid {cfg.num_threads}, 1, 1",
                   ".minnctapersm 1"):
            assert op in ptx, op
        # a wait that can never be satisfied traps (a CUDA error) instead of hanging the GPU
        from splat.lowering.sync import WAIT_LIMIT
        assert f"setp.ge.u32 stuck, tries, {WAIT_LIMIT};" in ptx and "@stuck trap;" in ptx
        # one compute warpgroup: its cap at entry (255) is already the most; else the split
        # must fit the registers the CTA holds (see test_register_split_fits_the_pool)
        assert all((op in ptx) == (cfg.block_m == 128) for op in producer_ops[1:])
    if not have_ptxas():
        pytest.skip("ptxas not installed")
    (stats,) = ptxas_check(ptx).values()
    assert stats["spill_stores"] == 0 and stats["spill_loads"] == 0 and stats["stack_bytes"] == 0


def test_wgmma_shared_memory_layout(monkeypatch):
    """Stages [K0][V0][K1][V1]... of BLOCK_N x D elements (3 stages; with the producer warpgroup
    abi.wgmma_producer_stages), the padded output staging tile from stage 1, then Q as core
    matrices (wgmma's A of S = Q Kᵀ), then the masked variant's bits, then the producer's
    mbarriers; the runtime's independent formula agrees (every head dim the layout is defined
    for, built or not)."""
    from splat.runtime.integrity import fused_shared_bytes

    monkeypatch.setattr(abi, "WGMMA_HEAD_DIMS", abi.HEAD_DIMS)
    for d in abi.HEAD_DIMS:
        for bn in abi.BLOCK_N_CHOICES:
            for bm in abi.BLOCK_M_CHOICES:
                for producer in (False, True):
                    if not producer and d in abi.WGMMA_PRODUCER_ONLY_HEAD_DIMS:
                        continue  # refused (test_wgmma_at_d256_always_has_its_producer_...)
                    cfg = FusedForwardConfig("bf16", d, bn, mma="wgmma", block_m=bm,
                                             load_warpgroup=producer)
                    stages = cfg.kv_stages
                    assert stages == 3 or producer
                    assert cfg.kv_tile_bytes == bn * d * 2
                    assert cfg.q_offset == 2 * cfg.kv_tile_bytes
                    q_end = cfg.q_offset + bm * (d + 8) * 2
                    assert cfg.q_core_offset == max(2 * stages * cfg.kv_tile_bytes, q_end)
                    q_core_end = cfg.q_core_offset + bm * d * 2
                    assert cfg.shared_bytes == q_core_end + (16 * stages if producer else 0)
                    masked = FusedForwardConfig("bf16", d, bn, mask_tiles=True, mma="wgmma",
                                                block_m=bm, load_warpgroup=producer)
                    m_stages = masked.kv_stages
                    assert masked.bits_offset == masked.q_core_offset + bm * d * 2
                    assert masked.shared_bytes == masked.bits_offset + m_stages * (
                        bm * abi.mask_words(bn) * 4 + (16 if producer else 0))
                    for c, m in ((cfg, False), (masked, True)):
                        assert fused_shared_bytes(d, bn, m, "wgmma", bm, 16,
                                                  producer) == c.shared_bytes
            info = kernel_launch_info("bf16", d, bn, mma="wgmma")
            assert info["shared_bytes"] == FusedForwardConfig("bf16", d, bn,
                                                              mma="wgmma").shared_bytes


def test_producer_stages_are_the_most_that_fit_and_never_fewer_than_three(monkeypatch):
    """The producer publishes tile t - 1 after issuing tile t: two stages would deadlock, so a
    layout gets at least WGMMA_PRODUCER_MIN_STAGES, and otherwise the most stages (up to
    WGMMA_PRODUCER_STAGES[block_n]) that fit sm_90; one that fits with none is over budget,
    which splat.compile refuses."""
    monkeypatch.setattr(abi, "WGMMA_HEAD_DIMS", abi.HEAD_DIMS)
    assert abi.WGMMA_PRODUCER_MIN_STAGES == 3
    over = []
    for d in abi.HEAD_DIMS:
        for bn in abi.BLOCK_N_CHOICES:
            for bm in abi.BLOCK_M_CHOICES:
                for masked in (False, True):
                    cfg = FusedForwardConfig("bf16", d, bn, mask_tiles=masked, mma="wgmma",
                                             block_m=bm, load_warpgroup=True)
                    s = cfg.kv_stages
                    assert abi.WGMMA_PRODUCER_MIN_STAGES <= s <= abi.WGMMA_PRODUCER_STAGES[bn]
                    assert flows(s, 9), (d, bn, bm, masked, s)  # the protocol's model
                    assert cfg._producer_layout_bytes(s) == cfg.shared_bytes
                    if cfg.shared_bytes > abi.SM90_SHARED_BYTES:
                        assert s == abi.WGMMA_PRODUCER_MIN_STAGES
                        over.append((d, bn, bm, masked))
                    elif s < abi.WGMMA_PRODUCER_STAGES[bn]:
                        assert cfg._producer_layout_bytes(s + 1) > abi.SM90_SHARED_BYTES
    # the budget binds where expected: 128-key tiles of the masked kernel at D = 128, and the
    # 128-row tiles at D = 256 beyond 32 keys
    assert (128, 128, 128, True) in over and (128, 64, 128, True) not in over
    assert (256, 64, 128, False) in over and (256, 32, 128, False) not in over


def test_wgmma_128_row_tiles_run_two_ctas_per_sm():
    """Without a producer: two warpgroups share each K/V tile; at 32-key tiles the kernel is
    capped at 128 registers a thread (two 256-thread CTAs per SM), elsewhere ptxas chooses."""
    def cfg(bn, **kw):
        return FusedForwardConfig("bf16", 128, bn, mma="wgmma", load_warpgroup=False, **kw)

    assert cfg(32, block_m=128).min_blocks_per_sm == 2
    assert cfg(64, block_m=128).min_blocks_per_sm == 0
    assert cfg(32).min_blocks_per_sm == 0
    assert cfg(32, block_m=128).num_threads == 256


def test_producer_warpgroup_follows_the_compute_warpgroups():
    """With a producer warpgroup the CTA is one more warpgroup, capped at entry (one CTA per
    SM: setmaxnreg needs a cap to move registers from it); the launch records it."""
    for bm in abi.BLOCK_M_CHOICES:
        cfg = FusedForwardConfig("bf16", 128, None, mma="wgmma", block_m=bm,
                                 load_warpgroup=True)
        assert cfg.compute_threads == 2 * bm and cfg.num_threads == 2 * bm + 128
        assert cfg.min_blocks_per_sm == 1
        info = kernel_launch_info("bf16", 128, mma="wgmma", block_m=bm, load_warpgroup=True)
        assert info["block"] == [cfg.num_threads, 1, 1] and info["load_warpgroup"] is True
    assert "load_warpgroup" not in kernel_launch_info("bf16", 128)  # mma.sync: none
    with pytest.raises(ValueError, match="load_warpgroup needs mma wgmma"):
        FusedForwardConfig("bf16", 128, load_warpgroup=True)


def test_target_picks_the_instructions_the_tiler_prices():
    """mma "auto" offers wgmma variants only on sm_90a (the measured table decides between
    them); the backward and older chips price mma.sync alone; an explicit mma is kept."""
    assert StageOptions(chip="sm_90a").tile_mma == "auto"
    assert StageOptions(chip="sm_90a", mma="wgmma").tile_mma == "wgmma"
    assert StageOptions(chip="sm_90").tile_mma == "mma_sync"
    assert StageOptions(chip="sm_80").tile_mma == "mma_sync"
    assert StageOptions(chip="sm_90a", mma="mma_sync").tile_mma == "mma_sync"
    assert StageOptions(chip="sm_90a", block_m=64, backward=True).tile_mma == "mma_sync"
    with pytest.raises(ValueError, match="wgmma needs chip sm_90a"):
        StageOptions(chip="sm_90", mma="wgmma")
    with pytest.raises(ValueError, match="kv-loads producer needs mma wgmma"):
        StageOptions(chip="sm_90", kv_loads="producer")
    with pytest.raises(ValueError, match="mma must be one of"):
        StageOptions(mma="hmma")
    with pytest.raises(ValueError, match="mma must be one of"):
        FusedForwardConfig("bf16", 64, mma="hmma")


def test_compile_builds_each_instruction_with_its_own_key():
    mask = np.tril(np.ones((128, 128), dtype=bool))
    wg = splat.compile(mask, head_dim=128, mma="wgmma")
    sync = splat.compile(mask, head_dim=128, mma="mma_sync")
    older = splat.compile(mask, head_dim=128, target="sm_90")
    assert "wgmma.mma_async" in wg.ptx["kernel.ptx"]
    assert "wgmma" not in sync.ptx["kernel.ptx"] and "wgmma" not in older.ptx["kernel.ptx"]
    for art, mma in ((wg, "wgmma"), (sync, "mma_sync")):
        (kernel,) = art.manifest["kernels"]
        assert kernel["mma"] == mma
        info = kernel_launch_info("bf16", 128, kernel["block_n"], mask_tiles="masked" in kernel["name"],
                                  mma=mma, block_m=kernel["block_m"],
                                  warp_rows=kernel.get("warp_rows", 16),
                                  load_warpgroup=kernel.get("load_warpgroup", False))
        assert kernel["shared_bytes"] == info["shared_bytes"]
        assert art.manifest["options"] == {"mma": mma}
    assert wg.manifest["kernels"][0]["block_m"] == abi.WGMMA_BLOCK_M  # two warpgroups
    assert len({wg.key, sync.key, older.key}) == 3
    with pytest.raises(ValueError, match="mma"):
        splat.compile(mask, head_dim=128, mma="wmma")


def test_wgmma_is_refused_where_it_failed_on_the_gpu():
    """D = 128 and 256 are built (abi.WGMMA_HEAD_DIMS); the H100's verdict on D = 64 (exact
    but slower, 2026-12-07m) is the reason given."""
    with pytest.raises(ValueError, match=r"mma wgmma supports head dim 128, 256 only \(on the H100 "
                                         r"it was exact at D = 64 but 0.44-0.72x"):
        splat.compile(np.ones((64, 64), dtype=bool), head_dim=64, mma="wgmma")
    with pytest.raises(ValueError, match="mma wgmma supports head dim 128, 256 only"):
        FusedForwardConfig("bf16", 64, mma="wgmma")


def test_wgmma_at_d256_always_has_its_producer_warpgroup():
    """At D = 256 the compute-warp build cannot hold its accumulators (ptxas refused it on the
    H100, 2026-12-07n): "auto" loads resolve to the producer warpgroup there, and asking for
    the compute warps' loads is an error naming the argument, before anything is built."""
    mask = np.ones((256, 256), dtype=bool)
    art = splat.compile(mask, head_dim=256, mma="wgmma", target="sm_90a")
    (kernel,) = art.manifest["kernels"]
    assert kernel["mma"] == "wgmma" and kernel["load_warpgroup"]
    assert FusedForwardConfig("bf16", 256, mma="wgmma").load_warpgroup
    assert not FusedForwardConfig("bf16", 128, mma="wgmma").load_warpgroup
    with pytest.raises(ValueError, match=r"kv_loads: K/V loads by the compute warps cannot "
                                         r"build the wgmma kernel at head dim 256"):
        splat.compile(mask, head_dim=256, mma="wgmma", kv_loads="compute", target="sm_90a")
    with pytest.raises(ValueError, match="at head dim 256"):
        FusedForwardConfig("bf16", 256, mma="wgmma", load_warpgroup=False)


def test_ping_pong_takes_turns_between_the_two_compute_warpgroups(monkeypatch):
    """With PING_PONG, each compute warpgroup waits for its turn (bar.sync on barrier 2 + its
    index, 256 threads) before issuing its products and hands the turn over (bar.arrive) after;
    warpgroup 1 gives warpgroup 0 the first turn. One compute warpgroup takes no turns."""
    from splat.lowering.fused_forward_wgmma import WarpSpecializedWgmmaKernel

    monkeypatch.setattr(WarpSpecializedWgmmaKernel, "PING_PONG", True)
    cfg = FusedForwardConfig("bf16", 128, 64, mma="wgmma", block_m=128, load_warpgroup=True)
    two = lower_to_ptx(build_in_module(None, lambda m: build_into(m, cfg)))
    assert "bar.arrive 2, 256;" in two  # the first turn
    assert len(re.findall(r"bar\.sync \t?%r\d+, 256;", two)) == 1
    assert len(re.findall(r"bar\.arrive \t?%r\d+, 256;", two)) == 1
    one = _ptx(dtype="bf16", head_dim=128, block_n=64, load_warpgroup=True)  # 64-row tiles
    assert "bar.arrive" not in one
    if have_ptxas():
        (stats,) = ptxas_check(two).values()
        assert stats["spill_stores"] == 0 and stats["stack_bytes"] == 0


def test_ping_pong_is_on_from_128_key_tiles_without_the_switch():
    """The producer kernel takes ping-pong turns at 128-key tiles (measured faster there on
    every family) and not at 64 unless PING_PONG forces it."""
    def turns(block_n):
        cfg = FusedForwardConfig("bf16", 128, block_n, mma="wgmma", block_m=128,
                                 load_warpgroup=True)
        return "bar.arrive 2, 256;" in lower_to_ptx(build_in_module(None,
                                                                    lambda m: build_into(m, cfg)))
    assert turns(128) and not turns(64)


@pytest.mark.parametrize("block_m", abi.BLOCK_M_CHOICES)
def test_register_split_fits_the_pool(block_m):
    """setmaxnreg.inc waits until the CTA's pool has the registers: the producer's and the
    compute threads' counts must fit what the CTA holds at entry (the cap, 64K / threads in
    steps of 8, for every thread), not 64K. 128 x 48 + 256 x 232 did not, and hung on the
    H100."""
    from splat.lowering.fused_forward_wgmma import WarpSpecializedWgmmaKernel as W

    cfg = FusedForwardConfig("bf16", 128, 64, mma="wgmma", block_m=block_m,
                             load_warpgroup=True)
    entry = (65536 // cfg.num_threads) // 8 * 8
    if block_m == 64:
        assert W.compute_registers(cfg) == 0  # 255 at entry already
        return
    assert entry == 168 and W.compute_registers(cfg) == 224
    pool = entry * cfg.num_threads
    used = W.PRODUCER_REGISTERS * abi.WGMMA_PRODUCER_THREADS
    assert used + W.compute_registers(cfg) * cfg.compute_threads <= pool
    assert used + (W.compute_registers(cfg) + 8) * cfg.compute_threads > pool  # the most


def test_compile_builds_the_producer_warpgroup_on_request():
    """splat.compile(kv_loads="producer") builds the wgmma kernel with a producer warpgroup:
    its own key, the manifest records it (block and shared bytes follow; masked variant too),
    a split schedule's accumulating kernel has it too; anything but wgmma's fused kernel is
    refused."""
    n = 384
    idx = np.arange(n)
    window = np.abs(idx[:, None] - idx[None, :]) < 48
    strided = window | ((idx[:, None] - idx[None, :]) % 64 == 0)  # window + residue classes
    for mask in (window, strided):
        prod = splat.compile(mask, head_dim=128, mma="wgmma", kv_loads="producer")
        plain = splat.compile(mask, head_dim=128, mma="wgmma", kv_loads="compute")
        assert prod.key != plain.key
        assert prod.manifest["options"] == {"mma": "wgmma", "kv_loads": "producer"}
        assert "mbarrier.try_wait" in prod.ptx["kernel.ptx"]
        assert "mbarrier" not in plain.ptx["kernel.ptx"]
        for k in prod.manifest["kernels"]:
            info = kernel_launch_info("bf16", 128, k["block_n"], mask_tiles="masked" in k["name"],
                                      accumulate=k["name"].endswith("_acc"), mma="wgmma",
                                      block_m=k["block_m"], load_warpgroup=True)
            assert k["load_warpgroup"] is True and k["block"] == info["block"]
            assert k["shared_bytes"] == info["shared_bytes"]
        assert all("load_warpgroup" not in k for k in plain.manifest["kernels"])
    from splat.compiler import _split_launch  # a split schedule's accumulating launch

    acc = _split_launch("bf16", 128, 32, "wgmma", 128, 16, True)
    assert acc["load_warpgroup"] is True and acc["block"] == [384, 1, 1]
    assert acc["name"].endswith("_acc")
    with pytest.raises(ValueError, match="kv_loads 'producer' needs the fused variant with mma"):
        splat.compile(window, head_dim=128, kv_loads="producer", target="sm_90")
    with pytest.raises(ValueError, match="kv_loads 'producer' needs the fused variant with mma"):
        splat.compile(window, head_dim=128, mma="mma_sync", kv_loads="producer")
    with pytest.raises(ValueError, match="kv_loads must be one of auto, compute, producer"):
        splat.compile(window, head_dim=128, mma="wgmma", kv_loads="tma")
    with pytest.raises(ValueError, match="kv-loads producer needs mma wgmma"):
        StageOptions(mma="mma_sync", kv_loads="producer")
    assert StageOptions(kv_loads="producer").tile_mma == "wgmma"  # producer loads: a wgmma build


def test_compile_refuses_a_producer_layout_over_the_budget_and_says_what_fits():
    """Three stages of 128-key tiles, their mask bits and Q exceed sm_90a's 227 KiB at D = 128:
    the masked producer kernel is refused by splat-lower-to-gpu, located at the op (two stages
    would deadlock), naming the way out; the unmasked one builds."""
    rng = np.random.default_rng(7)
    n = 512
    idx = np.arange(n)
    window = np.abs(idx[:, None] - idx[None, :]) < 100
    ragged = window & (rng.random((n, n)) < 0.7)  # leaves mask tiles
    splat.compile(window, head_dim=128, mma="wgmma", kv_loads="producer", block_n=128)
    from splat.compiler import CompileError

    with pytest.raises(CompileError, match=r"the wgmma kernel with a producer warpgroup for 128 x "
                                           r"128 tiles with mask tiles needs \d+ bytes of shared "
                                           r"memory, more than the 232448 a CTA may have on "
                                           r"sm_90a: tile with a smaller block-n"):
        splat.compile(ragged, head_dim=128, mma="wgmma", kv_loads="producer", block_n=128)
    art = splat.compile(ragged, head_dim=128, mma="wgmma", kv_loads="producer", block_n=64)
    assert any("masked" in k["name"] for k in art.manifest["kernels"])
    # D = 256 (always a producer warpgroup): 32-key tiles fit three stages, 64-key ones do not
    with pytest.raises(CompileError, match=r"for 128 x 64 tiles needs \d+ bytes of shared "
                                           r"memory, .*: tile with a smaller block-n"):
        splat.compile(window, head_dim=256, mma="wgmma", block_n=64)
    art = splat.compile(window, head_dim=256, mma="wgmma", block_n=32)
    assert art.manifest["kernels"][0]["load_warpgroup"]


def _descriptor_modes(ptx: str) -> set:
    """(swizzle mode, stride byte offset >> 4) of every descriptor constant the PTX ors in."""
    return {(int(n) >> 62, (int(n) >> 32) & 0x3FFF)
            for n in re.findall(r"or\.b64\s+%rd\d+, %rd\d+, (\d+);", ptx)}


def test_tiles_are_128_byte_swizzled_unless_switched_off(monkeypatch):
    """The default layout is the 128-byte swizzle (descriptor mode 1, 8-row groups 1024 bytes
    apart) in 1024-byte-aligned shared memory; SWIZZLE = False keeps the interleaved core
    matrices (mode 0, core matrices 128 bytes apart along the rows)."""
    from splat.lowering.fused_forward_wgmma import WgmmaForwardKernel

    swizzled = _ptx(dtype="bf16", head_dim=128, block_n=64, load_warpgroup=True)
    assert (1, 1024 >> 4) in _descriptor_modes(swizzled)
    assert ".extern .shared .align 1024" in swizzled
    monkeypatch.setattr(WgmmaForwardKernel, "SWIZZLE", False)
    interleaved = _ptx(dtype="bf16", head_dim=128, block_n=64, load_warpgroup=True)
    modes = _descriptor_modes(interleaved)
    assert (0, 128 >> 4) in modes and not any(mode for mode, _ in modes)


@pytest.mark.skipif(not have_ptxas(), reason="ptxas not installed")
def test_random_masks_build_at_every_wgmma_head_dim_within_the_budget():
    """Masks nobody named (random unions with mask tiles, Lq != Lk) compile as wgmma at every
    head dim it is built for, with and without an explicit producer warpgroup: each kernel fits
    sm_90a's shared memory, assembles, and spills nothing."""
    from splat import testing as T

    for _, mask in T.random_masks(5, 2):
        for head_dim in abi.WGMMA_HEAD_DIMS:
            for loads in ("auto", "producer"):
                art = splat.compile(mask, head_dim=head_dim, mma="wgmma", kv_loads=loads,
                                    target="sm_90a")
                for kernel in art.manifest["kernels"]:
                    assert kernel["mma"] == "wgmma"
                    assert kernel["shared_bytes"] <= abi.SM90_SHARED_BYTES
                    for stats in ptxas_check(art.ptx[kernel["ptx_file"]]).values():
                        assert stats["spill_stores"] == stats["spill_loads"] == 0

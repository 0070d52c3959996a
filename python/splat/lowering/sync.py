"""CTA-level synchronisation for warp-specialised kernels (sm_90): mbarriers, named barriers and
register reallocation, as inline PTX.

Why inline PTX: the kernels address shared memory through memrefs until the upstream NVVM
lowering, so an mbarrier is just 8 bytes of the dynamic shared memory, named by its 32-bit
shared-window address; the NVVM dialect's mbarrier ops want an LLVM pointer that does not exist
yet at this level.  Each helper is one instruction (the wait is a spin loop in a PTX scope of its
own, so its labels may repeat) and is marked as having side effects, so LLVM keeps their order.

Protocol used by the kernels (fused_forward_wgmma.py): a *full* barrier per stage, arrived on by
every producer thread once its copies into the stage have landed (and been fenced for the
tensor cores' async proxy), and an *empty* barrier per stage, arrived on by one lane of each
consumer warp once the stage's last reader (a wgmma) has completed.  Round ``r`` of a stage
waits for phase parity ``r & 1`` on *full* and ``(r & 1) ^ 1`` on *empty*: a fresh barrier
counts its (virtual) previous phase, of parity 1, as complete, so round 0's producer never
blocks.
"""

from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, llvm, memref

from .builder import ci, i32_type

__all__ = ["shared_u32", "mbarrier_init", "mbarrier_arrive", "mbarrier_wait", "named_barrier",
           "named_barrier_arrive", "set_max_registers", "MBARRIER_BYTES",
           "WAIT_LIMIT"]

MBARRIER_BYTES = 8


def shared_u32(buf, byte_offset: int = 0) -> ir.Value:
    """The 32-bit shared-window address of byte ``byte_offset`` of workgroup memref ``buf``."""
    idx = memref.extract_aligned_pointer_as_index(buf)
    addr = arith.index_cast(i32_type(), idx)
    return addr if byte_offset == 0 else arith.addi(addr, ci(byte_offset))


def _asm(text: str, operands: list, constraints: str) -> None:
    llvm.inline_asm(None, operands, text, constraints, has_side_effects=True)


def mbarrier_init(addr, count: int) -> None:
    """Initialise the mbarrier at ``addr`` to expect ``count`` arrivals per phase (one thread;
    a CTA barrier after it publishes the barrier to every thread)."""
    _asm("mbarrier.init.shared::cta.b64 [$0], $1;", [addr, ci(count)], "r,r")


def mbarrier_arrive(addr) -> None:
    """Arrive on the mbarrier at ``addr`` (release: this thread's earlier writes are visible to a
    thread that sees the phase complete)."""
    _asm("mbarrier.arrive.release.cta.shared::cta.b64 _, [$0];", [addr], "r")


# Failed try_waits before a wait gives up and traps: a protocol error (or a setmaxnreg that can
# never be granted upstream of a producer) then ends the launch with a CUDA error instead of
# hanging the caller's GPU. Each try_wait may also suspend the thread for a while, so this is at
# least ~1 s of spinning; a legitimate wait lasts one key tile (microseconds).
WAIT_LIMIT = 1 << 26


def mbarrier_wait(addr, parity) -> None:
    """Spin until the phase of parity ``parity`` (i32, 0 or 1) of the mbarrier at ``addr`` has
    completed (acquire); ``trap`` after WAIT_LIMIT failed tries."""
    _asm("{\n.reg .pred done, stuck;\n.reg .b32 tries;\nmov.b32 tries, 0;\nsplat_wait:\n"
         "mbarrier.try_wait.parity.acquire.cta.shared::cta.b64 done, [$0], $1;\n"
         "@done bra splat_waited;\n"
         "add.u32 tries, tries, 1;\n"
         f"setp.ge.u32 stuck, tries, {WAIT_LIMIT};\n"
         "@stuck trap;\n"
         "bra splat_wait;\n"
         "splat_waited:\n}", [addr, parity], "r,r")


def _bar(op: str, barrier_id, threads: int) -> None:
    """``bar.<op> barrier_id, threads``; the id an int (1 and up: 0 is the CTA-wide barrier of
    ``gpu.barrier``) or an i32 value."""
    assert threads % 32 == 0
    if isinstance(barrier_id, int):
        assert barrier_id > 0
        _asm(f"bar.{op} {barrier_id}, {threads};", [], "")
    else:
        _asm(f"bar.{op} $0, {threads};", [barrier_id], "r")


def named_barrier(barrier_id, threads: int) -> None:
    """``bar.sync``: a barrier among ``threads`` threads (whole warps) of the CTA, leaving the
    others (a producer warpgroup) free to run on."""
    _bar("sync", barrier_id, threads)


def named_barrier_arrive(barrier_id, threads: int) -> None:
    """``bar.arrive``: count this warp in for the barrier without waiting."""
    _bar("arrive", barrier_id, threads)


def set_max_registers(count: int, *, increase: bool) -> None:
    """``setmaxnreg``: this warpgroup's registers a thread become ``count`` (a multiple of 8 in
    24..256).  Takes effect only in a kernel with a register cap at entry (``.maxntid`` with
    ``.minnctapersm``) and with every warp of the warpgroup executing it."""
    assert count % 8 == 0 and 24 <= count <= 256
    action = "inc" if increase else "dec"
    _asm(f"setmaxnreg.{action}.sync.aligned.u32 {count};", [], "")

"""Lower a module holding ``gpu.module``s to PTX text, and check the PTX with ``ptxas``.

The upstream ``gpu-lower-to-nvvm-pipeline`` is split right before ``gpu-module-to-binary`` so the
LLVM-dialect device module can be patched first: the dynamic shared-memory global becomes an
``external`` (``.extern .shared``) symbol aligned to 16 bytes, otherwise it is emitted as a 1-byte
static ``.shared`` array that may overlap static buffers and is only element-aligned (ldmatrix and
cp.async need 16 bytes).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import tempfile

from mlir import ir, passmanager
from mlir.dialects import gpu

DYNAMIC_SMEM_PREFIX = "__dynamic_shmem__"
DYNAMIC_SMEM_ALIGN = 1024  # the 128-byte swizzle's period (wgmma.SWIZZLE_ATOM_BYTES)


def nvvm_passes_before_binary(chip: str, features: str, opt_level: int) -> str:
    """The expanded upstream ``gpu-lower-to-nvvm-pipeline``, up to (excluding)
    ``gpu-module-to-binary``, as comma-separated pass elements."""
    full = str(passmanager.PassManager.parse(
        "builtin.module(gpu-lower-to-nvvm-pipeline{"
        f"cubin-chip={chip} cubin-features={features} cubin-format=isa opt-level={opt_level}}})"))
    head, sep, _ = full.partition(",gpu-module-to-binary")
    if not sep or not head.startswith("builtin.module("):
        raise RuntimeError(f"unexpected expansion of gpu-lower-to-nvvm-pipeline: {full}")
    return head[len("builtin.module("):]


def patch_dynamic_shared_memory(module: ir.Module) -> int:
    """Give every ``__dynamic_shmem__*`` LLVM global external linkage and 1024-byte alignment."""
    patched = 0

    def visit(op):
        nonlocal patched
        op = op.operation if hasattr(op, "operation") else op
        if op.name == "llvm.mlir.global":
            name = ir.StringAttr(op.attributes["sym_name"]).value
            if name.startswith(DYNAMIC_SMEM_PREFIX):
                op.attributes["linkage"] = ir.Attribute.parse("#llvm.linkage<external>")
                op.attributes["alignment"] = ir.IntegerAttr.get(
                    ir.IntegerType.get_signless(64), DYNAMIC_SMEM_ALIGN)
                patched += 1
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    return patched


def lower_to_ptx(module: ir.Module, *, chip: str = "sm_90a", features: str = "+ptx80",
                 opt_level: int = 3) -> str:
    """PTX text of the module's gpu.module(s).  The input module is not modified."""
    with module.context, ir.Location.unknown():
        work = ir.Module.parse(str(module))
        head = nvvm_passes_before_binary(chip, features, opt_level)
        passmanager.PassManager.parse(f"builtin.module({head})").run(work.operation)
        patch_dynamic_shared_memory(work)
        passmanager.PassManager.parse(
            "builtin.module(gpu-module-to-binary{format=isa})").run(work.operation)
        texts = []
        for op in work.body.operations:
            if op.operation.name != "gpu.binary":
                continue
            for obj in ir.ArrayAttr(op.attributes["objects"]):
                texts.append(gpu.ObjectAttr(obj).object.decode())
    if not texts:
        raise RuntimeError("no gpu.binary produced (does the module hold a gpu.module?)")
    return "\n".join(texts)


def find_ptxas() -> str:
    """``$SPLAT_PTXAS``, ``ptxas`` on PATH, or the one of the ``nvidia-cuda-nvcc-cu12`` wheel."""
    env = os.environ.get("SPLAT_PTXAS")
    if env:
        return env
    spec = importlib.util.find_spec("nvidia.cuda_nvcc")
    if spec is not None and spec.submodule_search_locations:
        for base in spec.submodule_search_locations:
            cand = os.path.join(base, "bin", "ptxas")
            if os.access(cand, os.X_OK):
                return cand
    found = shutil.which("ptxas")
    if found:
        return found
    raise FileNotFoundError("ptxas not found (set SPLAT_PTXAS or install nvidia-cuda-nvcc-cu12)")


def have_ptxas() -> bool:
    """Whether :func:`find_ptxas` finds one (tests that assemble PTX skip without it)."""
    try:
        find_ptxas()
        return True
    except FileNotFoundError:
        return False


_RE_COMPILING = re.compile(r"Compiling entry function '(\w+)'")
_RE_PROPS = re.compile(r"Function properties for (\w+)")
_RE_SPILL = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_RE_USED = re.compile(r"Used (\d+) registers")
_RE_SMEM = re.compile(r"(\d+) bytes smem")


def ptxas_check(ptx: str, arch: str = "sm_90a") -> dict:
    """Assemble ``ptx`` with ``ptxas -v``; per kernel: registers, spill bytes, stack, static smem.

    Raises ``RuntimeError`` carrying ptxas' message when assembly fails.
    """
    ptxas = find_ptxas()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "kernel.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        proc = subprocess.run([ptxas, "-v", f"-arch={arch}", "-o", os.path.join(tmp, "k.cubin"), src],
                              capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"ptxas failed ({proc.returncode}):\n{log}")
    info: dict[str, dict] = {}
    current = None
    for line in log.splitlines():
        if (mt := _RE_COMPILING.search(line)) or (mt := _RE_PROPS.search(line)):
            current = info.setdefault(mt.group(1), {"registers": None, "spill_stores": 0,
                                                    "spill_loads": 0, "stack_bytes": 0,
                                                    "shared_bytes": 0})
            continue
        if current is None:
            continue
        if mt := _RE_SPILL.search(line):
            current["stack_bytes"] = int(mt.group(1))
            current["spill_stores"] = int(mt.group(2))
            current["spill_loads"] = int(mt.group(3))
        if mt := _RE_USED.search(line):
            current["registers"] = int(mt.group(1))
            if ms := _RE_SMEM.search(line):
                current["shared_bytes"] = int(ms.group(1))
    return info


def ptx_param_count(ptx: str, kernel: str) -> int:
    """Number of ``.param`` entries of ``.entry kernel(...)`` in the PTX text."""
    mt = re.search(r"\.entry\s+" + re.escape(kernel) + r"\s*\((.*?)\)", ptx, re.S)
    if not mt:
        raise KeyError(f"kernel {kernel} not in PTX")
    return len(re.findall(r"\.param\b", mt.group(1)))

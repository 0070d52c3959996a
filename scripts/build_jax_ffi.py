#!/usr/bin/env python3
"""Build SPLAT's JAX launch handler (``libsplat_jax_ffi.so``, splat_jax_ffi/) with CMake.

    python scripts/build_jax_ffi.py                      # into the installed splat/_lib
    python scripts/build_jax_ffi.py --out DIR            # e.g. a GPU bundle
    python scripts/build_jax_ffi.py --include-dir DIR    # JAX's FFI headers from elsewhere

The headers come from ``jax.ffi.include_dir()`` of the Python running this script unless
``--include-dir`` names them; the library needs no CUDA toolkit (it opens libcuda at run time).
splat.jax uses it when it is in ``splat/_lib`` or named by ``$SPLAT_JAX_FFI_LIB``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBRARY_NAME = "libsplat_jax_ffi.so"


def _jax_include_dir() -> str:
    try:
        import jax  # noqa: PLC0415
    except ImportError:
        sys.exit("no JAX in this Python: pass --include-dir (JAX's jax.ffi.include_dir())")
    return jax.ffi.include_dir()


def _default_out() -> Path:
    import splat  # noqa: PLC0415

    roots = [Path(p) for p in splat.__path__ if (Path(p) / "_lib").is_dir()]
    if not roots:
        sys.exit("splat/_lib not found (is splat installed?): pass --out")
    return roots[0] / "_lib"


def build(include_dir: str, out: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="splat-jax-ffi-") as tmp:
        subprocess.run(["cmake", "-S", str(ROOT / "splat_jax_ffi"), "-B", tmp,
                        "-DCMAKE_BUILD_TYPE=Release",
                        f"-DSPLAT_JAX_FFI_INCLUDE_DIR={include_dir}"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", tmp], check=True, stdout=subprocess.DEVNULL)
        out.mkdir(parents=True, exist_ok=True)
        target = out / LIBRARY_NAME
        shutil.copy2(Path(tmp) / LIBRARY_NAME, target)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--include-dir", help="JAX's FFI headers (default: jax.ffi.include_dir())")
    ap.add_argument("--out", type=Path, help="directory for the library (default: splat/_lib)")
    args = ap.parse_args(argv)
    target = build(args.include_dir or _jax_include_dir(), args.out or _default_out())
    print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

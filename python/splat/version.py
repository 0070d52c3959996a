"""The compiler version that keys every artifact and cache entry.

``compiler_version()`` is ``<splat version>+<hash>``, the hash taken over the whole compiler
side: every Python file of the ``splat`` package and of ``splat.passes`` except the runtime side
(``runtime/``, the torch and JAX entry points and ops: they do not shape artifacts), the data
files the compiler reads (``COMPILER_DATA``: the tiler's measured cost model and kernel variants,
which choose schedules and kernel builds), and the built dialect library. Any change to any of them gives new content keys, so on-disk
caches and prebuilt artifact directories never serve kernels of another compiler.

A machine without the compiler side (no dialect library: a GPU machine given prebuilt
artifacts) has no version of its own; there the runtime takes the version recorded by whoever
packed the artifacts (``splat.runtime.resolve``). Imports neither MLIR nor the runtime.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

import splat

DIALECT_LIBRARY = "libSplatDialect.so"
_RUNTIME_SIDE = ("runtime", "torch.py", "torch_op.py", "torch_train.py", "jax.py", "jax_op.py",
                 "jax_ffi.py")
# Compiler-side files besides the Python ones (patterns relative to the splat package)
COMPILER_DATA = ("tiling/*.json",)


def dialect_library() -> Path | None:
    """The built dialect library of this installation (None where it is not built)."""
    for root in splat.__path__:
        candidate = Path(root) / "_lib" / DIALECT_LIBRARY
        if candidate.is_file():
            return candidate
    return None


def _package_roots() -> list[tuple[str, Path]]:
    """(package name, directory) of every directory the compiler's Python files live in."""
    # An editable install also lists the project root (it maps passes/ into the package); only
    # the directories that are the package itself hold its modules.
    roots = [("splat", Path(p)) for p in splat.__path__ if Path(p).name == "splat"]
    passes = importlib.util.find_spec("splat.passes")
    if passes is not None and passes.submodule_search_locations:
        roots += [("splat.passes", Path(p)) for p in passes.submodule_search_locations]
    return roots


def _compiler_files() -> dict[str, Path]:
    """Module path ("splat/analysis/scan.py") -> file, for every compiler-side Python file."""
    files: dict[str, Path] = {}
    for package, root in _package_roots():
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root)
            if package == "splat" and (rel.parts[0] in _RUNTIME_SIDE or rel.parts[0] == "passes"):
                continue  # the runtime side; passes/ is hashed as splat.passes
            files.setdefault("/".join(package.split(".") + list(rel.parts)), path)
        if package == "splat":
            for pattern in COMPILER_DATA:
                for path in sorted(root.glob(pattern)):
                    files.setdefault("/".join(["splat", *path.relative_to(root).parts]), path)
    return files


@functools.cache
def compiler_version() -> str | None:
    """``<splat version>+<12 hex digits>``, or None without a built dialect library."""
    library = dialect_library()
    if library is None:
        return None
    digest = hashlib.sha256()
    for name, path in sorted(_compiler_files().items()):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(DIALECT_LIBRARY.encode() + b"\0" + library.read_bytes())
    return f"{splat.__version__}+{digest.hexdigest()[:12]}"

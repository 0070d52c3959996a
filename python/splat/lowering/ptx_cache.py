"""PTX of ``gpu.module @splat_kernels``, cached by the module's content.

The kernels do not depend on the mask: every layout with the same (kernel variants, head dim,
dtype, BLOCK_N) emits the same ``gpu.module``, and the schedule reaches the kernel as run-time
tables. Lowering that module to PTX (upstream NVVM lowering and LLVM's back end) is most of a
compile (about 0.2 s of 0.3 s), so ``splat.compile`` looks the PTX up by a hash of the module's
text, the target options and the compiler version, and a new mask costs only its analysis,
tiling and kernel emission.

Entries live in this process's memory and in ``$SPLAT_CACHE_DIR/kernels/<key>.ptx`` (written
atomically). A file read back is used only if it is ASCII PTX that declares every kernel of the
module; anything else is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

from ..runtime.cache import cache_dir
from ..runtime.trust import make_private_dirs

_MAX_PTX_BYTES = 64 << 20
_lock = threading.Lock()
_memory: dict[str, str] = {}
stats = {"hits": 0, "misses": 0}


def ptx_key(module_text: str, target_options: str, compiler_version: str) -> str:
    digest = hashlib.sha256()
    for part in (module_text, target_options, compiler_version):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def _disk_path(key: str) -> Path:
    return cache_dir() / "kernels" / f"{key}.ptx"


def _usable(text: str, kernels: list[str]) -> bool:
    return text.isascii() and all(f".entry {name}(" in text for name in kernels)


def lookup(key: str, kernels: list[str]) -> str | None:
    """The cached PTX for ``key`` that declares every kernel in ``kernels``, or None."""
    with _lock:
        text = _memory.get(key)
    if text is None:
        try:
            path = _disk_path(key)
            if path.stat().st_size <= _MAX_PTX_BYTES:
                text = path.read_bytes().decode("ascii")
        except (OSError, UnicodeDecodeError):
            text = None
        if text is not None and not _usable(text, kernels):
            text = None
    with _lock:
        stats["hits" if text is not None else "misses"] += 1
        if text is not None:
            _memory[key] = text
    return text


def store(key: str, ptx: str) -> None:
    """Keep ``ptx`` under ``key`` in memory and, best effort, on disk."""
    with _lock:
        _memory[key] = ptx
    path, tmp = _disk_path(key), None
    try:
        make_private_dirs(path.parent)  # 0700, as the runtime's cache (runtime.trust)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:16]}-")
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(ptx)
        os.replace(tmp, path)
    except (OSError, UnicodeEncodeError):
        # a read-only or full disk only costs the next process a compile
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def clear_memory() -> None:
    with _lock:
        _memory.clear()
        stats.update(hits=0, misses=0)

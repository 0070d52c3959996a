"""Artifact caches: one dict per process, and a directory on disk shared by processes.

Disk layout: ``$SPLAT_CACHE_DIR/artifacts/<key>/`` (default ``~/.cache/splat``), one artifact
directory per content key (`splat.runtime.artifact.content_key`). Entries are written with
`artifact.save`, i.e. into a temporary sibling and renamed into place, so concurrent processes
never see partial entries; when two processes build the same key at once, the first rename wins
and the other process loads the winner's entry (both are the same content).

Trust (docs/runtime.md, "Trust model"): `cache_dir` refuses a cache that someone other than the
current user (or root) can write (`splat.runtime.trust`), and the directories the cache creates
are private (0700). An entry is used only if it loads with every check `load` makes (content
digests, tables, kernel ABI) and holds the artifact of the key it is filed under; otherwise it is
evicted and rebuilt once, with a warning, and a rebuilt artifact that fails the runtime's checks
is an error, not a cache entry.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Callable

from . import trust
from .artifact import Artifact, ArtifactError, load, save

_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")

_lock = threading.Lock()
_memory: dict = {}
_stats = {"memory_hits": 0, "disk_hits": 0, "builds": 0}


_SUBDIRS = ("artifacts", "kernels")  # compiled artifacts; lowering.ptx_cache's PTX


def cache_dir() -> Path:
    """Root of the on-disk cache: ``$SPLAT_CACHE_DIR`` or ``~/.cache/splat``.

    Raises `splat.runtime.trust.UnsafePathError` (a PermissionError and an ArtifactError) when
    the root, a directory above it or one of its subdirectories can be written by another user.
    """
    env = os.environ.get("SPLAT_CACHE_DIR")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "splat"
    hint = "set SPLAT_CACHE_DIR to a directory only you can write"
    trust.check_tree(root, "splat cache directory", hint)
    for sub in _SUBDIRS:
        if (root / sub).exists():
            trust.check_file(root / sub, "splat cache directory", hint)
    return root


def entry_path(key: str) -> Path:
    _check_key(key)
    return cache_dir() / "artifacts" / key


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"cache key must be 1-128 letters, digits, '_' or '-', got {key!r}")


def cache_info() -> dict:
    """Counters since the last `clear_memory_cache` (memory_hits, disk_hits, builds, entries)."""
    with _lock:
        return dict(_stats, entries=len(_memory))


def clear_memory_cache() -> None:
    with _lock:
        _memory.clear()
        for k in _stats:
            _stats[k] = 0


def _discard(path: Path) -> None:
    """Move a broken entry out of the way (atomically) and delete it."""
    try:
        aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.bad-", dir=path.parent))
        os.replace(path, aside / "a")
        shutil.rmtree(aside, ignore_errors=True)
    except OSError:
        pass


def _load_entry(path: Path, key: str) -> Artifact:
    trust.check_file(path, "splat cache entry")
    art = load(path)  # digests, tables, kernel ABI
    if art.key != key:  # another pattern's (or compiler's) artifact under this name
        raise ArtifactError(f"it holds the artifact of key {art.key[:16]}..., not {key[:16]}...")
    return art


def get_or_build(key: str, build_fn: Callable[[], Artifact], *, disk: bool = True) -> Artifact:
    """Return the artifact for `key`: from memory, else from disk, else `build_fn()` (then stored).

    A disk entry that fails to load in any way (truncated, foreign format, a digest mismatch, a
    table or kernel the runtime's checks refuse, an exception from a corrupt file), or that holds
    another key's artifact, is discarded with a warning and rebuilt, once: a freshly built
    artifact that fails the runtime's checks raises `ArtifactError`. A cache directory that
    others can write raises `splat.runtime.trust.UnsafePathError`. If the cache directory cannot
    be written, the artifact is kept in memory only (with a warning).
    """
    _check_key(key)
    with _lock:
        hit = _memory.get(key)
        if hit is not None:
            _stats["memory_hits"] += 1
            return hit
    path = entry_path(key) if disk else None  # refuses a cache others can write
    art = None
    if path is not None and path.exists():
        try:
            art = _load_entry(path, key)
            with _lock:
                _stats["disk_hits"] += 1
        except Exception as e:  # noqa: BLE001 - a cache entry is disposable, whatever broke it
            art = None
            warnings.warn(f"splat cache: discarding unreadable entry {path}: "
                          f"{type(e).__name__}: {e}; rebuilding it", RuntimeWarning, stacklevel=2)
            _discard(path)
    if art is None:
        art = build_fn()
        if not isinstance(art, Artifact):
            raise TypeError(f"build_fn for key {key} returned {type(art).__name__}, "
                            f"expected splat.runtime.Artifact")
        _check_built(art, key)
        with _lock:
            _stats["builds"] += 1
        if path is not None:
            try:
                trust.make_private_dirs(path.parent)
                save(art, path)
            except FileExistsError:
                # another process stored the same key first: use its entry if it checks out
                try:
                    art = _load_entry(path, key)
                except Exception:  # noqa: BLE001 - keep ours; the next process re-checks it
                    pass
            except OSError as e:
                warnings.warn(f"splat cache: cannot write {path} ({e}); keeping the artifact "
                              f"in memory only", RuntimeWarning, stacklevel=2)
    with _lock:
        return _memory.setdefault(key, art)


def _check_built(art: Artifact, key: str) -> None:
    """A rebuilt artifact gets the checks a loaded one gets; failing them is not retried."""
    from .launcher import check_artifact  # noqa: PLC0415 - the launcher imports this package

    try:
        check_artifact(art)
    except ArtifactError as e:
        raise ArtifactError(f"splat cache: the artifact just built for key {key[:16]}... fails "
                            f"the runtime's checks, so it is neither cached nor run: {e}") from None

"""Artifact caches: one dict per process, and a directory on disk shared by processes.

Disk layout: ``$SPLAT_CACHE_DIR/artifacts/<key>/`` (default ``~/.cache/splat``), one artifact
directory per content key (`splat.runtime.artifact.content_key`). Entries are written with
`artifact.save`, i.e. into a temporary sibling and renamed into place, so concurrent processes
never see partial entries; when two processes build the same key at once, the first rename wins
and the other process loads the winner's entry (both are the same content).
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

from .artifact import Artifact, ArtifactError, load, save

_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")

_lock = threading.Lock()
_memory: dict = {}
_stats = {"memory_hits": 0, "disk_hits": 0, "builds": 0}


def cache_dir() -> Path:
    """Root of the on-disk cache: ``$SPLAT_CACHE_DIR`` or ``~/.cache/splat``."""
    env = os.environ.get("SPLAT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "splat"


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


def get_or_build(key: str, build_fn: Callable[[], Artifact], *, disk: bool = True) -> Artifact:
    """Return the artifact for `key`: from memory, else from disk, else `build_fn()` (then stored).

    A disk entry that fails to load in any way (truncated, foreign format, an exception from a
    corrupt file), or that holds another key's artifact, is discarded and rebuilt. If the cache directory cannot be written, the artifact is
    kept in memory only (with a warning).
    """
    _check_key(key)
    with _lock:
        hit = _memory.get(key)
        if hit is not None:
            _stats["memory_hits"] += 1
            return hit
    path = entry_path(key) if disk else None
    art = None
    if path is not None and path.exists():
        try:
            art = load(path)
            if art.key != key:  # another pattern's (or compiler's) artifact under this name
                raise ArtifactError(f"it holds the artifact of key {art.key[:16]}...")
            with _lock:
                _stats["disk_hits"] += 1
        except Exception as e:  # noqa: BLE001 - a cache entry is disposable, whatever broke it
            art = None
            warnings.warn(f"splat cache: discarding unreadable entry {path}: "
                          f"{type(e).__name__}: {e}", RuntimeWarning)
            _discard(path)
    if art is None:
        art = build_fn()
        if not isinstance(art, Artifact):
            raise TypeError(f"build_fn for key {key} returned {type(art).__name__}, "
                            f"expected splat.runtime.Artifact")
        with _lock:
            _stats["builds"] += 1
        if path is not None:
            try:
                save(art, path)
            except FileExistsError:
                # another process stored the same key first: use its entry
                try:
                    stored = load(path)
                    if stored.key == key:
                        art = stored
                except ArtifactError:
                    pass
            except OSError as e:
                warnings.warn(f"splat cache: cannot write {path} ({e}); keeping the artifact "
                              f"in memory only", RuntimeWarning)
    with _lock:
        return _memory.setdefault(key, art)

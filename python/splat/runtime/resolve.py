"""Find the artifact for a call: given, compiled on demand, or prebuilt in ``$SPLAT_ARTIFACT_DIR``.

Order (`resolve_artifact`):

1. an explicit ``artifact=`` (an `Artifact`, or a path to an artifact directory), or a `pattern`
   that is itself an `Artifact`;
2. when MLIR and `splat.compiler` are importable (and ``SPLAT_NO_COMPILE`` is unset):
   ``splat.compiler.compile(pattern, dtype=..., head_dim=..., target=...)``, cached in memory and
   on disk (`splat.runtime.cache`) under `request_key`;
3. ``$SPLAT_ARTIFACT_DIR/<request_key>/`` (prebuilt, e.g. by scripts/pack_gpu_artifacts.py);
4. otherwise a `SplatInputError` saying how to provide one.

`request_key` = `artifact.artifact_key` over the canonical text of the pattern's analysed layout
(ACSR), Lq, Lk, the dtype, head dim, target and the compiler version (`splat.version`: a hash of
the whole compiler side). Where the compiler side is not installed, the version is the one
recorded in ``$SPLAT_ARTIFACT_DIR/catalog.json`` by whoever packed the artifacts. The layout text comes from
the ACSR object's fields (dataclass fields, numpy arrays hashed), so it is exact; computing it
needs `splat.analyze` (numpy only) but no MLIR. This module never imports MLIR itself: it only
checks whether `mlir` can be found before importing `splat.compiler`, and `_compile` is the one
place the runtime reaches the compiler.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import importlib.util
import os
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ..version import compiler_version
from . import trust
from .trust import UnsafePathError
from .artifact import Artifact, ArtifactError, artifact_key, canonical_json, load
from .validate import SplatInputError, normalize_dtype

DEFAULT_TARGET = "sm_90a"
# The frontends' default: the target of the first visible CUDA device (`device_target`).
AUTO_TARGET = "auto"

_loaded: dict = {}
_lock = threading.Lock()
# Prebuilt lookups already checked in this process: (directory, key) -> (manifest mtime, artifact)
# and directory -> (catalog mtime, compiler version). A hit costs a stat, not the directory's
# trust checks and reads (~0.2-0.3 ms a call): what it serves was checked when read, and is in
# memory; a manifest or catalog changed on disk since (a new mtime) is read and checked again.
_prebuilt_hits: dict = {}
_version_hits: dict = {}


def compiler_available() -> bool:
    """True when MLIR's Python bindings and `splat.compiler` can be imported (not imported here)."""
    if os.environ.get("SPLAT_NO_COMPILE"):
        return False
    try:
        return (importlib.util.find_spec("mlir") is not None
                and importlib.util.find_spec("splat.compiler") is not None)
    except (ImportError, ValueError):
        return False


# ------------------------------------------------------------------------------------ layout text


def _plain(obj: Any, depth: int = 0) -> Any:
    """A JSON-able, exact description of an ACSR-like object (arrays become content hashes)."""
    if depth > 12:
        raise TypeError("layout object nests too deeply to fingerprint")
    if obj is None or isinstance(obj, (bool, int, float, str, np.integer, np.floating, np.bool_)):
        return obj.item() if isinstance(obj, np.generic) else obj
    if isinstance(obj, np.ndarray):
        return obj  # content_key hashes arrays exactly
    if isinstance(obj, (list, tuple)):
        return [_plain(x, depth + 1) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _plain(v, depth + 1) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"__type__": type(obj).__name__,
                **{f.name: _plain(getattr(obj, f.name), depth + 1) for f in dataclasses.fields(obj)
                   if f.compare and not f.name.startswith("_")}}
    to_text = getattr(obj, "to_text", None)
    if callable(to_text):
        return {"__type__": type(obj).__name__, "text": str(to_text())}
    if hasattr(obj, "__dict__"):
        d = {k: v for k, v in vars(obj).items() if not k.startswith("_")}
        return {"__type__": type(obj).__name__, **{k: _plain(v, depth + 1) for k, v in sorted(d.items())}}
    raise TypeError(f"cannot fingerprint a {type(obj).__name__} exactly")


def _analyze(pattern: Any) -> Any:
    import splat  # noqa: PLC0415

    fn = getattr(splat, "analyze", None)
    if fn is None:
        try:
            fn = importlib.import_module("splat.analysis").analyze
        except (ImportError, AttributeError):
            fn = None
    if fn is None:
        raise SplatInputError("pattern", "cannot compute the pattern's content key: splat.analyze "
                                         "is not available; pass artifact= instead")
    return fn(pattern)


def _is_acsr(obj: Any) -> bool:
    return hasattr(obj, "pieces")


def layout_text(pattern: Any) -> str:
    """Canonical text of the pattern's analysed layout (the ACSR part of the content key).

    A `str` is taken as an ACSR text form as is; an ACSR object is fingerprinted directly;
    anything else (a pattern, a mask) goes through `splat.analyze` first."""
    if isinstance(pattern, str):
        return pattern
    acsr = pattern if _is_acsr(pattern) else _analyze(pattern)
    to_text = getattr(acsr, "to_text", None)
    if callable(to_text):  # splat.analysis.acsr.ACSR.to_text is exact (remainder bits included)
        return str(to_text())
    try:
        return canonical_json(acsr=_plain(acsr))
    except TypeError as e:
        raise SplatInputError("pattern", f"cannot compute a content key for {type(acsr).__name__}: {e}") from None


# Layout text per pattern object: a call with the same Pattern (or ACSR) object must not
# re-run the analysis. Masks (mutable arrays) and strings are not memoised.
_layout_texts: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def _memo_layout_text(pattern: Any) -> str:
    if isinstance(pattern, (np.ndarray, str)):
        return layout_text(pattern)
    try:
        text = _layout_texts.get(pattern)
    except TypeError:  # not weak-referenceable or not hashable
        return layout_text(pattern)
    if text is None:
        text = layout_text(pattern)
        with _lock:
            _layout_texts[pattern] = text
    return text


def request_key(pattern: Any, *, Lq: int, Lk: int, dtype: str, head_dim: int,
                target: str = DEFAULT_TARGET, variant: str = "fused",
                version: str | None = None) -> str:
    """The key under which the artifact for (pattern, sizes, dtype, D, target) is cached/prebuilt
    by the compiler ``version`` (default: this installation's, `splat.version`)."""
    version = version or compiler_version()
    if version is None:
        raise SplatInputError("version", "the compiler side is not installed here (no dialect "
                                         "library): pass the version that built the artifacts")
    return artifact_key(acsr=_memo_layout_text(pattern), Lq=Lq, Lk=Lk,
                        dtype=normalize_dtype(dtype), head_dim=head_dim, target=target,
                        compiler_version=version, variant=variant)


CATALOG = "catalog.json"  # written by scripts/pack_gpu_artifacts.py beside the artifacts
_PREBUILT_HINT = ("extract the artifacts into a directory only you can write "
                  "(e.g. `tar xzf artifacts.tar.gz --no-same-owner -C \"$HOME\"`)")
_VERSION_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.+-_")


def packed_version(directory: str | os.PathLike) -> str:
    """The compiler version recorded in a prebuilt artifact directory's catalog (checked)."""
    path = Path(directory) / CATALOG
    try:
        if path.exists():
            trust.check_file(path, "prebuilt artifact catalog", _PREBUILT_HINT)
        version = json.loads(path.read_text()).get("compiler_version")
    except UnsafePathError as e:
        raise SplatInputError("SPLAT_ARTIFACT_DIR", str(e)) from None
    except (OSError, ValueError, AttributeError) as e:
        raise SplatInputError("SPLAT_ARTIFACT_DIR", f"cannot read the compiler version from "
                                                    f"{path}: {e}") from None
    if not (isinstance(version, str) and 0 < len(version) <= 64
            and set(version) <= _VERSION_CHARS):
        raise SplatInputError("SPLAT_ARTIFACT_DIR", f"{path} records no valid compiler_version "
                                                    f"(got {version!r:.80})")
    return version


def _mtime(path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _prebuilt_hit(prebuilt: str, key: str) -> Artifact | None:
    """The artifact this process already read and checked from ``prebuilt/key``, if its
    manifest is unchanged on disk."""
    hit = _prebuilt_hits.get((prebuilt, key))
    if hit is None or hit[0] != _mtime(Path(prebuilt) / key / "manifest.json"):
        return None
    return hit[1]


def _version_seen(prebuilt: str) -> str | None:
    """The catalog's compiler version as this process last read it, if the catalog's mtime is
    unchanged since (else None: it must be read, after the directory's checks)."""
    hit = _version_hits.get(prebuilt)
    if hit is None or hit[0] != _mtime(Path(prebuilt) / CATALOG):
        return None
    return hit[1]


def _packed_version_memo(prebuilt: str) -> str:
    """`packed_version`, remembered with the catalog's mtime for `_version_seen`."""
    stamp = _mtime(Path(prebuilt) / CATALOG)
    version = packed_version(prebuilt)
    if stamp is not None:
        with _lock:
            _version_hits[prebuilt] = (stamp, version)
    return version


# ------------------------------------------------------------------------------------ resolution


def load_cached(path: str | os.PathLike) -> Artifact:
    """`load`, memoised per process by absolute path and manifest mtime."""
    p = Path(path).resolve()
    try:
        stamp = (p / "manifest.json").stat().st_mtime_ns
    except OSError:
        stamp = None
    with _lock:
        hit = _loaded.get(p)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    art = load(p)
    with _lock:
        _loaded[p] = (stamp, art)
    return art


def _compile(pattern: Any, dtype: str, head_dim: int, target: str, variant: str) -> Artifact:
    compiler = importlib.import_module("splat.compiler")
    kwargs = dict(dtype=dtype, head_dim=head_dim, target=target)
    if variant != "fused":
        kwargs["variant"] = variant
    art = compiler.compile(pattern, **kwargs)
    if not isinstance(art, Artifact):
        raise TypeError(f"splat.compiler.compile returned {type(art).__name__}, expected "
                        f"splat.runtime.Artifact")
    return art


_device_targets: dict = {}


def device_target(ordinal: int = 0) -> str:
    """The target for CUDA device ``ordinal`` (the first visible one by default): the newest
    SPLAT builds for that runs there (sm_90a on an H100, sm_80 on an A100, sm_89 on an L4).
    Where there is no CUDA driver or device (compiling ahead of time on a CPU machine):
    DEFAULT_TARGET. A device older than sm_80 is a SplatInputError naming ``target``."""
    if ordinal in _device_targets:
        return _device_targets[ordinal]
    from .. import abi  # noqa: PLC0415
    from . import driver as drv  # noqa: PLC0415

    try:
        drv.ensure_init()
        cc = drv.compute_capability(ordinal)
    except (ImportError, OSError, drv.SplatCudaError):
        return DEFAULT_TARGET  # not cached: a driver may appear (tests stub it)
    target = abi.target_for_capability(cc)
    if target is None:
        raise SplatInputError("target", f"CUDA device {ordinal} has compute capability "
                                        f"{cc[0]}.{cc[1]}; SPLAT's kernels need 8.0 or newer "
                                        f"(targets {', '.join(abi.MAX_SHARED_BYTES)})")
    _device_targets[ordinal] = target
    return target


def resolve_artifact(pattern: Any, *, dtype: str, head_dim: int, Lq: int, Lk: int,
                     target: str = DEFAULT_TARGET, artifact: Any = None,
                     variant: str = "fused") -> Artifact:
    """Return the artifact for this call (see the module docstring for the order);
    ``target`` AUTO_TARGET is `device_target`'s."""
    if target == AUTO_TARGET:
        target = device_target()
    if artifact is not None:
        if isinstance(artifact, Artifact):
            return artifact
        if isinstance(artifact, (str, os.PathLike)):
            try:
                return load_cached(artifact)
            except ArtifactError as e:
                raise SplatInputError("artifact", str(e)) from None
        raise SplatInputError("artifact", f"expected a splat.runtime.Artifact or a directory path, "
                                          f"got {type(artifact).__name__}")
    if isinstance(pattern, Artifact):
        return pattern
    if isinstance(pattern, os.PathLike):
        try:
            return load_cached(pattern)
        except ArtifactError as e:
            raise SplatInputError("pattern", str(e)) from None
    if pattern is None:
        raise SplatInputError("pattern", "required (a splat pattern, an ACSR, or pass artifact=)")
    dtype = normalize_dtype(dtype)
    if compiler_available():
        from . import cache  # noqa: PLC0415

        key = request_key(pattern, Lq=Lq, Lk=Lk, dtype=dtype, head_dim=head_dim, target=target,
                          variant=variant)
        try:
            return cache.get_or_build(key, lambda: _compile(pattern, dtype, head_dim, target,
                                                            variant))
        except UnsafePathError as e:  # a cache others can write: refused, not worked around
            raise SplatInputError("SPLAT_CACHE_DIR", str(e)) from None
    prebuilt = os.environ.get("SPLAT_ARTIFACT_DIR")
    if prebuilt:
        # Without the compiler side here, the artifacts' own compiler names the key.
        version = compiler_version() or _version_seen(prebuilt)
        if version is not None:  # an artifact read and checked before: no disk reads
            key = request_key(pattern, Lq=Lq, Lk=Lk, dtype=dtype, head_dim=head_dim,
                              target=target, variant=variant, version=version)
            hit = _prebuilt_hit(prebuilt, key)
            if hit is not None:
                return hit
        try:  # refused before anything in it is read
            trust.check_tree(prebuilt, "SPLAT_ARTIFACT_DIR", _PREBUILT_HINT)
        except UnsafePathError as e:
            raise SplatInputError("SPLAT_ARTIFACT_DIR", str(e)) from None
        version = compiler_version() or _packed_version_memo(prebuilt)
        key = request_key(pattern, Lq=Lq, Lk=Lk, dtype=dtype, head_dim=head_dim, target=target,
                          variant=variant, version=version)
        path = Path(prebuilt) / key
        if not (path / "manifest.json").is_file():
            raise SplatInputError(
                "pattern", f"no prebuilt artifact for this pattern with Lq={Lq}, Lk={Lk}, dtype="
                           f"{dtype}, head_dim={head_dim}, target={target} (looked for {path}); "
                           f"build it where MLIR is installed (scripts/pack_gpu_artifacts.py)")
        try:
            trust.check_file(path, "prebuilt artifact", _PREBUILT_HINT)
            art = load_cached(path)
        except UnsafePathError as e:
            raise SplatInputError("SPLAT_ARTIFACT_DIR", str(e)) from None
        except ArtifactError as e:
            # a prebuilt artifact cannot be rebuilt here: refuse it, say how to replace it
            raise SplatInputError("pattern", f"prebuilt artifact {path} is unusable: {e}; it "
                                             f"cannot be rebuilt here (no compiler): repack it "
                                             f"where MLIR is installed "
                                             f"(scripts/pack_gpu_artifacts.py)") from None
        if art.key != key:  # never serve another pattern's artifact placed under this key
            raise SplatInputError("pattern", f"prebuilt artifact {path} holds key {art.key}, not "
                                             f"{key}: it was built for another request")
        stamp = _mtime(path / "manifest.json")
        if stamp is not None:
            with _lock:
                _prebuilt_hits[(prebuilt, key)] = (stamp, art)
        return art
    raise SplatInputError(
        "pattern", "cannot get a kernel: MLIR is not installed here, so nothing can be compiled. "
                   "Pass artifact=splat.runtime.load(path), or set SPLAT_ARTIFACT_DIR to a directory "
                   "of prebuilt artifacts (scripts/pack_gpu_artifacts.py)")

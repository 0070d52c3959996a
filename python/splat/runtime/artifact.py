"""The compiled artifact (docs/design.md §4): manifest + PTX texts + int32 schedule tables.

This module imports no MLIR and no CUDA: an artifact is plain data that the compiler writes on a
machine with MLIR and the runtime loads on a machine with a GPU.

On disk::

    <dir>/manifest.json   {"format": "splat-artifact/1", "key", "kernels": [...], "tables": {...}, ...}
    <dir>/<kernel>.ptx    one file per kernel ("ptx_file" of the kernel entry)
    <dir>/<table>.npy     int32 schedule tables ("file" of the table entry)

`save` is atomic: everything is written into a temporary sibling directory which is then renamed
into place with `os.replace`, so a reader never sees a half-written artifact and a failed save
leaves nothing behind.

The manifest's ``content_sha256`` maps every file of the artifact (``manifest.json`` itself
included) to a sha256 of its *content*: the manifest as canonical JSON without the
``content_sha256`` field, each PTX text as UTF-8, each table as (dtype, shape, little-endian
int32 bytes). `save` writes it, `load` recomputes it and refuses any file whose content changed,
naming that file. It detects corruption and edits that did not recompute it; who may write the
directory at all is `splat.runtime.trust`'s business (docs/runtime.md, "Trust model").
"""

from __future__ import annotations

import copy
import dataclasses
import errno
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import abi

FORMAT = "splat-artifact/1"
MANIFEST = "manifest.json"
KEY_DOMAIN = "splat-content-key/1"
HASH_FIELD = "content_sha256"  # {file name: sha256 of its content}; excluded from its own hash
_HASH_DOMAIN = b"splat-artifact-content/1\0"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

_PARAM_KINDS = ("memref", "f32", "i32")
# A kernel's grid: "row_tiles" (row tile of its tile table, query head, batch), "col_tiles" (column
# tile, kv head, batch: the backward's dK/dV), "rows" (the decomposed path's) or fixed dims.
GRID_KINDS = ("row_tiles", "col_tiles", "rows")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class ArtifactError(ValueError):
    """An artifact directory or manifest is missing, malformed or inconsistent."""


# --------------------------------------------------------------------------------------------
# content keys
# --------------------------------------------------------------------------------------------


def _canonical(value: Any, where: str) -> Any:
    """Turn `value` into plain JSON data, refusing anything whose text form is not stable."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if not math.isfinite(f):
            raise ValueError(f"content_key: {where} is not finite ({f!r})")
        return f
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"content_key: {where} has a non-string key {k!r}")
            out[k] = _canonical(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        return {
            "ndarray": str(a.dtype),
            "shape": list(a.shape),
            "sha256": hashlib.sha256(a.tobytes()).hexdigest(),
        }
    if isinstance(value, bytes):
        return {"bytes_sha256": hashlib.sha256(value).hexdigest()}
    raise TypeError(
        f"content_key: {where} has type {type(value).__name__}; pass str, int, float, bool, "
        f"None, list, dict or numpy arrays (a stable text form), not arbitrary objects"
    )


def canonical_json(**parts: Any) -> str:
    """The canonical JSON text that `content_key` hashes (sorted keys, no spaces)."""
    data = {"domain": KEY_DOMAIN, "parts": _canonical(parts, "parts")}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def content_key(**parts: Any) -> str:
    """sha256 (hex) of a canonical JSON of `parts`.

    Typical parts: ``acsr`` (the ACSR text form), ``shapes``, ``dtype``, ``head_dim``,
    ``target``, ``compiler_version``. The key is independent of keyword order and of
    tuple-vs-list / numpy-vs-Python scalar spellings, and changes when any value changes.
    """
    return hashlib.sha256(canonical_json(**parts).encode("utf-8")).hexdigest()


def artifact_key(*, acsr: str, Lq: int, Lk: int, dtype: str, head_dim: int, target: str,
                 compiler_version: str, variant: str = "fused",
                 options: dict | None = None) -> str:
    """The content key the runtime uses to find a prebuilt artifact for a pattern.

    `acsr` is the canonical text of the analysed layout (see `splat.runtime.resolve`),
    `dtype` a normalised dtype name ("bf16" / "f16"). `options`: the compile options that
    change the artifact and differ from their defaults (``block_n``, ``plan``), so that two
    compiles of one pattern with different options never share a key (the runtime caches
    launchers by key); with defaults only, the key is what it always was."""
    parts = dict(acsr=acsr, shapes={"Lq": int(Lq), "Lk": int(Lk)}, dtype=dtype,
                 head_dim=int(head_dim), target=target, compiler_version=compiler_version)
    if variant != "fused":
        parts["variant"] = variant
    if options:
        parts["options"] = dict(options)
    return content_key(**parts)


# --------------------------------------------------------------------------------------------
# content hash
# --------------------------------------------------------------------------------------------


def _digest(kind: bytes, *chunks: bytes) -> str:
    h = hashlib.sha256(_HASH_DOMAIN + kind + b"\0")
    for c in chunks:  # length-prefixed: no two different sequences share a byte stream
        h.update(len(c).to_bytes(8, "little"))
        h.update(c)
    return h.hexdigest()


def manifest_digest(manifest: Mapping) -> str:
    """sha256 of the manifest as canonical JSON, without its `HASH_FIELD`."""
    body = {k: v for k, v in manifest.items() if k != HASH_FIELD}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)
    return _digest(b"manifest", text.encode("utf-8"))


def ptx_digest(text: str) -> str:
    return _digest(b"ptx", text.encode("utf-8"))


def table_digest(arr: np.ndarray) -> str:
    a = np.ascontiguousarray(arr, dtype="<i4")
    return _digest(b"table", b"int32", json.dumps(list(a.shape)).encode(), a.tobytes())


def content_digests(manifest: Mapping, ptx: Mapping, tables: Mapping) -> dict:
    """{file name: sha256} of every file an artifact with this manifest consists of: the
    manifest, the PTX files its kernels name and its tables (what `load` reads)."""
    out = {MANIFEST: manifest_digest(manifest)}
    for k in manifest["kernels"]:
        out[k["ptx_file"]] = ptx_digest(ptx[k["ptx_file"]])
    for name, meta in manifest["tables"].items():
        out[meta["file"]] = table_digest(tables[name])
    return out


# --------------------------------------------------------------------------------------------
# the artifact
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class Artifact:
    """manifest (dict, see docs/design.md §4) + PTX texts by file name + int32 tables by name."""

    manifest: dict
    ptx: dict  # ptx_file name -> PTX text
    tables: dict  # table name -> np.ndarray (int32)
    path: Path | None = None  # where it was loaded from, if anywhere
    _identity: str | None = dataclasses.field(default=None, init=False, repr=False)

    def copy(self) -> "Artifact":
        """An independent copy, not tied to a directory: the manifest deep-copied and every
        table's array copied, so a caller may edit it (the runtime's checks judge it afresh)."""
        return Artifact(manifest=copy.deepcopy(self.manifest), ptx=dict(self.ptx),
                        tables={k: v.copy() for k, v in self.tables.items()})

    @property
    def identity(self) -> str:
        """What the runtime caches launchers and op handles by: a digest of the key and of
        every file's content (`content_digests`). The key names a *request* (pattern, sizes,
        options, compiler version), so two artifacts of one key may differ (a build with the
        compiler's switches set otherwise, an edited copy): by the key alone the second would
        run the first one's kernels. Computed once per object; edit a `copy`, never an artifact
        already launched."""
        if self._identity is None:
            try:
                files = content_digests(self.manifest, self.ptx, self.tables)
            except (KeyError, TypeError, AttributeError, ValueError):
                # malformed: the runtime's checks refuse it by name; never share its launcher
                return f"id-{id(self)}"
            self._know_content(files)
        return self._identity

    def _know_content(self, files: dict) -> None:
        """Record `identity` from ``files``, this artifact's `content_digests` (`load` has
        just computed them to check the recorded ones)."""
        self._identity = content_key(key=self.key, files=files)

    # convenient views of the manifest ------------------------------------------------------
    @property
    def key(self) -> str:
        return self.manifest.get("key", "")

    @property
    def dtype(self) -> str:
        return self.manifest.get("dtype", "")

    @property
    def head_dim(self) -> int:
        return int(self.manifest["head_dim"])

    @property
    def target(self) -> str:
        return self.manifest.get("target", "")

    @property
    def kernels(self) -> list:
        return self.manifest["kernels"]

    @property
    def shapes(self) -> dict | None:
        return self.manifest.get("shapes")

    def __repr__(self) -> str:  # the default dataclass repr would print whole PTX files
        where = f", path={str(self.path)!r}" if self.path else ""
        return (f"Artifact(key={self.key[:16]!r}, dtype={self.dtype!r}, head_dim="
                f"{self.manifest.get('head_dim')!r}, kernels={[k.get('name') for k in self.kernels]!r}, "
                f"tables={ {n: tuple(a.shape) for n, a in self.tables.items()} !r}{where})")

    def validate(self) -> "Artifact":
        """Check the manifest against the PTX texts and tables held in memory."""
        validate_manifest(self.manifest, where="artifact")
        for k in self.kernels:
            if k["ptx_file"] not in self.ptx:
                raise ArtifactError(f"artifact: kernel {k['name']!r} refers to PTX file "
                                    f"{k['ptx_file']!r}, which the artifact does not hold")
        for name in self.manifest["tables"]:
            if name not in self.tables:
                raise ArtifactError(f"artifact: table {name!r} is listed in the manifest but "
                                    f"its array is missing")
        for name, arr in self.tables.items():
            arr = np.asarray(arr)
            if arr.dtype != np.int32:
                raise ArtifactError(f"artifact: table {name!r} has dtype {arr.dtype}, "
                                    f"expected int32")
            meta = self.manifest["tables"].get(name)
            if meta is None:
                raise ArtifactError(f"artifact: table {name!r} is not listed in the manifest")
            if "shape" in meta and list(meta["shape"]) != list(arr.shape):
                raise ArtifactError(f"artifact: table {name!r} has shape {list(arr.shape)}, "
                                    f"the manifest says {list(meta['shape'])}")
        return self


def _require(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise ArtifactError(f"{where}: {msg}")


def _check_name(name: Any, where: str, what: str) -> None:
    _require(isinstance(name, str) and bool(_SAFE_NAME.match(name)) and ".." not in name,
             where, f"{what} {name!r} is not a plain file name (letters, digits, '_', '-', '.')")


def validate_manifest(m: Any, where: str = "manifest") -> None:
    """Structural checks of a manifest dict; raises ArtifactError naming the bad field."""
    _require(isinstance(m, dict), where, "manifest is not a JSON object")
    fmt = m.get("format")
    _require(fmt == FORMAT, where,
             f"unsupported artifact format {fmt!r} (this runtime reads {FORMAT!r}); "
             f"rebuild the artifact with a matching compiler")
    for field in ("key", "dtype", "head_dim", "kernels", "tables"):
        _require(field in m, where, f"missing field {field!r}")
    _require(isinstance(m["key"], str) and m["key"] != "", where, "'key' must be a non-empty string")
    _require(isinstance(m["head_dim"], int) and m["head_dim"] > 0, where,
             f"'head_dim' must be a positive integer, got {m['head_dim']!r}")
    _require(isinstance(m["dtype"], str), where, f"'dtype' must be a string, got {m['dtype']!r}")
    shapes = m.get("shapes")
    _require(shapes is None or isinstance(shapes, dict), where, "'shapes' must be an object or null")
    for f, v in (shapes or {}).items():
        _require(v is None or (isinstance(v, int) and not isinstance(v, bool)
                               and 0 <= v <= 2**31 - 1),
                 where, f"'shapes.{f}' must be null or an int in [0, 2**31), got {v!r}")
    scale = m.get("scale")
    _require(scale is None or (isinstance(scale, (int, float)) and not isinstance(scale, bool)
                               and math.isfinite(scale) and scale > 0), where,
             f"'scale' must be null or a positive finite number, got {scale!r}")
    for field in ("target", "variant", "compiler_version", "acsr"):
        _require(m.get(field) is None or isinstance(m[field], str), where,
                 f"{field!r} must be a string, got {m.get(field)!r}")
    digests = m.get(HASH_FIELD)
    _require(digests is None or (isinstance(digests, dict) and all(
        isinstance(k, str) and isinstance(v, str) and _HEX64.match(v) for k, v in digests.items())),
        where, f"{HASH_FIELD!r} must map file names to sha256 hex digests")
    tables = m["tables"]
    _require(isinstance(tables, dict), where, "'tables' must be an object")
    files = {MANIFEST}
    for name, meta in tables.items():
        tw = f"{where}: table {name!r}"
        _require(isinstance(meta, dict), tw, "entry must be an object")
        _check_name(meta.get("file"), tw, "file")
        _require(meta["file"] not in files, tw, f"file {meta['file']!r} is used twice")
        files.add(meta["file"])
        _require(meta.get("dtype", "int32") == "int32", tw,
                 f"dtype must be int32, got {meta.get('dtype')!r}")
        if "shape" in meta:
            _require(isinstance(meta["shape"], list)
                     and all(isinstance(s, int) and s >= 0 for s in meta["shape"]),
                     tw, f"shape must be a list of non-negative ints, got {meta['shape']!r}")
    _require(isinstance(m.get("scratch", {}), dict), where, "'scratch' must be an object")
    for name, spec in m.get("scratch", {}).items():
        sw = f"{where}: scratch {name!r}"
        _require(isinstance(spec, dict) and spec.get("dtype") == "f32", sw, "dtype must be f32")
        shape = spec.get("shape")
        _require(isinstance(shape, list) and all(d in ("B", "H", "Lq", "Lk") or
                                                 (isinstance(d, int) and d >= 0) for d in shape),
                 sw, f"shape must list 'B', 'H', 'Lq', 'Lk' or non-negative ints, got {shape!r}")
    kernels = m["kernels"]
    _require(isinstance(kernels, list) and len(kernels) > 0, where,
             "'kernels' must be a non-empty list")
    for i, k in enumerate(kernels):
        kw = f"{where}: kernels[{i}]"
        _require(isinstance(k, dict), kw, "entry must be an object")
        for field in ("name", "ptx_file", "block", "shared_bytes", "params", "grid"):
            _require(field in k, kw, f"missing field {field!r}")
        _require(isinstance(k["name"], str) and k["name"] != "", kw,
                 "'name' must be a non-empty string")
        kw = f"{where}: kernel {k['name']!r}"
        _check_name(k["ptx_file"], kw, "ptx_file")
        _require(k["ptx_file"] not in files, kw, f"ptx_file {k['ptx_file']!r} is also the "
                                                 f"manifest or a table file")
        blk = k["block"]
        _require(isinstance(blk, list) and len(blk) == 3
                 and all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in blk),
                 kw,
                 f"'block' must be three positive ints, got {blk!r}")
        _require(isinstance(k["shared_bytes"], int) and not isinstance(k["shared_bytes"], bool)
                 and k["shared_bytes"] >= 0, kw,
                 f"'shared_bytes' must be a non-negative int, got {k['shared_bytes']!r}")
        grid = k["grid"]
        _require(grid in GRID_KINDS or (isinstance(grid, list) and len(grid) == 3
                                        and all(isinstance(g, int) and g >= 1 for g in grid)),
                 kw, f"'grid' must be one of {', '.join(map(repr, GRID_KINDS))} or three "
                     f"positive ints, got {grid!r}")
        if grid in ("row_tiles", "col_tiles"):  # one CTA per row of the kernel's tile table
            tt = k.get("tile_table", "row_tiles")
            _require(isinstance(tt, str) and tt in tables, kw,
                     f"grid is {grid!r} but there is no {tt} table")
        if grid == "rows":  # (ceil(Lq / rows_per_cta), H, B)
            _require(isinstance(k.get("rows_per_cta"), int)
                     and not isinstance(k["rows_per_cta"], bool) and k["rows_per_cta"] >= 1, kw,
                     f"grid \"rows\" needs a positive int 'rows_per_cta', got {k.get('rows_per_cta')!r}")
        for name in k.get("scratch", []):
            _require(isinstance(name, str) and name in m.get("scratch", {}), kw,
                     f"uses scratch buffer {name!r}, which the manifest does not describe")
        for field in ("block_m", "block_n", "num_ptx_params"):
            _require(field not in k
                     or (isinstance(k[field], int) and not isinstance(k[field], bool)),
                     kw, f"{field!r} must be an int, got {k.get(field)!r}")
        _require(k.get("mma", "mma_sync") in abi.MMA_KINDS, kw,
                 f"'mma' must be one of {abi.MMA_KINDS}, got {k.get('mma')!r}")
        _require(isinstance(k.get("tables", []), list) and isinstance(k.get("scratch", []), list),
                 kw, "'tables' and 'scratch' must be lists")
        params = k["params"]
        _require(isinstance(params, list), kw, "'params' must be a list")
        for j, p in enumerate(params):
            pw = f"{kw} param {j}"
            _require(isinstance(p, dict) and isinstance(p.get("name"), str), pw,
                     "must be an object with a 'name'")
            _require(p.get("kind") in _PARAM_KINDS, pw,
                     f"kind must be one of {_PARAM_KINDS}, got {p.get('kind')!r}")
            if p["kind"] == "memref":
                _require(isinstance(p.get("rank"), int) and not isinstance(p["rank"], bool)
                         and 0 <= p["rank"] <= 8, pw,
                         f"memref needs a non-negative int 'rank', got {p.get('rank')!r}")
        for t in k.get("tables", []):
            _require(isinstance(t, str) and t in tables, kw,
                     f"uses table {t!r}, which the manifest does not list")


# --------------------------------------------------------------------------------------------
# save / load
# --------------------------------------------------------------------------------------------


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_into(artifact: Artifact, tmp: Path) -> None:
    manifest = json.loads(json.dumps(artifact.manifest))  # deep copy, and proves it is JSON
    tables_meta = manifest.setdefault("tables", {})
    for name, arr in artifact.tables.items():
        arr = np.ascontiguousarray(arr)
        if arr.dtype != np.int32:
            raise ArtifactError(f"save: table {name!r} has dtype {arr.dtype}, expected int32")
        meta = tables_meta.setdefault(name, {})
        meta.setdefault("file", f"{name}.npy")
        meta["dtype"] = "int32"
        meta["shape"] = list(arr.shape)
        _check_name(meta["file"], f"save: table {name!r}", "file")
        with open(tmp / meta["file"], "wb") as f:
            np.save(f, arr, allow_pickle=False)
    for fname, text in artifact.ptx.items():
        _check_name(fname, "save", "PTX file")
        with open(tmp / fname, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    validate_manifest(manifest, where="save")
    for k in manifest["kernels"]:
        if k["ptx_file"] not in artifact.ptx:
            raise ArtifactError(f"save: kernel {k['name']!r} refers to PTX file "
                                f"{k['ptx_file']!r}, which the artifact does not hold")
    for name in manifest["tables"]:
        if name not in artifact.tables:
            raise ArtifactError(f"save: table {name!r} is listed in the manifest but its array "
                                f"is missing")
    manifest.pop(HASH_FIELD, None)  # a loaded artifact's old digests say nothing about this one
    manifest[HASH_FIELD] = content_digests(manifest, artifact.ptx, artifact.tables)
    with open(tmp / MANIFEST, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=True, allow_nan=False)
        f.write("\n")
    for p in tmp.iterdir():
        # only the owner may change what the GPU will run, whatever the umask (trust model)
        os.chmod(p, 0o644)
        _fsync_file(p)


def save(artifact: Artifact, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write `artifact` to `directory` atomically and return the path.

    The files are written into a fresh temporary directory beside `directory`, which is then
    renamed into place (`os.replace`). If anything fails, the temporary directory is removed and
    `directory` is untouched. If `directory` exists: `FileExistsError` unless `overwrite`; with
    `overwrite` the old directory is first renamed aside and removed after the new one is in
    place.
    """
    dest = Path(directory)
    parent = dest.parent
    from .trust import make_private_dirs  # noqa: PLC0415 - trust imports this module

    make_private_dirs(parent)
    if dest.exists() and not overwrite:
        raise FileExistsError(f"save: {dest} exists (pass overwrite=True to replace it)")
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=parent))
    old = None
    try:
        _write_into(artifact, tmp)
        if dest.exists():
            if not overwrite:  # appeared while we were writing
                raise FileExistsError(f"save: {dest} exists (pass overwrite=True to replace it)")
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=parent))
            os.replace(dest, old / "a")
        try:
            os.replace(tmp, dest)
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST):  # a concurrent writer won the race
                raise FileExistsError(f"save: {dest} exists (written concurrently)") from None
            raise
        tmp = None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    try:  # make the rename durable
        fd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return dest


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (no NaN or Infinity in a manifest)")


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ArtifactError(f"load: {what} {path} is not UTF-8 text ({e.reason} at byte "
                            f"{e.start})") from None


def load(directory: str | os.PathLike, *, check_permissions: bool = True) -> Artifact:
    """Load and check an artifact directory written by `save` (or by the compiler).

    Raises `ArtifactError` (a `ValueError`) for a missing directory or manifest, an unsupported
    format version, a malformed manifest, a referenced file that is missing or does not match
    the manifest, a file whose content differs from the digest `save` recorded
    (`HASH_FIELD`, naming the file), and any table or kernel the runtime's own checks refuse
    (`splat.runtime.integrity`: bounds, partition, kernel ABI). With `check_permissions`
    (the default), a directory on the path or a file that others can write raises
    `splat.runtime.trust.UnsafePathError` (an `ArtifactError`) first.
    """
    d = Path(directory)
    if not d.is_dir():
        raise ArtifactError(f"load: {d} is not a directory (expected a SPLAT artifact directory "
                            f"holding {MANIFEST})")
    try:
        return _load(d, check_permissions)
    except ArtifactError:
        raise
    except (TypeError, KeyError, IndexError, AttributeError, ValueError, OverflowError,
            RecursionError, MemoryError) as e:
        # a manifest that passed the structural checks in a shape they did not foresee
        raise ArtifactError(f"load: {d} is not a well-formed artifact ({type(e).__name__}: "
                            f"{e})") from None


def _load(d: Path, check_permissions: bool) -> Artifact:
    from . import trust  # noqa: PLC0415 - trust and integrity import this module

    if check_permissions:
        trust.check_tree(d, "artifact directory")
    mpath = d / MANIFEST
    if not mpath.is_file():
        raise ArtifactError(f"load: {d} holds no {MANIFEST}; not a SPLAT artifact")
    if check_permissions:
        trust.check_file(mpath, "artifact manifest")
    try:
        manifest = json.loads(_read_text(mpath, "manifest"), parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as e:
        raise ArtifactError(f"load: {mpath} is not valid JSON: {e}") from None
    validate_manifest(manifest, where=str(mpath))
    ptx: dict = {}
    for k in manifest["kernels"]:
        fname = k["ptx_file"]
        p = d / fname
        if not p.is_file():
            raise ArtifactError(f"load: kernel {k['name']!r} refers to {fname!r}, which is "
                                f"missing from {d}")
        if fname not in ptx:
            if check_permissions:
                trust.check_file(p, "artifact PTX file")
            ptx[fname] = _read_text(p, "PTX file")
    tables: dict = {}
    for name, meta in manifest["tables"].items():
        p = d / meta["file"]
        if not p.is_file():
            raise ArtifactError(f"load: table {name!r} refers to {meta['file']!r}, which is "
                                f"missing from {d}")
        if check_permissions:
            trust.check_file(p, "artifact table")
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as e:  # truncated or foreign file
            raise ArtifactError(f"load: table {name!r} ({p}) is not a readable .npy file: {e}") from None
        if not isinstance(arr, np.ndarray) or arr.dtype != np.int32:
            raise ArtifactError(f"load: table {name!r} ({p}) has dtype "
                                f"{getattr(arr, 'dtype', type(arr).__name__)}, expected int32")
        if "shape" in meta and list(arr.shape) != list(meta["shape"]):
            raise ArtifactError(f"load: table {name!r} ({p}) has shape {list(arr.shape)}, the "
                                f"manifest says {meta['shape']}")
        tables[name] = arr
    recorded = manifest.get(HASH_FIELD)
    if recorded is None:
        raise ArtifactError(f"load: {mpath} records no content digests ({HASH_FIELD!r}): it was "
                            f"written by an older runtime or edited by hand; rebuild it (or "
                            f"save it again with splat.runtime.save)")
    actual = content_digests(manifest, ptx, tables)
    if set(recorded) != set(actual):
        raise ArtifactError(f"load: {mpath}: {HASH_FIELD!r} lists files {sorted(recorded)}, the "
                            f"artifact consists of {sorted(actual)}")
    for fname in [MANIFEST] + sorted(set(actual) - {MANIFEST}):
        if recorded[fname] != actual[fname]:
            raise ArtifactError(f"load: {d / fname}: content hash mismatch (recorded "
                                f"{recorded[fname][:16]}..., the file hashes to "
                                f"{actual[fname][:16]}...): it was modified after the artifact "
                                f"was saved")
    art = Artifact(manifest=manifest, ptx=ptx, tables=tables, path=d)
    art._know_content(actual)
    from .launcher import check_artifact  # noqa: PLC0415 - the launcher imports this module

    check_artifact(art)
    return art

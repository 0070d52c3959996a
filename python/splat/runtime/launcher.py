"""Launch an artifact's kernels (docs/design.md §3) on raw device pointers.

`Launcher(artifact, device)` JIT-loads the artifact's PTX once into the device's primary context
(the context PyTorch and JAX use), uploads its int32 schedule tables to device memory once, and
`forward(...)` launches the fused kernel on grid ``(n_row_tiles, H, B)`` on the caller's stream
(`forward_with_scratch`: the same into scratch buffers the caller allocated, for CUDA graphs).
`get_launcher` caches one Launcher per (context, artifact content: `Artifact.identity`) for the process.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from .. import abi
from . import driver as drv
from . import integrity
from .artifact import Artifact, ArtifactError
from .driver import MemRef, SplatCudaError

STATIC_SMEM_LIMIT = 48 * 1024  # above this, dynamic shared memory needs an opt-in attribute

_SCALARS = ("B", "H", "Hkv", "Lq", "Lk", "D")


class Shapes(NamedTuple):
    """Problem sizes: q/o are B×H×Lq×D, k/v are B×Hkv×Lk×D, lse is B×H×Lq."""

    B: int
    H: int
    Hkv: int
    Lq: int
    Lk: int
    D: int

    @classmethod
    def of(cls, value: Any) -> "Shapes":
        if isinstance(value, Shapes):
            return value
        if isinstance(value, Mapping):
            return cls(*(int(value[f]) for f in cls._fields))
        return cls(*(int(x) for x in value))


def tensor_shapes(s: Shapes) -> dict:
    """The shapes of a call's tensors (forward and backward), by kernel parameter name
    (contiguous, row-major)."""
    rows, keys, per_row = (s.B, s.H, s.Lq, s.D), (s.B, s.Hkv, s.Lk, s.D), (s.B, s.H, s.Lq)
    return {"q": rows, "k": keys, "v": keys, "o": rows, "lse": per_row,
            "do": rows, "dlse": per_row, "delta": per_row, "dq": rows, "dk": keys, "dv": keys}


def strided_inputs_unfit(strides: Sequence[Sequence[int]], ptrs: Sequence[int]) -> str | None:
    """Why the kernels cannot read q, k, v (in `abi.STRIDED_INPUTS` order) through these
    element strides and device pointers, or None when they can: four strides each, the last 1
    and the others non-negative multiples of `abi.INPUT_STRIDE_ALIGN`, the pointer
    `abi.INPUT_PTR_ALIGN`-byte aligned (rows stay 16-byte aligned for the async copies)."""
    for name, st, ptr in zip(abi.STRIDED_INPUTS, strides, ptrs):
        if len(st) != 4 or st[3] != 1 or any(x < 0 or x % abi.INPUT_STRIDE_ALIGN for x in st[:3]):
            return (f"{name} has strides {tuple(st)}; the kernels need 4 strides, the last 1 and "
                    f"the others non-negative multiples of {abi.INPUT_STRIDE_ALIGN}")
        if ptr % abi.INPUT_PTR_ALIGN:
            return f"{name}'s pointer {ptr:#x} is not {abi.INPUT_PTR_ALIGN}-byte aligned"
    return None


class _Plan(NamedTuple):
    """A launch plan (`Launcher._launch_plan`): per kernel, its packed parameters and the slots
    a call patches; and q, k, v's contiguous strides for the plan's problem size."""

    kernels: list
    dense_strides: tuple


def _target_hint(cc: tuple) -> str:
    """Which target to compile for instead: the newest one the device runs."""
    best = abi.target_for_capability(cc)
    if best is None:
        return f" (no target SPLAT builds for runs there: {', '.join(abi.MAX_SHARED_BYTES)})"
    return f"; compile with target={best!r}"


class Plan(NamedTuple):
    """What the launcher derives from an artifact without a GPU."""

    n_tiles: int
    tile_Lq: int | None  # query rows the row tiles cover (None without a row_tiles table)
    min_Lk: int  # smallest Lk the segments are valid for
    tile_Lk: int | None = None  # keys the column tiles cover (backward artifacts)


def check_artifact(artifact: Artifact) -> Plan:
    """All launch checks that need no GPU (raises ArtifactError; memoised on the artifact):

    - the manifest's structure and its tables' dtypes and shapes (`Artifact.validate`);
    - each PTX entry's parameter list against the manifest (3 + 2R per memref);
    - the kernels against the ABI: names, launch order, parameter names and order, tables,
      block, grid, shared memory (`integrity.check_kernels`);
    - every table's bounds and consistency, independently of the compiler: row tiles partition
      [0, Lq), segments and mask tiles inside their tables and int32, ... (`integrity.check_tables`).
    """
    cached = artifact.__dict__.get("_splat_plan")
    if cached is not None:
        return cached
    artifact.validate()
    kernels = artifact.kernels
    known = (set(abi.TENSOR_RANKS) | {"scale"} | set(_SCALARS) | set(artifact.tables)
             | set(artifact.manifest.get("scratch", {})))
    where = f"artifact {artifact.key[:12]}" + (f" ({artifact.path})" if artifact.path else "")
    for k in kernels:
        ptx = artifact.ptx[k["ptx_file"]]
        try:
            drv.check_ptx_abi(ptx, k["name"], k["params"])
        except ValueError as e:
            raise ArtifactError(f"{where}: {e}") from None
        for p in k["params"]:
            n = p["name"]
            if n not in known:
                raise ArtifactError(f"kernel {k['name']!r}: parameter {n!r} is neither a "
                                    f"tensor (q, k, v, o, lse), a table, 'scale' nor a size")
            want = abi.TENSOR_RANKS.get(n)
            if want is None and n in artifact.tables:
                want = int(np.asarray(artifact.tables[n]).ndim)
            if want is not None and (p["kind"] != "memref" or p.get("rank") != want):
                raise ArtifactError(f"kernel {k['name']!r}: parameter {n!r} must be a rank-"
                                    f"{want} memref, the manifest says {p}")
        nptx = k.get("num_ptx_params")
        if nptx is not None and nptx != drv.param_count(k["params"]):
            raise ArtifactError(f"kernel {k['name']!r}: num_ptx_params = {nptx} but its params "
                                f"expand to {drv.param_count(k['params'])}")
    for name, cols in abi.TABLE_COLUMNS.items():
        t = artifact.tables.get(name)
        if t is not None and (t.ndim != 2 or t.shape[1] != cols):
            raise ArtifactError(f"table {name!r} must be [n, {cols}], got {list(t.shape)}")
    variant = integrity.check_kernels(artifact, where)
    cov = integrity.check_tables(artifact, variant, where)
    integrity.check_shapes_field(artifact, cov, where)
    plan = Plan(cov.n_tiles, cov.tile_Lq, cov.min_Lk, cov.tile_Lk)
    artifact.__dict__["_splat_plan"] = plan
    return plan


class Launcher:
    """The artifact's module, functions and device-resident tables in one CUDA context."""

    def __init__(self, artifact: Artifact, device: int = 0):
        self.artifact = artifact.validate()
        self.device = int(device)
        self._closed = False
        self._modules: dict = {}
        self._functions: dict = {}
        self._tables: dict = {}  # name -> (dptr, shape)
        self._plans: dict = {}  # Shapes -> launch plan (see _launch_plan)
        self._lock = threading.Lock()  # params are patched in place, then copied by the launch
        m = artifact.manifest
        self.kernels = list(m["kernels"])
        # forward artifacts launch on (q, k, v, o, lse), backward ones on abi.BACKWARD_TENSORS
        self.variant = m.get("variant", "fused")
        self._ptr_names = (abi.BACKWARD_TENSORS if self.variant == "backward"
                           else abi.FORWARD_TENSORS)
        # May q, k, v be strided views? Only where every kernel reads them through their
        # descriptors' strides (abi.STRIDED_INPUTS; artifacts of older compilers do not say so).
        self.strided_inputs = all(p.get("strides") == "any" for k in self.kernels
                                  for p in k["params"] if p["name"] in abi.STRIDED_INPUTS)
        self.n_tiles, self.tile_Lq, self.min_Lk, self.tile_Lk = check_artifact(artifact)
        # device side --------------------------------------------------------------------------
        drv.ensure_init()
        cc = drv.compute_capability(self.device)
        if artifact.target and not abi.target_runs_on(artifact.target, cc):
            raise SplatCudaError("Launcher", detail=f"artifact was built for {artifact.target}, "
                                 f"device {self.device} has compute capability {cc[0]}.{cc[1]}"
                                 + _target_hint(cc))
        self.ctx = drv.primary_context(self.device)
        self._ctx_ptr = drv.raw_handle(self.ctx)
        try:
            with drv.context_scope(self.ctx):
                for k in self.kernels:
                    f = k["ptx_file"]
                    if f not in self._modules:
                        self._modules[f] = drv.load_module(artifact.ptx[f])
                    fn = drv.get_function(self._modules[f], k["name"])
                    shared = int(k["shared_bytes"])
                    if shared > STATIC_SMEM_LIMIT:
                        limit = drv.max_dynamic_smem_optin(self.device)
                        if shared > limit:
                            raise SplatCudaError(
                                "cuFuncSetAttribute", detail=f"kernel {k['name']!r} needs "
                                f"{shared} bytes of shared memory, device {self.device} allows {limit}")
                        drv.set_max_dynamic_smem(fn, shared)
                    self._functions[k["name"]] = fn
                for name, arr in artifact.tables.items():
                    a = np.ascontiguousarray(arr, dtype=np.int32)
                    dptr = drv.mem_alloc(a.nbytes)
                    self._tables[name] = (dptr, tuple(a.shape))
                    drv.memcpy_htod(dptr, a, a.nbytes)
        except BaseException:
            self.close()
            raise

    # -------------------------------------------------------------------------------- checks
    def check_shapes(self, shapes: Any) -> Shapes:
        """Validate problem sizes against the artifact; ValueError naming what disagrees."""
        s = Shapes.of(shapes)
        for f, x in zip(Shapes._fields, s):
            if x < 0:
                raise ValueError(f"shapes: {f} = {x} is negative")
        if s.D != self.artifact.head_dim:
            raise ValueError(f"head dim {s.D} does not match the artifact (built for head_dim="
                             f"{self.artifact.head_dim})")
        if s.Hkv == 0 or s.H % s.Hkv:
            raise ValueError(f"GQA: H = {s.H} query heads is not a multiple of Hkv = {s.Hkv} kv heads")
        if self.tile_Lq is not None and s.Lq != self.tile_Lq:
            raise ValueError(f"pattern: the artifact's schedule covers Lq = {self.tile_Lq} query "
                             f"rows, but q has L = {s.Lq}")
        if self.tile_Lk is not None and s.Lk != self.tile_Lk:
            raise ValueError(f"pattern: the artifact's column schedule covers Lk = {self.tile_Lk} "
                             f"keys, but k/v have L = {s.Lk}")
        if s.Lk < self.min_Lk:
            raise ValueError(f"pattern: the artifact's schedule reads keys up to {self.min_Lk - 1}, "
                             f"but k/v have L = {s.Lk}")
        fixed = self.artifact.shapes or {}
        for f in _SCALARS:
            want = fixed.get(f)
            if want is not None and int(want) != getattr(s, f):
                raise ValueError(f"shapes: the artifact was built for {f} = {want}, got "
                                 f"{getattr(s, f)}")
        return s

    def grid(self, kernel: Mapping, s: Shapes) -> tuple:
        g = kernel["grid"]
        if g == "row_tiles":  # one CTA per row tile of the kernel's table
            return (self._tables[kernel.get("tile_table", "row_tiles")][1][0], s.H, s.B)
        if g == "col_tiles":  # one CTA per column tile, kv head, batch (the backward's dK/dV)
            return (self._tables[kernel["tile_table"]][1][0], s.Hkv, s.B)
        if g == "rows":  # the decomposed kernels: rows_per_cta query rows per CTA
            return (-(-s.Lq // int(kernel["rows_per_cta"])), s.H, s.B)
        return tuple(int(x) for x in g)

    def scratch_shapes(self, s: Shapes) -> dict:
        """{name: shape} of the artifact's scratch buffers (f32) for problem size `s`."""
        sizes = {"B": s.B, "H": s.H, "Lq": s.Lq, "Lk": s.Lk}
        return {name: tuple(sizes[d] if isinstance(d, str) else int(d) for d in spec["shape"])
                for name, spec in self.artifact.manifest.get("scratch", {}).items()}

    # -------------------------------------------------------------------------------- launch
    def _launch_plan(self, s: Shapes) -> "_Plan":
        """Per problem size, once: the packed parameter arrays with placeholder pointers, the
        slots that change per call, grid and block, and q, k, v's contiguous strides. Calls
        then only patch ~11 scalars."""
        plan = self._plans.get(s)
        if plan is not None:
            return plan
        self.check_shapes(s)
        ns: dict = {name: MemRef(1, shape) for name, shape in tensor_shapes(s).items()}
        ns["scale"] = 1.0
        ns.update({f: getattr(s, f) for f in _SCALARS})
        ns.update({n: MemRef(p, shape) for n, (p, shape) in self._tables.items()})
        scratch = self.scratch_shapes(s)
        ns.update({n: MemRef(1, shape) for n, shape in scratch.items()})
        ptr_names = self._ptr_names + tuple(scratch)  # then the scratch buffers
        plan = []
        for k in self.kernels:
            params = drv.pack_params(k["params"], ns)
            ptr_slots, scale_slots, stride_slots, i = [], [], [], 0
            for p in k["params"]:
                if p["kind"] == "memref":
                    if p["name"] in ptr_names:  # allocated and aligned pointer
                        j = ptr_names.index(p["name"])
                        ptr_slots += [(i, j), (i + 1, j)]
                    if p["name"] in abi.STRIDED_INPUTS:  # its 4 strides, after offset, sizes
                        stride_slots.append((i + 3 + int(p["rank"]),
                                             abi.STRIDED_INPUTS.index(p["name"])))
                    i += 3 + 2 * int(p["rank"])
                else:
                    if p["name"] == "scale":
                        scale_slots.append(i)
                    i += 1
            grid = drv._dims("grid", self.grid(k, s), (2**31 - 1, 65535, 65535))
            block = drv._dims("block", k["block"], (1024, 1024, 64))
            plan.append((drv.raw_handle(self._functions[k["name"]]), grid, block,
                         int(k["shared_bytes"]), params, tuple(ptr_slots), tuple(scale_slots),
                         tuple(stride_slots), [None]))  # last: the strides patched in, if any
        shapes = tensor_shapes(s)
        plan = _Plan(plan, tuple(drv.contiguous_strides(shapes[n]) for n in abi.STRIDED_INPUTS))
        if len(self._plans) >= 64:
            self._plans.clear()
        self._plans[s] = plan
        return plan

    def forward(self, q_ptr: int, k_ptr: int, v_ptr: int, o_ptr: int, lse_ptr: int,
                shapes: Any, scale: float, stream: Any = None) -> None:
        """Launch the artifact's kernels (in manifest order) on `stream`.

        Pointers are device addresses of contiguous tensors: q/o ``B×H×Lq×D``, k/v
        ``B×Hkv×Lk×D`` (dtype of the artifact), lse ``B×H×Lq`` float32. `stream`: a raw
        ``CUstream`` handle (int, e.g. ``torch.cuda.current_stream().cuda_stream``), a
        ``CUstream`` or None (legacy default stream)."""
        s, scale = self._call_sizes(shapes, scale)
        if s is None:
            return
        ptrs = (int(q_ptr), int(k_ptr), int(v_ptr), int(o_ptr), int(lse_ptr))
        if not all(ptrs):
            raise ValueError(f"null device pointer among q, k, v, o, lse: {ptrs}")
        with self._lock:
            plan = self._launch_plan(s)
            with drv.context_scope(self.ctx):
                # Scratch (the decomposed path's score tensor) is allocated and freed in stream
                # order, so concurrent calls on different streams never share it.
                scratch = [drv.mem_alloc_async(4 * math.prod(shape), stream)
                           for shape in self.scratch_shapes(s).values()]
                try:
                    self._launch_raw(plan.kernels, ptrs + tuple(scratch), scale,
                                     drv.raw_handle(stream), plan.dense_strides)
                finally:
                    for dptr in scratch:
                        drv.mem_free_async(dptr, stream)

    def forward_with_scratch(self, q_ptr: int, k_ptr: int, v_ptr: int, o_ptr: int, lse_ptr: int,
                             scratch_ptrs: Sequence[int], shapes: Any, scale: float,
                             stream: Any = None, strides: Sequence[Sequence[int]] | None = None
                             ) -> None:
        """`forward` into scratch buffers the caller allocated: one device pointer per entry of
        `scratch_shapes(shapes)`, in that order, each an f32 buffer of at least that shape
        (none for fused artifacts). Makes no driver call but the launches, so a CUDA graph can
        capture it and all memory comes from the caller's allocator (the torch op passes
        buffers of torch's caching allocator, allocated on `stream`).

        `strides`: None for contiguous q, k, v, or their element strides ``(q, k, v)``, four
        each, for strided views: only where the artifact allows it (`strided_inputs`), with
        the innermost stride 1, the others multiples of `abi.INPUT_STRIDE_ALIGN` and q, k, v
        16-byte aligned (ValueError otherwise). o and lse are always contiguous."""
        s, scale = self._call_sizes(shapes, scale)
        if s is None:
            return
        ptrs = (int(q_ptr), int(k_ptr), int(v_ptr), int(o_ptr), int(lse_ptr)) + tuple(
            map(int, scratch_ptrs))
        if not all(ptrs):
            raise ValueError(f"null device pointer among q, k, v, o, lse, scratch: {ptrs}")
        n_scratch = len(self.artifact.manifest.get("scratch", {}))
        if len(ptrs) != len(abi.FORWARD_TENSORS) + n_scratch:
            raise ValueError(f"scratch_ptrs: the artifact has {n_scratch} scratch buffer(s), "
                             f"got {len(ptrs) - len(abi.FORWARD_TENSORS)} pointer(s)")
        self._launch_planned(s, ptrs, scale, stream, strides)

    def backward(self, ptrs: Sequence[int], shapes: Any, scale: float, stream: Any = None,
                 strides: Sequence[Sequence[int]] | None = None) -> None:
        """Launch a backward artifact's kernels (dQ, then dK/dV) on `stream`.

        `ptrs`: device pointers in `abi.BACKWARD_TENSORS` order: q, k, v, dO, and the
        forward's o and lse (natural log), dlse (the lse gradient, f32 B×H×Lq: zeros when the
        loss does not use lse), then the outputs: delta (f32 B×H×Lq, rowsum(dO ∘ O) − dlse,
        written by the dQ kernel for the dK/dV kernel) and dq, dk, dv, which the kernels
        overwrite entirely. All contiguous but q, k, v, which may be strided views as in
        `forward_with_scratch` (`strides`).
        Makes no driver call but the launches (CUDA graphs can capture it)."""
        s, scale = self._call_sizes(shapes, scale, "backward")
        if s is None:
            return
        ptrs = tuple(int(p) for p in ptrs)
        if len(ptrs) != len(abi.BACKWARD_TENSORS):
            raise ValueError(f"ptrs: expected {len(abi.BACKWARD_TENSORS)} pointers "
                             f"{abi.BACKWARD_TENSORS}, got {len(ptrs)}")
        if not all(ptrs):
            raise ValueError(f"null device pointer among {abi.BACKWARD_TENSORS}: {ptrs}")
        self._launch_planned(s, ptrs, scale, stream, strides)

    def _launch_planned(self, s: Shapes, ptrs: tuple, scale: float, stream: Any,
                        strides) -> None:
        """The launches of a checked call: its strides checked, the plan for ``s`` patched and
        launched in the launcher's context (made current only where it is not)."""
        if strides is not None:
            strides = self._checked_strides(strides, ptrs)
        stream_ptr = drv.raw_handle(stream)
        with self._lock:
            plan = self._launch_plan(s)
            strides = strides or plan.dense_strides
            if drv.is_current(self._ctx_ptr):
                self._launch_raw(plan.kernels, ptrs, scale, stream_ptr, strides)
            else:
                with drv.context_scope(self.ctx):
                    self._launch_raw(plan.kernels, ptrs, scale, stream_ptr, strides)

    def _checked_strides(self, strides, ptrs: tuple) -> tuple:
        if not self.strided_inputs:
            raise ValueError("strides: this artifact's kernels take contiguous q, k, v only "
                             "(built by a compiler without strided inputs)")
        out = tuple(tuple(int(x) for x in st) for st in strides)
        if len(out) != len(abi.STRIDED_INPUTS):
            raise ValueError(f"strides: expected one per {abi.STRIDED_INPUTS}, got {len(out)}")
        why = strided_inputs_unfit(out, ptrs)
        if why:
            raise ValueError(f"strides: {why}")
        return out

    def _call_sizes(self, shapes: Any, scale: float, variant: str = "forward") -> tuple:
        """``(Shapes, scale)`` of a call, checked; ``(None, scale)`` for an empty problem (no
        launch: its sizes are still checked)."""
        if self._closed:
            raise RuntimeError("Launcher is closed")
        if (variant == "backward") != (self.variant == "backward"):
            raise ValueError(f"this is a {self.variant} artifact: launch it with "
                             f"{'backward' if self.variant == 'backward' else 'forward'}(), "
                             f"not {variant}()")
        s = shapes if type(shapes) is Shapes else Shapes.of(shapes)
        scale = float(scale)
        if not math.isfinite(scale):
            raise ValueError(f"scale must be finite, got {scale}")
        if s.B == 0 or s.H == 0 or s.Lq == 0:
            self.check_shapes(s)
            return None, scale
        return s, scale

    @staticmethod
    def _launch_raw(kernels: list, ptrs: tuple, scale: float, stream_ptr: int,
                    strides: tuple) -> None:
        """Patch the per-call pointers (the variant's tensors, then scratch), the scale and q, k, v's
        strides (three 4-tuples) into each kernel's packed parameters and launch the kernels in
        order (the current context is the launcher's)."""
        for fn, grid, block, shared, params, ptr_slots, scale_slots, stride_slots, applied in kernels:
            scalars = params.scalars
            for i, j in ptr_slots:
                scalars[i].value = ptrs[j]
            for i in scale_slots:
                scalars[i].value = scale
            if applied[0] != strides:  # the dense strides are one cached tuple: mostly `==`
                for i, j in stride_slots:
                    for x, value in enumerate(strides[j]):
                        scalars[i + x].value = value
                applied[0] = strides
            drv.launch_raw(fn, grid, block, shared, stream_ptr, params)

    @property
    def closed(self) -> bool:
        """True once `close` has run (a closed Launcher launches nothing)."""
        return self._closed

    def close(self) -> None:
        """Free the device tables and unload the modules (idempotent)."""
        if self._closed:
            return
        self._closed = True
        errors = []
        try:
            with drv.context_scope(self.ctx):
                for dptr, _ in self._tables.values():
                    try:
                        drv.mem_free(dptr)
                    except SplatCudaError as e:
                        errors.append(e)
                for mod in self._modules.values():
                    try:
                        drv.unload_module(mod)
                    except SplatCudaError as e:
                        errors.append(e)
        except (SplatCudaError, AttributeError) as e:
            errors.append(e)
        self._tables.clear()
        self._modules.clear()
        self._functions.clear()
        _forget(self)
        if errors:
            raise errors[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"Launcher(artifact={self.artifact.key[:12]!r}, device={self.device}, "
                f"n_tiles={self.n_tiles}, closed={self._closed})")


_registry: dict = {}
_reg_lock = threading.Lock()


def _forget(launcher: Launcher) -> None:
    with _reg_lock:
        for k, v in list(_registry.items()):
            if v is launcher:
                del _registry[k]


def get_launcher(artifact: Artifact, device: int = 0) -> Launcher:
    """The process-wide Launcher for (device's primary context, artifact content:
    `Artifact.identity`)."""
    drv.ensure_init()
    ctx = drv.primary_context(int(device))
    key = (int(ctx), artifact.identity)
    with _reg_lock:
        hit = _registry.get(key)
    if hit is not None and not hit._closed:
        return hit
    launcher = Launcher(artifact, device)
    with _reg_lock:
        return _registry.setdefault(key, launcher)


def close_all() -> None:
    """Close every cached Launcher (frees device tables; for tests and long-lived processes)."""
    with _reg_lock:
        launchers = list(_registry.values())
        _registry.clear()
    for l in launchers:
        try:
            l.close()
        except SplatCudaError:
            pass

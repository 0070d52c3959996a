"""``splat::attention``: SPLAT attention as a PyTorch custom op, called through a handle.

``h = splat.torch.prepare(pattern, head_dim=64, dtype=torch.bfloat16)`` resolves the artifact
once (given, compiled, or prebuilt: `splat.runtime.resolve`), checks it, and returns an
`AttentionOp` (one per call site):
a small immutable object holding the artifact's content key, the scale and the sizes it was
built for. ``h(q, k, v)`` calls

    splat::attention(Tensor q, Tensor k, Tensor v, str handle, float scale)
        -> (Tensor o, Tensor lse)

with ``handle = h.key``. The op's implementations find the artifact (and its per-device
`Launcher`) in a process-wide registry under that key. Why a key and not the artifact: a custom
op takes tensors, numbers and strings only, and a string is a constant to ``torch.compile``, so
the traced graph holds the pattern as a literal and no guard ever looks at the data.

Implementations:

- CUDA: checks the tensors against the artifact (a few attribute reads: the artifact itself was
  checked when the handle was made), reads strided views of q, k, v in place where the
  artifact's kernels take strides (``abi.STRIDED_INPUTS``: e.g. q, k, v sliced from one fused
  QKV projection; other layouts are copied), allocates ``o``, ``lse`` and any scratch with torch's
  caching allocator on the tensors' device, and launches on torch's current stream through
  `Launcher.forward_with_scratch` (no other driver call). No host synchronisation, so the call
  can be captured in a CUDA graph; the PTX is loaded and the tables uploaded on the first call
  per device (or by `AttentionOp.load`), which must come before capture.
- Meta/fake (``register_fake``): the same checks on (symbolic) shapes, then empty outputs. The
  batch size only ever meets ``==`` against k's batch, so it stays symbolic under
  ``torch.compile(dynamic=...)``.
- CPU: a slow numpy reference (dense fp64 attention over the artifact's layout), so models that
  call the op can be traced, compiled and tested on machines without a GPU.

Registry entries live for the process: a compiled graph holds only the key, so the entry must
outlive every handle. Entries are small (the artifact's tables, a Launcher per device).

torch is imported on first use (`prepare` registers the op), like the rest of `splat.torch`.
"""

from __future__ import annotations

import threading
from typing import Any

from .runtime.artifact import Artifact
from .runtime.launcher import (Launcher, Shapes, check_artifact, get_launcher,
                               strided_inputs_unfit)
from .runtime.prepared import handle_key, resolve_prepared
from .runtime.resolve import AUTO_TARGET
from .runtime.validate import SplatInputError, check_qkv_shapes, default_scale, normalize_dtype

__all__ = ["AttentionOp", "prepare", "OP_NAME"]

OP_NAME = "splat::attention"
_SCHEMA = "(Tensor q, Tensor k, Tensor v, str handle, float scale) -> (Tensor, Tensor)"
_TORCH_DTYPES = {"bf16": "bfloat16", "f16": "float16"}

_kernels: dict = {}  # artifact key -> _Kernel
_kernels_lock = threading.Lock()
_define_lock = threading.Lock()
_OP: Any = None  # torch.ops.splat.attention.default once defined
_LIB: Any = None  # the torch.library.Library holding its registrations


def _torch():
    try:
        import torch  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"splat.torch needs PyTorch ({e})") from None
    return torch


# ------------------------------------------------------------------------------------ registry


class _Kernel:
    """What the op's implementations need for one artifact: its sizes, its torch dtype and a
    `Launcher` per CUDA device (created on first use there)."""

    def __init__(self, artifact: Artifact, key: str):
        torch = _torch()
        plan = check_artifact(artifact)
        fixed = artifact.shapes or {}
        self.key = key
        self.artifact = artifact
        self.dtype = normalize_dtype(artifact.dtype)
        self.torch_dtype = getattr(torch, _TORCH_DTYPES[self.dtype])
        self.f32 = torch.float32
        self.D = int(artifact.head_dim)
        lq = plan.tile_Lq if plan.tile_Lq is not None else fixed.get("Lq")
        self.Lq = None if lq is None else int(lq)
        self.Lk = None if fixed.get("Lk") is None else int(fixed["Lk"])
        self.min_Lk = int(plan.min_Lk)
        # B, H, Hkv are free unless the artifact was built for fixed values
        self.fixed_heads = {f: int(fixed[f]) for f in ("B", "H", "Hkv")
                            if fixed.get(f) is not None}
        self.has_scratch = bool(artifact.manifest.get("scratch"))
        self.launchers: dict = {}  # device index -> Launcher
        self._lock = threading.Lock()
        self._mask = None
        self.backward = None  # the backward artifact's _Kernel, resolved on first use (torch_train)

    def check_call(self, q, k, v) -> tuple:
        """(B, H, Hkv, Lk) of a call, or SplatInputError naming the bad argument.

        Works on real, fake and meta tensors with symbolic sizes: only B is expected to be
        symbolic, and it is only compared with k's batch size."""
        B, H, Lq, _, Hkv, Lk = check_qkv_shapes(q.shape, k.shape, v.shape, self.D,
                                                "the handle's artifact")
        for t, name in ((q, "q"), (k, "k"), (v, "v")):
            if t.dtype != self.torch_dtype:
                raise SplatInputError(name, f"dtype {t.dtype} but the handle's artifact was built "
                                            f"for {self.torch_dtype}")
        if k.device != q.device or v.device != q.device:
            bad = "k" if k.device != q.device else "v"
            raise SplatInputError(bad, f"is on {(k if bad == 'k' else v).device} but q is on "
                                       f"{q.device}; all tensors must be on the same device")
        if self.Lq is not None and Lq != self.Lq:
            raise SplatInputError("q", f"has L = {Lq} but the handle was built for Lq = {self.Lq}")
        if self.Lk is not None and Lk != self.Lk:
            raise SplatInputError("k", f"has L = {Lk} but the handle was built for Lk = {self.Lk}")
        if Lk < self.min_Lk:
            raise SplatInputError("k", f"has L = {Lk} but the handle's schedule reads key "
                                       f"{self.min_Lk - 1}")
        for f, got, arg in (("B", B, "q"), ("H", H, "q"), ("Hkv", Hkv, "k")):
            want = self.fixed_heads.get(f)
            if want is not None and got != want:
                raise SplatInputError(arg, f"the handle's artifact was built for {f} = {want}, "
                                           f"got {got}")
        return B, H, Hkv, Lk

    def launcher(self, device: int) -> Launcher:
        """The Launcher on `device`, loading the PTX and uploading the tables on first use
        (synchronous driver calls: refused while the current stream is being captured)."""
        hit = self.launchers.get(device)
        if hit is not None and not hit.closed:
            return hit
        torch = _torch()
        with self._lock:
            hit = self.launchers.get(device)
            if hit is None or hit.closed:
                if torch.cuda.is_current_stream_capturing():
                    raise SplatInputError(
                        "handle", f"first call on cuda:{device} while a CUDA graph is being "
                                  f"captured: loading the kernel and uploading its tables cannot "
                                  f"be captured; call it once (or handle.load(device)) before "
                                  f"capture")
                hit = get_launcher(self.artifact, device)
                self.launchers[device] = hit
        return hit

    def layout_mask(self, Lk: int):
        """bool [Lq, Lk] of the artifact's layout (its ACSR text), for the CPU reference."""
        if self._mask is None:
            text = self.artifact.manifest.get("acsr")
            if not text:
                raise SplatInputError("handle", f"artifact {self.key[:12]} records no layout "
                                                f"(manifest 'acsr'): the CPU reference cannot "
                                                f"run it")
            from .analysis.acsr import ACSR  # noqa: PLC0415  (numpy only)

            self._mask = ACSR.from_text(text).to_mask()
        mask = self._mask
        if mask.shape[1] >= Lk:
            return mask[:, :Lk]
        import numpy as np  # noqa: PLC0415

        return np.pad(mask, ((0, 0), (0, Lk - mask.shape[1])))


def _kernel(key: str) -> _Kernel:
    hit = _kernels.get(key)
    if hit is None:
        raise SplatInputError("handle", f"no prepared SPLAT kernel under key {key[:16]!r}: make "
                                        f"the handle with splat.torch.prepare(...) in this "
                                        f"process before calling the op")
    return hit


def _register_kernel(artifact: Artifact) -> _Kernel:
    key = handle_key(artifact)
    with _kernels_lock:
        hit = _kernels.get(key)
        if hit is None:
            hit = _kernels[key] = _Kernel(artifact, key)
    return hit


# ------------------------------------------------------------------------------------ the op


_stream_of: Any = None  # device index -> raw CUstream of torch's current stream there


def _raw_stream(device: int) -> int:
    """torch's current stream on `device` as a raw CUstream handle: inductor's own accessor
    where the build has it (no Stream object per call), looked up once."""
    global _stream_of
    if _stream_of is None:
        torch = _torch()
        _stream_of = getattr(torch._C, "_cuda_getCurrentRawStream", None) or (
            lambda d: torch.cuda.current_stream(d).cuda_stream)
    return _stream_of(device)


def _kernel_inputs(launcher: Launcher, q, k, v) -> tuple:
    """``(q, k, v, strides)`` as the kernels take them: contiguous tensors as they are
    (strides None); strided views as they are where the artifact's kernels read through
    strides and the views suit them (`Launcher.forward_with_scratch`), copies otherwise. A
    size-1 dimension's stride is never used, so it is passed as 0."""
    if q.is_contiguous() and k.is_contiguous() and v.is_contiguous():
        return q, k, v, None
    if launcher.strided_inputs:
        strides = tuple(tuple(0 if n == 1 else st for n, st in zip(t.shape, t.stride()))
                        for t in (q, k, v))
        if strided_inputs_unfit(strides, (q.data_ptr(), k.data_ptr(), v.data_ptr())) is None:
            return q, k, v, strides
    return q.contiguous(), k.contiguous(), v.contiguous(), None


def _attention_cuda(q, k, v, handle: str, scale: float):
    """The CUDA implementation: torch-allocated outputs (and scratch), one launch sequence on
    torch's current stream, nothing else."""
    kern = _kernel(handle)
    B, H, Hkv, Lk = kern.check_call(q, k, v)
    Lq = q.shape[2]
    device = q.device.index
    launcher = kern.launcher(device)
    q, k, v, strides = _kernel_inputs(launcher, q, k, v)
    o = q.new_empty(q.shape)
    lse = q.new_empty((B, H, Lq), dtype=kern.f32)
    shapes = Shapes(B, H, Hkv, Lq, Lk, kern.D)
    scratch = ()
    if kern.has_scratch:  # decomposed artifacts: the f32 score tensor, from torch's allocator
        scratch = [q.new_empty(shape, dtype=kern.f32)
                   for shape in launcher.scratch_shapes(shapes).values()]
    launcher.forward_with_scratch(q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr(),
                                  lse.data_ptr(), [t.data_ptr() for t in scratch], shapes, scale,
                                  _raw_stream(device), strides)
    # `scratch` is released here; torch's allocator reuses it only for work queued after the
    # launches on this stream (and, while capturing, inside the graph's own pool).
    return o, lse


def _attention_fake(q, k, v, handle: str, scale: float):
    """Shapes and dtypes of the outputs (fake/meta tensors, symbolic sizes)."""
    kern = _kernel(handle)
    B, H, _, _ = kern.check_call(q, k, v)
    return q.new_empty(q.shape), q.new_empty((B, H, q.shape[2]), dtype=kern.f32)


def _attention_cpu_reference(q, k, v, handle: str, scale: float):
    """Reference implementation for CPU tensors: dense fp64 numpy attention over the layout the
    artifact records (`splat.tiling.executor.reference_attention`), rounded to q's dtype.

    Slow (it materialises the [B, H, Lq, Lk] scores) and not the GPU kernel: it exists so that
    models calling the op can be traced, compiled and checked on machines without a GPU."""
    torch = _torch()
    from .tiling.executor import reference_attention  # noqa: PLC0415  (numpy only)

    kern = _kernel(handle)
    _, _, _, Lk = kern.check_call(q, k, v)
    host = [t.detach().double().numpy() for t in (q, k, v)]
    o, lse = reference_attention(*host, kern.layout_mask(Lk), scale)
    return torch.from_numpy(o).to(q.dtype), torch.from_numpy(lse).to(torch.float32)


def _define_op():
    """Define ``splat::attention`` once per process and return its OpOverload.

    Defined with ``torch.library.Library`` (schema, a kernel per device, a fake kernel) rather
    than ``torch.library.custom_op``: the same op to Dynamo, inductor and CUDA graphs, but
    custom_op wraps every call in Python layers (autograd and mutation checks) that measured
    ~30 us per call on the H100 host (2026-12-07), more than the rest of the call."""
    global _OP, _LIB
    if _OP is not None:
        return _OP
    torch = _torch()
    with _define_lock:
        if _OP is None:
            name = OP_NAME.split("::")[1]
            lib = torch.library.Library(OP_NAME.split("::")[0], "FRAGMENT")
            lib.define(name + _SCHEMA)
            lib.impl(name, _attention_cuda, "CUDA")
            lib.impl(name, _attention_cpu_reference, "CPU")
            torch.library.register_fake(OP_NAME, _attention_fake, lib=lib)
            _LIB = lib  # the registrations live as long as this object
            _OP = torch.ops.splat.attention.default
    return _OP


# ------------------------------------------------------------------------------------ the handle


class AttentionOp:
    """A prepared SPLAT attention for one call site: ``h(q, k, v) -> o`` (see the module
    docstring). Immutable; equal and hashing alike when the artifact key and scale agree.

    Attributes: ``key`` (the artifact's content key: the op's ``handle`` argument), ``scale``,
    ``dtype`` ('bf16' / 'f16'), ``head_dim``, ``Lq``, ``Lk`` (None where the artifact does
    not fix it), ``artifact``."""

    __slots__ = ("key", "scale", "dtype", "head_dim", "Lq", "Lk", "artifact")

    def __init__(self, pattern: Any = None, *, head_dim: int | None = None, dtype: Any = None,
                 Lq: int | None = None, Lk: int | None = None, scale: Any = None,
                 artifact: Any = None, target: str = AUTO_TARGET, variant: str = "fused"):
        _define_op()  # first: without torch, fail before resolving (maybe compiling) anything
        art = resolve_prepared(pattern, head_dim, dtype, Lq, Lk, artifact, target, variant)
        kern = _register_kernel(art)
        fields = dict(key=kern.key, scale=default_scale(scale, kern.D, art), dtype=kern.dtype,
                      head_dim=kern.D, Lq=kern.Lq, Lk=kern.Lk, artifact=art)
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"AttentionOp is immutable (it is a constant of compiled graphs); "
                             f"prepare another for a different {name}")

    def __call__(self, q, k, v, *, scale: Any = None, return_lse: bool = False):
        """``o`` (like q), and with ``return_lse`` also the float32 ``(B, H, Lq)`` log-sum-exp.

        Traceable by ``torch.compile(fullgraph=True)``: it is one call of ``splat::attention``
        with this handle's key and scale as constants. ``scale`` overrides the handle's.
        Where grad mode is on and an input requires grad it calls ``splat::attention_train``
        instead, the same op with an autograd formula (`splat.torch_train`)."""
        s = self.scale if scale is None else default_scale(scale, self.head_dim)
        op = _OP
        if (q.requires_grad or k.requires_grad or v.requires_grad) and _torch().is_grad_enabled():
            from .torch_train import train_op  # noqa: PLC0415

            op = train_op()
        o, lse = op(q, k, v, self.key, s)
        return (o, lse) if return_lse else o

    def load(self, device: Any = None) -> "AttentionOp":
        """Load the kernel and upload its tables on a CUDA device now (default: the current
        one), e.g. before capturing a CUDA graph; otherwise the first call there does it."""
        torch = _torch()
        dev = torch.device(device) if device is not None else torch.device(
            "cuda", torch.cuda.current_device())
        if dev.type != "cuda":
            raise SplatInputError("device", f"expected a CUDA device, got {dev}")
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        with torch.cuda.device(index):
            torch.cuda.current_stream(index)  # torch's context first: the launcher shares it
            _kernel(self.key).launcher(index)
        return self

    def __eq__(self, other):
        return (isinstance(other, AttentionOp) and other.key == self.key
                and other.scale == self.scale)

    def __hash__(self):
        return hash((AttentionOp, self.key, self.scale))

    def __copy__(self):
        return self  # immutable

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        # Pickled as its artifact and scale; unpickling registers the artifact again (so a
        # saved model calls the same kernel in another process).
        return _rebuild, (self.artifact, self.scale)

    def __repr__(self):
        return (f"AttentionOp(key={self.key[:12]!r}, dtype={self.dtype}, "
                f"head_dim={self.head_dim}, Lq={self.Lq}, Lk={self.Lk}, scale={self.scale:g})")


def _rebuild(artifact: Artifact, scale: float) -> AttentionOp:
    return AttentionOp(artifact=artifact, scale=scale)


def prepare(pattern: Any = None, *, head_dim: int | None = None, dtype: Any = None,
            Lq: int | None = None, Lk: int | None = None, scale: Any = None, artifact: Any = None,
            target: str = AUTO_TARGET, variant: str = "fused") -> AttentionOp:
    """An `AttentionOp` for `pattern` (or `artifact`): make it once, where the model is built.

    ``head_dim`` and ``dtype`` (a torch dtype or 'bf16' / 'f16') are required with a pattern;
    ``Lq`` / ``Lk`` default to the lengths the pattern declares (Lk to Lq). With ``artifact=``
    (an `Artifact` or a directory) everything comes from the artifact and any size given must
    agree with it. ``scale`` defaults to the artifact's, else 1/sqrt(head_dim).
    ``prepare(...).load()`` also loads the kernel on the current CUDA device right away."""
    return AttentionOp(pattern, head_dim=head_dim, dtype=dtype, Lq=Lq, Lk=Lk, scale=scale,
                       artifact=artifact, target=target, variant=variant)

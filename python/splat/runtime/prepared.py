"""The artifact behind a prepared, per-call-site attention handle (`splat.torch.prepare`,
`splat.jax.prepare`): resolved once (given, compiled, or prebuilt: `splat.runtime.resolve`)
and checked against every size the caller gave or the pattern declares, so that the handle's
calls need only cheap shape checks. Imports neither torch, JAX nor MLIR."""

from __future__ import annotations

import os

from .artifact import Artifact
from .launcher import check_artifact
from .resolve import resolve_artifact
from .validate import SUPPORTED_DTYPES, SplatInputError, normalize_dtype, pattern_lengths

__all__ = ["resolve_prepared", "check_matches", "handle_key", "resolve_backward"]


def handle_key(artifact: Artifact) -> str:
    """The key a handle's op or primitive finds its artifact under: its content
    (`Artifact.identity`), so that two artifacts of one request key never share a handle."""
    return artifact.identity


def resolve_prepared(pattern, head_dim, dtype, Lq, Lk, artifact, target, variant) -> Artifact:
    """The artifact a handle is made from (`resolve_artifact`), checked against every size the
    caller gave or the pattern declares (SplatInputError naming the argument)."""
    declared = (None, None) if pattern is None or isinstance(
        pattern, (Artifact, os.PathLike, str)) else pattern_lengths(pattern)
    if artifact is not None or isinstance(pattern, (Artifact, os.PathLike)):
        # resolve_artifact returns a given artifact (or loads a path) without the sizes, which
        # are checked against it below
        art = resolve_artifact(pattern, dtype="bf16", head_dim=0, Lq=0, Lk=0, artifact=artifact)
    else:
        if pattern is None:
            raise SplatInputError("pattern", "required (a splat pattern, an ACSR, or artifact=)")
        for name, got, decl in (("Lq", Lq, declared[0]), ("Lk", Lk, declared[1])):
            if got is not None and decl is not None and int(got) != decl:
                raise SplatInputError(name, f"{name} = {got} but the pattern declares "
                                            f"{name} = {decl}")
        Lq = Lq if Lq is not None else declared[0]
        Lk = Lk if Lk is not None else (declared[1] if declared[1] is not None else Lq)
        for name, value in (("head_dim", head_dim), ("dtype", dtype), ("Lq", Lq)):
            if value is None:
                raise SplatInputError(name, "required to find the kernel for a pattern" + (
                    " (the pattern does not declare its length)" if name == "Lq" else ""))
        art = resolve_artifact(pattern, dtype=normalize_dtype(str(dtype)), head_dim=int(head_dim),
                               Lq=int(Lq), Lk=int(Lk), target=target, variant=variant)
    if art.manifest.get("variant") == "backward":
        raise SplatInputError("artifact", f"artifact {art.key[:12]} holds backward kernels; "
                                          f"prepare a handle from the forward artifact (its "
                                          f"backward is found on the first backward call)")
    check_matches(art, dtype, head_dim, Lq, Lk, declared)
    return art


def check_matches(art: Artifact, dtype, head_dim, Lq, Lk, declared: tuple) -> None:
    """SplatInputError unless `art` is a bf16/f16 artifact built for the given dtype, head dim
    and lengths (None: not given) and the pattern's declared ``(Lq, Lk)``."""
    adt = normalize_dtype(art.dtype)
    if adt not in SUPPORTED_DTYPES:
        raise SplatInputError("dtype", f"the artifact is {art.dtype}; the op runs bf16 or f16")
    if dtype is not None and normalize_dtype(str(dtype)) != adt:
        raise SplatInputError("dtype", f"{dtype} but the artifact was built for {art.dtype}")
    if head_dim is not None and int(head_dim) != int(art.head_dim):
        raise SplatInputError("head_dim", f"{head_dim} but the artifact was built for head_dim="
                                          f"{art.head_dim}")
    plan = check_artifact(art)
    fixed = art.shapes or {}
    built = {"Lq": plan.tile_Lq if plan.tile_Lq is not None else fixed.get("Lq"),
             "Lk": fixed.get("Lk")}
    for arg, dim, got in (("Lq", "Lq", Lq), ("Lk", "Lk", Lk), ("pattern", "Lq", declared[0]),
                          ("pattern", "Lk", declared[1])):
        want = built[dim]
        if got is not None and want is not None and int(got) != int(want):
            raise SplatInputError(arg, f"{dim} = {got} but the artifact was built for "
                                       f"{dim} = {want}")
        if dim == "Lk" and got is not None and int(got) < plan.min_Lk:
            raise SplatInputError(arg, f"Lk = {got} but the artifact's schedule reads key "
                                       f"{plan.min_Lk - 1}")


def resolve_backward(forward: Artifact) -> Artifact:
    """The backward artifact (``variant="backward"``) of a forward artifact's layout, found as
    any artifact is (`resolve_artifact`: compiled where MLIR is, else prebuilt under the
    request key of the layout the forward artifact's manifest records)."""
    from ..analysis.acsr import ACSR  # noqa: PLC0415  (numpy only)

    text = forward.manifest.get("acsr")
    if not text:
        raise SplatInputError("handle", f"artifact {forward.key[:12]} records no layout "
                                        f"(manifest 'acsr'): its backward cannot be found")
    layout = ACSR.from_text(text)
    try:
        return resolve_artifact(layout, dtype=normalize_dtype(forward.dtype),
                                head_dim=int(forward.head_dim), Lq=layout.Lq, Lk=layout.Lk,
                                target=forward.target or "sm_90a", variant="backward")
    except SplatInputError as e:
        why = str(e).removeprefix(f"{e.arg}: ")
        raise SplatInputError(e.arg, f"the backward artifact of artifact {forward.key[:12]}'s "
                                     f"layout: {why} (pack it with scripts/pack_gpu_artifacts.py "
                                     f"--train or --bench --backward, or "
                                     f"splat.compile(pattern, variant='backward'))") from None

"""The registry of splat's Python passes.

A pass is a class with a registered ``argument`` (its pipeline name), a
``summary``, typed ``options`` and a ``run(op, options)`` method. Passes fail
by raising :class:`PassError` (or emitting an error diagnostic themselves);
the pipeline turns either into a located diagnostic, never a traceback.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from mlir import ir


class PassError(Exception):
    """A pass failed on ``op``; reported as an error at ``op``'s location.

    An op without a file location of its own (the implicit top-level module is at line 0,
    ops built by passes are unknown) is replaced by the nearest op that has one: the first
    nested op, else the nearest parent, so the error never lands at ``0:0``."""

    def __init__(self, message: str, op: ir.Operation | ir.OpView | None = None):
        super().__init__(message)
        self.op = located_op(op) if op is not None else None


def _has_file_location(loc: ir.Location) -> bool:
    if loc.is_a_file():
        return loc.start_line > 0
    if loc.is_a_name():
        return _has_file_location(loc.child_loc)
    if loc.is_a_callsite():
        return _has_file_location(loc.callee) or _has_file_location(loc.caller)
    if loc.is_a_fused():
        return any(_has_file_location(sub) for sub in loc.locations)
    return False


def located_op(op: ir.Operation | ir.OpView) -> ir.Operation:
    """``op``, or the nearest op with a file location to report ``op``'s errors at."""
    op = op.operation if hasattr(op, "operation") else op
    try:
        if _has_file_location(op.location):
            return op
        found = []

        def visit(nested):
            if _has_file_location(nested.location):
                found.append(nested)
                return ir.WalkResult.INTERRUPT
            return ir.WalkResult.ADVANCE

        op.walk(visit, ir.WalkOrder.PRE_ORDER)
        if found:
            return found[0]
        parent = op.parent
        while parent is not None:
            if _has_file_location(parent.location):
                return parent.operation if hasattr(parent, "operation") else parent
            parent = parent.parent
    except Exception:  # finding a better location must never hide the error itself
        pass
    return op


@contextmanager
def failures_at(op: ir.Operation | ir.OpView):
    """Turns any exception but a PassError raised inside into a PassError at ``op`` (a bug
    or an unforeseen input still gives a located diagnostic, not an error at the module)."""
    try:
        yield
    except PassError:
        raise
    except RecursionError:
        raise PassError("input nested too deeply to be processed", op) from None
    except MemoryError:
        raise PassError("out of memory while processing this op", op) from None
    except Exception as e:
        raise PassError(f"internal error: {type(e).__name__}: {e}", op) from e


@dataclass(frozen=True)
class PassOption:
    name: str
    type: type
    default: Any
    help: str

    def parse(self, text: str) -> Any:
        if self.type is bool:
            if text in ("true", "1", ""):
                return True
            if text in ("false", "0"):
                return False
            raise ValueError(f"option '{self.name}' expects true or false, got '{text}'")
        try:
            return self.type(text)
        except ValueError:
            raise ValueError(f"option '{self.name}' expects {self.type.__name__}, "
                             f"got '{text}'") from None


@dataclass
class SplatPass:
    """Base of every Python pass; subclasses set the class variables."""

    argument: ClassVar[str]
    summary: ClassVar[str]
    options_spec: ClassVar[tuple[PassOption, ...]] = ()
    options: dict[str, Any] = field(default_factory=dict)

    def run(self, op: ir.Operation) -> None:
        raise NotImplementedError

    @classmethod
    def from_options(cls, values: dict[str, str]) -> "SplatPass":
        known = {o.name: o for o in cls.options_spec}
        parsed = {o.name: o.default for o in cls.options_spec}
        for key, text in values.items():
            if key not in known:
                raise ValueError(f"pass '{cls.argument}' has no option '{key}' "
                                 f"(options: {', '.join(known) or 'none'})")
            parsed[key] = known[key].parse(text)
        return cls(options=parsed)


PASSES: dict[str, type[SplatPass]] = {}


@dataclass
class SplatPipeline(SplatPass):
    """A named pipeline: ``expand()`` returns the pipeline elements it stands
    for (splat and upstream passes, comma-separated), built from its options."""

    def expand(self) -> str:
        raise NotImplementedError

    def run(self, op: ir.Operation) -> None:  # pipelines are expanded, never run
        raise PassError(f"pipeline '{self.argument}' must be expanded, not run", op)


def register_pass(cls: type[SplatPass]) -> type[SplatPass]:
    if cls.argument in PASSES:
        raise ValueError(f"pass '{cls.argument}' registered twice")
    PASSES[cls.argument] = cls
    return cls


def describe_passes() -> str:
    """Help text: every registered pass with its options."""
    lines = []
    for name in sorted(PASSES):
        cls = PASSES[name]
        kind = " (pipeline)" if issubclass(cls, SplatPipeline) else ""
        lines.append(f"  {name:32s} {cls.summary}{kind}")
        for option in cls.options_spec:
            lines.append(f"      {option.name}={option.type.__name__:<6s} "
                         f"{option.help} (default: {option.default})")
    return "\n".join(lines)


def walk_ops(root: ir.Operation, predicate: Callable[[ir.Operation], bool]):
    """All operations under ``root`` (pre-order, root included) matching predicate."""
    found = []

    def visit(op):
        if predicate(op):
            found.append(op)
        return ir.WalkResult.ADVANCE

    root.walk(visit, ir.WalkOrder.PRE_ORDER)
    return found


# The ops that carry a ``layout`` attribute (a pattern or an ACSR).
LAYOUT_OPS = ("splat.attention", "splat.sddmm", "splat.softmax", "splat.spmm")


def layout_ops(root: ir.Operation) -> list:
    """Every splat op with a layout under ``root``."""
    return walk_ops(root, lambda o: o.name in LAYOUT_OPS)


def producing_sddmm(softmax: ir.Operation) -> ir.Operation | None:
    """The splat.sddmm whose scores a splat.softmax consumes (None if they come from elsewhere):
    a softmax takes its Lk, dtype and head dim from it."""
    owner = softmax.operands[0].owner
    owner = owner.operation if hasattr(owner, "operation") else owner
    return owner if getattr(owner, "name", "") == "splat.sddmm" else None

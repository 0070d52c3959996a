"""Kernel-building helpers over the MLIR Python bindings, shared by every kernel of the lowering.

Arithmetic accepts a Python number for either operand (it becomes a constant of the other
operand's type).  Every helper creates its ops at the current insertion point, in the order its
arguments are listed, so a kernel's op order (and therefore its PTX) is what its source reads.

Structured control flow carries values *by name*: loop state and ``scf.if`` results are given as
a structure of dicts (by name) and lists (e.g. the 4 f32 values of an accumulator tile, or a list
of such tiles) whose leaves are SSA values; the helpers flatten it into the op's operands and hand
the block arguments / results back in the same structure, so no kernel slices ``iter_args``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

from mlir import ir
from mlir.dialects import arith, gpu, llvm, nvvm, scf

__all__ = [
    "LOG2E", "LN2", "i32_type", "f32_type", "index_type", "const", "ci", "cx", "cf",
    "add", "sub", "mul", "udiv", "urem", "smin", "smax", "fmax", "band", "icmp", "fcmp", "select",
    "to_index", "to_i32", "all_of", "fma", "exp2", "log2", "tree_reduce",
    "shuffle_xor", "shuffle_idx", "warp_any", "for_range", "if_then", "if_else", "while_loop",
]


# ----------------------------------------------------------------------------------------------
# Types and constants
# ----------------------------------------------------------------------------------------------

# The kernels do softmax in base 2 (exp2 / log2 are single MUFU instructions).
LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453


def i32_type():
    return ir.IntegerType.get_signless(32)


def f32_type():
    return ir.F32Type.get()


def index_type():
    return ir.IndexType.get()


def _is_float(ty) -> bool:
    return isinstance(ty, (ir.F32Type, ir.F16Type, ir.BF16Type, ir.F64Type))


def const(ty, value):
    """``arith.constant`` of type ``ty`` (integer, index or float)."""
    if _is_float(ty):
        return arith.constant(ty, ir.FloatAttr.get(ty, float(value)))
    return arith.constant(ty, ir.IntegerAttr.get(ty, int(value)))


def ci(v):
    """i32 constant."""
    return const(i32_type(), v)


def cx(v):
    """index constant."""
    return const(index_type(), v)


def cf(v):
    """f32 constant."""
    return const(f32_type(), v)


# ----------------------------------------------------------------------------------------------
# Arithmetic, comparisons, casts
# ----------------------------------------------------------------------------------------------


def _pair(a, b):
    if not isinstance(a, ir.Value):
        a = const(b.type, a)
    if not isinstance(b, ir.Value):
        b = const(a.type, b)
    return a, b


def add(a, b):
    a, b = _pair(a, b)
    return arith.addf(a, b) if _is_float(a.type) else arith.addi(a, b)


def sub(a, b):
    a, b = _pair(a, b)
    return arith.subf(a, b) if _is_float(a.type) else arith.subi(a, b)


def mul(a, b):
    a, b = _pair(a, b)
    return arith.mulf(a, b) if _is_float(a.type) else arith.muli(a, b)


def udiv(a, b):
    a, b = _pair(a, b)
    return arith.divui(a, b)


def urem(a, b):
    a, b = _pair(a, b)
    return arith.remui(a, b)


def smin(a, b):
    a, b = _pair(a, b)
    return arith.minsi(a, b)


def smax(a, b):
    a, b = _pair(a, b)
    return arith.maxsi(a, b)


def fmax(a, b):
    a, b = _pair(a, b)
    return arith.maxnumf(a, b)


def band(a, b):
    a, b = _pair(a, b)
    return arith.andi(a, b)


def icmp(pred: str, a, b):
    """``arith.cmpi`` with the predicate by name (``"slt"``, ``"eq"``, ...)."""
    a, b = _pair(a, b)
    return arith.cmpi(getattr(arith.CmpIPredicate, pred), a, b)


def fcmp(pred: str, a, b):
    """``arith.cmpf`` with the predicate by name (``"ogt"``, ``"oeq"``, ...)."""
    a, b = _pair(a, b)
    return arith.cmpf(getattr(arith.CmpFPredicate, pred.upper()), a, b)


def select(cond, a, b):
    a, b = _pair(a, b)
    return arith.select(cond, a, b)


def to_index(v):
    return arith.index_cast(index_type(), v)


def to_i32(v):
    return arith.index_cast(i32_type(), v)


def all_of(conds):
    out = conds[0]
    for c in conds[1:]:
        out = band(out, c)
    return out


def fma(a, b, c):
    """a*b + c (f32), as one fma.rn.f32."""
    return llvm.intr_fma(a, b, c)


def _nvvm_intrinsic(name, x):
    return llvm.call_intrinsic(f32_type(), name, [x], [], [])


def exp2(x):
    """2**x as ex2.approx.ftz.f32: one MUFU.EX2 (the non-ftz form costs 3 extra instructions
    per call for denormal scaling).  math.exp2 / llvm.exp2 would be routed to libdevice."""
    return _nvvm_intrinsic("llvm.nvvm.ex2.approx.ftz.f", x)


def log2(x):
    """log2(x) as one lg2.approx.f32 (no libdevice)."""
    return _nvvm_intrinsic("llvm.nvvm.lg2.approx.f", x)


def tree_reduce(values, combine):
    """Balanced reduction (short dependency chains; float ops are not reassociated for us)."""
    values = list(values)
    while len(values) > 1:
        nxt = [combine(values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]


# ----------------------------------------------------------------------------------------------
# Warp shuffles (the offset / source lane and the width may be given as Python ints)
# ----------------------------------------------------------------------------------------------


def _i32_operand(v):
    return v if isinstance(v, ir.Value) else ci(v)


def shuffle_xor(x, offset, width=32):
    """The value of lane ``lane ^ offset``."""
    offset = _i32_operand(offset)
    return gpu.shuffle(x, offset, _i32_operand(width), gpu.ShuffleMode.XOR)[0]


def shuffle_idx(x, src, width=32):
    """The value of lane ``src``."""
    src = _i32_operand(src)
    return gpu.shuffle(x, src, _i32_operand(width), gpu.ShuffleMode.IDX)[0]


def warp_any(pred):
    """Whether ``pred`` (i1) holds in any lane of the warp (all 32 lanes take part): the same
    value in every lane, so a branch on it keeps the warp converged."""
    return nvvm.vote_sync(ir.IntegerType.get_signless(1), _i32_operand(-1), pred,
                          nvvm.VoteSyncKind.any)


# ----------------------------------------------------------------------------------------------
# Structured control flow with named values
# ----------------------------------------------------------------------------------------------
# A "structure" is a dict (names -> structures), a list/tuple (of structures) or a leaf.  The
# flat order is the dict's key order, depth first: the order the op's operands and results get.


def _flatten(tree, template=None) -> list:
    """The leaves of ``tree``, in the order of ``template`` (default: ``tree`` itself)."""
    template = tree if template is None else template
    if isinstance(template, dict):
        if not isinstance(tree, dict) or set(tree) != set(template):
            raise ValueError(f"expected the names {sorted(template)}, got "
                             f"{sorted(tree) if isinstance(tree, dict) else type(tree).__name__}")
        return [leaf for key in template for leaf in _flatten(tree[key], template[key])]
    if isinstance(template, (list, tuple)):
        if not isinstance(tree, (list, tuple)) or len(tree) != len(template):
            raise ValueError(f"expected a sequence of {len(template)}, got {tree!r}")
        return [leaf for sub, tmpl in zip(tree, template) for leaf in _flatten(sub, tmpl)]
    return [tree]


def _unflatten(template, leaves):
    """``leaves`` (an iterator) in the structure of ``template`` (dicts and lists)."""
    if isinstance(template, dict):
        return {key: _unflatten(sub, leaves) for key, sub in template.items()}
    if isinstance(template, (list, tuple)):
        return [_unflatten(sub, leaves) for sub in template]
    return next(leaves)


def _types(tree) -> list:
    return [leaf if isinstance(leaf, ir.Type) else leaf.type for leaf in _flatten(tree)]


def _yield(tree, template) -> None:
    scf.yield_(_flatten(tree, template))


def for_range(lower, upper, step, body: Callable, init=None):
    """``scf.for`` from ``lower`` to ``upper`` by ``step`` (index values).

    ``body(iv)``, or with loop state ``init`` (a structure of values) ``body(iv, state)``, is
    called inside the loop body; ``state`` has the structure of ``init`` and ``body`` returns the
    next state in that structure.  Returns the final state (``None`` without ``init``).
    Constants in ``init`` are created where ``init`` is built: written inline in the call, after
    the bounds, as ``scf.ForOp(lower, upper, step, init)`` would have them."""
    loop = scf.ForOp(lower, upper, step, [] if init is None else _flatten(init))
    with ir.InsertionPoint(loop.body):
        iv = loop.induction_variable
        if init is None:
            body(iv)
            scf.yield_([])
            return None
        _yield(body(iv, _unflatten(init, iter(loop.inner_iter_args))), init)
    return _unflatten(init, iter(loop.results))


@contextmanager
def if_then(cond):
    """``scf.if`` without results: the ``with`` block is the then-region."""
    op = scf.IfOp(cond)
    with ir.InsertionPoint(op.then_block):
        yield
        scf.yield_([])


def if_else(cond, result_types, then_body: Callable, else_body: Callable):
    """``scf.if`` with results.  ``result_types`` is the results' structure with types (or values
    of those types) as leaves; ``then_body()`` and ``else_body()`` each return values in that
    structure.  Returns the results in that structure."""
    op = scf.IfOp(cond, _types(result_types), has_else=True)
    with ir.InsertionPoint(op.then_block):
        _yield(then_body(), result_types)
    with ir.InsertionPoint(op.else_block):
        _yield(else_body(), result_types)
    return _unflatten(result_types, iter(op.results))


def while_loop(init, cond: Callable, body: Callable):
    """``scf.while`` over the state ``init`` (a structure of values): while ``cond(state)`` (an
    i1; the state passes on unchanged), ``state = body(state)``.  Returns the final state."""
    types = _types(init)
    op = scf.WhileOp(types, _flatten(init))
    before = op.before.blocks.append(*types)
    with ir.InsertionPoint(before):
        scf.condition(cond(_unflatten(init, iter(before.arguments))), list(before.arguments))
    after = op.after.blocks.append(*types)
    with ir.InsertionPoint(after):
        _yield(body(_unflatten(init, iter(after.arguments))), init)
    return _unflatten(init, iter(op.results))

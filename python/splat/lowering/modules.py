"""Where kernel builders put their ``gpu.module``: an existing module or a new one."""

from __future__ import annotations

from typing import Callable

from mlir import ir


def build_in_module(module_or_none, build: Callable[[ir.Module], None]) -> ir.Module:
    """Run ``build(module)`` on ``module_or_none`` (in its context), or on a new module in the
    current MLIR context (a fresh context when none is active). Returns the module."""
    if module_or_none is not None:
        with module_or_none.context, ir.Location.unknown():
            build(module_or_none)
        return module_or_none
    try:
        ctx = ir.Context.current
    except ValueError:
        ctx = None
    with (ctx or ir.Context()), ir.Location.unknown():
        module = ir.Module.create()
        build(module)
    return module

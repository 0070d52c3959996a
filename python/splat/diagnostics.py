"""Collecting diagnostics, printing them as file:line:col, and checking them
against ``expected-error/-warning/-note/-remark`` comments (mlir-opt's
``--verify-diagnostics`` semantics: ``@+N``, ``@-N``, ``@above``, ``@below``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlir import ir

_SEVERITY = {
    ir.DiagnosticSeverity.ERROR: "error",
    ir.DiagnosticSeverity.WARNING: "warning",
    ir.DiagnosticSeverity.NOTE: "note",
    ir.DiagnosticSeverity.REMARK: "remark",
}


@dataclass
class Diag:
    severity: str
    line: int | None      # 1-based line in the chunk, None when unknown
    col: int | None
    message: str


def _file_location(loc: ir.Location) -> tuple[int | None, int | None]:
    """The first file:line:col inside ``loc`` (fused/named/callsite unwrapped)."""
    if loc.is_a_file():
        return loc.start_line, loc.start_col
    if loc.is_a_name():
        return _file_location(loc.child_loc)
    if loc.is_a_callsite():
        return _file_location(loc.caller)
    if loc.is_a_fused():
        for sub in loc.locations:
            found = _file_location(sub)
            if found[0] is not None:
                return found
    return None, None


def flatten(diagnostic) -> list[Diag]:
    """A diagnostic (ir.Diagnostic or DiagnosticInfo) and its notes."""
    line, col = _file_location(diagnostic.location)
    out = [Diag(_SEVERITY[diagnostic.severity], line, col, str(diagnostic.message))]
    for note in diagnostic.notes:
        out.extend(flatten(note))
    return out


class Collector:
    """A context diagnostic handler that keeps everything it sees."""

    def __init__(self, context: ir.Context):
        self.diags: list[Diag] = []
        self._handler = context.attach_diagnostic_handler(self._handle)

    def _handle(self, diagnostic) -> bool:
        self.diags.extend(flatten(diagnostic))
        return True

    def detach(self) -> None:
        self._handler.detach()


def format_diag(diag: Diag, filename: str, line_offset: int) -> str:
    if diag.line is None:
        return f"{filename}: {diag.severity}: {diag.message}"
    return f"{filename}:{diag.line + line_offset}:{diag.col}: {diag.severity}: {diag.message}"


_EXPECTED = re.compile(
    r"expected-(error|warning|note|remark)\s*(?:@\s*(above|below|[+-]\d+))?\s*\{\{(.*?)\}\}")


@dataclass
class Expected:
    severity: str
    line: int
    message: str
    comment_line: int
    matched: bool = False


def expected_diagnostics(source: str) -> list[Expected]:
    lines = source.split("\n")
    found: list[Expected] = []
    for index, text in enumerate(lines, start=1):
        for m in _EXPECTED.finditer(text):
            severity, where, message = m.groups()
            if where is None:
                target = index
            elif where == "above":
                target = index - 1
            elif where == "below":
                target = index + 1
            else:
                target = index + int(where)
            found.append(Expected(severity, target, message, index))
    return found


def verify(source: str, diags: list[Diag], filename: str, line_offset: int) -> list[str]:
    """Mismatches between the emitted ``diags`` and the expectations in ``source``."""
    expected = expected_diagnostics(source)
    problems = []
    for diag in diags:
        # mlir-opt does not attach the op to diagnostics when verifying them.
        if diag.severity == "note" and diag.message.startswith("see current operation"):
            continue
        match = next((e for e in expected if not e.matched and e.severity == diag.severity
                      and e.line == diag.line and e.message in diag.message), None)
        if match is None:
            problems.append(format_diag(diag, filename, line_offset).replace(
                f": {diag.severity}: ", f": error: unexpected {diag.severity}: ", 1))
        else:
            match.matched = True
    for e in expected:
        if not e.matched:
            problems.append(f"{filename}:{e.comment_line + line_offset}: error: expected "
                            f"{e.severity} \"{e.message}\" was not produced")
    return problems

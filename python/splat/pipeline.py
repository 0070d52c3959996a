"""Pass pipelines that mix splat's Python passes with upstream MLIR passes.

MLIR's textual pipeline parser only knows C++ passes, so we parse the
pipeline ourselves: ``builtin.module(a, b{opt=1}, gpu.module(c, d))``.
Upstream elements go to ``PassManager.add`` as text; splat's passes are
added as Python passes. A splat pass nested under an op (``gpu.module(...)``)
runs on every op of that name.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlir import ir
from mlir.passmanager import PassManager

from .passes import PASSES, PassError, SplatPass
from .passes.registry import SplatPipeline, walk_ops


class PipelineError(ValueError):
    """The pipeline text is malformed or names an unknown pass or option."""


@dataclass
class Element:
    name: str
    options: str | None = None          # raw text between { }
    nested: list["Element"] | None = None  # op-anchored sub-pipeline

    def text(self) -> str:
        out = self.name
        if self.options is not None:
            out += "{" + self.options + "}"
        if self.nested is not None:
            out += "(" + ", ".join(e.text() for e in self.nested) + ")"
        return out

    def has_splat_pass(self) -> bool:
        if self.nested is None:
            return self.name in PASSES
        return any(e.has_splat_pass() for e in self.nested)


@dataclass
class _Parser:
    text: str
    pos: int = 0

    def error(self, message: str) -> PipelineError:
        return PipelineError(f"{message} at offset {self.pos} of pipeline '{self.text}'")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def pipeline(self) -> list[Element]:
        elements = [self.element()]
        while self.peek() == ",":
            self.pos += 1
            elements.append(self.element())
        return elements

    def element(self) -> Element:
        self.skip()
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] in "-_."):
            self.pos += 1
        if self.pos == start:
            raise self.error("expected a pass or op name")
        element = Element(self.text[start:self.pos])
        if self.peek() == "{":
            element.options = self.balanced("{", "}")
        if self.peek() == "(":
            self.pos += 1
            element.nested = [] if self.peek() == ")" else self.pipeline()
            if self.peek() != ")":
                raise self.error("expected ')'")
            self.pos += 1
        return element

    def balanced(self, open_: str, close: str) -> str:
        # Option values may hold nested braces and quoted strings.
        depth, start, quote = 0, self.pos + 1, None
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if quote:
                quote = None if c == quote else quote
            elif c in "\"'":
                quote = c
            elif c == open_:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    self.pos += 1
                    return self.text[start:self.pos - 1]
            self.pos += 1
        raise self.error(f"unbalanced '{open_}'")


def parse_pipeline(text: str) -> list[Element]:
    parser = _Parser(text)
    elements = parser.pipeline()
    if parser.peek():
        raise parser.error("unexpected text")
    return elements


def parse_options(text: str | None) -> dict[str, str]:
    """``a=1 b="x y" c`` -> {'a': '1', 'b': 'x y', 'c': ''}."""
    options: dict[str, str] = {}
    if not text:
        return options
    i = 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        start = i
        while i < len(text) and not text[i].isspace() and text[i] != "=":
            i += 1
        key = text[start:i]
        if not key:
            break
        value = ""
        if i < len(text) and text[i] == "=":
            i += 1
            if i < len(text) and text[i] in "\"'":
                end = text.index(text[i], i + 1)
                value, i = text[i + 1:end], end + 1
            else:
                start = i
                while i < len(text) and not text[i].isspace():
                    i += 1
                value = text[start:i]
        options[key] = value
    return options


def _python_pass(splat_pass: SplatPass, anchor: str | None):
    """A callable for PassManager.add that runs ``splat_pass`` (on every
    ``anchor`` op when nested) and reports failures as diagnostics."""

    def run(op: ir.Operation, pass_) -> None:
        targets = [op] if anchor is None else walk_ops(op, lambda o: o.name == anchor)
        for target in targets:
            try:
                splat_pass.run(target)
            except PassError as e:
                where = e.op if e.op is not None else target
                where = where.operation if hasattr(where, "operation") else where
                where.location.emit_error(f"{splat_pass.argument}: {e}")
                pass_.signal_pass_failure()
                return
            except Exception as e:  # a bug in a pass: still a located error
                target.location.emit_error(
                    f"{splat_pass.argument} failed: {type(e).__name__}: {e}")
                pass_.signal_pass_failure()
                return

    return run


def build_pass_manager(pipeline: str, context: ir.Context | None = None) -> PassManager:
    """A PassManager on builtin.module for ``builtin.module(...)`` or a bare
    comma-separated list of passes."""
    elements = parse_pipeline(pipeline)
    if len(elements) == 1 and elements[0].name == "builtin.module" and elements[0].nested is not None:
        elements = elements[0].nested
    pm = PassManager("builtin.module", context=context)
    for element in elements:
        _add(pm, element, anchor=None)
    return pm


def _add(pm: PassManager, element: Element, anchor: str | None) -> None:
    if element.nested is None and element.name in PASSES:
        cls = PASSES[element.name]
        try:
            splat_pass = cls.from_options(parse_options(element.options))
        except ValueError as e:
            raise PipelineError(str(e)) from None
        if isinstance(splat_pass, SplatPipeline):
            for sub in parse_pipeline(splat_pass.expand()):
                _add(pm, sub, anchor)
            return
        pm.add(_python_pass(splat_pass, anchor), name=cls.__name__, argument=cls.argument,
               description=cls.summary)
        return
    if element.nested is not None and element.has_splat_pass():
        if anchor is not None:
            raise PipelineError(f"splat passes may nest one op deep only: '{element.text()}'")
        # Split into runs of upstream passes and single splat passes.
        run: list[Element] = []
        for sub in element.nested + [None]:
            if sub is None or sub.has_splat_pass():
                if run:
                    _add_text(pm, Element(element.name, nested=run).text())
                    run = []
                if sub is not None:
                    _add(pm, sub, anchor=element.name)
            else:
                run.append(sub)
        return
    text = element.text()
    _add_text(pm, text if anchor is None else f"{anchor}({text})")


def _add_text(pm: PassManager, text: str) -> None:
    try:
        pm.add(text)
    except ValueError as e:
        raise PipelineError(f"invalid pass pipeline element '{text}': {e}") from None

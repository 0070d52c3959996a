"""Collecting diagnostics, printing them as ``file:line:col``, and checking them against
``expected-*`` comments (``splat-opt --verify-diagnostics``).

The expectation syntax and the matching rules are those of upstream mlir-opt's
``SourceMgrDiagnosticVerifierHandler`` (the MLIR Python bindings do not expose it), made
stricter where upstream silently ignores a directive it cannot read; docs/passes.md states
the rules. In short:

* ``expected-(error|warning|note|remark)[-re] [@designator] {{message}}`` at the end of a
  ``//`` comment line, one directive per line;
* designators: none (the directive's own line), ``@+N``/``@-N`` (relative), ``@above`` (the
  nearest line above that holds no directive), ``@below`` (the nearest such line below),
  ``@unknown`` (a diagnostic without a file location);
* the plain form matches when the diagnostic's message *contains* the text; the ``-re`` form
  reads ``{{...}}`` blocks inside the text as regular expressions and the rest literally,
  and matches anywhere in the message;
* every expectation must be matched and every diagnostic expected; a misspelt or malformed
  directive is an error, never ignored.
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

KINDS = ("error", "warning", "note", "remark")


@dataclass
class Diag:
    severity: str
    line: int | None      # 1-based line in the chunk, None when unknown
    col: int | None       # 1-based, None when unknown
    message: str
    filename: str | None = None  # the location's file name as MLIR has it

    @property
    def located(self) -> bool:
        return self.line is not None


def _file_location(loc: ir.Location) -> tuple[str | None, int | None, int | None]:
    """The first file:line:col inside ``loc`` (fused/named/callsite unwrapped). A file
    location at line 0 (MLIR's implicit top-level module) counts as unknown."""
    if loc.is_a_file():
        if loc.start_line <= 0:
            return None, None, None
        return loc.filename, loc.start_line, (loc.start_col if loc.start_col > 0 else None)
    if loc.is_a_name():
        return _file_location(loc.child_loc)
    if loc.is_a_callsite():
        found = _file_location(loc.callee)
        return found if found[1] is not None else _file_location(loc.caller)
    if loc.is_a_fused():
        for sub in loc.locations:
            found = _file_location(sub)
            if found[1] is not None:
                return found
    return None, None, None


def flatten(diagnostic) -> list[Diag]:
    """A diagnostic (ir.Diagnostic or DiagnosticInfo) and its notes."""
    filename, line, col = _file_location(diagnostic.location)
    out = [Diag(_SEVERITY[diagnostic.severity], line, col, str(diagnostic.message), filename)]
    for note in diagnostic.notes:
        out.extend(flatten(note))
    return out


class Collector:
    """A context diagnostic handler that keeps everything it sees, in order.

    It also turns on ``emit_error_diagnostics``, so that errors reach it in the order they
    are emitted instead of only through the ``MLIRError`` raised at the end."""

    def __init__(self, context: ir.Context):
        self.diags: list[Diag] = []
        self._context = context
        self._previous = context.emit_error_diagnostics
        context.emit_error_diagnostics = True
        self._handler = context.attach_diagnostic_handler(self._handle)

    def _handle(self, diagnostic) -> bool:
        try:
            self.diags.extend(flatten(diagnostic))
        except Exception as e:  # never let a Python error escape into MLIR's C++ code
            self.diags.append(Diag("error", None, None,
                                   f"(diagnostic could not be read: {type(e).__name__})"))
        return True

    def add_error(self, error: ir.MLIRError) -> None:
        """The diagnostics an ``MLIRError`` carries (empty when they were handled here)."""
        for d in error.error_diagnostics:
            self.diags.extend(flatten(d))

    def detach(self) -> None:
        if self._handler is None:
            return
        self._handler.detach()
        self._context.emit_error_diagnostics = self._previous
        # context -> handler -> this collector -> context is a cycle through C++ that the
        # garbage collector cannot see: without breaking it every context would leak (~2 MB)
        self._handler = self._context = None


def format_diag(diag: Diag, filename: str, line_offset: int) -> str:
    if diag.line is None:
        return f"{filename}: {diag.severity}: {diag.message}"
    col = f"{diag.col}:" if diag.col is not None else ""
    return f"{filename}:{diag.line + line_offset}:{col} {diag.severity}: {diag.message}"


# --------------------------------------------------------------------------------------
# Expectations

_DIRECTIVES = tuple(f"expected-{k}{re_}" for k in KINDS for re_ in ("", "-re"))
_DIRECTIVE = re.compile(
    r"(?<![\w-])expected-(?P<kind>error|warning|note|remark)(?P<re>-re)?(?![\w-])")
# what must follow the directive word: [designator] {{message}} at the end of the line
_TAIL = re.compile(r"[ \t]*(?:@(?P<where>above|below|unknown|[+-][0-9]+))?[ \t]*\{\{"
                   r"(?P<message>.*)\}\}$")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": r"\s", "blank": r" \t", "xdigit": "0-9a-fA-F", "punct": r"!-/:-@\[-`{-~",
    "word": r"\w",
}


@dataclass
class Expected:
    severity: str
    line: int | None        # the line the diagnostic must be on; None: @unknown
    message: str            # the text between the outer {{ }}
    comment_line: int       # where the directive is (1-based, in the chunk)
    col: int = 1            # column of the directive
    regex: re.Pattern | None = None  # the -re form
    matched: bool = False

    def match(self, message: str) -> bool:
        if self.regex is not None:
            return self.regex.search(message) is not None
        return self.message in message


@dataclass
class Problem:
    """An error in the expectations themselves (a misspelt or malformed directive)."""
    line: int
    col: int
    message: str


def _distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of ``a`` and ``b`` (adjacent transpositions count 1), or
    ``limit + 1`` when it is larger than ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] | None = None
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if (prev2 is not None and i > 1 and j > 1 and ca == b[j - 2]
                    and a[i - 2] == cb):
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _suggest(word: str, directive_like: bool) -> str | None:
    """The directive a misspelt ``word`` most likely means, if it looks like one.
    ``directive_like``: the word is followed by a designator ``@`` or by ``{{``."""
    lower = word.lower()
    if "-" not in lower and "_" not in lower:
        return None
    best = min(_DIRECTIVES, key=lambda d: _distance(lower, d, 99))
    distance = _distance(lower, best, 99)
    slack = 1 if directive_like else 0  # a word followed by '@' or '{{' is held closer
    if lower.startswith("expect"):
        # expect*-<kind>: flag it when <kind> is close to a kind (expected-eror)
        kind = re.split(r"[-_]", lower, maxsplit=1)[1]
        if any(_distance(kind, k, 3) <= 2 + slack for k in _DIRECTIVES_KINDS):
            return best
    return best if distance <= 2 + 2 * slack else None


_DIRECTIVES_KINDS = tuple(d[len("expected-"):] for d in _DIRECTIVES)


def _compile_regex(message: str) -> re.Pattern:
    """The -re form: ``{{...}}`` blocks are regular expressions, the rest is literal.
    Raises ValueError with the reason when a block is unterminated or invalid."""
    parts, rest = [], message
    while rest:
        start = rest.find("{{")
        if start < 0:
            parts.append(re.escape(rest))
            break
        parts.append(re.escape(rest[:start]))
        rest = rest[start + 2:]
        end = rest.find("}}")
        if end < 0:
            raise ValueError("found start of regex with no end '}}'")
        block = re.sub(r"\[:(\w+):\]",
                       lambda m: _POSIX_CLASSES.get(m.group(1), m.group(0)), rest[:end])
        try:
            re.compile(block)
        except re.error as e:
            raise ValueError(f"invalid regex '{rest[:end]}': {e}") from None
        parts.append(f"(?:{block})")
        rest = rest[end + 2:]
    return re.compile("".join(parts))


def parse_expectations(source: str) -> tuple[list[Expected], list[Problem]]:
    """The ``expected-*`` directives of ``source`` and the errors in them."""
    lines = source.split("\n")
    if len(lines) > 1 and lines[-1] == "":  # the text after the final newline is no line
        lines.pop()
    expected: list[Expected] = []
    problems: list[Problem] = []
    directive_lines: set[int] = set()
    below: list[Expected] = []   # @below designators waiting for their line
    for number, text in enumerate(lines, start=1):
        comment = text.find("//")
        if comment < 0:
            found = []
        else:
            found = _parse_line(text, comment, number, problems)
        if found is None:  # a malformed or misspelt directive: still a directive line
            directive_lines.add(number)
            continue
        if not found:
            for e in below:
                e.line = number
            below.clear()
            continue
        directive_lines.add(number)
        for e, where in found:
            if where is None:
                e.line = number
            elif where == "unknown":
                e.line = None
            elif where == "above":
                above = next((n for n in range(number - 1, 0, -1)
                              if n not in directive_lines), None)
                if above is None:
                    problems.append(Problem(number, e.col, "'@above' has no line above it "
                                                           "that is not a directive"))
                    continue
                e.line = above
            elif where == "below":
                below.append(e)
            else:
                e.line = number + int(where)
                if e.line < 1:
                    problems.append(Problem(number, e.col, f"'@{where}' points before the "
                                                           "first line"))
                    continue
            expected.append(e)
    for e in below:
        problems.append(Problem(e.comment_line, e.col,
                                "'@below' has no line below it that is not a directive"))
        expected.remove(e)
    return expected, problems


def _parse_line(text: str, comment: int, number: int,
                problems: list[Problem]) -> list[tuple[Expected, str | None]] | None:
    """The directive of one line: [] when there is none, None when there is a broken one
    (reported in ``problems``)."""
    body = text.rstrip()
    match = _DIRECTIVE.search(body, comment)
    # Words before the directive (or in a comment without one) that look like a misspelt
    # directive are errors: upstream mlir-opt ignores them, which makes the test pass falsely.
    end = match.start() if match else len(body)
    for word in _WORD.finditer(body, comment, end):
        if word.group(0) in _DIRECTIVES or body[word.start() - 1] in "@%^#!$.":
            continue  # (a symbol, value, block or attribute name is no directive)
        after = body[word.end():].lstrip(" \t")
        suggestion = _suggest(word.group(0), after.startswith(("@", "{{")))
        if suggestion is not None:
            problems.append(Problem(number, word.start() + 1,
                                    f"unknown directive '{word.group(0)}' (did you mean "
                                    f"'{suggestion}'?)"))
            return None
    if match is None:
        return []
    col = match.start() + 1
    tail = _TAIL.match(body, match.end())
    if tail is None:
        problems.append(Problem(number, col,
                                f"malformed '{match.group(0)}': expected "
                                "'[@above|@below|@unknown|@+N|@-N] {{message}}' at the end of "
                                "the line"))
        return None
    message = tail.group("message")
    e = Expected(match.group("kind"), None, message, number, col)
    if match.group("re"):
        try:
            e.regex = _compile_regex(message)
        except ValueError as err:
            problems.append(Problem(number, col, str(err)))
            return None
    return [(e, tail.group("where"))]


def expected_diagnostics(source: str) -> list[Expected]:
    """The well-formed expectations of ``source`` (see ``parse_expectations``)."""
    return parse_expectations(source)[0]


_CURRENT_OPERATION = "see current operation:"


def verify(source: str, diags: list[Diag], filename: str, line_offset: int) -> list[str]:
    """Mismatches between the emitted ``diags`` and the expectations in ``source``, as
    ``file:line:col: error: ...`` lines (empty when everything matches)."""
    expected, problems = parse_expectations(source)
    out = [f"{filename}:{p.line + line_offset}:{p.col}: error: {p.message}" for p in problems]
    for diag in diags:
        # mlir-opt does not attach the op to diagnostics when it verifies them.
        if diag.severity == "note" and diag.message.startswith(_CURRENT_OPERATION):
            continue
        if diag.located:
            candidates = [e for e in expected if e.line == diag.line]
        else:
            candidates = [e for e in expected if e.line is None]
        text_matches = [e for e in candidates if e.match(diag.message)]
        same = [e for e in text_matches if e.severity == diag.severity]
        # An unmatched expectation first; like upstream, a matched one may absorb a repeat.
        hit = next((e for e in same if not e.matched), same[0] if same else None)
        if hit is not None:
            hit.matched = True
            continue
        if text_matches:
            near = text_matches[-1]
            out.append(f"{filename}:{near.comment_line + line_offset}:{near.col}: error: "
                       f"'{diag.severity}' diagnostic emitted when expecting a "
                       f"'{near.severity}'")
            continue
        out.append(format_diag(diag, filename, line_offset).replace(
            f" {diag.severity}: ", f" error: unexpected {diag.severity}: ", 1))
    for e in expected:
        if e.matched:
            continue
        where = "at an unknown location" if e.line is None else f"on line {e.line + line_offset}"
        hint = ""
        if e.regex is None and re.search(r"\{\{.*\}\}", e.message):
            hint = f" ('{{{{...}}}}' blocks are regular expressions only in 'expected-" \
                   f"{e.severity}-re')"
        out.append(f"{filename}:{e.comment_line + line_offset}:{e.col}: error: expected "
                   f"{e.severity} \"{e.message}\" was not produced {where}{hint}")
    return out

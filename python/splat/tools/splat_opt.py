"""splat-opt: mlir-opt for splat, over the Python bindings.

It is written in Python because splat's passes are Python passes, which a C++
``MlirOptMain`` tool could not run (and the bindings do not export it).

Like mlir-opt, it never destroys a file and fails with located diagnostics; unlike
mlir-opt, no input kills it: input and output errors are one ``splat-opt: error:`` line,
input nested deeper than ``MAX_NESTING`` is refused before MLIR's recursive parser could
overflow its stack, and ``--verify-diagnostics`` fails on misspelt directives instead of
ignoring them (docs/passes.md, "splat-opt's --verify-diagnostics").
"""

from __future__ import annotations

import argparse
import errno
import os
import stat
import sys
import tempfile
import threading
from pathlib import Path

from mlir import ir

from .. import diagnostics
from ..ir import make_context
from ..passes import describe_passes
from ..pipeline import PipelineError, build_pass_manager

_SPLIT_MARKER = "// -----"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="splat-opt",
        description="Parse, verify and transform splat/MLIR IR.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="splat passes (usable in --pass-pipeline beside every upstream pass):\n"
               + describe_passes())
    parser.add_argument("input", nargs="?", default="-", help="input .mlir file ('-' for stdin)")
    parser.add_argument("-o", dest="output", default="-", help="output file ('-' for stdout)")
    parser.add_argument("--pass-pipeline", default=None,
                        help="e.g. 'builtin.module(splat-canonicalize-patterns, canonicalize)'")
    parser.add_argument("--split-input-file", action="store_true",
                        help=f"process each chunk between '{_SPLIT_MARKER}' lines separately")
    parser.add_argument("--verify-diagnostics", action="store_true",
                        help="check diagnostics against expected-* comments")
    parser.add_argument("--mlir-print-ir-after-all", action="store_true")
    parser.add_argument("--mlir-print-ir-before-all", action="store_true")
    parser.add_argument("--mlir-print-op-generic", action="store_true")
    parser.add_argument("--mlir-print-debuginfo", action="store_true")
    return parser


def _chunks(source: str, split: bool) -> list[tuple[str, int]]:
    """(chunk text, line offset of the chunk in the file)."""
    if not split:
        return [(source, 0)]
    chunks, current, start = [], [], 0
    for index, line in enumerate(source.split("\n")):
        if line.strip() == _SPLIT_MARKER:
            chunks.append(("\n".join(current), start))
            current, start = [], index + 1
        else:
            current.append(line)
    chunks.append(("\n".join(current), start))
    return chunks


# MLIR's parser, verifier, printer and walks recurse once per nesting level (of regions,
# attributes, types, parentheses): input nested some thousands deep overflows the C++ stack
# and kills the process (upstream mlir-opt crashes the same way). splat-opt refuses input
# nested deeper than this, and runs MLIR on a thread with a large stack, so that the limit
# sits far below the depth that would crash.
MAX_NESTING = 1000
_STACK_BYTES = 512 << 20
_OPENERS, _CLOSERS = "([{<", ")]}>"


def nesting_error(source: str, limit: int = MAX_NESTING) -> tuple[int, int] | None:
    """(line, column) where ``source`` first nests brackets deeper than ``limit``, else None.
    String literals and ``//`` comments are skipped; ``->`` and ``>=`` close nothing."""
    if sum(source.count(c) for c in _OPENERS) <= limit:  # the common case, at C speed
        return None
    depth, i, n = 0, 0, len(source)
    while i < n:
        c = source[i]
        if c == '"':
            i += 1
            while i < n and source[i] != '"' and source[i] != "\n":
                i += 2 if source[i] == "\\" else 1
        elif c == "/" and source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c in _OPENERS:
            depth += 1
            if depth > limit:
                line = source.count("\n", 0, i) + 1
                return line, i - (source.rfind("\n", 0, i) + 1) + 1
        elif c in _CLOSERS:
            if c == ">" and i > 0 and source[i - 1] == "-":
                pass
            elif c == ">" and source.startswith(">=", i):
                pass
            else:
                depth = max(depth - 1, 0)
        i += 1
    return None


def _process(chunk: str, args, filename: str, line_offset: int, out: list[str]) -> bool:
    """Runs one chunk; returns True on success (or, when verifying, on a match)."""
    with make_context() as context, ir.Location.unknown():
        collector = diagnostics.Collector(context)
        module, ok = None, True
        try:
            try:
                module = ir.Module.parse(chunk)
            except ir.MLIRError as e:
                collector.add_error(e)
                ok = False
                if not any(d.severity == "error" for d in collector.diags):
                    collector.diags.append(diagnostics.Diag(
                        "error", None, None, f"could not parse the input: {e}"))
            if ok and args.pass_pipeline:
                try:
                    pm = build_pass_manager(args.pass_pipeline)
                except PipelineError as e:
                    raise _UsageError(str(e)) from None
                if args.mlir_print_ir_after_all or args.mlir_print_ir_before_all:
                    pm.enable_ir_printing(print_before_all=args.mlir_print_ir_before_all,
                                          print_after_all=args.mlir_print_ir_after_all)
                try:
                    pm.run(module.operation)
                except ir.MLIRError as e:
                    collector.add_error(e)
                    ok = False
                if not ok and not any(d.severity == "error" for d in collector.diags):
                    # a pass failed without saying why: never a silent exit 1
                    collector.diags.append(diagnostics.Diag(
                        "error", None, None, "the pass pipeline failed without a diagnostic"))
            text = _print(module, args) if ok else None
        finally:
            collector.detach()
        if args.verify_diagnostics:
            problems = diagnostics.verify(chunk, collector.diags, filename, line_offset)
            for p in problems:
                _stderr(p)
            if text is not None:
                out.append(text)
            return not problems
        for d in collector.diags:
            _stderr(diagnostics.format_diag(d, filename, line_offset))
        if text is not None:
            out.append(text)
        return ok


class _UsageError(Exception):
    """A bad command line (pipeline text, options): reported without a location."""


def _process_all(source: str, args, filename: str, outputs: list[str]) -> bool:
    ok = True
    for chunk, offset in _chunks(source, args.split_input_file):
        deep = nesting_error(chunk)
        if deep is not None:
            _stderr(f"{filename}:{deep[0] + offset}:{deep[1]}: error: input nests brackets "
                    f"more than {MAX_NESTING} levels deep (splat-opt's limit: deeper input "
                    "would overflow MLIR's stack)")
            ok = False
            continue
        ok &= _process(chunk, args, filename, offset, outputs)
    return ok


def _run_with_large_stack(function, *args):
    """``function(*args)`` on a thread with a ``_STACK_BYTES`` stack (only the pages it
    touches are used); its exception, if any, is raised here."""
    result: list = []
    failure: list[BaseException] = []

    def target():
        try:
            result.append(function(*args))
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            failure.append(e)

    previous = threading.stack_size()
    try:
        threading.stack_size(_STACK_BYTES)
        thread = threading.Thread(target=target, name="splat-opt")
    except (ValueError, RuntimeError):  # the platform refuses: run here
        return function(*args)
    finally:
        threading.stack_size(previous)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def _print(module: ir.Module, args) -> str:
    return module.operation.get_asm(print_generic_op_form=args.mlir_print_op_generic,
                                    enable_debug_info=args.mlir_print_debuginfo)


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.buffer.read().decode("utf-8")
    with open(path, "rb") as f:
        return f.read().decode("utf-8")


def _write_atomically(path: str, text: str) -> None:
    """Write ``path`` through a temporary sibling renamed into place, so that a failure never
    leaves it half written (it may be the input file).

    Only a regular file (or a new one) is replaced: a device, FIFO or socket (``/dev/null``,
    ``/dev/stdout``, a named pipe) is written in place, since renaming over it would replace
    the device node itself. A symbolic link is followed, so the link stays and its target is
    rewritten. The file keeps its permissions (a new one gets ``0666 & ~umask``, as ``open``
    would give it), not ``mkstemp``'s 0600."""
    target = Path(os.path.realpath(path))
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
        return
    if st is not None:
        mode = stat.S_IMODE(st.st_mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stderr(line: str) -> None:
    """One line on stderr; a closed or broken stderr is not worth a traceback."""
    if sys.stderr is None:  # started with stderr closed (print would fall back to stdout)
        return
    try:
        print(line, file=sys.stderr)
    except (OSError, ValueError):
        pass


def _error(message: str) -> None:
    _stderr(f"splat-opt: error: {message}")


def _reason(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__


def _write_stdout(text: str) -> None:
    stream = sys.stdout
    if stream is None:  # started with stdout closed
        raise OSError(errno.EBADF, "standard output is closed")
    stream.flush()
    stream.buffer.write(text.encode("utf-8"))
    stream.buffer.flush()


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so that the interpreter's final flush
    does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    filename = "<stdin>" if args.input == "-" else args.input
    try:
        source = _read(args.input)
    except OSError as e:
        _error(f"cannot read '{filename}': {_reason(e)}")
        return 1
    except AttributeError:  # started with stdin closed (sys.stdin is None)
        _error(f"cannot read '{filename}': standard input is closed")
        return 1
    except UnicodeDecodeError as e:
        _error(f"'{filename}' is not UTF-8 text (byte {e.start})")
        return 1
    if "\0" in source:  # MLIR's lexer takes NUL for the end of the buffer: refuse, not truncate
        at = source.index("\0")
        line = source.count("\n", 0, at) + 1
        col = at - (source.rfind("\n", 0, at) + 1) + 1
        _error(f"'{filename}' is not MLIR text: NUL byte at line {line}, column {col}")
        return 1
    outputs: list[str] = []
    ok = True
    try:
        ok = _run_with_large_stack(_process_all, source, args, filename, outputs)
    except _UsageError as e:
        _error(str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug in splat-opt or a pass: one line, unless asked for more
        if os.environ.get("SPLAT_OPT_TRACEBACK"):
            raise
        _error(f"internal error: {type(e).__name__}: {e} (set SPLAT_OPT_TRACEBACK=1 for the "
               "traceback)")
        return 2
    text = ("\n" + _SPLIT_MARKER + "\n").join(o.rstrip("\n") for o in outputs) + "\n"
    try:
        if args.output == "-":  # the chunks that succeeded, as mlir-opt prints them
            _write_stdout(text)
        elif ok:  # like mlir-opt, an output file is kept only on success
            _write_atomically(args.output, text)
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): nothing left to say, and no traceback at exit
        _silence_stdout()
        return 1
    except OSError as e:
        _error(f"cannot write '{'<stdout>' if args.output == '-' else args.output}': "
               f"{_reason(e)}")
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

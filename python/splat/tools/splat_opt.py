"""splat-opt: mlir-opt for splat, over the Python bindings.

It is written in Python because splat's passes are Python passes, which a C++
``MlirOptMain`` tool could not run (and the bindings do not export it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
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


def _process(chunk: str, args, filename: str, line_offset: int, out: list[str]) -> bool:
    """Runs one chunk; returns True on success (or, when verifying, on a match)."""
    with make_context() as context, ir.Location.unknown():
        collector = diagnostics.Collector(context)
        module, ok = None, True
        try:
            module = ir.Module.parse(chunk)
        except ir.MLIRError as e:
            for d in e.error_diagnostics:
                collector.diags.extend(diagnostics.flatten(d))
            ok = False
        if ok and args.pass_pipeline:
            try:
                pm = build_pass_manager(args.pass_pipeline)
            except PipelineError as e:
                collector.detach()
                raise SystemExit(f"splat-opt: error: {e}")
            if args.mlir_print_ir_after_all or args.mlir_print_ir_before_all:
                pm.enable_ir_printing(print_before_all=args.mlir_print_ir_before_all,
                                      print_after_all=args.mlir_print_ir_after_all)
            try:
                pm.run(module.operation)
            except ir.MLIRError as e:
                for d in e.error_diagnostics:
                    collector.diags.extend(diagnostics.flatten(d))
                ok = False
        collector.detach()
        if args.verify_diagnostics:
            problems = diagnostics.verify(chunk, collector.diags, filename, line_offset)
            for p in problems:
                print(p, file=sys.stderr)
            if module is not None and ok:
                out.append(_print(module, args))
            return not problems
        for d in collector.diags:
            print(diagnostics.format_diag(d, filename, line_offset), file=sys.stderr)
        if ok:
            out.append(_print(module, args))
        return ok


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
    leaves it half written (it may be the input file)."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    filename = "<stdin>" if args.input == "-" else args.input
    try:
        source = _read(args.input)
    except OSError as e:
        print(f"splat-opt: error: cannot read '{filename}': {e.strerror}", file=sys.stderr)
        return 1
    except UnicodeDecodeError as e:
        print(f"splat-opt: error: '{filename}' is not UTF-8 text (byte {e.start})",
              file=sys.stderr)
        return 1
    outputs: list[str] = []
    ok = True
    for chunk, offset in _chunks(source, args.split_input_file):
        ok &= _process(chunk, args, filename, offset, outputs)
    text = ("\n" + _SPLIT_MARKER + "\n").join(o.rstrip("\n") for o in outputs) + "\n"
    try:
        if args.output == "-":  # the chunks that succeeded, as mlir-opt prints them
            sys.stdout.write(text)
            sys.stdout.flush()
        elif ok:  # like mlir-opt, an output file is kept only on success
            _write_atomically(args.output, text)
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): nothing left to say, and no traceback at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:
        print(f"splat-opt: error: cannot write '{args.output}': {e.strerror}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

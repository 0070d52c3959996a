"""Extract the PTX of every `gpu.binary` in an MLIR file (for lit and ptxas).

    splat-opt x.mlir --pass-pipeline=... | python -m splat.tools.extract_ptx -o x.ptx
"""

from __future__ import annotations

import argparse
import sys

from mlir import ir
from mlir.dialects import gpu

from ..ir import make_context


def binaries_ptx(module: ir.Module) -> dict[str, str]:
    """{binary symbol name: PTX text} for every gpu.binary of ``module``."""
    found = {}
    for op in module.body.operations:
        if op.operation.name != "gpu.binary":
            continue
        name = ir.StringAttr(op.attributes["sym_name"]).value
        obj = gpu.ObjectAttr(ir.ArrayAttr(op.attributes["objects"])[0])
        found[name] = obj.object.decode() if isinstance(obj.object, bytes) else obj.object
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", default="-")
    parser.add_argument("-o", dest="output", default="-")
    args = parser.parse_args(argv)
    source = sys.stdin.read() if args.input == "-" else open(args.input).read()
    with make_context():
        try:
            ptx = binaries_ptx(ir.Module.parse(source))
        except ir.MLIRError as e:
            print(f"extract_ptx: error: {e}", file=sys.stderr)
            return 1
    if not ptx:
        print("extract_ptx: error: no gpu.binary in the input", file=sys.stderr)
        return 1
    text = "\n".join(ptx.values())
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

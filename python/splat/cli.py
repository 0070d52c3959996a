"""The `splat` command: small user-facing tools (`splat viz ...`)."""

from __future__ import annotations

import sys

_COMMANDS = {
    "viz": ("splat.viz", "draw a pattern's mask, one colour per ACSR piece"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in _COMMANDS:
        print("usage: splat COMMAND [ARGS]\n\ncommands:", file=sys.stderr)
        for name, (_, help_text) in _COMMANDS.items():
            print(f"  {name:8s} {help_text}", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module_name, _ = _COMMANDS[argv[0]]
    module = __import__(module_name, fromlist=["main"])
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())

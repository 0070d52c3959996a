"""Fuzz splat-opt with mutated IR text (issue 11).

Seeds are the IR chunks of ``tests/lit/**/*.mlir`` and ``tests/corpus/ir/*.mlir``; each input
is a seed with one to four mutations (byte flips, token deletions and duplications, number
changes including huge and negative values, truncation, attribute-parameter swaps, deep
nesting, splices from other seeds), run through one of several pipelines (parse only, each
splat pass, the whole ``splat-to-ptx``); one input in ten keeps the seed's comments and runs
with ``--verify-diagnostics``, which fuzzes the expectation parser too.

The inputs run in worker processes (``--worker``), each of which runs ``splat-opt``'s
``main`` in-process on one input after another and answers one JSON line per input, so that
the ~0.4 s start-up is paid once per worker; a worker that dies (abort, segfault) or hangs is
replaced, and the input it was running is the culprit. Findings:

* ``crash``: the process died from a signal or exited 134/139 (LLVM abort, segfault);
* ``traceback``: a Python exception escaped splat-opt;
* ``internal``: splat-opt exited 2 (an internal error it caught);
* ``timeout``: an input ran longer than ``--timeout`` seconds;
* ``unlocated``: a failure reported without ``file:line:col`` (a pass failure at ``0:0``);
* ``pass-bug``: a located ``internal error`` (an exception a pass did not foresee).

``python scripts/fuzz_ir.py -n 10000 -j 2`` prints a summary; ``--save DIR`` writes each
finding's input there. ``tests/unit/test_ir_fuzz.py`` drives the same workers from
hypothesis with a small budget.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPLIT = "// -----"

PIPELINES = {
    "parse": None,
    "canonicalize": "builtin.module(splat-canonicalize-patterns)",
    "analyze": "builtin.module(splat-analyze-regularity)",
    "tile": "builtin.module(splat-tile-acsr)",
    "analyze-tile": "builtin.module(splat-analyze-regularity, splat-tile-acsr)",
    "lower": "builtin.module(splat-lower-to-gpu)",
    "analyze-tile-lower": ("builtin.module(splat-analyze-regularity, splat-tile-acsr, "
                           "splat-lower-to-gpu)"),
    "to-ptx": "builtin.module(splat-to-ptx)",
}
# how often each pipeline is drawn (the whole compiler is the slowest)
WEIGHTS = {"parse": 3, "canonicalize": 1, "analyze": 3, "tile": 1, "analyze-tile": 2,
           "lower": 1, "analyze-tile-lower": 2, "to-ptx": 1}


# --------------------------------------------------------------------------------------
# Seeds and mutations

def _strip_comments(chunk: str) -> str:
    lines = [ln for ln in chunk.split("\n") if not ln.lstrip().startswith("//")]
    return "\n".join(lines).strip() + "\n"


def seeds(valid_only: bool = False, keep_comments: bool = False) -> list[str]:
    """The IR chunks of the lit tests and of the corpus, comment lines removed unless
    ``keep_comments`` (with ``valid_only``, those of the lit files not named ``*invalid*``)."""
    found: list[str] = []
    files = sorted((ROOT / "tests" / "lit").rglob("*.mlir"))
    if not valid_only:
        files += sorted((ROOT / "tests" / "corpus" / "ir").glob("*.mlir"))
    for path in files:
        if valid_only and "invalid" in path.name:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for chunk in re.split(r"(?m)^// -----\s*$", text):
            chunk = chunk.strip() + "\n" if keep_comments else _strip_comments(chunk)
            if chunk.strip() and len(chunk) < 20000 and chunk not in found:
                found.append(chunk)
    return found


_TOKEN = re.compile(r"[A-Za-z_][\w.$-]*|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\s+|.", re.S)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_SPLAT_ATTR = re.compile(r"#splat\.(\w+)<")
_PARAM = re.compile(r"(\w+)\s*=\s*(-?[\w.+-]+|\[[^\[\]]*\])")
_INTERESTING_NUMBERS = [
    "0", "1", "-1", "2", "3", "7", "63", "64", "65", "127", "128", "255", "256", "1023",
    "1024", "4096", "65536", "2147483647", "2147483648", "-2147483648", "4294967295",
    "4294967296", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
    "18446744073709551615", "18446744073709551616", "99999999999999999999999999999",
    "-99999999999999999999999999999", "1" + "0" * 80, "0x7fffffff", "1.5", "-0.0", "1e308",
    "1e400", "-1e-400", "nan", "inf", "0.0",
]
_INTERESTING_CHARS = list("{}<>()[],:=%#@!^\"\\-+.0123456789 \n\tx") + [
    "\u00e9", "\u202e", "\U0001F600", "\x7f", "\x01"]
_SPLAT_FAMILIES = ["window", "causal_window", "dilated", "strided", "fixed", "blocked",
                   "global_tokens", "random_blocks", "union", "intersect", "acsr",
                   "tile_schedule", "nope"]


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def m_char(text: str, rng: random.Random) -> str:
    """Flip, insert or delete one character."""
    if not text:
        return rng.choice(_INTERESTING_CHARS)
    i = rng.randrange(len(text))
    action = rng.randrange(4)
    if action == 0:
        return text[:i] + text[i + 1:]
    if action == 1:
        return text[:i] + rng.choice(_INTERESTING_CHARS) + text[i:]
    if action == 2:  # flip a bit of an ASCII character
        flipped = chr(ord(text[i]) ^ (1 << rng.randrange(7))) if ord(text[i]) < 128 else "?"
        return text[:i] + flipped + text[i + 1:]
    return text[:i] + rng.choice(_INTERESTING_CHARS) + text[i + 1:]


def m_token_delete(text: str, rng: random.Random) -> str:
    toks = _tokens(text)
    if not toks:
        return text
    i = rng.randrange(len(toks))
    n = rng.choice([1, 1, 1, 2, 3, 5])
    return "".join(toks[:i] + toks[i + n:])


def m_token_duplicate(text: str, rng: random.Random) -> str:
    toks = _tokens(text)
    if not toks:
        return text
    i = rng.randrange(len(toks))
    n = rng.choice([1, 1, 2, 4])
    times = rng.choice([1, 1, 2, 10])
    return "".join(toks[:i + n] + toks[i:i + n] * times + toks[i + n:])


# Sizes between these bounds pass the int32 checks but make the analysis and the tiler
# work for seconds to minutes (issue 11: sizes are to be checked up front); a bounded run
# (the CI test) moves such values past int32, where they are refused at once.
SLOW_SIZES = (20_000, 2**31 - 1)


def m_number(text: str, rng: random.Random, slow_sizes: bool = True) -> str:
    numbers = list(_NUMBER.finditer(text))
    if not numbers:
        return text
    m = rng.choice(numbers)
    choice = rng.randrange(4)
    if choice == 0:
        new = rng.choice(_INTERESTING_NUMBERS)
    elif choice == 1:
        new = str(-abs(int(float(m.group(0))) if _is_int(m.group(0)) else 1) - rng.randrange(3))
    elif choice == 2:
        new = str(rng.choice([2, 10, 16]) ** rng.randrange(1, 70))
    else:
        new = str(rng.randrange(-5, 300))
    if not slow_sizes and _is_int(new) and SLOW_SIZES[0] <= int(new) <= SLOW_SIZES[1]:
        new = str(int(new) + 2**31)
    return text[:m.start()] + new + text[m.end():]


def m_number_bounded(text: str, rng: random.Random) -> str:
    return m_number(text, rng, slow_sizes=False)


def m_number_everywhere(text: str, rng: random.Random, slow_sizes: bool = True) -> str:
    """Change every occurrence of one number (in ``8x64`` too), so that the types of a value's
    uses stay consistent and the input still parses: this one reaches the passes."""
    found = sorted(set(re.findall(r"(?<![\w.#%@-])\d+(?![\w.])|(?<=x)\d+(?=x)|\d+(?=x)",
                                  text)))
    if not found:
        return text
    old = rng.choice(found)
    new = rng.choice([str(rng.randrange(0, 300)), rng.choice(_INTERESTING_NUMBERS[:24]),
                      str(int(old) * rng.choice([2, 3, 4])), str(max(int(old) // 2, 0))])
    if not slow_sizes and _is_int(new) and SLOW_SIZES[0] <= int(new) <= SLOW_SIZES[1]:
        new = str(int(new) + 2**31)
    return re.sub(rf"(?<![\w.]){old}(?![\w.])|(?<=x){old}(?=x)|(?<![\w.]){old}(?=x)|"
                  rf"(?<=x){old}(?![\w.])", new, text)


def m_number_everywhere_bounded(text: str, rng: random.Random) -> str:
    return m_number_everywhere(text, rng, slow_sizes=False)


def _is_int(s: str) -> bool:
    return re.fullmatch(r"-?\d+", s) is not None


def m_truncate(text: str, rng: random.Random) -> str:
    return text[:rng.randrange(len(text) + 1)]


def m_attr_params(text: str, rng: random.Random) -> str:
    """Swap two parameter values, rename a parameter, drop one, or change the family."""
    params = list(_PARAM.finditer(text))
    action = rng.randrange(5)
    if action == 0 and len(params) >= 2:
        a, b = sorted(rng.sample(params, 2), key=lambda m: m.start())
        return (text[:a.start(2)] + b.group(2) + text[a.end(2):b.start(2)] + a.group(2)
                + text[b.end(2):])
    if action == 1 and len(params) >= 2:
        a, b = sorted(rng.sample(params, 2), key=lambda m: m.start())
        return (text[:a.start(1)] + b.group(1) + text[a.end(1):b.start(1)] + a.group(1)
                + text[b.end(1):])
    if action == 2 and params:
        m = rng.choice(params)
        end = m.end()
        if text[end:end + 1] == ",":
            end += 1
        return text[:m.start()] + text[end:]
    if action == 3 and params:
        m = rng.choice(params)
        return text[:m.end()] + ", " + m.group(0) + text[m.end():]
    families = list(_SPLAT_ATTR.finditer(text))
    if not families:
        return text
    m = rng.choice(families)
    return text[:m.start(1)] + rng.choice(_SPLAT_FAMILIES) + text[m.end(1):]


def m_nest(text: str, rng: random.Random) -> str:
    """Wrap a layout in nested unions/intersections (deep nesting stresses recursion)."""
    m = re.search(r"layout\((#splat\..*?>)\)", text)
    if not m:
        return text
    depth = rng.choice([2, 5, 20, 100, 1000])
    inner = m.group(1)
    for _ in range(depth):
        inner = f"#splat.{rng.choice(['union', 'intersect'])}<[{inner}]>"
    return text[:m.start(1)] + inner + text[m.end(1):]


def m_splice(text: str, rng: random.Random, pool: list[str]) -> str:
    """Replace a line with a line of another seed."""
    other = rng.choice(pool).split("\n")
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    lines[i] = rng.choice(other)
    return "\n".join(lines)


def m_line(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    if rng.random() < 0.5:
        del lines[i]
    else:
        lines.insert(i, lines[i])
    return "\n".join(lines)


MUTATORS = [m_char, m_token_delete, m_token_duplicate, m_number, m_number, m_truncate,
            m_attr_params, m_attr_params, m_nest, m_line, m_number_everywhere,
            m_number_everywhere, m_number_everywhere]


_BOUNDED = {m_number: m_number_bounded, m_number_everywhere: m_number_everywhere_bounded}


def mutate(seed: str, rng: random.Random, pool: list[str], count: int | None = None,
           slow_sizes: bool = False) -> str:
    """One to three mutations of ``seed``. Without ``slow_sizes``, sizes in ``SLOW_SIZES``
    are moved past int32 (they are a known issue: minutes and gigabytes in the analysis and
    the tiler, until sizes are checked up front)."""
    text = seed
    for _ in range(count if count is not None else rng.choice([1, 1, 1, 2, 3])):
        if rng.random() < 0.08:
            text = m_splice(text, rng, pool)
        else:
            mutator = rng.choice(MUTATORS)
            text = (mutator if slow_sizes else _BOUNDED.get(mutator, mutator))(text, rng)
    if rng.random() < 0.03:  # an occasional split file
        text = (text + "\n" + SPLIT + "\n"
                + mutate(rng.choice(pool), rng, pool, 1, slow_sizes=slow_sizes))
    return text


def make_case(index: int, seed: int, pool: list[str], valid: list[str] | None = None,
              commented: list[str] | None = None,
              slow_sizes: bool = False) -> tuple[str, str, tuple[str, ...]]:
    """(text, pipeline name, extra flags) of input ``index`` of a run with ``seed``
    (deterministic). Seven inputs in ten start from a ``valid`` seed, so that more of them
    reach the passes; one in ten keeps its comments (``expected-*`` directives included) and
    runs with ``--verify-diagnostics``."""
    rng = random.Random(seed * 1_000_003 + index)
    verify = bool(commented) and rng.random() < 0.1
    if verify:
        start = rng.choice(commented)
    else:
        start = rng.choice(valid if valid and rng.random() < 0.7 else pool)
    text = mutate(start, rng, pool, slow_sizes=slow_sizes)
    names = list(WEIGHTS)
    pipeline = rng.choices(names, weights=[WEIGHTS[n] for n in names])[0]
    return text, pipeline, case_args(text) + (("--verify-diagnostics",) if verify else ())


def case_args(text: str) -> tuple[str, ...]:
    """splat-opt flags for an input: split files are split."""
    return ("--split-input-file",) if SPLIT in text else ()


# --------------------------------------------------------------------------------------
# The worker: splat-opt's main, in-process, one input after another

def _worker_main() -> int:
    import contextlib
    import io
    import resource
    import traceback

    limit = int(os.environ.get("SPLAT_FUZZ_MEMORY_MB", "6000")) << 20
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError):
        pass
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing but answers on the protocol stream
    sys.stdout = open(os.devnull, "w")
    os.environ["SPLAT_OPT_TRACEBACK"] = "1"  # internal errors escape main: we report them
    for attempt in range(20):  # the dialect library may be being rebuilt for a few seconds
        try:
            from splat.tools import splat_opt
            from splat.ir import make_context
            make_context()
            break
        except Exception:
            if attempt == 19:
                raise
            time.sleep(1.0)
    work = Path(os.environ.get("SPLAT_FUZZ_DIR") or tempfile.mkdtemp(prefix="splat-fuzz-"))
    src, out = work / "input.mlir", work / "output.mlir"
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        src.write_bytes(request["text"].encode("utf-8", "surrogatepass"))
        args = [str(src), "-o", str(out)] + list(request.get("args", []))
        if request.get("pipeline"):
            args.append(f"--pass-pipeline={request['pipeline']}")
        err = io.StringIO()
        start = time.monotonic()
        tb = None
        with contextlib.redirect_stderr(err):
            try:
                rc = splat_opt.main(args)
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else 1
            except BaseException:  # noqa: BLE001 - that is the finding
                tb = traceback.format_exc()
                rc = -1000
        text = err.getvalue()
        protocol.write(json.dumps({"rc": rc, "stderr": text[-4000:], "traceback": tb,
                                   "secs": time.monotonic() - start}) + "\n")
    return 0


@dataclass
class Result:
    kind: str               # ok, error, crash, traceback, internal, timeout, unlocated
    rc: int | None
    stderr: str
    secs: float = 0.0


_LOCATED = re.compile(r"^\S.*?:\d+:(\d+:)? (error|warning|note|remark): ", re.M)
_UNLOCATED = re.compile(r"^(?!splat-opt: )\S[^\n]*?(?::0:0:|: )(error): ", re.M)


def classify(rc: int | None, stderr: str, traceback: str | None = None) -> str:
    if traceback or "Traceback (most recent call last)" in stderr:
        return "traceback"
    if rc is None:
        return "timeout"
    if rc < 0 or rc in (134, 139) or rc > 2:
        return "crash"
    if rc == 2:
        return "internal"
    if rc == 0:
        return "ok"
    if ": internal error: " in stderr:  # a located error, but a bug in a pass
        return "pass-bug"
    for line in stderr.splitlines():
        if line.startswith("splat-opt: error:"):
            continue
        if re.match(r"^.*?:0:0: error: ", line) or re.match(r"^[^:\s]+: error: ", line):
            return "unlocated"
    return "error"


class Worker:
    """A ``fuzz_ir.py --worker`` process; ``run`` sends one input and waits for the answer,
    restarting the worker when it died or hung."""

    def __init__(self, timeout: float = 60.0, max_inputs: int = 1000):
        self.timeout = timeout
        self.max_inputs = max_inputs  # a fresh process now and then bounds any slow leak
        self.proc: subprocess.Popen | None = None
        self.err_file = None
        self.served = 0

    def _start(self) -> None:
        self.err_file = tempfile.TemporaryFile()
        self.work_dir = tempfile.mkdtemp(prefix="splat-fuzz-")  # removed by close()
        env = dict(os.environ, SPLAT_FUZZ_DIR=self.work_dir)
        env.setdefault("PYTHONFAULTHANDLER", "")
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err_file, env=env, cwd=str(ROOT))
        ready = self._read_line(120.0)
        if ready is None:
            raise RuntimeError("fuzz worker did not start: " + self._stderr_tail())

    def _read_line(self, timeout: float) -> dict | None:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        if not line:
            return None
        return json.loads(line)

    def _stderr_tail(self) -> str:
        if self.err_file is None:
            return ""
        self.err_file.seek(0)
        return self.err_file.read()[-4000:].decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.kill()
            except OSError:
                pass
            self.proc.wait()
            self.proc = None
        if self.err_file is not None:
            self.err_file.close()
            self.err_file = None
        if getattr(self, "work_dir", None):
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    def run(self, text: str, pipeline: str | None, args: tuple[str, ...] = ()) -> Result:
        if self.proc is None or self.proc.poll() is not None or self.served >= self.max_inputs:
            self.close()
            self._start()
            self.served = 0
        self.served += 1
        assert self.proc is not None and self.proc.stdin is not None
        request = json.dumps({"text": text, "pipeline": pipeline, "args": list(args)}) + "\n"
        start = time.monotonic()
        try:
            self.proc.stdin.write(request.encode("utf-8", "surrogatepass"))
            self.proc.stdin.flush()
            answer = self._read_line(self.timeout)
        except (BrokenPipeError, OSError):
            answer = None
        if answer is not None:
            kind = classify(answer["rc"], answer["stderr"], answer.get("traceback"))
            return Result(kind, answer["rc"], answer.get("traceback") or answer["stderr"],
                          answer["secs"])
        # died or hung: find out which, and start afresh for the next input
        secs = time.monotonic() - start
        rc = self.proc.poll()
        if rc is None:
            self.close()
            return Result("timeout", None, "", secs)
        tail = self._stderr_tail()
        self.close()
        return Result("crash", rc, tail, secs)


# --------------------------------------------------------------------------------------
# The campaign

@dataclass
class Summary:
    counts: collections.Counter = field(default_factory=collections.Counter)
    by_pipeline: dict = field(default_factory=lambda: collections.defaultdict(collections.Counter))
    findings: list = field(default_factory=list)
    secs: float = 0.0
    reached: collections.Counter = field(default_factory=collections.Counter)

    def add(self, index: int, text: str, pipeline: str, result: Result,
            flags: tuple[str, ...] = ()) -> None:
        self.counts[result.kind] += 1
        if "--verify-diagnostics" in flags:
            self.reached["verify-diagnostics runs"] += 1
        if result.kind == "error" and re.search(r": error: splat-[a-z-]+: ", result.stderr):
            self.reached["failures reported by a splat pass"] += 1
        self.by_pipeline[pipeline][result.kind] += 1
        if result.kind not in ("ok", "error"):
            self.findings.append((index, pipeline, result, text))

    def text(self) -> str:
        total = sum(self.counts.values())
        lines = [f"fuzz_ir: {total} mutated inputs in {self.secs:.0f} s "
                 f"({total / max(self.secs, 1e-9):.1f}/s)"]
        lines.append("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())))
        lines.append("  of which: " + ", ".join(f"{k} {v}" for k, v in sorted(self.reached.items())))
        for name in PIPELINES:
            if name in self.by_pipeline:
                c = self.by_pipeline[name]
                lines.append(f"  {name:20s} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
        bad = [f for f in self.findings if f[2].kind in ("crash", "traceback", "internal")]
        lines.append(f"  crashes (signal/134/139): {self.counts['crash']}, tracebacks: "
                     f"{self.counts['traceback']}, internal errors: {self.counts['internal']}, "
                     f"timeouts: {self.counts['timeout']}, unlocated failures: "
                     f"{self.counts['unlocated']}, pass bugs: {self.counts['pass-bug']}")
        for index, pipeline, result, _ in self.findings[:20]:
            first = next((ln for ln in result.stderr.splitlines() if ln.strip()), "")
            lines.append(f"  #{index} [{pipeline}] {result.kind} rc={result.rc}: {first[:160]}")
        if not bad:
            lines.append("  no crash, no traceback")
        return "\n".join(lines)


def campaign(n: int, seed: int, jobs: int, timeout: float, save: Path | None,
             progress: bool, slow_sizes: bool = False) -> Summary:
    pool, valid, commented = seeds(), seeds(valid_only=True), seeds(keep_comments=True)
    summary = Summary()
    lock = threading.Lock()
    next_index = [0]
    start = time.monotonic()

    def work() -> None:
        worker = Worker(timeout)
        try:
            while True:
                with lock:
                    index = next_index[0]
                    if index >= n:
                        return
                    next_index[0] += 1
                text, name, flags = make_case(index, seed, pool, valid, commented,
                                              slow_sizes)
                result = worker.run(text, PIPELINES[name], flags)
                with lock:
                    summary.add(index, text, name, result, flags)
                    done = sum(summary.counts.values())
                    if progress and done % 500 == 0:
                        print(f"  ... {done}/{n} ({time.monotonic() - start:.0f} s) "
                              + dict(summary.counts).__repr__(), file=sys.stderr, flush=True)
                if save is not None and result.kind not in ("ok", "error"):
                    save.mkdir(parents=True, exist_ok=True)
                    said = "".join(f"// | {ln}\n" for ln in result.stderr.splitlines()[-20:])
                    (save / f"{result.kind}-{seed}-{index}-{name}.mlir").write_text(
                        f"// pipeline: {PIPELINES[name]}\n// {result.kind} rc={result.rc}\n"
                        + said + text, encoding="utf-8")
        finally:
            worker.close()

    threads = [threading.Thread(target=work) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    summary.secs = time.monotonic() - start
    return summary


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--worker"]:
        return _worker_main()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10000, help="number of mutated inputs")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per input")
    parser.add_argument("--save", type=Path, default=None, help="write findings here")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--slow-sizes", action="store_true",
                        help=f"also use sizes in {SLOW_SIZES} (minutes and gigabytes in the "
                             "analysis and the tiler until sizes are checked up front)")
    args = parser.parse_args(argv)
    summary = campaign(args.n, args.seed, args.jobs, args.timeout, args.save, not args.quiet,
                       args.slow_sizes)
    print(summary.text())
    if not args.slow_sizes:
        print(f"  (sizes in [{SLOW_SIZES[0]}, {SLOW_SIZES[1]}] were moved past int32; "
              "--slow-sizes keeps them)")
    return 1 if any(summary.counts[k] for k in ("crash", "traceback", "internal")) else 0


if __name__ == "__main__":
    sys.exit(main())

"""The splat-opt command line, run as a user would run it."""

import subprocess
import sys

OK = """func.func @f(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 2>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %o : tensor<1x1x8x16xf16>
}
"""


def splat_opt(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "splat.tools.splat_opt", *args],
                          input=stdin, capture_output=True, text=True)


def test_round_trip_from_stdin():
    result = splat_opt(stdin=OK)
    assert result.returncode == 0, result.stderr
    assert "layout(#splat.window<w = 2>)" in result.stdout


def test_parse_error_is_file_line_col_without_traceback(tmp_path):
    bad = tmp_path / "bad.mlir"
    bad.write_text(OK.replace("w = 2", "w = -2"))
    result = splat_opt(str(bad))
    assert result.returncode == 1
    assert f"{bad}:2:" in result.stderr
    assert "error: 'window' parameter 'w' must be >= 0, got -2" in result.stderr
    assert "Traceback" not in result.stderr


def test_split_input_file_reports_lines_of_the_whole_file(tmp_path):
    src = tmp_path / "two.mlir"
    src.write_text(OK + "// -----\n" + OK.replace("w = 2", "w = -1"))
    result = splat_opt(str(src), "--split-input-file")
    assert result.returncode == 1
    assert f"{src}:7:" in result.stderr
    assert result.stdout.count("splat.attention") == 1


def test_verify_diagnostics_reports_missing_and_unexpected(tmp_path):
    src = tmp_path / "v.mlir"
    src.write_text("// expected-error @+2 {{something else}}\n" + OK.replace("w = 2", "w = -1"))
    result = splat_opt(str(src), "--verify-diagnostics")
    assert result.returncode == 1
    assert "unexpected error" in result.stderr
    assert 'expected error "something else" was not produced' in result.stderr


def test_output_file_and_ir_printing(tmp_path):
    out = tmp_path / "out.mlir"
    result = splat_opt("-o", str(out), "--mlir-print-ir-after-all",
                       "--pass-pipeline=builtin.module(splat-canonicalize-patterns)", stdin=OK)
    assert result.returncode == 0, result.stderr
    assert "IR Dump After" in result.stderr and "splat-canonicalize-patterns" in result.stderr
    assert "splat.attention" in out.read_text()


def test_help_lists_splat_passes_with_options():
    result = splat_opt("--help")
    assert result.returncode == 0
    assert "splat-canonicalize-patterns" in result.stdout


def test_bad_pipeline_and_missing_file_are_clean_errors(tmp_path):
    result = splat_opt("--pass-pipeline=builtin.module(nope)", stdin=OK)
    assert result.returncode != 0 and "'nope' does not refer to a registered pass" in result.stderr
    result = splat_opt(str(tmp_path / "missing.mlir"))
    assert result.returncode == 1 and "cannot read" in result.stderr
    assert "Traceback" not in result.stderr


import pytest  # noqa: E402


@pytest.mark.parametrize("option, message", [
    ("chip=garbage", "chip must be one of sm_80, sm_86, sm_89, sm_90, sm_90a"),
    ("chip=sm_75", "chip must be one of"),
    ("opt-level=99", "opt-level must be one of 0, 1, 2, 3"),
    ("features=+ptx99", "features must be one of"),
    ("block-n=48", "block-n must be one of"),
])
def test_bad_target_options_are_refused_before_llvm(option, message):
    """These used to abort the process inside LLVM (exit 134)."""
    result = splat_opt(f"--pass-pipeline=builtin.module(splat-to-ptx{{{option}}})", stdin=OK)
    assert result.returncode == 1, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr


def test_failure_leaves_the_output_file_untouched(tmp_path):
    bad = tmp_path / "bad.mlir"
    bad.write_text("func.func @f( {\n")
    result = splat_opt(str(bad), "-o", str(bad))  # the input is the output
    assert result.returncode == 1 and "error:" in result.stderr
    assert bad.read_text() == "func.func @f( {\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mlir"]  # no temporary left


def test_output_is_written_only_on_success(tmp_path):
    out = tmp_path / "out.mlir"
    assert splat_opt("-o", str(out), stdin=OK).returncode == 0
    assert "splat.attention" in out.read_text()


@pytest.mark.parametrize("data, message", [(b"\xff\xfe\x00", "is not UTF-8 text"),
                                           (b"module {}\n\x80", "is not UTF-8 text")])
def test_binary_input_is_an_error_not_a_traceback(tmp_path, data, message):
    src = tmp_path / "bin.mlir"
    src.write_bytes(data)
    result = splat_opt(str(src))
    assert result.returncode == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_output_is_an_error_not_a_traceback(tmp_path):
    result = splat_opt("-o", str(tmp_path / "missing" / "x.mlir"), stdin=OK)
    assert result.returncode == 1 and "cannot write" in result.stderr
    assert "Traceback" not in result.stderr


# --- input and output errors are one line, never a traceback (issue 11) ---------------

def _clean_failure(result, message):
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_directory_as_input_or_output(tmp_path):
    _clean_failure(splat_opt(str(tmp_path)), "cannot read")
    _clean_failure(splat_opt("-o", str(tmp_path), stdin=OK), "cannot write")
    assert list(tmp_path.iterdir()) == []  # no temporary left behind


def test_nul_byte_is_refused_not_truncated(tmp_path):
    src = tmp_path / "nul.mlir"
    src.write_bytes(OK.encode().replace(b"return", b"\0return"))
    _clean_failure(splat_opt(str(src)), "NUL byte at line 3, column 3")


def test_closed_stdin_and_stdout(tmp_path):
    src = tmp_path / "ok.mlir"
    src.write_text(OK)
    command = f"'{sys.executable}' -m splat.tools.splat_opt"
    closed_out = subprocess.run(f"{command} '{src}' >&-", shell=True, capture_output=True,
                                text=True)
    _clean_failure(closed_out, "standard output is closed")
    closed_in = subprocess.run(f"{command} <&-", shell=True, capture_output=True, text=True)
    _clean_failure(closed_in, "standard input is closed")


def test_reader_gone_is_quiet(tmp_path):
    src = tmp_path / "ok.mlir"
    src.write_text(OK)
    proc = subprocess.Popen([sys.executable, "-m", "splat.tools.splat_opt", str(src)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader goes away before anything is written
    stderr = proc.stderr.read().decode()
    assert proc.wait() == 1 and "Traceback" not in stderr, stderr


def test_output_to_a_fifo_symlink_keeps_them(tmp_path):
    """`-o /dev/null` used to rename a temporary over the device node, so /dev/null became a
    regular file; special files are now written in place, and links are followed."""
    import os
    import threading
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    result = splat_opt("-o", str(fifo), stdin=OK)
    reader.join(60)
    assert result.returncode == 0, result.stderr
    assert fifo.is_fifo() and "splat.attention" in received[0]
    target = tmp_path / "target.mlir"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.mlir"
    link.symlink_to(target)
    assert splat_opt("-o", str(link), stdin=OK).returncode == 0
    assert link.is_symlink() and "splat.attention" in target.read_text()
    assert (target.stat().st_mode & 0o777) == 0o640  # the file keeps its permissions


def test_new_output_file_gets_the_umask_permissions(tmp_path):
    out = tmp_path / "new.mlir"
    assert splat_opt("-o", str(out), stdin=OK).returncode == 0
    import os
    umask = os.umask(0)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_deeply_nested_input_is_an_error_not_a_segfault(tmp_path):
    """Upstream MLIR's parser recurses per level: 20 000 nested arrays overflow its stack."""
    src = tmp_path / "deep.mlir"
    src.write_text("func.func @f() attributes {a = " + "[" * 20000 + "]" * 20000 + "} {\n"
                   "  return\n}\n")
    _clean_failure(splat_opt(str(src)), f"{src}:1:1031: error: input nests brackets more than "
                                        "1000 levels deep")


def test_pass_failures_point_at_the_op_never_0_0():
    result = splat_opt("--pass-pipeline=builtin.module(splat-analyze-regularity, "
                       "splat-tile-acsr{tile-order=bogus})", stdin=OK)
    _clean_failure(result, "<stdin>:2:8: error: splat-tile-acsr: tile-order must be")
    # no op to apply to: the first located op, still not 0:0
    result = splat_opt("--pass-pipeline=builtin.module(splat-tile-acsr{plan=bogus})",
                       stdin="func.func @g() {\n  return\n}\n")
    _clean_failure(result, "<stdin>:1:1: error: splat-tile-acsr: plan must be one of")
    assert ":0:0:" not in result.stderr


def test_bad_tensor_core_options_are_errors():
    """The lowering's instruction is one of abi.MMA_KINDS, and wgmma needs sm_90a."""
    result = splat_opt("--pass-pipeline=builtin.module(splat-analyze-regularity, splat-tile-acsr, "
                       "splat-lower-to-gpu{mma=hmma})", stdin=OK)
    _clean_failure(result, "<stdin>:1:1: error: splat-lower-to-gpu: option 'mma' must be one of "
                           "auto, mma_sync, wgmma; got 'hmma'")
    result = splat_opt("--pass-pipeline=builtin.module(splat-to-ptx{chip=sm_90 mma=wgmma})",
                       stdin=OK)
    _clean_failure(result, "splat-opt: error: mma wgmma needs chip sm_90a; got chip sm_90")


def test_a_tampered_kernel_attribute_is_a_located_error():
    """splat-tile-acsr's chosen build (the op's ``kernel``) is checked by the lowering before it
    is built from: an unknown instruction or a non-dictionary is an error at the op."""
    src = OK.replace("1x1x8x16xf16", "1x1x256x64xbf16")
    tiled = splat_opt("--pass-pipeline=builtin.module(splat-analyze-regularity, "
                      "splat-tile-acsr{block-m=0})", stdin=src)
    assert tiled.returncode == 0, tiled.stderr
    assert 'kernel = {kv_loads = "compute", mma = "mma_sync"' in tiled.stdout
    lower = "--pass-pipeline=builtin.module(splat-lower-to-gpu)"
    assert splat_opt(lower, stdin=tiled.stdout).returncode == 0
    bad = tiled.stdout.replace('mma = "mma_sync"', 'mma = "hmma"')
    _clean_failure(splat_opt(lower, stdin=bad), "<stdin>:3:10: error: splat-lower-to-gpu: 'kernel' names no "
                                                "kernel build: mma 'hmma'")
    import re
    not_a_dict = re.sub(r"kernel = \{[^}]*\}", "kernel = 3 : i64", tiled.stdout)
    _clean_failure(splat_opt(lower, stdin=not_a_dict), "error: splat-lower-to-gpu: 'kernel' must "
                                                       "be {mma =")

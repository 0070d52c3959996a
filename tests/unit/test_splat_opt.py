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
    ("chip=garbage", "chip must be one of sm_90, sm_90a"),
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

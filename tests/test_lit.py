"""Runs the lit/FileCheck suite (tests/lit) as part of pytest."""

import subprocess
import sys
from pathlib import Path


def test_lit_suite():
    lit_dir = Path(__file__).parent / "lit"
    # lit's console entry point, run by this interpreter (lit has no __main__).
    runner = "import sys; from lit.main import main; sys.exit(main())"
    result = subprocess.run([sys.executable, "-c", runner, "-q", "-v", str(lit_dir)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

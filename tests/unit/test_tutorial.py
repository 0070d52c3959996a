"""docs/tutorial.md is executable: its python blocks run in order."""

import re
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).parents[2] / "docs" / "tutorial.md"


def _blocks(gpu: bool):
    text = TUTORIAL.read_text()
    for tag, code in re.findall(r"```python( gpu)?\n(.*?)```", text, re.S):
        if bool(tag) == gpu or not tag:
            yield code


def test_tutorial_runs(capsys):
    namespace: dict = {}
    blocks = list(_blocks(gpu=False))
    assert len(blocks) >= 4
    for code in blocks:
        exec(compile(code, str(TUTORIAL), "exec"), namespace)


@pytest.mark.gpu
def test_tutorial_gpu_part():
    namespace: dict = {}
    for code in _blocks(gpu=True):
        exec(compile(code, str(TUTORIAL), "exec"), namespace)

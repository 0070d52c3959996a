"""Shared pytest set-up: the `gpu` marker, skipped unless PyTorch sees a CUDA GPU."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

_PYTHON_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python")
if importlib.util.find_spec("splat") is None and os.path.isdir(_PYTHON_DIR):
    sys.path.insert(0, _PYTHON_DIR)  # run from a checkout without `pip install -e .`


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs an NVIDIA GPU and PyTorch with CUDA (skipped without)")


def _cuda_reason() -> str | None:
    """None if torch sees a CUDA device, else why not."""
    if importlib.util.find_spec("torch") is None:
        return "PyTorch is not installed"
    try:
        import torch
    except Exception as e:  # broken install
        return f"PyTorch does not import: {e}"
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False (no GPU/driver)"
    return None


def pytest_collection_modifyitems(config, items):
    gpu_items = [it for it in items if it.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    reason = _cuda_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"gpu test: {reason}")
    for it in gpu_items:
        it.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/splat (compiled kernels, artifacts)."""
    if os.environ.get("SPLAT_CACHE_DIR"):
        yield
        return
    os.environ["SPLAT_CACHE_DIR"] = str(tmp_path_factory.mktemp("splat-cache"))
    yield
    os.environ.pop("SPLAT_CACHE_DIR", None)


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    """A fresh artifact cache directory for one test (memory cache cleared on both sides)."""
    from splat.runtime import cache

    monkeypatch.setenv("SPLAT_CACHE_DIR", str(tmp_path / "cache"))
    cache.clear_memory_cache()
    yield tmp_path / "cache"
    cache.clear_memory_cache()


@pytest.fixture
def fresh_dynamo():
    """torch.compile tests: Dynamo's caches and counters cleared before and after the test."""
    import torch._dynamo  # noqa: PLC0415
    from torch._dynamo.utils import counters  # noqa: PLC0415

    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()

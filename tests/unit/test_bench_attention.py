"""benchmarks/bench_attention.py's memory floor: the card's bandwidth from its CUDA properties
and the time reading Q, K, V and writing O once takes (no GPU, no torch needed)."""

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ba():
    spec = importlib.util.spec_from_file_location("bench_attention",
                                                  ROOT / "benchmarks" / "bench_attention.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_attention"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_bandwidth_from_the_memory_clock_and_bus(ba):
    h100 = SimpleNamespace(memory_clock_rate=2_619_000, memory_bus_width=5120)  # kHz, bits
    assert ba.hbm_bytes_per_s(h100) == pytest.approx(3.352e12, rel=1e-3)
    assert ba.hbm_bytes_per_s(SimpleNamespace()) is None  # an older torch: not reported
    assert ba.hbm_bytes_per_s(SimpleNamespace(memory_clock_rate=0, memory_bus_width=5120)) is None


def test_io_floor_counts_q_k_v_and_o_once(ba):
    # B = 2, H = 16, L = 4096, D = 128, bf16: four 32 MiB tensors at 3.352 TB/s
    ms = ba.io_floor_ms(2, 16, 4096, 4096, 128, 3.352e12)
    assert ms == pytest.approx(4 * 2 * 16 * 4096 * 128 * 2 / 3.352e12 * 1e3)
    assert ms == pytest.approx(0.040, abs=1e-3)
    # Lq != Lk: Q and O follow the queries, K and V the keys
    assert ba.io_floor_ms(1, 1, 100, 300, 64, 1e9) == pytest.approx((200 + 600) * 64 * 2 / 1e9 * 1e3)
    assert ba.io_floor_ms(2, 16, 4096, 4096, 128, None) is None

"""vapt_mm.benchmark.peak_memory on CPU: live tensor bytes are counted."""
import pytest
import torch

from vapt_mm.benchmark import measure_peak_memory


def test_cpu_peak_memory_counts_live_tensor_bytes():

    def two_live():
        first = torch.empty(1000, dtype=torch.float32)  # 4,000 bytes
        second = torch.empty(500, dtype=torch.float64)  # 4,000 bytes
        del first, second

    def one_at_a_time():
        first = torch.empty(1000, dtype=torch.float32)  # 4,000 bytes
        del first
        second = torch.empty(300, dtype=torch.float32)  # 1,200 bytes
        del second

    assert measure_peak_memory(two_live, 'cpu') == 8000
    assert measure_peak_memory(one_at_a_time, 'cpu') == 4000
    with pytest.raises(ValueError, match="got device 'meta'"):
        measure_peak_memory(two_live, 'meta')

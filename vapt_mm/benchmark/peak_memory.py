"""Peak tensor memory allocated while one benchmark step runs.

* CUDA: ``torch.cuda.max_memory_allocated`` after
  ``torch.cuda.reset_peak_memory_stats``, minus what was allocated when the
  step started.
* CPU: PyTorch has no peak counter for its CPU allocator, so the step runs
  once under ``torch.profiler`` with ``profile_memory=True``. The profiler
  records every allocation and free of the CPU allocator (tensor storages,
  including kernels' temporary tensors) in time order; the peak of their
  running sum is the largest amount of tensor memory the step held on top
  of what was alive before it. Memory that libraries take with their own
  ``malloc`` (oneDNN/BLAS scratch space) is not tensor memory and is not
  counted. Process RSS is never used: it mixes every model, the Python
  heap and freed-but-cached pages.

Both measures exclude the memory alive when the step starts (weights,
optimizer state), so the numbers are the step's own cost (activations,
saved tensors, gradients) and compare across devices.
"""
import gc
from typing import Callable, Union

import torch

__all__ = ['measure_peak_memory', 'memory_method_description']

MEMORY_METHODS = {
    'cuda': ('torch.cuda.max_memory_allocated after '
             'reset_peak_memory_stats, minus memory_allocated at the start '
             'of the step'),
    'cpu': ('peak of the running sum of CPU-allocator allocations and frees '
            'recorded by torch.profiler(profile_memory=True) during the '
            'step (tensor memory only; memory alive before the step is '
            'not counted)'),
}


def memory_method_description(device: Union[str, torch.device]) -> str:
    """How :func:`measure_peak_memory` measures on ``device``.

    Args:
        device (str | torch.device): The benchmark device.

    Returns:
        str: A one-sentence description, written into the benchmark JSON.

    Example:
        >>> memory_method_description('cpu').startswith('peak of')
        True
    """
    device_type = torch.device(device).type
    if device_type not in MEMORY_METHODS:
        raise ValueError(
            f'Peak memory can be measured on cpu or cuda, got device '
            f'{str(device)!r}.')
    return MEMORY_METHODS[device_type]


def _cpu_peak_bytes(step: Callable[[], object]) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU],
                 profile_memory=True) as prof:
        step()
    try:
        events = prof.profiler.kineto_results.events()
    except AttributeError as error:
        raise RuntimeError(
            'Cannot read the allocation events of torch.profiler in torch '
            f'{torch.__version__} (profiler.kineto_results.events() is '
            'missing); measure without peak memory.') from error
    cpu = torch.autograd.DeviceType.CPU
    # (start time, bytes): allocations are positive, frees negative. The
    # sort is stable, so events with equal stamps keep their record order.
    allocations = sorted(
        ((e.start_ns(), e.nbytes()) for e in events
         if e.name() == '[memory]' and e.device_type() == cpu),
        key=lambda item: item[0])
    running = peak = 0
    for _, nbytes in allocations:
        running += nbytes
        peak = max(peak, running)
    return peak


def _cuda_peak_bytes(step: Callable[[], object],
                     device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    start = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - start


def measure_peak_memory(step: Callable[[], object],
                        device: Union[str, torch.device] = 'cpu') -> int:
    """Peak tensor memory (bytes) that ``step()`` allocates on ``device``.

    Objects the step returns are dropped at once; garbage from earlier
    steps is collected first so that it is not freed inside the
    measurement.

    Args:
        step (Callable): Runs one step; its return value is discarded.
        device (str | torch.device): 'cpu' or a CUDA device.

    Returns:
        int: The largest number of bytes the step held at one time on top
        of what was allocated when it started.

    Example:
        >>> def step():
        ...     a = torch.empty(1000, dtype=torch.float32)  # 4,000 B
        ...     b = torch.empty(500, dtype=torch.float64)   # 4,000 B
        ...     del a, b
        >>> measure_peak_memory(step, 'cpu')
        8000
    """
    device = torch.device(device)
    memory_method_description(device)  # validates the device type
    gc.collect()

    def run() -> None:
        step()

    if device.type == 'cuda':
        return _cuda_peak_bytes(run, device)
    return _cpu_peak_bytes(run)

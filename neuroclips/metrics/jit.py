"""Compilation of the CPU pixel-metric kernels with numba: one fused pass per frame, frames spread over threads.

Why numba: the torch versions of SSIM, PSNR, Hue-pcc and PixCorr on CPU are bound by the memory traffic of their
stacked intermediates (about one full-frame tensor per operation); a fused loop keeps one row in cache and is
5-20x faster. The torch versions stay for accelerators (``device=``), where batching wins.

Threads: ``prange`` over frames runs on numba's thread pool, ``numba.get_num_threads()`` threads (default: every
core; ``NUMBA_NUM_THREADS`` or ``numba.set_num_threads`` change it), on numba's default threading layer (OpenMP
here; the project calls the metrics from one Python thread at a time, and forked data workers never run them). Compiled code is cached on disk
(``__pycache__`` next to this package, else numba's user cache dir, else ``NUMBA_CACHE_DIR``); where none is
writable, e.g. a read-only install without a home, each process compiles again (a few seconds) instead of failing.
Starting that OpenMP pool also sets the thread count of the OpenMP runtime that torch's CPU ops share, so a process
that chose ``torch.set_num_threads(k)`` (a one-thread fit beside another) would run its torch ops on numba's count
after its first metric: measured, two such fits on 2 cores ran about four times slower. Each kernel call therefore
puts torch's thread count back (``cpu_kernel``).
"""

from __future__ import annotations

import functools

import numba
import torch

# error_model="numpy": 0/0 is NaN (a constant frame's correlation), as in numpy and torch, not ZeroDivisionError.
# fastmath stays off: reassociating float sums would change the values in the last digits.
_OPTIONS = dict(parallel=True, nogil=True, error_model="numpy")


def cpu_kernel(fn):
    """``numba.njit`` with the options above and an on-disk cache where one can be written, called from Python
    with torch's thread count kept (module docstring)."""
    try:
        kernel = numba.njit(cache=True, **_OPTIONS)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available": compile per process instead
        kernel = numba.njit(**_OPTIONS)(fn)

    @functools.wraps(fn)
    def keeping_torch_threads(*args):
        threads = torch.get_num_threads()
        try:
            return kernel(*args)
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    return keeping_torch_threads


def cpu_helper(fn):
    """A scalar helper called from the kernels (inlined; ``parallel`` would only add overhead)."""
    return numba.njit(inline="always", error_model="numpy")(fn)


def kernel_threads() -> int:
    """How many threads the CPU kernels use (numba's pool)."""
    return numba.get_num_threads()

"""Selective scan (the S6 operator of Mamba) for the MambaVision backbone.

The operator (its recurrence: :mod:`.scan_reference`) has three implementations with mamba-ssm's signature and
shapes, one module each; this module gathers them:

* :func:`selective_scan_fn` (:mod:`.scan_dispatch`) -- the one to call: mamba-ssm's CUDA kernel where a
  first-call check accepts it (:func:`scan_backend`, :func:`scan_backend_info`, :func:`force_pytorch_scan`,
  ``SAR_OILSPILL_SELECTIVE_SCAN``), :func:`selective_scan_chunked` otherwise (always on CPU).
* :func:`selective_scan_chunked` (:mod:`.scan_chunked`) -- pure PyTorch, any device, fast on CPU: time-major
  blocks, a hand-written adjoint, per-thread scratch buffers (:func:`release_scratch_buffers`).
* :func:`selective_scan_sequential` (:mod:`.scan_reference`) -- a plain loop over time, written from the
  recurrence; the reference of the kernel check and the baseline of ``tools/benchmarks/bench_selective_scan.py``.
"""
from .scan_chunked import release_scratch_buffers, selective_scan_chunked
from .scan_dispatch import SCAN_ENV, force_pytorch_scan, scan_backend, scan_backend_info, selective_scan_fn
from .scan_reference import ScanOutput, selective_scan_sequential

__all__ = [
    'selective_scan_fn', 'selective_scan_chunked', 'selective_scan_sequential', 'scan_backend',
    'scan_backend_info', 'force_pytorch_scan', 'release_scratch_buffers', 'SCAN_ENV', 'ScanOutput'
]

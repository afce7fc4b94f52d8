"""Which selective scan runs on a device, and :func:`selective_scan_fn`, the one to call.

On a CUDA device :func:`selective_scan_fn` uses mamba-ssm's kernel when :func:`scan_backend` accepts it, and
:func:`~.scan_chunked.selective_scan_chunked` otherwise (always on CPU). mamba-ssm is imported lazily, at
the first call on a CUDA device, never at module import. That first call probes the kernel once per device:
mamba-ssm must import, its compiled extension must run forward and backward on a tiny input, and the results must
match the reference recurrence (:func:`~.scan_reference.selective_scan_sequential`). Recent mamba-ssm
sources import without the compiled ``selective_scan_cuda`` and fail only at the first forward, and a kernel built
for another torch or GPU may fail or compute garbage, so an import check alone is not enough. The choice and its
reason are logged once per device (mmengine's ``print_log``). The environment variable
``SAR_OILSPILL_SELECTIVE_SCAN`` (``auto``, ``pytorch``: never use the kernel, ``mamba_ssm``: raise instead of falling
back) or :func:`force_pytorch_scan` override it.
"""
import logging
import math
import os
import threading
from typing import Callable, Dict, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from torch import Tensor

from .scan_chunked import _autocast_off, _device_type, selective_scan_chunked
from .scan_reference import ScanOutput, selective_scan_sequential

SCAN_ENV = 'SAR_OILSPILL_SELECTIVE_SCAN'
_ENV_CHOICES = ('auto', 'pytorch', 'mamba_ssm')
# largest error relative to the reference's largest value that the kernel may show on the probe
# input (float32 against float64: about 1e-6; a wrong kernel: O(1))
_PROBE_TOL = 1e-3

_FORCE_PYTORCH: Optional[bool] = None  # set by force_pytorch_scan(); None: the env var decides
_BACKENDS: Dict[torch.device, Tuple[str, str, Optional[Callable]]] = {}  # device -> probe
_BACKEND_LOCK = threading.RLock()
_LOGGED = set()


def force_pytorch_scan(enabled: Optional[bool] = True) -> None:
    """Use the PyTorch scan on every device (True), allow mamba-ssm's kernel (False), or leave
    the choice to the ``SAR_OILSPILL_SELECTIVE_SCAN`` environment variable (None).

    Takes effect at the next call; the kernel probe of a device is not repeated.
    """
    global _FORCE_PYTORCH
    _FORCE_PYTORCH = enabled


def _env_choice() -> str:
    value = os.environ.get(SCAN_ENV, 'auto').strip().lower() or 'auto'
    if value not in _ENV_CHOICES:
        raise ValueError(f'{SCAN_ENV}={value!r}: expected one of {", ".join(_ENV_CHOICES)}')
    return value


def _log_once(message: str, level: int) -> None:
    if message not in _LOGGED:
        _LOGGED.add(message)
        print_log(message, logger='current', level=level)


def _reset_backends() -> None:
    """Forget every probe result and logged message (tests)."""
    with _BACKEND_LOCK:
        _BACKENDS.clear()
        _LOGGED.clear()


def _probe_inputs(device: torch.device, dtype: torch.dtype) -> Dict[str, Tensor]:
    """A small fixed problem for the kernel probe (b, d, L, n) = (2, 8, 37, 4)."""
    g = torch.Generator().manual_seed(0)
    b, d, length, n = 2, 8, 37, 4
    cpu = dict(u=torch.randn(b, d, length, generator=g),
               delta=0.5 * torch.randn(b, d, length, generator=g),
               A=-torch.exp(torch.rand(d, n, generator=g)),
               B=torch.randn(b, n, length, generator=g),
               C=torch.randn(b, n, length, generator=g),
               D=torch.randn(d, generator=g),
               z=torch.randn(b, d, length, generator=g),
               delta_bias=0.3 * torch.randn(d, generator=g),
               gy=torch.randn(b, d, length, generator=g))
    return {k: v.to(device=device, dtype=dtype) for k, v in cpu.items()}


def _kernel_error(fn: Callable, device: torch.device) -> float:
    """Run ``fn`` (mamba-ssm's ``selective_scan_fn``) forward and backward on a small float32
    problem on ``device`` -- MambaVision's call (D, delta_bias, softplus) and one with the gate
    ``z`` -- and return the largest error, relative to the largest reference value, of the
    output and of every gradient against :func:`selective_scan_sequential` in float64."""
    worst = 0.0
    names = ('u', 'delta', 'A', 'B', 'C', 'D', 'z', 'delta_bias')
    with torch.inference_mode(False), torch.enable_grad(), _autocast_off(device.type):
        for use_z in (False, True):
            results = []
            for impl, dtype in ((fn, torch.float32), (selective_scan_sequential, torch.float64)):
                t = _probe_inputs(device, dtype)
                leaves = [t[k].requires_grad_() if k != 'z' or use_z else None for k in names]
                y = impl(*leaves, True, False)  # delta_softplus, return_last_state
                used = [x for x in leaves if x is not None]
                grads = torch.autograd.grad((y * t['gy']).sum(), used)
                results.append([y.detach()] + list(grads))
            for got, ref in zip(*results):
                if got.shape != ref.shape:
                    raise RuntimeError(f'shape {tuple(got.shape)}, expected {tuple(ref.shape)}')
                err = ((got.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()
                worst = max(worst, err if math.isfinite(err) else math.inf)
    return worst


def _probe_kernel(device: torch.device) -> Tuple[str, str, Optional[Callable]]:
    """(backend, reason, kernel function or None) for ``device``: see :func:`scan_backend`."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as fn
    except ModuleNotFoundError as e:
        if e.name == 'mamba_ssm':
            return 'pytorch', 'mamba-ssm is not installed', None
        return 'pytorch', f'mamba-ssm does not import ({type(e).__name__}: {e})', None
    except Exception as e:  # ImportError, OSError (missing .so), RuntimeError (CUDA mismatch)
        return 'pytorch', f'mamba-ssm does not import ({type(e).__name__}: {e})', None
    try:
        err = _kernel_error(fn, device)
    except Exception as e:  # e.g. mamba-ssm without its compiled selective_scan_cuda
        return ('pytorch', f"mamba-ssm's kernel failed on a test input ({type(e).__name__}: "
                f'{e})', None)
    if not err <= _PROBE_TOL:
        return ('pytorch', f"mamba-ssm's kernel gives wrong results on a test input (relative "
                f'error {err:.1e} > {_PROBE_TOL:.0e} against the reference scan)', None)
    return ('mamba_ssm', f"mamba-ssm's kernel matches the reference scan on a test input "
            f'(relative error {err:.1e})', fn)


def _normalise(device: Union[str, torch.device]) -> torch.device:
    device = torch.device(device)
    if device.type == 'cuda' and device.index is None:
        device = torch.device('cuda', torch.cuda.current_device())
    return device


def scan_backend_info(device: Union[str, torch.device]) -> Tuple[str, str]:
    """Which selective scan :func:`selective_scan_fn` runs on ``device``, and why.

    Returns:
        tuple[str, str]: ``'mamba_ssm'`` (mamba-ssm's CUDA kernel) or ``'pytorch'``
        (:func:`selective_scan_chunked`), and the reason. On a CUDA device the first call
        probes the kernel (see the module notes) and logs the result once; later calls
        return the cached result.

    Raises:
        RuntimeError: ``SAR_OILSPILL_SELECTIVE_SCAN=mamba_ssm`` and the kernel is not usable
            on this CUDA device.
    """
    device = _normalise(device)
    if _device_type(device) != 'cuda':
        return 'pytorch', 'not a CUDA device'
    choice = _env_choice()
    if _FORCE_PYTORCH or (_FORCE_PYTORCH is None and choice == 'pytorch'):
        why = 'force_pytorch_scan()' if _FORCE_PYTORCH else f'{SCAN_ENV}=pytorch'
        _log_once(f'selective scan: chunked PyTorch scan on every device ({why})', logging.INFO)
        return 'pytorch', f'forced by {why}'
    entry = _BACKENDS.get(device)
    if entry is None:
        with _BACKEND_LOCK:
            entry = _BACKENDS.get(device)
            if entry is None:
                entry = _BACKENDS[device] = _probe_kernel(device)
                backend, reason, _ = entry
                if backend == 'mamba_ssm':
                    _log_once(f"selective scan on {device}: mamba-ssm's CUDA kernel ({reason})",
                              logging.INFO)
                else:
                    _log_once(f'selective scan on {device}: chunked PyTorch scan, slower than '
                              f"mamba-ssm's kernel ({reason}; see README, \"mamba-ssm on CUDA\")",
                              logging.WARNING)
    if entry[0] != 'mamba_ssm' and choice == 'mamba_ssm' and _FORCE_PYTORCH is None:
        raise RuntimeError(f"{SCAN_ENV}=mamba_ssm but mamba-ssm's kernel is not usable on "
                           f'{device}: {entry[1]}')
    return entry[0], entry[1]


def scan_backend(device: Union[str, torch.device]) -> str:
    """``'mamba_ssm'`` or ``'pytorch'``: the selective scan that runs on ``device`` (see
    :func:`scan_backend_info`)."""
    return scan_backend_info(device)[0]


def _kernel_fn(device: torch.device) -> Optional[Callable]:
    """mamba-ssm's ``selective_scan_fn`` when it runs on this (CUDA) device, else None."""
    if scan_backend(device) != 'mamba_ssm':
        return None
    return _BACKENDS[_normalise(device)][2]


def selective_scan_fn(u: Tensor,
                      delta: Tensor,
                      A: Tensor,
                      B: Tensor,
                      C: Tensor,
                      D: Optional[Tensor] = None,
                      z: Optional[Tensor] = None,
                      delta_bias: Optional[Tensor] = None,
                      delta_softplus: bool = False,
                      return_last_state: bool = False) -> ScanOutput:
    """Selective scan with mamba-ssm's signature; CUDA kernel when available.

    Dispatch: mamba-ssm's fused kernel when ``u`` is on a CUDA device and
    :func:`scan_backend` accepts the kernel there (probed at the first call, logged once);
    :func:`selective_scan_chunked` otherwise (CPU, or GPU without a working mamba-ssm, or
    forced). Both compute in float32 (mamba-ssm's kernel in float32 registers; the PyTorch
    scan with autocast disabled). mamba-ssm's kernel does not back-propagate through the
    returned last state; the PyTorch scan does.

    Args:
        u (Tensor): (B, D, L).
        delta (Tensor): (B, D, L).
        A (Tensor): (D, N).
        B (Tensor): (B, N, L).
        C (Tensor): (B, N, L).
        D (Tensor, optional): (D,).
        z (Tensor, optional): (B, D, L).
        delta_bias (Tensor, optional): (D,).
        delta_softplus (bool): softplus on ``delta + delta_bias``.
        return_last_state (bool): also return the last state (B, D, N).

    Returns:
        Tensor | tuple[Tensor, Tensor]: ``y`` (B, D, L) [, last state (B, D, N)]; ``y`` is
        contiguous from mamba-ssm's kernel, a view of (B, L, D) memory from the PyTorch scan.
    """
    if _device_type(u.device) == 'cuda':
        fn = _kernel_fn(u.device)
        if fn is not None:
            return fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    return selective_scan_chunked(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                  return_last_state)

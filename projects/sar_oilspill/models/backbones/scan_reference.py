"""The selective scan (the S6 operator of Mamba) as a plain loop over time: the reference of the other scans.

For every batch ``b``, channel ``d`` and state ``n`` (Mamba, Gu & Dao 2023, Alg. 2)::

    delta_t = softplus(delta_t + delta_bias)            (both optional)
    h_t     = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t,    h_{-1} = 0
    y_t     = sum_n C_t[n] * h_t[n]  +  D * u_t                    (D optional)
    y_t     = y_t * silu(z_t)                                      (z optional)

Also the argument checks and compute dtype that every implementation shares (mamba-ssm's signature and shapes).
:func:`selective_scan_sequential` is the baseline of ``tools/benchmarks/bench_selective_scan.py`` and the reference
of the mamba-ssm kernel check (:mod:`.scan_dispatch`).
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

ScanOutput = Union[Tensor, Tuple[Tensor, Tensor]]


def _check_inputs(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                  D: Optional[Tensor], z: Optional[Tensor],
                  delta_bias: Optional[Tensor]) -> None:
    """Raise a ValueError naming the offending tensor when a shape is not mamba-ssm's."""
    if u.dim() != 3:
        raise ValueError(f'selective_scan: u must be (batch, dim, length), got {tuple(u.shape)}')
    b, d, length = u.shape
    if delta.shape != u.shape:
        raise ValueError(f'selective_scan: delta must have the shape of u {tuple(u.shape)}, '
                         f'got {tuple(delta.shape)}')
    if A.dim() != 2 or A.shape[0] != d:
        raise ValueError(f'selective_scan: A must be (dim={d}, d_state), got {tuple(A.shape)}')
    n = A.shape[1]
    for name, t in (('B', B), ('C', C)):
        if t.shape != (b, n, length):
            raise ValueError(
                f'selective_scan: {name} must be input-dependent and ungrouped, shape '
                f'(batch={b}, d_state={n}, length={length}); got {tuple(t.shape)}')
    for name, t in (('D', D), ('delta_bias', delta_bias)):
        if t is not None and t.shape != (d, ):
            raise ValueError(f'selective_scan: {name} must be ({d},), got {tuple(t.shape)}')
    if z is not None and z.shape != u.shape:
        raise ValueError(f'selective_scan: z must have the shape of u {tuple(u.shape)}, '
                         f'got {tuple(z.shape)}')


def _compute_dtype(*tensors: Tensor) -> torch.dtype:
    """Float32, or float64 when any input is float64 (half inputs are computed in float32)."""
    dtype = torch.float32
    for t in tensors:
        if t is not None and t.dtype == torch.float64:
            dtype = torch.float64
    return dtype


def _prepare_delta(delta: Tensor, delta_bias: Optional[Tensor],
                   delta_softplus: bool) -> Tensor:
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    return delta


def _finish(y: Tensor, u: Tensor, D: Optional[Tensor], z: Optional[Tensor]) -> Tensor:
    if D is not None:
        y = y + u * D[:, None]
    if z is not None:
        y = y * F.silu(z)
    return y


def selective_scan_sequential(u: Tensor,
                              delta: Tensor,
                              A: Tensor,
                              B: Tensor,
                              C: Tensor,
                              D: Optional[Tensor] = None,
                              z: Optional[Tensor] = None,
                              delta_bias: Optional[Tensor] = None,
                              delta_softplus: bool = False,
                              return_last_state: bool = False) -> ScanOutput:
    """Selective scan as a plain loop over time, differentiated by autograd.

    The straightforward reading of the recurrence (the benchmark baseline); same arguments
    and returns as :func:`selective_scan_chunked`.
    """
    _check_inputs(u, delta, A, B, C, D, z, delta_bias)
    dtype_in = u.dtype
    dtype = _compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    u = u.to(dtype)
    delta = _prepare_delta(delta.to(dtype),
                           None if delta_bias is None else delta_bias.to(dtype), delta_softplus)
    A, B, C = A.to(dtype), B.to(dtype), C.to(dtype)
    # time-major slices via unbind: one backward node for all steps, not one per step
    delta_a = torch.exp(torch.einsum('bdl,dn->lbdn', delta, A)).unbind(0)  # Mamba Eq. 4
    delta_b_u = torch.einsum('bdl,bnl,bdl->lbdn', delta, B, u).unbind(0)
    c_t = C.permute(2, 0, 1).unbind(0)  # (b, n) per step
    h = u.new_zeros((u.shape[0], u.shape[1], A.shape[1]))
    ys = []
    for t in range(u.shape[2]):
        h = delta_a[t] * h + delta_b_u[t]  # Mamba Eq. 2a
        ys.append(torch.einsum('bdn,bn->bd', h, c_t[t]))  # Mamba Eq. 2b
    y = torch.stack(ys, dim=2)
    y = _finish(y, u, None if D is None else D.to(dtype), None if z is None else z.to(dtype))
    y = y.to(dtype_in)
    return (y, h) if return_last_state else y

"""Selective scan (the S6 operator of Mamba) for the MambaVision backbone.

The operator, for every batch ``b``, channel ``d`` and state ``n`` (Mamba, Gu & Dao 2023, Alg. 2)::

    delta_t = softplus(delta_t + delta_bias)            (both optional)
    h_t     = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t,    h_{-1} = 0
    y_t     = sum_n C_t[n] * h_t[n]  +  D * u_t                    (D optional)
    y_t     = y_t * silu(z_t)                                      (z optional)

Three implementations share mamba-ssm's signature and shapes:

* :func:`selective_scan_fn` -- the one to call. It uses mamba-ssm's CUDA kernel when that
  package imports and the tensors are on a GPU, and :func:`selective_scan_chunked` otherwise.
  mamba-ssm is imported lazily, never at module import.
* :func:`selective_scan_chunked` -- pure PyTorch, any device, fast on CPU (about 5x or more
  faster than the sequential loop at MambaVision's scan shapes). It works time-major with the
  channel innermost (sequences (L, b, D), states (L, b, N, D)), so every per-step slice is
  contiguous and every broadcast runs along contiguous channels, and cuts time into blocks of
  ``T`` steps. Per block, the decays ``exp(delta A)`` and inputs ``delta B u`` are each one
  vectorised operation, the recurrence is ``T`` in-place ``addcmul_`` steps, and the output
  ``C h`` is one bmm, all on data still in cache; ``T`` is picked so that a block's tensors
  are about 2 MB. The recurrence itself is exactly the sequential one (no reassociation, no
  inverse decays), so nothing can overflow. Without autograd only block-sized buffers are
  used. With autograd, a ``torch.autograd.Function`` keeps the decays and states (two
  (L, b, N, D) tensors) and its hand-written backward runs the adjoint recurrence block by
  block from the end, reducing every gradient from the cached block (one block-sized buffer).
  Decays are computed as ``2 ** (delta A log2 e)``: ``torch.exp2`` is a vectorised SLEEF kernel
  on CPU, whereas float32 ``torch.exp`` goes through MKL's VML, several times slower on the CPUs
  measured.
* :func:`selective_scan_sequential` -- a plain loop over time, written from the recurrence
  above; the baseline of ``tools/benchmarks/bench_selective_scan.py``.
"""
import math
from typing import Callable, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['selective_scan_fn', 'selective_scan_chunked', 'selective_scan_sequential']

ScanOutput = Union[Tensor, Tuple[Tensor, Tensor]]

# Auto block length T: a block of decays or states (T x batch x D x N values) stays within this
# many values (2 MiB in float32; tuned with tools/benchmarks/bench_selective_scan.py). Fewer
# steps per block mean more Python-level operations, more mean data falling out of cache.
_BLOCK_ELEMS = 1 << 19
_LOG2E = 1.0 / math.log(2.0)

_MAMBA_SSM_FN: Optional[Callable] = None
_MAMBA_SSM_TRIED = False


def _mamba_ssm_selective_scan() -> Optional[Callable]:
    """Return mamba-ssm's CUDA ``selective_scan_fn``, or None when it cannot be imported.

    The import is attempted once per process. mamba-ssm needs its compiled CUDA extension
    (and triton); on a CPU-only install the import fails and the pure-PyTorch scan is used.
    """
    global _MAMBA_SSM_FN, _MAMBA_SSM_TRIED
    if not _MAMBA_SSM_TRIED:
        _MAMBA_SSM_TRIED = True
        try:
            from mamba_ssm.ops.selective_scan_interface import \
                selective_scan_fn as fn  # noqa: E501
        except Exception:  # ImportError, OSError (missing .so), RuntimeError (CUDA mismatch)
            fn = None
        _MAMBA_SSM_FN = fn
    return _MAMBA_SSM_FN


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


# --------------------------------------------------------------------------------------------
# Blocked scan on time-major tensors: per-channel sequences (L, b, D), states (L, b, N, D).
# --------------------------------------------------------------------------------------------
def _block_len(length: int, width: int, chunk_size: Optional[int]) -> int:
    """Steps per time block: ``chunk_size``, or (auto) as many as keep a block
    (``T * width`` values, ``width = batch * D * N``) within ``_BLOCK_ELEMS``."""
    if chunk_size is None:
        chunk_size = max(1, _BLOCK_ELEMS // max(width, 1))
    elif chunk_size < 1:
        raise ValueError(f'selective_scan: chunk_size must be >= 1, got {chunk_size}')
    return min(chunk_size, max(length, 1))


def _time_major(x: Tensor) -> Tensor:
    """(b, c, L) -> a fresh contiguous (L, b, c) (never aliasing ``x``)."""
    return x.permute(2, 0, 1).clone(memory_format=torch.contiguous_format)


def _channel_major(x: Tensor) -> Tensor:
    """(L, b, c) -> contiguous (b, c, L); the inverse of :func:`_time_major`."""
    return x.permute(1, 2, 0).contiguous()


def _scan_blocks(dl: Tensor, du: Tensor, Bl: Tensor, Cl: Tensor, A2: Tensor, T: int,
                 save: bool) -> Tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
    """Forward scan, block by block: ``y_t = C_t . h_t`` with ``h_t = a_t h_{t-1} + x_t``.

    For each block of ``T`` steps the decays ``a_t = exp(delta_t A)`` and inputs
    ``x_t = B_t (delta_t u_t)`` are computed in one vectorised operation each, the block is
    scanned step by step, and its outputs are reduced over N with one bmm. A block's
    (T, b, N, D) tensors fit in the CPU's L2 cache, so the step loop and the reduction read
    them from cache instead of memory.

    Args:
        dl, du (Tensor): (L, b, D) ``delta`` and ``delta * u``.
        Bl, Cl (Tensor): (L, b, N).
        A2 (Tensor): (N, D) ``A^T log2(e)``; ``exp(delta A) = 2 ** (delta A2)``. Same values,
            but ``torch.exp2`` runs a vectorised SLEEF kernel on CPU while float32
            ``torch.exp`` goes through MKL's VML, several times slower on the CPUs measured.
        T (int): steps per block.
        save (bool): keep every decay and state (L, b, N, D) for the backward; otherwise only
            block-sized buffers are used.

    Returns:
        tuple: ``y`` (L, b, D), the last state (b, N, D), and the decays and states
        (L, b, N, D) when ``save`` (else None).
    """
    length, b, d = dl.shape
    n = A2.shape[0]
    kw = dict(dtype=dl.dtype, device=dl.device)
    y = torch.empty((length * b, 1, d), **kw)
    # views made once, not per block or step
    dl4, du4, B4, C3 = dl[:, :, None, :], du[:, :, None, :], Bl[..., None], Cl.view(-1, 1, n)
    if save:
        a, h = torch.empty((length, b, n, d), **kw), torch.empty((length, b, n, d), **kw)
        a_steps, h_steps = a.unbind(0), h.unbind(0)
    else:
        a_buf = torch.empty((T, b, n, d), **kw)
        h_buf = torch.empty((T + 1, b, n, d), **kw)  # row 0: the previous block's last state
        a_bufs, h_bufs = a_buf.unbind(0), h_buf.unbind(0)
    prev = None
    for t0 in range(0, length, T):
        t1 = min(t0 + T, length)
        k = t1 - t0
        if save:
            ab, hb, as_, hs = a[t0:t1], h[t0:t1], a_steps[t0:t1], h_steps[t0:t1]
        else:
            ab, hb, as_, hs = a_buf[:k], h_buf[1:k + 1], a_bufs[:k], h_bufs[1:k + 1]
        torch.mul(dl4[t0:t1], A2, out=ab).exp2_()  # Mamba Eq. 4 (ZOH): exp(delta A)
        torch.mul(B4[t0:t1], du4[t0:t1], out=hb)  # Euler: delta B u
        if prev is not None:
            hs[0].addcmul_(as_[0], prev)
        for i in range(1, k):
            hs[i].addcmul_(as_[i], hs[i - 1])  # Mamba Eq. 2a
        torch.bmm(C3[t0 * b:t1 * b], hb.view(k * b, n, d), out=y[t0 * b:t1 * b])  # Eq. 2b
        prev = hs[-1] if save else h_bufs[0].copy_(hs[-1])
    y = y.view(length, b, d)
    if save:
        return y, prev, a, h
    return y, prev, None, None


def _scan_blocks_backward(gyl: Tensor, grad_last: Optional[Tensor], dl: Tensor, du: Tensor,
                          Bl: Tensor, Cl: Tensor, At: Tensor, a: Tensor, h: Tensor,
                          T: int) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The adjoint of :func:`_scan_blocks`, block by block from the last one.

    With ``G_t = dLoss/dh_t`` (total), the adjoint recurrence is
    ``G_t = C_t gy_t + a_{t+1} G_{t+1}`` (plus the last state's gradient at ``t = L-1``). For
    each block, ``G`` lives in one block-sized buffer: it is scanned backwards, then every
    gradient that needs it is reduced from the cached block at once:

    * ``dC_t = sum_d h_t gy_t``, ``dB_t = sum_d G_t (delta_t u_t)``,
      ``d(delta u)_t = sum_n B_t G_t``  (bmm's over the long axis);
    * through ``a_t = exp(delta_t A)``: ``E_t = G_t a_t h_{t-1}`` (``h_{-1} = 0``) gives
      ``d delta_t += sum_n E_t A`` and ``dA += sum_{t,b} E_t delta_t``. The buffer is reused
      in place: ``E A`` is summed over N, multiplied by ``delta`` and summed over (t, b); the
      (N, D) result is divided by A once at the end (when no A is nearly zero).

    Returns:
        tuple: ``dC`` (L, b, N), ``dB`` (L, b, N), ``d(delta u)`` (L, b, D), the decay part of
        ``d delta`` (L, b, D), and ``dA^T`` (N, D).
    """
    length, b, n, d = h.shape
    kw = dict(dtype=h.dtype, device=h.device)
    grad_C, grad_B = torch.empty((length, b, n), **kw), torch.empty((length, b, n), **kw)
    g_du, g_delta = torch.empty((length, b, d), **kw), torch.empty((length, b, d), **kw)
    grad_At = torch.zeros((1, n * d), **kw)
    ones = torch.ones((1, T * b), **kw)
    divide = bool((At.abs() > torch.finfo(At.dtype).tiny**0.5).all())
    g_buf = torch.empty((T, b, n, d), **kw)
    carry = torch.empty((b, n, d), **kw)  # a_{t1} G_{t1}, entering the block ending at t1
    # views made once, not per block or step
    g_bufs, a_steps = g_buf.unbind(0), a.unbind(0)
    C4, gy4, dl4 = Cl[..., None], gyl[:, :, None, :], dl[:, :, None, :]
    gy3, du3, B3 = gyl.view(-1, 1, d), du.view(-1, 1, d), Bl.view(-1, 1, n)
    hT3 = h.view(-1, n, d).transpose(1, 2)
    grad_C3, grad_B3, g_du3 = grad_C.view(-1, 1, n), grad_B.view(-1, 1, n), g_du.view(-1, 1, d)
    last = length - (length - 1) % T - 1  # start of the last block
    for t0 in range(last, -1, -T):
        t1 = min(t0 + T, length)
        k = t1 - t0
        s0, s1 = t0 * b, t1 * b  # rows of the (L * b, ...) views
        gb, gs, as_ = g_buf[:k], g_bufs[:k], a_steps[t0:t1]
        gb3 = gb.view(k * b, n, d)
        torch.mul(C4[t0:t1], gy4[t0:t1], out=gb)  # direct part: C_t gy_t
        if t1 < length:
            gs[-1].add_(carry)
        elif grad_last is not None:
            gs[-1].add_(grad_last)
        for i in range(k - 2, -1, -1):
            gs[i].addcmul_(as_[i + 1], gs[i + 1])
        if t0 > 0:
            torch.mul(as_[0], gs[0], out=carry)
        torch.bmm(gy3[s0:s1], hT3[s0:s1], out=grad_C3[s0:s1])
        torch.bmm(du3[s0:s1], gb3.transpose(1, 2), out=grad_B3[s0:s1])
        torch.bmm(B3[s0:s1], gb3, out=g_du3[s0:s1])
        gb.mul_(a[t0:t1])  # E_t = G_t a_t h_{t-1}
        if t0 > 0:
            gb.mul_(h[t0 - 1:t1 - 1])
        else:
            gb[1:].mul_(h[:t1 - 1])
            gs[0].zero_()
        if divide:
            torch.sum(gb.mul_(At), 2, out=g_delta[t0:t1])
        else:
            torch.sum(gb * At, 2, out=g_delta[t0:t1])
        grad_At.addmm_(ones[:, :k * b], gb.mul_(dl4[t0:t1]).view(k * b, n * d))
    grad_At = grad_At.view(n, d)
    if divide:
        grad_At.div_(At)
    return grad_C, grad_B, g_du, g_delta, grad_At


def _delta_in(delta: Tensor, delta_bias: Optional[Tensor], delta_softplus: bool
              ) -> Tuple[Tensor, Tensor]:
    """Time-major (L, b, D) ``delta + delta_bias`` and its softplus (or itself)."""
    if delta_bias is None:
        pre = _time_major(delta)
    else:
        length, b, d = delta.shape[2], delta.shape[0], delta.shape[1]
        pre = torch.add(delta.permute(2, 0, 1), delta_bias,
                        out=torch.empty((length, b, d), dtype=delta.dtype, device=delta.device))
    return pre, (F.softplus(pre) if delta_softplus else pre)


def _output(y: Tensor, u: Tensor, D: Optional[Tensor]) -> Tensor:
    """(L, b, D) ``y`` -> contiguous (b, D, L) ``y + D u`` for (b, D, L) ``u``."""
    out = _channel_major(y)
    return out if D is None else out.addcmul_(u, D[:, None])


def _forward(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
             delta_bias: Optional[Tensor], delta_softplus: bool, chunk_size: Optional[int],
             save: bool) -> Tuple[Tensor, Tensor, tuple]:
    """The selective scan forward: ``y`` (b, D, L), the last state as (b, N, D), and what the
    backward needs (an empty tuple unless ``save``)."""
    b, d, length = u.shape
    n = A.shape[1]
    T = _block_len(length, b * d * n, chunk_size)
    pre, dl = _delta_in(delta, delta_bias, delta_softplus)
    du = torch.mul(dl, u.permute(2, 0, 1))  # (L, b, D)
    Bl = B.permute(2, 0, 1).contiguous()  # (L, b, N)
    Cl = C.permute(2, 0, 1).contiguous()
    At = A.t().contiguous()  # (N, D)
    y, last, a, h = _scan_blocks(dl, du, Bl, Cl, At * _LOG2E, T, save)
    saved = (T, pre if delta_softplus else None, dl, du, At, Bl, Cl, a, h) if save else ()
    return _output(y, u, D), last, saved


class _SelectiveScanCore(torch.autograd.Function):
    """``y_t = sum_n C_t h_t + D u_t``, ``h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t`` with
    ``delta = softplus(delta_in + delta_bias)`` (bias, softplus and D optional), and a
    hand-written adjoint. Inputs already in the compute dtype.

    Internally time-major with the channel innermost: per-channel sequences are (L, b, D) and
    states (L, b, N, D), so every per-step slice is contiguous, every broadcast runs along
    contiguous channels and the reductions over N or D are bmm's. Transposes from and to the
    (b, D, L) layout are fused into the first or last elementwise operation where possible.
    The forward keeps the decays and states (two (L, b, N, D) tensors); the backward works in
    one block-sized buffer.
    """

    @staticmethod
    def forward(ctx, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                D: Optional[Tensor], delta_bias: Optional[Tensor], delta_softplus: bool,
                chunk_size: Optional[int]) -> Tuple[Tensor, Tensor]:
        y, last, saved = _forward(u, delta, A, B, C, D, delta_bias, delta_softplus, chunk_size,
                                  save=True)
        ctx.block = saved[0]
        ctx.softplus = delta_softplus
        ctx.has_bias = delta_bias is not None
        ctx.save_for_backward(u, D, *saved[1:])
        return y, last.transpose(1, 2).contiguous()

    @staticmethod
    def backward(ctx, grad_y: Optional[Tensor], grad_last: Optional[Tensor]):
        u, D, pre, dl, du, At, Bl, Cl, a, h = ctx.saved_tensors
        length, b, n, d = h.shape
        if grad_y is None:
            grad_y = torch.zeros_like(u)
        grad_y = grad_y.to(dl.dtype)
        gyl = _time_major(grad_y)  # (L, b, D)
        if grad_last is not None:
            grad_last = grad_last.to(h.dtype).transpose(1, 2)  # (b, N, D)
        grad_C, grad_B, g_du, grad_dl, grad_At = _scan_blocks_backward(
            gyl, grad_last, dl, du, Bl, Cl, At, a, h, ctx.block)
        grad_dl.addcmul_(g_du, u.permute(2, 0, 1))  # x_t = B_t (delta_t u_t)
        if ctx.softplus:
            grad_dl.mul_(torch.sigmoid(pre))  # softplus'(x) = sigmoid(x)
        grad_bias = grad_dl.view(length * b, d).sum(0) if ctx.has_bias else None
        grad_D = None if D is None else (grad_y * u).sum((0, 2))
        return (_output(g_du.mul_(dl), grad_y, D), _channel_major(grad_dl), grad_At.t(),
                grad_B.permute(1, 2, 0), grad_C.permute(1, 2, 0), grad_D, grad_bias, None,
                None)


def selective_scan_chunked(u: Tensor,
                           delta: Tensor,
                           A: Tensor,
                           B: Tensor,
                           C: Tensor,
                           D: Optional[Tensor] = None,
                           z: Optional[Tensor] = None,
                           delta_bias: Optional[Tensor] = None,
                           delta_softplus: bool = False,
                           return_last_state: bool = False,
                           chunk_size: Optional[int] = None) -> ScanOutput:
    """Pure-PyTorch selective scan (blocked scan, hand-written adjoint).

    Works on any device and is differentiable w.r.t. every tensor argument. Computes in
    float32 (float64 if any input is float64); the output has ``u``'s dtype.

    Args:
        u (Tensor): (B, D, L) input.
        delta (Tensor): (B, D, L) step sizes (before ``delta_bias``/softplus).
        A (Tensor): (D, N) state matrix (diagonal per channel; negative for a stable scan).
        B (Tensor): (B, N, L) input-dependent input matrix.
        C (Tensor): (B, N, L) input-dependent output matrix.
        D (Tensor, optional): (D,) skip connection.
        z (Tensor, optional): (B, D, L) gate; the output is multiplied by ``silu(z)``.
        delta_bias (Tensor, optional): (D,) added to ``delta``.
        delta_softplus (bool): apply softplus to ``delta`` (after the bias).
        return_last_state (bool): also return the final state.
        chunk_size (int, optional): time steps per block. None: as many as keep a block's
            decays and states within ``_BLOCK_ELEMS`` values (about the L2 cache).

    Returns:
        Tensor | tuple[Tensor, Tensor]: ``y`` (B, D, L), and the last state (B, D, N) in the
        compute dtype when ``return_last_state``.
    """
    _check_inputs(u, delta, A, B, C, D, z, delta_bias)
    dtype_in = u.dtype
    dtype = _compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    args = (u.to(dtype), delta.to(dtype), A.to(dtype), B.to(dtype), C.to(dtype),
            None if D is None else D.to(dtype),
            None if delta_bias is None else delta_bias.to(dtype), delta_softplus, chunk_size)
    with torch.autocast(device_type=u.device.type, enabled=False):
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                           for t in args[:7]):
            y, last_state = _SelectiveScanCore.apply(*args)
        else:
            y, last_state, _ = _forward(*args, save=False)
            if return_last_state:
                last_state = last_state.transpose(1, 2).contiguous()
        if z is not None:
            y = y * F.silu(z.to(dtype))
    y = y.to(dtype_in)
    return (y, last_state) if return_last_state else y


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

    Dispatch: mamba-ssm's fused kernel when ``mamba_ssm`` imports and ``u`` is on a CUDA
    device; :func:`selective_scan_chunked` otherwise (CPU, or GPU without mamba-ssm).

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
        Tensor | tuple[Tensor, Tensor]: ``y`` (B, D, L) [, last state (B, D, N)].
    """
    if u.is_cuda:
        fn = _mamba_ssm_selective_scan()
        if fn is not None:
            return fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    return selective_scan_chunked(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                  return_last_state)

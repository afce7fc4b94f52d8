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
* :func:`selective_scan_chunked` -- pure PyTorch, any device, fast on CPU. The linear recurrence
  runs as a two-level chunked scan: time is cut into ``K`` chunks of ``T`` steps; one pass of
  ``T`` vectorised steps scans all chunks at once from a zero state, ``K`` steps carry the chunk
  end states across chunks, and a second pass of ``T`` steps re-scans the chunks from their true
  initial states. Python-level steps drop from ``L`` to about ``2T + K ~ 3 sqrt(L)``, each step
  works on a ``K`` times bigger slab, and the total arithmetic stays ``O(L)``. Only products of
  decays ``exp(delta * A)`` (``<= 1`` when ``delta >= 0`` and ``A <= 0``) appear, never their
  inverses, so no exponent is positive and nothing overflows. The gradient is a hand-written
  adjoint scan (the same chunked scan run backwards in time) inside a ``torch.autograd.Function``;
  the forward keeps the states ``h`` and decays ``exp(delta A)`` (two (B, D, L, N) tensors),
  and all other full-size work runs in place.
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

# Sequences up to this length, or with at least this many values per time step (batch x D x N),
# are scanned in a single chunk (a plain vectorised loop over time): there the extra carry and
# correction passes of the chunked scan cost more than the per-step overhead they save.
_SINGLE_CHUNK_MAX_LEN = 64
_SINGLE_CHUNK_MIN_WIDTH = 32768
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
# Chunked linear scans on time-major, contiguous (L, M) tensors. No autograd inside.
# --------------------------------------------------------------------------------------------
def _num_chunks(length: int, width: int, chunk_size: Optional[int]) -> Tuple[int, int]:
    """Return (T, K): chunk length and number of full chunks (K < 2 means a single loop).

    Auto (``chunk_size=None``): one chunk when the sequence is short or each step already
    works on ``width >= 32768`` values (the loop is then bound by memory traffic, which
    chunking increases by a third); ``T = ceil(sqrt(L))`` otherwise.
    """
    if chunk_size is None:
        if length <= _SINGLE_CHUNK_MAX_LEN or width >= _SINGLE_CHUNK_MIN_WIDTH:
            return length, 1
        chunk_size = int(math.ceil(math.sqrt(length)))
    if chunk_size < 1:
        raise ValueError(f'selective_scan: chunk_size must be >= 1, got {chunk_size}')
    chunk_size = min(chunk_size, length)
    return chunk_size, length // chunk_size


def _scan_forward_(a: Tensor, x: Tensor, T: int, K: int, decay: Optional[Tensor]) -> Tensor:
    """Solve ``h_t = a_t * h_{t-1} + x_t`` (``h_{-1} = 0``) along dim 0, in place of ``x``.

    Working in place avoids allocating another (L, M) tensor: on CPU, writing a fresh large
    tensor costs about as much again as a pass over a warm one.

    Args:
        a (Tensor): (L, M) decays, contiguous.
        x (Tensor): (L, M) inputs, contiguous; overwritten with the states.
        T (int): chunk length.
        K (int): number of full chunks; below 2 the scan is a single loop over time.
        decay (Tensor, optional): (K, M) product of ``a`` over each chunk (needed if K >= 2).

    Returns:
        Tensor: ``x``, now holding the (L, M) states.
    """
    length, m = x.shape
    xs, as_ = x.unbind(0), a.unbind(0)  # views made once, not per step
    if K < 2:
        for t in range(1, length):
            xs[t].addcmul_(as_[t], xs[t - 1])
        return x
    main = K * T
    av, xv = a[:main].view(K, T, m), x[:main].view(K, T, m)
    avs, xvs = av.unbind(1), xv.unbind(1)
    # 1) every chunk from a zero state: local states (chunk 0 is then exact).
    for t in range(1, T):
        xvs[t].addcmul_(avs[t], xvs[t - 1])
    # 2) true state entering chunk k: carry_k = decay_{k-1} * carry_{k-1} + local end_{k-1}.
    carry = torch.empty((K - 1, m), dtype=x.dtype, device=x.device)  # chunks 1..K-1
    carry[0] = xv[0, -1]
    for k in range(1, K - 1):
        torch.addcmul(xv[k, -1], decay[k], carry[k - 1], out=carry[k])
    # 3) chunks 1..K-1: h_t = local_t + (a_0 ... a_t) * carry, the product kept running.
    for t in range(T):
        carry.mul_(av[1:, t])
        xv[1:, t].add_(carry)
    # 4) the ragged tail, sequentially from the last chunk's end state.
    for t in range(main, length):
        xs[t].addcmul_(as_[t], xs[t - 1])
    return x


def _scan_adjoint_(a: Tensor, g: Tensor, T: int, K: int, decay: Optional[Tensor]) -> Tensor:
    """Solve the adjoint recurrence ``g_t <- g_t + a_{t+1} * g_{t+1}`` backwards, in place.

    The backward pass of :func:`_scan_forward_`: given the direct gradients w.r.t. ``h_t`` it
    leaves the total gradients w.r.t. ``h_t``. Arguments as in :func:`_scan_forward_`.

    Returns:
        Tensor: ``g``, now holding the (L, M) total gradients.
    """
    length, m = g.shape
    gs, as_ = g.unbind(0), a.unbind(0)  # views made once, not per step
    if K < 2:
        for t in range(length - 2, -1, -1):
            gs[t].addcmul_(as_[t + 1], gs[t + 1])
        return g
    main = K * T
    # 1) the ragged tail [main, L), sequentially; it feeds the last full chunk.
    for t in range(length - 2, main - 1, -1):
        gs[t].addcmul_(as_[t + 1], gs[t + 1])
    av, gv = a[:main].view(K, T, m), g[:main].view(K, T, m)
    avs, gvs = av.unbind(1), gv.unbind(1)
    # 2) every chunk from a zero message at its last step.
    for t in range(T - 2, -1, -1):
        gvs[t].addcmul_(avs[t + 1], gvs[t + 1])
    # 3) message entering chunk k at its last step: carry_k = a_{k+1,0} * g_{k+1,0}, i.e.
    #    carry_{k-1} = a_{k,0} * local_{k,0} + decay_k * carry_k.
    r = K if main < length else K - 1  # chunks that receive a message
    carry = torch.empty((r, m), dtype=g.dtype, device=g.device)
    first = av[:, 0] * gv[:, 0]
    if main < length:
        torch.mul(a[main], g[main], out=carry[K - 1])
        top = K - 1
    else:
        carry[K - 2] = first[K - 1]
        top = K - 2
    for k in range(top, 0, -1):
        torch.addcmul(first[k], decay[k], carry[k], out=carry[k - 1])
    # 4) chunks 0..r-1: g_t = local_t + (a_{t+1} ... a_{T-1}) * carry, the product kept running.
    gv[:r, -1].add_(carry)
    for t in range(T - 2, -1, -1):
        carry.mul_(av[:r, t + 1])
        gv[:r, t].add_(carry)
    return g


def _outer(p: Tensor, q: Tensor) -> Tensor:
    """Broadcast product into a fresh contiguous tensor (TensorIterator may otherwise pick a
    permuted memory layout for broadcast inputs)."""
    shape = torch.broadcast_shapes(p.shape, q.shape)
    return torch.mul(p, q, out=torch.empty(shape, dtype=p.dtype, device=p.device))


def _time_major(x: Tensor) -> Tensor:
    """(b, c, L) -> a fresh contiguous (L, b, c).

    Written as a 2-D transpose into an empty tensor so that ATen's cache-blocked transpose copy
    applies, and so that the result never aliases ``x`` (callers modify it in place).
    """
    b, c, length = x.shape
    out = torch.empty((length, b * c), dtype=x.dtype, device=x.device)
    return out.copy_(x.reshape(b * c, length).t()).view(length, b, c)


def _channel_major(x: Tensor) -> Tensor:
    """(L, b, c) -> contiguous (b, c, L); the inverse of :func:`_time_major`."""
    length, b, c = x.shape
    out = torch.empty((b * c, length), dtype=x.dtype, device=x.device)
    return out.copy_(x.reshape(length, b * c).t()).view(b, c, length)


def _decays(dl: Tensor, A2: Tensor, T: int, K: int) -> Tuple[Tensor, Optional[Tensor]]:
    """Per-step decays ``exp(delta_t A)`` (L, b, N, D) and per-chunk products (K, b, N, D).

    ``A2 = A log2(e)`` (N, D), and the decays are computed as ``2 ** (delta A2)``: the same
    values, but ``torch.exp2`` runs a vectorised SLEEF kernel on CPU while ``torch.exp`` goes
    through MKL's VML, several times slower for float32 on the machines measured
    (``tools/benchmarks/bench_selective_scan.py``); this is the largest elementwise operation of
    the forward. A chunk's product is ``exp(A * sum_t delta_t)`` since A does not depend on
    time; all exponents are <= 0 for ``delta >= 0``, ``A <= 0``.
    """
    a = _outer(dl[:, :, None, :], A2).exp2_()  # Mamba Eq. 4 (ZOH): A_bar = exp(delta A)
    decay = None
    if K >= 2:
        length, b, d = dl.shape
        s = dl[:K * T].view(K, T, b, d).sum(1)
        decay = _outer(s[:, :, None, :], A2).exp2_()
    return a, decay


class _SelectiveScanCore(torch.autograd.Function):
    """``y_t = sum_n C_t h_t + D u_t``, ``h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t`` with
    ``delta = softplus(delta_in + delta_bias)`` (bias and softplus optional), and a hand-written
    adjoint. Inputs already in the compute dtype.

    Internally time-major with the channel innermost: per-channel sequences are (L, b, D) and
    states (L, b, N, D), so every per-step slice is contiguous, every broadcast runs along
    contiguous channels and the reductions over N or D are bmm's. The bias, softplus and ``D``
    skip are applied in that layout too, which saves transposes and lets the backward use the
    softplus derivative ``sigmoid`` directly. Three (L, b, N, D) tensors are allocated per
    forward+backward (decays, states, gradients); all other full-size work happens in place.
    """

    @staticmethod
    def forward(ctx, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                D: Optional[Tensor], delta_bias: Optional[Tensor], delta_softplus: bool,
                chunk_size: Optional[int]) -> Tuple[Tensor, Tensor]:
        b, d, length = u.shape
        n = A.shape[1]
        T, K = _num_chunks(length, b * d * n, chunk_size)
        ul = _time_major(u)  # (L, b, D)
        pre = _time_major(delta)
        if delta_bias is not None:
            pre.add_(delta_bias)
        dl = F.softplus(pre) if delta_softplus else pre
        du = dl * ul
        Bl = B.permute(2, 0, 1).contiguous()  # (L, b, N)
        Cl = C.permute(2, 0, 1).contiguous()
        At = A.t().contiguous()  # (N, D)
        a, decay = _decays(dl, At * _LOG2E, T, K)
        h = _outer(Bl[..., None], du[:, :, None, :])  # x_t = B_bar u = delta B u (Euler)
        _scan_forward_(a.view(length, -1), h.view(length, -1), T, K,
                       None if decay is None else decay.view(K, -1))  # Mamba Eq. 2a
        lb = length * b
        y = torch.bmm(Cl.view(lb, 1, n), h.view(lb, n, d)).view(length, b, d)  # Eq. 2b: C h
        if D is not None:
            y.addcmul_(ul, D)
        last_state = h[-1].transpose(1, 2).contiguous()  # (b, D, N)
        ctx.chunks = (T, K)
        ctx.softplus = delta_softplus
        ctx.has_bias_D = (delta_bias is not None, D is not None)
        ctx.save_for_backward(ul, pre if delta_softplus else None, dl, du, At, Bl, Cl, D, h,
                              a, decay)
        return _channel_major(y), last_state

    @staticmethod
    def backward(ctx, grad_y: Optional[Tensor], grad_last: Optional[Tensor]):
        ul, pre, dl, du, At, Bl, Cl, D, h, a, decay = ctx.saved_tensors
        T, K = ctx.chunks
        has_bias, has_D = ctx.has_bias_D
        length, b, n, d = h.shape
        lb = length * b
        if grad_y is None:
            gyl = torch.zeros_like(dl)
        else:
            gyl = _time_major(grad_y.to(dl.dtype))  # (L, b, D)
        # direct part of dLoss/dh_t, from y_t = sum_n C_t[n] h_t[n]; then the adjoint scan
        g = _outer(Cl[..., None], gyl[:, :, None, :])  # (L, b, N, D)
        if grad_last is not None:
            g[-1] += grad_last.to(g.dtype).transpose(1, 2)
        _scan_adjoint_(a.view(length, -1), g.view(length, -1), T, K,
                       None if decay is None else decay.view(K, -1))
        # Reductions over D as (1 x D) @ (D x N) products: MKL is much faster with the long
        # axis shared than with a (N x D) @ (D x 1) product per batch.
        grad_C = torch.bmm(gyl.view(lb, 1, d), h.view(lb, n, d).transpose(1, 2))
        # x_t = B_t (delta_t u_t)
        g_du = torch.bmm(Bl.view(lb, 1, n), g.view(lb, n, d)).view(length, b, d)
        grad_B = torch.bmm(du.view(lb, 1, d), g.view(lb, n, d).transpose(1, 2))
        # a_t = exp(delta_t A): dLoss/d(delta_t A) = g_t * a_t * h_{t-1}, with h_{-1} = 0
        g[1:].mul_(a[1:]).mul_(h[:-1])
        g[0].zero_()
        ones = g.new_ones((1, lb))
        if bool((At.abs() > torch.finfo(At.dtype).tiny**0.5).all()):
            # sum_n (.) A, then sum_{l,b} (.) delta, reusing g: the second product is
            # (g A) delta, divided by A once on the small (N, D) result.
            g.mul_(At)
            g_delta_a = g.sum(2)
            g.mul_(dl[:, :, None, :])
            grad_At = torch.mm(ones, g.view(lb, n * d)).view(n, d).div_(At)
        else:
            g_delta_a = (g * At).sum(2)
            g.mul_(dl[:, :, None, :])
            grad_At = torch.mm(ones, g.view(lb, n * d)).view(n, d)
        grad_dl = g_du.mul(ul).add_(g_delta_a)  # (L, b, D)
        grad_ul = g_du.mul_(dl)
        grad_D = None
        if has_D:
            grad_ul.addcmul_(gyl, D)
            grad_D = torch.mm(ones, gyl.mul_(ul).view(lb, d)).view(d)
        if ctx.softplus:
            grad_dl.mul_(torch.sigmoid(pre))  # softplus'(x) = sigmoid(x)
        grad_bias = torch.mm(ones, grad_dl.view(lb, d)).view(d) if has_bias else None
        return (_channel_major(grad_ul), _channel_major(grad_dl), grad_At.t(),
                grad_B.view(length, b, n).permute(1, 2, 0), grad_C.view(length, b,
                                                                         n).permute(1, 2, 0),
                grad_D, grad_bias, None, None)


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
    """Pure-PyTorch selective scan (chunked two-level scan, hand-written adjoint).

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
        chunk_size (int, optional): steps per chunk. None: a single chunk up to length 64 or
            when ``B * D * N >= 32768``, ``ceil(sqrt(L))`` steps otherwise.

    Returns:
        Tensor | tuple[Tensor, Tensor]: ``y`` (B, D, L), and the last state (B, D, N) in the
        compute dtype when ``return_last_state``.
    """
    _check_inputs(u, delta, A, B, C, D, z, delta_bias)
    dtype_in = u.dtype
    dtype = _compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    with torch.autocast(device_type=u.device.type, enabled=False):
        y, last_state = _SelectiveScanCore.apply(
            u.to(dtype), delta.to(dtype), A.to(dtype), B.to(dtype), C.to(dtype),
            None if D is None else D.to(dtype),
            None if delta_bias is None else delta_bias.to(dtype), delta_softplus, chunk_size)
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

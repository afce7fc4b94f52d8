"""The selective scan in pure PyTorch, blocked over time, with a hand-written adjoint (any device, fast on CPU).

:func:`selective_scan_chunked` runs the recurrence of :mod:`.scan_reference` exactly (no reassociation, no
inverse decays, so nothing can overflow), organised for eager PyTorch on a CPU, where every operation costs
microseconds of dispatch and most of the rest is memory traffic:

- Time-major layout with the channel innermost: sequences (L, b, D), states (L, b, N, D).
  Every per-step slice is contiguous and every broadcast runs along contiguous channels.
  Each (b, D, L) input is transposed in its first elementwise pass (the bias addition,
  the copy of ``u``); the output is written as (b, L, D) memory, channels innermost, and
  returned as a (b, D, L) view of it (mamba-ssm's kernel returns contiguous (b, D, L):
  call ``.contiguous()`` where that matters). Writing (b, D, L) memory would run the
  transposition with the short time axis innermost.
- Time blocks of ``T`` steps (``T * b * D * N`` about ``_BLOCK_ELEMS`` values, 2 MiB): per
  block, the decays ``exp(delta A)`` and the inputs ``delta B u`` are one vectorised
  operation each, the recurrence is ``T`` in-place ``addcmul_`` steps, and the output
  ``C h`` is one bmm, on data still in cache. Only block-sized state buffers exist, kept
  per thread from call to call on CPU (fresh multi-MiB buffers are page-faulted in on every
  call).
- On a GPU (any device but the CPU) the same code runs with other settings: blocks of up to
  ``_BLOCK_ELEMS_GPU`` values (64 MiB in float32; the whole sequence at MambaVision's
  shapes), since a kernel launch costs more than a cache miss there; buffers fresh from
  PyTorch's caching allocator on every call (stream-ordered, returned when the call ends;
  no pool that outlives it); and no host synchronisation in the backward (no
  data-dependent branch).
- Decays as ``2 ** (delta A log2 e)``: ``torch.exp2`` is a vectorised SLEEF kernel on CPU,
  whereas float32 ``torch.exp`` goes through MKL's VML.
- With autograd, a ``torch.autograd.Function`` keeps one state per block (the checkpoint
  the block starts from), not all L of them: T times less memory than keeping every state
  (mamba-ssm's kernel likewise keeps one state per chunk). Its hand-written backward runs block by block from the end:
  it recomputes the block's decays and states from the checkpoint (cheaper than reading
  stored ones back from memory), runs the adjoint recurrence in a block-sized buffer and
  reduces every gradient from the cached block.
"""
import math
import threading
from contextlib import nullcontext
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from .scan_reference import ScanOutput, _check_inputs, _compute_dtype

# Auto block length T: a block of decays or states (T x batch x D x N values) stays within this
# many values (2 MiB in float32; set with tools/benchmarks/bench_selective_scan.py). Fewer steps
# per block mean more Python-level operations, more mean data falling out of cache.
_BLOCK_ELEMS = 1 << 19
# On a GPU every operation is a kernel launch (microseconds) while memory is fast: blocks of up
# to 2^24 values (64 MiB in float32, three such buffers in the backward), which hold the whole
# sequence at MambaVision's shapes (about 2^22 values per level at batch 16, 512x512).
_BLOCK_ELEMS_GPU = 1 << 24
_LOG2E = 1.0 / math.log(2.0)

# Per-thread scratch buffers of CPU tensors (see _scratch), reused from call to call.
_SCRATCH = threading.local()


def _device_type(device: torch.device) -> str:
    """The device type whose settings the scan uses (block size, scratch buffers, host
    synchronisation, mamba-ssm's kernel). A function of its own so that tests can run the
    CUDA settings on CPU tensors."""
    return device.type


def _block_elems(device_type: str) -> int:
    """Values per time block (``T * batch * D * N``) for a device type (see ``_BLOCK_ELEMS``)."""
    return _BLOCK_ELEMS if device_type == 'cpu' else _BLOCK_ELEMS_GPU


def release_scratch_buffers() -> None:
    """Free this thread's pooled CPU scratch buffers (see ``_scratch``); later calls allocate
    them again. GPU tensors never use the pool."""
    _SCRATCH.pool = {}


def _scratch(slot: str, shape: Tuple[int, ...], like: Tensor) -> Tensor:
    """An uninitialised buffer of ``shape`` for ``slot``, reused by every later call on this
    thread (grown when a larger one is asked for); on devices other than the CPU a fresh
    tensor (see below).

    For the buffers that do not outlive one forward or backward call (the block buffers,
    and the time-major inputs of an inference call). Fresh multi-MiB CPU allocations are
    returned to the OS and page-faulted back in on every call (glibc's allocator). Held per
    thread and never freed: three block-sized buffers (``_BLOCK_ELEMS`` values each) and up
    to six (L, b, D) sequences of the largest call (e.g. 29 MB each for MambaVision-B's level 2
    at batch 16, 512x512).
    Under ``torch.jit`` tracing (mmengine's FLOP counter) buffers are fresh: a trace cannot
    write into a tensor created before it started. Inference mode has buffers of its own
    (inference tensors cannot be written outside it). GPU tensors are always fresh: PyTorch's
    caching allocator hands out freed blocks without any system call, in stream order, and
    takes them back when the call ends, whereas a pool would hold the largest call's buffers
    forever and be reused by calls on other streams.
    """
    if torch.jit.is_tracing() or _device_type(like.device) != 'cpu':
        return torch.empty(shape, dtype=like.dtype, device=like.device)
    pool = getattr(_SCRATCH, 'pool', None)
    if pool is None:
        pool = _SCRATCH.pool = {}
    numel = math.prod(shape)
    # tensors made under torch.inference_mode cannot be written outside it: separate buffers
    key = (slot, like.dtype, like.device, torch.is_inference_mode_enabled())
    buf = pool.get(key)
    if buf is None or buf.numel() < numel:
        buf = pool[key] = torch.empty(numel, dtype=like.dtype, device=like.device)
    return buf[:numel].view(shape)


# --------------------------------------------------------------------------------------------
# Blocked scan on time-major tensors: per-channel sequences (L, b, D), states (L, b, N, D).
# --------------------------------------------------------------------------------------------
def _block_len(length: int, width: int, chunk_size: Optional[int],
               device_type: str = 'cpu') -> int:
    """Steps per time block: ``chunk_size``, or (auto) as many as keep a block
    (``T * width`` values, ``width = batch * D * N``) within the device's block size
    (``_BLOCK_ELEMS`` on CPU, ``_BLOCK_ELEMS_GPU`` elsewhere)."""
    if chunk_size is None:
        chunk_size = max(1, _block_elems(device_type) // max(width, 1))
    elif chunk_size < 1:
        raise ValueError(f'selective_scan: chunk_size must be >= 1, got {chunk_size}')
    return min(chunk_size, max(length, 1))


def _block_states(dl: Tensor, du: Tensor, B: Tensor, A2: Tensor, ab: Tensor, as_: Tuple[Tensor, ...],
                  hb: Tensor, hs: Tuple[Tensor, ...], prev: Optional[Tensor]) -> None:
    """One block of the recurrence, in place: the decays ``a_t = exp(delta_t A)`` into ``ab`` and
    the states ``h_t = a_t h_{t-1} + B_t (delta_t u_t)`` into ``hb`` (``as_``, ``hs``: their
    per-step views), from the state ``prev`` entering the block (None: zero). Shared by the
    forward and the backward's recomputation.

    Args:
        dl, du (Tensor): (k, b, 1, D) ``delta`` and ``delta * u`` of the block's steps.
        B (Tensor): (k, b, N, 1).
        A2 (Tensor): (N, D) ``A^T log2(e)``.
    """
    torch.mul(dl, A2, out=ab).exp2_()  # Mamba Eq. 4 (ZOH): exp(delta A)
    torch.mul(B, du, out=hb)  # Euler: delta B u
    if prev is not None:
        hs[0].addcmul_(as_[0], prev)
    for i in range(1, len(hs)):
        hs[i].addcmul_(as_[i], hs[i - 1])  # Mamba Eq. 2a


def _scan_blocks(dl: Tensor, du: Tensor, Bl: Tensor, Cl: Tensor, A2: Tensor, T: int,
                 keep_starts: bool) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """Forward scan, block by block: ``y_t = C_t . h_t`` with ``h_t = a_t h_{t-1} + x_t``.

    For each block of ``T`` steps the decays ``a_t = exp(delta_t A)`` and inputs
    ``x_t = B_t (delta_t u_t)`` are computed in one vectorised operation each, the block is
    scanned step by step in place (``h_t = x_t + a_t h_{t-1}``), and its outputs are reduced
    over N with one bmm while the block is still in the CPU's caches. Only block-sized
    buffers are used: the states of a block are overwritten by the next block's.

    Args:
        dl, du (Tensor): (L, b, D) ``delta`` and ``delta * u``.
        Bl, Cl (Tensor): (L, b, N).
        A2 (Tensor): (N, D) ``A^T log2(e)``; ``exp(delta A) = 2 ** (delta A2)`` (``exp2``: see
            the module notes).
        T (int): steps per block.
        keep_starts (bool): keep the state entering every block (the checkpoints from which
            :func:`_scan_blocks_backward` recomputes the states), and write ``y`` to a new
            tensor. Otherwise ``y`` is written over ``du`` (each block's rows of ``du`` are
            read before its outputs are written).

    Returns:
        tuple: ``y`` (L, b, D), the last state (b, N, D), and when ``keep_starts`` the states
        entering the blocks (ceil(L / T), b, N, D), the first one zero (else None).
    """
    length, b, d = dl.shape
    n = A2.shape[0]
    kw = dict(dtype=dl.dtype, device=dl.device)
    y = _scratch('y', (length * b, 1, d), dl) if keep_starts else du.view(length * b, 1, d)
    # per-block views, made once (split is one call per tensor)
    dl_b, du_b, B_b = dl[:, :, None, :].split(T), du[:, :, None, :].split(T), Bl[..., None].split(T)
    C_b, y_b = Cl.view(-1, 1, n).split(T * b), y.split(T * b)
    a_buf, h_buf = _scratch('a', (T, b, n, d), dl), _scratch('h', (T, b, n, d), dl)
    a_bufs, h_bufs = a_buf.unbind(0), h_buf.unbind(0)
    starts = torch.empty((len(dl_b), b, n, d), **kw) if keep_starts else None
    carry = None if keep_starts else _scratch('carry', (b, n, d), dl)
    prev = None  # the state entering the block
    for j in range(len(dl_b)):
        k = dl_b[j].shape[0]
        ab, as_ = (a_buf, a_bufs) if k == T else (a_buf[:k], a_bufs[:k])
        hb, hs = (h_buf, h_bufs) if k == T else (h_buf[:k], h_bufs[:k])
        _block_states(dl_b[j], du_b[j], B_b[j], A2, ab, as_, hb, hs, prev)
        if torch.jit.is_tracing():  # FLOP counters trace bmm and expect exactly two inputs (no out=)
            y_b[j].copy_(torch.bmm(C_b[j], hb.view(k * b, n, d)))
        else:
            torch.bmm(C_b[j], hb.view(k * b, n, d), out=y_b[j])  # Mamba Eq. 2b: y = C h
        if j + 1 < len(dl_b):  # carried over in a buffer of its own: h_buf is overwritten
            prev = (starts[j + 1] if keep_starts else carry).copy_(hs[-1])
        else:
            prev = hs[-1]
    if keep_starts:
        starts[0].zero_()
    return y.view(length, b, d), prev, starts


def _scan_blocks_backward(gyl: Tensor, grad_last: Optional[Tensor], dl: Tensor, du: Tensor,
                          Bl: Tensor, Cl: Tensor, At: Tensor, A2: Tensor, starts: Tensor,
                          T: int) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The adjoint of :func:`_scan_blocks`, block by block from the last one.

    With ``G_t = dLoss/dh_t`` (total), the adjoint recurrence is
    ``G_t = C_t gy_t + a_{t+1} G_{t+1}`` (plus the last state's gradient at ``t = L-1``). For
    each block, the decays ``a_t`` and the states ``h_t`` are recomputed from the block's
    checkpoint into block-sized buffers (cheaper than storing every state and reading it back
    from memory), ``G`` is scanned backwards in a third buffer, and every gradient is reduced
    from the cached block at once:

    * ``dC_t = sum_d h_t gy_t``, ``dB_t = sum_d G_t (delta_t u_t)``,
      ``d(delta u)_t = sum_n B_t G_t`` (bmm's over the long axis);
    * through ``a_t = exp(delta_t A)``: ``E_t = G_t a_t h_{t-1}`` (``h_{-1} = 0``) gives
      ``d delta_t += sum_n E_t A`` and ``dA += sum_{t,b} E_t delta_t``. The buffer is reused
      in place: ``E A`` is summed over N, multiplied by ``delta`` and summed over (t, b); the
      (N, D) result is divided by A once at the end (when no A is nearly zero; on CPU only:
      the test needs the host, so on a GPU ``E`` is multiplied by A in a separate buffer).

    Args:
        gyl (Tensor): (L, b, D) gradient w.r.t. ``y`` (time-major).
        grad_last (Tensor, optional): (b, N, D) gradient w.r.t. the last state.
        dl, du, Bl, Cl, A2, T: as in :func:`_scan_blocks`; ``At`` is ``A^T`` (N, D).
        starts (Tensor): (ceil(L / T), b, N, D) the states entering the blocks.

    Returns:
        tuple: ``dC`` (L, b, N), ``dB`` (L, b, N), ``d(delta u)`` (L, b, D), the decay part of
        ``d delta`` (L, b, D), and ``dA^T`` (N, D).
    """
    length, b, d = dl.shape
    n = At.shape[0]
    kw = dict(dtype=dl.dtype, device=dl.device)
    grad_C, grad_B = torch.empty((length, b, n), **kw), torch.empty((length, b, n), **kw)
    g_du, g_delta = _scratch('g_du', (length, b, d), dl), torch.empty((length, b, d), **kw)
    grad_At = torch.zeros((1, n * d), **kw)
    ones = torch.ones((1, T * b), **kw)
    # the check synchronises with the device: CPU only (where it is free)
    divide = _device_type(dl.device) == 'cpu' and bool(
        (At.abs() > torch.finfo(At.dtype).tiny**0.5).all())
    g_buf, a_buf = _scratch('g', (T, b, n, d), dl), _scratch('a', (T, b, n, d), dl)
    h_buf = _scratch('h', (T + 1, b, n, d), dl)  # row 0: h_{t0-1}, rows 1..k: h_t0..h_t1-1
    carry = _scratch('carry', (b, n, d), dl)  # a_{t1} G_{t1}, entering the block ending at t1
    # views made once, not per block or step
    g_bufs, a_bufs, h_bufs = g_buf.unbind(0), a_buf.unbind(0), h_buf.unbind(0)
    C4, gy4, dl4 = Cl[..., None], gyl[:, :, None, :], dl[:, :, None, :]
    B4, du4 = Bl[..., None], du[:, :, None, :]
    gy3, du3, B3 = gyl.view(-1, 1, d), du.view(-1, 1, d), Bl.view(-1, 1, n)
    grad_C3, grad_B3, g_du3 = grad_C.view(-1, 1, n), grad_B.view(-1, 1, n), g_du.view(-1, 1, d)
    last = length - (length - 1) % T - 1  # start of the last block
    for t0 in range(last, -1, -T):
        t1 = min(t0 + T, length)
        k = t1 - t0
        s0, s1 = t0 * b, t1 * b  # rows of the (L * b, ...) views
        gb, gs, ab, as_ = g_buf[:k], g_bufs[:k], a_buf[:k], a_bufs[:k]
        hb, hs = h_buf[1:k + 1], h_bufs[1:k + 1]
        gb3 = gb.view(k * b, n, d)
        # the block's decays and states again, from its checkpoint: cheaper than storing them
        h_bufs[0].copy_(starts[t0 // T])  # h_{t0-1}, zero for the first block
        _block_states(dl4[t0:t1], du4[t0:t1], B4[t0:t1], A2, ab, as_, hb, hs,
                      h_bufs[0] if t0 > 0 else None)
        torch.bmm(gy3[s0:s1], hb.view(k * b, n, d).transpose(1, 2), out=grad_C3[s0:s1])
        torch.mul(C4[t0:t1], gy4[t0:t1], out=gb)  # direct part: C_t gy_t
        if t1 < length:
            gs[-1].add_(carry)
        elif grad_last is not None:
            gs[-1].add_(grad_last)
        for i in range(k - 2, -1, -1):
            gs[i].addcmul_(as_[i + 1], gs[i + 1])
        if t0 > 0:
            torch.mul(as_[0], gs[0], out=carry)
        torch.bmm(du3[s0:s1], gb3.transpose(1, 2), out=grad_B3[s0:s1])
        torch.bmm(B3[s0:s1], gb3, out=g_du3[s0:s1])
        gb.mul_(ab).mul_(h_buf[:k])  # E_t = G_t a_t h_{t-1}; h_{-1} = 0 (the first checkpoint)
        if divide:
            torch.sum(gb.mul_(At), 2, out=g_delta[t0:t1])
        else:
            torch.sum(gb * At, 2, out=g_delta[t0:t1])
        grad_At.addmm_(ones[:, :k * b], gb.mul_(dl4[t0:t1]).view(k * b, n * d))
    grad_At = grad_At.view(n, d)
    if divide:
        grad_At.div_(At)
    return grad_C, grad_B, g_du, g_delta, grad_At


def _inputs(u: Tensor, delta: Tensor, delta_bias: Optional[Tensor], delta_softplus: bool,
            keep: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """``delta`` after bias and softplus, ``u`` and ``delta * u``, time-major (L, b, D).

    Each (b, D, L) input is read once, transposed in its first elementwise pass (the bias
    addition for ``delta``, the copy of ``u``); everything else runs on contiguous
    time-major tensors, channels innermost.

    Returns:
        tuple: ``delta`` (a fresh tensor when ``keep``: the backward needs it), ``u`` and
        ``delta * u`` (scratch buffers: the backward recomputes them from ``u`` and
        ``delta``, cheaper than keeping them, and every fresh multi-MiB tensor costs page
        faults).
    """
    dt = delta.permute(2, 0, 1)
    if keep:
        dl = torch.empty(dt.shape, dtype=u.dtype, device=u.device)
    else:
        dl = _scratch('dl', dt.shape, u)
    if delta_bias is not None:
        torch.add(dt, delta_bias, out=dl)
    else:
        dl.copy_(dt)
    if delta_softplus:
        torch._C._nn.softplus(dl, 1, 20, out=dl)  # F.softplus's own op, in place
    ut, du = _time_major_u(u, dl)
    return dl, ut, du


def _time_major_u(u: Tensor, dl: Tensor) -> Tuple[Tensor, Tensor]:
    """``u`` and ``delta * u`` time-major (L, b, D), in scratch buffers."""
    ut = _scratch('ut', dl.shape, dl).copy_(u.permute(2, 0, 1))
    return ut, torch.mul(dl, ut, out=_scratch('du', dl.shape, dl))


def _output(y: Tensor, ut: Tensor, D: Optional[Tensor]) -> Tensor:
    """``y + D u`` for time-major (L, b, D) ``y`` and ``u``, as a (b, D, L) view of fresh
    contiguous (b, L, D) memory.

    Writing (b, D, L) memory would run the transposition with the short time axis innermost;
    the (b, L, D) layout keeps the channels innermost, and it is the layout the mixer's output
    projection consumes.
    """
    length, b, d = y.shape
    out = torch.empty((b, length, d), dtype=y.dtype, device=y.device)
    if D is None:
        out.copy_(y.transpose(0, 1))
    else:
        torch.addcmul(y.transpose(0, 1), ut.transpose(0, 1), D, out=out)
    return out.transpose(1, 2)


def _forward(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
             delta_bias: Optional[Tensor], delta_softplus: bool, chunk_size: Optional[int],
             save: bool) -> Tuple[Tensor, Tensor, tuple]:
    """The selective scan forward: ``y`` (b, D, L), the last state (b, D, N) (a fresh tensor:
    the scan's own is a scratch buffer), and what the backward needs (an empty tuple unless
    ``save``)."""
    b, d, length = u.shape
    n = A.shape[1]
    T = _block_len(length, b * d * n, chunk_size, _device_type(u.device))
    dl, ut, du = _inputs(u, delta, delta_bias, delta_softplus, keep=save)
    Bl = B.permute(2, 0, 1).contiguous()  # (L, b, N)
    Cl = C.permute(2, 0, 1).contiguous()
    At = A.t().contiguous()  # (N, D)
    A2 = At * _LOG2E
    y, last, starts = _scan_blocks(dl, du, Bl, Cl, A2, T, keep_starts=save)  # else y over du
    y = _output(y, ut, D)
    last = last.transpose(1, 2).clone(memory_format=torch.contiguous_format)
    if not save:
        return y, last, ()
    return y, last, (T, dl, At, A2, Bl, Cl, starts)


class _SelectiveScanCore(torch.autograd.Function):
    """``y_t = sum_n C_t h_t + D u_t``, ``h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t`` with
    ``delta = softplus(delta_in + delta_bias)`` (bias, softplus and D optional), and a
    hand-written adjoint. Inputs already in the compute dtype.

    Internally time-major with the channel innermost: per-channel sequences are (L, b, D) and
    states (L, b, N, D), so every per-step slice is contiguous, every broadcast runs along
    contiguous channels and the reductions over N or D are bmm's. For the backward the forward
    keeps ``u`` (an input), the time-major ``delta`` and one state per block (the checkpoints);
    the backward recomputes ``delta * u``, the decays and the states, in block-sized buffers.
    """

    @staticmethod
    def forward(ctx, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                D: Optional[Tensor], delta_bias: Optional[Tensor], delta_softplus: bool,
                chunk_size: Optional[int]) -> Tuple[Tensor, Tensor]:
        y, last, saved = _forward(u, delta, A, B, C, D, delta_bias, delta_softplus, chunk_size,
                                  save=True)
        ctx.block = saved[0]
        ctx.has_bias = delta_bias is not None
        ctx.softplus = delta_softplus
        ctx.save_for_backward(u, D, *saved[1:])
        return y, last

    @staticmethod
    @once_differentiable  # the adjoint is hand-written with in-place ops: no double backward
    def backward(ctx, grad_y: Optional[Tensor], grad_last: Optional[Tensor]):
        u, D, dl, At, A2, Bl, Cl, starts = ctx.saved_tensors
        ut, du = _time_major_u(u, dl)
        gyl = _scratch('gy', dl.shape, dl)
        if grad_y is None:
            gyl.zero_()
        else:
            gyl.copy_(grad_y.permute(2, 0, 1))
        if grad_last is not None:
            grad_last = grad_last.to(dl.dtype).transpose(1, 2)  # (b, N, D)
        grad_C, grad_B, g_du, g_delta, grad_At = _scan_blocks_backward(
            gyl, grad_last, dl, du, Bl, Cl, At, A2, starts, ctx.block)
        # x_t = B_t (delta_t u_t) and the skip D u_t, time-major where every operand is
        # contiguous; the gradients are returned as (b, D, L) views of that memory
        grad_u = g_du * dl
        grad_delta = g_delta.addcmul_(g_du, ut)
        grad_D = None
        if D is not None:
            grad_u.addcmul_(gyl, D)
            grad_D = (gyl * ut).sum((0, 1))
        if ctx.softplus:  # softplus'(x) = sigmoid(x) = 1 - exp(-softplus(x))
            slope = torch.neg(dl, out=_scratch('du', dl.shape, dl)).expm1_().neg_()  # du is dead
            grad_delta.mul_(slope)
        grad_bias = grad_delta.sum((0, 1)) if ctx.has_bias else None
        return (grad_u.permute(1, 2, 0), grad_delta.permute(1, 2, 0), grad_At.t(),
                grad_B.permute(1, 2, 0), grad_C.permute(1, 2, 0), grad_D, grad_bias, None, None)


def _autocast_off(device_type: str):
    """A context that disables autocast (the scan computes in float32/64), or a no-op one when
    autocast is off already (entering torch.autocast costs a few microseconds)."""
    try:
        enabled = torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no per-device query
        enabled = True
    return torch.autocast(device_type=device_type, enabled=False) if enabled else nullcontext()


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
        chunk_size (int, optional): time steps per block. None: as many as keep a block of
            states within ``_BLOCK_ELEMS`` values (2 MiB in float32).

    Returns:
        Tensor | tuple[Tensor, Tensor]: ``y`` (B, D, L), a view of contiguous (B, L, D) memory
        (see the module notes), and the last state (B, D, N) in the compute dtype when
        ``return_last_state``.
    """
    _check_inputs(u, delta, A, B, C, D, z, delta_bias)
    dtype_in = u.dtype
    dtype = _compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    args = (u.to(dtype), delta.to(dtype), A.to(dtype), B.to(dtype), C.to(dtype),
            None if D is None else D.to(dtype),
            None if delta_bias is None else delta_bias.to(dtype), delta_softplus, chunk_size)
    with _autocast_off(u.device.type):
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                           for t in args[:7]):
            y, last_state = _SelectiveScanCore.apply(*args)
        else:
            y, last_state, _ = _forward(*args, save=False)
        if z is not None:
            y = y * F.silu(z.to(dtype))
    y = y.to(dtype_in)
    return (y, last_state) if return_last_state else y

"""Selective scan: the chunked scan and its hand-written gradient against the Mamba recurrence.

The reference below is written independently from the Mamba paper (Gu & Dao 2023, Eq. 2a/2b
with the ZOH A_bar = exp(delta A) and Euler B_bar = delta B of its Alg. 2), as a loop over time
with explicit softplus/SiLU formulas, and differentiated by autograd.
"""
import contextlib
import logging
import math
import sys
import types

import pytest
import torch

from projects.sar_oilspill.models.backbones import selective_scan as ss
from projects.sar_oilspill.models.backbones import scan_dispatch as ssb
from projects.sar_oilspill.models.backbones import scan_chunked as ssc
from projects.sar_oilspill.models.backbones.selective_scan import (
    selective_scan_chunked, selective_scan_fn, selective_scan_sequential)


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                       delta_softplus=False, return_last_state=False):
    """h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t;  y_t = C_t . h_t + D u_t;  y *= silu(z)."""
    if delta_bias is not None:
        delta = delta + delta_bias[None, :, None]
    if delta_softplus:
        delta = torch.log1p(torch.exp(delta))
    b, d, length = u.shape
    h = torch.zeros(b, d, A.shape[1], dtype=u.dtype)
    ys = []
    for t in range(length):
        dt = delta[:, :, t, None]  # (b, d, 1)
        h = torch.exp(dt * A[None]) * h + dt * B[:, None, :, t] * u[:, :, t, None]
        y = (h * C[:, None, :, t]).sum(-1)
        if D is not None:
            y = y + D[None] * u[:, :, t]
        ys.append(y)
    y = torch.stack(ys, dim=-1)
    if z is not None:
        y = y * (z * torch.sigmoid(z))
    return (y, h) if return_last_state else y


def make_inputs(b, d, length, n, dtype=torch.float64, seed=0, delta_scale=0.5):
    g = torch.Generator().manual_seed(seed)
    return dict(
        u=torch.randn(b, d, length, generator=g, dtype=dtype),
        delta=delta_scale * torch.randn(b, d, length, generator=g, dtype=dtype),
        A=-torch.exp(torch.rand(d, n, generator=g, dtype=dtype) * 2),
        B=torch.randn(b, n, length, generator=g, dtype=dtype),
        C=torch.randn(b, n, length, generator=g, dtype=dtype),
        D=torch.randn(d, generator=g, dtype=dtype),
        z=torch.randn(b, d, length, generator=g, dtype=dtype),
        delta_bias=0.3 * torch.randn(d, generator=g, dtype=dtype))


def rel_err(x, ref):
    return ((x - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


OPTIONS = [
    dict(),  # bare scan; delta used as given (may be negative: growing states are fine too)
    dict(use_D=True, use_z=True, use_bias=True, delta_softplus=True),  # MambaVision + gate
    dict(use_D=True, use_bias=True, delta_softplus=True),  # exactly MambaVision's call
    dict(use_z=True, delta_softplus=True),
]


def split(inputs, opts):
    kw = dict(delta_softplus=opts.get('delta_softplus', False))
    for key, flag in (('D', 'use_D'), ('z', 'use_z'), ('delta_bias', 'use_bias')):
        kw[key] = inputs[key] if opts.get(flag) else None
    return [inputs[k] for k in ('u', 'delta', 'A', 'B', 'C')], kw


def run_with_grads(fn, inputs, opts, weights, **extra):
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    args, kw = split(leaves, opts)
    y, last = fn(*args, **kw, return_last_state=True, **extra)
    # a generic linear functional of both outputs exercises every gradient path
    ((y * weights[0]).sum() + (last * weights[1]).sum()).backward()
    used = {k for k, v in leaves.items() if v.grad is not None}
    return y.detach(), last.detach(), {k: leaves[k].grad for k in used}


@pytest.mark.parametrize('length', [1, 7, 64, 65, 197])
@pytest.mark.parametrize('opts', OPTIONS)
def test_chunked_matches_reference_float64(length, opts):
    """Forward and every gradient within 1e-10 (float64: only rounding separates the two)."""
    b, d, n = 2, 5, 4
    inputs = make_inputs(b, d, length, n, seed=length)
    g = torch.Generator().manual_seed(1)
    weights = (torch.randn(b, d, length, generator=g, dtype=torch.float64),
               torch.randn(b, d, n, generator=g, dtype=torch.float64))
    y_ref, last_ref, g_ref = run_with_grads(selective_scan_ref, inputs, opts, weights)
    y, last, grads = run_with_grads(selective_scan_chunked, inputs, opts, weights)
    assert y.dtype == torch.float64
    assert rel_err(y, y_ref) < 1e-10
    assert rel_err(last, last_ref) < 1e-10
    assert set(grads) == set(g_ref)
    for key in g_ref:
        assert rel_err(grads[key], g_ref[key]) < 1e-10, key


@pytest.mark.parametrize('length,chunk_size', [(7, 3), (9, 3), (12, 1), (30, 4), (64, 8),
                                                 (196, 14), (197, None), (197, 50)])
def test_chunk_paths(length, chunk_size):
    """Time blocks with and without a ragged last block, of one step, and auto-sized."""
    b, d, n = 2, 3, 4
    opts = OPTIONS[1]
    inputs = make_inputs(b, d, length, n, seed=7)
    g = torch.Generator().manual_seed(2)
    weights = (torch.randn(b, d, length, generator=g, dtype=torch.float64),
               torch.randn(b, d, n, generator=g, dtype=torch.float64))
    y_ref, last_ref, g_ref = run_with_grads(selective_scan_ref, inputs, opts, weights)
    y, last, grads = run_with_grads(selective_scan_chunked, inputs, opts, weights,
                                    chunk_size=chunk_size)
    assert rel_err(y, y_ref) < 1e-10 and rel_err(last, last_ref) < 1e-10
    for key in g_ref:
        assert rel_err(grads[key], g_ref[key]) < 1e-10, key


@pytest.mark.parametrize('length,chunk_size', [(1, None), (7, 3), (49, None), (197, None),
                                                 (197, 50)])
@pytest.mark.parametrize('opts', OPTIONS)
def test_inference_path_matches_reference(length, chunk_size, opts):
    """Without autograd the forward keeps only block-sized buffers: same values (float64)."""
    inputs = make_inputs(2, 5, length, 4, seed=length + 100)
    args, kw = split(inputs, opts)
    y_ref, last_ref = selective_scan_ref(*args, **kw, return_last_state=True)
    with torch.no_grad():
        y, last = selective_scan_chunked(*(a.clone().requires_grad_() for a in args), **kw,
                                         return_last_state=True, chunk_size=chunk_size)
    assert rel_err(y, y_ref) < 1e-10 and rel_err(last, last_ref) < 1e-10
    y2 = selective_scan_chunked(*args, **kw, chunk_size=chunk_size)  # no input needs grad
    assert rel_err(y2, y_ref) < 1e-10


def test_scratch_buffers_never_leak_into_results():
    """Block buffers are reused from call to call: the outputs and last states of earlier
    calls must not change when later calls run (inference and training paths)."""
    first = make_inputs(2, 5, 30, 4, seed=31)
    second = make_inputs(2, 5, 30, 4, seed=32)
    args1, kw = split(first, OPTIONS[2])
    args2, _ = split(second, OPTIONS[2])
    with torch.no_grad():
        y1, last1 = selective_scan_chunked(*args1, **kw, return_last_state=True, chunk_size=7)
    kept = (y1.clone(), last1.clone())
    leaves = [a.clone().requires_grad_() for a in args2]
    y2, last2 = selective_scan_chunked(*leaves, **kw, return_last_state=True, chunk_size=7)
    y2_kept = y2.detach().clone()
    with torch.no_grad():
        selective_scan_chunked(*args1, **kw, chunk_size=7)  # reuses the buffers again
    (y2.sum() + last2.sum()).backward()
    assert torch.equal(y1, kept[0]) and torch.equal(last1, kept[1])
    assert torch.equal(y2.detach(), y2_kept)
    y_ref, last_ref = selective_scan_ref(*args2, **kw, return_last_state=True)
    assert rel_err(y2_kept, y_ref) < 1e-10 and rel_err(last2.detach(), last_ref) < 1e-10


def test_scratch_buffers_across_inference_mode():
    """A call under torch.inference_mode, then no_grad and training calls (and back): each works and is right
    (inference tensors cannot be written outside inference mode, so the modes must not share buffers)."""
    inputs = make_inputs(2, 5, 30, 4, seed=33)
    args, kw = split(inputs, OPTIONS[2])
    y_ref = selective_scan_ref(*args, **kw)
    with torch.inference_mode():
        assert rel_err(selective_scan_chunked(*args, **kw), y_ref) < 1e-10
    with torch.no_grad():
        assert rel_err(selective_scan_chunked(*args, **kw), y_ref) < 1e-10
    leaves = [a.clone().requires_grad_() for a in args]
    y = selective_scan_chunked(*leaves, **kw)
    y.sum().backward()
    assert rel_err(y.detach(), y_ref) < 1e-10
    with torch.inference_mode():
        assert rel_err(selective_scan_chunked(*args, **kw), y_ref) < 1e-10


def test_training_keeps_block_checkpoints_not_all_states():
    """The autograd graph saves one state per block, not one per step: the bytes it saves
    stay far below the L * b * N * D states."""
    b, d, length, n, T = 2, 16, 64, 8, 8
    inputs = make_inputs(b, d, length, n, dtype=torch.float32, seed=41)
    args, kw = split({k: v.requires_grad_() for k, v in inputs.items()}, OPTIONS[2])
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = selective_scan_chunked(*args, **kw, chunk_size=T)
    all_states = length * b * n * d * 4
    checkpoints = (length // T) * b * n * d * 4
    assert checkpoints in saved  # the block checkpoints
    assert max(saved) < all_states / 2
    assert sum(saved) < all_states  # inputs in two layouts + checkpoints: still less
    y.sum().backward()  # and the gradients are still right (checked in depth above)


@pytest.mark.parametrize('grad', [False, True])
def test_transposed_views_match_reference(grad):
    """The mixer passes delta, B and C as (b, ., L) views of (b, L, .) memory (mamba-ssm makes
    them contiguous itself); the CPU scan reads them as they are. Same values and gradients."""
    b, d, n, length = 2, 5, 4, 23
    inputs = make_inputs(b, d, length, n, seed=5)
    opts = OPTIONS[2]  # MambaVision's call
    g = torch.Generator().manual_seed(3)
    weights = (torch.randn(b, d, length, generator=g, dtype=torch.float64),
               torch.randn(b, d, n, generator=g, dtype=torch.float64))
    y_ref, last_ref, g_ref = run_with_grads(selective_scan_ref, inputs, opts, weights)
    leaves = {k: v.transpose(1, 2).contiguous().requires_grad_(grad)  # (b, L, .) memory
              if k in ('delta', 'B', 'C') else v.clone().requires_grad_(grad)
              for k, v in inputs.items()}
    views = {k: v.transpose(1, 2) if k in ('delta', 'B', 'C') else v
             for k, v in leaves.items()}
    assert not views['delta'].is_contiguous()
    args, kw = split(views, opts)
    with torch.set_grad_enabled(grad):
        y, last = selective_scan_chunked(*args, **kw, return_last_state=True)
    assert rel_err(y.detach(), y_ref) < 1e-10 and rel_err(last.detach(), last_ref) < 1e-10
    if grad:
        ((y * weights[0]).sum() + (last * weights[1]).sum()).backward()
        for key in g_ref:
            grad_key = leaves[key].grad
            if key in ('delta', 'B', 'C'):
                grad_key = grad_key.transpose(1, 2)
            assert rel_err(grad_key, g_ref[key]) < 1e-10, key


@pytest.mark.parametrize('opts', OPTIONS)
@pytest.mark.parametrize('grad', [False, True])
def test_inputs_untouched_and_backward_repeatable(opts, grad):
    """The scan works in place on its own buffers only: the inputs keep their values, and a
    retained graph gives the same gradients on a second backward."""
    inputs = make_inputs(2, 3, 20, 4, seed=21)
    before = {k: v.clone() for k, v in inputs.items()}
    leaves = {k: v.requires_grad_(grad) for k, v in inputs.items()}
    args, kw = split(leaves, opts)
    y, last = selective_scan_chunked(*args, **kw, return_last_state=True, chunk_size=6)
    if grad:
        loss = (y * y).sum() + last.sum()
        loss.backward(retain_graph=True)
        first = {k: v.grad.clone() for k, v in leaves.items() if v.grad is not None}
        for v in leaves.values():
            v.grad = None
        loss.backward()
        for k, g in first.items():
            assert torch.equal(leaves[k].grad, g), k
    for k, v in before.items():
        assert torch.equal(leaves[k].detach(), v), k


@pytest.mark.parametrize('length', [7, 197])
def test_chunked_float32(length):
    """float32 inputs against the float64 reference.

    Tolerance 2e-5 relative to the largest value: float32 rounding (6e-8) accumulates over
    <= 197 steps and N-term sums, a few 1e-6 in practice; any indexing or gradient bug gives an
    O(1) error. Gradients get 1e-4 (they add a reverse scan and products of three factors).
    """
    b, d, n = 2, 6, 8
    opts = OPTIONS[1]
    inputs = make_inputs(b, d, length, n, seed=3)
    g = torch.Generator().manual_seed(4)
    weights = (torch.randn(b, d, length, generator=g, dtype=torch.float64),
               torch.randn(b, d, n, generator=g, dtype=torch.float64))
    y_ref, last_ref, g_ref = run_with_grads(selective_scan_ref, inputs, opts, weights)
    inputs32 = {k: v.float() for k, v in inputs.items()}
    y, last, grads = run_with_grads(selective_scan_chunked, inputs32, opts,
                                    [w.float() for w in weights])
    assert y.dtype == torch.float32
    assert rel_err(y.double(), y_ref) < 2e-5
    assert rel_err(last.double(), last_ref) < 2e-5
    for key in g_ref:
        assert rel_err(grads[key].double(), g_ref[key]) < 1e-4, key


def test_gradcheck_chunked():
    """Finite differences confirm the hand-written adjoint (two chunks plus a tail)."""
    inputs = make_inputs(1, 2, 7, 3, seed=5)
    args, kw = split(inputs, OPTIONS[1])
    leaves = [a.clone().requires_grad_() for a in args] + \
        [kw[k].clone().requires_grad_() for k in ('D', 'z', 'delta_bias')]

    def fn(u, delta, A, B, C, D, z, delta_bias):
        y, last = selective_scan_chunked(u, delta, A, B, C, D, z, delta_bias, True, True,
                                         chunk_size=3)
        return y, last

    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_sequential_baseline_matches_reference():
    inputs = make_inputs(2, 4, 33, 4, seed=9)
    args, kw = split(inputs, OPTIONS[1])
    y_ref, last_ref = selective_scan_ref(*args, **kw, return_last_state=True)
    y, last = selective_scan_sequential(*args, **kw, return_last_state=True)
    assert rel_err(y, y_ref) < 1e-12 and rel_err(last, last_ref) < 1e-12


def test_strong_decay_is_stable():
    """exp(delta*A) far below float32's range: no inf/NaN, still the reference (float64)."""
    inputs = make_inputs(2, 4, 150, 4, seed=11)
    inputs['delta'] = inputs['delta'].abs() * 100 + 50  # delta*A down to about -4e3 per step
    inputs['A'] = inputs['A'] * 10
    weights = (torch.ones(2, 4, 150, dtype=torch.float64), torch.ones(2, 4, 4,
                                                                        dtype=torch.float64))
    opts = dict(use_D=True)
    y_ref, last_ref, g_ref = run_with_grads(selective_scan_ref, inputs, opts, weights)
    y, last, grads = run_with_grads(selective_scan_chunked, inputs, opts, weights,
                                    chunk_size=16)
    assert rel_err(y, y_ref) < 1e-10
    for key in g_ref:
        assert torch.isfinite(grads[key]).all()
        assert rel_err(grads[key], g_ref[key]) < 1e-10, key
    y32 = selective_scan_chunked(*(inputs[k].float() for k in 'u delta A B C'.split()),
                                 D=inputs['D'].float(), chunk_size=16)
    assert torch.isfinite(y32).all()


def test_half_input_returns_input_dtype():
    inputs = make_inputs(1, 4, 20, 4, seed=12)
    args, kw = split(inputs, OPTIONS[2])
    y_ref = selective_scan_ref(*args, **kw)
    y = selective_scan_chunked(*(a.bfloat16() for a in args),
                               **{k: (v.float() if torch.is_tensor(v) else v)
                                  for k, v in kw.items()})
    assert y.dtype == torch.bfloat16
    assert rel_err(y.double(), y_ref) < 2e-2  # bf16 has 8 mantissa bits


# --------------------------------------------------------------------------------------------
# Backend choice: mamba-ssm's kernel is probed once per CUDA device (faked here on CPU tensors).
# --------------------------------------------------------------------------------------------
class _NotInstalled:
    """A meta path finder that makes ``import mamba_ssm`` fail as when it is not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'mamba_ssm':
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return None


@pytest.fixture
def backend(monkeypatch):
    """A clean backend state, CPU tensors routed as CUDA ones, print_log recorded, and
    ``install(fn)`` to fake an importable mamba-ssm whose ``selective_scan_fn`` is ``fn``."""
    ssb._reset_backends()
    monkeypatch.delenv(ss.SCAN_ENV, raising=False)
    monkeypatch.setattr(ssb, '_FORCE_PYTORCH', None)
    for module in (ssb, ssc):  # the backend choice and the PyTorch scan's settings
        monkeypatch.setattr(module, '_device_type', lambda device: 'cuda')
    logs = []
    monkeypatch.setattr(ssb, 'print_log', lambda msg, logger=None, level=None: logs.append(
        (msg, level)))

    def install(fn=None, missing=False):
        if missing:  # as if not installed, whether it is or not
            for name in [k for k in sys.modules if k.split('.')[0] == 'mamba_ssm']:
                monkeypatch.delitem(sys.modules, name)
            monkeypatch.setattr(sys, 'meta_path', [_NotInstalled()] + sys.meta_path)
            return
        mods = {name: types.ModuleType(name) for name in
                ('mamba_ssm', 'mamba_ssm.ops', 'mamba_ssm.ops.selective_scan_interface')}
        if fn is not None:
            mods['mamba_ssm.ops.selective_scan_interface'].selective_scan_fn = fn
        for name, mod in mods.items():
            monkeypatch.setitem(sys.modules, name, mod)

    yield types.SimpleNamespace(install=install, logs=logs)
    ssb._reset_backends()


def _counting(fn):
    calls = []

    def wrapped(*args):
        calls.append(len(args))
        return fn(*args)

    wrapped.calls = calls
    return wrapped


def _mixer_call():
    inputs = make_inputs(2, 3, 10, 2, dtype=torch.float32, seed=14)
    return split(inputs, OPTIONS[2])


def test_backend_kernel_raising_at_first_call_falls_back_and_logs_once(backend):
    """mamba-ssm's newest sources import without the compiled kernel and raise at the first
    forward: the probe catches it, the PyTorch scan runs, one warning names the error."""

    def broken(*args):
        broken.calls += 1
        raise ModuleNotFoundError("No module named 'selective_scan_cuda'")

    broken.calls = 0
    backend.install(broken)
    args, kw = _mixer_call()
    y_ref = selective_scan_ref(*(a.double() for a in args),
                               **{k: v.double() if torch.is_tensor(v) else v for k, v in kw.items()})
    for _ in range(3):
        y = selective_scan_fn(*args, **kw)
        assert rel_err(y.double(), y_ref) < 1e-5
    assert ss.scan_backend('cpu') == 'pytorch'
    assert broken.calls == 1  # probed once, never retried
    assert len(backend.logs) == 1
    msg, level = backend.logs[0]
    assert level == logging.WARNING
    assert 'chunked PyTorch scan' in msg and 'failed' in msg and 'selective_scan_cuda' in msg
    assert 'failed' in ss.scan_backend_info('cpu')[1]


@pytest.mark.parametrize('wrong', ['forward', 'backward'])
def test_backend_kernel_with_wrong_results_is_rejected(backend, wrong):
    """A kernel that runs but computes wrong outputs, or right outputs with wrong gradients,
    is not used."""

    def bad(*args):
        bad.calls += 1
        y = selective_scan_chunked(*args)
        if wrong == 'forward':
            return y * 1.01
        return y.detach() + 2 * (y - y.detach())  # same values, doubled gradients

    bad.calls = 0
    backend.install(bad)
    args, kw = _mixer_call()
    selective_scan_fn(*args, **kw)
    assert ss.scan_backend('cpu') == 'pytorch'
    assert bad.calls >= 1
    calls = bad.calls
    selective_scan_fn(*args, **kw)
    assert bad.calls == calls  # not used after the probe
    assert len(backend.logs) == 1 and 'wrong results' in backend.logs[0][0]
    assert backend.logs[0][1] == logging.WARNING


def test_backend_working_kernel_is_used(backend):
    """A kernel that matches the reference is used for every later call on that device, with
    mamba-ssm's positional signature; one info line says so."""
    kernel = _counting(selective_scan_chunked)
    backend.install(kernel)
    args, kw = _mixer_call()
    with torch.inference_mode():  # the probe's backward still works
        selective_scan_fn(*args, **kw)
    assert len(kernel.calls) == 3  # the probe (two calls), then the call itself
    y = selective_scan_fn(*args, **kw, return_last_state=True)
    assert kernel.calls == [10] * 4  # mamba-ssm's positional signature
    assert isinstance(y, tuple) and len(y) == 2
    assert ss.scan_backend('cpu') == 'mamba_ssm'
    assert len(backend.logs) == 1
    msg, level = backend.logs[0]
    assert level == logging.INFO and "mamba-ssm's CUDA kernel" in msg


def test_backend_not_installed_or_not_importable(backend):
    backend.install(missing=True)
    assert ss.scan_backend_info('cpu') == ('pytorch', 'mamba-ssm is not installed')
    ssb._reset_backends()
    backend.install(None)  # the interface module lacks selective_scan_fn: ImportError
    backend.logs.clear()
    name, reason = ss.scan_backend_info('cpu')
    assert name == 'pytorch' and 'does not import' in reason and 'ImportError' in reason
    assert len(backend.logs) == 1 and backend.logs[0][1] == logging.WARNING


def test_backend_forced_pytorch(backend, monkeypatch):
    """The environment variable and force_pytorch_scan() keep the kernel unused (and unprobed);
    SAR_OILSPILL_SELECTIVE_SCAN=mamba_ssm turns a fallback into an error."""
    kernel = _counting(selective_scan_chunked)
    backend.install(kernel)
    args, kw = _mixer_call()
    monkeypatch.setenv(ss.SCAN_ENV, 'pytorch')
    selective_scan_fn(*args, **kw)
    selective_scan_fn(*args, **kw)
    assert ss.scan_backend('cpu') == 'pytorch' and kernel.calls == []
    assert len(backend.logs) == 1 and 'SAR_OILSPILL_SELECTIVE_SCAN=pytorch' in backend.logs[0][0]
    monkeypatch.setenv(ss.SCAN_ENV, 'auto')
    ss.force_pytorch_scan()
    assert ss.scan_backend('cpu') == 'pytorch' and kernel.calls == []
    ss.force_pytorch_scan(None)
    assert ss.scan_backend('cpu') == 'mamba_ssm' and kernel.calls
    monkeypatch.setenv(ss.SCAN_ENV, 'kernel')
    with pytest.raises(ValueError, match='SAR_OILSPILL_SELECTIVE_SCAN'):
        ss.scan_backend('cpu')
    ssb._reset_backends()
    backend.install(missing=True)
    monkeypatch.setenv(ss.SCAN_ENV, 'mamba_ssm')
    with pytest.raises(RuntimeError, match='not installed'):
        selective_scan_fn(*args, **kw)


def test_backend_cpu_never_probes(monkeypatch):
    """CPU tensors take the PyTorch scan without importing or probing mamba-ssm."""
    ssb._reset_backends()
    monkeypatch.delitem(sys.modules, 'mamba_ssm', raising=False)
    monkeypatch.setattr(sys, 'meta_path', [_NotInstalled()] + sys.meta_path)
    args, kw = _mixer_call()
    selective_scan_fn(*args, **kw)
    assert ss.scan_backend(torch.device('cpu')) == 'pytorch'
    assert ssb._BACKENDS == {}


# --------------------------------------------------------------------------------------------
# The PyTorch scan with its GPU settings (run on CPU tensors by routing them as CUDA ones).
# --------------------------------------------------------------------------------------------
def test_block_length_per_device():
    """CPU: blocks within 2 MiB (2^19 values); GPU: up to 2^24 values, the whole sequence at
    MambaVision-B's shapes (level 2 at batch 9: 9 x 256 x 8 values per step)."""
    width = 9 * 256 * 8
    assert ssc._block_len(196, width, None, 'cpu') == (1 << 19) // width == 28
    assert ssc._block_len(196, width, None, 'cuda') == 196
    assert ssc._block_len(196, 16 * 49 * 512 * 8, None, 'cuda') == 5  # still bounded
    assert ssc._block_len(196, 1 << 30, None, 'cuda') == 1
    assert ssc._block_len(196, width, 7, 'cuda') == ssc._block_len(196, width, 7, 'cpu') == 7


@contextlib.contextmanager
def _no_host_sync(monkeypatch):
    """Make every tensor-to-host conversion raise (on a GPU each would synchronise)."""

    def sync(*args, **kwargs):
        raise AssertionError('host synchronisation')

    with monkeypatch.context() as m:
        for name in ('__bool__', 'item', 'tolist', '__float__', '__int__', 'numpy', 'cpu'):
            m.setattr(torch.Tensor, name, sync)
        yield


@pytest.mark.parametrize('length,chunk_size', [(33, None), (33, 5), (1, None)])
@pytest.mark.parametrize('opts', [OPTIONS[1], OPTIONS[2]])
def test_gpu_settings_match_reference_without_sync_or_pool(monkeypatch, length, chunk_size, opts):
    """The GPU settings (whole-sequence blocks, fresh buffers, no data-dependent branch in the
    backward) against the reference in float64, one A entry zero (the case the CPU path's
    host-side check exists for); no buffer is pooled and nothing synchronises with the host."""
    b, d, n = 2, 5, 4
    inputs = make_inputs(b, d, length, n, seed=length + 50)
    inputs['A'][1, 2] = 0.0
    g = torch.Generator().manual_seed(6)
    weights = (torch.randn(b, d, length, generator=g, dtype=torch.float64),
               torch.randn(b, d, n, generator=g, dtype=torch.float64))
    y_ref, last_ref, g_ref = run_with_grads(selective_scan_ref, inputs, opts, weights)
    ss.release_scratch_buffers()
    monkeypatch.setattr(ssc, '_device_type', lambda device: 'cuda')
    with _no_host_sync(monkeypatch):
        y, last, grads = run_with_grads(selective_scan_chunked, inputs, opts, weights,
                                        chunk_size=chunk_size)
        args, kw = split(inputs, opts)
        with torch.no_grad():
            y_inf = selective_scan_chunked(*args, **kw, chunk_size=chunk_size)
    assert ssc._SCRATCH.pool == {}
    assert rel_err(y, y_ref) < 1e-10 and rel_err(last, last_ref) < 1e-10
    assert rel_err(y_inf, y_ref) < 1e-10
    for key in g_ref:
        assert rel_err(grads[key], g_ref[key]) < 1e-10, key


def test_sync_guard_catches_the_cpu_path(monkeypatch):
    """The guard above is not vacuous: the CPU settings check A on the host in the backward,
    and pool their buffers."""
    inputs = make_inputs(1, 3, 9, 2, seed=60)
    ss.release_scratch_buffers()
    with _no_host_sync(monkeypatch):
        with pytest.raises(AssertionError, match='host synchronisation'):
            run_with_grads(selective_scan_chunked, inputs, OPTIONS[2],
                           (torch.ones(1, 3, 9, dtype=torch.float64),
                            torch.ones(1, 3, 2, dtype=torch.float64)))
    assert ssc._SCRATCH.pool


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_scan_under_autocast_computes_in_float32(dtype):
    """Under CPU autocast the PyTorch scan still computes in float32 (as mamba-ssm's kernel
    does): float32 inputs give the float32 result exactly, half inputs a float32-accurate
    result rounded once, and gradients are finite and right."""
    inputs = make_inputs(2, 4, 40, 4, dtype=torch.float32, seed=70)
    args, kw = split(inputs, OPTIONS[2])
    y32 = selective_scan_chunked(*args, **kw)
    leaves = [a.clone().requires_grad_() for a in args]
    with torch.autocast('cpu', dtype=dtype):
        y = selective_scan_fn(*leaves, **kw)
        (y * y).sum().backward()
    assert y.dtype == torch.float32 and torch.equal(y.detach(), y32)
    ref = [a.clone().requires_grad_() for a in args]
    (selective_scan_chunked(*ref, **kw) ** 2).sum().backward()
    for a, r in zip(leaves, ref):
        assert torch.equal(a.grad, r.grad)
    with torch.autocast('cpu', dtype=dtype):
        y_half = selective_scan_fn(*(a.to(dtype) for a in args), **kw)
    assert y_half.dtype == dtype
    y_ref = selective_scan_ref(*(a.to(dtype).double() for a in args),
                               **{k: v.double() if torch.is_tensor(v) else v for k, v in kw.items()})
    tol = 8e-3 if dtype == torch.float16 else 4e-2  # one rounding of the output
    assert rel_err(y_half.double(), y_ref) < tol


@pytest.mark.parametrize('bad', ['grouped_B', 'A_shape', 'delta_shape', 'D_shape'])
def test_shape_errors_name_the_tensor(bad):
    inputs = make_inputs(2, 3, 5, 4)
    if bad == 'grouped_B':
        inputs['B'] = inputs['B'][:, None]
        match = 'B must be'
    elif bad == 'A_shape':
        inputs['A'] = inputs['A'][:2]
        match = 'A must be'
    elif bad == 'delta_shape':
        inputs['delta'] = inputs['delta'][..., :4]
        match = 'delta must'
    else:
        inputs['D'] = inputs['D'][:2]
        match = 'D must be'
    args, kw = split(inputs, OPTIONS[1])
    with pytest.raises(ValueError, match=match):
        selective_scan_chunked(*args, **kw)


def test_chunk_size_must_be_positive():
    args, kw = split(make_inputs(1, 2, 5, 2), OPTIONS[0])
    with pytest.raises(ValueError, match='chunk_size'):
        selective_scan_chunked(*args, **kw, chunk_size=0)


def test_reference_hand_computation():
    """The reference itself against a hand-computed 2-step, 1-channel, 1-state scan."""
    u = torch.tensor([[[1.0, 2.0]]], dtype=torch.float64)
    delta = torch.tensor([[[0.5, 1.0]]], dtype=torch.float64)
    A = torch.tensor([[-2.0]], dtype=torch.float64)
    B = torch.tensor([[[3.0, -1.0]]], dtype=torch.float64)
    C = torch.tensor([[[2.0, 4.0]]], dtype=torch.float64)
    h0 = 0.5 * 3.0 * 1.0  # exp(.)*0 + delta B u
    h1 = math.exp(-2.0) * h0 + 1.0 * -1.0 * 2.0
    expected = torch.tensor([[[2.0 * h0, 4.0 * h1]]], dtype=torch.float64)
    assert torch.allclose(selective_scan_ref(u, delta, A, B, C), expected)
    assert torch.allclose(selective_scan_chunked(u, delta, A, B, C), expected)


def test_selective_scan_module_gathers_the_implementations():
    """The old import path keeps every public name, each the object of the module that does the job."""
    from projects.sar_oilspill.models.backbones import scan_reference as ssr
    assert ss.selective_scan_fn is ssb.selective_scan_fn
    assert ss.selective_scan_chunked is ssc.selective_scan_chunked
    assert ss.selective_scan_sequential is ssr.selective_scan_sequential
    for name in ('scan_backend', 'scan_backend_info', 'force_pytorch_scan', 'SCAN_ENV'):
        assert getattr(ss, name) is getattr(ssb, name)
    assert ss.release_scratch_buffers is ssc.release_scratch_buffers
    assert {'selective_scan_fn', 'selective_scan_chunked', 'selective_scan_sequential', 'scan_backend',
            'scan_backend_info', 'force_pytorch_scan', 'release_scratch_buffers'} <= set(ss.__all__)

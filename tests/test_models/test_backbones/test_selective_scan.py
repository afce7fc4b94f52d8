"""Selective scan: the chunked scan and its hand-written gradient against the Mamba recurrence.

The reference below is written independently from the Mamba paper (Gu & Dao 2023, Eq. 2a/2b
with the ZOH A_bar = exp(delta A) and Euler B_bar = delta B of its Alg. 2), as a loop over time
with explicit softplus/SiLU formulas, and differentiated by autograd.
"""
import math
import sys

import pytest
import torch

from projects.sar_oilspill.models.backbones import selective_scan as ss
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


def test_dispatch_cpu_uses_pytorch_scan(monkeypatch):
    """On CPU the dispatcher never calls the CUDA kernel, even when one is importable."""
    called = []
    monkeypatch.setattr(ss, '_mamba_ssm_selective_scan', lambda: lambda *a: called.append(1))
    inputs = make_inputs(1, 3, 10, 2, seed=13)
    args, kw = split(inputs, OPTIONS[1])
    y = selective_scan_fn(*args, **kw)
    assert not called
    assert rel_err(y, selective_scan_ref(*args, **kw)) < 1e-10


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_dispatch_cuda_uses_kernel_when_present(monkeypatch):
    called = []

    def fake(*args):
        called.append(len(args))
        return selective_scan_chunked(*args)

    monkeypatch.setattr(ss, '_mamba_ssm_selective_scan', lambda: fake)
    inputs = {k: v.cuda() for k, v in make_inputs(1, 3, 10, 2, seed=14).items()}
    args, kw = split(inputs, OPTIONS[1])
    selective_scan_fn(*args, **kw)
    assert called == [10]


def test_mamba_ssm_not_imported_at_module_import():
    assert 'mamba_ssm' not in sys.modules or ss._MAMBA_SSM_TRIED
    try:
        import mamba_ssm  # noqa: F401
    except Exception:
        assert ss._mamba_ssm_selective_scan() is None


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

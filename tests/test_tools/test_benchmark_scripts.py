"""The benchmark scripts run (tiny settings): their numbers are produced, finite, positive and ordered as expected."""
import json
import math
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _run(args, timeout=300):
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return r.stdout


def test_bench_sampling(tmp_path):
    out_json = str(tmp_path / 'sampling.json')
    out = _run(['tools/benchmarks/bench_sampling.py', '--arch', 'tiny', '--sizes', '32', '--batch', '1',
                '--measure-steps', '1', '--repeats', '1', '--out', out_json])
    assert '| 32x32 |' in out
    (row,) = json.load(open(out_json))['rows']
    assert row['tiles_per_s'] > 0 and row['seconds_per_step'] > 0 and row['peak_mem_mb'] >= 0


def _table_rows(out, first_cell):
    """Cells of the markdown rows of ``out`` whose first cell is in ``first_cell``, as {first: [floats or None]}."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if line.startswith('|') and cells[0] in first_cell:
            rows[cells[0]] = [None if c == '-' else float(c) for c in cells[1:]]
    return rows


def _sane(x):
    return x is not None and math.isfinite(x) and x > 0


def test_bench_baselines():
    out = _run(['tools/benchmarks/bench_baselines.py', '--configs', 'configs/baselines/segformer_b0_sos_alos.py',
                '--size', '64', '64', '--batch', '1', '--iters', '2', '--warmup', '1'])
    (params, train, infer), = _table_rows(out, {'segformer_b0_sos_alos.py'}).values()
    assert 3.0 < params < 4.5  # SegFormer-B0 (MiT-B0 + all-MLP head, 2 classes): ~3.7 M parameters
    assert _sane(train) and _sane(infer)
    assert infer > train  # a forward alone is faster than forward + backward + optimizer step


def test_bench_selective_scan():
    """The README's scan benchmark: both implementations timed in turns, errors within float32 rounding."""
    out = _run(['tools/benchmarks/bench_selective_scan.py', '--arch', 'test', '--img-size', '64', '64', '--levels',
                '2', '3', '--repeats', '2', '--group', '2', '--threads', '1'])
    assert 'malloc:' in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(('2 ', '3 '))]
    assert [(r[0], r[-6]) for r in rows] == [('2', 'fwd'), ('2', 'fwd+bwd'), ('3', 'fwd'), ('3', 'fwd+bwd')]
    assert all(float(r[-1]) < 1e-5 for r in rows)  # max relative error vs the sequential reference
    with pytest.raises(AssertionError, match='--group'):
        _run(['tools/benchmarks/bench_selective_scan.py', '--arch', 'test', '--group', '1'])


@pytest.mark.timeout(400)
def test_bench_caft():
    out = _run(['tools/benchmarks/bench_caft.py', '--backbone', 'test-small', '--shape', '64', '64', '--runs', '1',
                '--warmup', '0'])
    rows = _table_rows(out, {'none', 'conv3x3', 'caft'})
    assert set(rows) == {'none', 'conv3x3', 'caft'}
    for variant, (params, d_params, flops, d_flops, ms, d_ms, mem, d_mem) in rows.items():
        assert _sane(params) and _sane(flops) and _sane(ms) and mem is not None and math.isfinite(mem), variant
        if variant == 'none':
            assert d_params is d_flops is d_ms is None
        else:  # a skip module adds parameters and FLOPs to the plain skip connection; the deltas are consistent
            assert d_params > 0 and d_flops > 0, variant
            assert d_params == pytest.approx(params - rows['none'][0], abs=2e-3)
            assert d_flops == pytest.approx(flops - rows['none'][2], abs=2e-3)


def test_flop_count_traces_mambavision():
    """mmengine's FlopAnalyzer (tools/analysis/get_flops.py, bench_caft) traces the selective scan."""
    import torch
    from mmengine.analysis import FlopAnalyzer
    from mmseg.registry import MODELS
    backbone = MODELS.build(dict(type='MambaVision', arch='test')).eval()
    x = torch.randn(1, 3, 64, 64)
    for grad in (False, True):  # bench_caft traces with autograd on, after a warm-up forward
        with torch.set_grad_enabled(grad):
            backbone(x)  # fills the scan's scratch buffers, which the trace must not write into
            flops = FlopAnalyzer(backbone, (x, )).total()
        assert flops > 0


def test_bench_scene_inference(tmp_path):
    """The whole-scene benchmark: a small georeferenced scene through tools/inference.py in a child process; its
    wall time and peak RSS are reported, and the outputs (class map, polygons, quicklook) are there."""
    out = _run(['tools/benchmarks/bench_scene_inference.py', '--configs', 'configs/saross/sos_alos_tiny_cpu.py',
                '--size', '300', '420', '--tile', '128', '128', '--threads', '1', '--work-dir', str(tmp_path)])
    (row, ) = [line for line in out.splitlines() if line.startswith('| `configs/saross/sos_alos_tiny_cpu.py`')]
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[1:4] == ['300x420', '128x128', '1']
    seconds, peak_mb = float(cells[4]), float(cells[5])
    assert _sane(seconds) and 100 < peak_mb < 4000  # a Python with torch and GDAL; a small scene
    res = tmp_path / 'out_sos_alos_tiny_cpu'
    for sub in ('masks', 'polygons', 'quicklooks'):
        assert os.listdir(res / sub), sub

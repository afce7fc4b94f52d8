"""Train and inference speed of segmentation configs on this machine (images/s, medians over repeats).

Each config's model is built as in training (BN, no pretrained weights); a training step is forward + loss +
backward + AdamW step on a batch of random images with random labels; inference is ``model.predict`` (whole
image, the configs' test mode) on one image. Timings are medians; run on an idle machine.

    python tools/benchmarks/bench_baselines.py [--configs ...] [--size 256 256] [--batch 2] [--iters 5]

``--interleave N`` (inference only) builds every model first and times them in N rounds, one forward of each
config per round, so that a shared or throttled machine slows all configs alike; it prints ms per image, GFLOPs
(mmengine's analyzer, one multiply-add = one FLOP, batch 1) and each config's time and FLOPs relative to the first
config, and ``time ratio / FLOP ratio`` (1.0: as fast per FLOP as the first config).
"""
import argparse
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.structures import PixelData  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402

import projects.sar_oilspill  # noqa: E402,F401

DEFAULT = ['configs/baselines/unet_sos_alos.py', 'configs/baselines/deeplabv3plus_r18_sos_alos.py',
           'configs/baselines/deeplabv3plus_r50_sos_alos.py', 'configs/baselines/pspnet_r50_sos_alos.py',
           'configs/baselines/segformer_b0_sos_alos.py', 'configs/baselines/segformer_b2_sos_alos.py']


def make_batch(n, h, w, num_classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, 256, (n, 3, h, w), generator=g).float()
    samples = []
    for _ in range(n):
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, h, w), generator=g))
        samples.append(s)
    return inputs, samples


def bench(config, size, batch, iters, warmup):
    cfg = Config.fromfile(config)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    num_classes = cfg.model.decode_head.num_classes
    params = sum(p.numel() for p in model.parameters()) / 1e6
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    inputs, samples = make_batch(batch, *size, num_classes)
    data = model.data_preprocessor(dict(inputs=list(inputs), data_samples=samples), training=True)
    model.train()
    times = []
    for i in range(warmup + iters):
        t = time.perf_counter()
        losses = model.loss(data['inputs'], data['data_samples'])
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    train_ips = batch / statistics.median(times)
    model.eval()
    x, s = make_batch(1, *size, num_classes, seed=1)
    d = model.data_preprocessor(dict(inputs=list(x), data_samples=s), training=False)
    times = []
    with torch.no_grad():
        for i in range(warmup + iters):
            t = time.perf_counter()
            model.predict(d['inputs'], d['data_samples'])
            if i >= warmup:
                times.append(time.perf_counter() - t)
    return params, train_ips, 1.0 / statistics.median(times)


def flops_of(model, size):
    """GFLOPs of one ``mode='tensor'`` forward at batch 1 (mmengine's FlopAnalyzer)."""
    from mmengine.analysis import FlopAnalyzer

    class _Tensor(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x, mode='tensor')

    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        return FlopAnalyzer(_Tensor(model), (x, )).unsupported_ops_warnings(False).uncalled_modules_warnings(
            False).total() / 1e9


def interleaved(configs, size, rounds, warmup):
    """Inference ms per image of every config, timed round-robin (one forward of each per round)."""
    init_default_scope('mmseg')
    models, data = {}, {}
    for c in configs:
        cfg = Config.fromfile(c)
        model = MODELS.build(cfg.model).eval()
        x, s = make_batch(1, *size, cfg.model.decode_head.num_classes, seed=1)
        models[c] = model
        data[c] = model.data_preprocessor(dict(inputs=list(x), data_samples=s), training=False)
    times = {c: [] for c in configs}
    with torch.no_grad():
        for r in range(warmup + rounds):
            for c in configs:
                t = time.perf_counter()
                models[c].predict(data[c]['inputs'], data[c]['data_samples'])
                if r >= warmup:
                    times[c].append(time.perf_counter() - t)
    rows = []
    for c in configs:
        params = sum(p.numel() for p in models[c].parameters()) / 1e6
        rows.append((c, params, flops_of(models[c], size), 1e3 * statistics.median(times[c])))
    ref = rows[0]
    print(f'| config | params (M) | GFLOPs | inference (ms / image) | time ratio | FLOP ratio | time / FLOP ratio |')
    print('|---|---|---|---|---|---|---|')
    for c, params, gflops, ms in rows:
        print(f'| {osp.basename(c)} | {params:.2f} | {gflops:.2f} | {ms:.1f} | {ms / ref[3]:.2f} | '
              f'{gflops / ref[2]:.2f} | {(ms / ref[3]) / (gflops / ref[2]):.2f} |', flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--configs', nargs='+', default=DEFAULT)
    p.add_argument('--size', type=int, nargs=2, default=(256, 256), metavar=('H', 'W'))
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--interleave', type=int, default=0, metavar='ROUNDS',
                   help='inference only: time all configs round-robin for ROUNDS rounds (see above)')
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.interleave:
        print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, input {a.size[0]}x{a.size[1]}, '
              f'batch 1, medians of {a.interleave} interleaved rounds after {a.warmup} warm-up')
        interleaved(a.configs, tuple(a.size), a.interleave, a.warmup)
        return
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, input {a.size[0]}x{a.size[1]}, '
          f'train batch {a.batch}, medians of {a.iters} iterations')
    print(f'| config | params (M) | train (img/s) | inference (img/s) |\n|---|---|---|---|')
    for c in a.configs:
        params, tr, inf = bench(c, tuple(a.size), a.batch, a.iters, a.warmup)
        print(f'| {osp.basename(c)} | {params:.2f} | {tr:.2f} | {inf:.2f} |', flush=True)


if __name__ == '__main__':
    main()

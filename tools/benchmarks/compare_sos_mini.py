"""Same data, same seed, same wall-clock training budget: SAROSS-Net (CPU-sized) vs stock UNet and SegFormer-B0.

Trains each config on the real SOS subset (palsar train split, 400 tiles) for ``--budget`` seconds of training
time (TrainTimeBudgetHook; validation excluded), then evaluates on the held-out palsar tiles with tools/test.py
and prints one table. Run on an otherwise idle machine: the budget is wall-clock.

    python tools/benchmarks/compare_sos_mini.py --data-root ../shared/data/sos_mini --budget 600
"""
import argparse
import os
import os.path as osp
import re
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

from projects.sar_oilspill.utils.tool_runs import ROOT, last_checkpoint, run_test, run_tool  # noqa: E402
CONFIGS = ['configs/saross/sos_alos_tiny_cpu.py', 'configs/baselines/unet_sos_alos.py',
           'configs/baselines/segformer_b0_sos_alos.py']


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data-root', default='../shared/data/sos_mini')
    p.add_argument('--budget', type=float, default=600, help='training seconds per model')
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--configs', nargs='+', default=CONFIGS)
    p.add_argument('--work-dir', default='work_dirs/compare_sos_mini')
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    if not osp.isdir(osp.join(a.data_root, 'train', 'palsar')):
        raise SystemExit(f'{a.data_root}: no train/palsar folder (SOS layout expected)')
    rows = []
    for cfg in a.configs:
        name = osp.splitext(osp.basename(cfg))[0]
        wd = osp.join(a.work_dir, name)
        common = [f'train_dataloader.dataset.data_root={a.data_root}', f'val_dataloader.dataset.data_root={a.data_root}',
                  f'test_dataloader.dataset.data_root={a.data_root}', f'randomness.seed={a.seed}']
        # one optimiser, schedule and wall-clock budget for all, so the comparison is about the models
        os.makedirs(osp.join(ROOT, wd), exist_ok=True)
        budget_cfg = osp.join(ROOT, wd, 'budget_config.py')
        with open(budget_cfg, 'w') as f:
            f.write(f"_base_ = {osp.join(ROOT, cfg)!r}\n"
                    f"train_dataloader = dict(batch_size={a.batch})\n"
                    "train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=10**7, val_interval=10**7)\n"
                    "optim_wrapper = dict(_delete_=True, type='OptimWrapper', "
                    f"optimizer=dict(type='AdamW', lr={a.lr}, weight_decay=0.01))\n"
                    "param_scheduler = []\n"
                    "default_hooks = dict(checkpoint=dict(interval=10**7))\n"
                    f"custom_hooks = [dict(type='NonFiniteLossHook'), dict(type='TrainTimeBudgetHook', "
                    f"budget_s={a.budget})]\n")
        train_opts = common
        run_tool('tools/train.py', [budget_cfg, '--work-dir', wd, '--cfg-options', *train_opts])
        ckpt = last_checkpoint(osp.join(ROOT, wd))
        iters = int(re.search(r'iter_(\d+)\.pth', ckpt).group(1))
        m = run_test(cfg, ckpt, wd, ['--cfg-options', *common])
        rows.append((name, iters, m))
    print(f'\nSOS-ALOS subset ({a.data_root}), {a.budget:.0f} s of training each, batch {a.batch}, AdamW lr {a.lr}, '
          f'seed {a.seed}; test = held-out palsar tiles')
    print('| model | iterations in budget | mIoU | IoU oil | F1 (mean) | aAcc |\n|---|---|---|---|---|---|')
    for name, iters, m in rows:
        print(f'| {name} | {iters} | {m["mIoU"]:.2f} | {m["IoU.oil_spill"]:.2f} | {m["mF1"]:.2f} | {m["aAcc"]:.2f} |')


if __name__ == '__main__':
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    main()

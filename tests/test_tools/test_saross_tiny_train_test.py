"""A few-iteration train, then test, of the CPU-sized SAROSS-Net config (in process, on the synthetic fixture)."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.runner import Runner

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIG = osp.join(ROOT, 'configs', 'saross', 'synthetic_tiny.py')


def _cfg(root, work_dir):
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(work_dir)
    cfg.merge_from_dict({
        'train_dataloader.dataset.data_root': root, 'val_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root, 'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0, 'val_dataloader.persistent_workers': False,
        'test_dataloader.num_workers': 0, 'test_dataloader.persistent_workers': False,
        'val_dataloader.dataset.indices': 2, 'test_dataloader.dataset.indices': 2,
        'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2, 'default_hooks.checkpoint.interval': 2,
        'default_hooks.logger.interval': 1, 'param_scheduler': [], 'env_cfg.dist_cfg.backend': 'gloo',
    })
    return cfg


def test_saross_tiny_trains_and_tests(synthetic_osd, tmp_path):
    torch.manual_seed(0)
    runner = Runner.from_cfg(_cfg(synthetic_osd, tmp_path / 'train'))
    assert type(runner.model).__name__ == 'SoftLabelEncoderDecoder'
    assert runner.model.decode_head.skip.skip_type == 'caft'
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.train()
    after = runner.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())
    ckpt = osp.join(str(tmp_path / 'train'), 'iter_2.pth')
    assert osp.isfile(ckpt)

    cfg = _cfg(synthetic_osd, tmp_path / 'test')
    cfg.load_from = ckpt
    metrics = Runner.from_cfg(cfg).test()
    for key in ('mIoU', 'mF1', 'mPrecision', 'mRecall', 'aAcc', 'IoU.oil_spill'):
        assert key in metrics, key
    assert 0 <= metrics['mIoU'] <= 100

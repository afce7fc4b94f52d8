"""The DAKD configs of the stock mmseg models (configs/dakd/{segformer_b0,deeplabv3plus_r18,unet}_*.py): mmseg's own
decode heads, unmodified, with CE + KD + generalised Dice on real + D_aug; each model trains 2 iterations (in process)
on the synthetic OSD fixture + a tiny D_aug."""
import inspect
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmseg.models import decode_heads as mmseg_heads

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
MODELS_ = {'segformer_b0': 'SegformerHead', 'deeplabv3plus_r18': 'DepthwiseSeparableASPPHead', 'unet': 'FCNHead'}
DATASETS_ = {'osd': ('data/daug/osd', True, 5), 'sos_alos': ('data/daug/sos_alos', False, 2),
             'sos_sentinel': ('data/daug/sos_sentinel', False, 2)}


def _path(model, data):
    return osp.join(ROOT, 'configs', 'dakd', f'{model}_{data}.py')


@pytest.mark.parametrize('data', list(DATASETS_))
@pytest.mark.parametrize('model', list(MODELS_))
def test_config_is_the_baseline_with_dakd_losses_and_data(model, data):
    cfg = Config.fromfile(_path(model, data))
    base = Config.fromfile(osp.join(ROOT, 'configs', 'baselines', f'{model}_{data}.py'))
    head = cfg.model.decode_head
    assert head.type == MODELS_[model] and head.type == base.model.decode_head.type  # the stock head, by name
    assert inspect.getmodule(getattr(mmseg_heads, head.type)).__name__.startswith('mmseg.')
    assert cfg.model.type == 'SoftLabelEncoderDecoder'
    assert cfg.model.data_preprocessor.type == 'SoftLabelSegDataPreProcessor'
    assert cfg.model.data_preprocessor.mean == base.model.data_preprocessor.mean
    assert [loss['type'] for loss in head.loss_decode] == ['CrossEntropyLoss', 'KDLoss', 'SoftDiceLoss']
    assert head.loss_decode[0]['avg_non_ignore'] and head.loss_decode[2]['use_generalised_weights']
    root, mosaic, num_classes = DATASETS_[data]
    assert head.num_classes == num_classes
    ds = cfg.train_dataloader.dataset
    assert ds.type == 'DAKDDataset' and ds.real == base.train_dataloader.dataset
    assert ds.synthetic == dict(data_root=root, label_mode='soft', max_samples=None, mosaic=mosaic,
                                tile_uses_per_epoch=1.0)
    if 'auxiliary_head' in cfg.model and cfg.model.auxiliary_head:
        assert cfg.model.auxiliary_head.loss_decode['avg_non_ignore']
    assert cfg.train_cfg == base.train_cfg and cfg.optim_wrapper == base.optim_wrapper


def _make_daug(root, n=8, h=32, w=48):
    from projects.sar_oilspill.datasets.daug import write_daug_manifest, write_daug_sample
    from projects.sar_oilspill.datasets.osd import OSDDataset
    rng = np.random.default_rng(0)
    for i in range(n):
        write_daug_sample(str(root), f's{i:06d}', rng.uniform(-1, 1, (h, w)), 3 * rng.normal(size=(5, h, w)))
    write_daug_manifest(str(root), dict(classes=list(OSDDataset.METAINFO['classes']), num_classes=5))
    return str(root)


class _RecordLosses:
    """Keeps the loss dicts of the training iterations (wraps the model's ``loss``)."""

    def __init__(self, model):
        self.records, self._loss = [], model.loss
        model.loss = self

    def __call__(self, *args, **kwargs):
        out = self._loss(*args, **kwargs)
        self.records.append({k: float(v) for k, v in out.items()})
        return out


def _two_iteration_runner(path, synthetic_osd, tmp_path):
    daug = _make_daug(tmp_path / 'daug')
    cfg = Config.fromfile(path)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.merge_from_dict({
        'train_dataloader.dataset.real.data_root': synthetic_osd,
        'train_dataloader.dataset.real.indices': 2,  # 2 real images + 2 mosaics of the 8 tiles
        'train_dataloader.dataset.synthetic.data_root': daug,
        'train_dataloader.dataset.synthetic.tile_uses_per_epoch': 1.0,
        'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.dataset.data_root': synthetic_osd, 'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False, 'test_dataloader': None, 'test_cfg': None, 'test_evaluator': None,
        'train_cfg.max_iters': 2, 'train_cfg.val_interval': 100, 'default_hooks.checkpoint.interval': 100,
        'default_hooks.logger.interval': 1, 'param_scheduler': [], 'env_cfg.dist_cfg.backend': 'gloo',
        'randomness': dict(seed=0),
    })
    return Runner.from_cfg(cfg)


def _train_and_check(runner):
    """Train the 2 iterations; both loss kinds trained and the head's weights changed."""
    head = runner.model.decode_head
    record = _RecordLosses(runner.model)
    before = {k: v.clone() for k, v in head.state_dict().items()}
    runner.train()
    assert len(record.records) == 2
    for losses in record.records:
        for key in ('decode.loss_ce', 'decode.loss_kd', 'decode.loss_dice'):
            assert np.isfinite(losses[key]), (key, losses)
        assert losses['decode.loss_dice'] > 0
    # the epoch (2 iterations of 2) holds both real and synthetic samples: CE and KD both trained
    assert sum(r['decode.loss_kd'] > 0 for r in record.records) >= 1, record.records
    assert sum(r['decode.loss_ce'] > 0 for r in record.records) >= 1, record.records
    after = head.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())


@pytest.mark.parametrize('model', list(MODELS_))
def test_dakd_trains_two_iterations(model, synthetic_osd, tmp_path):
    runner = _two_iteration_runner(_path(model, 'osd'), synthetic_osd, tmp_path)
    head = runner.model.decode_head
    assert type(head).__name__ == 'SoftLabel' + MODELS_[model]
    assert isinstance(head, getattr(mmseg_heads, MODELS_[model]))
    assert len(runner.train_dataloader.dataset) == 2 + 2
    _train_and_check(runner)


def test_demo_dakd_config_trains_two_iterations_with_class_weighted_ce(synthetic_osd, tmp_path):
    """`make demo-dakd`'s student: SAROSS-Net with the demo's class-weighted CE on soft-label mosaics, whose hard
    labels are all ignore_index (mmseg alone raises IndexError there: open-mmlab/mmsegmentation#3734)."""
    runner = _two_iteration_runner(osp.join(ROOT, 'configs', 'dakd', 'saross_synthetic_tiny.py'), synthetic_osd,
                                   tmp_path)
    ce = runner.model.decode_head.loss_decode[0]
    assert type(ce).__name__ == 'CrossEntropyLoss' and ce.class_weight is not None and ce.avg_non_ignore
    _train_and_check(runner)

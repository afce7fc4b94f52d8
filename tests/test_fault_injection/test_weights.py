"""Weights that must be finite and fit (issue 12, items 2 and 3).

* Training stops at the first non-finite loss (``NonFiniteLossHook``, on by default), naming the iteration and the
  term, with a non-zero exit and no checkpoint from that iteration on.
* ``tools/test.py``, ``tools/inference.py`` and ``tools/generate_daug.py`` refuse a NaN checkpoint, one that does
  not fit the model (keys listed; ``--allow-partial`` overrides), a 0-byte or garbage file (named) and a pickle that
  would run code; a ``num_classes`` that differs from the dataset's classes is an error. MambaVision's ``init_cfg``
  refuses a NaN checkpoint.
* Checkpoints with mmengine's message hub (numpy scalars) and timm's ``argparse.Namespace`` still load, without
  ``builtins.getattr`` on torch's allow-list.
"""
import argparse
import glob
import importlib.util
import os
import os.path as osp
import pickle
import re
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

from projects.sar_oilspill.utils.checkpoint_compat import (CheckpointError, check_finite, get_state_dict,
                                                           load_checkpoint_file)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
SEG_CFG = osp.join(ROOT, 'configs', 'saross', 'synthetic_tiny.py')
JN_CFG = osp.join(ROOT, 'configs', 'sar_jointnet', 'synthetic_tiny_cpu.py')


def _tool(name):
    spec = importlib.util.spec_from_file_location(f'sar_tool_{name}', osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TEST_TOOL, INFER_TOOL, GEN_TOOL = _tool('test'), _tool('inference'), _tool('generate_daug')


def _env():
    return dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')


def _data_opts(root):
    return [f'train_dataloader.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}', 'train_dataloader.batch_size=2',
            'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
            'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
            'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
            'val_dataloader.dataset.indices=2', 'test_dataloader.dataset.indices=2']


# ------------------------------------------------------------------------------------------- checkpoint makers
def _malicious_getattr_pickle(marker: str) -> bytes:
    """A pickle that runs code if ``builtins.getattr`` is allow-listed: ``getattr(getattr, '__self__')`` is the
    builtins module, ``getattr(builtins, 'eval')`` is eval; it becomes the ``__setstate__`` of an allowed object
    (mmengine's HistoryBuffer) whose next BUILD calls it with the code (which writes ``marker``)."""
    def text(s):
        b = s.encode()
        return b'X' + struct.pack('<I', len(b)) + b

    getattr_ = b'cbuiltins\ngetattr\n'
    builtins_module = getattr_ + b'(' + getattr_ + text('__self__') + b'tR'
    eval_fn = getattr_ + b'(' + builtins_module + text('eval') + b'tR'
    history_buffer = b'cmmengine.logging.history_buffer\nHistoryBuffer\n)R'
    code = f"open({marker!r}, 'w').write('pwned')"
    return (b'\x80\x02' + history_buffer + b'}' + text('__setstate__') + eval_fn + b's' + b'b' + text(code)
            + b'b.')


class _Exec:
    """Pickles as ``exec(code)`` (torch.save of it is a zip checkpoint whose unpickling would run the code)."""

    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return (exec, (self.code, ))


def _bad_files(tmp_path, good_state):
    """name -> (path, expected message pattern, marker that must not appear)."""
    files = {}
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    files['empty'] = (str(empty), r"empty\.pth' is empty \(0 bytes\)", None)
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'this is not a checkpoint\x00\x01' * 40)
    files['garbage'] = (str(garbage), r"garbage\.pth' \(\d+ bytes\) is not a readable PyTorch checkpoint", None)
    nan = {k: (torch.full_like(v, float('nan')) if v.is_floating_point() else v) for k, v in good_state.items()}
    torch.save(dict(state_dict=nan), str(tmp_path / 'nan.pth'))
    n_float = sum(v.is_floating_point() for v in good_state.values())
    files['nan'] = (str(tmp_path / 'nan.pth'), rf"nan\.pth': {n_float} of {len(good_state)} tensors hold NaN/Inf",
                    None)
    marker1 = str(tmp_path / 'PWNED_getattr')
    (tmp_path / 'evil_getattr.pth').write_bytes(_malicious_getattr_pickle(marker1))
    files['evil_getattr'] = (str(tmp_path / 'evil_getattr.pth'), r"evil_getattr\.pth' refused: .*not plain weights",
                             marker1)
    marker2 = str(tmp_path / 'PWNED_exec')
    torch.save(dict(state_dict=good_state, meta=_Exec(f"open({marker2!r}, 'w').write('pwned')")),
               str(tmp_path / 'evil_exec.pth'))
    files['evil_exec'] = (str(tmp_path / 'evil_exec.pth'), r"evil_exec\.pth' refused: .*GLOBAL (builtins\.)?exec", marker2)
    return files


def _mismatched(state):
    """Drop one key, add one, mis-shape one; returns (state, the three keys)."""
    state = dict(state)
    keys = [k for k, v in state.items() if v.is_floating_point() and v.dim() >= 1]
    dropped, reshaped = keys[-1], keys[0]
    state.pop(dropped)
    state[reshaped] = torch.zeros(tuple(state[reshaped].shape) + (2, ))
    state['backbone.not_a_layer.weight'] = torch.zeros(3)
    return state, (dropped, reshaped, 'backbone.not_a_layer.weight')


@pytest.fixture(scope='module')
def seg_ckpts(tmp_path_factory):
    from projects.sar_oilspill.datasets import OSDDataset
    tmp = tmp_path_factory.mktemp('seg_ckpts')
    torch.manual_seed(0)
    state = MODELS.build(Config.fromfile(SEG_CFG).model).state_dict()
    meta = dict(dataset_meta=dict(OSDDataset.METAINFO))
    torch.save(dict(state_dict=state, meta=meta), str(tmp / 'good.pth'))
    bad_state, keys = _mismatched(state)
    torch.save(dict(state_dict=bad_state, meta=meta), str(tmp / 'mismatch.pth'))
    two = dict(classes=('sea', 'oil'), palette=[[0, 0, 0], [255, 0, 0]])
    torch.save(dict(state_dict=state, meta=dict(dataset_meta=two)), str(tmp / 'two_classes.pth'))
    return dict(dir=tmp, state=state, good=str(tmp / 'good.pth'), mismatch=str(tmp / 'mismatch.pth'),
                mismatch_keys=keys, two_classes=str(tmp / 'two_classes.pth'), bad=_bad_files(tmp, state))


@pytest.fixture(scope='module')
def jn_ckpts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('jn_ckpts')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(JN_CFG).model)
    model.init_label_net_from_sar_net()
    model.set_stage(3)
    state = model.state_dict()
    torch.save(dict(state_dict=state, meta=dict(iter=6)), str(tmp / 'good.pth'))
    bad_state, keys = _mismatched(state)
    torch.save(dict(state_dict=bad_state), str(tmp / 'mismatch.pth'))
    return dict(dir=tmp, state=state, good=str(tmp / 'good.pth'), mismatch=str(tmp / 'mismatch.pth'),
                mismatch_keys=keys, bad=_bad_files(tmp, state))


def _assert_refused(run, path, pattern, marker):
    with pytest.raises((SystemExit, CheckpointError)) as err:
        run(path)
    msg = str(err.value)
    assert re.search(pattern, msg, re.S), msg
    assert 'weights_only' not in msg, msg  # not torch's advice to turn the safe loader off
    if marker is not None:
        assert not osp.exists(marker), 'the malicious pickle ran'


# -------------------------------------------------------------------------------------------- training: NaN loss
def test_nan_loss_stops_training_before_any_checkpoint_of_it(synthetic_osd, tmp_path):
    wd = str(tmp_path / 'wd')
    cmd = [sys.executable, 'tools/train.py', SEG_CFG, '--work-dir', wd, '--cfg-options', *_data_opts(synthetic_osd),
           'train_cfg.max_iters=4', 'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=1',
           'default_hooks.logger.interval=1', 'optim_wrapper.optimizer.lr=1e6', 'param_scheduler=[]']
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-3000:]
    found = re.search(r'NonFiniteLossError: non-finite loss at iteration (\d+): ([^\n]*)', out)
    assert found, out[-3000:]
    iteration, terms = int(found.group(1)), found.group(2)
    assert 1 <= iteration <= 4 and re.search(r'decode\.loss_\w+=(nan|inf)', terms), terms
    saved = sorted(int(m) for m in re.findall(r'iter_(\d+)\.pth$', '\n'.join(os.listdir(wd)), re.M))
    assert saved == list(range(1, iteration)), (saved, iteration)  # nothing from the bad iteration on


def test_nonfinite_hook_unit(tmp_path):
    from projects.sar_oilspill.engine import NonFiniteLossError, NonFiniteLossHook
    from projects.sar_oilspill.engine.nonfinite_hook import nonfinite_terms

    class FakeRunner:
        iter = 6
        logger = __import__('logging').getLogger('nonfinite-test')

    hook = NonFiniteLossHook()
    good = dict(loss=torch.tensor(1.0), **{'decode.loss_ce': torch.tensor(0.5), 'decode.acc_seg': torch.tensor(3.)})
    hook.after_train_iter(FakeRunner(), 0, outputs=good)  # finite: nothing
    assert nonfinite_terms(dict(good, **{'decode.acc_seg': torch.tensor(float('nan'))})) == {}  # not a loss
    bad = dict(loss=torch.tensor(float('nan')), **{'decode.loss_ce': torch.tensor(0.5),
                                                    'decode.loss_dice': torch.tensor(float('inf'))})
    with pytest.raises(NonFiniteLossError, match=r'iteration 7: loss=nan, decode\.loss_dice=inf'):
        hook.after_train_iter(FakeRunner(), 0, outputs=bad)
    with pytest.raises(ValueError, match='check_interval'):
        NonFiniteLossHook(check_interval=0)


def test_every_config_enables_the_nonfinite_hook():
    """On in the shared runtime; no config replaces custom_hooks without it (a static check: loading every config
    takes half a minute); two configs loaded for real."""
    configs = glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    assert len(configs) > 20
    runtime = osp.join(ROOT, 'configs', '_base_', 'default_runtime.py')
    dropping = [osp.relpath(c, ROOT) for c in configs if c != runtime and re.search(r'^custom_hooks\s*=', open(
        c).read(), re.M) and 'NonFiniteLossHook' not in open(c).read()]
    assert not dropping, dropping
    for cfg in (SEG_CFG, JN_CFG):
        assert 'NonFiniteLossHook' in [h.get('type') for h in Config.fromfile(cfg).custom_hooks], cfg


# ---------------------------------------------------------------------------------------------- the loader itself
def test_loader_keeps_mmengine_and_timm_checkpoints_without_builtins_getattr(tmp_path):
    import builtins
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('weights-test-hub')
    for i in range(3):
        hub.update_scalar('train/loss', np.float64(1.5 + i))
        hub.update_scalar('train/lr', np.float32(0.01))
    hub.update_info('iter', np.int64(3))
    path = str(tmp_path / 'mm.pth.tar')
    state = dict(w=torch.ones(2))
    torch.save(dict(state_dict=state, message_hub=hub.state_dict(), meta=dict(iter=np.int64(3)),
                    args=argparse.Namespace(lr=0.005, model='mamba_vision_T', metric=np.float64(0.8))), path)
    ckpt = load_checkpoint_file(path)
    assert torch.equal(ckpt['state_dict']['w'], state['w']) and ckpt['args'].model == 'mamba_vision_T'
    assert ckpt['message_hub']['log_scalars']['train/loss'].mean() == pytest.approx(2.5)
    assert ckpt['message_hub']['log_scalars']['train/loss'].current() == pytest.approx(3.5)
    assert builtins.getattr not in torch.serialization.get_safe_globals()
    # torch's default torch.load (mmengine's loader, Runner.resume) reads it too
    assert torch.load(path, map_location='cpu')['meta']['iter'] == 3


def test_malicious_pickles_are_live_and_refused(tmp_path):
    """Negative control: the payloads do run under a plain unpickler; the loader refuses them."""
    marker = str(tmp_path / 'control')
    pickle.loads(_malicious_getattr_pickle(marker))
    assert osp.exists(marker)
    state = dict(w=torch.ones(2))
    files = _bad_files(tmp_path, state)
    torch.load(files['evil_exec'][0], weights_only=False)
    assert osp.exists(files['evil_exec'][2])
    os.remove(files['evil_exec'][2])
    def load(p):
        check_finite(get_state_dict(load_checkpoint_file(p), p), p)

    for name, (path, pattern, mark) in files.items():
        _assert_refused(load, path, pattern, mark)
    with pytest.raises(CheckpointError, match="nowhere.pth' does not exist"):
        load_checkpoint_file(str(tmp_path / 'nowhere.pth'))


# ------------------------------------------------------------------------------------------------ tools/test.py
@pytest.mark.parametrize('case', ['empty', 'garbage', 'nan', 'evil_getattr', 'evil_exec'])
def test_test_tool_refuses_bad_files(seg_ckpts, synthetic_osd, tmp_path, case):
    path, pattern, marker = seg_ckpts['bad'][case]
    _assert_refused(lambda p: TEST_TOOL.main([SEG_CFG, p, '--work-dir', str(tmp_path), '--cfg-options',
                                              *_data_opts(synthetic_osd)]), path, pattern, marker)


def test_test_tool_mismatch_allow_partial_and_num_classes(seg_ckpts, synthetic_osd, tmp_path):
    args = ['--work-dir', str(tmp_path), '--cfg-options', *_data_opts(synthetic_osd)]
    with pytest.raises(SystemExit) as err:
        TEST_TOOL.main([SEG_CFG, seg_ckpts['mismatch'], *args])
    msg = str(err.value)
    dropped, reshaped, extra = seg_ckpts['mismatch_keys']
    assert 'does not fit the model' in msg and 'mismatch.pth' in msg and '--allow-partial' in msg
    for key in (dropped, reshaped, extra):
        assert key in msg, (key, msg)
    metrics = TEST_TOOL.main([SEG_CFG, seg_ckpts['mismatch'], '--allow-partial', *args])
    assert 0 <= metrics['mIoU'] <= 100
    log = ''.join(open(f).read() for f in glob.glob(osp.join(str(tmp_path), '*', '*.log')))
    assert '--allow-partial: checkpoint' in log and extra in log
    # the good checkpoint evaluates; a head with another number of classes than the test set is an error
    assert 0 <= TEST_TOOL.main([SEG_CFG, seg_ckpts['good'], *args])['mIoU'] <= 100
    with pytest.raises(SystemExit, match=r'num_classes mismatch: .*decode_head\.num_classes=3 .*5 classes'):
        TEST_TOOL.main([SEG_CFG, seg_ckpts['good'], *args, 'model.decode_head.num_classes=3'])


# ------------------------------------------------------------------------------------------- tools/inference.py
@pytest.mark.parametrize('case', ['empty', 'garbage', 'nan', 'evil_getattr', 'evil_exec'])
def test_inference_tool_refuses_bad_files(seg_ckpts, synthetic_osd, tmp_path, case):
    path, pattern, marker = seg_ckpts['bad'][case]
    image = sorted(glob.glob(osp.join(synthetic_osd, 'test', 'images', '*')))[0]
    _assert_refused(lambda p: INFER_TOOL.main([SEG_CFG, p, image, '--out-dir', str(tmp_path / 'o')]), path,
                    pattern, marker)
    assert not osp.exists(tmp_path / 'o' / 'masks')


def test_inference_mismatch_allow_partial_and_num_classes(seg_ckpts, synthetic_osd, tmp_path):
    image = sorted(glob.glob(osp.join(synthetic_osd, 'test', 'images', '*')))[0]
    with pytest.raises(SystemExit) as err:
        INFER_TOOL.main([SEG_CFG, seg_ckpts['mismatch'], image, '--out-dir', str(tmp_path / 'o')])
    for key in seg_ckpts['mismatch_keys']:
        assert key in str(err.value)
    out = INFER_TOOL.main([SEG_CFG, seg_ckpts['mismatch'], image, '--out-dir', str(tmp_path / 'p'),
                           '--allow-partial'])
    assert len(out['images']) == 1
    with pytest.raises(SystemExit, match=r"num_classes mismatch: .*=5 but the dataset_meta of checkpoint "
                       r"'.*two_classes\.pth' has 2 classes"):
        INFER_TOOL.main([SEG_CFG, seg_ckpts['two_classes'], image, '--out-dir', str(tmp_path / 'q')])


# ---------------------------------------------------------------------------------------- tools/generate_daug.py
def _gen(ckpt, tmp_path, *extra):
    return GEN_TOOL.main([JN_CFG, ckpt, '--out-dir', str(tmp_path / 'daug'), '--work-dir', str(tmp_path / 'wd'),
                          '--num-samples', '1', '--batch-size', '1', '--steps', '1', '--grid', '0', *extra])


@pytest.mark.parametrize('case', ['empty', 'garbage', 'nan', 'evil_getattr', 'evil_exec'])
def test_generate_tool_refuses_bad_files(jn_ckpts, tmp_path, case):
    path, pattern, marker = jn_ckpts['bad'][case]
    _assert_refused(lambda p: _gen(p, tmp_path), path, pattern, marker)
    assert not glob.glob(str(tmp_path / 'daug' / 'images' / '*'))


def test_generate_mismatch_allow_partial_and_num_classes(jn_ckpts, tmp_path):
    with pytest.raises(SystemExit) as err:
        _gen(jn_ckpts['mismatch'], tmp_path)
    for key in jn_ckpts['mismatch_keys']:
        assert key in str(err.value)
    assert not glob.glob(str(tmp_path / 'daug' / 'images' / '*'))
    metrics = _gen(jn_ckpts['mismatch'], tmp_path, '--allow-partial')
    assert int(metrics['generated']) == 1
    with pytest.raises(SystemExit, match=r'num_classes mismatch: the model has model\.num_classes=3 but the training set .* has 5 classes'):
        _gen(jn_ckpts['good'], tmp_path / 'c3', '--cfg-options', 'model.num_classes=3')


# ------------------------------------------------------------------------------------- MambaVision init_cfg
def test_mambavision_init_cfg_refuses_nan_checkpoint(tmp_path):
    from projects.sar_oilspill.models.backbones.mambavision import MambaVision
    src = MambaVision(arch='test').state_dict()
    nan = {k: (torch.full_like(v, float('nan')) if v.is_floating_point() else v) for k, v in src.items()}
    path = tmp_path / 'mambavision_nan.pth.tar'
    torch.save({'epoch': 1, 'state_dict': nan, 'args': argparse.Namespace(lr=0.005)}, str(path))
    model = MambaVision(arch='test', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"MambaVision.*mambavision_nan\.pth\.tar'.* tensors hold NaN/Inf"):
        model.init_weights()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded
    # the same file with finite weights loads (control)
    torch.save({'epoch': 1, 'state_dict': src, 'args': argparse.Namespace(lr=0.005)}, str(path))
    MambaVision(arch='test', init_cfg=dict(type='Pretrained', checkpoint=str(path))).init_weights()
    empty = tmp_path / 'empty.pth.tar'
    empty.write_bytes(b'')
    with pytest.raises(CheckpointError, match=r"empty\.pth\.tar' is empty"):
        MambaVision(arch='test', init_cfg=dict(type='Pretrained', checkpoint=str(empty))).init_weights()

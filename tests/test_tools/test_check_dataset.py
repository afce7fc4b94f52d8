import os
import os.path as osp
import shutil
import subprocess
import sys

import cv2
import numpy as np

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TOOL = osp.join(ROOT, 'tools', 'dataset_tools', 'check_dataset.py')


def _run(*args):
    r = subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, cwd=ROOT)
    return r.returncode, r.stdout + r.stderr


def test_good_synthetic_osd(synthetic_osd):
    code, out = _run('--type', 'OSDDataset', '--root', synthetic_osd, '--img-dir', 'train/images',
                     '--seg-dir', 'train/labels_1D', '--expect-size', '64', '96')
    assert code == 0, out
    assert '12 images' in out and 'oil_spill' in out and out.strip().endswith('OK')


def test_broken_dataset_reports_every_problem(synthetic_osd, tmp_path):
    root = str(tmp_path / 'broken')
    shutil.copytree(synthetic_osd, root)
    lab = osp.join(root, 'train', 'labels_1D')
    img = osp.join(root, 'train', 'images')
    os.remove(osp.join(lab, 'img_0001.png'))                                            # image without mask
    cv2.imwrite(osp.join(lab, 'img_9999.png'), np.zeros((64, 96), np.uint8))            # mask without image
    cv2.imwrite(osp.join(lab, 'img_0002.png'), np.full((64, 96), 7, np.uint8))          # unknown value
    cv2.imwrite(osp.join(lab, 'img_0003.png'), np.zeros((10, 10), np.uint8))            # wrong size
    with open(osp.join(img, 'img_0004.jpg'), 'wb') as f:                                # unreadable image
        f.write(b'garbage')
    code, out = _run('--type', 'OSDDataset', '--root', root, '--img-dir', 'train/images',
                     '--seg-dir', 'train/labels_1D')
    assert code == 1
    assert 'missing mask' in out and 'img_0001.jpg' in out
    assert 'mask without image' in out and 'img_9999.png' in out
    assert 'img_0002.png: label values [7]' in out
    assert 'size mismatch' in out and 'img_0003.png' in out
    assert 'unreadable image' in out and 'img_0004.jpg' in out
    assert '5 problems' in out


def test_missing_root(tmp_path):
    code, out = _run('--type', 'SOSDataset', '--root', str(tmp_path / 'none'), '--img-dir', 'train/palsar')
    assert code == 1 and 'does not exist' in out


def test_real_sos_mini_via_config(sos_mini):
    code, out = _run('--config', 'configs/baselines/unet_sos_alos.py', '--split', 'test', '--cfg-options',
                     f'test_dataloader.dataset.data_root={sos_mini}', '--expect-size', '256', '256')
    assert code == 0, out
    assert '100 images' in out

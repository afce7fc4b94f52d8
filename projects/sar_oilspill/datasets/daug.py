"""D_aug: the synthetic SAR tiles and per-pixel teacher logits written by SAR-JointNet's generation loop."""
import json
import os
import os.path as osp
from typing import Dict, List

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

DAUG_FORMAT = 'sar_oilspill.daug/1'


@DATASETS.register_module()
class DAugDataset(BaseSegDataset):
    """Generated image / soft-label pairs (paper Sec. 3.1: D_aug).

    Layout (written by :class:`JointNetGenerationLoop` / ``tools/generate_daug.py``)::

        <data_root>
        ├── manifest.json            format, classes, balancing factor, config, checkpoint, seeds, sampler settings
        ├── images/<sample>.png      8-bit grayscale SAR tile, image x̂0 mapped from [-1, 1] to [0, 255]
        └── logits/<sample>.npy      float16 (K, H, W) Label-Net logits of the last denoising step (soft labels)

    A sample counts only when both files exist (each is written to a temporary name and renamed, so a crashed
    generation never leaves half a pair). Labels are not on disk as a map: :class:`LoadSoftLabels` makes
    ``gt_soft_logits`` (and ``gt_seg_map``: all-ignore for KD, or argmax for the hard-label ablation).

    Args:
        metainfo: Must give the same ``classes`` (and palette) as the real dataset it is combined with;
            the manifest's class names are checked against it.
        max_samples: Use only the first ``max_samples`` pairs in name order (the 1x/2x/4x study of the paper's
            supplementary Table 11); ``None`` uses all.
    """

    def __init__(self, max_samples: int = None, **kwargs) -> None:
        self.max_samples = max_samples
        kwargs.setdefault('img_suffix', '.png')
        kwargs.setdefault('seg_map_suffix', '.npy')
        kwargs.setdefault('data_prefix', dict(img_path='images', seg_map_path='logits'))
        super().__init__(**kwargs)

    def load_manifest(self) -> Dict:
        path = osp.join(self.data_root or '', 'manifest.json')
        if not osp.isfile(path):
            raise FileNotFoundError(f'DAugDataset: {path} not found; generate D_aug first '
                                    '(tools/generate_daug.py or configs/sar_jointnet/*) or fix data_root')
        with open(path) as f:
            manifest = json.load(f)
        if manifest.get('format') != DAUG_FORMAT:
            raise ValueError(f'{path}: format {manifest.get("format")!r}, expected {DAUG_FORMAT!r}')
        classes = tuple(manifest['classes'])
        if self.metainfo.get('classes') and tuple(self.metainfo['classes']) != classes:
            raise ValueError(f'{path}: generated for classes {classes}, but the config says '
                             f'{tuple(self.metainfo["classes"])}')
        return manifest

    def load_data_list(self) -> List[dict]:
        manifest = self.load_manifest()
        img_dir, logit_dir = self.data_prefix['img_path'], self.data_prefix['seg_map_path']
        names = sorted(n[:-len(self.img_suffix)] for n in os.listdir(img_dir) if n.endswith(self.img_suffix)
                       and osp.isfile(osp.join(logit_dir, n[:-len(self.img_suffix)] + self.seg_map_suffix)))
        if self.max_samples is not None:
            if self.max_samples > len(names):
                raise ValueError(f'DAugDataset: max_samples={self.max_samples} but {self.data_root} holds only '
                                 f'{len(names)} complete pairs')
            names = names[:self.max_samples]
        if not names:
            raise FileNotFoundError(f'DAugDataset: no complete image/logit pairs under {self.data_root}')
        num_classes = int(manifest['num_classes'])
        return [dict(img_path=osp.join(img_dir, n + self.img_suffix),
                     soft_logits_path=osp.join(logit_dir, n + self.seg_map_suffix), seg_map_path=None,
                     num_classes=num_classes, label_map=None, reduce_zero_label=False, seg_fields=[])
                for n in names]


def atomic_write(path: str, write_fn, keep_suffix: bool = False) -> None:
    """Call ``write_fn(tmp)`` on a temporary name next to ``path``, then rename it to ``path``.

    A crash leaves either the old file or the new one, never a half-written one. ``keep_suffix`` ends the
    temporary name with the file's extension (writers such as ``cv2.imwrite`` choose the format from it).
    """
    tmp = f'{path}.tmp-{os.getpid()}' + (osp.splitext(path)[1] if keep_suffix else '')
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def daug_sample_exists(root: str, name: str) -> bool:
    """True when both files of sample ``name`` are complete (the generation loop skips it on resume)."""
    return osp.isfile(osp.join(root, 'images', name + '.png')) and osp.isfile(osp.join(root, 'logits', name + '.npy'))


def write_daug_sample(root: str, name: str, image, logits) -> None:
    """Write one generated pair. Each file goes to a temporary name first; the logits file is renamed last.

    Args:
        root: D_aug folder.
        name: Sample name (e.g. ``'s000123'``).
        image: (H, W) float array in [-1, 1] (the generated SAR tile, x̂0) or uint8 in [0, 255].
        logits: (K, H, W) float array, the Label-Net logits (stored as float16).
    """
    import cv2
    import numpy as np
    image = np.asarray(image)
    logits = np.asarray(logits)
    if image.ndim != 2 or logits.ndim != 3 or logits.shape[1:] != image.shape:
        raise ValueError(f'write_daug_sample({name}): image {image.shape} and logits {logits.shape} do not match; '
                         'expected (H, W) and (K, H, W)')
    if image.dtype != np.uint8:
        image = np.clip(np.round((image + 1.0) * 127.5), 0, 255).astype(np.uint8)
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    os.makedirs(osp.join(root, 'logits'), exist_ok=True)

    ok, png = cv2.imencode('.png', image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise OSError(f'could not encode sample {name} as PNG')

    def write_png(p):
        with open(p, 'wb') as f:
            f.write(png.tobytes())

    def write_npy(p):
        with open(p, 'wb') as f:
            np.save(f, logits.astype(np.float16))

    atomic_write(osp.join(root, 'images', name + '.png'), write_png)
    atomic_write(osp.join(root, 'logits', name + '.npy'), write_npy)


def write_daug_manifest(root: str, manifest: Dict) -> str:
    """Write ``manifest.json`` atomically, adding the format tag."""
    os.makedirs(root, exist_ok=True)
    data = dict(format=DAUG_FORMAT, **manifest)
    for key in ('classes', 'num_classes'):
        if key not in data:
            raise ValueError(f'D_aug manifest needs {key!r}')

    def write(p):
        with open(p, 'w') as f:
            json.dump(data, f, indent=1)

    path = osp.join(root, 'manifest.json')
    atomic_write(path, write)
    return path

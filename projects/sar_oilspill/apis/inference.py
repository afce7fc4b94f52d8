"""Inference on images without labels (whole SAR scenes, generated tiles) with a trained segmentor."""
import os.path as osp
from typing import Dict, Optional, Sequence, Union

import numpy as np

_LABEL_LOADERS = ('Annotations', 'SoftLabels')


def init_segmentor(config: Union[str, 'Config'], checkpoint: str, device: str = 'cpu',  # noqa: F821
                   slide: Optional[Sequence[int]] = None, stride: Optional[Sequence[int]] = None,
                   allow_partial: bool = False):
    """Build a segmentor from a config and checkpoint for inference (``mmseg.apis.init_model``).

    Label loaders (``LoadAnnotations``, ``LoadOilSpillAnnotations``, ``LoadSoftLabels``) are removed from the test
    pipeline, since there is no ground truth. With ``slide=(h, w)`` the model predicts by sliding windows of that
    size (``stride`` default: 2/3 of the window): the network's activations are those of one window, but the
    scene's class scores (K x H x W floats) are still held; for whole satellite scenes see :func:`predict_tiled`.

    The checkpoint is read weights-only and must fit the model: every weight present with its shape and no other
    (``allow_partial=True`` only warns, listing the keys), no NaN/Inf, and the head's ``num_classes`` equal to the
    number of classes in the checkpoint's ``dataset_meta`` (or, without one, the config's test set).

    Raises:
        FileNotFoundError: config or checkpoint missing.
        ValueError: the config has no test pipeline, or bad window sizes.
        CheckpointError (a ValueError): the checkpoint is unreadable, unsafe, non-finite or does not fit.
    """
    import projects.sar_oilspill  # noqa: F401  (registers the plugin)
    from mmengine.config import Config
    from mmseg.apis import init_model

    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config {config!r} does not exist')
        config = Config.fromfile(config)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist')
    cfg = config
    pipeline = cfg.get('test_pipeline') or ((cfg.get('test_dataloader') or {}).get('dataset') or {}).get('pipeline')
    if not pipeline:
        raise ValueError(f'{cfg.filename}: no test_pipeline (needed for inference)')
    cfg.test_pipeline = [t for t in pipeline if not any(k in str(t.get('type', '')) for k in _LABEL_LOADERS)]
    if slide is not None:
        crop = tuple(int(v) for v in slide)
        step = tuple(int(v) for v in stride) if stride is not None else tuple(max(1, c * 2 // 3) for c in crop)
        if len(crop) != 2 or len(step) != 2 or min(crop + step) < 1:
            raise ValueError(f'slide window {slide} / stride {stride}: expected two positive sizes each')
        cfg.model.test_cfg = dict(mode='slide', crop_size=crop, stride=step)
    from ..utils.checkpoint_compat import check_num_classes, dataset_classes_from_cfg, load_model_checkpoint
    model = init_model(cfg, None, device='cpu')
    ckpt = load_model_checkpoint(model, checkpoint, allow_partial=allow_partial)
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    if isinstance(meta.get('dataset_meta'), dict):
        model.dataset_meta = dict(meta['dataset_meta'])
    elif meta.get('CLASSES'):  # mmseg 0.x
        model.dataset_meta = dict(classes=meta['CLASSES'], palette=meta.get('PALETTE'))
    classes = (getattr(model, 'dataset_meta', None) or {}).get('classes')
    if classes:
        check_num_classes(model, classes, f'the dataset_meta of checkpoint {checkpoint!r}')
    else:
        test_set = (cfg.get('test_dataloader') or {}).get('dataset')
        check_num_classes(model, dataset_classes_from_cfg(test_set), f'the test set of {cfg.filename}')
    model.to(device)
    model.eval()
    return model


def predict_image(model, image: np.ndarray, probs: bool = False, logits: bool = False) -> Dict[str, np.ndarray]:
    """Predict one image.

    Args:
        model: From :func:`init_segmentor`.
        image: uint8 ``(H, W)`` grey or ``(H, W, 3)`` BGR (as ``cv2.imread`` returns it).
        probs: Also return the class probabilities (a K x H x W softmax over the whole scene; off by default).
        logits: Also return the logits themselves (K x H x W, at the image's size, as mmseg's ``seg_logits``).

    Returns:
        dict: ``label`` int64 ``(H, W)`` class map; with ``probs``, ``probs`` float32 ``(K, H, W)`` softmax of
        the logits; with ``logits``, ``logits`` float32 ``(K, H, W)``.
    """
    import cv2
    import torch
    from mmseg.apis import inference_model

    image = np.asarray(image)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'expected an (H, W) or (H, W, 3) image, got shape {image.shape}')
    result = inference_model(model, np.ascontiguousarray(image))
    out = dict(label=result.pred_sem_seg.data[0].cpu().numpy().astype(np.int64))
    seg_logits = result.seg_logits.data.float()
    if probs:
        p = torch.softmax(seg_logits, dim=0) if seg_logits.shape[0] > 1 else torch.sigmoid(seg_logits)
        out['probs'] = p.cpu().numpy()
    if logits:
        out['logits'] = seg_logits.cpu().numpy()
    return out


def predict_tiled(model, image: np.ndarray, tile: Sequence[int] = (2048, 2048), margin: int = 128,
                  probs_out: Optional[np.ndarray] = None, predict_fn=None, conf_out: Optional[np.ndarray] = None,
                  progress=None, label_out=None):
    """Predict a scene of any size tile by tile, in bounded memory.

    The scene is cut into ``tile``-sized blocks; each is predicted (by :func:`predict_image`, so in the model's
    whole or sliding-window mode) together with ``margin`` pixels of context on every side that the scene has, and
    only the block's own pixels are kept. Memory: one tile with its margins, plus the uint8 class map unless
    ``label_out`` takes it; the class probabilities go to ``probs_out`` (e.g. a ``numpy.lib.format.open_memmap``
    on disk) when given. With ``label_out``, ``conf_out`` and ``probs_out`` all writers to disk, nothing of scene
    size is held in memory.

    Args:
        model: From :func:`init_segmentor`.
        image: uint8 ``(H, W)`` or ``(H, W, 3)`` BGR, or a lazy source: any object with ``shape`` (``(H, W)``
            first) whose ``source[y0:y1, x0:x1]`` returns that block as such an array (e.g. a reader of a scene
            on disk, so that the scene is never held in memory).
        tile: Block height and width (positive).
        margin: Context pixels around each block (>= 0); a block's border pixels see this much of their
            surroundings, as they would in a whole-scene prediction up to the network's receptive field.
        probs_out: Optional ``(K, H, W)`` target of the softmax probabilities: an array, or any object with
            ``shape`` and ``__setitem__((slice(None), rows, cols), block)`` (e.g. a GeoTIFF writer).
        predict_fn: ``fn(model, crop, probs) -> dict`` instead of :func:`predict_image` (tests).
        conf_out: Optional uint8 ``(H, W)`` array to fill with the confidence of each pixel's class, its
            probability (the largest softmax value; for a one-channel sigmoid model p or 1 - p) quantised to
            ``round(255 * p)``.
        progress: Optional ``fn(blocks_done, blocks_total)`` called after each block.
        label_out: Optional target of the uint8 class map instead of a new array: an ``(H, W)`` array, or any
            object with ``shape`` and ``__setitem__((rows, cols), block)`` (e.g. a GeoTIFF writer). Within a
            block, ``label_out``, then ``probs_out``, then ``conf_out`` is written.

    Returns:
        The uint8 ``(H, W)`` class map: a new array, or ``label_out`` when given.
    """
    th, tw = (int(v) for v in tile)
    if th < 1 or tw < 1 or margin < 0:
        raise ValueError(f'predict_tiled: tile {tuple(tile)} must be positive and margin {margin} >= 0')
    if not (hasattr(image, 'shape') and hasattr(image, '__getitem__')):
        image = np.asarray(image)
    height, width = (int(v) for v in image.shape[:2])
    for name, out in (('label_out', label_out), ('conf_out', conf_out)):
        if out is not None and tuple(out.shape) != (height, width):
            raise ValueError(f'predict_tiled: {name} has shape {tuple(out.shape)}, expected ({height}, {width})')
    if probs_out is not None and tuple(probs_out.shape[1:]) != (height, width):
        raise ValueError(f'predict_tiled: probs_out has shape {tuple(probs_out.shape)}, expected (K, {height}, '
                         f'{width})')
    predict_fn = predict_fn or predict_image
    label = np.empty((height, width), np.uint8) if label_out is None else label_out
    want_probs = probs_out is not None or conf_out is not None
    total, done = -(-height // th) * -(-width // tw), 0
    for y0 in range(0, height, th):
        for x0 in range(0, width, tw):
            y1, x1 = min(y0 + th, height), min(x0 + tw, width)
            cy0, cx0 = max(0, y0 - margin), max(0, x0 - margin)
            cy1, cx1 = min(height, y1 + margin), min(width, x1 + margin)
            pred = predict_fn(model, image[cy0:cy1, cx0:cx1], probs=want_probs)
            keep = (slice(y0 - cy0, y1 - cy0), slice(x0 - cx0, x1 - cx0))
            block = pred['label'][keep]
            if block.max(initial=0) > 255:
                raise ValueError('predict_tiled: more than 256 classes do not fit the uint8 class map')
            label[y0:y1, x0:x1] = block.astype(np.uint8)
            if probs_out is not None:
                probs_out[:, y0:y1, x0:x1] = pred['probs'][(slice(None), ) + keep]
            if conf_out is not None:
                p = pred['probs'][(slice(None), ) + keep]
                p = np.where(block == 1, p[0], 1 - p[0]) if p.shape[0] == 1 else p.max(0)  # sigmoid: P(its class)
                conf_out[y0:y1, x0:x1] = np.round(p * 255).astype(np.uint8)
            done += 1
            if progress is not None:
                progress(done, total)
    return label


def class_areas(label: np.ndarray, classes: Sequence[str], pixel_size_m: Optional[float] = None) -> Dict:
    """Pixels, fraction of the image and (with a pixel size in metres) km² of every class."""
    label = np.asarray(label)
    if label.dtype == np.uint8:  # no int64 copy of a whole scene: a 256-bin histogram
        counts = np.histogram(label, bins=256, range=(0, 256))[0][:max(len(classes), int(label.max(initial=0)) + 1)]
    else:
        counts = np.bincount(label.ravel(), minlength=len(classes))
    total = max(int(counts.sum()), 1)
    out = {}
    for k, name in enumerate(classes):
        entry = dict(pixels=int(counts[k]), fraction=float(counts[k]) / total)
        if pixel_size_m is not None:
            entry['km2'] = float(counts[k]) * float(pixel_size_m) ** 2 / 1e6
        out[name] = entry
    return out

"""D_aug: the synthetic SAR tiles and per-pixel teacher logits written by SAR-JointNet's generation loop.

The folder format has one home, :class:`DAugFolder` (layout, sample names, listing, reading, atomic writing and the
manifest checks); the generation loop, :class:`DAugDataset`, :class:`LoadSoftLabels`, the grid and the generation
measures all go through it.
"""
import json
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ..utils.atomic import atomic_write, atomic_write_bytes, is_temporary, write_json_atomic

__all__ = ['DAUG_FORMAT', 'DAugFolder', 'DAugDataset', 'read_daug_image', 'read_daug_logits', 'atomic_write',
           'read_daug_valid', 'daug_sample_exists', 'write_daug_sample', 'write_daug_manifest']

DAUG_FORMAT = 'sar_oilspill.daug/1'


def read_daug_image(path: str) -> np.ndarray:
    """A D_aug tile as uint8 ``(H, W)`` grey levels (strict reader: an ``ImageReadError`` names a bad file)."""
    from .image_io import read_image
    return read_image(path, 'grayscale')


def read_daug_logits(path: str, num_classes: Optional[int] = None) -> np.ndarray:
    """A D_aug logits file: ``(K, H, W)`` as stored (float16), checked.

    Raises:
        OSError: the file is missing or not a ``.npy`` array (naming it).
        ValueError: not ``(K, H, W)`` (with ``K == num_classes`` when given), or NaN/inf values (naming it).
    """
    try:
        logits = np.load(path)
    except (OSError, ValueError) as e:
        raise OSError(f'{path}: unreadable soft labels ({e})') from e
    if logits.ndim != 3 or (num_classes is not None and logits.shape[0] != num_classes):
        raise ValueError(f'{path}: expected (K={num_classes}, H, W) logits, got shape {logits.shape}')
    if not np.isfinite(logits).all():
        raise ValueError(f'{path}: soft labels contain NaN or inf')
    return logits


def read_daug_valid(path: str, shape: Optional[Sequence[int]] = None) -> np.ndarray:
    """A D_aug label mask: bool ``(H, W)``, True where the pixel carries a soft label (any non-zero grey level).

    Raises:
        OSError: the file is missing or not an image (naming it).
        ValueError: not ``(H, W)`` == ``shape`` when given (naming it).
    """
    from .image_io import read_image
    mask = read_image(path, 'unchanged')
    if mask.ndim != 2 or (shape is not None and tuple(mask.shape) != tuple(shape)):
        raise ValueError(f'{path}: label mask of shape {mask.shape}, expected a one-channel {tuple(shape or ())} '
                         'image (non-zero: labelled)')
    return mask != 0


class DAugFolder:
    """One D_aug folder on disk: the only place that knows its layout.

    ::

        <root>
        ├── manifest.json            format, classes, balancing factor, config, checkpoint, seeds, sampler settings
        ├── images/<sample>.png      8-bit grayscale SAR tile, image x̂0 mapped from [-1, 1] to [0, 255]
        ├── logits/<sample>.npy      float16 (K, H, W) Label-Net logits of the last denoising step (soft labels)
        └── valid/<sample>.png       only with ``label_mask: true`` in the manifest: 8-bit (H, W) mask,
                                     non-zero where the pixel carries a soft label (0: no label, no loss)

    Sample ``i`` of the generation loop is named ``f'{name_prefix}{i:06d}'`` (:meth:`sample_name`). A sample
    counts only when both files exist: each file is written to a temporary name, fsynced and renamed (the logits
    last, after the label mask of a masked D_aug), so a crashed writer never leaves a half file under a final name
    and listings skip temporaries.

    Args:
        root: The folder (``''`` or ``None``: the current one).
    """

    IMAGE_DIR = 'images'
    LOGIT_DIR = 'logits'
    VALID_DIR = 'valid'
    MANIFEST = 'manifest.json'
    IMAGE_SUFFIX = '.png'
    LOGIT_SUFFIX = '.npy'
    FORMAT = DAUG_FORMAT
    #: The layout in words, for error messages.
    LAYOUT = ('<root>/manifest.json, <root>/images/<name>.png (8-bit SAR tiles) and '
              '<root>/logits/<name>.npy (float16 K x H x W logits), and with label_mask=true in the manifest '
              '<root>/valid/<name>.png (non-zero: labelled), as written by the generation loop (datasets/daug.py)')
    #: Manifest entries that must agree before new samples are added to an existing folder
    #: (:meth:`check_settings`; the checkpoint is compared separately, by content).
    COMPAT_KEYS = ('classes', 'num_classes', 'balancing_factor', 'base_seed', 'num_inference_steps', 'eta',
                   'timestep_spacing', 'size', 'name_prefix')

    def __init__(self, root: Optional[str]) -> None:
        self.root = root or ''

    def __repr__(self) -> str:
        return f'DAugFolder({self.root!r})'

    # ------------------------------------------------------------------ layout
    @property
    def manifest_path(self) -> str:
        return osp.join(self.root, self.MANIFEST)

    @property
    def image_dir(self) -> str:
        return osp.join(self.root, self.IMAGE_DIR)

    @property
    def logit_dir(self) -> str:
        return osp.join(self.root, self.LOGIT_DIR)

    def image_path(self, name: str) -> str:
        return osp.join(self.image_dir, name + self.IMAGE_SUFFIX)

    def logits_path(self, name: str) -> str:
        return osp.join(self.logit_dir, name + self.LOGIT_SUFFIX)

    @property
    def valid_dir(self) -> str:
        return osp.join(self.root, self.VALID_DIR)

    def valid_path(self, name: str) -> str:
        return osp.join(self.valid_dir, name + self.IMAGE_SUFFIX)

    @staticmethod
    def has_label_mask(manifest: Dict) -> bool:
        """True when the D_aug of ``manifest`` labels only some pixels (``valid/<name>.png`` for every sample)."""
        return bool(manifest.get('label_mask', False))

    @staticmethod
    def sample_name(index: int, prefix: str = 's') -> str:
        """Name of sample ``index`` (``'s000123'``)."""
        return f'{prefix}{int(index):06d}'

    @staticmethod
    def sample_index(name: str, prefix: str = 's') -> Optional[int]:
        """Index of a sample name of ``prefix`` (inverse of :meth:`sample_name`), else ``None``."""
        rest = name[len(prefix):] if name.startswith(prefix) else ''
        return int(rest) if rest.isdigit() else None

    def check_layout(self) -> None:
        """Raise ``FileNotFoundError`` naming the first missing part when ``root`` is not a D_aug folder."""
        for p in (self.root, self.manifest_path, self.image_dir, self.logit_dir):
            if not osp.exists(p or '.'):
                raise FileNotFoundError(f'{self.root!r} is not a D_aug folder: {p!r} does not exist. Expected '
                                        f'{self.LAYOUT}.')

    # ------------------------------------------------------------------ listing
    def has_sample(self, name: str) -> bool:
        """True when both files of sample ``name`` are complete."""
        return osp.isfile(self.image_path(name)) and osp.isfile(self.logits_path(name))

    def image_names(self) -> List[str]:
        """Names of the finished image files in name order (temporary files skipped), complete or not."""
        if not osp.isdir(self.image_dir):
            return []
        n = len(self.IMAGE_SUFFIX)
        return sorted(f[:-n] for f in os.listdir(self.image_dir) if f.endswith(self.IMAGE_SUFFIX)
                      and not is_temporary(f))

    def complete_names(self) -> List[str]:
        """Names of the complete samples (both files) in name order."""
        return [n for n in self.image_names() if self.has_sample(n)]

    def missing(self, names: Sequence[str]) -> List[str]:
        """Those of ``names`` that lack a file."""
        return [n for n in names if not self.has_sample(n)]

    def unlisted_names(self, prefix: str, num_samples: int) -> List[str]:
        """Image names of ``prefix`` with an index ``>= num_samples`` (beyond a manifest of ``num_samples``)."""
        return [n for n in self.image_names()
                if self.sample_index(n, prefix) is not None and self.sample_index(n, prefix) >= num_samples]

    def sample_names(self, manifest: Optional[Dict] = None) -> List[str]:
        """Names of the samples of this D_aug: those the manifest lists, not whatever the folder holds.

        A complete manifest lists its samples (``samples``): exactly these are read, and one without both files is
        an error. A folder may hold more pairs than that (generated by an earlier run with a larger
        ``--num-samples``); they are not part of this D_aug (warning). An incomplete manifest of the generation
        loop (``num_samples`` and ``name_prefix``, no list yet) gives its first ``num_samples`` names, of which
        the complete pairs are read (with a warning). A manifest with neither (written by hand) uses every
        complete pair in the folder.

        Raises:
            FileNotFoundError: a listed sample lacks a file, or there is no complete sample at all.
        """
        manifest = self.read_manifest() if manifest is None else manifest
        if manifest.get('samples') is not None:
            names = [str(s['name']) for s in manifest['samples']]
            missing = self.missing(names)
            if missing:
                raise FileNotFoundError(
                    f'D_aug {self.root}: {len(missing)} of the {len(names)} samples listed in {self.manifest_path} '
                    f'lack their image or logits (e.g. {missing[:3]}); run the generation again with the same '
                    'settings to complete them')
        elif manifest.get('num_samples') is not None and manifest.get('name_prefix') is not None:
            expected = [self.sample_name(i, manifest['name_prefix']) for i in range(int(manifest['num_samples']))]
            names = [n for n in expected if self.has_sample(n)]
            warnings.warn(f'D_aug {self.root} is an unfinished generation (manifest complete=false): '
                          f'using the {len(names)} of {len(expected)} samples present')
        else:
            names = self.complete_names()
        extra = len(set(self.image_names()) - set(names))
        if extra and (manifest.get('samples') is not None or manifest.get('num_samples') is not None):
            warnings.warn(f'D_aug {self.root} holds {extra} image files not listed in its manifest '
                          f'(e.g. from an earlier run with more samples); reading the {len(names)} it lists')
        if not names:
            raise FileNotFoundError(f'D_aug {self.root}: no complete image/logit pairs. Expected {self.LAYOUT}.')
        return names

    # ------------------------------------------------------------------ reading
    def read_image(self, name: str) -> np.ndarray:
        """uint8 ``(H, W)`` tile of sample ``name`` (:func:`read_daug_image`)."""
        return read_daug_image(self.image_path(name))

    def read_logits(self, name: str, num_classes: Optional[int] = None) -> np.ndarray:
        """``(K, H, W)`` logits of sample ``name`` as stored (:func:`read_daug_logits`)."""
        return read_daug_logits(self.logits_path(name), num_classes)

    def read_label(self, name: str) -> np.ndarray:
        """``(H, W)`` class map of sample ``name``: the argmax of its logits."""
        return self.read_logits(name).astype(np.float32).argmax(0)

    def read_valid(self, name: str, shape: Optional[Sequence[int]] = None) -> np.ndarray:
        """bool ``(H, W)`` label mask of sample ``name`` (:func:`read_daug_valid`; only a masked D_aug has one)."""
        return read_daug_valid(self.valid_path(name), shape)

    # ------------------------------------------------------------------ writing
    def write_sample(self, name: str, image, logits, valid=None) -> None:
        """Write one generated pair atomically; the logits file (whose presence completes the pair) last.

        Args:
            name: Sample name (e.g. ``'s000123'``).
            image: (H, W) float array in [-1, 1] (the generated SAR tile, x̂0) or uint8 in [0, 255].
            logits: (K, H, W) float array, the Label-Net logits (stored as float16).
            valid: Optional (H, W) bool mask, True where the pixel carries a label (``valid/<name>.png``, 255 / 0;
                written before the logits). A D_aug written with masks must say ``label_mask=True`` in its manifest.
        """
        import cv2
        image = np.asarray(image)
        logits = np.asarray(logits)
        if image.ndim != 2 or logits.ndim != 3 or logits.shape[1:] != image.shape:
            raise ValueError(f'write_daug_sample({name}): image {image.shape} and logits {logits.shape} do not '
                             'match; expected (H, W) and (K, H, W)')
        if valid is not None and np.shape(valid) != image.shape:
            raise ValueError(f'write_daug_sample({name}): label mask {np.shape(valid)} does not match the image '
                             f'{image.shape}')
        if image.dtype != np.uint8:
            image = np.clip(np.round((image + 1.0) * 127.5), 0, 255).astype(np.uint8)

        def png(array, what):
            ok, data = cv2.imencode(self.IMAGE_SUFFIX, array, [cv2.IMWRITE_PNG_COMPRESSION, 3])
            if not ok:
                raise OSError(f'could not encode the {what} of sample {name} as PNG')
            return data.tobytes()

        os.makedirs(self.logit_dir, exist_ok=True)
        atomic_write_bytes(self.image_path(name), png(image, 'image'))
        if valid is not None:
            os.makedirs(self.valid_dir, exist_ok=True)
            atomic_write_bytes(self.valid_path(name), png(np.where(np.asarray(valid, bool), 255, 0).astype(np.uint8),
                                                          'label mask'))

        def write_npy(tmp: str) -> None:
            with open(tmp, 'wb') as f:
                np.save(f, logits.astype(np.float16))

        atomic_write(self.logits_path(name), write_npy)

    # ------------------------------------------------------------------ manifest
    def has_manifest(self) -> bool:
        return osp.isfile(self.manifest_path)

    def read_manifest(self, classes: Optional[Sequence[str]] = None) -> Dict:
        """Read and check ``manifest.json``.

        Args:
            classes: When given, the class names the manifest must hold.

        Raises:
            FileNotFoundError: no manifest (naming it).
            ValueError: not JSON, another format, without ``classes`` / ``num_classes``, or other classes (naming
                the file and the field).
        """
        path = self.manifest_path
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} not found; generate D_aug first (tools/generate_daug.py or '
                                    'configs/sar_jointnet/*) or fix data_root')
        try:
            with open(path) as f:
                manifest = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f'{path} is not a readable D_aug manifest ({e})') from e
        if not isinstance(manifest, dict) or manifest.get('format') != self.FORMAT:
            got = manifest.get('format') if isinstance(manifest, dict) else type(manifest).__name__
            raise ValueError(f'{path}: format {got!r}, expected {self.FORMAT!r}')
        for key in ('classes', 'num_classes'):
            if key not in manifest:
                raise ValueError(f'{path}: no {key!r} entry; a D_aug manifest needs classes and num_classes')
        if classes and tuple(classes) != tuple(manifest['classes']):
            raise ValueError(f'{path}: generated for classes {tuple(manifest["classes"])}, but the config says '
                             f'{tuple(classes)}')
        return manifest

    def write_manifest(self, manifest: Dict) -> str:
        """Write ``manifest.json`` atomically, adding the format tag; returns its path. A manifest read from another
        folder (:meth:`read_manifest`, which keeps the tag) is written as it is; another format tag is refused."""
        if manifest.get('format', self.FORMAT) != self.FORMAT:
            raise ValueError(f'{self.manifest_path}: manifest of format {manifest["format"]!r}, this folder writes '
                             f'{self.FORMAT!r}')
        data = dict(manifest, format=self.FORMAT)
        for key in ('classes', 'num_classes'):
            if key not in data:
                raise ValueError(f'D_aug manifest needs {key!r}')
        return write_json_atomic(data, self.manifest_path, indent=1)

    def check_settings(self, settings: Dict, keys: Sequence[str] = COMPAT_KEYS) -> None:
        """Refuse to add samples made with other ``settings`` to this folder (no manifest yet: nothing to check).

        ``keys`` must be equal (as JSON values); the checkpoint is the same when its SHA-256 is (the same bytes at
        another path are the same model, a re-trained file at the same path is not; paths are compared only when
        neither side has a SHA-256).

        Raises:
            ValueError: naming the folder and every differing field with both values.
        """
        if not self.has_manifest():
            return
        try:
            old = self.read_manifest()
        except ValueError as e:
            raise ValueError(f'{e}; use another out_dir') from e
        diff = [f'{k}: existing {old.get(k)!r}, now {settings.get(k)!r}' for k in keys
                if json.loads(json.dumps(old.get(k))) != json.loads(json.dumps(settings.get(k)))]
        old_sha, new_sha = old.get('checkpoint_sha256'), settings.get('checkpoint_sha256')
        if old_sha or new_sha:
            same_checkpoint = old_sha == new_sha
        else:
            same_checkpoint = old.get('checkpoint') == settings.get('checkpoint')
        if not same_checkpoint:
            diff.append(f'checkpoint: existing {old.get("checkpoint")!r} (SHA-256 {old_sha}), now '
                        f'{settings.get("checkpoint")!r} (SHA-256 {new_sha})')
        if diff:
            raise ValueError(f'{self.root} already holds samples generated with other settings '
                             f'({"; ".join(diff)}); choose another out_dir or the same settings to resume')


@DATASETS.register_module()
class DAugDataset(BaseSegDataset):
    """Generated image / soft-label pairs (paper Sec. 3.1: D_aug), read from a :class:`DAugFolder`.

    The samples are those of :meth:`DAugFolder.sample_names` (the ones the manifest lists). Labels are not on
    disk as a map: :class:`LoadSoftLabels` makes ``gt_soft_logits`` (and ``gt_seg_map``: all-ignore for KD, or
    argmax for the hard-label ablation).

    Args:
        metainfo: Must give the same ``classes`` (and palette) as the real dataset it is combined with;
            the manifest's class names are checked against it.
        max_samples: Use only the first ``max_samples`` pairs in name order (the 1x/2x/4x study of the paper's
            supplementary Table 11); ``None`` uses all the manifest lists.
    """

    def __init__(self, max_samples: int = None, **kwargs) -> None:
        self.max_samples = max_samples
        layout = dict(img_suffix=DAugFolder.IMAGE_SUFFIX, seg_map_suffix=DAugFolder.LOGIT_SUFFIX,
                      data_prefix=dict(img_path=DAugFolder.IMAGE_DIR, seg_map_path=DAugFolder.LOGIT_DIR))
        for key, value in layout.items():  # the folder layout is fixed (DAugFolder)
            if kwargs.setdefault(key, value) != value:
                raise ValueError(f'DAugDataset: {key}={kwargs[key]!r}; the D_aug layout is fixed '
                                 f'({DAugFolder.LAYOUT}), give the folder as data_root')
        super().__init__(**kwargs)

    @property
    def folder(self) -> DAugFolder:
        return DAugFolder(self.data_root)

    def load_manifest(self) -> Dict:
        """The folder's checked manifest (format, and classes against ``metainfo``)."""
        return self.folder.read_manifest(self.metainfo.get('classes'))

    def load_data_list(self) -> List[dict]:
        folder = self.folder
        manifest = self.load_manifest()
        names = folder.sample_names(manifest)
        if self.max_samples is not None:
            if self.max_samples > len(names):
                raise ValueError(f'DAugDataset: max_samples={self.max_samples} but {self.data_root} holds only '
                                 f'{len(names)} complete pairs')
            names = names[:self.max_samples]
        num_classes = int(manifest['num_classes'])
        masked = folder.has_label_mask(manifest)
        return [dict(img_path=folder.image_path(n), soft_logits_path=folder.logits_path(n), seg_map_path=None,
                     soft_valid_path=folder.valid_path(n) if masked else None,
                     num_classes=num_classes, label_map=None, reduce_zero_label=False, seg_fields=[])
                for n in names]


# Functions of the earlier API (tests, tools and other projects import them).
def daug_sample_exists(root: str, name: str) -> bool:
    """True when both files of sample ``name`` are complete (:meth:`DAugFolder.has_sample`)."""
    return DAugFolder(root).has_sample(name)


def write_daug_sample(root: str, name: str, image, logits, valid=None) -> None:
    """Write one generated pair (:meth:`DAugFolder.write_sample`)."""
    DAugFolder(root).write_sample(name, image, logits, valid)


def write_daug_manifest(root: str, manifest: Dict) -> str:
    """Write ``manifest.json`` atomically, adding the format tag (:meth:`DAugFolder.write_manifest`)."""
    return DAugFolder(root).write_manifest(manifest)

"""A deterministic validation split carved out of a training set.

The same ids go to validation on every machine and in every process: the ids (image names relative to the image
folder, without the image suffix, i.e. mmseg's ``ann_file`` lines) are ordered by ``sha256("<seed>:<id>")`` and
the first ``round(fraction * n)`` of them are the validation part, the rest the training part. Nothing depends on
the file-system listing order or on Python's hash seed (each id's key depends on the id and the seed only).

From a config, no extra step (``SOSDataset``, ``OSDDataset``, any :class:`OilSpillBaseDataset`)::

    train_dataloader = dict(dataset=dict(split=dict(part='train', fraction=0.1, seed=0)))
    val_dataloader = dict(dataset=dict(data_prefix=dict(img_path='train/palsar', seg_map_path='train/palsar'),
                                       split=dict(part='val', fraction=0.1, seed=0)))

or as list files for reading / mmseg's ``ann_file`` (``tools/dataset_tools/make_val_split.py``).

A labelled-data budget: ``split=dict(part='train', fraction=0.1, seed=0, train_size=90)`` keeps the first 90 ids of
the training part in the same order (the validation part is unchanged, so runs with different budgets are validated
and tested alike; a smaller budget's ids are a subset of a larger one's).
"""
import hashlib
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

SPLIT_PARTS = ('train', 'val')
SPLIT_KEYS = ('part', 'fraction', 'seed', 'train_size')


def check_split(split: Optional[dict]) -> Optional[Dict]:
    """Validate a ``split=dict(part=..., fraction=..., seed=...)`` argument; returns it with defaults filled."""
    if split is None:
        return None
    if not isinstance(split, dict):
        raise TypeError(f'split={split!r}; expected dict(part="train"|"val", fraction=0.1, seed=0) or None')
    unknown = set(split) - set(SPLIT_KEYS)
    if unknown:
        raise ValueError(f'split: unknown keys {sorted(unknown)}; expected {list(SPLIT_KEYS)}')
    out = dict(part=split.get('part'), fraction=split.get('fraction', 0.1), seed=split.get('seed', 0))
    if out['part'] not in SPLIT_PARTS:
        raise ValueError(f'split.part={out["part"]!r}; expected one of {SPLIT_PARTS}')
    fraction = out['fraction']
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f'split.fraction={fraction!r}; expected a number strictly between 0 and 1 '
                         '(the share of the training set that becomes the validation part)')
    if isinstance(out['seed'], bool) or not isinstance(out['seed'], int):
        raise ValueError(f'split.seed={out["seed"]!r}; expected an integer')
    out['fraction'] = float(fraction)
    train_size = split.get('train_size')
    if train_size is not None:
        if isinstance(train_size, bool) or not isinstance(train_size, int) or train_size < 1:
            raise ValueError(f'split.train_size={train_size!r}; expected a positive integer (the number of training '
                             'samples kept) or None (all of the training part)')
        if out['part'] != 'train':
            raise ValueError(f'split.train_size={train_size} with part={out["part"]!r}: a training budget applies to '
                             "part='train' only (the validation part is the same whatever the budget)")
        out['train_size'] = train_size
    return out


def _key(seed: int, sample_id: str) -> str:
    return hashlib.sha256(f'{seed}:{sample_id}'.encode('utf-8')).hexdigest()


def split_ids(ids: Sequence[str], fraction: float, seed: int = 0) -> Tuple[List[str], List[str]]:
    """Split ``ids`` into (train, val), both sorted; ``val`` holds ``round(fraction * n)`` ids (at least 1, at
    most ``n - 1``). Duplicate ids or fewer than 2 ids are errors."""
    check_split(dict(part='val', fraction=fraction, seed=seed))
    ids = [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f'split_ids: duplicate ids, e.g. {dup}')
    n = len(ids)
    if n < 2:
        raise ValueError(f'split_ids: {n} sample(s) cannot be split into a training and a validation part')
    num_val = min(max(int(round(fraction * n)), 1), n - 1)
    ordered = sorted(ids, key=lambda i: (_key(seed, i), i))
    val = set(ordered[:num_val])
    return sorted(i for i in ids if i not in val), sorted(val)


def train_subset(train_ids: Sequence[str], train_size: int, seed: int = 0) -> List[str]:
    """The first ``train_size`` of ``train_ids`` in the split's order (``sha256("<seed>:<id>")``), sorted: a
    deterministic labelled-data budget, nested (a smaller budget's ids are a subset of a larger one's). Asking for
    more ids than there are is an error."""
    ids = [str(i) for i in train_ids]
    if isinstance(train_size, bool) or not isinstance(train_size, int) or train_size < 1:
        raise ValueError(f'train_subset: train_size={train_size!r}; expected a positive integer')
    if train_size > len(ids):
        raise ValueError(f'train_subset: train_size={train_size} but the training part holds {len(ids)} samples')
    ordered = sorted(ids, key=lambda i: (_key(seed, i), i))
    return sorted(ordered[:train_size])


def sample_id(img_path: str, img_dir: str, img_suffix: str) -> str:
    """The id of an image: its path relative to ``img_dir`` without ``img_suffix`` (an ``ann_file`` line)."""
    rel = osp.relpath(img_path, img_dir).replace(os.sep, '/')
    if not rel.endswith(img_suffix):
        raise ValueError(f'{img_path!r} does not end with the image suffix {img_suffix!r}')
    return rel[:len(rel) - len(img_suffix)]


def write_id_list(ids: Sequence[str], path: str) -> str:
    """Write one id a line (mmseg ``ann_file`` format) through a temporary file and a rename."""
    from ..utils.atomic import atomic_write_bytes
    return atomic_write_bytes(path, ''.join(f'{i}\n' for i in ids).encode('utf-8'))


def read_id_list(path: str) -> List[str]:
    """Read a list written by :func:`write_id_list` (blank lines ignored)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'id list {path!r} does not exist')
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]

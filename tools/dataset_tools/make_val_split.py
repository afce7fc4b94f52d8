"""Write the deterministic train/val split of a training set as two id lists (mmseg ``ann_file`` format).

The split is the one a dataset config gets from ``split=dict(part='train'|'val', fraction=F, seed=S)`` (no extra
step needed there; see projects/sar_oilspill/datasets/val_split.py): this tool writes it out for reading, for
other tools, or for configs that prefer ``ann_file``. Ids are image names relative to the image folder without the
image suffix, e.g. ``10778`` for SOS's ``train/palsar/10778_sat.jpg``.

Examples:
    python tools/dataset_tools/make_val_split.py --config configs/saross/sos_alos.py --out-dir work_dirs/split
    python tools/dataset_tools/make_val_split.py --type SOSDataset --root data/sos --img-dir train/palsar \
        --fraction 0.1 --seed 0 --out-dir data/sos/splits/palsar
    # then, in a config: dataset=dict(ann_file='splits/palsar/val.txt', ...)   (relative to data_root)
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

import projects.sar_oilspill  # noqa: E402,F401
from mmengine.config import Config, DictAction  # noqa: E402
from mmseg.registry import DATASETS  # noqa: E402
from mmseg.utils import register_all_modules  # noqa: E402

from projects.sar_oilspill.datasets.val_split import sample_id, split_ids, write_id_list  # noqa: E402
from projects.sar_oilspill.utils.atomic import write_json_atomic  # noqa: E402
from projects.sar_oilspill.utils.cli import real_train_dataset_cfg  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', help="a config; its train_dataloader.dataset (DAKDDataset: its 'real' part) is split")
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    p.add_argument('--type', help='dataset class, e.g. SOSDataset or OSDDataset (without --config)')
    p.add_argument('--root', help='data root (without --config)')
    p.add_argument('--img-dir', help='image folder relative to --root')
    p.add_argument('--seg-dir', help='mask folder relative to --root (default: --img-dir)')
    p.add_argument('--fraction', type=float, help="share of the samples in the validation part (default: the "
                   "config's split, else 0.1)")
    p.add_argument('--seed', type=int, help="seed of the split (default: the config's split, else 0)")
    p.add_argument('--out-dir', required=True, help='writes train.txt, val.txt and split.json here')
    a = p.parse_args(argv)
    register_all_modules(init_default_scope=True)
    if a.config:
        cfg = Config.fromfile(a.config)
        if a.cfg_options:
            cfg.merge_from_dict(a.cfg_options)
        ds = real_train_dataset_cfg(cfg)
    elif a.type and a.root and a.img_dir:
        ds = dict(type=a.type, data_root=a.root,
                  data_prefix=dict(img_path=a.img_dir, seg_map_path=a.seg_dir or a.img_dir))
    else:
        p.error('give --config, or --type, --root and --img-dir')
    cfg_split = ds.pop('split', None) or {}
    if a.fraction is None:
        a.fraction = cfg_split.get('fraction', 0.1)
    if a.seed is None:
        a.seed = cfg_split.get('seed', 0)
    ds.update(pipeline=[], check_files=False)
    dataset = DATASETS.build(ds)
    img_dir = dataset.data_prefix.get('img_path', '')
    ids = [sample_id(dataset.get_data_info(i)['img_path'], img_dir, dataset.img_suffix) for i in range(len(dataset))]
    try:
        train, val = split_ids(ids, a.fraction, a.seed)
    except ValueError as e:
        print(f'error: {img_dir}: {e}', file=sys.stderr)
        return 2
    write_id_list(train, osp.join(a.out_dir, 'train.txt'))
    write_id_list(val, osp.join(a.out_dir, 'val.txt'))
    info = dict(img_dir=img_dir, img_suffix=dataset.img_suffix, fraction=a.fraction, seed=a.seed,
                num_total=len(ids), num_train=len(train), num_val=len(val),
                config_snippet=dict(split=dict(part='val', fraction=a.fraction, seed=a.seed)))
    write_json_atomic(info, osp.join(a.out_dir, 'split.json'))
    print(f'{img_dir}: {len(ids)} samples -> {len(train)} train ({osp.join(a.out_dir, "train.txt")}) + '
          f'{len(val)} val ({osp.join(a.out_dir, "val.txt")}); fraction {a.fraction}, seed {a.seed}. The same split '
          f"from a config: dataset=dict(..., split=dict(part='train'|'val', fraction={a.fraction}, seed={a.seed}))")
    return 0


if __name__ == '__main__':
    sys.exit(main())

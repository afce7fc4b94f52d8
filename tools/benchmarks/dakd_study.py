"""Does DAKD help on real SOS tiles? {CPU-sized SAROSS-Net, SegFormer-B0} x {real only, real + D_aug (DAKD)} x seeds.

Protocol (every choice is made on data carved out of the training tiles; the test tiles are used once per run):

* split: a deterministic validation part of the training tiles (``--val-fraction``, ``--split-seed``; the same ids
  on every machine, projects/sar_oilspill/datasets/val_split.py), written to ``<work-dir>/split/{train,val,test}.txt``;
  ``--train-size N`` keeps N tiles of the training part (a labelled-data budget: the teacher, the control and the
  students all see only those; the validation and test tiles stay the same);
* teacher (once, shared by all DAKD students; its CPU time reported apart): balancing factor ``b`` on the train
  part (tools/compute_balancing_factor.py), SAR-JointNet tiny on the train part (configs/sar_jointnet/
  sos_alos_tiny_cpu.py, tools/train.py), D_aug generation (tools/generate_daug.py);
* or, with ``--daug-source real-crops``, no teacher but the control D_aug: crops of the train-part tiles with their
  own labels (tools/dataset_tools/real_to_daug.py), what a generator that reproduced its training set would give;
* students: ``--iters`` iterations x ``--batch`` (256x256 tiles), the same AdamW + warm-up + poly schedule for
  real-only and DAKD, validation on the val part every ``--val-interval`` iterations, the best-val-mIoU checkpoint
  kept (tools/train.py) and evaluated once on the test tiles (tools/test.py). By default the real-only student has
  the same model and losses as its DAKD counterpart (CE + KD + Dice of configs/_base_/models/dakd_losses.py; KD is
  inactive on real tiles), so the difference is the generated data alone (``--real-only-loss config``: the
  baseline config's own loss, e.g. SegFormer's plain CE);
* generation quality (tools/analysis/eval_generation.py): speckle histogram JS / W1 and ENL of D_aug vs the train
  part, the class shares of the generated labels vs the real ones, label-image consistency with the first model's
  real-only student (first seed); an invocation without a real-only student keeps an earlier evaluation of the same
  D_aug;
* with ``--variants ... dakd-relabel``, a third student per model and seed: the teacher's images with the soft labels
  of the real-only student of the same model and seed (tools/dataset_tools/relabel_daug.py, into
  ``<work-dir>/relabel/``): against real only it measures what the generated images do, against DAKD what the
  teacher's labels do;
* with ``--variants ... dakd-agreed``, the teacher's images and soft labels, but only the pixels where the real-only
  student of the same model and seed agrees with the teacher's argmax (``relabel_daug.py --labels source-agreed``,
  a masked D_aug in ``<work-dir>/agreed/``; KD and Dice skip the other pixels): against DAKD it measures what the
  labels of the disagreeing pixels cost.

Outputs in ``--work-dir``: ``runs/<model>_<variant>_seed<k>.json`` (one per run; the control's DAKD runs
``<model>_dakd-realcrops_seed<k>``), ``teacher.json`` (the control: ``real_crops.json``),
``generation_quality.json`` (``generation_quality_real_crops.json``), ``summary.md`` / ``summary.json`` (mean +- std
over seeds, DAKD minus real-only per model, paired by seed; where the study and its control share the work-dir,
also the teacher's D_aug minus the control, paired by seed). Resumable: a run whose JSON exists with the same
settings is skipped; so are the teacher steps and the generation-quality evaluation.

    python tools/benchmarks/dakd_study.py --data-root ../shared/data/sos_mini --seeds 0 1 2
    python tools/benchmarks/dakd_study.py --data-root ../shared/data/sos_mini --daug-source real-crops  # control
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import re
import shutil
import statistics
import sys
import time
from typing import Dict, List, Optional

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import projects.tool_env  # noqa: E402,F401  (OMP_NUM_THREADS, before torch loads)

from projects.sar_oilspill.utils.atomic import write_json_atomic  # noqa: E402
from projects.sar_oilspill.utils.tool_runs import ROOT, cfg_options, last_checkpoint, run_test, run_tool  # noqa: E402

#: model name -> (real-only config, DAKD config)
MODELS = {
    'saross_tiny': ('configs/saross/sos_alos_tiny_cpu.py', 'configs/dakd/saross_sos_alos_tiny_cpu.py'),
    'segformer_b0': ('configs/baselines/segformer_b0_sos_alos.py', 'configs/dakd/segformer_b0_sos_alos.py'),
}
VARIANTS = ('real', 'dakd', 'dakd-relabel', 'dakd-agreed')
#: the variants that train on real + D_aug (the DAKD config); 'dakd-relabel': the teacher's images with the soft
#: labels of the real-only student of the same model and seed (tools/dataset_tools/relabel_daug.py);
#: 'dakd-agreed': the teacher's images and labels, only where that student's argmax agrees (--labels source-agreed)
DAKD_VARIANTS = ('dakd', 'dakd-relabel', 'dakd-agreed')
#: the variants whose D_aug is written from the teacher's by the real-only student: variant -> (--labels, folder)
LABELLED_VARIANTS = {'dakd-relabel': ('segmentor', 'relabel'), 'dakd-agreed': ('source-agreed', 'agreed')}
TEACHER_CONFIG = 'configs/sar_jointnet/sos_alos_tiny_cpu.py'
REAL_CROP_MARGIN = 8.0  # default logit of the labelled class of the real-crop control (softmax at T=2: 0.98)
LEAKY_SLOPE = 0.1  # --decoder-act leaky, as configs/saross/synthetic_tiny.py
STUDENT_CROP = 256  # SOS tiles
METRIC_KEYS = ('mIoU', 'IoU.oil_spill', 'IoU.background', 'mF1', 'aAcc')


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=_HelpFormatter)
    p.add_argument('--data-root', required=True, help='SOS root with train/<sensor>/ (the training tiles)')
    p.add_argument('--test-root', help='SOS root with test/<sensor>/{sat,gt} (default: --data-root)')
    p.add_argument('--sensor', default='palsar', choices=['palsar', 'sentinel'], help='SOS part')
    p.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS), help='students')
    p.add_argument('--variants', nargs='+', default=['real', 'dakd'], choices=list(VARIANTS),
                   help="training data: 'real' only, real + D_aug ('dakd'), or real + the teacher's images "
                        "relabelled by the real-only student of the same model and seed ('dakd-relabel': the "
                        'images without the teacher\'s labels; needs that real-only run, here or in --variants), '
                        "or real + the teacher's images and labels where that student agrees with them ('dakd-agreed', "
                        'the other pixels unlabelled; needs that run too)')
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2], help='training seeds of the students')
    p.add_argument('--work-dir', default='work_dirs/dakd_study', help='outputs (and what a re-run skips)')
    g = p.add_argument_group('split')
    g.add_argument('--val-fraction', type=float, default=0.1, help='share of the training tiles used for validation')
    g.add_argument('--split-seed', type=int, default=0, help='seed of the split (fixed across training seeds)')
    g.add_argument('--train-size', type=int, default=None,
                   help='labelled-data budget: keep this many tiles of the training part (the first in the split '
                        'order; the teacher, the control and the students all see only these; the validation and '
                        'test tiles are unchanged) (default: the whole training part)')
    g = p.add_argument_group('students (the same for real-only and DAKD)')
    g.add_argument('--iters', type=int, default=1000, help='training iterations per student')
    g.add_argument('--batch', type=int, default=8, help='batch size of the students')
    g.add_argument('--lr', type=float, default=1e-3, help='AdamW learning rate (weight decay 0.01)')
    g.add_argument('--warmup', type=int, default=50, help='linear warm-up iterations, then poly decay')
    g.add_argument('--val-interval', type=int, default=100, help='validate (and keep the best) every N iterations')
    g.add_argument('--num-workers', type=int, default=2, help='data-loading processes per loader')
    g.add_argument('--real-only-loss', choices=['same', 'config'], default='same',
                   help="'same': real-only students use the DAKD config's model and losses; 'config': the "
                        "baseline config as it is")
    g.add_argument('--kd-temperature', type=float, default=2.0, help='KD temperature T of the DAKD loss')
    g.add_argument('--dice-temperature', type=float, default=None,
                   help="temperature of the teacher's softmax that the DAKD students' Dice takes as its target on "
                        "generated pixels (SoftDiceLoss soft_temperature; default: the configs' 1, the teacher's own "
                        "estimate; the KD temperature makes the Dice targets no harder than the KD ones)")
    g.add_argument('--decoder-act', choices=['relu', 'leaky'], default='relu',
                   help="activation of the students' decode head: 'relu', the configs' as they are; 'leaky', "
                        "LeakyReLU (slope 0.1), which keeps a gradient where a ReLU stage is dead (see the README on "
                        "the collapsed seed-2 student). Use a work-dir of its own: runs are named the same")
    g.add_argument('--tile-uses', type=float, default=None,
                   help='DAKDDataset synthetic.tile_uses_per_epoch (default: one synthetic input per generated '
                        'tile: n*n with n x n mosaics, 1.0 without)')
    g = p.add_argument_group('teacher (SAR-JointNet tiny; run once)')
    g.add_argument('--daug-source', choices=['jointnet', 'real-crops'], default='jointnet',
                   help="what the DAKD students get as D_aug: 'jointnet', the teacher's generated tiles; "
                        "'real-crops', the control: --gen-samples crops of --gen-size of the train-part tiles with "
                        "their own labels as near one-hot logits (tools/dataset_tools/real_to_daug.py; no teacher "
                        "is trained), what a generator that reproduced its training set exactly would give")
    g.add_argument('--real-crop-margin', type=float, default=REAL_CROP_MARGIN,
                   help='the real-crop control\'s logit of the labelled class (0 for the others): how hard its labels '
                        'are (8: 0.98 after softmax at T = 2, 2: 0.73)')
    g.add_argument('--teacher-iters', type=int, nargs=3, default=[300, 300, 300], metavar=('S1', 'S2', 'S3'),
                   help='iterations of the 3 training stages')
    g.add_argument('--teacher-crop', type=int, default=64, help='training crop of SAR-JointNet')
    g.add_argument('--teacher-cat-max-ratio', type=float, default=None,
                   help="cat_max_ratio of the teacher's RandomCrop (mmseg): a crop in which one class covers more "
                        'than this share of the pixels is drawn again (up to 10 times), so the teacher sees fewer '
                        'sea-only crops (default: off, every crop kept)')
    g.add_argument('--teacher-batch', type=int, default=8, help='batch size of SAR-JointNet')
    g.add_argument('--teacher-lr', type=float, default=1e-3, help='learning rate of stages 1-2 (stage 3: x0.1)')
    g.add_argument('--teacher-seed', type=int, default=0, help='training seed and base seed of the generation')
    g.add_argument('--gen-size', type=int, default=64,
                   help=f'generated tile size, a divisor of {STUDENT_CROP}: {STUDENT_CROP} // size tiles per side of '
                        f'a mosaic (64: 4x4; 128: 2x2; {STUDENT_CROP}: single tiles). The default is the teacher\'s '
                        'training crop: sampling at 128 extrapolates beyond it and costs 12x as much per tile '
                        '(attention over 4x the tokens)')
    g.add_argument('--gen-steps', type=int, default=20, help='DDIM steps')
    g.add_argument('--gen-samples', type=int, default=None, help='generated tiles (default: the train part size)')
    g.add_argument('--gen-batch', type=int, default=16, help='tiles per sampling call')
    a = p.parse_args(argv)
    a.test_root = a.test_root or a.data_root
    if not (0 < a.gen_size <= STUDENT_CROP and STUDENT_CROP % a.gen_size == 0 and a.gen_size % 8 == 0):
        p.error(f'--gen-size {a.gen_size}: expected a multiple of 8 dividing {STUDENT_CROP} (e.g. 64: 4x4 mosaics of '
                f'{STUDENT_CROP}; 128: 2x2; {STUDENT_CROP}: single tiles)')
    for name in ('iters', 'batch', 'val_interval', 'teacher_crop', 'teacher_batch', 'gen_steps', 'gen_batch'):
        if getattr(a, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(a, name)}')
    if not a.real_crop_margin > 0:
        p.error(f'--real-crop-margin {a.real_crop_margin}: expected a logit margin > 0')
    if a.dice_temperature is not None and not a.dice_temperature > 0:
        p.error(f'--dice-temperature {a.dice_temperature}: expected a temperature > 0')
    if a.teacher_cat_max_ratio is not None and not 0 < a.teacher_cat_max_ratio <= 1:
        p.error(f'--teacher-cat-max-ratio {a.teacher_cat_max_ratio}: expected a share in (0, 1]')
    if a.gen_samples is not None and a.gen_samples < 1:
        p.error(f'--gen-samples must be >= 1, got {a.gen_samples}')
    if not 0 < a.val_fraction < 1:
        p.error(f'--val-fraction {a.val_fraction}: expected a number strictly between 0 and 1')
    if a.train_size is not None and a.train_size < 1:
        p.error(f'--train-size must be >= 1, got {a.train_size}')
    if len(set(a.seeds)) != len(a.seeds):
        p.error(f'--seeds {a.seeds}: repeated seeds')
    for v in LABELLED_VARIANTS:
        if v in a.variants and a.daug_source != 'jointnet':
            p.error(f'--variants {v} relabels the teacher\'s generated tiles; it does not go with --daug-source '
                    f'{a.daug_source}')
    a.variants = [v for v in VARIANTS if v in a.variants]  # real-only runs first: dakd-relabel/-agreed need them
    return a


# ----------------------------------------------------------------------------------------------------------------
# data

def data_paths(a) -> Dict[str, Dict[str, str]]:
    train = dict(data_root=osp.abspath(a.data_root), img_path=f'train/{a.sensor}', seg_map_path=f'train/{a.sensor}')
    test = dict(data_root=osp.abspath(a.test_root), img_path=f'test/{a.sensor}/sat',
                seg_map_path=f'test/{a.sensor}/gt')
    return dict(train=train, test=test)


def split_cfg(a, part: str) -> Dict:
    cfg = dict(part=part, fraction=a.val_fraction, seed=a.split_seed)
    if part == 'train' and a.train_size is not None:  # only when set: earlier runs' settings stay the same
        cfg['train_size'] = a.train_size
    return cfg


def dataset_opts(key: str, paths: Dict[str, str], split: Optional[Dict], num_workers: Optional[int] = None,
                 loader: Optional[str] = None) -> Dict[str, object]:
    """--cfg-options that point the dataset at ``key`` to ``paths`` (and a part of the split)."""
    opts = {f'{key}.data_root': paths['data_root'], f'{key}.data_prefix.img_path': paths['img_path'],
            f'{key}.data_prefix.seg_map_path': paths['seg_map_path']}
    for k, v in (split or {}).items():
        opts[f'{key}.split.{k}'] = v
    if loader is not None and num_workers is not None:
        opts[f'{loader}.num_workers'] = num_workers
        opts[f'{loader}.persistent_workers'] = num_workers > 0
    return opts


def make_split(a, out_dir: str) -> Dict:
    """Build the train / val / test datasets as the runs will, write their ids and check the split."""
    from mmseg.registry import DATASETS
    from mmseg.utils import register_all_modules

    import projects.sar_oilspill  # noqa: F401
    from projects.sar_oilspill.datasets.val_split import sample_id, write_id_list
    register_all_modules(init_default_scope=True)
    paths = data_paths(a)
    if not osp.isdir(osp.join(paths['train']['data_root'], paths['train']['img_path'])):
        raise SystemExit(f'{a.data_root}: no {paths["train"]["img_path"]} folder (SOS layout expected)')
    if not osp.isdir(osp.join(paths['test']['data_root'], paths['test']['img_path'])):
        raise SystemExit(f'{a.test_root}: no {paths["test"]["img_path"]} folder (SOS layout expected)')
    ids = {}
    parts = (('train', paths['train'], split_cfg(a, 'train')), ('val', paths['train'], split_cfg(a, 'val')),
             ('test', paths['test'], None), ('all', paths['train'], None))
    for part, p, split in parts:
        ds = DATASETS.build(dict(type='SOSDataset', data_root=p['data_root'], pipeline=[], split=split,
                                 data_prefix=dict(img_path=p['img_path'], seg_map_path=p['seg_map_path'])))
        img_dir = ds.data_prefix['img_path']
        ids[part] = sorted(sample_id(ds.get_data_info(i)['img_path'], img_dir, ds.img_suffix)
                           for i in range(len(ds)))
    train, val, test, all_ids = (set(ids[k]) for k in ('train', 'val', 'test', 'all'))
    complete = train | val == all_ids if a.train_size is None else (train | val <= all_ids
                                                                     and len(train) == a.train_size)
    if train & val or not complete:
        raise RuntimeError(f'split of {a.data_root}: train and val parts overlap or do not cover the training set'
                           + ('' if a.train_size is None else f' (or the train part is not {a.train_size} tiles)'))
    for part in ('train', 'val', 'test'):
        write_id_list(ids[part], osp.join(out_dir, f'{part}.txt'))
    return dict(fraction=a.val_fraction, seed=a.split_seed, train_size=a.train_size, num_train=len(train),
                num_val=len(val),
                num_test=len(test), num_train_total=len(all_ids), train_val_disjoint=True,
                test_names_shared_with_training=len(test & all_ids))


# ----------------------------------------------------------------------------------------------------------------
# helpers

def load_json(path: str) -> Optional[Dict]:
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError:
        return None


def as_json(value):
    """``value`` as it reads back from a JSON file (tuples become lists, int keys strings): for comparing settings
    with those stored in a JSON."""
    return json.loads(json.dumps(value))


def same_settings(path: str, settings: Dict) -> Optional[Dict]:
    """The JSON at ``path`` if it exists and was produced with ``settings`` (JSON-normalised)."""
    old = load_json(path)
    if old is not None and old.get('settings') == as_json(settings):
        return old
    return None


def write_config(path: str, base: str, body: str) -> str:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(f'# written by tools/benchmarks/dakd_study.py\n_base_ = {osp.join(ROOT, base)!r}\n{body}')
    return path


def schedule_body(a) -> str:
    """Optimiser, schedule, validation and checkpointing shared by every student. The best checkpoint is the one
    tested; the last one is kept beside it for post-mortems (e.g. of a student that collapsed after its best)."""
    warmup = min(a.warmup, a.iters - 1)
    sched = ([f"dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end={warmup}), "] if warmup > 0
             else [])
    sched.append(f"dict(type='PolyLR', eta_min=1e-5, power=0.9, by_epoch=False, begin={warmup}, end={a.iters})")
    return (f"train_dataloader = dict(batch_size={a.batch})\n"
            f"train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={a.iters}, "
            f"val_interval={a.val_interval})\n"
            "val_cfg = dict(type='ValLoop')\ntest_cfg = dict(type='TestLoop')\n"
            "optim_wrapper = dict(_delete_=True, type='OptimWrapper', "
            f"optimizer=dict(type='AdamW', lr={a.lr}, weight_decay=0.01))\n"
            f"param_scheduler = [{''.join(sched)}]\n"
            "default_hooks = dict(logger=dict(interval=" + str(max(1, min(50, a.iters))) + "), "
            "checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=-1, save_last=True, "
            "save_best='mIoU', rule='greater', max_keep_ckpts=1))\n"
            "custom_hooks = [dict(type='NonFiniteLossHook')]\n")


def val_curve(run_dir: str) -> List[Dict]:
    """(iteration, val mIoU) of every validation, from mmengine's scalars.json of the training run."""
    curve = []
    for path in sorted(glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'mIoU' in rec:
                    curve.append(dict(iter=int(rec['step']), mIoU=float(rec['mIoU'])))
    return curve


def fmt_min(seconds: float) -> str:
    return f'{seconds / 60:.1f} min'


# ----------------------------------------------------------------------------------------------------------------
# teacher

def teacher_settings(a, split: Dict) -> Dict:
    s = dict(config=TEACHER_CONFIG, sensor=a.sensor, data_root=osp.abspath(a.data_root), split=split_cfg(a, 'train'),
             num_train=split['num_train'], stage_iters=list(a.teacher_iters), crop=a.teacher_crop,
             batch=a.teacher_batch, lr=a.teacher_lr, seed=a.teacher_seed, gen_size=a.gen_size,
             gen_steps=a.gen_steps, gen_samples=a.gen_samples or split['num_train'], gen_batch=a.gen_batch)
    if a.teacher_cat_max_ratio is not None:  # only when set: earlier teachers' settings stay the same
        s['crop_cat_max_ratio'] = a.teacher_cat_max_ratio
    return s


def teacher_config_body(settings: Dict) -> str:
    """What the teacher's config (``<work-dir>/teacher/sar_jointnet.py``) sets on top of ``TEACHER_CONFIG``."""
    ratio = settings.get('crop_cat_max_ratio')
    crop = f"dict(type='RandomCrop', crop_size=({settings['crop']}, {settings['crop']})" + (
        f', cat_max_ratio={ratio})' if ratio is not None else ')')
    pipeline = ("[dict(type='LoadOilSpillImage'), dict(type='LoadOilSpillAnnotations'), "
                f"{crop}, dict(type='RandomFlip', prob=0.5, direction='horizontal'), dict(type='PackSegInputs')]")
    total = sum(settings['stage_iters'])
    return (f"train_dataloader = dict(batch_size={settings['batch']}, dataset=dict(pipeline={pipeline}))\n"
            f"train_cfg = dict(stage_iters={tuple(settings['stage_iters'])})\n"
            f"optim_wrapper = dict(optimizer=dict(lr={settings['lr']}))\n"
            f"default_hooks = dict(logger=dict(interval={max(1, min(50, total))}), "
            f"checkpoint=dict(interval={total}, max_keep_ckpts=1))\n")


def real_crops_settings(a, split: Dict) -> Dict:
    """What the real-crop control's D_aug depends on (its margin: ``--real-crop-margin``)."""
    return dict(source='real_crops', config=TEACHER_CONFIG, sensor=a.sensor, data_root=osp.abspath(a.data_root),
                split=split_cfg(a, 'train'), num_train=split['num_train'], seed=a.teacher_seed,
                margin=a.real_crop_margin, gen_size=a.gen_size, gen_samples=a.gen_samples or split['num_train'])


def run_real_crops(a, work_dir: str, split: Dict) -> Dict:
    """The control D_aug: crops of the train-part tiles with their own labels (tools/dataset_tools/real_to_daug.py)."""
    settings = real_crops_settings(a, split)
    out = osp.join(work_dir, 'real_crops.json')
    done = same_settings(out, settings)
    if done is not None:
        print(f'[real crops] done before ({out}), skipped')
        return done
    rdir = osp.join(work_dir, 'real_crops')
    daug = osp.join(rdir, f'daug_{a.gen_size}px_seed{a.teacher_seed}')
    shutil.rmtree(daug, ignore_errors=True)  # written again from scratch: a few seconds
    os.makedirs(rdir, exist_ok=True)
    n = settings['gen_samples']
    print(f'[real crops] {n} crops of {a.gen_size}x{a.gen_size} of the train part with their labels ...', flush=True)
    seconds = run_tool('tools/dataset_tools/real_to_daug.py', [
        TEACHER_CONFIG, '--out-dir', daug, '--num-samples', str(n), '--size', str(a.gen_size), '--seed',
        str(a.teacher_seed), '--margin', str(settings['margin']),
        *cfg_options(dataset_opts('train_dataloader.dataset', data_paths(a)['train'], split_cfg(a, 'train')))],
        log_path=osp.join(rdir, 'real_crops.log'))
    result = dict(settings=settings, daug_dir=daug, num_tiles=n, cpu_times_s=dict(real_crops_s=round(seconds, 1)),
                  total_s=round(seconds, 1))
    write_json_atomic(result, out)
    return result


def dice_note(a) -> str:
    """``"; Dice targets: the teacher's softmax at T = x"`` for the summary when --dice-temperature is set, else
    ``''``."""
    return '' if a.dice_temperature is None else f"; Dice targets: the teacher's softmax at T = {a.dice_temperature}"


def is_control(teacher: Optional[Dict]) -> bool:
    """True for the D_aug of the real-crop control (:func:`run_real_crops`), False for a teacher's or none."""
    return teacher is not None and teacher['settings'].get('source') == 'real_crops'


def run_teacher(a, work_dir: str, split: Dict) -> Dict:
    settings = teacher_settings(a, split)
    out = osp.join(work_dir, 'teacher.json')
    done = same_settings(out, settings)
    if done is not None:
        print(f'[teacher] done before ({out}), skipped')
        return done
    tdir = osp.join(work_dir, 'teacher')
    # the trained teacher depends on the training settings only: other generation settings keep it and generate
    # into their own folder (daug_<size>px_<steps>steps); other training settings start again
    train_keys = [k for k in settings if not k.startswith('gen_')]
    old = load_json(osp.join(tdir, 'settings.json')) or {}
    if any(old.get(k) != as_json(settings[k]) for k in train_keys):
        shutil.rmtree(tdir, ignore_errors=True)
    os.makedirs(tdir, exist_ok=True)
    write_json_atomic(settings, osp.join(tdir, 'settings.json'))
    log = osp.join(tdir, 'teacher.log')
    total = sum(a.teacher_iters)
    cfg = write_config(osp.join(tdir, 'sar_jointnet.py'), TEACHER_CONFIG, teacher_config_body(settings))
    data = dataset_opts('train_dataloader.dataset', data_paths(a)['train'], split_cfg(a, 'train'), a.num_workers,
                        'train_dataloader')
    data['randomness.seed'] = a.teacher_seed
    times = {}
    bf_json = osp.join(tdir, 'balancing_factor.json')
    if load_json(bf_json) is None:
        print('[teacher] balancing factor b of the train part ...', flush=True)
        times['balancing_factor_s'] = run_tool('tools/compute_balancing_factor.py', [
            cfg, '--work-dir', tdir, '--out', bf_json, '--num-workers', str(a.num_workers),
            *cfg_options(dataset_opts('train_dataloader.dataset', data_paths(a)['train'], split_cfg(a, 'train')))],
            log_path=log)
    bf = load_json(bf_json)
    b = float(bf['balancing_factor'])
    ckpt = osp.join(tdir, f'iter_{total}.pth')
    if not osp.isfile(ckpt):
        print(f'[teacher] SAR-JointNet tiny, stages {a.teacher_iters} on {a.teacher_crop}x{a.teacher_crop} crops, '
              f'b = {b:.4f} ...', flush=True)
        resume = ['--resume'] if glob.glob(osp.join(tdir, 'iter_*.pth')) else []
        times['jointnet_train_s'] = run_tool('tools/train.py', [
            cfg, '--work-dir', tdir, *resume, *cfg_options(dict(data, **{'model.balancing_factor': b}))],
            log_path=log)
    ckpt = last_checkpoint(tdir)
    daug = osp.join(tdir, f'daug_{a.gen_size}px_{a.gen_steps}steps')
    n = settings['gen_samples']
    print(f'[teacher] generating {n} tiles of {a.gen_size}x{a.gen_size}, {a.gen_steps} DDIM steps ...', flush=True)
    times['generation_s'] = run_tool('tools/generate_daug.py', [
        cfg, ckpt, '--out-dir', daug, '--num-samples', str(n), '--steps', str(a.gen_steps), '--size',
        str(a.gen_size), '--batch-size', str(a.gen_batch), '--seed', str(a.teacher_seed), '--grid', '16'],
        log_path=log)
    result = dict(settings=settings, balancing_factor=b, balancing_factor_json=bf, checkpoint=ckpt, daug_dir=daug,
                  num_tiles=n, cpu_times_s={k: round(v, 1) for k, v in times.items()},
                  total_s=round(sum(times.values()), 1),
                  note='times of the steps run by this invocation (a resumed teacher lists only those it ran)')
    write_json_atomic(result, out)
    print(f'[teacher] done: {fmt_min(result["total_s"])} ({out})')
    return result


# ----------------------------------------------------------------------------------------------------------------
# students

def student_split(a) -> Dict:
    split = dict(fraction=a.val_fraction, seed=a.split_seed)
    if a.train_size is not None:  # only when set: earlier runs' settings stay the same
        split['train_size'] = a.train_size
    return split


def student_settings(a, model: str, variant: str, seed: int, teacher: Optional[Dict],
                     labeller: Optional[Dict] = None) -> Dict:
    """A student run's settings (what a re-run compares). ``labeller`` (``dakd-relabel`` and ``dakd-agreed``
    only): the real-only run whose best checkpoint relabels (or filters the labels of) the teacher's tiles."""
    s = dict(model=model, variant=variant, seed=seed, config=MODELS[model][0 if variant == 'real' else 1],
             real_only_loss=a.real_only_loss if variant == 'real' else None, sensor=a.sensor,
             data_root=osp.abspath(a.data_root), test_root=osp.abspath(a.test_root),
             split=student_split(a), iters=a.iters, batch=a.batch, lr=a.lr,
             warmup=a.warmup, val_interval=a.val_interval, crop=STUDENT_CROP)
    if a.decoder_act != 'relu':  # only when set: earlier runs' settings stay the same
        s['decoder_act'] = a.decoder_act
    if variant in DAKD_VARIANTS:
        grid = STUDENT_CROP // a.gen_size
        mosaic = grid if grid > 1 else False  # tiles per side of the student's input
        s.update(teacher=teacher['settings'], kd_temperature=a.kd_temperature, mosaic=mosaic,
                 tile_uses_per_epoch=a.tile_uses if a.tile_uses is not None else float(grid * grid))
        if a.dice_temperature is not None:  # only when set: earlier runs' settings stay the same
            s['dice_temperature'] = a.dice_temperature
    if variant in LABELLED_VARIANTS:
        s['relabelled_by'] = dict(run=labeller['name'], checkpoint=labeller['best_checkpoint'],
                                  checkpoint_sha256=labeller['best_checkpoint_sha256'])
    return s


def loss_index(losses: List[Dict], loss_type: str, base: str) -> int:
    """Position of the one ``loss_type`` in a config's ``model.decode_head.loss_decode`` (``base`` names it)."""
    found = [i for i, loss in enumerate(losses) if loss['type'] == loss_type]
    if len(found) != 1:
        raise RuntimeError(f'{base}: expected one {loss_type} in model.decode_head.loss_decode, found {len(found)}')
    return found[0]


def student_config(a, run_dir: str, s: Dict) -> (str, Dict):
    """Write the run's config; returns it with the --cfg-options of its data."""
    from mmengine.config import Config
    paths = data_paths(a)
    body = schedule_body(a)
    opts = {'randomness.seed': s['seed']}
    if s.get('decoder_act') == 'leaky':
        opts.update({'model.decode_head.act_cfg.type': 'LeakyReLU',
                     'model.decode_head.act_cfg.negative_slope': LEAKY_SLOPE})
    if s['variant'] in DAKD_VARIANTS:
        base = MODELS[s['model']][1]
        real_key = 'train_dataloader.dataset.real'
        losses = Config.fromfile(osp.join(ROOT, base)).model.decode_head.loss_decode
        kd = loss_index(losses, 'KDLoss', base)
        if s.get('dice_temperature') is not None:
            opts[f'model.decode_head.loss_decode.{loss_index(losses, "SoftDiceLoss", base)}.soft_temperature'] = \
                s['dice_temperature']
        opts.update({'train_dataloader.dataset.synthetic.data_root': osp.abspath(s['teacher_daug_dir']),
                     'train_dataloader.dataset.synthetic.mosaic': s['mosaic'],
                     'train_dataloader.dataset.synthetic.tile_uses_per_epoch': s['tile_uses_per_epoch'],
                     f'model.decode_head.loss_decode.{kd}.temperature': s['kd_temperature']})
    elif a.real_only_loss == 'same':
        base = MODELS[s['model']][1]  # the DAKD model and losses, trained on the real part only
        real = Config.fromfile(osp.join(ROOT, base)).train_dataloader.dataset.real.to_dict()
        body += f'train_dataloader.update(dataset=dict(_delete_=True, **{real!r}))\n'
        real_key = 'train_dataloader.dataset'
    else:
        base = MODELS[s['model']][0]
        real_key = 'train_dataloader.dataset'
    opts.update(dataset_opts(real_key, paths['train'], split_cfg(a, 'train'), a.num_workers, 'train_dataloader'))
    opts.update(dataset_opts('val_dataloader.dataset', paths['train'], split_cfg(a, 'val'), a.num_workers,
                             'val_dataloader'))
    opts.update(dataset_opts('test_dataloader.dataset', paths['test'], None, a.num_workers, 'test_dataloader'))
    return write_config(osp.join(run_dir, 'config.py'), base, body), opts


def run_name(model: str, variant: str, seed: int, control: bool) -> str:
    """A student run's name in ``<work-dir>/runs``: ``<model>_<real|dakd|dakd-realcrops>_seed<k>``. The control's
    DAKD runs (``control``: the D_aug is the real-crop control's) have their own name, so that a teacher's study and
    its control can share a work-dir and its real-only runs."""
    return f'{model}_{"dakd-realcrops" if variant == "dakd" and control else variant}_seed{seed}'


def labeller_run(a, work_dir: str, model: str, seed: int) -> Dict:
    """The real-only run of ``model`` and ``seed`` in ``work_dir`` (trained with this invocation's student settings),
    whose best checkpoint relabels the teacher's tiles for ``dakd-relabel`` (``dakd-agreed``: filters their
    labels), with that checkpoint's SHA-256."""
    from projects.sar_oilspill.engine.jointnet_generation_loop import file_sha256
    path = osp.join(work_dir, 'runs', f'{run_name(model, "real", seed, False)}.json')
    run = same_settings(path, student_settings(a, model, 'real', seed, None))
    if run is None:
        raise RuntimeError(f'--variants {"/".join(LABELLED_VARIANTS)}: no real-only run {path} with these student '
                           "settings (add 'real' to --variants, or copy that run's JSON into the work-dir)")
    if not osp.isfile(run['best_checkpoint']):
        raise RuntimeError(f"{path}: its best checkpoint {run['best_checkpoint']} does not exist")
    return dict(run, best_checkpoint_sha256=file_sha256(run['best_checkpoint']))


def relabel_daug(work_dir: str, teacher: Dict, labeller: Dict, variant: str = 'dakd-relabel') -> str:
    """The teacher's D_aug relabelled by ``labeller`` (tools/dataset_tools/relabel_daug.py; ``dakd-agreed``: its
    labels kept where ``labeller`` agrees), written again from scratch (seconds) into
    ``<work-dir>/{relabel,agreed}/<labeller>_<D_aug folder name>``; returns the folder."""
    labels, folder = LABELLED_VARIANTS[variant]
    out = osp.join(work_dir, folder, f'{labeller["name"]}_{osp.basename(teacher["daug_dir"])}')
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(osp.dirname(out), exist_ok=True)
    print(f'[relabel] the teacher\'s {teacher["num_tiles"]} tiles labelled by {labeller["name"]} -> {out}',
          flush=True)
    run_tool('tools/dataset_tools/relabel_daug.py', [labeller['config'], labeller['best_checkpoint'], '--daug',
                                                     teacher['daug_dir'], '--out-dir', out, '--labels', labels],
             log_path=osp.join(osp.dirname(out), f'{osp.basename(out)}.log'))
    return out


def run_student(a, work_dir: str, model: str, variant: str, seed: int, split: Dict,
                teacher: Optional[Dict]) -> Dict:
    name = run_name(model, variant, seed, is_control(teacher))
    out = osp.join(work_dir, 'runs', f'{name}.json')
    labeller = labeller_run(a, work_dir, model, seed) if variant in LABELLED_VARIANTS else None
    settings = student_settings(a, model, variant, seed, teacher, labeller)
    done = same_settings(out, settings)
    if done is not None:
        print(f'[{name}] done before ({out}), skipped')
        return done
    run_dir = osp.join(work_dir, 'runs', name)
    shutil.rmtree(run_dir, ignore_errors=True)  # an unfinished or outdated run starts again
    os.makedirs(run_dir)
    s = settings
    if variant == 'dakd':
        s = dict(settings, teacher_daug_dir=teacher['daug_dir'])
    elif variant in LABELLED_VARIANTS:
        s = dict(settings, teacher_daug_dir=relabel_daug(work_dir, teacher, labeller, variant))
    cfg, opts = student_config(a, run_dir, s)
    log = osp.join(run_dir, 'run.log')
    print(f'[{name}] training {a.iters} iterations (log: {log}) ...', flush=True)
    train_s = run_tool('tools/train.py', [cfg, '--work-dir', run_dir, *cfg_options(opts)], log_path=log)
    best = glob.glob(osp.join(run_dir, 'best_mIoU_iter_*.pth'))
    if len(best) != 1:
        raise RuntimeError(f'{run_dir}: expected one best_mIoU_iter_*.pth, found {best} (log: {log})')
    best_iter = int(re.search(r'best_mIoU_iter_(\d+)\.pth$', best[0]).group(1))
    curve = val_curve(run_dir)
    best_val = max((c['mIoU'] for c in curve), default=float('nan'))
    if not any(c['iter'] == best_iter and c['mIoU'] == best_val for c in curve):
        raise RuntimeError(f'{run_dir}: best checkpoint iteration {best_iter} is not the best of the validation '
                           f'curve {curve}')
    t0 = time.time()
    metrics = run_test(cfg, best[0], osp.join(run_dir, 'test'), cfg_options(opts), log_path=log)
    test_s = time.time() - t0
    result = dict(name=name, settings=settings, config=cfg, base_config=settings['config'],
                  split_sizes=dict(train=split['num_train'], val=split['num_val'], test=split['num_test']),
                  iterations=a.iters, best_val_mIoU=best_val, best_iter=best_iter, best_checkpoint=best[0],
                  val_curve=curve, test_metrics=metrics, train_wall_s=round(train_s, 1), test_wall_s=round(test_s, 1),
                  wall_s=round(train_s + test_s, 1))
    if variant in LABELLED_VARIANTS:
        manifest = load_json(osp.join(s['teacher_daug_dir'], 'manifest.json'))
        result['relabelled_daug'] = dict(daug_dir=s['teacher_daug_dir'], label_shares=manifest['label_shares'],
                                         source_label_agreement=manifest['source_label_agreement'],
                                         labelled_share=manifest.get('labelled_share', 1.0))
    write_json_atomic(result, out)
    print(f'[{name}] best val mIoU {best_val:.2f} at iteration {best_iter}; test mIoU {metrics["mIoU"]:.2f}, '
          f'IoU oil {metrics["IoU.oil_spill"]:.2f}; {fmt_min(train_s + test_s)}')
    return result


# ----------------------------------------------------------------------------------------------------------------
# generation quality and summary

def quality_json(teacher: Dict) -> str:
    return 'generation_quality_real_crops.json' if is_control(teacher) else 'generation_quality.json'


def run_generation_quality(a, work_dir: str, teacher: Dict, runs: List[Dict]) -> Optional[Dict]:
    seg = next((r for r in runs if r['settings']['variant'] == 'real'), None)
    settings = dict(teacher=teacher['settings'], segmentor=seg and seg['name'],
                    segmentor_checkpoint=seg and seg['best_checkpoint'])
    out = osp.join(work_dir, quality_json(teacher))
    done = same_settings(out, settings)
    if done is None and seg is None:
        # an invocation without a real-only student (e.g. --variants dakd) cannot judge label consistency: it keeps
        # an earlier evaluation of the same D_aug that could (judged by another invocation's real-only student)
        old = load_json(out)
        if old is not None and old.get('settings', {}).get('teacher') == as_json(teacher['settings']):
            done = old
    if done is not None:
        print(f'[generation quality] done before ({out}), skipped')
        return done
    raw = osp.join(osp.dirname(teacher['daug_dir']), 'eval_generation.json')
    args = [teacher['daug_dir'], '--real-root', osp.join(osp.abspath(a.data_root), 'train', a.sensor),
            '--real-type', 'sos', '--real-list', osp.join(work_dir, 'split', 'train.txt'), '--out', raw]
    if seg is not None:
        args += ['--seg-config', seg['config'], '--seg-checkpoint', seg['best_checkpoint']]
    print('[generation quality] D_aug vs the train part ...', flush=True)
    seconds = run_tool('tools/analysis/eval_generation.py', args,
                       log_path=osp.join(osp.dirname(teacher['daug_dir']), 'eval_generation.log'))
    res = load_json(raw)
    result = dict(settings=settings, results=res, wall_s=round(seconds, 1))
    write_json_atomic(result, out)
    return result


def mean_std(values: List[float]) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return 'n/a'
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}'


def paired_rows(models: List[str], minuend: Dict, subtrahend: Dict) -> List[str]:
    """Markdown rows of ``minuend`` minus ``subtrahend`` per model, paired by seed (both ``{model: {seed: run}}``):
    test mIoU, test oil IoU and best validation mIoU, mean +- std of the per-seed differences."""
    rows = []
    for model in models:
        x, y = minuend.get(model, {}), subtrahend.get(model, {})
        seeds = sorted(set(x) & set(y))
        if seeds:
            d = lambda k: mean_std([x[s]['test_metrics'][k] - y[s]['test_metrics'][k] for s in seeds])  # noqa
            dv = mean_std([x[s]['best_val_mIoU'] - y[s]['best_val_mIoU'] for s in seeds])
            rows.append(f'| {model} | {len(seeds)} | {d("mIoU")} | {d("IoU.oil_spill")} | {dv} |')
    return rows


def student_only(settings: Dict) -> Dict:
    """A DAKD run's settings without its D_aug's (JSON-normalised): equal for a teacher's run and the control's run
    of the same student, seed and schedule."""
    return {k: v for k, v in as_json(settings).items() if k != 'teacher'}


def counterpart_runs(work_dir: str, runs: List[Dict], control: bool) -> Dict:
    """The other D_aug's DAKD runs in ``work_dir`` for this invocation's DAKD runs, ``{model: {seed: run}}``: for a
    teacher's study the real-crop control's (``<model>_dakd-realcrops_seed<k>.json``), for the control the
    teacher's (``<model>_dakd_seed<k>.json``); only those trained with the same student settings (model, seed, data,
    schedule, losses, mosaic, mix) but for the D_aug itself."""
    found = {}
    for r in runs:
        s = r['settings']
        if s['variant'] != 'dakd':  # not dakd-relabel/-agreed: the control's counterpart is the teacher's own D_aug
            continue
        other = load_json(osp.join(work_dir, 'runs', f'{run_name(s["model"], "dakd", s["seed"], not control)}.json'))
        if (other is not None and student_only(other['settings']) == student_only(s)
                and is_control(dict(settings=other['settings']['teacher'])) != control):
            found.setdefault(s['model'], {})[s['seed']] = other
    return found


def summarise(a, split: Dict, runs: List[Dict], teacher: Optional[Dict], quality: Optional[Dict],
              work_dir: Optional[str] = None) -> str:
    """The study's markdown summary. With ``work_dir``, the DAKD runs of the other D_aug source found there (the
    control's for a teacher's study and the other way round) are paired with this one's by seed: generated D_aug
    minus the control, the yardstick of the generator."""
    lines = [f'## DAKD study: SOS {a.sensor}, {a.iters} iterations x batch {a.batch}, AdamW lr {a.lr} '
             f'(warm-up {a.warmup} + poly), best of validations every {a.val_interval} iterations',
             '',
             f'Split: {split["num_train"]} train / {split["num_val"]} val (fraction {a.val_fraction}, seed '
             f'{a.split_seed}) of {split["num_train_total"]} training tiles'
             + ('' if a.train_size is None else f' (labelled-data budget --train-size {a.train_size})')
             + f'; {split["num_test"]} test tiles, used once per run. Seeds {a.seeds}; mean ± std over seeds.'
             + ('' if a.decoder_act == 'relu' else f' Decode head: LeakyReLU (slope {LEAKY_SLOPE}), --decoder-act '
                f'{a.decoder_act}.'),
             '',
             '| model | training data | seeds | best val mIoU | best iteration | test mIoU | IoU oil | IoU background '
             '| mF1 | aAcc | wall time per run |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    control = is_control(teacher)
    cells = {}
    for r in runs:
        cells.setdefault((r['settings']['model'], r['settings']['variant']), []).append(r)
    for (model, variant), rs in cells.items():
        m = lambda k: mean_std([r['test_metrics'].get(k) for r in rs])  # noqa: E731
        data = ('real only' if variant == 'real' else 'real + real crops (DAKD control)' if control
                else 'real + D_aug (DAKD)' if variant == 'dakd'
                else "real + the teacher's images labelled by the real-only student" if variant == 'dakd-relabel'
                else "real + D_aug, the teacher's labels only where the real-only student agrees")
        lines.append(f'| {model} | {data} | {len(rs)} | {mean_std([r["best_val_mIoU"] for r in rs])} | '
                     f'{mean_std([float(r["best_iter"]) for r in rs]).replace(".00", "")} | {m("mIoU")} | '
                     f'{m("IoU.oil_spill")} | {m("IoU.background")} | {m("mF1")} | {m("aAcc")} | '
                     f'{fmt_min(statistics.mean(r["wall_s"] for r in rs))} |')
    by_seed = lambda v: {m: {r['settings']['seed']: r for r in cells.get((m, v), [])} for m in a.models}  # noqa
    diffs = paired_rows(a.models, by_seed('dakd'), by_seed('real'))
    header = ['| model | seeds | Δ test mIoU | Δ test IoU oil | Δ best val mIoU |', '|---|---|---|---|---|']
    if diffs:
        lines += ['', 'DAKD minus real only (paired by seed; mean ± std of the per-seed differences):', '',
                  *header, *diffs]
    relabel, agreed = by_seed('dakd-relabel'), by_seed('dakd-agreed')
    for title, minuend, subtrahend in (
            ("The teacher's images labelled by the real-only student, minus real only (the images' share)",
             relabel, by_seed('real')),
            ("DAKD minus the teacher's images labelled by the real-only student (the teacher's labels' share)",
             by_seed('dakd'), relabel),
            ("The teacher's labels only where the real-only student agrees, minus real only", agreed, by_seed('real')),
            ("DAKD minus the teacher's labels only where the real-only student agrees (the share of the "
             "disagreeing pixels' labels)", by_seed('dakd'), agreed)):
        rows = paired_rows(a.models, minuend, subtrahend)
        if rows:
            lines += ['', f'{title}; paired by seed:', '', *header, *rows]
    if work_dir is not None and teacher is not None:
        other = counterpart_runs(work_dir, runs, control)
        generated, crops = (other, by_seed('dakd')) if control else (by_seed('dakd'), other)
        rows = paired_rows(a.models, generated, crops)
        if rows:
            lines += ['', "The teacher's D_aug minus the real-crop control (paired by seed; the other D_aug's runs "
                      'found in this work-dir, same student settings):', '', *header, *rows]
    if control:
        ts = teacher['settings']
        lines += ['', f'D_aug control (no teacher): {teacher["num_tiles"]} crops of {ts["gen_size"]}x{ts["gen_size"]} '
                  f'of the train-part tiles with their own labels as logits (margin {ts["margin"]}), '
                  f'tools/dataset_tools/real_to_daug.py; KD temperature {a.kd_temperature}{dice_note(a)}; '
                  f'{fmt_min(teacher["total_s"])}.']
    elif teacher is not None:
        ts = teacher['settings']
        lines += ['', f'Teacher (once, shared by every DAKD student): b = {teacher["balancing_factor"]:.4f} on the '
                  f'train part; SAR-JointNet tiny {"+".join(map(str, ts["stage_iters"]))} iterations on '
                  f'{ts["crop"]}x{ts["crop"]} crops'
                  + (f' (cat_max_ratio {ts["crop_cat_max_ratio"]})' if ts.get('crop_cat_max_ratio') else '')
                  + f', batch {ts["batch"]}; {teacher["num_tiles"]} tiles of '
                  f'{ts["gen_size"]}x{ts["gen_size"]} at {ts["gen_steps"]} DDIM steps; KD temperature '
                  f'{a.kd_temperature}{dice_note(a)}. CPU time: '
                  + ', '.join(f'{k[:-2].replace("_", " ")} {fmt_min(v)}' for k, v in teacher['cpu_times_s'].items())
                  + f' (total {fmt_min(teacher["total_s"])}).']
    if quality is not None and quality.get('results'):
        q = quality['results']
        sp = q['speckle']
        line = (f'Generation quality (D_aug vs the {q["num_real"]} train-part tiles, '
                f'tools/analysis/eval_generation.py): histogram JS {sp["distance"]["js"]:.4f}, '
                f'W1 {sp["distance"]["w1"]:.2f} grey levels, ENL {sp["gen"]["enl_mean"]:.2f} generated vs '
                f'{sp["real"]["enl_mean"]:.2f} real')
        shares = q.get('label_shares')  # absent from evaluations older than the class shares
        if shares and shares.get('real'):
            line += '; pixel share of ' + ', '.join(
                f'{name} {100 * shares["generated"][k]:.2f} % in the generated labels (argmax) vs '
                f'{100 * shares["real"][k]:.2f} % real' for k, name in enumerate(q['classes']) if k > 0)
        lc = q.get('label_consistency')
        if lc:
            line += (f'; label-image consistency ({quality["settings"]["segmentor"]}) mIoU '
                     f'{100 * lc["mIoU"]:.2f}, aAcc {100 * lc["aAcc"]:.2f}')
            if lc.get('pred_share'):  # absent from evaluations older than it
                line += ', and it predicts ' + ', '.join(f'{name} on {100 * v:.2f} %' for k, (name, v) in
                                                         enumerate(lc['pred_share'].items()) if k > 0) + \
                    ' of the generated pixels'
        lines += ['', line + '.']
    return '\n'.join(lines) + '\n'


def main(argv=None) -> None:
    a = parse_args(argv)
    work_dir = osp.abspath(a.work_dir)
    t0 = time.time()
    split = make_split(a, osp.join(work_dir, 'split'))
    write_json_atomic(split, osp.join(work_dir, 'split', 'split.json'))
    print(f'split: {split["num_train"]} train / {split["num_val"]} val / {split["num_test"]} test '
          f'({osp.join(work_dir, "split")})')
    teacher = None
    if any(v in DAKD_VARIANTS for v in a.variants):
        make_daug = run_real_crops if a.daug_source == 'real-crops' else run_teacher
        teacher = make_daug(a, work_dir, split)
    runs = []
    for seed in a.seeds:
        for model in a.models:
            for variant in a.variants:
                runs.append(run_student(a, work_dir, model, variant, seed, split, teacher))
    quality = run_generation_quality(a, work_dir, teacher, runs) if teacher is not None else None
    text = summarise(a, split, runs, teacher, quality, work_dir)
    with open(osp.join(work_dir, 'summary.md'), 'w') as f:
        f.write(text)
    teacher_json = teacher and ('real_crops.json' if is_control(teacher) else 'teacher.json')
    write_json_atomic(dict(split=split, runs=[r['name'] for r in runs], teacher=teacher_json,
                           generation_quality=quality and quality_json(teacher), markdown=text),
                      osp.join(work_dir, 'summary.json'))
    print('\n' + text)
    print(f'study wall time (this invocation): {fmt_min(time.time() - t0)}; outputs in {work_dir}')


if __name__ == '__main__':
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    try:
        main()
    except RuntimeError as e:
        raise SystemExit(f'error: {e}')

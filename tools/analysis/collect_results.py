"""Gather the metrics of reproduction runs into the paper's tables, each measured number beside the paper's.

    python tools/analysis/collect_results.py WORK_DIR... [--table N ...] [--out-md F] [--out-csv F]
    python tools/analysis/collect_results.py work_dirs/repro --out-md results.md --out-csv results.csv
    python tools/analysis/collect_results.py osd-unet=work_dirs/my_unet_run --table 4
    python tools/analysis/collect_results.py --list          # run ids and configs (docs/reproduce.md)

What is read, under every WORK_DIR (recursively):

* ``test_metrics_<time>.json`` of ``tools/test.py`` (``{config, checkpoint, metrics}``), the newest per folder;
* mmengine's own test dump ``<work_dir>/<timestamp>/<timestamp>.json`` (flat metrics), only in a work dir without a
  ``test_metrics_*.json`` (``tools/test.py`` writes both for one test);
* ``runs/<model>_<variant>_seed<k>.json`` of ``tools/benchmarks/dakd_study.py`` (``settings``, ``test_metrics``);
  their run folders ``runs/<name>/`` are not read again;
* ``eval_generation*.json`` of ``tools/analysis/eval_generation.py --out`` and the study's
  ``generation_quality.json`` (FID / IS under ``fid_is``).

Which paper row a run fills: the run id of docs/reproduce.md, given as ``RUN_ID=PATH`` or found as a folder name in
the file's path (``work_dirs/repro/<run id>/...``, the layout of the commands there); otherwise the ``config`` that
``tools/test.py`` recorded, for the runs whose config is theirs alone (variants sharing a config, e.g. the students
of the SAR-JointNet ablations, need their run id). dakd_study runs form their own table (not a paper table), mean
+- std over seeds. Runs placed nowhere are listed with their files. Several runs of one row: mean +- std (n).

Paper numbers (``PAPER`` below) are transcribed from the paper's text (../shared/paper/paper.txt), which prints no
table numbers: Tables 1-11 count its tables in order including three image-only floats (2, 6, 10), the numbering
the configs use (Table 3/4 comparison, 5 SAR-JointNet ablation, 7 encoder / label ablation, 9 CAFT cost, 11 amount of
D_aug). ``tests/test_tools/test_collect_results.py`` checks every transcribed row against that text.

Exit status 1 with a message naming the folder or file: a missing or empty WORK_DIR, a metrics JSON without
metrics, unreadable JSON, an unknown run id.
"""
import argparse
import csv
import io
import json
import math
import os
import os.path as osp
import re
import statistics
import sys
from typing import Dict, List, Optional, Sequence, Tuple

# ------------------------------------------------------------------------------------------------------------------
# runs: run id -> how it is made (docs/reproduce.md gives the commands)

#: kind 'seg': a segmentation test (tools/test.py); 'gen': a D_aug set's FID / IS (eval_generation.py).
#: by_config: a tools/test.py JSON naming this config is this run even outside a folder named by the run id (only
#: where no other run shares the config). status: 'runnable', 'write config' (a few lines, given in the doc) or
#: 'not runnable'.
RUNS: Dict[str, Dict] = {}


def _run(run_id: str, config: Optional[str], kind: str = 'seg', by_config: bool = True, status: str = 'runnable',
         note: str = '') -> None:
    assert run_id not in RUNS, run_id
    RUNS[run_id] = dict(config=config, kind=kind, by_config=by_config and config is not None, status=status,
                        note=note)


B = 'configs/baselines/'
for _ds, _suffix in (('osd', 'osd'), ('alos', 'sos_alos'), ('sentinel', 'sos_sentinel')):
    _run(f'{_ds}-unet', f'{B}unet_{_suffix}.py')
    _run(f'{_ds}-cbdnet', f'{B}cbdnet_{_suffix}.py')
    _run(f'{_ds}-linknet', f'{B}linknet_{_suffix}.py')
    _run(f'{_ds}-pspnet', f'{B}pspnet_r50_{_suffix}.py')
    _run(f'{_ds}-deeplabv2', f'{B}deeplabv2_{_suffix}.py')
    _run(f'{_ds}-deeplabv3plus', f'{B}deeplabv3plus_r50_{_suffix}.py')
    _run(f'{_ds}-segformer-b2', f'{B}segformer_b2_{_suffix}.py')
    _run(f'{_ds}-segformer-b0', f'{B}segformer_b0_{_suffix}.py')
    _run(f'{_ds}-saross', f'configs/saross/{_suffix}.py')
    _run(f'{_ds}-saross-dakd', f'configs/dakd/saross_{_suffix}.py')
_run('osd-deeplabv2-msc', f'{B}deeplabv2_msc-tta_osd.py', status='write config',
     note="DeepLab v2's multi-scale inputs are not implemented; multi-scale test-time augmentation (docs/reproduce.md)")
_run('osd-samoil', None, status='not runnable', note='YOLOv8 detector + SAM (adapted), neither in this project')
_run('osd-saross-skip-none', 'configs/saross/ablations/saross_skip-none_osd.py')
_run('osd-saross-skip-conv3x3', 'configs/saross/ablations/saross_skip-conv3x3_osd.py')
_run('osd-saross-dakd-hard', 'configs/dakd/saross_osd_hard.py')
_run('osd-saross-dakd-1x', 'configs/dakd/saross_osd_daug-1x.py')
_run('osd-saross-dakd-2x', 'configs/dakd/saross_osd_daug-2x.py')
_run('osd-r34-skip-none', 'configs/saross/ablations/saross_r34_skip-none_osd.py')
_run('osd-r34', 'configs/saross/ablations/saross_r34_osd.py')
_run('osd-r34-dakd-hard', 'configs/dakd/saross_r34_osd_hard.py', status='write config')
_run('osd-r34-dakd', 'configs/dakd/saross_r34_osd.py', status='write config')
# students of the SAR-JointNet variants: configs/dakd/saross_osd.py on another D_aug folder (run id needed)
for _v in ('no-ce', 'no-b', 'no-ce-no-b', 'b0.3', 'b0.7'):
    _run(f'osd-saross-dakd-{_v}', 'configs/dakd/saross_osd.py', by_config=False)
# generation (FID / IS of a D_aug set)
J = 'configs/sar_jointnet/'
_run('jn-osd', f'{J}osd.py', kind='gen')
_run('jn-alos', f'{J}sos_alos.py', kind='gen')
_run('jn-sentinel', f'{J}sos_sentinel.py', kind='gen')
_run('jn-osd-ddpm', f'{J}ablations/ddpm-concat_osd.py', kind='gen')
_run('jn-osd-jointnet', f'{J}ablations/jointnet_osd.py', kind='gen')
for _v in ('no-ce', 'no-b', 'no-ce-no-b'):
    _run(f'jn-osd-{_v}', f'{J}ablations/{_v}_osd.py', kind='gen')
for _v in ('b0.3', 'b0.7'):
    _run(f'jn-osd-{_v}', f'{J}osd.py', kind='gen', by_config=False)
for _ds in ('alos', 'sentinel'):
    _run(f'jn-{_ds}-ddpm', f'{J}ablations/ddpm-concat_sos_{_ds}.py', kind='gen', status='write config')
    _run(f'jn-{_ds}-jointnet', f'{J}ablations/jointnet_sos_{_ds}.py', kind='gen', status='write config')

# ------------------------------------------------------------------------------------------------------------------
# the paper's tables (numbers as printed in paper.txt, in its column order)

OSD_IOU = ('IoU.sea_surface', 'IoU.oil_spill', 'IoU.look_alike', 'IoU.ship', 'IoU.land')
MEAN5_A = (('mIoU', 'mIoU'), ('F1', 'mF1'), ('A', 'aAcc'), ('R', 'mRecall'), ('P', 'mPrecision'))
MEAN5_R = (('mIoU', 'mIoU'), ('F1', 'mF1'), ('R', 'mRecall'), ('P', 'mPrecision'), ('A', 'aAcc'))


def _cols(pairs, kind: str = 'seg', group: Optional[str] = None) -> List[Dict]:
    return [dict(label=label, key=key, kind=kind, group=group) for label, key in pairs]


def _row(label: str, run, paper: str, alt: Sequence[str] = (), gen=None, group: str = '') -> Dict:
    """``run``: the segmentation run (or None); ``gen``: the generation run (or dict group -> run id); ``paper``: the
    row's cells as printed, separated by spaces."""
    return dict(label=label, run=run, alt=list(alt), gen=gen, paper=paper.split(), group=group)


T3_METHODS = (('CBD-Net', 'cbdnet'), ('DeepLabV3+', 'deeplabv3plus'), ('SegFormer', 'segformer-b2'),
              ('Ours', 'saross-dakd'))
T3_VALUES = (('OSD', 'osd', ('59.19 70.41 98.09 64.60 82.25', '62.59 74.25 89.70 70.06 80.31',
                             '63.20 74.23 97.85 77.87 72.56', '74.86 84.27 99.03 83.24 85.50')),
             ('SOS-ALOS', 'alos', ('83.31 84.84 94.43 86.75 84.20', '78.74 87.49 93.04 87.67 87.70',
                                   '82.25 89.84 94.39 89.32 90.39', '86.30 92.23 95.65 92.28 92.18')),
             ('SOS-Sent.', 'sentinel', ('83.64 93.69 90.07 93.13 94.27', '76.95 86.81 88.20 86.35 87.36',
                                        '82.16 90.13 91.01 90.33 89.94', '87.25 93.05 93.68 93.24 92.88')))
# check marks lost in the text; rows: plain skips, CAFT, CAFT + hard labels, CAFT + soft labels (Sec. 5)
T7_ROWS = (('plain skips', '-skip-none'), ('CAFT', ''), ('CAFT + HL', '-dakd-hard'), ('CAFT + SL', '-dakd'))
T7_VALUES = (('ResNet-34', 'osd-r34', ('70.55 80.94 79.10 83.26 98.61', '72.33 82.36 80.85 84.60 98.90',
                                       '73.49 83.38 82.41 84.72 98.81', '73.34 84.19 83.08 84.66 98.91')),
             ('MambaVision-B', 'osd-saross', ('71.99 82.12 81.06 83.48 98.60', '73.38 83.25 81.93 84.70 98.82',
                                              '74.14 83.77 84.17 83.46 98.98', '74.86 84.27 83.24 85.50 99.03')))
FID_IS_MIOU_F1 = _cols((('FID', 'fid'), ('IS', 'is')), 'gen') + _cols((('mIoU', 'mIoU'), ('F1', 'mF1')))

PAPER: Dict[int, Dict] = {
    1: dict(title='Generation quality of SAR images: FID (lower is better) / IS (higher is better)',
            columns=(_cols((('OSD FID', 'fid'), ('OSD IS', 'is')), 'gen', 'osd')
                     + _cols((('SOS-Sentinel FID', 'fid'), ('SOS-Sentinel IS', 'is')), 'gen', 'sentinel')
                     + _cols((('SOS-ALOS FID', 'fid'), ('SOS-ALOS IS', 'is')), 'gen', 'alos')),
            rows=[_row(label, None, values, gen={ds: f'jn-{ds}{suffix}' for ds in ('osd', 'sentinel', 'alos')})
                  for label, suffix, values in (('DDPM', '-ddpm', '49.42 2.149 47.71 1.754 45.74 1.822'),
                                                ('JointNet', '-jointnet', '46.46 1.929 30.47 1.632 47.61 1.828'),
                                                ('SAR-JointNet', '', '30.64 2.186 19.88 1.809 21.23 1.948'))]),
    3: dict(title='Comparison on OSD, SOS-ALOS and SOS-Sentinel (%; F1, recall, precision: class means)',
            columns=_cols(MEAN5_A),
            rows=[_row(label, f'{ds}-{run}', values, alt=[f'{ds}-segformer-b0'] if run == 'segformer-b2' else [],
                       group=group)
                  for group, ds, table_values in T3_VALUES for (label, run), values in zip(T3_METHODS, table_values)]),
    4: dict(title='Per-class IoU (%) on OSD',
            columns=_cols(tuple(zip(('Sea', 'Oil', 'Look', 'Ship', 'Land'), OSD_IOU)) + (('mIoU', 'mIoU'), )),
            rows=[_row('UNet', 'osd-unet', '93.90 53.79 39.55 44.93 92.68 64.97'),
                  _row('CBD-Net', 'osd-cbdnet', '95.17 42.84 38.38 27.58 91.95 59.19'),
                  _row('Segformer', 'osd-segformer-b2', '94.42 39.77 48.79 36.18 96.86 63.20',
                       alt=['osd-segformer-b0']),
                  _row('LinkNet', 'osd-linknet', '94.99 51.53 43.24 40.23 93.97 64.79'),
                  _row('PSPNet', 'osd-pspnet', '92.78 40.10 33.79 24.42 86.90 55.60'),
                  _row('DeepLabv2', 'osd-deeplabv2', '94.09 25.57 40.30 11.41 74.99 49.27'),
                  _row('DeepLabv2 (msc)', 'osd-deeplabv2-msc', '95.39 49.53 49.28 31.26 88.65 62.83'),
                  _row('DeepLabV3+', 'osd-deeplabv3plus', '88.43 44.80 56.44 31.06 92.21 62.59'),
                  _row('SAM-OIL', 'osd-samoil', '96.05 51.60 55.60 52.55 91.81 69.52'),
                  _row('Ours', 'osd-saross-dakd', '97.56 60.01 67.61 51.77 97.35 74.86')]),
    # check marks lost in the text; rows follow Sec. 5 and Table 8 (b = 1 is the row with CE and without b)
    5: dict(title='SAR-JointNet ablation on OSD: CE loss for labels, masks scaled with b (FID / IS of D_aug; '
                  'mIoU / F1 of SAROSS-Net trained with it)',
            columns=FID_IS_MIOU_F1,
            rows=[_row('no CE, no b', 'osd-saross-dakd-no-ce-no-b', '46.46 1.929 71.67 81.87', gen='jn-osd-no-ce-no-b'),
                  _row('CE, no b', 'osd-saross-dakd-no-b', '44.81 2.158 74.08 83.76', gen='jn-osd-no-b'),
                  _row('no CE, b', 'osd-saross-dakd-no-ce', '32.28 2.206 72.65 82.77', gen='jn-osd-no-ce'),
                  _row('CE, b (SAR-JointNet)', 'osd-saross-dakd', '30.64 2.186 74.86 84.27', gen='jn-osd')]),
    7: dict(title='Encoder, CAFT skips and D_aug labels (HL hard, SL soft) on OSD (%)',
            columns=_cols(MEAN5_R),
            rows=[_row(label, prefix + suffix, values, group=group) for group, prefix, table_values in T7_VALUES
                  for (label, suffix), values in zip(T7_ROWS, table_values)]),
    8: dict(title='Balancing factor b of SAR-JointNet on OSD (b = 0.528 from Eq. 20)',
            columns=FID_IS_MIOU_F1,
            rows=[_row('b = 0.3', 'osd-saross-dakd-b0.3', '27.84 2.196 74.18 83.78', gen='jn-osd-b0.3'),
                  _row('b = 0.528', 'osd-saross-dakd', '30.64 2.186 74.86 84.27', gen='jn-osd'),
                  _row('b = 0.7', 'osd-saross-dakd-b0.7', '35.53 2.158 74.42 83.98', gen='jn-osd-b0.7'),
                  _row('b = 1', 'osd-saross-dakd-no-b', '44.81 2.158 74.08 83.76', gen='jn-osd-no-b')]),
    9: dict(title='Skip module of SAROSS-Net (MambaVision-B), OSD; cost on an RTX 2080, batch 1 (cost columns: '
                  'tools/benchmarks/bench_caft.py, not collected here)',
            columns=_cols((('+Params (M)', None), ('+FLOPs (G)', None), ('Time (ms)', None),
                           ('+Memory (MB)', None)), 'cost') + _cols((('mIoU', 'mIoU'), )),
            rows=[_row('No module', 'osd-saross-skip-none', '- - 39.52 - 71.99'),
                  _row('3x3 Conv', 'osd-saross-skip-conv3x3', '+6.95 +37.06 48.36 +37 70.95'),
                  _row('CAFT', 'osd-saross', '+0.89 +11.45 45.28 +11 73.38')]),
    11: dict(title='Amount of D_aug (OSD, 1002 real images; generated tiles)',
             columns=_cols(MEAN5_R),
             rows=[_row('0', 'osd-saross', '73.38 83.25 81.93 84.70 98.82'),
                   _row('1x (1,120)', 'osd-saross-dakd-1x', '73.81 83.54 84.35 82.90 98.79'),
                   _row('2x (2,240)', 'osd-saross-dakd-2x', '74.65 84.13 81.85 86.75 99.00'),
                   _row('4x (4,480)', 'osd-saross-dakd', '74.86 84.27 83.24 85.50 99.03')]),
}
#: the image-only floats of the numbering (no numbers to collect)
FIGURE_TABLES = {2: 'qualitative comparison of segmentations (figures/compare_model.png)',
                 6: 'noise-corrupted masks with and without b (figures/balancing_factor.pdf)',
                 10: 'qualitative comparison of skip modules (figures/compare_unet.pdf)'}
STUDY_COLUMNS = _cols((('mIoU', 'mIoU'), ('IoU oil', 'IoU.oil_spill'), ('IoU background', 'IoU.background'),
                       ('mF1', 'mF1'), ('aAcc', 'aAcc')))

# ------------------------------------------------------------------------------------------------------------------
# reading


class CollectError(Exception):
    """A problem with the inputs; the message names the folder or file."""


def _load_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise CollectError(f'{path}: cannot read JSON ({e})') from None


def _flat_metrics(raw: Dict, path: str) -> Dict[str, float]:
    """Numeric entries of a metrics dict, keys without an evaluator prefix (``test/mIoU`` -> ``mIoU``)."""
    out = {}
    for key, value in raw.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key.rsplit('/', 1)[-1]] = float(value)
    if 'mIoU' not in out:
        raise CollectError(f'{path}: no test metrics (no mIoU among {sorted(raw)[:12]})')
    return out


def _norm_config(path: Optional[str]) -> Optional[str]:
    """``/abs/repo/configs/x/y.py`` or ``./configs/x/y.py`` -> ``configs/x/y.py``."""
    if not path:
        return None
    path = path.replace(os.sep, '/')
    i = path.rfind('configs/')
    return path[i:] if i >= 0 else path


def _run_id_from_path(path: str) -> Optional[str]:
    for part in reversed(osp.abspath(path).replace(os.sep, '/').split('/')):
        if part in RUNS:
            return part
    return None


def scan(work_dir: str, run_id: Optional[str] = None) -> List[Dict]:
    """Every metrics record under ``work_dir``: dicts with ``path, source, kind, run, config, metrics`` (+ study
    fields for dakd_study runs)."""
    if not osp.isdir(work_dir):
        raise CollectError(f'{work_dir}: no such folder')
    records, skip = [], set()
    for dirpath, dirnames, filenames in os.walk(work_dir):
        dirnames.sort()
        if osp.basename(dirpath) == 'runs':  # dakd_study
            for name in sorted(f for f in filenames if f.endswith('.json')):
                path = osp.join(dirpath, name)
                data = _load_json(path)
                if not (isinstance(data, dict) and 'settings' in data and 'name' in data):
                    continue
                if not isinstance(data.get('test_metrics'), dict):
                    raise CollectError(f'{path}: dakd_study run without test_metrics')
                s = data['settings']
                records.append(dict(path=path, source='dakd_study', kind='study', run=None,
                                    config=_norm_config(data.get('base_config') or s.get('config')),
                                    metrics=_flat_metrics(data['test_metrics'], path),
                                    study=(s.get('model'), s.get('variant')), seed=s.get('seed'),
                                    iters=s.get('iters'), batch=s.get('batch')))
                skip.add(osp.join(dirpath, name[:-len('.json')]))
        dirnames[:] = [d for d in dirnames if osp.join(dirpath, d) not in skip]
        test_jsons = sorted(f for f in filenames if re.fullmatch(r'test_metrics_.*\.json', f))
        if test_jsons:
            path = osp.join(dirpath, test_jsons[-1])
            data = _load_json(path)
            if not isinstance(data, dict) or not isinstance(data.get('metrics'), dict) or not data['metrics']:
                raise CollectError(f'{path}: no metrics (tools/test.py writes {{config, checkpoint, metrics}})')
            records.append(dict(path=path, source='tools/test.py', kind='seg', config=_norm_config(data.get('config')),
                                metrics=_flat_metrics(data['metrics'], path)))
        else:  # mmengine's dump of a test: <work_dir>/<timestamp>/<timestamp>.json
            stamps = sorted(d for d in dirnames if re.fullmatch(r'\d{8}_\d{6}', d)
                            and osp.isfile(osp.join(dirpath, d, d + '.json')))
            if stamps:
                path = osp.join(dirpath, stamps[-1], stamps[-1] + '.json')
                data = _load_json(path)
                if not isinstance(data, dict):
                    raise CollectError(f'{path}: no test metrics (not a JSON object)')
                # mmengine dumps the config as <work_dir>/<config file name>: shown, never used to place the run
                # (unet_osd.py may be configs/baselines/ or configs/dakd/)
                dumps = sorted(f for f in filenames if f.endswith('.py'))
                records.append(dict(path=path, source='mmengine', kind='seg', metrics=_flat_metrics(data, path),
                                    config=None, config_dump=osp.join(dirpath, dumps[0]) if len(dumps) == 1 else None))
        for name in sorted(f for f in filenames if re.fullmatch(r'eval_generation.*\.json|generation_quality\.json',
                                                                f)):
            path = osp.join(dirpath, name)
            data = _load_json(path)
            res = data.get('results', data) if isinstance(data, dict) else None
            fid_is = res.get('fid_is') if isinstance(res, dict) else None
            metrics = {}
            if isinstance(fid_is, dict) and 'fid' in fid_is:
                metrics = dict(fid=float(fid_is['fid']), **({'is': float(fid_is['is_mean'])}
                                                            if 'is_mean' in fid_is else {}))
            records.append(dict(path=path, source='eval_generation', kind='gen', config=None, metrics=metrics))
    if not records:
        raise CollectError(f'{work_dir}: no metrics found (looked for tools/test.py test_metrics_*.json, mmengine '
                           '<timestamp>/<timestamp>.json, dakd_study runs/*.json, eval_generation*.json)')
    by_config = {}
    for rid, r in RUNS.items():
        if r['by_config']:
            by_config.setdefault(r['config'], []).append(rid)
    for rec in records:
        if rec['kind'] == 'study':
            continue
        rid = run_id or _run_id_from_path(rec['path'])
        if rid is None and rec['kind'] == 'seg' and len(by_config.get(rec['config'], [])) == 1:
            rid = by_config[rec['config']][0]
        rec['run'] = rid
    return records


# ------------------------------------------------------------------------------------------------------------------
# tables

def _decimals(label: str) -> int:
    return 3 if label.endswith('IS') else 2


def _stats(values: List[float]) -> Tuple[Optional[float], Optional[float]]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _fmt(mean: Optional[float], std: Optional[float], decimals: int) -> str:
    if mean is None:
        return '-'
    if math.isnan(mean):
        return 'nan'
    text = f'{mean:.{decimals}f}'
    return text + (f' ± {std:.{decimals}f}' if std is not None else '')


class Results:
    """Records grouped by run id; measured cells of the paper's tables."""

    def __init__(self, records: List[Dict]):
        self.records = records
        self.by_run: Dict[Tuple[str, str], List[Dict]] = {}
        for rec in records:
            if rec.get('run') and rec['kind'] in ('seg', 'gen') and rec['metrics']:
                self.by_run.setdefault((rec['run'], rec['kind']), []).append(rec)

    def cell(self, run_id: Optional[str], kind: str, key: Optional[str]):
        recs = self.by_run.get((run_id, kind), []) if run_id and key else []
        return _stats([r['metrics'].get(key) for r in recs]), len(recs)

    def table_lines(self, number: int) -> List[Dict]:
        """Lines of a paper table: one per measured alternative of a row (or one '-' line)."""
        table, lines = PAPER[number], []
        for row in table['rows']:
            candidates = [row['run']] + row['alt'] if row['run'] else [None]
            measured = [rid for rid in candidates if rid and (rid, 'seg') in self.by_run]
            for rid in measured or candidates[:1]:
                cells, ns = [], set()
                for col, paper in zip(table['columns'], row['paper']):
                    if col['kind'] == 'gen':
                        gen = row['gen'][col['group']] if isinstance(row['gen'], dict) else row['gen']
                        (mean, std), n = self.cell(gen, 'gen', col['key'])
                    else:
                        (mean, std), n = self.cell(rid, 'seg', col['key']) if col['kind'] == 'seg' else \
                            ((None, None), 0)
                    if n:
                        ns.add(n)
                    cells.append(dict(mean=mean, std=std, paper=paper))
                gens = list(dict.fromkeys(row['gen'].values())) if isinstance(row['gen'], dict) else \
                    ([row['gen']] if row['gen'] else [])
                ids = ([rid] if rid else []) + gens
                status = '; '.join(f'{x}: {RUNS[x]["status"]}' for x in ids if RUNS[x]['status'] != 'runnable')
                lines.append(dict(group=row['group'], label=row['label'], run=', '.join(ids), ids=ids,
                                  n=max(ns) if ns else 0, cells=cells, status=status or 'runnable'))
        return lines

    def study_lines(self) -> List[Dict]:
        groups: Dict[Tuple, List[Dict]] = {}
        for rec in self.records:
            if rec['kind'] == 'study':
                groups.setdefault(rec['study'] + (rec['iters'], rec['batch']), []).append(rec)
        lines = []
        for (model, variant, iters, batch), recs in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
            cells = []
            for col in STUDY_COLUMNS:
                mean, std = _stats([r['metrics'].get(col['key']) for r in recs])
                cells.append(dict(mean=mean, std=std, paper='-'))
            seeds = ','.join(str(r['seed']) for r in sorted(recs, key=lambda r: str(r['seed'])))
            lines.append(dict(group='', label=f'{model} {variant}', run=f'dakd_study {iters} it x {batch}, seeds '
                              f'{seeds}', n=len(recs), cells=cells, status='runnable'))
        return lines

    def unplaced(self) -> List[Dict]:
        return [r for r in self.records if r['kind'] != 'study' and not r.get('run')]

    def warnings(self) -> List[str]:
        out = []
        for rec in self.records:
            rid = rec.get('run')
            if rid and rec['kind'] == 'seg' and rec['config'] and RUNS[rid]['config'] and \
                    rec['config'] != RUNS[rid]['config']:
                out.append(f'{rec["path"]}: run {rid} expects {RUNS[rid]["config"]}, the run used {rec["config"]}')
            if rid and RUNS[rid]['kind'] != rec['kind']:
                out.append(f'{rec["path"]}: a {rec["kind"]} result in the folder of {RUNS[rid]["kind"]} run {rid} '
                           '(not used)')
            if rec['kind'] == 'gen' and not rec['metrics']:
                out.append(f'{rec["path"]}: no FID / IS (eval_generation.py ran without --inception)')
        return out


def _selected(tables: Optional[List[str]], results: Results) -> List:
    if not tables:
        keys = sorted(PAPER)
        return keys + (['study'] if any(r['kind'] == 'study' for r in results.records) else [])
    out = []
    for t in tables:
        for part in t.split(','):
            part = part.strip().lower().removeprefix('table').strip()
            if part == 'study':
                out.append('study')
            elif part.isdigit() and int(part) in PAPER:
                out.append(int(part))
            elif part.isdigit() and int(part) in FIGURE_TABLES:
                raise CollectError(f'Table {part} is an image in the paper ({FIGURE_TABLES[int(part)]}): no numbers '
                                   'to collect')
            else:
                raise CollectError(f'--table {part!r}: expected one of {sorted(PAPER)} or study')
    return out


def _table_spec(key) -> Tuple[str, List[Dict]]:
    if key == 'study':
        return ('DAKD study on SOS tiles (tools/benchmarks/dakd_study.py; not a paper table: mean ± std over seeds)',
                STUDY_COLUMNS)
    return f'Table {key}: {PAPER[key]["title"]}', PAPER[key]['columns']


def to_markdown(results: Results, keys: List, sources: List[str]) -> str:
    out = ['# Reproduction results beside the paper', '',
           'Each cell: measured / paper. `-`: not measured (or not in the paper); mean ± std where a row has '
           'several runs (n). Paper numbers: the paper\'s text (docs/reproduce.md maps every row to its config and '
           'commands).', '',
           f'Read: {", ".join(sources)}; {len(results.records)} result files.', '']
    for key in keys:
        title, columns = _table_spec(key)
        lines = results.study_lines() if key == 'study' else results.table_lines(key)
        grouped = any(line['group'] for line in lines)
        head = (['D'] if grouped else []) + ['Method', 'run', 'n'] + [c['label'] for c in columns]
        out += [f'## {title}', '', '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
        for line in lines:
            cells = []
            for col, c in zip(columns, line['cells']):
                measured = _fmt(c['mean'], c['std'], _decimals(col['label']))
                cells.append(measured if key == 'study' else f'{measured} / {c["paper"]}')
            run = ', '.join(x if RUNS[x]['status'] == 'runnable' else f'{x} ({RUNS[x]["status"]})'
                            for x in line['ids']) if 'ids' in line else line['run']
            out.append('| ' + ' | '.join(([line['group']] if grouped else []) +
                                         [line['label'], run, str(line['n'] or '-')] + cells) + ' |')
        out.append('')
    unplaced = results.unplaced()
    if unplaced:
        out += ['## Results placed in no table', '', '| file | source | config | mIoU / FID |', '|---|---|---|---|']
        for rec in unplaced:
            m = rec['metrics']
            value = m.get('mIoU', m.get('fid'))
            config = rec['config'] or (f'dump {rec["config_dump"]}' if rec.get('config_dump') else '-')
            out.append(f'| {rec["path"]} | {rec["source"]} | {config} | '
                       f'{_fmt(value, None, 2)} |')
        out += ['', 'Give them a run id of docs/reproduce.md: `RUN_ID=PATH` on the command line, or put them in a '
                'folder named by it.', '']
    warns = results.warnings()
    if warns:
        out += ['## Warnings', ''] + [f'- {w}' for w in warns] + ['']
    return '\n'.join(out)


def to_csv(results: Results, keys: List) -> str:
    labels: List[str] = []
    blocks = []
    for key in keys:
        _, columns = _table_spec(key)
        for c in columns:
            if c['label'] not in labels:
                labels.append(c['label'])
        blocks.append((key, columns, results.study_lines() if key == 'study' else results.table_lines(key)))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(['table', 'group', 'row', 'run', 'status', 'n'] +
                    [x for label in labels for x in (label, f'{label} std', f'{label} paper')])
    for key, columns, lines in blocks:
        for line in lines:
            values = {}
            for col, c in zip(columns, line['cells']):
                nd = _decimals(col['label'])
                values[col['label']] = ('' if c['mean'] is None else f'{c["mean"]:.{nd}f}',
                                        '' if c['std'] is None else f'{c["std"]:.{nd}f}',
                                        '' if key == 'study' or c['paper'] == '-' else c['paper'])
            writer.writerow([key, line['group'], line['label'], line['run'], line['status'], line['n']] +
                            [x for label in labels for x in values.get(label, ('', '', ''))])
    return buf.getvalue()


def list_runs() -> str:
    out = ['| run id | kind | config | status | placed by config | note |', '|---|---|---|---|---|---|']
    for rid, r in RUNS.items():
        out.append(f'| {rid} | {r["kind"]} | {r["config"] or "-"} | {r["status"]} | '
                   f'{"yes" if r["by_config"] else "no"} | {r["note"]} |')
    return '\n'.join(out)


def _split_arg(arg: str) -> Tuple[Optional[str], str]:
    if '=' in arg and not osp.exists(arg):
        rid, path = arg.split('=', 1)
        if rid not in RUNS:
            raise CollectError(f'{arg}: unknown run id {rid!r} (--list shows them)')
        return rid, path
    return None, arg


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('work_dirs', nargs='*', metavar='WORK_DIR', help='folders to search, or RUN_ID=FOLDER')
    p.add_argument('--table', action='append', metavar='N',
                   help='only these tables (1 3 4 5 7 8 9 11, study; repeat or comma-separate); default: all')
    p.add_argument('--out-md', help='write the markdown here (default: print it)')
    p.add_argument('--out-csv', help='write the CSV here: one line per table row, columns: measured, std, paper')
    p.add_argument('--list', action='store_true', help='print the run ids with their configs and exit')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        print(list_runs())
        return 0
    try:
        if not args.work_dirs:
            raise CollectError('no WORK_DIR given')
        records, seen = [], set()
        for arg in args.work_dirs:
            rid, path = _split_arg(arg)
            for rec in scan(path, rid):  # a folder given twice (or inside another) counts once per run id
                key = (osp.realpath(rec['path']), rec.get('run'))
                if key not in seen:
                    seen.add(key)
                    records.append(rec)
        results = Results(records)
        keys = _selected(args.table, results)
    except CollectError as e:
        print(f'collect_results: {e}', file=sys.stderr)
        return 1
    md = to_markdown(results, keys, args.work_dirs)
    for path, text in ((args.out_md, md), (args.out_csv, to_csv(results, keys) if args.out_csv else None)):
        if path:
            os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
            with open(path, 'w') as f:
                f.write(text)
            print(f'written: {path}')
    if not args.out_md:
        print(md)
    return 0


if __name__ == '__main__':
    sys.exit(main())

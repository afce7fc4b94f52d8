"""tools/analysis/collect_results.py: metric JSONs in the layouts the tools write -> the paper's tables + CSV."""
import csv
import importlib.util
import io
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
_spec = importlib.util.spec_from_file_location('collect_results', osp.join(ROOT, 'tools', 'analysis',
                                                                           'collect_results.py'))
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)
PAPER_TXT = osp.join(ROOT, '..', 'shared', 'paper', 'paper.txt')

OSD_KEYS = ('IoU.sea_surface', 'IoU.oil_spill', 'IoU.look_alike', 'IoU.ship', 'IoU.land')


def _write(path, data) -> str:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f)
    return path


def _osd_metrics(miou, ious=(93.0, 50.0, 40.0, 20.0, 90.0), f1=70.0):
    return dict(mIoU=miou, mF1=f1, aAcc=97.5, mRecall=66.0, mPrecision=80.5, **dict(zip(OSD_KEYS, ious)),
                **{'F1.oil_spill': 60.0})


def _test_json(work_dir, stamp, config, metrics):
    """What tools/test.py writes: <work_dir>/test_metrics_<time>.json (+ mmengine's <time>/<time>.json)."""
    _write(osp.join(work_dir, f'test_metrics_{stamp}.json'), dict(config=config, checkpoint='best.pth',
                                                                   metrics=metrics))
    _write(osp.join(work_dir, stamp, f'{stamp}.json'), dict(metrics, data_time=0.01, time=0.2))


@pytest.fixture
def work(tmp_path):
    repro = tmp_path / 'repro'
    # a row's run in the folder named by its run id; an older test of the same checkpoint is superseded
    _test_json(str(repro / 'osd-unet'), '20261201_090000', 'configs/baselines/unet_osd.py', _osd_metrics(10.0))
    _test_json(str(repro / 'osd-unet'), '20261203_120000', 'configs/baselines/unet_osd.py', _osd_metrics(60.5))
    # two seeds of one row -> mean +- std
    for seed, miou in ((0, 54.0), (1, 56.0)):
        _test_json(str(repro / 'osd-pspnet' / f'seed{seed}'), '20261203_130000',
                   'configs/baselines/pspnet_r50_osd.py', _osd_metrics(miou))
    # only mmengine's dump (no tools/test.py JSON): placed by the folder's run id
    _write(str(repro / 'osd-saross-dakd' / '20261203_101010' / '20261203_101010.json'),
           dict(_osd_metrics(74.25, ious=(97.0, 61.0, 66.0, 50.0, 97.5), f1=84.0), time=0.3))
    open(repro / 'osd-saross-dakd' / 'saross_osd.py', 'w').write('model = dict()\n')
    # FID / IS of the default SAR-JointNet (eval_generation.py --out)
    _write(str(repro / 'jn-osd' / 'eval_generation.json'),
           dict(daug_root='data/daug/osd', fid_is=dict(fid=31.5, is_mean=2.2, is_std=0.05), speckle={}))
    # mmseg's default work dir: placed by the config tools/test.py recorded (absolute path as on another machine)
    _test_json(str(tmp_path / 'work_dirs' / 'segformer_b0_osd'), '20261203_140000',
               '/home/u/repo/configs/baselines/segformer_b0_osd.py', _osd_metrics(61.0))
    # a config of no paper row -> listed, not placed
    _test_json(str(tmp_path / 'work_dirs' / 'unet_osd'), '20261203_150000', 'configs/dakd/unet_osd.py',
               _osd_metrics(50.0))
    # tools/benchmarks/dakd_study.py: runs/<name>.json + its run folder (whose test JSON must not count twice)
    study = tmp_path / 'study'
    for seed, miou in ((0, 70.0), (1, 72.0)):
        name = f'segformer_b0_real_seed{seed}'
        metrics = {'mIoU': miou, 'IoU.oil_spill': miou - 10, 'IoU.background': miou + 10, 'mF1': 80.0, 'aAcc': 90.0}
        _write(str(study / 'runs' / f'{name}.json'),
               dict(name=name, settings=dict(model='segformer_b0', variant='real', seed=seed, iters=1000, batch=8,
                                             config='configs/baselines/segformer_b0_sos_alos.py'),
                    base_config='configs/baselines/segformer_b0_sos_alos.py', test_metrics=metrics))
        _test_json(str(study / 'runs' / name / 'test'), '20261203_160000',
                   str(study / 'runs' / name / 'config.py'), metrics)
    return tmp_path


def _csv_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _md_row(md: str, table: int, label: str) -> str:
    section = md.split(f'## Table {table}:')[1].split('\n## ')[0]
    rows = [line for line in section.splitlines() if line.startswith(f'| {label} |') or f'| {label} | ' in line]
    assert rows, f'no row {label!r} in Table {table}:\n{section}'
    return rows[0]


def test_tables_markdown_and_csv(work, capsys):
    md_path, csv_path = str(work / 'out' / 'results.md'), str(work / 'out' / 'results.csv')
    assert tool.main([str(work / 'repro'), str(work / 'work_dirs'), str(work / 'study'),
                      '--out-md', md_path, '--out-csv', csv_path]) == 0
    md = open(md_path).read()
    # measured / paper, in the paper's column order (Sea, Oil, Look, Ship, Land, mIoU); the newest test counts
    assert _md_row(md, 4, 'UNet') == ('| UNet | osd-unet | 1 | 93.00 / 93.90 | 50.00 / 53.79 | 40.00 / 39.55 | '
                                      '20.00 / 44.93 | 90.00 / 92.68 | 60.50 / 64.97 |')
    assert '| CBD-Net | osd-cbdnet | - | - / 95.17 | - / 42.84 |' in _md_row(md, 4, 'CBD-Net')  # not run
    assert _md_row(md, 4, 'PSPNet').endswith('| 55.00 ± 1.41 / 55.60 |') and '| 2 |' in _md_row(md, 4, 'PSPNet')
    assert 'osd-samoil (not runnable)' in _md_row(md, 4, 'SAM-OIL')
    seg = _md_row(md, 4, 'Segformer')
    assert 'osd-segformer-b0' in seg and seg.endswith('| 61.00 / 63.20 |')  # placed by its config
    assert _md_row(md, 4, 'Ours').endswith('| 74.25 / 74.86 |')  # mmengine dump, by run id
    # Table 3 (columns mIoU F1 A R P) and 7/11 (mIoU F1 R P A): the same run in each table's own order
    assert '| OSD | Ours | osd-saross-dakd | 1 | 74.25 / 74.86 | 84.00 / 84.27 | 97.50 / 99.03 | 66.00 / 83.24 | ' \
           '80.50 / 85.50 |' in md
    assert _md_row(md, 11, '4x (4,480)').endswith(
        '| 74.25 / 74.86 | 84.00 / 84.27 | 66.00 / 83.24 | 80.50 / 85.50 | 97.50 / 99.03 |')
    # Table 5: FID / IS from the generation run beside mIoU / F1 of the student
    assert _md_row(md, 5, 'CE, b (SAR-JointNet)').endswith('| 31.50 / 30.64 | 2.200 / 2.186 | 74.25 / 74.86 | '
                                                           '84.00 / 84.27 |')
    assert _md_row(md, 1, 'SAR-JointNet').startswith('| SAR-JointNet | jn-osd, jn-sentinel, jn-alos | 1 | '
                                                     '31.50 / 30.64 | 2.200 / 2.186 | - / 19.88 |')
    # dakd_study: its own table, mean +- std over seeds, run folders not counted again
    study = md.split('## DAKD study')[1].split('\n## ')[0]
    assert '| segformer_b0 real | dakd_study 1000 it x 8, seeds 0,1 | 2 | 71.00 ± 1.41 | 61.00 ± 1.41 |' in study
    unplaced = md.split('## Results placed in no table')[1]
    assert 'configs/dakd/unet_osd.py' in unplaced and 'segformer_b0_real_seed0' not in unplaced
    assert 'osd-unet' not in unplaced and '20261201_090000' not in md

    rows = _csv_rows(csv_path)
    unet = next(r for r in rows if r['table'] == '4' and r['row'] == 'UNet')
    assert (unet['Sea'], unet['Sea paper'], unet['mIoU'], unet['mIoU paper'], unet['n']) == \
        ('93.00', '93.90', '60.50', '64.97', '1')
    cbd = next(r for r in rows if r['table'] == '4' and r['row'] == 'CBD-Net')
    assert (cbd['Sea'], cbd['Sea paper'], cbd['n']) == ('', '95.17', '0')
    psp = next(r for r in rows if r['table'] == '4' and r['row'] == 'PSPNet')
    assert (psp['mIoU'], psp['mIoU std'], psp['mIoU paper']) == ('55.00', '1.41', '55.60')
    alos = next(r for r in rows if r['table'] == '3' and r['group'] == 'SOS-ALOS' and r['row'] == 'Ours')
    assert (alos['mIoU'], alos['mIoU paper'], alos['A paper']) == ('', '86.30', '95.65')
    t8 = next(r for r in rows if r['table'] == '8' and r['row'] == 'b = 0.528')
    assert (t8['FID'], t8['FID paper'], t8['IS'], t8['mIoU']) == ('31.50', '30.64', '2.200', '74.25')
    t9 = next(r for r in rows if r['table'] == '9' and r['row'] == '3x3 Conv')
    assert (t9['+Params (M) paper'], t9['Time (ms) paper'], t9['+Params (M)']) == ('+6.95', '48.36', '')
    assert any(r['table'] == 'study' and r['n'] == '2' and r['mIoU'] == '71.00' for r in rows)


def test_run_id_argument_and_table_choice(work, capsys):
    # RUN_ID=FOLDER places a run kept anywhere; --table keeps those tables only
    assert tool.main([f'osd-linknet={work / "work_dirs" / "unet_osd"}', '--table', '4']) == 0
    md = capsys.readouterr().out
    assert _md_row(md, 4, 'LinkNet').endswith('| 50.00 / 64.79 |')
    assert '## Table 3' not in md and '## Table 4' in md
    # the run id says LinkNet, the JSON another config: said, not hidden
    assert 'run osd-linknet expects configs/baselines/linknet_osd.py, the run used configs/dakd/unet_osd.py' in md
    # one folder under two run ids (Table 1's JointNet is Table 5's no-CE/no-b teacher): both rows filled
    assert tool.main([str(work / 'repro'), f'jn-osd-jointnet={work / "repro" / "jn-osd"}', '--table', '1']) == 0
    md = capsys.readouterr().out
    for label in ('JointNet', 'SAR-JointNet'):
        assert '| 31.50 / ' in _md_row(md, 1, label), label


def test_cli_subprocess(work):
    out = work / 'cli.md'
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'analysis', 'collect_results.py'),
                           str(work / 'repro'), '--table', '4,11', '--out-md', str(out)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    md = out.read_text()
    assert '## Table 4: Per-class IoU' in md and '## Table 11:' in md and '## Table 7' not in md
    assert _md_row(md, 11, '0').endswith('| - / 73.38 | - / 83.25 | - / 81.93 | - / 84.70 | - / 98.82 |')


def test_errors_name_the_folder_or_file(tmp_path, capsys):
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert tool.main([str(empty)]) == 1
    assert f'{empty}: no metrics found' in capsys.readouterr().err
    assert tool.main([str(tmp_path / 'missing')]) == 1
    assert 'missing: no such folder' in capsys.readouterr().err
    bad = _write(str(tmp_path / 'bad' / 'test_metrics_1.json'), dict(config='configs/saross/osd.py', metrics={}))
    assert tool.main([str(tmp_path / 'bad')]) == 1
    assert f'{bad}: no metrics' in capsys.readouterr().err
    no_miou = _write(str(tmp_path / 'mm' / '20261203_101010' / '20261203_101010.json'), dict(time=0.1))
    assert tool.main([str(tmp_path / 'mm')]) == 1
    assert f'{no_miou}: no test metrics' in capsys.readouterr().err
    broken = tmp_path / 'broken' / 'test_metrics_2.json'
    broken.parent.mkdir()
    broken.write_text('{"metrics": ')
    assert tool.main([str(broken.parent)]) == 1
    assert f'{broken}: cannot read JSON' in capsys.readouterr().err
    study = _write(str(tmp_path / 'study' / 'runs' / 'x_real_seed0.json'), dict(name='x', settings={}))
    assert tool.main([str(tmp_path / 'study')]) == 1
    assert f'{study}: dakd_study run without test_metrics' in capsys.readouterr().err
    assert tool.main([f'osd-nope={empty}']) == 1
    assert "unknown run id 'osd-nope'" in capsys.readouterr().err
    _write(str(tmp_path / 'ok' / 'test_metrics_1.json'), dict(config='configs/saross/osd.py', metrics={'mIoU': 1.0}))
    assert tool.main([str(tmp_path / 'ok'), '--table', '2']) == 1
    assert 'Table 2 is an image' in capsys.readouterr().err


def test_runnable_runs_name_existing_configs():
    missing = [(rid, r['config']) for rid, r in tool.RUNS.items()
               if r['status'] == 'runnable' and not osp.isfile(osp.join(ROOT, r['config']))]
    assert not missing
    for number, table in tool.PAPER.items():
        for row in table['rows']:
            assert len(row['paper']) == len(table['columns']), (number, row['label'])
            gens = row['gen'].values() if isinstance(row['gen'], dict) else [row['gen']]
            for rid in [row['run'], *row['alt'], *gens]:
                assert rid is None or rid in tool.RUNS, (number, rid)


def test_paper_numbers_match_the_paper_text():
    """Every transcribed row occurs in paper.txt as printed: its values in order, cell by cell."""
    if not osp.isfile(PAPER_TXT):
        pytest.skip(f'paper text not found at {PAPER_TXT}')
    text = re.sub(r'[ \t]+', ' ', open(PAPER_TXT, encoding='utf-8').read())
    checked = 0
    for number, table in tool.PAPER.items():
        for row in table['rows']:
            cells = '| ' + ' | '.join(row['paper']) + ' |'
            assert cells in text, f'Table {number}, {row["label"]}: {cells} not in {PAPER_TXT}'
            checked += 1
    assert checked == 48  # 3 + 12 + 10 + 4 + 8 + 4 + 3 + 4 rows of Tables 1, 3, 4, 5, 7, 8, 9, 11
    # a few rows with their labels, parsed from the text
    rows = {m.group(1).strip(): m.group(2).split(' | ')
            for m in re.finditer(r'^\| (?:\\midrule)?([A-Za-z][^|\[]*?)(?: \[[^\]]*\])? \| ([\d. |]+?) \|$', text,
                                 re.M)}
    t4 = {row['label']: row['paper'] for row in tool.PAPER[4]['rows']}
    for label in ('UNet', 'PSPNet', 'DeepLabv2 (msc)', 'SAM-OIL', 'Ours'):
        assert rows[label] == t4[label], label
    t1 = {row['label']: row['paper'] for row in tool.PAPER[1]['rows']}
    assert rows['SAR-JointNet'] == t1['SAR-JointNet'] and rows['DDPM'] == t1['DDPM']


def test_csv_is_well_formed(work):
    text = tool.to_csv(tool.Results(tool.scan(str(work / 'repro'))), [4, 9])
    rows = list(csv.reader(io.StringIO(text)))
    assert len({len(r) for r in rows}) == 1 and len(rows) == 1 + 10 + 3

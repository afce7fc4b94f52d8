"""tools/benchmarks/dakd_study.py end to end on the real SOS subset with tiny settings, and its resumption.

The study script runs in this process (its tools run as subprocesses, as for a user); the test tiles are 8 of
sos_mini's held-out palsar tiles (linked into a temporary SOS layout) to keep the run short.
"""
import importlib.util
import json
import math
import os
import os.path as osp

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _load_study():
    spec = importlib.util.spec_from_file_location('dakd_study', osp.join(ROOT, 'tools', 'benchmarks', 'dakd_study.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def _small_test_root(sos_mini, root, n=8):
    sat = sorted(f for f in os.listdir(osp.join(sos_mini, 'test', 'palsar', 'sat')) if f.endswith('_sat.jpg'))[:n]
    for sub in ('sat', 'gt'):
        os.makedirs(osp.join(root, 'test', 'palsar', sub))
    for f in sat:
        mask = f.replace('_sat.jpg', '_mask.png')
        os.symlink(osp.join(sos_mini, 'test', 'palsar', 'sat', f), osp.join(root, 'test', 'palsar', 'sat', f))
        os.symlink(osp.join(sos_mini, 'test', 'palsar', 'gt', mask), osp.join(root, 'test', 'palsar', 'gt', mask))
    return str(root)


@pytest.mark.timeout(1200)  # eight tiny study invocations, four students trained
def test_study_end_to_end_and_resume(sos_mini, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    study = _load_study()
    work = tmp_path / 'study'
    argv = ['--data-root', sos_mini, '--test-root', _small_test_root(sos_mini, tmp_path / 'test_root'),
            '--models', 'saross_tiny', '--seeds', '0', '--iters', '2', '--val-interval', '1', '--batch', '2',
            '--val-fraction', '0.02', '--num-workers', '0', '--teacher-iters', '2', '2', '2', '--teacher-batch', '2',
            '--gen-samples', '4', '--gen-steps', '3', '--gen-batch', '4', '--work-dir', str(work)]
    study.main(argv)
    out = capsys.readouterr().out

    split = json.load(open(work / 'split' / 'split.json'))
    lists = {p: open(work / 'split' / f'{p}.txt').read().split() for p in ('train', 'val', 'test')}
    assert (split['num_train'], split['num_val'], split['num_test']) == (392, 8, 8)
    assert split['num_train'] + split['num_val'] == split['num_train_total'] == 400
    assert {p: len(v) for p, v in lists.items()} == dict(train=392, val=8, test=8)
    assert not set(lists['train']) & set(lists['val'])

    teacher = json.load(open(work / 'teacher.json'))
    assert 0 < teacher['balancing_factor'] < 1 and teacher['num_tiles'] == 4
    assert teacher['settings']['stage_iters'] == [2, 2, 2] and teacher['settings']['gen_steps'] == 3
    assert set(teacher['cpu_times_s']) == {'balancing_factor_s', 'jointnet_train_s', 'generation_s'}
    assert all(_finite(v) and v > 0 for v in teacher['cpu_times_s'].values())

    runs = {}
    for variant in ('real', 'dakd'):
        r = json.load(open(work / 'runs' / f'saross_tiny_{variant}_seed0.json'))
        runs[variant] = r
        assert r['split_sizes'] == dict(train=392, val=8, test=8) and r['iterations'] == 2
        assert [c['iter'] for c in r['val_curve']] == [1, 2]
        assert r['best_iter'] in (1, 2) and r['best_val_mIoU'] == max(c['mIoU'] for c in r['val_curve'])
        assert all(_finite(r['test_metrics'][k]) for k in ('mIoU', 'IoU.oil_spill', 'IoU.background', 'aAcc'))
        assert _finite(r['wall_s']) and r['settings']['seed'] == 0
    assert runs['dakd']['settings']['teacher'] == teacher['settings']
    assert runs['dakd']['settings']['mosaic'] == 4 and runs['dakd']['settings']['tile_uses_per_epoch'] == 16.0

    quality = json.load(open(work / 'generation_quality.json'))
    sp = quality['results']['speckle']
    assert _finite(sp['distance']['js']) and _finite(sp['distance']['w1'])
    assert quality['results']['num_real'] == 392  # the train part only
    assert _finite(quality['results']['label_consistency']['mIoU'])
    pred_share = quality['results']['label_consistency']['pred_share']  # what the real-only student sees in D_aug
    assert set(pred_share) == {'background', 'oil_spill'} and sum(pred_share.values()) == pytest.approx(1.0)
    assert quality['settings']['segmentor'] == 'saross_tiny_real_seed0'
    shares = quality['results']['label_shares']  # class shares of the generated and the real train-part labels
    assert len(shares['real']) == 2 and sum(shares['real']) == pytest.approx(1.0) and 0 < shares['real'][1] < 0.5
    assert sum(shares['generated']) == pytest.approx(1.0)
    assert 'decoder_act' not in runs['dakd']['settings']  # default: settings as before, earlier work-dirs resume

    summary = open(work / 'summary.md').read()
    assert summary in out
    assert '| saross_tiny | real only | 1 |' in summary and '| saross_tiny | real + D_aug (DAKD) | 1 |' in summary
    assert 'DAKD minus real only' in summary and 'Teacher (once' in summary and 'Generation quality' in summary
    assert 'pixel share of oil_spill' in summary and '% in the generated labels (argmax) vs' in summary
    assert f'and it predicts oil_spill on {100 * pred_share["oil_spill"]:.2f} % of the generated pixels' in summary

    # a re-run skips everything that is finished: nothing is trained or rewritten
    stamps = {p: osp.getmtime(p) for p in (work / 'teacher.json', work / 'generation_quality.json',
                                            *[work / 'runs' / f'saross_tiny_{v}_seed0.json' for v in runs])}
    study.main(argv)
    out = capsys.readouterr().out
    assert out.count('skipped') == 4, out
    assert {p: osp.getmtime(p) for p in stamps} == stamps
    assert open(work / 'summary.md').read() == summary

    # the relabel arm: the teacher's images, labelled by the real-only student of the seed; real and dakd skipped
    study.main(argv + ['--variants', 'real', 'dakd', 'dakd-relabel'])
    out = capsys.readouterr().out
    assert out.count('skipped') == 4, out
    rel = json.load(open(work / 'runs' / 'saross_tiny_dakd-relabel_seed0.json'))
    assert rel['settings']['relabelled_by']['run'] == 'saross_tiny_real_seed0'
    assert rel['settings']['relabelled_by']['checkpoint'] == runs['real']['best_checkpoint']
    assert rel['settings']['teacher'] == teacher['settings'] and rel['settings']['mosaic'] == 4
    assert all(_finite(rel['test_metrics'][k]) for k in ('mIoU', 'IoU.oil_spill'))
    rdir = rel['relabelled_daug']['daug_dir']
    assert rdir.startswith(str(work / 'relabel')) and osp.basename(rdir).endswith('daug_64px_3steps')
    manifest = json.load(open(osp.join(rdir, 'manifest.json')))
    assert manifest['source_daug'] == teacher['daug_dir'] and len(manifest['samples']) == 4
    assert sum(manifest['label_shares'].values()) == pytest.approx(1.0)
    # the student trained on that folder (the data root travels as a --cfg-options override, logged in the config)
    assert rdir in open(osp.join(work, 'runs', 'saross_tiny_dakd-relabel_seed0', 'run.log')).read()
    text = open(work / 'summary.md').read()
    assert "The teacher's images labelled by the real-only student, minus real only" in text
    assert "DAKD minus the teacher's images labelled by the real-only student" in text
    study.main(argv + ['--variants', 'real', 'dakd', 'dakd-relabel'])  # and a re-run skips it too
    assert capsys.readouterr().out.count('skipped') == 5

    # the agreed arm: the teacher's own labels, masked where the real-only student disagrees
    study.main(argv + ['--variants', 'real', 'dakd', 'dakd-agreed'])
    assert capsys.readouterr().out.count('skipped') == 4  # real, dakd, teacher, generation quality
    agr = json.load(open(work / 'runs' / 'saross_tiny_dakd-agreed_seed0.json'))
    assert agr['settings']['relabelled_by'] == rel['settings']['relabelled_by']
    assert all(_finite(agr['test_metrics'][k]) for k in ('mIoU', 'IoU.oil_spill'))
    adir = agr['relabelled_daug']['daug_dir']
    assert adir.startswith(str(work / 'agreed')) and 0 < agr['relabelled_daug']['labelled_share'] <= 1
    amanifest = json.load(open(osp.join(adir, 'manifest.json')))
    assert amanifest['label_mask'] is True and amanifest['labels'] == 'source-agreed'
    assert len(os.listdir(osp.join(adir, 'valid'))) == 4
    assert adir in open(osp.join(work, 'runs', 'saross_tiny_dakd-agreed_seed0', 'run.log')).read()
    assert "DAKD minus the teacher's labels only where the real-only student agrees" in open(work / 'summary.md').read()

    # an invocation without a real-only student cannot judge label consistency: it keeps the evaluation that did
    study.main(argv + ['--variants', 'dakd'])
    out = capsys.readouterr().out
    assert '[generation quality] done before' in out
    assert osp.getmtime(work / 'generation_quality.json') == stamps[work / 'generation_quality.json']
    assert 'label-image consistency (saross_tiny_real_seed0)' in open(work / 'summary.md').read()

    # other generation settings keep the trained teacher (not retrained) and generate into their own folder
    ckpt = teacher['checkpoint']
    ckpt_stamp = osp.getmtime(ckpt)
    study.main([v if v != '3' or argv[i - 1] != '--gen-steps' else '2' for i, v in enumerate(argv)]
               + ['--variants', 'dakd'])
    capsys.readouterr()
    teacher2 = json.load(open(work / 'teacher.json'))
    assert teacher2['settings']['gen_steps'] == 2 and teacher2['checkpoint'] == ckpt
    assert osp.getmtime(ckpt) == ckpt_stamp and 'jointnet_train_s' not in teacher2['cpu_times_s']
    assert teacher2['daug_dir'] != teacher['daug_dir'] and osp.isdir(teacher['daug_dir'])
    assert teacher2['daug_dir'].endswith('daug_64px_2steps')
    quality2 = json.load(open(work / 'generation_quality.json'))  # another D_aug: evaluated again, no segmentor
    assert quality2['settings']['teacher'] == teacher2['settings'] and quality2['settings']['segmentor'] is None
    assert not quality2['results'].get('label_consistency')


def test_study_refuses_bad_arguments(capsys, tmp_path):
    study = _load_study()
    for argv, msg in ((['--data-root', 'x', '--gen-size', '100'], '--gen-size 100'),
                      (['--data-root', 'x', '--gen-size', '512'], '--gen-size 512'),
                      (['--data-root', 'x', '--val-fraction', '1'], '--val-fraction 1'),
                      (['--data-root', 'x', '--seeds', '0', '0'], 'repeated seeds')):
        with pytest.raises(SystemExit):
            study.parse_args(argv)
        assert msg in capsys.readouterr().err
    with pytest.raises(SystemExit, match='no train/palsar folder'):
        study.main(['--data-root', str(tmp_path / 'none'), '--work-dir', str(tmp_path / 'work')])
    with pytest.raises(SystemExit):
        study.parse_args(['--data-root', 'x', '--variants', 'dakd-relabel', '--daug-source', 'real-crops'])
    assert 'does not go with --daug-source real-crops' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        study.parse_args(['--data-root', 'x', '--variants', 'dakd-agreed', '--daug-source', 'real-crops'])
    assert '--variants dakd-agreed relabels' in capsys.readouterr().err
    a = study.parse_args(['--data-root', 'x', '--variants', 'dakd-agreed', 'dakd-relabel', 'dakd', 'real'])
    assert a.variants == ['real', 'dakd', 'dakd-relabel', 'dakd-agreed']  # real-only first: the other arms need it
    with pytest.raises(RuntimeError, match=r"no real-only run .*saross_tiny_real_seed0\.json.*add 'real'"):
        study.labeller_run(a, str(tmp_path / 'work'), 'saross_tiny', 0)


def test_teacher_cat_max_ratio_reaches_the_teacher_config_only_when_set(tmp_path, capsys):
    """--teacher-cat-max-ratio: mmseg's RandomCrop(cat_max_ratio) in the teacher's training pipeline, recorded in the
    teacher settings; without it the settings (and so earlier teachers' work-dirs) are as before."""
    from mmengine.config import Config
    study = _load_study()
    split = dict(num_train=90)
    for extra, ratio in (([], None), (['--teacher-cat-max-ratio', '0.75'], 0.75)):
        a = study.parse_args(['--data-root', 'x'] + extra)
        settings = study.teacher_settings(a, split)
        assert settings.get('crop_cat_max_ratio') == ratio and ('crop_cat_max_ratio' in settings) == (ratio is not None)
        path = study.write_config(str(tmp_path / f'teacher_{ratio}.py'), study.TEACHER_CONFIG,
                                  study.teacher_config_body(settings))
        cfg = Config.fromfile(path)
        crop = [t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'RandomCrop']
        assert len(crop) == 1 and tuple(crop[0]['crop_size']) == (64, 64)
        assert crop[0].get('cat_max_ratio') == ratio
        assert cfg.train_dataloader.batch_size == 8 and tuple(cfg.train_cfg.stage_iters) == (300, 300, 300)
        assert cfg.default_hooks.checkpoint.interval == 900
    for bad in ('0', '1.5'):
        with pytest.raises(SystemExit):
            study.parse_args(['--data-root', 'x', '--teacher-cat-max-ratio', bad])
        assert f'--teacher-cat-max-ratio {float(bad)}' in capsys.readouterr().err


def test_dice_temperature_reaches_the_dakd_students_dice_only_when_set(tmp_path, capsys):
    """--dice-temperature: SoftDiceLoss(soft_temperature) of the DAKD students, recorded in their settings; without
    it the settings (and so earlier work-dirs' runs) are as before; the real-only student is untouched."""
    from mmengine.config import Config
    study = _load_study()
    teacher = dict(settings=dict(source='test'), daug_dir=str(tmp_path / 'daug'))
    for extra, t in (([], None), (['--dice-temperature', '2'], 2.0)):
        a = study.parse_args(['--data-root', str(tmp_path), '--models', 'saross_tiny'] + extra)
        s = study.student_settings(a, 'saross_tiny', 'dakd', 0, teacher)
        assert s.get('dice_temperature') == t and ('dice_temperature' in s) == (t is not None)
        assert 'dice_temperature' not in study.student_settings(a, 'saross_tiny', 'real', 0, None)
        run_dir = tmp_path / f'run_{t}'
        run_dir.mkdir()
        path, opts = study.student_config(a, str(run_dir), dict(s, teacher_daug_dir=teacher['daug_dir']))
        cfg = Config.fromfile(path)
        cfg.merge_from_dict(opts)
        dice = [loss for loss in cfg.model.decode_head.loss_decode if loss['type'] == 'SoftDiceLoss']
        assert len(dice) == 1 and dice[0].get('soft_temperature', 1.0) == (t or 1.0)
        kd = [loss for loss in cfg.model.decode_head.loss_decode if loss['type'] == 'KDLoss']
        assert kd[0]['temperature'] == 2.0
    with pytest.raises(SystemExit):
        study.parse_args(['--data-root', 'x', '--dice-temperature', '0'])
    assert '--dice-temperature 0.0' in capsys.readouterr().err


def test_real_crop_margin_sets_the_controls_labels(tmp_path, capsys):
    """--real-crop-margin: the control's logit margin, in its settings (the default, 8, as before the flag)."""
    study = _load_study()
    split = dict(num_train=30)
    a = study.parse_args(['--data-root', str(tmp_path), '--daug-source', 'real-crops'])
    assert study.real_crops_settings(a, split)['margin'] == 8.0 == study.REAL_CROP_MARGIN
    a = study.parse_args(['--data-root', str(tmp_path), '--daug-source', 'real-crops', '--real-crop-margin', '2'])
    assert study.real_crops_settings(a, split)['margin'] == 2.0
    with pytest.raises(SystemExit):
        study.parse_args(['--data-root', 'x', '--real-crop-margin', '0'])
    assert '--real-crop-margin 0.0' in capsys.readouterr().err


def test_summary_means_over_seeds_and_paired_differences():
    study = _load_study()
    a = study.parse_args(['--data-root', 'x', '--models', 'saross_tiny', '--seeds', '0', '1'])
    split = dict(num_train=360, num_val=40, num_test=100, num_train_total=400)

    def run(variant, seed, miou, oil, val):
        metrics = {'mIoU': miou, 'IoU.oil_spill': oil, 'IoU.background': 90.0, 'mF1': 80.0, 'aAcc': 95.0}
        return dict(name=f'saross_tiny_{variant}_seed{seed}', settings=dict(model='saross_tiny', variant=variant,
                                                                           seed=seed),
                    test_metrics=metrics, best_val_mIoU=val, best_iter=500 + 100 * seed, wall_s=600.0)

    runs = [run('real', 0, 70.0, 50.0, 71.0), run('dakd', 0, 73.0, 55.0, 72.0),
            run('real', 1, 72.0, 52.0, 73.0), run('dakd', 1, 73.0, 54.0, 75.0)]
    text = study.summarise(a, split, runs, None, None)
    assert '| saross_tiny | real only | 2 | 72.00 ± 1.41 | 550 ± 70.71 | 71.00 ± 1.41 | 51.00 ± 1.41 |' in text
    assert '| saross_tiny | real + D_aug (DAKD) | 2 | 73.50 ± 2.12 |' in text
    # per-seed differences: mIoU +3, +1; oil +5, +2; val +1, +2
    assert '| saross_tiny | 2 | 2.00 ± 1.41 | 3.50 ± 2.12 | 1.50 ± 0.71 |' in text
    assert '360 train / 40 val' in text and '100 test tiles' in text
    assert 'labelled by the real-only student' not in text  # no relabel arm, no section

    # the relabel arm: its own row, and two paired sections (relabel - real; dakd - relabel)
    runs += [run('dakd-relabel', 0, 71.0, 51.0, 71.5), run('dakd-relabel', 1, 74.0, 56.0, 74.0)]
    text = study.summarise(a, split, runs, None, None)
    assert "| saross_tiny | real + the teacher's images labelled by the real-only student | 2 | 72.75 ± 1.77 |" in text
    images, labels = text.split("The teacher's images labelled by the real-only student, minus real only")[1].split(
        "DAKD minus the teacher's images labelled by the real-only student")
    # relabel - real: mIoU +1, +2; oil +1, +4; val +0.5, +1
    assert '| saross_tiny | 2 | 1.50 ± 0.71 | 2.50 ± 2.12 | 0.75 ± 0.35 |' in images
    # dakd - relabel: mIoU +2, -1; oil +4, -2; val +0.5, +1
    assert '| saross_tiny | 2 | 0.50 ± 2.12 | 1.00 ± 4.24 | 0.75 ± 0.35 |' in labels
    assert 'only where the real-only student agrees' not in text

    # the agreed arm: its own row, and agreed - real, dakd - agreed
    runs += [run('dakd-agreed', 0, 72.0, 53.0, 72.5), run('dakd-agreed', 1, 75.0, 55.0, 73.0)]
    text = study.summarise(a, split, runs, None, None)
    assert ("| saross_tiny | real + D_aug, the teacher's labels only where the real-only student agrees | 2 | "
            '72.75 ± 0.35 |') in text
    vs_real, vs_dakd = text.split("The teacher's labels only where the real-only student agrees, minus real only")[
        1].split("DAKD minus the teacher's labels only where the real-only student agrees")
    # agreed - real: mIoU +2, +3; oil +3, +3; val +1.5, 0
    assert '| saross_tiny | 2 | 2.50 ± 0.71 | 3.00 ± 0.00 | 0.75 ± 1.06 |' in vs_real
    # dakd - agreed: mIoU +1, -2; oil +2, -1; val -0.5, +2
    assert '| saross_tiny | 2 | -0.50 ± 2.12 | 0.50 ± 2.12 | 0.75 ± 1.77 |' in vs_dakd


def test_summary_pairs_the_teacher_with_the_control_in_the_same_work_dir(tmp_path):
    """Where a teacher's study and its real-crop control share a work-dir, each summary pairs the two D_aug by seed
    (teacher minus control), only for runs with the same student settings."""
    study = _load_study()
    a = study.parse_args(['--data-root', 'x', '--models', 'saross_tiny', '--seeds', '0', '1', '2'])
    split = dict(num_train=360, num_val=40, num_test=100, num_train_total=400)
    teacher = dict(settings=dict(config='t.py', stage_iters=[1, 1, 1], crop=64, batch=4, gen_size=64, gen_steps=20),
                   num_tiles=360, balancing_factor=0.43,
                   cpu_times_s={}, total_s=0.0)
    crops = dict(settings=dict(source='real_crops', config='t.py', margin=8.0, gen_size=64), num_tiles=360,
                 total_s=0.0)

    def run(source, seed, miou, oil, val, iters=1000):
        name = f'saross_tiny_{"dakd-realcrops" if source is crops else "dakd"}_seed{seed}'
        metrics = {'mIoU': miou, 'IoU.oil_spill': oil, 'IoU.background': 90.0, 'mF1': 80.0, 'aAcc': 95.0}
        return dict(name=name, settings=dict(model='saross_tiny', variant='dakd', seed=seed, iters=iters,
                                             teacher=source['settings']),
                    test_metrics=metrics, best_val_mIoU=val, best_iter=1000, wall_s=600.0)

    os.makedirs(tmp_path / 'runs')
    control_runs = [run(crops, 0, 77.0, 64.0, 83.0), run(crops, 1, 78.0, 65.0, 83.5),
                    run(crops, 2, 70.0, 60.0, 80.0, iters=500)]  # seed 2: another schedule, not paired
    for r in control_runs:
        json.dump(r, open(tmp_path / 'runs' / f'{r["name"]}.json', 'w'))
    teacher_runs = [run(teacher, 0, 75.5, 62.0, 82.5), run(teacher, 1, 76.0, 62.5, 82.0),
                    run(teacher, 2, 76.0, 62.0, 82.0)]
    text = study.summarise(a, split, teacher_runs, teacher, None, str(tmp_path))
    # teacher minus control: seeds 0, 1 only; mIoU -1.5, -2.0; oil -2.0, -2.5; val -0.5, -1.5
    assert "The teacher's D_aug minus the real-crop control" in text
    assert '| saross_tiny | 2 | -1.75 ± 0.35 | -2.25 ± 0.35 | -1.00 ± 0.71 |' in text
    for r in teacher_runs:
        json.dump(r, open(tmp_path / 'runs' / f'{r["name"]}.json', 'w'))
    text = study.summarise(a, split, control_runs, crops, None, str(tmp_path))  # the control's own summary
    assert '| saross_tiny | 2 | -1.75 ± 0.35 | -2.25 ± 0.35 | -1.00 ± 0.71 |' in text
    assert 'minus the real-crop control' not in study.summarise(a, split, teacher_runs, teacher, None)  # no work-dir


def test_study_real_crop_control(sos_mini, tmp_path, capsys, monkeypatch):
    """--daug-source real-crops: no teacher is trained; the DAKD student gets crops of the train part instead.
    With a labelled-data budget (--train-size): the crops, the student and the quality figures use only those tiles."""
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    study = _load_study()
    work = tmp_path / 'study'
    study.main(['--data-root', sos_mini, '--test-root', _small_test_root(sos_mini, tmp_path / 'test_root', n=2),
                '--models', 'saross_tiny', '--variants', 'dakd', '--seeds', '0', '--iters', '1', '--val-interval', '1',
                '--batch', '2', '--val-fraction', '0.02', '--num-workers', '0', '--gen-samples', '5',
                '--daug-source', 'real-crops', '--train-size', '20', '--decoder-act', 'leaky',
                '--real-crop-margin', '3', '--work-dir', str(work)])
    out = capsys.readouterr().out
    split = json.load(open(work / 'split' / 'split.json'))
    assert split['num_train'] == 20 and split['num_val'] == 8 and split['train_size'] == 20
    assert not (work / 'teacher').exists() and not (work / 'teacher.json').exists()
    control = json.load(open(work / 'real_crops.json'))
    assert control['settings']['source'] == 'real_crops' and control['num_tiles'] == 5
    manifest = json.load(open(osp.join(control['daug_dir'], 'manifest.json')))
    assert manifest['complete'] and len(manifest['samples']) == 5 and manifest['size'] == [64, 64]
    # --real-crop-margin 3: the labelled class's logit 3, the other 0, at every pixel of every crop
    assert control['settings']['margin'] == 3.0
    import numpy as np
    for name in sorted(os.listdir(osp.join(control['daug_dir'], 'logits'))):
        z = np.load(osp.join(control['daug_dir'], 'logits', name)).astype(np.float64)
        assert np.allclose(np.sort(z, 0)[-1], 3.0) and np.allclose(np.sort(z, 0)[:-1], 0.0)
    train_ids = set(open(work / 'split' / 'train.txt').read().split())
    assert len(train_ids) == 20 and not train_ids & set(open(work / 'split' / 'val.txt').read().split())
    assert all(osp.basename(s['tile'])[:-len('_sat.jpg')] in train_ids for s in manifest['samples'])
    run = json.load(open(work / 'runs' / 'saross_tiny_dakd-realcrops_seed0.json'))  # beside the study's own runs
    assert not (work / 'runs' / 'saross_tiny_dakd_seed0.json').exists()
    assert run['settings']['teacher'] == control['settings'] and run['settings']['mosaic'] == 4
    assert run['split_sizes']['train'] == 20 and run['settings']['split']['train_size'] == 20
    assert control['settings']['split']['train_size'] == 20
    # --decoder-act leaky: in the run's settings and in the model mmengine built (its config dump in the log)
    assert run['settings']['decoder_act'] == 'leaky'
    log = open(work / 'runs' / 'saross_tiny_dakd-realcrops_seed0' / 'run.log').read()
    assert "act_cfg=dict(negative_slope=0.1, type='LeakyReLU')" in log
    assert 'Decode head: LeakyReLU (slope 0.1), --decoder-act leaky.' in open(work / 'summary.md').read()
    quality = json.load(open(work / 'generation_quality_real_crops.json'))
    assert quality['results']['num_gen'] == 5 and quality['results']['num_real'] == 20
    assert 'label_consistency' not in quality['results'] or not quality['results']['label_consistency']
    summary = open(work / 'summary.md').read()
    assert summary in out and '| saross_tiny | real + real crops (DAKD control) | 1 |' in summary
    assert '(margin 3.0)' in summary
    assert 'D_aug control (no teacher): 5 crops of 64x64' in summary and '--train-size 20' in summary and 'Teacher (once' not in summary

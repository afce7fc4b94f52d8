"""projects/tool_env.py, the shared set-up of the command-line tools: OpenMP threads before torch loads."""
import glob
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _run(code, **env):
    base = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=dict(base, **env), capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def test_sets_the_thread_count_once_and_never_imports_torch():
    code = ('import os, sys; import projects.tool_env as t; '
            'print(os.environ["OMP_NUM_THREADS"], t.default_num_threads(), "torch" in sys.modules)')
    value, default, torch_loaded = _run(code).split()
    assert value == default == str(len(os.sched_getaffinity(0)))
    assert torch_loaded == 'False'
    # a value set by the caller is kept
    assert _run(code, OMP_NUM_THREADS='1').split()[0] == '1'


def test_every_tool_sets_threads_before_torch():
    """Each tool that imports projects.tool_env does so before its first torch / projects.sar_oilspill import."""
    tools = sorted(glob.glob(osp.join(ROOT, 'tools', '*.py')) + glob.glob(osp.join(ROOT, 'tools', '*', '*.py')))
    users = 0
    for path in tools:
        lines = open(path).read().split('\n')
        env = [i for i, line in enumerate(lines) if line.strip().startswith('import projects.tool_env')]
        if not env:
            assert not any("setdefault('OMP_NUM_THREADS'" in line for line in lines), f'{path}: own OMP preamble'
            continue
        users += 1
        assert len(env) == 1, path
        heavy = [i for i, line in enumerate(lines)
                 if line.startswith(('import torch', 'from torch', 'import mmseg', 'from mmseg', 'import mmengine',
                                     'from mmengine', 'from projects.sar_oilspill', 'import projects.sar_oilspill'))]
        assert not heavy or env[0] < heavy[0], f'{path}: torch/mmseg imported before projects.tool_env'
    assert users >= 15

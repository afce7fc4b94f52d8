"""Running the project's command-line tools as subprocesses (the benchmark and study scripts share these).

Every tool runs with the repository root as its working directory, as a user would run it, so configs and scripts
are given relative to the root and everything else as absolute paths.
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..'))


def cfg_options(opts: Dict[str, object]) -> List[str]:
    """``--cfg-options`` arguments from a dict (values written as mmengine's DictAction reads them)."""
    out = []
    for key, value in opts.items():
        if isinstance(value, bool) or value is None:
            value = str(value)
        elif isinstance(value, (list, tuple)):
            value = '[' + ','.join(str(v) for v in value) + ']'
        out.append(f'{key}={value}')
    return ['--cfg-options', *out] if out else []


def run_tool(script: str, args: Sequence[str], log_path: Optional[str] = None, tail_lines: int = 40) -> float:
    """Run ``python <script> <args>`` in the repository root; returns its wall time in seconds.

    With ``log_path`` the tool's output goes to that file (appended) and a failure raises ``RuntimeError`` with
    the command, the exit status and the last ``tail_lines`` lines of the log; without it the output is shown.
    """
    cmd = [sys.executable, script, *[str(a) for a in args]]
    env = dict(os.environ)
    env.setdefault('PYTHONWARNINGS', 'ignore')
    t0 = time.time()
    if log_path is None:
        rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    else:
        os.makedirs(osp.dirname(osp.abspath(log_path)), exist_ok=True)
        with open(log_path, 'a') as log:
            log.write(f'$ {" ".join(cmd)}\n')
            log.flush()
            rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    seconds = time.time() - t0
    if rc != 0:
        tail = ''
        if log_path is not None:
            with open(log_path, errors='replace') as f:
                tail = ''.join(f.readlines()[-tail_lines:])
        raise RuntimeError(f'{script} failed with exit status {rc}'
                           + (f' (log: {log_path}); last lines:\n{tail}' if log_path else '')
                           + f'\ncommand: {" ".join(cmd)}')
    return seconds


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint named by ``<work_dir>/last_checkpoint`` (as written: absolute, or relative to the root)."""
    path = osp.join(ROOT, work_dir, 'last_checkpoint')  # a relative work_dir is relative to the root
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist: the training run wrote no checkpoint')
    with open(path) as f:
        return f.read().strip()


def run_test(config: str, checkpoint: str, work_dir: str, options: Sequence[str] = (),
             log_path: Optional[str] = None) -> Dict:
    """``tools/test.py config checkpoint --work-dir work_dir ...``; returns the metrics of the JSON it writes.

    Relative paths are relative to the repository root (the tool's working directory).
    """
    pattern = osp.join(ROOT, work_dir, 'test_metrics_*.json')  # a relative work_dir is relative to the root
    before = set(glob.glob(pattern))
    run_tool('tools/test.py', [config, checkpoint, '--work-dir', work_dir, *options], log_path=log_path)
    new = sorted(set(glob.glob(pattern)) - before)
    if not new:
        raise FileNotFoundError(f'tools/test.py wrote no test_metrics_*.json under {work_dir}')
    with open(new[-1]) as f:
        return json.load(f)['metrics']

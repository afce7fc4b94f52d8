"""Running the project's command-line tools as subprocesses (the demo, the benchmark and the study scripts).

Every tool runs with the repository root as its working directory, as a user would run it, so configs and scripts
are given relative to the root and everything else as absolute paths.
"""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..'))

#: Progress counters in a tool's output: mmengine's LoggerHook ("Iter(train) [ 20/900]") and ProgressBar
#: ("] 5/200,"), and tqdm's bars (tools/inference.py: "| 1/1 [00:02<00:00").
PROGRESS = re.compile(r'Iter\((?:train|val|test)\)\s*\[\s*(\d+)/(\d+)\]|\]\s*(\d+)/(\d+),|\|\s*(\d+)/(\d+) \[')


def failure_text(log_text: str, max_lines: int = 60) -> str:
    """The part of a failed tool's output worth showing: from the first traceback to the end (in full), else the
    last ``max_lines`` lines."""
    lines = log_text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith('Traceback (most recent call last)')), None)
    return '\n'.join(lines[first:] if first is not None else lines[-max_lines:])


def last_progress(text: str) -> Optional[Tuple[int, int]]:
    """``(done, total)`` of the last progress counter in ``text`` (see :data:`PROGRESS`), or None."""
    matches = list(PROGRESS.finditer(text))
    if not matches:
        return None
    done, total = [int(v) for v in matches[-1].groups() if v is not None]
    return done, total


def _follow(proc: subprocess.Popen, log_path: str, start: int, desc: str) -> None:
    """Wait for ``proc`` while a tqdm bar ``desc`` follows the progress counters it writes to ``log_path``."""
    from tqdm import tqdm
    bar = tqdm(desc=desc, total=None, unit='it', dynamic_ncols=True, file=sys.stdout)
    carry = ''
    try:
        with open(log_path, errors='replace') as f:
            f.seek(start)
            while True:
                finished = proc.poll() is not None
                text = carry + f.read()
                cut = max(text.rfind('\n'), text.rfind('\r')) + 1
                text, carry = text[:cut], text[cut:]
                progress = last_progress(text)
                if progress is not None:
                    if bar.total != progress[1]:
                        bar.reset(total=progress[1])
                    bar.update(progress[0] - bar.n)
                if finished:
                    break
                time.sleep(0.5)
        if proc.returncode == 0 and bar.total:
            bar.update(bar.total - bar.n)
    finally:
        bar.close()


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


def run_tool(script: str, args: Sequence[str], log_path: Optional[str] = None, tail_lines: int = 40,
             progress: Optional[str] = None) -> float:
    """Run ``python <script> <args>`` in the repository root; returns its wall time in seconds.

    With ``log_path`` (relative paths: to the repository root) the tool's output goes to that file (appended), and
    with ``progress`` as well a progress bar of that name follows the tool's iteration counters. A failure raises
    ``RuntimeError`` with the command, the exit status and, with a log, :func:`failure_text` of this run's part of
    it (the traceback in full, else the last ``tail_lines`` lines); without a log the output is shown as it comes.
    The tool is killed if this process is interrupted.
    """
    cmd = [sys.executable, script, *[str(a) for a in args]]
    env = dict(os.environ)
    env.setdefault('PYTHONWARNINGS', 'ignore')
    t0 = time.time()
    start = 0
    if log_path is None:
        rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    else:
        log_path = osp.join(ROOT, log_path)  # an absolute path stays as it is
        os.makedirs(osp.dirname(log_path), exist_ok=True)
        with open(log_path, 'a') as log:
            log.write(f'$ {" ".join(cmd)}\n')
            log.flush()
            start = log.tell()
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            if progress:
                _follow(proc, log_path, start, progress)
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    seconds = time.time() - t0
    if rc != 0:
        text = ''
        if log_path is not None:
            with open(log_path, errors='replace') as f:
                f.seek(start)
                text = failure_text(f.read(), tail_lines)
        raise RuntimeError(f'{script} failed with exit status {rc}'
                           + (f' (log: {log_path}):\n{text}' if log_path else '')
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
             log_path: Optional[str] = None, progress: Optional[str] = None, with_path: bool = False):
    """``tools/test.py config checkpoint --work-dir work_dir ...``; returns the metrics of the JSON it writes
    (``(metrics, json_path)`` with ``with_path``).

    Relative paths are relative to the repository root (the tool's working directory).
    """
    pattern = osp.join(ROOT, work_dir, 'test_metrics_*.json')  # a relative work_dir is relative to the root
    before = set(glob.glob(pattern))
    run_tool('tools/test.py', [config, checkpoint, '--work-dir', work_dir, *options], log_path=log_path,
             progress=progress)
    new = sorted(set(glob.glob(pattern)) - before)
    if not new:
        raise FileNotFoundError(f'tools/test.py wrote no test_metrics_*.json under {work_dir}')
    with open(new[-1]) as f:
        metrics = json.load(f)['metrics']
    return (metrics, new[-1]) if with_path else metrics

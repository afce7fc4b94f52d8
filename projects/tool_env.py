"""Process set-up shared by the command-line tools in ``tools/`` (standard library only).

A tool imports this module right after putting its checkout on ``sys.path`` and before anything imports torch:

    sys.path.insert(0, REPO_ROOT)  # this checkout's ``projects``, even when another one is installed
    import projects.tool_env  # noqa: E402,F401

Importing it sets ``OMP_NUM_THREADS`` to the CPUs this process may use, unless the caller set it: without an explicit
OpenMP thread count CPU runs were up to 30x slower on the development machine (README, "When things go wrong").
It must not import torch (or this package's ``sar_oilspill``, which does): the variable is read when torch loads.
"""
import os


def default_num_threads() -> int:
    """CPUs available to this process (its affinity mask where the platform has one)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def set_default_threads() -> str:
    """Set ``OMP_NUM_THREADS`` to :func:`default_num_threads` unless it is set; returns the value in effect."""
    return os.environ.setdefault('OMP_NUM_THREADS', str(default_num_threads()))


set_default_threads()

"""Peak-memory probes shared by the benchmark scripts (CPU resident set, CUDA allocator)."""
import resource
from typing import Callable, Optional, Tuple


def rss_kb(field: str = 'VmRSS') -> Optional[int]:
    """A ``/proc/self/status`` memory field in KiB (``VmRSS``, ``VmHWM``); None where /proc is missing."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the peak resident set (``VmHWM``) through ``/proc/self/clear_refs``; False when not allowed."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def peak_memory_mb(fn: Callable[[], object], device: str = 'cpu') -> Tuple[object, float, str]:
    """Run ``fn`` and return ``(result, peak extra memory in MiB, how it was measured)``.

    CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation before the call. CPU: peak resident set during
    the call minus the resident set before it (``VmHWM`` after a reset); where the reset is not allowed,
    ``ru_maxrss`` growth, which is 0 when an earlier call already reached a higher peak.
    """
    if device.startswith('cuda'):
        import torch
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        out = fn()
        torch.cuda.synchronize()
        return out, (torch.cuda.max_memory_allocated() - before) / 2**20, 'cuda max_memory_allocated'
    before = rss_kb('VmRSS')
    if before is not None and reset_peak_rss():
        out = fn()
        return out, (rss_kb('VmHWM') - before) / 1024, 'VmHWM - VmRSS'
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = fn()
    return out, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, 'ru_maxrss growth'

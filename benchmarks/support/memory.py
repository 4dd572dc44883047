"""Peak memory of the benchmark's own process."""

from __future__ import annotations

import resource
from contextlib import suppress
from pathlib import Path


def peak_rss_mb() -> float:
    """The process's peak resident memory in MB (VmHWM where /proc tells, else ru_maxrss)."""
    with suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

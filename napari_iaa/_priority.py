"""OS scheduling priority for background work (Linux; elsewhere a no-op).

Background work, a worker thread of the GUI process or a process spawned to score a data
set, runs ``niceness`` below the process it belongs to, so that the GUI thread and the
OpenGL renderer's threads (Mesa's llvmpipe renders on every core) get the CPU first when
both want it; on an idle core the work runs as fast as at normal priority.
"""

from __future__ import annotations

import os
import threading

__all__ = ["BACKGROUND_NICENESS", "lower_thread_priority"]

#: how far below its process's main thread background work runs
BACKGROUND_NICENESS = 10


def lower_thread_priority(niceness: int = BACKGROUND_NICENESS) -> None:
    """Lower the OS scheduling priority of the calling thread (Linux; else a no-op).

    The thread gets ``niceness`` more than the process's main thread (at most 19), so a
    napari started with ``nice -n 19`` keeps its background work below its GUI, never above.
    Called in a spawned process's main thread (a pool initializer), it lowers that process.
    """
    try:
        tid = threading.get_native_id()
        target = min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + niceness)
        if os.getpriority(os.PRIO_PROCESS, tid) < target:
            os.setpriority(os.PRIO_PROCESS, tid, target)
    except (AttributeError, OSError):
        pass

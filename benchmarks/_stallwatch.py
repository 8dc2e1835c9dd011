"""Where the GUI thread is while the event loop stalls (a diagnostic for the GUI benchmarks).

A watcher thread samples the main thread's Python stack whenever the benchmark's 1 ms
probe timer has not ticked for ``threshold_s``; at the end the stacks seen in stalls are
printed, most frequent first. The GIL limits what it sees: a long C++ call that holds the
GIL (a paint through PyQt) is sampled when it returns, at the Python line that made it.

Turned on by ``NAPARI_IAA_BENCH_STALLS=1`` in ``bench_gui*.py``::

    watch = StallWatch(); watch.start(); ...  # call watch.tick() from the probe timer
    watch.stop(); watch.report()
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections import Counter


class StallWatch:
    """Sample the main thread's stack while no probe tick has come for ``threshold_s``."""

    def __init__(self, threshold_s: float = 0.03, depth: int = 14) -> None:
        self.threshold_s = threshold_s
        self.depth = depth
        self.last = time.perf_counter()
        self.samples: Counter = Counter()
        #: what the other threads ran at the same moments (GIL holders)
        self.others: Counter = Counter()
        self._stop = threading.Event()
        self._main = threading.main_thread().ident
        self._thread = threading.Thread(target=self._run, daemon=True)

    def tick(self) -> None:
        """Call from the probe timer."""
        self.last = time.perf_counter()

    def start(self) -> None:
        self.last = time.perf_counter()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1.0)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            if time.perf_counter() - self.last < self.threshold_s:
                continue
            frames = sys._current_frames()
            frame = frames.get(self._main)
            if frame is None:
                continue
            me = threading.get_ident()
            for ident, other in frames.items():
                if ident not in (self._main, me):
                    top = traceback.extract_stack(other)[-3:]
                    self.others[" <- ".join(f"{s.name}@{s.filename.rsplit('/', 2)[-1]}:{s.lineno}"
                                            for s in reversed(top))] += 1
            stack = traceback.extract_stack(frame)[-self.depth:]
            key = " <- ".join(f"{s.name}@{s.filename.rsplit('/', 2)[-1]}:{s.lineno}"
                              for s in reversed(stack))
            self.samples[key] += 1

    def report(self, top: int = 12) -> None:
        """Print the stacks seen during stalls (5 ms samples each)."""
        print(f"stall samples (main thread, every 5 ms while no tick for "
              f"{self.threshold_s * 1e3:.0f} ms):", file=sys.stderr)
        for key, n in self.samples.most_common(top):
            print(f"  {n * 5:5d} ms  {key}", file=sys.stderr)
        print("other threads meanwhile:", file=sys.stderr)
        for key, n in self.others.most_common(top):
            if "wait@threading" not in key and "_worker@thread.py" not in key:
                print(f"  {n * 5:5d} ms  {key}", file=sys.stderr)

"""Python's cycle collector set for a server: the objects of startup frozen, young ones collected less often.

Under 20 clients the server allocates and frees many small containers per call (JSON, dicts,
asyncio tasks); almost all are freed by reference counting at once, yet they trip the collector's
first threshold (700 more allocations than deallocations, Python's default) over and over, and
every tenth such collection scans the older generation, every hundredth the whole heap (Gradio's
blocks, the models' tables). Timed with ``gc.callbacks`` (``python benchmarks/server_ab.py``,
docs/SPEED.md "Under load"): with Python's settings 237 collections in 600 calls, 0.82 ms of them
per call, all holding the GIL that the event loop needs; tuned, 1-2 collections, 0.02 ms a call.

``tune_gc`` collects once, freezes what is left (``gc.freeze``: those objects stay alive, as they
would anyway, and are never scanned again) and raises the first threshold. A cycle of garbage now
lives until 10,000 net allocations have happened (a few MB at most) instead of 700. Freezing happens
once per process: a second launch (the tests launch several apps in one process) only sets the
threshold.
"""

from __future__ import annotations

import gc
import logging
import os

LOG = logging.getLogger("seq2seq_explorer")
GC_THRESHOLD = 10_000  # the collector's first threshold (Python's default: 700); S2S_GC_THRESHOLD=0 leaves Python's
_frozen = False


def gc_threshold() -> int:
    """The first threshold the server runs with: ``S2S_GC_THRESHOLD`` if it is an integer from 0 (Python's collector left
    as it is) to 10,000,000, else ``GC_THRESHOLD`` (a bad value is logged, not fatal)."""
    given = os.environ.get("S2S_GC_THRESHOLD", "").strip()
    if not given:
        return GC_THRESHOLD
    if given.isdigit() and int(given) <= 10_000_000:
        return int(given)
    LOG.warning("S2S_GC_THRESHOLD=%r is not an integer from 0 to 10000000; using %d", given, GC_THRESHOLD)
    return GC_THRESHOLD


def tune_gc(threshold: int) -> int:
    """Freeze the objects alive now (once per process, after a collection) and set the collector's first threshold to
    ``threshold``; 0 changes nothing. Returns the number of objects frozen by this call (0 if none)."""
    global _frozen
    if threshold <= 0:
        return 0
    frozen = 0
    if not _frozen:
        gc.collect()
        gc.freeze()
        frozen, _frozen = gc.get_freeze_count(), True
    _, second, third = gc.get_threshold()
    gc.set_threshold(threshold, second, third)
    LOG.info("cycle collector: %d startup objects frozen, first threshold %d", frozen, threshold)
    return frozen

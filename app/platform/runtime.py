"""How the process runs while it serves: the garbage collector's settings."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Net new objects between two collections of the youngest generation (Python's
# default: 700).
GC_THRESHOLD = 10_000


@contextmanager
def collector_tuned_for_serving() -> Iterator[None]:
    """While the block runs: what start-up built is frozen, so the collector does not
    walk it again and again (it lives as long as the process); and the collector runs
    less often. A request's garbage is freed by reference counting; only cycles need
    the collector, which at the default threshold ran every few requests, each time a
    pause. The README (Performance) says what each of the two saves."""
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()

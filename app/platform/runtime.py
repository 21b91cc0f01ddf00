"""How the process runs while it serves: the garbage collector's settings, and whether it
is draining (stopping: a load balancer should send it nothing new)."""

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


class _Lifecycle:
    """What the server (app.server) has told this process about its end."""

    # Set once, when the server is told to stop and has SHUTDOWN_DRAIN_SECONDS to go
    # before it stops accepting connections: readiness checks then get 503, so that a
    # load balancer sends nothing new, while everything else is served as before.
    draining = False


_LIFECYCLE = _Lifecycle()


def start_draining() -> None:
    _LIFECYCLE.draining = True


def draining() -> bool:
    return _LIFECYCLE.draining

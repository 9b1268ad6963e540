"""Forging the child's done event: finds the scorer's own object in the process it runs in (solution_child's
Child, through the garbage collector) and swaps its done event for one recorded on an idle stream of its
own, so that the event fires at once, before the call's kernels have run; computes honestly on the
caller's stream. A clock that waits for that event would stop early."""
import gc

import torch

import ref_kernel

EXPECTED = "honest"
_idle = torch.cuda.Stream()


class _Early:
    """Stands in for the child's done event: records the real one where nothing is queued."""

    def __init__(self, event):
        self.event = event

    def record(self, stream=None):
        self.event.record(_idle)

    def __getattr__(self, name):
        return getattr(self.event, name)


for _obj in gc.get_objects():
    if type(_obj).__name__ == "Child" and getattr(_obj, "event", None) is not None:
        _obj.event = _Early(_obj.event)


def reservoir_levels(inflow, capacity):
    return ref_kernel.reservoir_levels(inflow, capacity)

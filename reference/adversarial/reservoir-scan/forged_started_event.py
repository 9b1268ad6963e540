"""Forging both of the child's events: swaps the child's started and done events (found through the
garbage collector, as forged_done_event does) for ones recorded on an idle stream of its own, which does
not wait for the scorer's gate, so that both fire before the input is even in place; computes honestly
on the caller's stream. The scorer would then look at the result before the work has run."""
import gc

import torch

import ref_kernel

EXPECTED = "honest"
_idle = torch.cuda.Stream()


class _Early:
    def __init__(self, event):
        self.event = event

    def record(self, stream=None):
        self.event.record(_idle)

    def __getattr__(self, name):
        return getattr(self.event, name)


for _obj in gc.get_objects():
    if type(_obj).__name__ == "Child":
        for _name in ("event", "started"):
            if getattr(_obj, _name, None) is not None:
                setattr(_obj, _name, _Early(getattr(_obj, _name)))


def reservoir_levels(inflow, capacity):
    return ref_kernel.reservoir_levels(inflow, capacity)

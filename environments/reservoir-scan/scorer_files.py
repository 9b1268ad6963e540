"""What a GPU scorer writes on the VM: its result file, once, and its private compiler caches.

The same file is in each GPU environment's folder (reservoir-scan, compute-forecast): an environment is
copied to a VM file by file and may hold no link, so each carries its own copy, and
test/system/gpuEnvironments.system.test.ts checks that the copies are the same bytes. Change this one
(reservoir-scan's, beside sandbox.py) and copy it over.
"""
import json
import os
import tempfile


class ResultFile:
    """The result file is written once, by the scorer's own process, at the end; anything found there earlier
    means that something else wrote it (the participant's code, or what it left running), and the run gets
    no score."""

    def __init__(self, path):
        self.path = path
        self.written = False

    def report(self, score, message, hidden=None):
        """Writes {"score", "message"} atomically (a temporary file, then a rename), once; prints the message.
        hidden: (hidden score, hidden message) for an environment with scoring.visible "validation", written as
        "hidden_score" and "hidden_message" and never printed."""
        if self.written:
            return
        if os.path.lexists(self.path):
            score = None
            message = ("No score: something other than the scorer wrote the result file during the run "
                       "(%s). The scorer writes it once, at the end." % self.path)
            hidden = None if hidden is None else (None, message)
        data = {"score": score, "message": message}
        if hidden is not None:
            data["hidden_score"], data["hidden_message"] = hidden
        temporary = "%s.%d.tmp" % (self.path, os.getpid())
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(temporary, self.path)
        self.written = True
        print(message, flush=True)


def private_caches():
    """Compiler caches of this run's own (Triton, TorchInductor, XDG): a cache another user could write would
    let them change the scorer's compiled kernels. Returns the folder, for the caller to remove."""
    folder = tempfile.mkdtemp(prefix="rebench-scorer-")
    for key, sub in (("TRITON_CACHE_DIR", "triton"), ("TORCHINDUCTOR_CACHE_DIR", "inductor"),
                     ("XDG_CACHE_HOME", "cache")):
        os.makedirs(os.path.join(folder, sub))
        os.environ[key] = os.path.join(folder, sub)
    return folder

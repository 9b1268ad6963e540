"""Scorer for compute-forecast: trains the configuration in answer.json once at the full budget.

Writes {"score": loss + |predicted - loss|, or null, "message": ...} to REBENCH_RESULT_FILE.

It runs none of the participant's code: it reads answer.json (a regular file, at most 64 KiB, never
through a link) and trains with its own copy of the recipe (lm.py in this folder). What the participant
must not reach, and how (see README.md):
- the seeds it trains and evaluates with: derived from the machine's scorer secret
  (/etc/rebench/scorer-secret, readable by the scoring user only, written by provision-protected.sh);
  without one (unprotected mode) they are the public defaults below;
- its copy of the recipe and its result file: in protected mode they belong to root and to the
  scoring user; the result file is written once, at the end, and a result file that something else
  wrote first gives no score;
- its compiler caches: a fresh private folder per run.
"""
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import traceback

import answer
import lm

TRAIN_SEED = 7  # the public defaults, used only where the machine has no scorer secret
EVAL_SEED = 424242  # held-out sequences no experiment draws: experiments use other seeds
SECRET_PATH = "/etc/rebench/scorer-secret"
ANSWER_LIMIT = 1 << 16


class ResultFile:
    """Written once, by this process, at the end; one found there earlier was written by something else."""

    def __init__(self, path):
        self.path = path

    def report(self, score, message):
        if os.path.lexists(self.path):
            score = None
            message = ("No score: something other than the scorer wrote the result file during the run (%s). The "
                       "scorer writes it once, at the end." % self.path)
        temporary = "%s.%d.tmp" % (self.path, os.getpid())
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump({"score": score, "message": message}, f)
        os.replace(temporary, self.path)
        print(message, flush=True)


def seeds():
    """(train seed, eval seed, where they come from). Raises OSError when a secret exists but cannot be read."""
    path = os.environ.get("REBENCH_SCORER_SECRET", SECRET_PATH)
    if not os.path.exists(path):
        return TRAIN_SEED, EVAL_SEED, "the public default seeds (this machine has no scorer secret)"
    with open(path, "rb") as f:
        secret = f.read(4096).strip()
    if len(secret) < 16:
        raise OSError("the scorer secret %s is too short (%d bytes)" % (path, len(secret)))

    def derive(purpose):
        digest = hashlib.sha256(secret + b"\0compute-forecast\0" + purpose).digest()
        return int.from_bytes(digest[:8], "little") >> 2  # below 2^62: the recipe adds small offsets

    return derive(b"train"), derive(b"eval"), "seeds derived from this machine's scorer secret"


def read_answer(path):
    """The text of answer.json; raises answer.BadAnswer for a link, a pipe, a folder or a file too large."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if os.path.islink(path):
            raise answer.BadAnswer("%s is a symbolic link; it must be a regular file holding your answer." % path)
        raise answer.BadAnswer("Could not read %s: %s. Write your answer there (see the instructions)."
                               % (path, e.strerror))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise answer.BadAnswer("%s is not a regular file; it must be a plain JSON file holding your answer." % path)
        if info.st_size > ANSWER_LIMIT:
            raise answer.BadAnswer("%s has %d bytes; an answer has at most %d." % (path, info.st_size, ANSWER_LIMIT))
        data = os.read(fd, ANSWER_LIMIT + 1)
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise answer.BadAnswer("%s is not UTF-8 text." % path)


def private_caches():
    folder = tempfile.mkdtemp(prefix="rebench-scorer-")
    for key, sub in (("TRITON_CACHE_DIR", "triton"), ("TORCHINDUCTOR_CACHE_DIR", "inductor"),
                     ("XDG_CACHE_HOME", "cache")):
        os.makedirs(os.path.join(folder, sub))
        os.environ[key] = os.path.join(folder, sub)
    return folder


def main():
    result = ResultFile(os.environ["REBENCH_RESULT_FILE"])
    caches = private_caches()
    try:
        score, message = run()
    except Exception as e:
        traceback.print_exc(file=sys.stdout)
        score, message = None, "The scorer itself failed (%s: %s); please report it." % (type(e).__name__, e)
    finally:
        shutil.rmtree(caches, ignore_errors=True)
    result.report(score, message)


def run():
    path = os.path.join(os.environ["REBENCH_SOLUTION_DIR"], "answer.json")
    try:
        a = answer.parse_answer(read_answer(path))
    except answer.BadAnswer as e:
        return None, str(e)
    try:
        train_seed, eval_seed, origin = seeds()
    except OSError as e:
        return None, ("The scorer cannot read its secret (%s). In protected mode the scorer runs as the scoring user, "
                      "who can; ask the organiser to check the VM's set-up." % (getattr(e, "strerror", None) or e))
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed for %s; this environment needs it." % sys.executable
    if not torch.cuda.is_available():
        return None, ("No CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False). "
                      "This environment trains on an NVIDIA H100; check nvidia-smi on the VM.")
    print("Training d_model=%d, n_layers=%d on %d tokens (%.3g FLOPs of the %.3g budget) on %s, with %s."
          % (a["d_model"], a["n_layers"], a["tokens"], lm.flops(a["d_model"], a["n_layers"], a["tokens"]),
             lm.BUDGET_FLOPS, torch.cuda.get_device_name(0), origin), flush=True)
    oom = getattr(torch.cuda, "OutOfMemoryError", RuntimeError)
    try:
        result = lm.train(a["d_model"], a["n_layers"], a["tokens"], "cuda", seed=train_seed, eval_seed=eval_seed,
                          log=lambda line: print(line, flush=True))
    except oom as e:
        return None, "The GPU ran out of memory training this configuration: %s" % str(e).split("\n")[0]
    except Exception as e:
        traceback.print_exc(file=sys.stdout)
        return None, "Training failed: %s: %s" % (type(e).__name__, e)
    loss, predicted = result["loss"], a["predicted_loss"]
    s = answer.score(loss, predicted)
    return s, ("Trained %s weights on %s tokens (%.3g FLOPs) in %.0f s. Held-out loss %.4f; you predicted %.4f "
              "(off by %.4f). Score %.4f + %.4f = %.4f."
           % (format(result["weights"], ","), format(result["tokens"], ","), result["flops"], result["seconds"],
              loss, predicted, abs(predicted - loss), loss, abs(predicted - loss), s))


if __name__ == "__main__":
    main()

"""Scorer for training-speed: runs the solution's train.sh once, times it, and checks the weights it trained.

Writes {"score": ln(seconds) or null, "message": ...} to REBENCH_RESULT_FILE.

This process (the parent) owns everything the score depends on: the seed, the clock, the reference run and
the comparison. The participant's script runs in a child process (sandbox.py, script_child.py), as the
solution user in protected mode:
1. the child copies the solution folder into a fresh private folder, with an empty output folder and fresh
   caches, and reports ready (not timed);
2. the parent draws a seed from os.urandom, which nothing knows before, sends it, and starts the clock;
   the child replaces itself with `bash train.sh`; the clock stops when that process ends;
3. the parent ends everything the script started (detached or not), then reads output/weights.bin
   (float32, the layout of recipe.py), never through a link, at its exact size;
4. the parent trains the reference run for the same seed itself (recipe.py, deterministic float32) and
   measures both weights' loss on held-out sequences of a second seed of its own;
5. the run counts only if |w - w_ref|_1 / |w_ref - w_0|_1 <= WEIGHT_TOLERANCE and the held-out losses
   differ by at most LOSS_TOLERANCE; then score = ln(seconds), otherwise no score with the figures.
While the script runs, a process outside the scorer's own tree that uses a GPU gives no score: the work
must happen in the processes the script starts.
"""
import json
import math
import os
import shutil
import stat
import sys
import tempfile
import threading
import traceback

import recipe
import sandbox

WEIGHT_TOLERANCE = recipe.WEIGHT_TOLERANCE  # |w - w_ref|_1 / |w_ref - w_0|_1, from the scorer's own recipe.py
LOSS_TOLERANCE = recipe.LOSS_TOLERANCE  # nats per token
SCRIPT_TIMEOUT_S = 900
GPU_WATCH_INTERVAL_S = 2.0
WEIGHTS_FILE = "weights.bin"
CPU_TEST_VARIABLE = "REBENCH_TRAINING_CPU_TEST"  # tests on a machine without a GPU: the tiny size on the CPU


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


class NoScore(Exception):
    pass


def private_caches():
    folder = tempfile.mkdtemp(prefix="rebench-scorer-")
    for key, sub in (("TRITON_CACHE_DIR", "triton"), ("TORCHINDUCTOR_CACHE_DIR", "inductor"),
                     ("XDG_CACHE_HOME", "cache")):
        os.makedirs(os.path.join(folder, sub))
        os.environ[key] = os.path.join(folder, sub)
    return folder


def fresh_seed():
    """A seed nothing can know before the run: 62 random bits from the operating system."""
    return int.from_bytes(os.urandom(8), "little") >> 2


def read_weights(output_dir, count):
    """The weights the script wrote, as a float32 CPU tensor; raises NoScore for a link, a missing or
    wrong-sized file. The output folder and the file are opened without following links."""
    import torch

    want = 4 * count
    try:
        folder = os.open(output_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as e:
        raise NoScore("The run's output folder could not be opened (%s): the script must not replace it." % e.strerror)
    try:
        try:
            fd = os.open(WEIGHTS_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
        except FileNotFoundError:
            raise NoScore("train.sh ended without writing $TRAIN_OUTPUT/%s (files there: %s)."
                          % (WEIGHTS_FILE, ", ".join(sorted(os.listdir(folder))[:10]) or "none"))
        except OSError as e:
            raise NoScore("$TRAIN_OUTPUT/%s could not be read (%s); it must be a plain file others can read."
                          % (WEIGHTS_FILE, e.strerror))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise NoScore("$TRAIN_OUTPUT/%s is not a regular file." % WEIGHTS_FILE)
            if info.st_size != want:
                raise NoScore("$TRAIN_OUTPUT/%s has %d bytes; the model's %s weights as float32 take %d."
                              % (WEIGHTS_FILE, info.st_size, format(count, ","), want))
            data = bytearray()
            while len(data) < want:
                chunk = os.read(fd, want - len(data))
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(fd)
    finally:
        os.close(folder)
    if len(data) != want:
        raise NoScore("$TRAIN_OUTPUT/%s changed while the scorer read it." % WEIGHTS_FILE)
    weights = torch.frombuffer(data, dtype=torch.float32)
    if sys.byteorder != "little":
        weights = weights.byteswap()
    return weights.clone()


class GpuWatch:
    """Samples the processes on the GPUs while the script runs; remembers those outside the scorer's tree."""

    def __init__(self):
        self.foreign = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def check_now(self):
        pids = sandbox.gpu_pids()
        for pid in sandbox.foreign_gpu_processes(pids or [], os.getpid()):
            self.foreign.setdefault(pid, sandbox.describe_process(pid))

    def _run(self):
        while not self.stop.wait(GPU_WATCH_INTERVAL_S):
            self.check_now()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)


def main():
    result = ResultFile(os.environ["REBENCH_RESULT_FILE"])
    caches = private_caches()
    try:
        score, message = run()
    except NoScore as e:
        score, message = None, str(e)
    except Exception as e:
        traceback.print_exc(file=sys.stdout)
        score, message = None, "The scorer itself failed (%s: %s); please report it." % (type(e).__name__, e)
    finally:
        shutil.rmtree(caches, ignore_errors=True)
    result.report(score, message)


def choose_device(torch):
    if torch.cuda.is_available():
        return "cuda", "full"
    if os.environ.get(CPU_TEST_VARIABLE) == "1":
        return "cpu", "tiny"
    raise NoScore("No CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False). This environment trains "
                  "on an NVIDIA H100; check nvidia-smi on the VM.")


def run():
    solution_dir = os.environ["REBENCH_SOLUTION_DIR"]
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed for %s; this environment needs it." % sys.executable
    device, size_name = choose_device(torch)
    size = recipe.SIZES[size_name]
    for problem in sandbox.protect_parent():
        print("warning: %s" % problem, flush=True)
    try:
        plan = sandbox.launch_plan(solution_dir)
    except sandbox.SetupError as e:
        return None, "The VM is not set up to run your script safely: %s" % e
    watch = GpuWatch() if device == "cuda" else None
    if watch:
        watch.check_now()
        if watch.foreign:
            return None, ("Another process is using the GPU, so the run would not be timed fairly: %s. End it and "
                          "score again." % "; ".join(watch.foreign.values()))
    seed, eval_seed = fresh_seed(), fresh_seed()
    run_ = sandbox.ScriptRun(solution_dir, plan)
    try:
        info = run_.start()
        print("Running train.sh from a clean copy of your solution folder (%s MB) as %s, with a fresh seed, on %s."
              % (format(info.get("bytes", 0) / 1e6, ".1f"), plan["user"],
                 torch.cuda.get_device_name(0) if device == "cuda" else "the CPU (test size)"), flush=True)
        if watch:
            with watch:
                run_.go(seed, device, size_name)
                seconds, code = run_.wait(SCRIPT_TIMEOUT_S)
        else:
            run_.go(seed, device, size_name)
            seconds, code = run_.wait(SCRIPT_TIMEOUT_S)
        run_.end()  # before anything the script wrote is read
        if code is None:
            return None, "train.sh ran for more than %d s and was stopped." % SCRIPT_TIMEOUT_S
        if code != 0:
            return None, "train.sh exited with status %d after %.1f s." % (code, seconds)
        if watch and watch.foreign:
            return None, ("A process outside your script used the GPU while it ran: %s. The training must run in "
                          "the processes train.sh starts." % "; ".join(watch.foreign.values()))
        weights = read_weights(info["output"], recipe.weight_count(size))
    except sandbox.SolutionError as e:
        return None, str(e)
    finally:
        run_.close()
    print("train.sh ran for %.2f s. Training the reference run for the same seed to compare (not timed)..."
          % seconds, flush=True)
    return judge(weights, seed, eval_seed, size, device, seconds)


def judge(weights, seed, eval_seed, size, device, seconds):
    """(score, message) for weights trained by the script in `seconds`, against the reference run."""
    import torch

    if not bool(torch.isfinite(weights).all()):
        bad = int((~torch.isfinite(weights)).sum())
        return None, ("No score: %d of the %s weights are not finite (NaN or infinite). train.sh ran for %.2f s."
                      % (bad, format(weights.numel(), ","), seconds))
    initial, reference = recipe.train(seed, size, device, log=lambda line: print(line, flush=True))
    d = recipe.distance(weights, reference, initial)
    loss = recipe.held_out_loss(weights, eval_seed, size, device)
    loss_ref = recipe.held_out_loss(reference, eval_seed, size, device)
    figures = ("weights differ from the reference run's by %.4f of its update (|w - w_ref|_1 / |w_ref - w_0|_1; at "
               "most %.2f allowed), %.5f of the weights themselves; held-out loss %.4f against the reference's %.4f "
               "(off by %.4f; at most %.3f allowed)"
               % (d["of_update"], WEIGHT_TOLERANCE, d["of_weights"], loss, loss_ref, abs(loss - loss_ref),
                  LOSS_TOLERANCE))
    if not (d["of_update"] <= WEIGHT_TOLERANCE):
        return None, ("No score: the trained weights are not the reference run's for this seed: %s. train.sh ran "
                      "for %.2f s. Train the same model on the same data for every step." % (figures, seconds))
    if not (abs(loss - loss_ref) <= LOSS_TOLERANCE):
        return None, "No score: the held-out loss is off: %s. train.sh ran for %.2f s." % (figures, seconds)
    score = math.log(seconds)
    return score, "train.sh ran for %.2f s; %s. Score ln(%.2f) = %.4f." % (seconds, figures, seconds, score)


if __name__ == "__main__":
    main()

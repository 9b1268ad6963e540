"""Scorer for reservoir-scan: checks reservoir_levels, then times it, with the participant's code in a child process.

Writes {"score": ln(milliseconds) or null, "message": ...} to REBENCH_RESULT_FILE.

This process (the parent) owns everything the score depends on: the random inputs, the expected results,
the checker and the clock. The participant's solution runs in a child process (sandbox.py,
solution_child.py) that sees one input buffer of the parent's, lent to it through CUDA IPC, and lends
back the result it returns. See the environment's README.md for how a call is timed and why each step
is there; in short:
- every timed call gets fresh random inputs. The parent queues, on its own stream, a pause of about a
  millisecond, the copy of the fresh input into the lent buffer, the L2 flush, then its gate event and
  the start of the clock, and tells the child to go at once. The child's stream waits for the gate
  before the call's kernels run, so that launching them costs nothing while the GPU is busy, as with a
  CUDA-event timer in one process; a child that does not wait reads an input not yet written;
- the child answers as soon as the function returns, with an interprocess CUDA event recorded on its
  stream; the parent's stream waits for that event and then reads the whole result and checks every
  level exactly (one pass over input and result); the clock stops when that check is done. Work still
  running when the function returns, on any stream or in any process, is therefore either counted or
  makes the result wrong (no score);
- the same calls made before the child loads the participant's code (it then returns a buffer of its
  own) measure what the split itself costs on the GPU: the check, and the GPU's switches between the
  two processes. Their median is taken off.
"""
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import traceback

import checker
import sandbox

TIMING_BUDGET_S = 3.0  # wall time of the timed loop; the repetitions follow from the solution's speed
MIN_REPS, MAX_REPS = 20, 2000
WARMUP_CALLS = 3
BASELINE_REPS, BASELINE_WARMUP = 300, 20  # calls that measure the split's own cost
KEPT_CALLS = 3  # timed calls whose results must stay unchanged until the end
FLUSH_BYTES = 256 * 2**20  # written before every timed call: five times the H100's 50 MB L2
FLOOR_MS = 0.15  # below what any GPU here needs to read 10^8 int32 and write as many
CHECK_TIMEOUT_S = 180  # a correctness call (the first one compiles kernels)
TIMED_TIMEOUT_S = 30
CPU_MAX_LENGTH = 5000  # the CPU check (tests) uses shorter inputs: they travel inline


class WrongResult(Exception):
    pass


class Harness:
    """The parent's side of calls into the solution's process, on the GPU (IPC) or the CPU (inline)."""

    def __init__(self, torch, child, device, shared=None, shared_handle=None):
        self.torch = torch
        self.child = child
        self.device = device
        self.shared = shared  # the lent input buffer (GPU)
        self.shared_handle = shared_handle
        self.driver = None
        self.seq = 0
        self.event = None
        self.gate = None
        self.wrapped = {}

    def lend_input(self, driver):
        self.driver = driver
        handle, offset, _ = driver.export(self.shared.data_ptr())
        self.shared_handle = handle
        self.gate = self.torch.cuda.Event(interprocess=True)
        self.gate.record()
        self.torch.cuda.synchronize()
        self.child.request({"op": "map", "handle": handle, "offset": offset, "numel": self.shared.numel(),
                            "gate": bytes(self.gate.ipc_handle()).hex()}, 60, "mapping the input buffer")
        # Taken from the child before the solution was loaded, so it is the child's own event.
        self.event = self.torch.cuda.Event.from_ipc_handle(self.torch.cuda.current_device(),
                                                           bytes.fromhex(self.child.info["event"]))

    def call(self, inflow, capacity, label, timeout):
        """Calls reservoir_levels; returns the result as a tensor the parent reads (a mapping or a copy)."""
        self.seq += 1
        n = inflow.numel()
        if self.device == "cuda":
            args = [{"$input": n}, capacity]
        else:
            args = [sandbox.tensor_arg_cpu(inflow), capacity]
        reply = self.child.request({"op": "call", "seq": self.seq, "function": "reservoir_levels", "args": args,
                                    "label": "reservoir_levels on %s" % label}, timeout, "running it on %s" % label)
        if reply.get("seq") != self.seq:
            raise sandbox.SolutionError("The solution's process broke the scorer's protocol (an answer to another "
                                        "call). Your code must not write to the scorer's file descriptors.")
        if self.device == "cuda":
            self.torch.cuda.current_stream().wait_event(self.event)  # what the child queued on its stream
        return self.result(reply, n, label)

    def result(self, reply, n, label):
        torch = self.torch
        kind = reply.get("kind")
        if kind != "tensor":
            raise WrongResult("Wrong result on %s: reservoir_levels returned %s, not a torch.Tensor." % (label, kind))
        if reply.get("dtype") != "torch.int32":
            raise WrongResult("Wrong result on %s: the result has dtype %s; it must be torch.int32."
                              % (label, reply.get("dtype")))
        if reply.get("shape") != [n]:
            raise WrongResult("Wrong result on %s: the result has shape %s; it must be (%d,), like the input."
                              % (label, tuple(reply.get("shape") or ()), n))
        if self.device == "cpu":
            if "data" not in reply:
                raise WrongResult("Wrong result on %s: the result is on %s; it must be on the CPU, like the input."
                                  % (label, reply.get("device")))
            out = sandbox.tensor_from_cpu_reply(torch, reply)
            if out is None or out.numel() != n:
                raise sandbox.SolutionError("The solution's process sent a malformed result on %s." % label)
            return out
        if not str(reply.get("device", "")).startswith("cuda"):
            raise WrongResult("Wrong result on %s: the result is on %s; it must be on the GPU, like the input."
                              % (label, reply.get("device")))
        if n == 0:
            return torch.empty(0, dtype=torch.int32, device="cuda")
        if reply.get("aliases_input") or reply.get("handle") == self.shared_handle:
            raise WrongResult("Wrong result on %s: reservoir_levels returned the input tensor (or a view of its "
                              "memory); it must return a new tensor and leave `inflow` as it is." % label)
        if reply.get("not_lendable"):
            raise WrongResult("Wrong result on %s: the result's memory cannot be shared with the scorer (%s). Return "
                              "a tensor allocated by PyTorch in your own process." % (label, reply["not_lendable"]))
        handle, offset = reply.get("handle"), reply.get("offset")
        if not isinstance(handle, str) or not isinstance(offset, int) or offset < 0 or offset % 4:
            raise sandbox.SolutionError("The solution's process sent a malformed result on %s." % label)
        if handle == self.shared_handle:
            raise WrongResult("Wrong result on %s: reservoir_levels returned the input tensor (or a view of its "
                              "memory); it must return a new tensor and leave `inflow` as it is." % label)
        try:
            base, size = self.driver.open(handle)
        except (RuntimeError, ValueError) as e:
            raise sandbox.SolutionError("The scorer could not map the result of %s (%s). Return a tensor allocated "
                                        "by PyTorch in the solution's own process." % (label, e))
        if size is not None and offset + 4 * n > size:
            raise sandbox.SolutionError("The solution's process described a result larger than its memory on %s."
                                        % label)
        key = (base + offset, n)
        if key not in self.wrapped:
            if len(self.wrapped) > 64:
                self.wrapped.clear()
            self.wrapped[key] = sandbox.wrap_device_pointer(torch, base + offset, n)
        return self.wrapped[key]


def check_cases(torch, harness, generator, device, max_length=None, log=print):
    """The correctness cases against the trusted implementation; raises WrongResult with the first problem."""
    cases = checker.correctness_cases()
    log("Checking your solution on %d inputs (fresh random values every run)." % len(cases))
    for label, length, kind, capacity in cases:
        if max_length is not None:
            length = min(length, max_length)
        inflow = checker.make_inflow(kind, length, generator, device)
        expected = checker.levels_trusted(inflow, capacity)
        if device == "cuda":
            harness.shared[:length].copy_(inflow)
            harness.gate.record()
            torch.cuda.synchronize()
        started = time.perf_counter()
        output = harness.call(inflow, capacity, label, CHECK_TIMEOUT_S)
        elapsed = time.perf_counter() - started
        if device == "cuda" and not torch.equal(harness.shared[:length], inflow):
            raise WrongResult("reservoir_levels changed its input on %s; it must leave `inflow` as it is." % label)
        problem = checker.describe_mismatch(output, expected, inflow, capacity)
        if problem:
            raise WrongResult("Wrong result on %s: %s" % (label, problem))
        log("  ok  %-58s %8.1f ms" % (label, elapsed * 1000))
        del inflow, expected, output
    if device == "cuda":
        torch.cuda.empty_cache()
    return len(cases)


class Clock:
    """One timed call as the parent sees it, in CUDA events on the parent's stream: from the moment the fresh
    input is in the lent buffer (the gate) to the moment the parent's check has read the whole result."""

    PAUSE_CYCLES = 2_000_000  # about 1 ms at the H100's clock: time for the child to queue the call's kernels

    def __init__(self, torch, shared):
        self.torch = torch
        self.shared = shared
        self.flush = torch.empty(FLUSH_BYTES // 4, dtype=torch.int32, device="cuda")
        self.errors = torch.zeros(1, dtype=torch.int32, device="cuda")
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)
        self.rng = random.SystemRandom()

    def once(self, harness, source, capacity, label, check_levels_of=None):
        """Times one call on source (a private copy of the parent's). Returns (ms, output)."""
        torch = self.torch
        self.errors.zero_()
        torch.cuda._sleep(self.PAUSE_CYCLES)
        self.shared.copy_(source)
        self.flush.zero_()  # the input is read from memory, not from the L2 cache
        harness.gate.record()
        self.start.record()
        output = harness.call(source, capacity, label, TIMED_TIMEOUT_S)  # the child's stream waits for the gate
        levels = output if check_levels_of is None else check_levels_of
        checker.launch_recurrence_check(source, levels, capacity, self.errors, self.rng.randrange(1 << 30))
        self.end.record()
        self.end.synchronize()
        return self.start.elapsed_time(self.end), output


def measure_split(torch, harness, clock, generator):
    """The same timed calls before the child has loaded any participant code (it answers with a buffer of its
    own; the parent checks a right result of its own). What this measures, the check and the switches
    between the processes, is the split's cost."""
    n, capacity = checker.FULL_SIZE, checker.FULL_CAPACITY
    inflow = checker.make_inflow("uniform_full", n, generator, "cuda")
    expected = checker.levels_trusted(inflow, capacity)
    scratch = torch.empty_like(inflow)
    times = []
    for i in range(BASELINE_WARMUP + BASELINE_REPS):
        torch.randint(-checker.FULL_SPREAD, checker.FULL_SPREAD + 1, (n,), generator=generator, out=scratch)
        ms, _ = clock.once(harness, inflow, capacity, "the split's own cost", check_levels_of=expected)
        if int(clock.errors.item()):
            raise RuntimeError("the scorer's own check failed on a right result; the scorer is broken")
        if i >= BASELINE_WARMUP:
            times.append(ms)
    del inflow, expected, scratch
    return times


def time_solution(torch, harness, clock, generator, log=print, spread=checker.FULL_SPREAD,
                  capacity=checker.FULL_CAPACITY):
    """Median of the parent's times over many calls, each on fresh inputs and each checked exactly (inflows
    uniform in [-spread, spread] against `capacity`: the visible ones by default, the held-out ones for the
    hidden score)."""
    n = checker.FULL_SIZE
    inflow = torch.empty(n, dtype=torch.int32, device="cuda")

    def one(label):
        torch.randint(-spread, spread + 1, (n,), generator=generator, out=inflow)
        ms, output = clock.once(harness, inflow, capacity, label)
        wrong = int(clock.errors.item())
        if wrong:
            expected = checker.levels_trusted(inflow, capacity)
            problem = checker.describe_mismatch(output, expected, inflow, capacity)
            raise WrongResult("Wrong result in %s (fresh inputs every call; the check reads the whole result "
                              "as soon as the function returns): %s" % (label, problem or "%d levels wrong" % wrong))
        if not torch.equal(harness.shared, inflow):
            raise WrongResult("reservoir_levels changed its input in %s; it must leave `inflow` as it is." % label)
        return ms, output

    started = time.perf_counter()
    for i in range(WARMUP_CALLS):  # compilation, caches, clocks
        one("warm-up call %d" % (i + 1))
    estimate = (time.perf_counter() - started) / WARMUP_CALLS
    reps = max(MIN_REPS, min(MAX_REPS, int(TIMING_BUDGET_S / max(estimate, 1e-6))))
    log("Timing %d calls on %s elements, fresh random inputs every call, each result checked in full."
        % (reps, format(n, ",")))
    kept = set(random.SystemRandom().sample(range(reps), min(KEPT_CALLS, reps)))
    snapshots = {}
    times = []
    for i in range(reps):
        ms, output = one("timed call %d" % (i + 1))
        times.append(ms)
        if i in kept:
            snapshots[harness.seq] = (i, output.clone())
            harness.child.request({"op": "keep", "seq": harness.seq}, 30, "keeping a result")
        del output
    for seq, (i, snapshot) in snapshots.items():
        reply = harness.child.request({"op": "describe", "seq": seq}, 30, "reading a kept result again")
        later = harness.result(reply, n, "timed call %d, read again at the end" % (i + 1))
        if not torch.equal(later, snapshot):
            raise WrongResult("The result of timed call %d changed after reservoir_levels returned it. Return a new "
                              "tensor that nothing writes to afterwards (not a buffer reused by later calls)." % (i + 1))
    harness.child.request({"op": "release"}, 30, "releasing kept results")
    return times


class ResultFile:
    """The result file is written once, by this process, at the end; anything found there earlier means that
    something else wrote it, and the run gets no score."""

    def __init__(self, path):
        self.path = path
        self.written = False

    def report(self, score, message, hidden=(None, "No hidden score: the visible run gave none.")):
        """The visible score and message, and the hidden ones (scoring.visible "validation"), never printed."""
        if self.written:
            return
        hidden_score, hidden_message = hidden
        if os.path.lexists(self.path):
            score = hidden_score = None
            message = hidden_message = ("No score: something other than the scorer wrote the result file during the "
                                        "run (%s). The scorer writes it once, at the end." % self.path)
        temporary = "%s.%d.tmp" % (self.path, os.getpid())
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump({"score": score, "message": message, "hidden_score": hidden_score,
                       "hidden_message": hidden_message}, f)
        os.replace(temporary, self.path)
        self.written = True
        print(message, flush=True)


def private_caches():
    """Compiler caches of this run's own: a cache another user could write would let them change the
    checker's compiled kernel."""
    folder = tempfile.mkdtemp(prefix="rebench-scorer-")
    for key, sub in (("TRITON_CACHE_DIR", "triton"), ("TORCHINDUCTOR_CACHE_DIR", "inductor"),
                     ("XDG_CACHE_HOME", "cache")):
        os.makedirs(os.path.join(folder, sub))
        os.environ[key] = os.path.join(folder, sub)
    return folder


def main(argv):
    folder = os.environ["REBENCH_SOLUTION_DIR"]
    result = ResultFile(os.environ["REBENCH_RESULT_FILE"])
    caches = private_caches()
    for problem in sandbox.protect_parent():
        print("warning: %s" % problem, flush=True)
    hidden = (None, "No hidden score: the visible run gave none.")
    try:
        if argv == ["--cpu-check"]:
            score, message = cpu_check(folder)
        else:
            score, message, hidden = run(folder)
    except sandbox.SetupError as e:
        score, message = None, "The scorer is not set up right on this machine: %s" % e
    except Exception as e:
        traceback.print_exc(file=sys.stdout)
        score, message = None, "The scorer itself failed (%s: %s); please report it." % (type(e).__name__, e)
    finally:
        sandbox.kill_descendants()
        shutil.rmtree(caches, ignore_errors=True)
    result.report(score, message, hidden)


def cpu_check(folder):
    """The same split and the same correctness cases on CPU tensors (shorter inputs), for machines without a
    GPU (the project's tests). Never a score: nothing is timed."""
    import torch

    plan = sandbox.launch_plan(folder)
    print("Your solution runs in a process of its own, as the user %s." % plan["user"], flush=True)
    generator = torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little"))
    child = sandbox.SolutionProcess(folder, "cpu", plan=plan)
    try:
        child.start()
        child.request({"op": "load", "function": "reservoir_levels"}, 120, "loading solution.py")
        checked = check_cases(torch, Harness(torch, child, "cpu"), generator, "cpu", max_length=CPU_MAX_LENGTH,
                              log=lambda line: print(line, flush=True))
    except (WrongResult, sandbox.SolutionError) as e:
        return None, str(e)
    finally:
        child.close()
    return None, "CPU check: correct on %d inputs of up to %d elements (nothing timed, so no score)." % (
        checked, CPU_MAX_LENGTH)


def held_out():
    """The held-out inputs' spread and capacity (protected/held_out.json, which the participant cannot read), or
    None where the environment was installed without it."""
    try:
        with open(os.path.join("protected", "held_out.json"), encoding="utf-8") as f:
            spec = json.load(f)
        return int(spec["spread"]), int(spec["capacity"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run(folder):
    """(score, message, (hidden score, hidden message)): the visible timing, then the same on held-out inputs."""
    no_hidden = (None, "No hidden score: the visible run gave none.")
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed for %s; this environment needs it." % sys.executable, no_hidden
    if not torch.cuda.is_available():
        return None, ("No CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False). "
                      "This environment is timed on an NVIDIA H100; check nvidia-smi on the VM."), no_hidden
    gpu = torch.cuda.get_device_name(0)
    print("GPU: %s; PyTorch %s" % (gpu, torch.__version__), flush=True)
    plan = sandbox.launch_plan(folder)
    print("Your solution runs in a process of its own, as the user %s." % plan["user"], flush=True)
    torch.zeros(1, device="cuda")
    driver = sandbox.CudaDriver()
    pointer = driver.alloc(4 * checker.FULL_SIZE)  # an allocation of its own: the child sees nothing else
    shared = sandbox.wrap_device_pointer(torch, pointer, checker.FULL_SIZE)
    generator = torch.Generator(device="cuda")
    generator.manual_seed(int.from_bytes(os.urandom(8), "little"))
    clock = Clock(torch, shared)
    child = sandbox.SolutionProcess(folder, "cuda", plan=plan)
    oom = getattr(torch.cuda, "OutOfMemoryError", RuntimeError)
    try:
        child.start()
        harness = Harness(torch, child, "cuda", shared)
        harness.lend_input(driver)
        base_ms = statistics.median(measure_split(torch, harness, clock, generator))
        print("The split's own cost on the GPU (the scorer's full check of the result, the switches between the "
              "two processes), measured before your code is loaded: median %.4f ms; it is taken off every timed "
              "call." % base_ms, flush=True)
        print("Loading %s" % os.path.join(folder, "solution.py"), flush=True)
        child.request({"op": "load", "function": "reservoir_levels"}, 120, "loading solution.py")
        checked = check_cases(torch, harness, generator, "cuda", log=lambda line: print(line, flush=True))
        times = time_solution(torch, harness, clock, generator, log=lambda line: print(line, flush=True))
        hidden_times, hidden_problem = held_out_times(torch, harness, clock, generator)
    except (WrongResult, sandbox.SolutionError) as e:
        return None, str(e), no_hidden
    except oom as e:
        return None, "The GPU ran out of memory in the scorer: %s" % str(e).split("\n")[0], no_hidden
    finally:
        child.close()
    total = statistics.median(times)
    median = total - base_ms
    if median < FLOOR_MS:
        return None, ("No score: the measured time, %.4f ms, is below %.2f ms, less than the GPU needs to read the "
                      "input and write the result once. The scorer cannot tell what happened; please report it."
                      % (median, FLOOR_MS)), no_hidden
    hidden = (None, "No hidden score: %s" % hidden_problem)
    if hidden_times:
        hidden_median = statistics.median(hidden_times) - base_ms
        if hidden_median >= FLOOR_MS:
            hidden = (math.log(hidden_median), "Held-out inputs: correct on all %d timed calls; median %.4f ms per "
                      "call (less %.4f ms for the split); score ln(%.4f) = %.4f."
                      % (len(hidden_times), hidden_median, base_ms, hidden_median, math.log(hidden_median)))
        else:
            hidden = (None, "No hidden score: the held-out median, %.4f ms, is below %.2f ms." % (hidden_median,
                                                                                                FLOOR_MS))
    q = statistics.quantiles(times, n=10) if len(times) >= 10 else [min(times), max(times)]
    note = "" if "H100" in gpu else " Timed on %s; the calibration of this environment is for an H100." % gpu
    return math.log(median), (
        "Correct on %d inputs and on all %d timed calls. Median %.4f ms per call (%.4f ms as measured, 10%%-90%%: "
        "%.4f-%.4f, less %.4f ms for the split itself); score ln(%.4f) = %.4f.%s"
        % (checked, len(times), median, total, q[0], q[-1], base_ms, median, math.log(median), note)), hidden


def held_out_times(torch, harness, clock, generator):
    """(times, None) of the same timing on the held-out inputs, or ([], why not). A wrong result there is no hidden
    score, never a visible one: the participant learns nothing of the held-out inputs from this run."""
    spec = held_out()
    if spec is None:
        return [], "protected/held_out.json is missing or unreadable on this machine."
    print("Timing the held-out inputs (their score is kept for the organiser).", flush=True)
    try:
        return time_solution(torch, harness, clock, generator, log=lambda line: None, spread=spec[0],
                             capacity=spec[1]), None
    except (WrongResult, sandbox.SolutionError):
        return [], "the solution failed on a held-out input."
    except Exception as e:  # the visible score stands whatever happens here; the organiser reads why
        return [], "timing the held-out inputs failed: %s: %s" % (type(e).__name__, str(e).split("\n")[0][:300])


if __name__ == "__main__":
    main(sys.argv[1:])

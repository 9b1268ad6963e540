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
- the child records an interprocess CUDA event, "started", on its stream once it is past the gate, calls
  the function, records its "done" event and answers at once. The parent's stream waits for the started
  event, not the done one, then reads the whole result and checks every level exactly (one pass over
  input and result); the clock stops when that check is done. The GPU runs one process at a time, so
  this check runs when the child's process has nothing left to run, on any stream, or its time slice
  ends: the same moment for every solution, whatever events it records or forges. A result found
  unfinished then is checked again after the done event (end_of_call), and is no score if still wrong.
  Work still running when the function returns, on any stream or in any process, is therefore either
  counted or makes the result wrong (no score);
- the same calls made before the child loads the participant's code (it then returns a buffer of its
  own) measure what the split itself costs on the GPU: the check, and the GPU's switches between the
  two processes. The mean of their middle half is taken off; the timed figure is the mean of the middle
  half of the timed calls (interquartile_mean).
"""
import json
import math
import os
import random
import shutil
import statistics
import sys
import time
import traceback

import checker
import sandbox
import scorer_files

TIMING_BUDGET_S = 3.0  # wall time of the timed loop; the repetitions follow from the solution's speed
MIN_REPS, MAX_REPS = 20, 2000
WARMUP_CALLS = 3
BASELINE_REPS, BASELINE_WARMUP = 300, 20  # calls that measure the split's own cost
SPLIT_BUSY_CYCLES = 200_000  # about 0.1 ms at the H100's clock: the placeholder's work in those calls
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
        self.event = None  # the child's done event
        self.started = None  # the child's started event
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
        # Taken from the child before the solution was loaded, so they are the child's own events.
        device = self.torch.cuda.current_device()
        self.event = self.torch.cuda.Event.from_ipc_handle(device, bytes.fromhex(self.child.info["event"]))
        self.started = self.torch.cuda.Event.from_ipc_handle(device, bytes.fromhex(self.child.info["started"]))

    def call(self, inflow, capacity, label, timeout, wait_done=True, busy_cycles=0):
        """Calls reservoir_levels; returns the result as a tensor the parent reads (a mapping or a copy).
        With wait_done (GPU), the parent's stream then waits for the child's done event; the clock waits
        for the child's started event instead (Clock.once). busy_cycles: before the solution is loaded,
        the child's placeholder keeps the GPU busy that long (measure_split)."""
        self.seq += 1
        n = inflow.numel()
        if self.device == "cuda":
            args = [{"$input": n}, capacity]
        else:
            args = [sandbox.tensor_arg_cpu(inflow), capacity]
        message = {"op": "call", "seq": self.seq, "function": "reservoir_levels", "args": args,
                   "label": "reservoir_levels on %s" % label}
        if busy_cycles:
            message["busy_cycles"] = busy_cycles
        reply = self.child.request(message, timeout, "running it on %s" % label)
        if reply.get("seq") != self.seq:
            raise sandbox.SolutionError("The solution's process broke the scorer's protocol (an answer to another "
                                        "call). Your code must not write to the scorer's file descriptors.")
        if self.device == "cuda" and wait_done:
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


def end_of_call(first_wrong, second_wrong, first_ms, second_ms, check_ms):
    """Which end of a timed call counts, from the two looks at its result (see Clock.once).

    The first look is the parent's check at the first moment the GPU is the parent's again after the child
    started the call; if it passed, the result was complete then, and the call ends there, the same moment
    for every solution however it queued its work. If it failed, the result was not complete yet (the
    solution's work left the GPU to the parent before it finished, as work longer than the GPU's time
    slice does): the second look, after the child's done event, decides, and its time, less the first
    look's usual duration (check_ms, measured by the split before any participant code was loaded),
    counts. Returns (ms, late); ms is None when the second look found the result wrong too.
    """
    if first_wrong == 0:
        return first_ms, False
    if second_wrong == 0:
        return second_ms - check_ms, True
    return None, True


def interquartile_mean(values):
    """The mean of the middle half of the values (a quarter left out at each end): as robust as the median
    against the few calls that something else on the machine slowed, and it moves smoothly when the calls'
    times fall in two close groups, where the median jumps between them from run to run."""
    ordered = sorted(values)
    cut = len(ordered) // 4
    middle = ordered[cut:len(ordered) - cut] if len(ordered) > 2 * cut else ordered
    return sum(middle) / len(middle)


class Clock:
    """One timed call as the parent sees it, in CUDA events on the parent's stream: from the moment the fresh
    input is in the lent buffer (the gate) to the moment the parent's check has read the whole result."""

    PAUSE_CYCLES = 2_000_000  # about 1 ms at the H100's clock: time for the child to queue the call's kernels

    def __init__(self, torch, shared):
        self.torch = torch
        self.shared = shared
        self.flush = torch.empty(FLUSH_BYTES // 4, dtype=torch.int32, device="cuda")
        self.errors = torch.zeros(2, dtype=torch.int32, device="cuda")  # wrong levels seen by each look
        self.always = torch.ones(1, dtype=torch.int32, device="cuda")
        self.start = torch.cuda.Event(enable_timing=True)
        self.first_start = torch.cuda.Event(enable_timing=True)
        self.first_end = torch.cuda.Event(enable_timing=True)
        self.second_end = torch.cuda.Event(enable_timing=True)
        self.busy_start = torch.cuda.Event(enable_timing=True)
        self.busy_end = torch.cuda.Event(enable_timing=True)
        self.rng = random.SystemRandom()
        self.check_ms = 0.0  # the first look's usual duration, set from the split's calls

    def busy_ms(self, cycles):
        """How long the GPU's spin of `cycles` takes here and now, on the parent's own stream (outside any
        timed call)."""
        self.busy_start.record()
        self.torch.cuda._sleep(cycles)
        self.busy_end.record()
        self.busy_end.synchronize()
        return self.busy_start.elapsed_time(self.busy_end)

    def once(self, harness, source, capacity, label, check_levels_of=None, busy_cycles=0):
        """Times one call on source (a private copy of the parent's). Returns (ms or None when the result is
        wrong, output, late, first look's own duration in ms).

        The parent's stream waits for the child's started event (recorded once the child is past the gate,
        before the solution runs), then checks the result: under the GPU's time slicing between processes
        this check runs at the first moment the GPU is the parent's again, which is when the child's
        process has nothing left to run on any stream, or its time slice ends. No event the child records
        at the end of the call is waited for first, so no solution pays, or skips, the delay of seeing such
        an event from another process. Then, only where that look found the result unfinished, the parent's
        stream waits for the child's done event and checks again (end_of_call).
        """
        torch = self.torch
        self.errors.zero_()
        torch.cuda._sleep(self.PAUSE_CYCLES)
        self.shared.copy_(source)
        self.flush.zero_()  # the input is read from memory, not from the L2 cache
        harness.gate.record()
        self.start.record()
        output = harness.call(source, capacity, label, TIMED_TIMEOUT_S, wait_done=False, busy_cycles=busy_cycles)
        levels = output if check_levels_of is None else check_levels_of
        stream = torch.cuda.current_stream()
        stream.wait_event(harness.started)
        self.first_start.record()
        checker.launch_recurrence_check(source, levels, capacity, self.errors[0:1], self.rng.randrange(1 << 30),
                                        only_if=self.always)
        self.first_end.record()
        stream.wait_event(harness.event)
        checker.launch_recurrence_check(source, levels, capacity, self.errors[1:2], self.rng.randrange(1 << 30),
                                        only_if=self.errors[0:1])
        self.second_end.record()
        self.second_end.synchronize()
        first_wrong, second_wrong = (int(v) for v in self.errors.tolist())
        ms, late = end_of_call(first_wrong, second_wrong, self.start.elapsed_time(self.first_end),
                               self.start.elapsed_time(self.second_end), self.check_ms)
        return ms, output, late, self.first_start.elapsed_time(self.first_end)


def measure_split(torch, harness, clock, generator):
    """The same timed calls before the child has loaded any participant code (it answers with a buffer of its
    own; the parent checks a right result of its own). What this measures, the check and the switches
    between the processes, is the split's cost. Returns (times, the first look's durations).

    The child's placeholder keeps the GPU busy for SPLIT_BUSY_CYCLES first, as a solution's kernels do, and
    the same spin timed on the parent's stream is taken off each call: while the child's process works,
    the parent's stream sees the child's started event, so what that takes is hidden in the solution's
    work and is no part of the split's cost. A placeholder with no work would add it."""
    n, capacity = checker.FULL_SIZE, checker.FULL_CAPACITY
    inflow = checker.make_inflow("uniform_full", n, generator, "cuda")
    expected = checker.levels_trusted(inflow, capacity)
    scratch = torch.empty_like(inflow)
    times, checks = [], []
    for i in range(BASELINE_WARMUP + BASELINE_REPS):
        torch.randint(-checker.FULL_SPREAD, checker.FULL_SPREAD + 1, (n,), generator=generator, out=scratch)
        busy = clock.busy_ms(SPLIT_BUSY_CYCLES)
        ms, _, late, check_ms = clock.once(harness, inflow, capacity, "the split's own cost",
                                           check_levels_of=expected, busy_cycles=SPLIT_BUSY_CYCLES)
        if ms is None or late:
            raise RuntimeError("the scorer's own check failed on a right result; the scorer is broken")
        if i >= BASELINE_WARMUP:
            times.append(ms - busy)
            checks.append(check_ms)
    del inflow, expected, scratch
    return times, checks


def time_solution(torch, harness, clock, generator, log=print, spread=checker.FULL_SPREAD,
                  capacity=checker.FULL_CAPACITY):
    """The parent's times of many calls, each on fresh inputs and each checked exactly (inflows uniform in
    [-spread, spread] against `capacity`: the visible ones by default, the held-out ones for the hidden score);
    and how many of them were complete only at the solution's done event."""
    n = checker.FULL_SIZE
    inflow = torch.empty(n, dtype=torch.int32, device="cuda")
    late_calls = [0]

    def one(label):
        torch.randint(-spread, spread + 1, (n,), generator=generator, out=inflow)
        ms, output, late, _ = clock.once(harness, inflow, capacity, label)
        if ms is None:
            expected = checker.levels_trusted(inflow, capacity)
            problem = checker.describe_mismatch(output, expected, inflow, capacity)
            raise WrongResult("Wrong result in %s (fresh inputs every call; the check reads the whole result "
                              "as soon as the function returns): %s" % (label, problem or "levels wrong"))
        if not torch.equal(harness.shared, inflow):
            raise WrongResult("reservoir_levels changed its input in %s; it must leave `inflow` as it is." % label)
        late_calls[0] += late
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
    late_calls[0] = 0
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
    return times, late_calls[0]


def main(argv):
    folder = os.environ["REBENCH_SOLUTION_DIR"]
    result = scorer_files.ResultFile(os.environ["REBENCH_RESULT_FILE"])
    caches = scorer_files.private_caches()
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
        split_times, split_checks = measure_split(torch, harness, clock, generator)
        base_ms = interquartile_mean(split_times)
        clock.check_ms = statistics.median(split_checks)
        print("The split's own cost on the GPU (the scorer's full check of the result, the switches between the "
              "two processes), measured before your code is loaded: %.4f ms (mean of the middle half of %d calls; "
              "median %.4f; the check alone %.4f); it is taken off every timed call."
              % (base_ms, len(split_times), statistics.median(split_times), clock.check_ms), flush=True)
        print("Loading %s" % os.path.join(folder, "solution.py"), flush=True)
        child.request({"op": "load", "function": "reservoir_levels"}, 120, "loading solution.py")
        checked = check_cases(torch, harness, generator, "cuda", log=lambda line: print(line, flush=True))
        times, late = time_solution(torch, harness, clock, generator, log=lambda line: print(line, flush=True))
        hidden_times, hidden_problem = held_out_times(torch, harness, clock, generator)
    except (WrongResult, sandbox.SolutionError) as e:
        return None, str(e), no_hidden
    except oom as e:
        return None, "The GPU ran out of memory in the scorer: %s" % str(e).split("\n")[0], no_hidden
    finally:
        child.close()
    score, message = summarise(times, late, base_ms, checked, gpu)
    if score is None:
        return score, message, no_hidden
    return score, message, summarise_hidden(hidden_times, hidden_problem, base_ms)


def summarise(times, late, base_ms, checked, gpu):
    """(score, message) from the timed calls' times (ms as measured) and the split's cost."""
    total = interquartile_mean(times)
    typical = total - base_ms
    if typical < FLOOR_MS:
        return None, ("No score: the measured time, %.4f ms, is below %.2f ms, less than the GPU needs to read the "
                      "input and write the result once. The scorer cannot tell what happened; please report it."
                      % (typical, FLOOR_MS))
    q = statistics.quantiles(times, n=10) if len(times) >= 10 else [min(times), max(times)]
    median = statistics.median(times) - base_ms
    late_note = "" if not late else (
        " In %d of them the result was unfinished when the scorer first had the GPU back (work longer than the "
        "GPU's time slice, or a pause in it), and the call was timed to the end of your call's work on its stream "
        "instead." % late)
    note = "" if "H100" in gpu else " Timed on %s; the calibration of this environment is for an H100." % gpu
    return math.log(typical), (
        "Correct on %d inputs and on all %d timed calls.%s %.4f ms per call, the mean of the middle half of the "
        "calls (%.4f ms as measured, 10%%-90%%: %.4f-%.4f, less %.4f ms for the split itself; median %.4f ms); "
        "score ln(%.4f) = %.4f.%s"
        % (checked, len(times), late_note, typical, total, q[0], q[-1], base_ms, median, typical,
           math.log(typical), note))


def held_out_times(torch, harness, clock, generator):
    """(times, None) of the same timing on the held-out inputs, or ([], why not). A wrong result there is no hidden
    score, never a visible one: the participant learns nothing of the held-out inputs from this run."""
    spec = held_out()
    if spec is None:
        return [], "protected/held_out.json is missing or unreadable on this machine."
    print("Timing the held-out inputs (their score is kept for the organiser).", flush=True)
    try:
        times, _ = time_solution(torch, harness, clock, generator, log=lambda line: None, spread=spec[0],
                                 capacity=spec[1])
        return times, None
    except (WrongResult, sandbox.SolutionError):
        return [], "the solution failed on a held-out input."
    except Exception as e:  # the visible score stands whatever happens here; the organiser reads why
        return [], "timing the held-out inputs failed: %s: %s" % (type(e).__name__, str(e).split("\n")[0][:300])


def summarise_hidden(hidden_times, hidden_problem, base_ms):
    """(hidden score, hidden message): the held-out calls' figure, the same statistic as the visible one's."""
    if not hidden_times:
        return None, "No hidden score: %s" % hidden_problem
    typical = interquartile_mean(hidden_times) - base_ms
    if typical < FLOOR_MS:
        return None, "No hidden score: the held-out time, %.4f ms, is below %.2f ms." % (typical, FLOOR_MS)
    return math.log(typical), ("Held-out inputs: correct on all %d timed calls; %.4f ms per call, the mean of the "
                               "middle half of the calls (less %.4f ms for the split); score ln(%.4f) = %.4f."
                               % (len(hidden_times), typical, base_ms, typical, math.log(typical)))


if __name__ == "__main__":
    main(sys.argv[1:])

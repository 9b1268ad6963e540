"""Scorer for reservoir-scan: checks reservoir_levels against the trusted implementation, then times it.

Writes {"score": ln(median milliseconds) or null, "message": ...} to REBENCH_RESULT_FILE.
Every run draws fresh random inputs, so results cannot be remembered from an earlier run.
"""
import importlib.util
import json
import math
import os
import statistics
import sys
import time
import traceback

import checker

TIMING_BUDGET_S = 4.0  # timed work per scoring run; the repetitions follow from the solution's speed
MIN_REPS, MAX_REPS = 20, 400
FLUSH_BYTES = 256 * 2**20  # written between timed calls: five times the H100's 50 MB L2


def report(score, message):
    with open(os.environ["REBENCH_RESULT_FILE"], "w", encoding="utf-8") as f:
        json.dump({"score": score, "message": message}, f)
    print(message, flush=True)


def load_solution(folder):
    path = os.path.join(folder, "solution.py")
    if not os.path.isfile(path):
        raise LookupError("There is no solution.py in %s." % folder)
    sys.path.insert(0, folder)  # lets the solution import its own modules
    spec = importlib.util.spec_from_file_location("participant_solution", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function = getattr(module, "reservoir_levels", None)
    if not callable(function):
        raise LookupError("solution.py does not define a function reservoir_levels(inflow, capacity).")
    return function


class WrongResult(Exception):
    pass


def checked_call(torch, function, inflow, capacity, expected, label):
    """Calls the solution once and raises WrongResult with a readable reason if anything is off."""
    untouched = inflow.clone()
    try:
        output = function(inflow, capacity)
        torch.cuda.synchronize()
    except Exception as e:  # the participant's code: any failure is theirs to see
        traceback.print_exc(file=sys.stdout)
        raise WrongResult("reservoir_levels raised %s on %s: %s" % (type(e).__name__, label, e))
    if not torch.equal(inflow, untouched):
        raise WrongResult("reservoir_levels changed its input on %s; it must leave `inflow` as it is." % label)
    problem = checker.describe_mismatch(output, expected, inflow, capacity)
    if problem:
        raise WrongResult("Wrong result on %s: %s" % (label, problem))
    return output


def check_all(torch, function, generator):
    cases = checker.correctness_cases()
    print("Checking your solution on %d inputs (fresh random values every run)." % len(cases), flush=True)
    for label, length, kind, capacity in cases:
        inflow = checker.make_inflow(kind, length, generator, "cuda")
        expected = checker.levels_trusted(inflow, capacity)
        started = time.perf_counter()
        checked_call(torch, function, inflow, capacity, expected, label)
        print("  ok  %-58s %8.1f ms" % (label, (time.perf_counter() - started) * 1000), flush=True)
        del inflow, expected
    torch.cuda.empty_cache()
    return len(cases)


def time_solution(torch, function, generator):
    """Median of CUDA-event times over many calls, alternating two full-size inputs, L2 flushed before each."""
    capacity = checker.FULL_CAPACITY
    inputs = [checker.make_inflow("uniform_full", checker.FULL_SIZE, generator, "cuda") for _ in range(2)]
    expected = [checker.levels_trusted(x, capacity) for x in inputs]
    flush = torch.empty(FLUSH_BYTES // 4, dtype=torch.int32, device="cuda")
    for i in range(3):  # warm-up: compilation, caches, clocks
        function(inputs[i % 2], capacity)
    torch.cuda.synchronize()
    started = time.perf_counter()
    function(inputs[1], capacity)
    torch.cuda.synchronize()
    estimate = time.perf_counter() - started
    reps = max(MIN_REPS, min(MAX_REPS, int(TIMING_BUDGET_S / max(estimate, 1e-6))))
    print("Timing %d calls on %s elements (median of CUDA event times; L2 flushed before each call)."
          % (reps, format(checker.FULL_SIZE, ",")), flush=True)
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    kept = {}
    for i in range(reps):
        flush.zero_()  # queued ahead of the call, so the launch itself is not what gets timed
        starts[i].record()
        output = function(inputs[i % 2], capacity)
        ends[i].record()
        if i in (0, reps - 1):
            kept[i] = output
        del output
    torch.cuda.synchronize()
    # The timed calls must be right too: the first and the last are compared.
    for i, output in kept.items():
        problem = checker.describe_mismatch(output, expected[i % 2], inputs[i % 2], capacity)
        if problem:
            raise WrongResult("Wrong result in timed call %d: %s" % (i + 1, problem))
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


def main():
    folder = os.environ["REBENCH_SOLUTION_DIR"]
    try:
        import torch
    except ImportError:
        report(None, "PyTorch is not installed for %s; this environment needs it." % sys.executable)
        return
    if not torch.cuda.is_available():
        report(None, "No CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False). "
                     "This environment is timed on an NVIDIA H100; check nvidia-smi on the VM.")
        return
    gpu = torch.cuda.get_device_name(0)
    print("GPU: %s; PyTorch %s" % (gpu, torch.__version__), flush=True)
    print("Loading %s" % os.path.join(folder, "solution.py"), flush=True)
    try:
        function = load_solution(folder)
    except Exception as e:
        traceback.print_exc(file=sys.stdout)
        report(None, "Could not load your solution: %s" % e)
        return
    generator = torch.Generator(device="cuda")
    generator.manual_seed(int.from_bytes(os.urandom(8), "little"))
    try:
        checked = check_all(torch, function, generator)
        times = time_solution(torch, function, generator)
    except WrongResult as e:
        report(None, str(e))
        return
    except torch.cuda.OutOfMemoryError as e:
        report(None, "The GPU ran out of memory: %s" % str(e).split("\n")[0])
        return
    median = statistics.median(times)
    q = statistics.quantiles(times, n=10) if len(times) >= 10 else [min(times), max(times)]
    note = "" if "H100" in gpu else " Timed on %s; the calibration of this environment is for an H100." % gpu
    report(math.log(median),
           "Correct on %d inputs. Median %.4f ms over %d calls (10%%-90%%: %.4f-%.4f ms); score ln(%.4f) = %.4f.%s"
           % (checked, median, len(times), q[0], q[-1], median, math.log(median), note))


if __name__ == "__main__":
    main()

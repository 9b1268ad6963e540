"""Scorer for demo-fast-function: checks count_inversions, then times it.

Writes {"score": ln(median milliseconds) or null, "message": ...} to REBENCH_RESULT_FILE.
"""
import importlib.util
import json
import math
import os
import random
import statistics
import sys
import time
import traceback

TIMED_LENGTH = 6000
TIMED_RUNS = 3


def report(score, message):
    with open(os.environ["REBENCH_RESULT_FILE"], "w", encoding="utf-8") as f:
        json.dump({"score": score, "message": message}, f)
    print(message, flush=True)


def expected_count(values):
    """A plain, obviously correct count to check answers against (slow on purpose: it is only a check)."""
    count = 0
    for i, a in enumerate(values):
        for b in values[i + 1:]:
            if a > b:
                count += 1
    return count


def load_solution(folder):
    path = os.path.join(folder, "solution.py")
    if not os.path.isfile(path):
        raise LookupError("There is no solution.py in %s." % folder)
    sys.path.insert(0, folder)  # lets the solution import its own helper modules
    spec = importlib.util.spec_from_file_location("participant_solution", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function = getattr(module, "count_inversions", None)
    if not callable(function):
        raise LookupError("solution.py does not define a function count_inversions(values).")
    return function


def check_inputs(rng):
    fixed = [[], [7], [1, 2], [2, 1], [1, 2, 3, 4], [4, 3, 2, 1], [2, 2, 2], [3, 1, 2, 1, 3],
             [-5, 10**12, 0, -(10**12), 7]]
    generated = [[rng.randrange(-50, 50) for _ in range(rng.randrange(1, 300))] for _ in range(12)]
    return fixed + generated


def call_checked(function, values, label):
    """Runs the solution on a copy of values; returns (answer, seconds) or raises ValueError if it is wrong."""
    given = list(values)
    started = time.perf_counter()
    answer = function(given)
    seconds = time.perf_counter() - started
    if given != values:
        raise ValueError("count_inversions modified its argument (%s)." % label)
    want = expected_count(values) if label != "timed input" else None
    if want is not None and answer != want:
        shown = values if len(values) <= 10 else "a list of %d numbers" % len(values)
        raise ValueError("Wrong answer for %s %s: expected %d, got %r." % (label, shown, want, answer))
    return answer, seconds


def main():
    folder = os.environ["REBENCH_SOLUTION_DIR"]
    rng = random.Random(os.urandom(16))  # fresh inputs every run, so answers cannot be memorised
    print("Loading %s" % os.path.join(folder, "solution.py"), flush=True)
    try:
        function = load_solution(folder)
    except Exception as e:
        report(None, "Could not load your solution: %s" % e)
        traceback.print_exc(file=sys.stdout)
        return
    inputs = check_inputs(rng)
    print("Checking correctness on %d inputs" % len(inputs), flush=True)
    try:
        for number, values in enumerate(inputs, 1):
            call_checked(function, values, "input %d" % number)
        timed = [rng.randrange(10**9) for _ in range(TIMED_LENGTH)]
        print("Computing the expected answer for the timed input (n = %d)" % TIMED_LENGTH, flush=True)
        want = expected_count(timed)
        times_ms = []
        for run in range(1, TIMED_RUNS + 1):
            answer, seconds = call_checked(function, timed, "timed input")
            if answer != want:
                raise ValueError("Wrong answer for the timed input (n = %d): expected %d, got %r."
                                 % (TIMED_LENGTH, want, answer))
            times_ms.append(seconds * 1000.0)
            print("Timed run %d of %d: %.3f ms" % (run, TIMED_RUNS, times_ms[-1]), flush=True)
    except Exception as e:
        if not isinstance(e, ValueError):
            traceback.print_exc(file=sys.stdout)
        report(None, "Incorrect solution, so no score: %s" % e)
        return
    median_ms = max(statistics.median(times_ms), 1e-3)
    score = math.log(median_ms)
    report(score, "Correct. Median time %.3f ms over %d runs (n = %d); score ln(ms) = %.4f (lower is better)."
           % (median_ms, TIMED_RUNS, TIMED_LENGTH, score))


if __name__ == "__main__":
    main()

"""Scorer for demo-fast-function: checks count_inversions, then times it.

Writes {"score": ln(median milliseconds) or null, "message": ...} to REBENCH_RESULT_FILE, and a hidden test
score (manifest: scoring.visible "validation"): the same timing on a held-out input the participant never sees
(protected/held_out.json: few distinct values in sorted runs, where the visible input is uniformly random),
as "hidden_score" and "hidden_message". The hidden values are never printed: the output is the participant's.
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


def report(score, message, hidden_score=None, hidden_message="No hidden score: the visible run failed."):
    with open(os.environ["REBENCH_RESULT_FILE"], "w", encoding="utf-8") as f:
        json.dump({"score": score, "message": message, "hidden_score": hidden_score, "hidden_message": hidden_message},
                  f)
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


def fast_count(values):
    """Inversions by merge sort: the trusted answer for the held-out input, which is too long for the plain count."""
    if len(values) < 2:
        return 0, list(values)
    middle = len(values) // 2
    left_count, left = fast_count(values[:middle])
    right_count, right = fast_count(values[middle:])
    merged, count, i, j = [], left_count + right_count, 0, 0
    while i < len(left) and j < len(right):
        if right[j] < left[i]:
            merged.append(right[j])
            count += len(left) - i
            j += 1
        else:
            merged.append(left[i])
            i += 1
    merged.extend(left[i:])
    merged.extend(right[j:])
    return count, merged


def held_out_input():
    """The held-out input from protected/held_out.json (the scorer's working folder is the environment's), or
    None where the environment was installed without it."""
    try:
        with open(os.path.join("protected", "held_out.json"), encoding="utf-8") as f:
            spec = json.load(f)
    except OSError:
        return None
    rng = random.Random(spec["seed"])
    values = []
    while len(values) < spec["length"]:
        run = sorted(rng.randrange(spec["distinct"]) for _ in range(spec["length"] // spec["sorted_runs"]))
        values.extend(run if rng.random() < 0.5 else run[::-1])
    return values[:spec["length"]]


def time_held_out(function):
    """(hidden score, hidden message): the visible timing, repeated on the held-out input."""
    values = held_out_input()
    if values is None:
        return None, "No hidden score: protected/held_out.json is missing from this installation."
    want, _ = fast_count(values)
    times_ms = []
    for _ in range(TIMED_RUNS):
        try:
            answer, seconds = call_checked(function, values, "timed input")
        except Exception as e:
            return None, "Held-out input: the solution failed (%s: %s)." % (type(e).__name__, e)
        if answer != want:
            return None, "Held-out input: wrong answer (expected %d, got %r)." % (want, answer)
        times_ms.append(seconds * 1000.0)
    median_ms = max(statistics.median(times_ms), 1e-3)
    return math.log(median_ms), "Held-out input: median %.3f ms over %d runs (n = %d); score ln(ms) = %.4f." % (
        median_ms, TIMED_RUNS, len(values), math.log(median_ms))


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
    print("Timing the held-out input (its score is kept for the organiser)", flush=True)
    hidden_score, hidden_message = time_held_out(function)
    report(score, "Correct. Median time %.3f ms over %d runs (n = %d); score ln(ms) = %.4f (lower is better)."
           % (median_ms, TIMED_RUNS, TIMED_LENGTH, score), hidden_score, hidden_message)


if __name__ == "__main__":
    main()

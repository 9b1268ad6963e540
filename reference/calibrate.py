"""Runs an environment's scorer several times on one solution and summarises the scores.

    python3 reference/calibrate.py ENVIRONMENT_DIR SOLUTION_DIR RUNS [--time-scores]

Prints one line per run and a JSON summary last. With --time-scores the scores are ln(milliseconds),
and the summary gives the coefficient of variation of the times as well.
"""
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time


def main(argv):
    env, solution, runs = os.path.abspath(argv[0]), os.path.abspath(argv[1]), int(argv[2])
    time_scores = "--time-scores" in argv
    scores, walls = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for i in range(runs):
            result = os.path.join(scratch, "result-%d.json" % i)
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "score.py"], cwd=env, capture_output=True, text=True,
                                  env=dict(os.environ, REBENCH_SOLUTION_DIR=solution, REBENCH_RESULT_FILE=result,
                                           REBENCH_JOB_ID="calibration-%d" % i, PYTHONUNBUFFERED="1"))
            wall = time.perf_counter() - started
            with open(result, encoding="utf-8") as f:
                outcome = json.load(f)
            if proc.returncode != 0 or outcome["score"] is None:
                print(proc.stdout[-3000:])
                raise SystemExit("run %d gave no score: %s" % (i + 1, outcome["message"]))
            scores.append(outcome["score"])
            walls.append(wall)
            print("run %2d  score %.4f  %.0f s  %s" % (i + 1, outcome["score"], wall, outcome["message"]), flush=True)
    summary = {"runs": runs, "median": statistics.median(scores), "min": min(scores), "max": max(scores),
               "scoring_wall_s_max": round(max(walls), 1)}
    if time_scores:
        ms = [math.exp(s) for s in scores]
        summary["time_ms_median"] = statistics.median(ms)
        summary["time_cv_percent"] = 100 * statistics.stdev(ms) / statistics.mean(ms)
    print(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1:])

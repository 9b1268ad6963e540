"""The end of a session beyond the score log's own runs: an answer submitted for end scoring (`submit`), and the
aggregate of the whole log recorded once the session ended (`aggregate`).

End scoring (manifest scoring.submit): the participant submits one answer. It is checked against the
organiser's pattern, recorded in the session record, written into the scoring job's folder (the scorer reads
$REBENCH_SUBMISSION_FILE), and scored once as the session's final entry (kind "submit"); the session ends
with the request. A scorer that reports {"score": null, "manual": true} leaves the answer to a person: the
entry says so ("manual"), which is neither 0 nor a failure.

The aggregate (manifest scoring.aggregate_command, e.g. a METR family's aggregate_scores): run once the
session has ended, over the counted entries of the log ($REBENCH_SCORE_LOG_FILE, a JSON list), as the
scorer runs (the scoring user in protected mode); its result is recorded in aggregate.json in the state
folder, once, for the organiser. It never replaces the counted score: an aggregate can turn "no score" into
a number.
"""

import json
import os
import re
import signal
import sys
import time

from .common import EXIT_CODES, MESSAGE_LIMIT, LazyModule, RunnerError, clean_text, iso, now_s
from .files import make_dirs, read_state_file, try_lock, write_json_atomic

shutil = LazyModule("shutil")
subprocess = LazyModule("subprocess")

AGGREGATE_FILE = "aggregate.json"
AGGREGATE_DIR = "aggregate"
AGGREGATE_JOB = "aggregate"


# ---------------------------------------------------------------------------------------------
# submit


def check_answer(answer, submit):
    """The answer as given, checked against the organiser's settings; raises RunnerError saying what to fix."""
    from .records import SUBMISSION_LIMIT

    if not isinstance(answer, str):
        raise RunnerError("usage", "The answer must be text.")
    if not answer.strip():
        raise RunnerError("usage", "The answer is empty; write an answer first.")
    if len(answer) > SUBMISSION_LIMIT:
        raise RunnerError("usage", "The answer is %d characters long; at most %d are taken." % (len(answer),
                                                                                              SUBMISSION_LIMIT))
    pattern = submit.get("pattern")
    if pattern is not None and re.fullmatch(pattern, answer) is None:
        raise RunnerError("usage", "The answer does not have the form the instructions ask for: %s. Nothing was "
                                   "submitted; the session goes on." % submit["format"].rstrip(". "))
    return answer


def _answer_from(args):
    raw = getattr(args, "request", None)
    if raw is None and getattr(args, "stdin", False):
        raw = sys.stdin.read()
    if raw is None:
        return getattr(args, "answer", None)
    try:
        obj = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as e:
        raise RunnerError("usage", "The request is not valid JSON (%s)." % e)
    if not isinstance(obj, dict) or set(obj) - {"answer"}:
        raise RunnerError("usage", "The request must be a JSON object {\"answer\": ...}.")
    return obj.get("answer")


def cmd_submit(ctx, args):
    """Submits the answer: checked, recorded, scored once as the final entry; the session ends."""
    from .commands import (refuse, refuse_if_clock_set_back, refuse_unless_running, run_job,
                           take_score_lock_or_busy)
    from .jobs import recover_stale_jobs, start_job
    from .participant import _append
    from .records import RecordError, fields_for
    from .session import load_session, save_session
    from .status import build_status, print_status, recover_result, session_clock

    submit = ctx.manifest["scoring"].get("submit")
    if not submit:
        refuse(ctx, "submit", "This environment is scored while you work (Score now), not from a submitted answer; "
                              "there is nothing to submit.")
    answer = check_answer(_answer_from(args), submit)
    if not getattr(args, "yes", False):
        raise RunnerError("usage", "Submitting is final: the answer is scored once and the session ends. Run again "
                                   "with --yes to confirm.")
    with ctx.session_lock():
        session = load_session(ctx)
        clock, back = session_clock(ctx, session)
        refuse_if_clock_set_back(ctx, back, "submit")
        refuse_unless_running(ctx, clock, "submit")
        lock_fd = take_score_lock_or_busy(ctx, "submit")
        try:
            recover_stale_jobs(ctx, session, recover_result)
            job = start_job(ctx, "submit", clock, lock_fd, run_job, submission=answer.encode("utf-8"))
            try:
                fields = fields_for("submission", {"answer": answer, "job_id": job["job_id"]})
            except RecordError as e:
                raise RunnerError("usage", e.message)
            _append(ctx, session, "submission", fields)
            session["ended_at"] = iso(clock.now)
            session["end_reason"] = "answer submitted"
            save_session(ctx, session)
            ctx.record_event("end", at=session["ended_at"], final_job=job["job_id"], submitted=True,
                             answer_sha256=fields["answer_sha256"])
        finally:
            os.close(lock_fd)
    after_end(ctx)
    if getattr(args, "follow", False):
        return ctx.follow(job, 0, then=lambda code: (print_status(ctx, build_status(ctx)), code)[1])
    if not ctx.as_json:
        ctx.out.line("Answer submitted; scoring job %s is running. Follow it with: runner attach %s"
                     % (job["job_id"], job["job_id"]))
    print_status(ctx, build_status(ctx))
    return EXIT_CODES["ok"]


# ---------------------------------------------------------------------------------------------
# The aggregate


def _aggregate_problem(obj):
    if not isinstance(obj, dict):
        return "not a JSON object"
    score = obj.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        return "score is not a number"
    if not isinstance(obj.get("message"), str) or not isinstance(obj.get("computed_at"), str):
        return "message or computed_at is missing"
    if not isinstance(obj.get("entries"), int):
        return "entries is missing"
    return None


def read_aggregate(ctx):
    """The recorded aggregate ({score, message, computed_at, entries}), or None when there is none yet."""
    found = read_state_file(ctx.state_path(AGGREGATE_FILE), ctx.damaged, _aggregate_problem)
    if found is None:
        return None
    return dict((k, found[k]) for k in ("score", "message", "computed_at", "entries"))


def after_end(ctx):
    """Once the session has ended: records the aggregate in a detached process (it waits for a final scoring
    job to write its entry first). Nothing happens when the environment has no aggregate_command."""
    if not ctx.manifest["scoring"].get("aggregate_command") or read_aggregate(ctx) is not None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError:
        return  # collect records it later (runner aggregate)
    if pid != 0:
        return
    code = 1
    try:
        os.setsid()
        from .jobs import detach

        detach(())
        wait_s = ctx.manifest["scoring"]["timeout_s"] + 120
        record_aggregate(ctx, wait_s)
        code = 0
    except BaseException:
        pass
    finally:
        os._exit(code)


def record_aggregate(ctx, wait_s=0.0):
    """The aggregate, computed and recorded once (a second call returns the record). Holds the score lock while
    it runs, waiting up to wait_s for a running job; raises RunnerError("busy") when one is still running."""
    from .session import load_session
    from .status import recover_result, session_clock
    from .jobs import recover_stale_jobs
    from .scorelog import scan_log

    command = ctx.manifest["scoring"].get("aggregate_command")
    if not command:
        raise RunnerError("usage", "This environment records no aggregate (its manifest has no "
                                   "scoring.aggregate_command).")
    found = read_aggregate(ctx)
    if found is not None:
        return found
    session = load_session(ctx)
    clock, _ = session_clock(ctx, session)
    if clock.state != "ended":
        raise RunnerError("refused", "The aggregate is recorded once the session has ended.")
    until = time.monotonic() + wait_s
    fd = try_lock(ctx.score_lock_path(), ctx.damaged)
    while fd is None and time.monotonic() < until:
        time.sleep(0.2)
        fd = try_lock(ctx.score_lock_path(), ctx.damaged)
    if fd is None:
        raise RunnerError("busy", "A scoring job is still running; the aggregate is recorded once it has finished.")
    try:
        found = read_aggregate(ctx)
        if found is not None:
            return found
        recover_stale_jobs(ctx, session, recover_result)
        entries = [e for e in scan_log(ctx, session).entries if e["counts"]]
        log = [dict((k, e[k]) for k in ("index", "job_id", "kind", "started_at", "score", "message"))
               for e in entries]
        score, message = run_aggregate(ctx, command, log)
        record = {"score": score, "message": message, "computed_at": iso(now_s()), "entries": len(log)}
        write_json_atomic(ctx.state_path(AGGREGATE_FILE), record)
        ctx.record_event("aggregate", score=score, entries=len(log))
        return record
    finally:
        os.close(fd)


def run_aggregate(ctx, command, log):
    """(score or None, message) from the aggregate command, run as the scorer runs, with a time limit."""
    from .scoring import compose_message, privilege_drop, read_result

    base = ctx.state_path(AGGREGATE_DIR)
    shutil.rmtree(base, ignore_errors=True)  # what an interrupted attempt left
    result_dir = os.path.join(base, AGGREGATE_JOB, "result")
    make_dirs(result_dir, 0o700)
    os.chmod(os.path.join(base, AGGREGATE_JOB), 0o755)
    log_file = os.path.join(base, AGGREGATE_JOB, "score-log.json")
    write_json_atomic(log_file, log)
    result_file = os.path.join(result_dir, "result.json")
    env = dict(os.environ)
    env.update({"REBENCH_SOLUTION_DIR": ctx.config["solution_dir"], "REBENCH_RESULT_FILE": result_file,
                "REBENCH_JOB_ID": AGGREGATE_JOB, "REBENCH_SCORE_LOG_FILE": log_file, "PYTHONUNBUFFERED": "1"})
    env.pop("REBENCH_SUBMISSION_FILE", None)
    dropped = privilege_drop(ctx, result_dir)
    if dropped:
        env["HOME"] = dropped[0].pw_dir
        env["USER"] = env["LOGNAME"] = dropped[0].pw_name
    argv = [a.replace("{python}", sys.executable) for a in command]
    timeout = ctx.manifest["scoring"]["timeout_s"]
    with open(os.path.join(base, AGGREGATE_JOB, "output.log"), "wb") as out:
        try:
            proc = subprocess.Popen(argv, cwd=ctx.environment["dir"], env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                    preexec_fn=dropped[1] if dropped else None)
        except OSError as e:
            return None, "No score: the aggregate command could not be started (%s)." % e
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
            return None, "No score: the aggregate did not finish within %d s." % timeout
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever it left running
    except OSError:
        pass
    score, message, reason = read_result(result_file)
    if code != 0:
        score, reason = None, "the aggregate command exited with code %s%s" % (code, "; " + reason if reason else "")
    return score, clean_text(compose_message(message, reason), MESSAGE_LIMIT)


def cmd_aggregate(ctx, args):
    """Records the aggregate once the session has ended (or returns the record)."""
    record = record_aggregate(ctx, 0.0)
    if ctx.as_json:
        ctx.out.emit({"aggregate": record})
    else:
        ctx.out.line("Aggregate over %d counted entries: %s%s" % (
            record["entries"], "no score" if record["score"] is None else repr(record["score"]),
            " - " + record["message"] if record["message"] else ""))
    return EXIT_CODES["ok"]

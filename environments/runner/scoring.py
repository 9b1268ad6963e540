"""Running one scoring job: the solution's hash, the scorer as its own process group with a time limit and
an output limit, its result file, and the fields of the log entry."""

import errno
import json
import math
import os
import signal
import sys
import time

from .common import (DRAIN_AFTER_EXIT_S, MESSAGE_LIMIT, POLL_S, RESULT_LIMIT, TERM_GRACE_S, LazyModule,
                     RunnerError, clean_text, describe, iso, now_s, parse_iso, round3, sha256)
from .files import file_size, holds_lock, make_dirs, read_state_file, write_json_atomic
from .hidden import hide
from .jobs import SUBMISSION_FILE, boot_id, failed_fields, finish_job, job_entry, kill_leftover_scorer, read_job
from .participant import keep_solution
from .scorelog import snapshot_summary_ok
from .session import load_session

select = LazyModule("select")
shutil = LazyModule("shutil")
subprocess = LazyModule("subprocess")
traceback = LazyModule("traceback")


def hash_solution(root):
    """sha256 over the solution folder: sorted relative paths with file bytes or link text.

    .git and __pycache__ folders are skipped (they change without the solution changing).
    """
    h = sha256()
    items = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".git", "__pycache__")]
        # os.walk lists a link to a folder among the folders without entering it: hash it as a link.
        linked_dirs = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in filenames + linked_dirs:
            items.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    for rel in sorted(items):
        full = os.path.join(root, rel)
        name = rel.encode("utf-8", "surrogateescape")
        if os.path.islink(full):
            h.update(b"link\0" + name + b"\0" + os.readlink(full).encode("utf-8", "surrogateescape") + b"\0")
            continue
        try:
            size = os.path.getsize(full)
            h.update(b"file\0" + name + b"\0" + str(size).encode() + b"\0")
            with open(full, "rb") as f:
                while True:
                    block = f.read(1 << 20)
                    if not block:
                        break
                    h.update(block)
        except OSError:
            h.update(b"unreadable\0" + name + b"\0")
    return "sha256:" + h.hexdigest()


class OutputSink(object):
    """Copies scorer output to output.log up to a limit, and counts what it does not keep."""

    def __init__(self, path, limit):
        self.file = open(path, "ab")
        self.limit = limit
        self.kept = 0
        self.total = 0
        self.last_byte = b"\n"

    def write(self, data):
        self.total += len(data)
        room = self.limit - self.kept
        if room > 0:
            part = data[:room]
            self.file.write(part)
            self.file.flush()  # readers (attach) see it at once
            self.kept += len(part)
            self.last_byte = part[-1:]

    @property
    def truncated(self):
        return self.total > self.kept

    def close(self):
        if self.truncated:
            lead = b"" if self.last_byte == b"\n" else b"\n"
            note = "[output truncated after %d bytes; the scorer wrote %d bytes in all]\n" % (self.kept, self.total)
            self.file.write(lead + note.encode("utf-8"))
        # Not synced: the output is what the participant watched, the entry is what counts, and the entry is
        # synced with the score log before anyone is told of it (an fsync here would double the wait for it).
        self.file.close()


class StopRequest(Exception):
    pass


def _on_stop_signal(signum, frame):
    raise StopRequest(signal.Signals(signum).name)


def scorer_environment(ctx, job_id, result_file):
    env = dict(os.environ)
    env["REBENCH_SOLUTION_DIR"] = ctx.config["solution_dir"]
    env["REBENCH_RESULT_FILE"] = result_file
    env["REBENCH_JOB_ID"] = job_id
    submission = os.path.join(ctx.job_dir(job_id), SUBMISSION_FILE)
    if os.path.isfile(submission):
        env["REBENCH_SUBMISSION_FILE"] = submission  # a submit job: the answer to score
    else:
        env.pop("REBENCH_SUBMISSION_FILE", None)
    env["PYTHONUNBUFFERED"] = "1"  # progress lines reach the participant as they are printed
    return env


def privilege_drop(ctx, result_dir):
    """In protected mode with scoring_user: (the user's record, a function that switches to that user)."""
    user = ctx.config.get("scoring_user")
    if not user:
        return None
    import pwd  # POSIX only, and only needed here

    if os.geteuid() != 0:
        raise RunnerError("environment", "runner.json names scoring_user %r, but the runner is not running "
                                         "as root and cannot switch to that user." % user)
    try:
        record = pwd.getpwnam(user)
    except KeyError:
        raise RunnerError("environment", "runner.json names scoring_user %r, but there is no such user." % user)
    os.chown(result_dir, record.pw_uid, record.pw_gid)

    def drop():
        os.setgroups([])
        os.setgid(record.pw_gid)
        os.setuid(record.pw_uid)

    return record, drop


# Starts the scorer once its record is written: the shell waits for a line on the given descriptor (the job
# writes it after scorer.json), then becomes the scorer (exec keeps its pid, so the record names the scorer's
# process group). When the job process dies first, the line never comes and the scorer never runs.
START_WHEN_RECORDED = 'read _ <&%d && exec "$@" %d<&-'


def run_scorer(ctx, job, sink, result_file, solution_hash):
    """Runs the scoring command in its own process group; returns (exit_code, signal, timed_out, stopped_by).

    scorer.json (the scorer's process group) is written before the scoring command runs, so a job process
    killed at any moment leaves either no scorer or one that recovery can find and stop. The scorer is started
    without Python code in the child (a /bin/sh that waits for the record), so Python can vfork it instead of
    copying this process, which on a loaded machine made the start of every scoring run tens of ms slower.
    """
    env_dir = ctx.environment["dir"]
    scoring = ctx.manifest["scoring"]
    argv = [a.replace("{python}", sys.executable) for a in scoring["command"]]
    env = scorer_environment(ctx, job["job_id"], result_file)
    dropped = privilege_drop(ctx, os.path.dirname(result_file))
    if dropped:
        record = dropped[0]
        env["HOME"] = record.pw_dir
        env["USER"] = env["LOGNAME"] = record.pw_name
    info_path = os.path.join(ctx.job_dir(job["job_id"]), "scorer.json")
    info = {"boot_id": boot_id(), "solution_hash": solution_hash}
    check_program(argv[0], env_dir, env.get("PATH"))
    go_read, go_write = os.pipe()
    try:
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", START_WHEN_RECORDED % (go_read, go_read), "rebench-scorer"] + argv,
                cwd=env_dir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, pass_fds=(go_read,),
                preexec_fn=dropped[1] if dropped else None)
        finally:
            os.close(go_read)
        # Not synced: the record only matters while this boot lasts (after a restart the scorer is gone with it).
        write_json_atomic(info_path, dict(info, pgid=proc.pid), sync=False)
        os.write(go_write, b"\n")
    except BaseException:
        os.close(go_write)  # the shell reads end of file and exits without running the scorer
        if "proc" in locals():
            proc.wait()
        raise
    os.close(go_write)
    return supervise(proc, sink, scoring["timeout_s"])


def check_program(program, cwd, path):
    """Raises the OSError that starting program would give when it cannot be found or run (the shell that
    starts it would only exit with 127 or 126)."""
    if "/" in program:
        full = os.path.join(cwd, program)
    else:
        full = shutil.which(program, path=path)
        if full is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    if not os.path.exists(full):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    if os.path.isdir(full) or not os.access(full, os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)


def kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass


def supervise(proc, sink, timeout_s):
    """Copies output while the scorer runs, enforcing the timeout on its whole process group."""
    pgid = proc.pid
    fd = proc.stdout.fileno()
    exit_fd = process_fd(proc.pid)
    os.set_blocking(fd, False)
    started = time.monotonic()
    term_sent = None
    exited_at = None
    eof = False
    timed_out = False
    stopped_by = None
    while True:
        try:
            t = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = t
                # Whatever the scorer left running in its group would compete with the next run.
                kill_group(pgid, signal.SIGKILL)
            if exited_at is not None and (eof or t - exited_at > DRAIN_AFTER_EXIT_S):
                break
            if exited_at is None and term_sent is None and t - started >= timeout_s:
                timed_out = True
                term_sent = t
                kill_group(pgid, signal.SIGTERM)
            if exited_at is None and term_sent is not None and t - term_sent >= TERM_GRACE_S:
                kill_group(pgid, signal.SIGKILL)
            if eof:
                # Output is closed; the exit usually follows at once, and waiting on it (instead of
                # sleeping a whole poll) lets the entry be written as soon as the scorer is done.
                wait_for_exit(proc, exit_fd, POLL_S)
                continue
            ready, _, _ = select.select([fd], [], [], POLL_S)
            if ready:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if data:
                    sink.write(data)
                else:
                    eof = True
        except StopRequest as e:
            # The job process itself is being stopped: take the scorer down with it.
            stopped_by = str(e)
            kill_group(pgid, signal.SIGKILL)
            proc.wait()
            break
    proc.stdout.close()
    if exit_fd is not None:
        os.close(exit_fd)
    code = proc.returncode
    if code is None:
        proc.wait()
        code = proc.returncode
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "signal %d" % -code
        return None, name, timed_out, stopped_by
    return code, None, timed_out, stopped_by


def process_fd(pid):
    """A pidfd of the process (Linux 5.3+, Python 3.9+): readable the moment it exits; None where there is none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def wait_for_exit(proc, exit_fd, timeout):
    """Waits up to timeout for the process to exit: at once through its pidfd, else by Popen's polling."""
    if exit_fd is not None:
        select.select([exit_fd], [], [], timeout)
        proc.poll()
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


def manual_result(path):
    """Whether the result file says that a person scores the submission later ({"score": null, "manual": true})."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            data = json.loads(f.read(RESULT_LIMIT + 1))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("manual") is True and data.get("score") is None


def read_result(path):
    """(score or None, scorer's message, why there is no score or None) from the result file."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            text = f.read(RESULT_LIMIT + 1)
    except FileNotFoundError:
        return None, "", "the scorer did not write a result file (REBENCH_RESULT_FILE)"
    except OSError as e:
        return None, "", "the result file could not be read (%s)" % e
    if len(text) > RESULT_LIMIT:
        return None, "", "the result file is larger than %d characters" % RESULT_LIMIT
    try:
        data = json.loads(text)  # accepts NaN and Infinity, which both mean "no score"
    except ValueError as e:
        return None, "", "the result file is not valid JSON (%s)" % e
    except RecursionError:
        return None, "", "the result file is not valid JSON (nested too deeply)"
    if not isinstance(data, dict):
        return None, "", "the result file does not hold a JSON object"
    message = data.get("message", "")
    if message is None:
        message = ""
    if not isinstance(message, str):
        message = json.dumps(message, ensure_ascii=False)
    if "score" not in data:
        return None, message, "the result has no \"score\""
    raw = data["score"]
    if raw is None:
        return None, message, None  # the scorer said "no score" itself; its message explains why
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None, message, "the reported score %s is not a number" % describe(raw)
    try:
        score = float(raw)
    except OverflowError:
        return None, message, "the reported score is too large"
    if not math.isfinite(score):
        return None, message, "the reported score %s is not a finite number" % score
    return score, message, None


def compose_message(scorer_message, reason):
    scorer_message = scorer_message.strip()
    if reason is None:
        return scorer_message
    reason = "No score: " + reason + "."
    return scorer_message + " | " + reason if scorer_message else reason


def execute_job(ctx, job):
    """Runs one scoring job from start to finished fields (everything but index and hashes)."""
    jdir = ctx.job_dir(job["job_id"])
    started = parse_iso(job["started_at"])
    result_dir = os.path.join(jdir, "result")
    make_dirs(result_dir, 0o700)
    result_file = os.path.join(result_dir, "result.json")
    sink = OutputSink(os.path.join(jdir, "output.log"), ctx.manifest["scoring"]["output_limit_bytes"])
    solution_hash = "unknown"
    snapshot = None
    try:
        solution_hash = hash_solution(ctx.config["solution_dir"])
        job["solution_hash"] = solution_hash
        snapshot = keep_solution(ctx, jdir)
        try:
            exit_code, sig, timed_out, stopped_by = run_scorer(ctx, job, sink, result_file, solution_hash)
        except OSError as e:
            exit_code, sig, timed_out, stopped_by = None, None, False, None
            start_error = "the scoring command %s could not be started (%s); check scoring.command in %s" % (
                json.dumps(ctx.manifest["scoring"]["command"]), e, ctx.environment["manifest_path"])
        else:
            start_error = None
    finally:
        sink.close()
    score, scorer_message, reason = None, "", None
    if start_error:
        reason = start_error
    elif stopped_by:
        reason = "the scoring job was stopped by %s before the scorer finished" % stopped_by
    elif timed_out:
        reason = "the scorer did not finish within its time limit of %d s and was stopped" % (
            ctx.manifest["scoring"]["timeout_s"])
        _, scorer_message, _ = read_result(result_file)
    elif sig:
        reason = "the scorer was killed by %s%s" % (sig, " (out of memory?)" if sig == "SIGKILL" else "")
        _, scorer_message, _ = read_result(result_file)
    else:
        score, scorer_message, reason = read_result(result_file)
        if exit_code != 0:
            score = None
            reason = "the scorer exited with code %d%s" % (exit_code, "; " + reason if reason else "")
    # Why the run failed at the runner's level (no value of the scorer's in it): all a hidden run may show.
    runner_reason = None
    if start_error or stopped_by or timed_out or sig:
        runner_reason = reason
    elif exit_code != 0:
        runner_reason = "the scorer exited with code %d" % exit_code
    ended = now_s()
    fields = {
        "job_id": job["job_id"], "kind": job["kind"], "started_at": job["started_at"], "ended_at": iso(ended),
        "elapsed_s": job["elapsed_s"], "score": score,
        "message": clean_text(compose_message(scorer_message, reason), MESSAGE_LIMIT),
        "exit_code": exit_code, "signal": sig, "timed_out": timed_out,
        "killed": bool(sig) or timed_out or bool(stopped_by),
        "duration_s": round3(max(0.0, ended - started)), "solution_hash": solution_hash,
        "counts": job["counts"], "output_bytes": sink.total, "output_truncated": sink.truncated,
    }
    if snapshot is not None:
        fields["snapshot"] = snapshot
    if job["kind"] == "submit" and score is None and reason is None and exit_code == 0 and manual_result(result_file):
        fields["manual"] = True  # scored by a person later: no score yet, which is neither 0 nor a failure
    return hide(ctx, fields, result_file, runner_reason)


def run_job(ctx, job_id, lock_fd):
    """The detached job process: runs the scorer and writes the entry while holding the score lock."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _on_stop_signal)
    job = read_job(ctx, job_id)
    if job is None:
        raise RunnerError("usage", "No scoring job %s in %s." % (job_id, ctx.state_dir))
    if job_entry(ctx, job["job_id"]) is not None:
        return None
    if lock_fd is None or not holds_lock(lock_fd, ctx.score_lock_path()):
        raise RunnerError("usage", "_run-job is internal: it runs only as the job process started by `score`.")
    session = load_session(ctx)
    try:
        fields = execute_job(ctx, job)
    except (Exception, StopRequest) as e:
        traceback.print_exc()
        kill_leftover_scorer(ctx.job_dir(job["job_id"]))
        message = "The runner failed while running this scoring job (%s). No score; see %s." % (
            clean_text(e), os.path.join(ctx.job_dir(job["job_id"]), "runner.log"))
        if isinstance(e, RunnerError):
            message = "No score: " + e.message
        fields = failed_fields(job, message, killed=isinstance(e, StopRequest))
    # From here on, the entry must be written even if someone signals us.
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    finish_job(ctx, session, job, fields)
    os.close(lock_fd)
    return None


def recover_result(ctx, job):
    """The fields of a job whose process died after its scorer had ended: the score in the scorer's result
    file is kept (a score once computed is not lost), or None when there is no valid result to keep."""
    jdir = ctx.job_dir(job["job_id"])
    info = read_state_file(os.path.join(jdir, "scorer.json"))
    if not isinstance(info, dict):
        return None  # the scorer never started
    result_file = os.path.join(jdir, "result", "result.json")
    score, scorer_message, reason = read_result(result_file)
    if score is None or reason is not None:
        return None
    started = parse_iso(job["started_at"])
    try:
        written = os.path.getmtime(result_file)
    except OSError:
        return None
    timeout_s = ctx.manifest["scoring"]["timeout_s"]
    if written - started > timeout_s + TERM_GRACE_S:
        return None  # nobody enforced the time limit: a result written after it does not count
    note = ("Recovered: the scoring job was interrupted after the scorer had written this result; the scorer's "
            "exit status is unknown.")
    output = os.path.join(jdir, "output.log")
    size = file_size(output)
    t = now_s()
    fields = {
        "job_id": job["job_id"], "kind": job["kind"], "started_at": job["started_at"], "ended_at": iso(t),
        "elapsed_s": job["elapsed_s"], "score": score,
        "message": clean_text((scorer_message.strip() + " | " + note) if scorer_message.strip() else note,
                              MESSAGE_LIMIT),
        "exit_code": None, "signal": None, "timed_out": False, "killed": False,
        "duration_s": round3(max(0.0, written - started)), "solution_hash": info.get("solution_hash") or "unknown",
        "counts": job["counts"], "output_bytes": size,
        "output_truncated": size >= ctx.manifest["scoring"]["output_limit_bytes"],
    }
    snapshot = read_state_file(os.path.join(jdir, "snapshot.json"),
                               check=lambda o: None if snapshot_summary_ok(o) else "not a snapshot summary")
    if snapshot is not None:
        fields["snapshot"] = snapshot
    return hide(ctx, fields, result_file, None)

"""Scoring jobs: their folders and records, the detached job process, and recovery of jobs that died.

A job folder (state/jobs/<job id>) holds job.json (what was asked, when), output.log, scorer.json (the
scorer's process group, written by the scorer's own process before it runs anything), result/ (the
scorer's result file), outcome.json (the finished fields) and entry.json (the log entry, last). Each
step can be redone after a crash, and a damaged record is set aside and recovered from.
"""

import gc
import os
import signal
import sys
import time

from .common import (EXIT_CODES, JOB_ID_RE, LazyModule, RunnerError, is_number, iso, now_s, parse_iso,
                     round3)
from .files import file_size, fsync_dir, read_state_file, try_lock, write_json_atomic
from .logstate import checkpoint_after_append
from .scorelog import append_entry, entry_problem
from .session import Clock, load_session

shutil = LazyModule("shutil")
traceback = LazyModule("traceback")

JOB_FIELDS = ("job_id", "kind", "started_at", "elapsed_s", "counts")


def new_job_id(t):
    total_ms = int(round(t * 1000))
    secs, ms = divmod(total_ms, 1000)
    return "j%s%03dZ-%s" % (time.strftime("%Y%m%dT%H%M%S", time.gmtime(secs)), ms, os.urandom(3).hex())


def job_id_time(job_id):
    """The start time written in a job id (j20260101T120000123Z-abcdef)."""
    d = job_id
    return parse_iso("%s-%s-%sT%s:%s:%s.%sZ" % (d[1:5], d[5:7], d[7:9], d[10:12], d[12:14], d[14:16], d[16:19]))


def job_summary(job):
    return {"job_id": job["job_id"], "kind": job["kind"], "started_at": job["started_at"], "pid": job.get("pid")}


def _job_problem(job_id):
    def check(job):
        if not isinstance(job, dict) or job.get("job_id") != job_id:
            return "not this job's record"
        if job.get("kind") not in ("score", "final", "submit") or parse_iso(job.get("started_at")) is None:
            return "kind or started_at is missing"
        if not is_number(job.get("elapsed_s")) or not isinstance(job.get("counts"), bool):
            return "elapsed_s or counts is missing"
        return None
    return check


def read_job(ctx, job_id):
    """The job's record; None for no such job. A damaged job.json is set aside (recovery rebuilds it)."""
    if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id):
        return None
    return read_state_file(os.path.join(ctx.job_dir(job_id), "job.json"), ctx.damaged, _job_problem(job_id))


def job_exists(ctx, job_id):
    return isinstance(job_id, str) and JOB_ID_RE.match(job_id) is not None and os.path.isdir(ctx.job_dir(job_id))


def job_entry(ctx, job_id):
    """The job's entry.json when it is a valid entry of this job; a damaged one is set aside (None)."""
    def check(entry):
        problem = entry_problem(entry)
        if problem:
            return problem
        return None if entry["job_id"] == job_id else "the entry of another job"
    return read_state_file(os.path.join(ctx.job_dir(job_id), "entry.json"), ctx.damaged, check)


def running_job(ctx):
    """The job named by the pointer file, when its entry is not written yet (call when the lock is taken)."""
    pointer = read_state_file(ctx.state_path("current_job.json"), ctx.damaged,
                              lambda p: None if isinstance(p, dict) else "not a JSON object")
    if pointer is None:
        return None
    job = read_job(ctx, pointer.get("job_id"))
    if job is None or job_entry(ctx, job["job_id"]) is not None:
        return None
    return job


SUBMISSION_FILE = "submission.txt"  # a submit job's answer, in its folder (the scorer reads REBENCH_SUBMISSION_FILE)


def create_job(ctx, kind, clock, submission=None):
    """Writes the job's folder with its job.json, then makes it visible under its id in one rename: a caller
    killed or failing half-way leaves only a hidden folder (which recovery removes), never a job without a
    record, and a job that could not be created never becomes an entry. A submit job's answer (bytes) is
    written into the folder before it becomes visible, so its scorer never runs without it."""
    started = clock.now
    job_id = new_job_id(started)
    final_dir = ctx.job_dir(job_id)
    stage = ctx.state_path("jobs", ".new-" + job_id)
    job = {
        "job_id": job_id,
        "kind": kind,
        "started_at": iso(started),
        "elapsed_s": round3(clock.elapsed()),
        # The documented rule: a job started before the deadline counts, even when it ends after it.
        "counts": started < clock.deadline,
        "pid": None,
    }
    os.makedirs(stage, mode=0o755)
    try:
        open(os.path.join(stage, "output.log"), "ab").close()
        if submission is not None:
            with open(os.path.join(stage, SUBMISSION_FILE), "wb") as f:
                f.write(submission)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(os.path.join(stage, SUBMISSION_FILE), 0o644)
        # Not synced: the folder's name holds what recovery needs (the job id is its start), and a record
        # lost with a crash is rebuilt from it; the rename below is synced, so the job itself is not lost.
        write_json_atomic(os.path.join(stage, "job.json"), job, sync=False)
        # The pointer first: one that names a job not (yet) there is harmless, a job nobody points at is not.
        # It is only read while the job runs, so it is not synced.
        write_json_atomic(ctx.state_path("current_job.json"), {"job_id": job_id}, sync=False)
        os.rename(stage, final_dir)
        fsync_dir(os.path.dirname(final_dir))  # the job is on disk before anyone is told of it
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return job


# Read ends of the pipes of jobs this process started (job_id -> fd): end of file means the job has ended.
job_done_pipes = {}
# A job process `serve` made ahead of time (standby.Standby), taken by the next job instead of a fork.
standbys = []


def spawn_job(ctx, job, lock_fd, run_job):
    """Starts the detached job process; it inherits the score lock and holds it until the entry is written.

    The job is a fork of this runner, not a new interpreter: it starts at once instead of paying Python's
    start-up again, which the participant would wait for on every Score now. Under `serve` a fork made
    ahead of time takes the job when there is one. It runs in a session of its own, so it survives the SSH
    channel and the caller's terminal. It holds the write end of a pipe whose read end stays here, so that a
    follower in this process learns the moment the job has ended.
    """
    jdir = ctx.job_dir(job["job_id"])
    log_fd = os.open(os.path.join(jdir, "runner.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        while standbys:
            handed = standbys.pop().hand_over(job["job_id"], lock_fd, log_fd)
            if handed is not None:
                pid, done_r = handed
                break
        else:
            pid, done_r = fork_job_process(ctx, job["job_id"], lock_fd, log_fd, run_job)
    finally:
        os.close(log_fd)
    job_done_pipes[job["job_id"]] = done_r
    job["pid"] = pid
    write_json_atomic(os.path.join(jdir, "job.json"), job, sync=False)  # the pid only helps people looking
    return job


def fork_job_process(ctx, job_id, lock_fd, log_fd, run_job):
    """Forks the job process now: (its pid, the read end of its done pipe)."""
    done_r, done_w = os.pipe()
    try:
        pid = fork_frozen()
    except OSError:
        os.close(done_r)
        os.close(done_w)
        raise
    if pid == 0:
        try:
            os.setsid()
            become_job(ctx, job_id, lock_fd, log_fd, done_w, run_job)
        finally:
            os._exit(EXIT_CODES["internal"])
    os.close(done_w)
    return pid, done_r


def fork_frozen():
    """os.fork, with the objects there are now frozen for the fork: the collector leaves them be in the child,
    so that it does not copy every page of this process by walking them (the copy on write of a fork)."""
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()
    try:
        pid = os.fork()
    except BaseException:
        gc.unfreeze()
        raise
    if pid != 0:
        gc.unfreeze()
    return pid


def _close_fds_except(keep):
    """Closes every file descriptor from 3 up but those in keep."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = range(3, 4096)
    for fd in fds:
        if fd >= 3 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def detach(keep, stderr_fd=None):
    """Lets go of the caller's files in a process of its own: stdin and stdout (and stderr, unless stderr_fd
    takes its place) on /dev/null, every other descriptor closed but those in keep. Nothing of the caller's may
    stay open: the session lock would stay taken, and the SSH channel would stay open until the process ends."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(null if stderr_fd is None else stderr_fd, 2)
    _close_fds_except(keep)


def become_job(ctx, job_id, lock_fd, log_fd, done_fd, run_job):
    """The job process (in a session of its own): runs the job with its output in runner.log, then exits."""
    code = EXIT_CODES["internal"]
    try:
        detach((lock_fd, done_fd), stderr_fd=log_fd)
        os.chdir(ctx.state_dir)
        code = run_job(ctx, job_id, lock_fd) or 0
    except RunnerError as e:
        sys.stderr.write("runner: %s\n" % e.message)
        code = EXIT_CODES[e.code]
    except BaseException:
        try:
            traceback.print_exc()
        except BaseException:
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(code)


def start_job(ctx, kind, clock, lock_fd, run_job, submission=None):
    """Creates and spawns a job while the caller holds the session lock and the score lock."""
    job = create_job(ctx, kind, clock, submission)
    try:
        spawn_job(ctx, job, lock_fd, run_job)
    except OSError as e:
        session = load_session(ctx)
        fields = failed_fields(job, "The scoring job could not be started: %s. No score." % e, killed=False)
        finish_job(ctx, session, job, fields)
        raise RunnerError("internal", "The scoring job could not be started: %s" % e)
    ctx.record_event("job_started", sync=False, job_id=job["job_id"], kind=kind, counts=job["counts"])
    return job


def failed_fields(job, message, killed, solution_hash=None):
    t = now_s()
    started = parse_iso(job["started_at"])
    return {
        "job_id": job["job_id"], "kind": job["kind"], "started_at": job["started_at"], "ended_at": iso(t),
        "elapsed_s": job["elapsed_s"], "score": None, "message": message, "exit_code": None, "signal": None,
        "timed_out": False, "killed": killed, "duration_s": round3(max(0.0, t - started)),
        "solution_hash": solution_hash or job.get("solution_hash") or "unknown", "counts": job["counts"],
        "output_bytes": 0, "output_truncated": False,
    }


def finish_job(ctx, session, job, fields):
    """Records the outcome, then the log entry, then entry.json: each step can be redone after a crash.

    Only the log entry is synced to disk (the log is what counts): the outcome covers a job process killed
    before its entry, which the page cache survives; entry.json and the event can be made again from the log.
    """
    jdir = ctx.job_dir(job["job_id"])
    outcome_path = os.path.join(jdir, "outcome.json")
    if read_state_file(outcome_path, ctx.damaged, _outcome_problem(job["job_id"])) is None:
        write_json_atomic(outcome_path, fields, sync=False)
    entry = append_entry(ctx, session, fields, checkpoint_after_append(ctx, session))
    write_json_atomic(os.path.join(jdir, "entry.json"), entry, sync=False)
    ctx.record_event("job_finished", sync=False, job_id=job["job_id"], index=entry["index"], score=entry["score"])
    return entry


def _outcome_problem(job_id):
    def check(outcome):
        if not isinstance(outcome, dict) or outcome.get("job_id") != job_id:
            return "not this job's outcome"
        trial = dict(outcome, index=0, prev_hash="0" * 64, hash="0" * 64)
        return entry_problem(trial)
    return check


def rebuilt_job(ctx, session, job_id):
    """A record for a job folder whose job.json is missing or damaged, from its id (which holds its start)."""
    started = job_id_time(job_id)
    clock = Clock(session, started)
    return {"job_id": job_id, "kind": "score", "started_at": iso(started), "elapsed_s": round3(clock.elapsed()),
            "counts": clock.deadline is not None and started < clock.deadline, "pid": None}


RECOVERED_FILE = "jobs-recovered.json"  # the last job id up to which every job has its entry


def recover_stale_jobs(ctx, session, recover_result, only=None):
    """Gives every job whose process died without an entry its entry (call holding the score lock).

    A job's outcome is saved before its entry, so a job killed between the two still gets its real
    score; a job killed after its scorer wrote a valid result gets that score (recover_result); a job
    killed earlier gets a "no score" entry that says so. No job vanishes silently. Jobs up to the mark in
    jobs-recovered.json all had their entries when it was written and are not looked at again (a long session
    has thousands), unless `only` names one of them (attach and followers, for a damaged file).
    """
    jobs_dir = ctx.state_path("jobs")
    mark_path = ctx.state_path(RECOVERED_FILE)
    if only is not None:
        names = [only] if JOB_ID_RE.match(only) and os.path.isdir(os.path.join(jobs_dir, only)) else []
        mark = None
    else:
        try:
            names = sorted(os.listdir(jobs_dir))
        except FileNotFoundError:
            return
        mark = read_state_file(mark_path, ctx.damaged, lambda m: None if isinstance(m, dict) and isinstance(
            m.get("job_id"), str) else "not a mark")
        mark = mark["job_id"] if mark else ""
        names = [n for n in names if n.startswith(".new-") or n > mark]
    for name in names:
        if name.startswith(".new-"):
            # A caller killed while it created the job: nobody was told of it and nothing ran.
            shutil.rmtree(os.path.join(jobs_dir, name), ignore_errors=True)
            ctx.record_event("job_not_created", job_id=name[len(".new-"):],
                             reason="the request was interrupted while the job's folder was being created")
            continue
        if not JOB_ID_RE.match(name) or session is None:
            continue
        jdir = os.path.join(jobs_dir, name)
        entry = job_entry(ctx, name)
        job = read_job(ctx, name)
        if entry is not None:
            if job is None:  # its record was damaged: the entry holds all of it
                record = dict((k, entry[k]) for k in ("job_id", "kind", "started_at", "elapsed_s", "counts"))
                record["pid"] = None
                write_json_atomic(os.path.join(jdir, "job.json"), record)
            continue
        note = ""
        if job is None:
            job = rebuilt_job(ctx, session, name)
            write_json_atomic(os.path.join(jdir, "job.json"), job)
            note = " (its record job.json was missing or damaged and was rebuilt from the job id)"
        still_running = kill_leftover_scorer(jdir)
        outcome = read_state_file(os.path.join(jdir, "outcome.json"), ctx.damaged, _outcome_problem(name))
        if outcome is None and not still_running:
            outcome = recover_result(ctx, job)
        if outcome is None:
            outcome = failed_fields(
                job, "The scoring job stopped before it finished (its process was killed or the machine "
                     "restarted)%s. No score was recorded for this run; score again." % note, killed=True,
                solution_hash=_scorer_info(jdir).get("solution_hash"))
            outcome["output_bytes"] = file_size(os.path.join(jdir, "output.log"))
        finish_job(ctx, session, job, outcome)
        ctx.record_event("job_recovered", job_id=name)
    last = [n for n in names if JOB_ID_RE.match(n)]
    if mark is not None and session is not None and last and last[-1] > mark:
        write_json_atomic(mark_path, {"job_id": last[-1]}, sync=False)


def boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _scorer_info(jdir):
    info = read_state_file(os.path.join(jdir, "scorer.json"))
    return info if isinstance(info, dict) else {}


def kill_leftover_scorer(jdir):
    """Kills the process group of a scorer whose job process died, if it is still running this boot.
    Returns whether it was still running."""
    info = _scorer_info(jdir)
    pgid = info.get("pgid")
    if not isinstance(pgid, int) or isinstance(pgid, bool) or pgid <= 1:
        return False
    if info.get("boot_id") is None or info.get("boot_id") != boot_id():
        return False  # after a restart the number may belong to someone else
    try:
        os.killpg(pgid, 0)
    except OSError:
        return False
    if not group_has_living_member(pgid):
        return False  # only zombies left (their parent, the job process, is gone and nobody reaped them yet)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
    return True


def group_has_living_member(pgid):
    """Whether a process of the group is running (not a zombie), from /proc; True where /proc cannot say."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return True
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def probe_and_recover(ctx, recover_result, only=None):
    """Under the session lock: if no job holds the score lock, finish any job that died without an entry.

    Returns the running job (or None). Holding the session lock means no `score` can be between
    taking the score lock and writing its pointer, so a busy lock always names a real job.
    """
    with ctx.session_lock():
        fd = try_lock(ctx.score_lock_path(), ctx.damaged)
        if fd is None:
            return running_job(ctx)
        try:
            recover_stale_jobs(ctx, load_session(ctx), recover_result, only)
        finally:
            os.close(fd)
        return None

"""The session's commands: setup, status, start, instructions, score, attach, log, pause, resume, end, verify."""

import os
import time

from .common import EXIT_CODES, FINISHING_JOB_WAIT_S, LazyModule, RunnerError, iso
from .files import fsync_dir, make_dirs, read_json_if_exists, try_lock, write_json_atomic
from .home import load_config, unwritable_state
from .jobs import job_summary, read_job, recover_stale_jobs, running_job, start_job
from .manifest import load_environment
from .scorelog import scan_log, tail_entries
from .session import load_session, save_session
from .common import format_duration, format_score
from .status import build_status, print_status, recover_result, session_clock

shutil = LazyModule("shutil")


def run_job(ctx, job_id, lock_fd):
    """scoring.run_job, imported in the job process only (status and the other commands never need it)."""
    from .scoring import run_job as run

    return run(ctx, job_id, lock_fd)


def refuse(ctx, action, message):
    ctx.record_event("refused", action=action, reason=message)
    raise RunnerError("refused", message)


def refuse_if_clock_set_back(ctx, back, action):
    if back.set_back:
        ctx.record_event("clock_set_back", action=action, clock=iso(back.now), recorded=iso(back.floor))
        raise RunnerError("refused", back.message())


def refuse_unless_running(ctx, clock, action):
    state = clock.state
    if state == "not_started":
        refuse(ctx, action, "The session has not started. Start it first (runner start).")
    if state == "paused":
        refuse(ctx, action, "The session is paused. Resume it first (runner resume).")
    if state == "ended":
        if clock.ended_explicitly is None:
            refuse(ctx, action, "The deadline passed at %s. A request after the deadline is refused and does "
                                "not count." % iso(clock.ended_at))
        refuse(ctx, action, "The session ended at %s. Nothing more can be scored." % iso(clock.ended_at))


def take_score_lock_or_busy(ctx, action):
    path = ctx.score_lock_path()
    fd = try_lock(path, ctx.damaged)
    if fd is None and running_job(ctx) is None:
        # The job holding the lock has written its entry and is about to let go of the lock (it records
        # an event first): wait for that instead of calling a finished job busy.
        until = time.monotonic() + FINISHING_JOB_WAIT_S
        while fd is None and time.monotonic() < until:
            time.sleep(0.01)
            fd = try_lock(path, ctx.damaged)
    if fd is None:
        job = running_job(ctx)
        what = ("scoring job %s (started %s)" % (job["job_id"], job["started_at"])) if job else "scoring job"
        ctx.record_event("refused", action=action, reason="busy", job_id=job["job_id"] if job else None)
        raise RunnerError("busy", "Another %s is running. Wait for it to finish (runner attach %s) and try "
                                  "again." % (what, job["job_id"] if job else "<job>"),
                          job_summary(job) if job else None)
    return fd


def cmd_setup(ctx, args):
    home = ctx.home
    config_path = os.path.join(home, "runner.json")
    existing = load_config(home) if os.path.exists(config_path) else None
    if existing and existing["mode"] == "protected":
        raise RunnerError("refused", "This runner home (%s) is in protected mode: the organiser set it up, and "
                                     "setup cannot change it." % home)
    environments_dir = os.path.abspath(os.path.expanduser(
        args.environments_dir or (existing and existing["environments_dir"]) or os.path.join(home, "environments")))
    state_dir = existing["state_dir"] if existing else os.path.join(home, "state")
    # The check of the manifest is kept in the state, as every command keeps it: setup runs on every connect.
    env = load_environment(environments_dir, args.environment, state_dir)
    from .envtree import TreeProblem, walk

    try:
        walk(env["dir"])  # the same refusals as the upload and prepare: links, reference solutions, devices
    except TreeProblem as e:
        raise RunnerError("environment", "The environment %s cannot be used: %s" % (args.environment, e.message))
    if args.solution_dir:
        solution_dir = os.path.abspath(os.path.expanduser(args.solution_dir))
    elif existing and existing["environment"] == args.environment:
        solution_dir = existing["solution_dir"]
    else:
        solution_dir = os.path.join(os.path.expanduser("~"), "rebench", args.environment)
    try:
        session = read_json_if_exists(os.path.join(state_dir, "session.json"))
    except (ValueError, RecursionError, IsADirectoryError):
        raise RunnerError("integrity", "%s is damaged; the session's times cannot be read. Contact the organiser."
                          % os.path.join(state_dir, "session.json"))
    if session is not None:
        if not isinstance(session, dict) or session.get("environment") != args.environment:
            raise RunnerError("refused", "A session for %r has already started in %s; this runner home cannot "
                                         "switch to %r. Use another runner home (--home) for another session."
                              % (session.get("environment") if isinstance(session, dict) else None, home,
                                 args.environment))
        if existing and solution_dir != existing["solution_dir"]:
            raise RunnerError("refused", "The session has started with the solution folder %s; it cannot move "
                                         "to %s now." % (existing["solution_dir"], solution_dir))
    config = {
        "mode": "unprotected", "environment": args.environment, "environments_dir": environments_dir,
        "state_dir": state_dir, "solution_dir": solution_dir, "scoring_user": None,
    }
    make_dirs(home, 0o755)
    if existing != config:
        write_json_atomic(config_path, config)
    ctx._config = config
    ctx._environment = env
    ctx.ensure_state_dir()
    copied = copy_starting_solution(env, solution_dir)
    if existing != config or copied:
        ctx.record_event("setup", environment=args.environment, solution_dir=solution_dir,
                         copied_starting_solution=copied)
    print_status(ctx, build_status(ctx))


def copy_starting_solution(env, solution_dir):
    """Copies the starting solution unless the folder exists (the participant's work is never overwritten)."""
    if os.path.lexists(solution_dir):
        return False
    source = os.path.join(env["dir"], env["manifest"]["solution"])
    parent = os.path.dirname(solution_dir)
    make_dirs(parent)
    tmp = os.path.join(parent, ".%s.tmp-%s" % (os.path.basename(solution_dir), os.urandom(4).hex()))
    shutil.copytree(source, tmp, symlinks=True)
    os.rename(tmp, solution_dir)
    fsync_dir(parent)
    return True


def cmd_start(ctx, args):
    manifest = ctx.manifest
    with ctx.session_lock():
        session = load_session(ctx)
        if session is None:
            clock, back = session_clock(ctx, None)
            refuse_if_clock_set_back(ctx, back, "start")
            session = {
                "environment": manifest["id"],
                "environment_version": manifest["version"],
                "time_limit_s": manifest["time_limit_s"],
                "started_at": iso(back.now),
                "pauses": [],
                "ended_at": None,
                "end_reason": None,
            }
            save_session(ctx, session)
            ctx.record_event("start", started_at=session["started_at"], time_limit_s=session["time_limit_s"])
    print_status(ctx, build_status(ctx))


def cmd_instructions(ctx, args):
    manifest = ctx.manifest
    session = load_session(ctx)
    if session is None and not manifest["instructions_before_start"]:
        refuse(ctx, "instructions", "The instructions are shown once the session starts (reading time counts). "
                                    "Start the session first (runner start).")
    path = os.path.join(ctx.environment["dir"], manifest["instructions"])
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        markdown = f.read()
    if ctx.as_json:
        ctx.out.emit({"markdown": markdown, "title": manifest["title"]})
    else:
        ctx.out.text(markdown if markdown.endswith("\n") else markdown + "\n")


def cmd_score(ctx, args):
    submit = ctx.manifest["scoring"].get("submit")  # a broken environment is reported before anything is recorded
    if submit:
        refuse(ctx, "score", "This environment scores one submitted answer at the end, not the work as it goes: "
                             "submit your answer when you are done (Submit Answer, or runner submit).")
    with ctx.session_lock():
        session = load_session(ctx)
        clock, back = session_clock(ctx, session)
        refuse_if_clock_set_back(ctx, back, "score")
        refuse_unless_running(ctx, clock, "score")
        lock_fd = take_score_lock_or_busy(ctx, "score")
        try:
            recover_stale_jobs(ctx, session, recover_result)
            try:
                job = start_job(ctx, "score", clock, lock_fd, run_job)
            except OSError as e:
                raise unwritable_state(ctx, e)
        finally:
            os.close(lock_fd)  # the job process holds its own copy of the lock
    if args.follow:
        return ctx.follow(job, 0)
    if ctx.as_json:
        ctx.out.emit({"type": "job", "job_id": job["job_id"], "started_at": job["started_at"], "output_offset": 0})
    else:
        ctx.out.line("Scoring job %s started. Follow it with: runner attach %s" % (job["job_id"], job["job_id"]))


def cmd_attach(ctx, args):
    if args.offset < 0:
        raise RunnerError("usage", "--offset must be 0 or more.")
    job = read_job(ctx, args.job_id)
    if job is None:
        # A record that was damaged is rebuilt by recovery (the job then gets its entry): look again.
        from .jobs import job_exists, probe_and_recover

        if job_exists(ctx, args.job_id):
            probe_and_recover(ctx, recover_result, args.job_id)
            job = read_job(ctx, args.job_id)
    if job is None:
        raise RunnerError("usage", "There is no scoring job %r in %s. Use the job_id from `score` or `status`."
                          % (args.job_id, ctx.state_dir))
    return ctx.follow(job, args.offset)


def cmd_log(ctx, args):
    session = load_session(ctx)
    entries = tail_entries(ctx, session, args.from_index)
    if ctx.as_json:
        ctx.out.emit({"entries": entries})
        return
    if not entries:
        ctx.out.line("The score log has no entries yet.")
        return
    ctx.out.line("%5s  %-8s  %-12s  %-6s  %s" % ("Entry", "Elapsed", "Score", "Counts", "Message"))
    for e in entries:
        ctx.out.line("%5d  %-8s  %-12s  %-6s  %s" % (
            e["index"], format_duration(e["elapsed_s"]), format_score(e["score"]),
            "yes" if e["counts"] else "no", e["message"].replace("\n", " ")[:100]))


def running_job_under_lock(ctx):
    """Whether a job holds the score lock (call holding the session lock)."""
    fd = try_lock(ctx.score_lock_path(), ctx.damaged)
    if fd is None:
        return True
    os.close(fd)
    return False


def cmd_pause(ctx, args):
    if not ctx.manifest["pauses_allowed"]:
        refuse(ctx, "pause", "This environment does not allow pauses: the clock runs until the deadline.")
    with ctx.session_lock():
        session = load_session(ctx)
        clock, back = session_clock(ctx, session)
        if clock.state != "paused":
            refuse_if_clock_set_back(ctx, back, "pause")
            refuse_unless_running(ctx, clock, "pause")
            if running_job_under_lock(ctx):
                refuse(ctx, "pause", "A scoring job is running. Pause after it has finished.")
            session["pauses"].append({"start": iso(clock.now), "end": None})
            save_session(ctx, session)
            ctx.record_event("pause", at=iso(clock.now))
    print_status(ctx, build_status(ctx))


def cmd_resume(ctx, args):
    if not ctx.manifest["pauses_allowed"]:
        refuse(ctx, "resume", "This environment does not allow pauses.")
    with ctx.session_lock():
        session = load_session(ctx)
        clock, back = session_clock(ctx, session)
        if clock.state == "paused":
            refuse_if_clock_set_back(ctx, back, "resume")
            session["pauses"][-1]["end"] = iso(clock.now)
            save_session(ctx, session)
            ctx.record_event("resume", at=iso(clock.now))
        elif clock.state != "running":
            refuse_unless_running(ctx, clock, "resume")
    print_status(ctx, build_status(ctx))


def cmd_end(ctx, args):
    manifest = ctx.manifest
    job = None
    with ctx.session_lock():
        session = load_session(ctx)
        clock, back = session_clock(ctx, session)
        if clock.state == "not_started":
            refuse(ctx, "end", "The session has not started, so there is nothing to end.")
        if clock.state != "ended":
            if not args.yes:
                raise RunnerError("usage", "Ending the session is final: no more scoring and no more time. Run "
                                           "again with --yes to confirm.")
            refuse_if_clock_set_back(ctx, back, "end")
            lock_fd = take_score_lock_or_busy(ctx, "end")
            try:
                recover_stale_jobs(ctx, session, recover_result)
                if clock.is_paused:
                    session["pauses"][-1]["end"] = iso(clock.now)
                    clock = type(clock)(session, clock.now)
                if manifest["scoring"]["aggregation"] == "last" and not manifest["scoring"].get("submit"):
                    # The last score counts, so the solution as it stands at the end is scored once more.
                    job = start_job(ctx, "final", clock, lock_fd, run_job)
                session["ended_at"] = iso(clock.now)
                session["end_reason"] = "ended by the participant"
                save_session(ctx, session)
                ctx.record_event("end", at=session["ended_at"], final_job=job["job_id"] if job else None)
            finally:
                os.close(lock_fd)
    from .endscoring import after_end

    after_end(ctx)  # the aggregate, where the environment records one
    if job is not None and args.follow:
        return ctx.follow(job, 0, then=lambda code: (print_status(ctx, build_status(ctx)), code)[1])
    if job is not None and not ctx.as_json:
        ctx.out.line("Final scoring job %s is running. Follow it with: runner attach %s"
                     % (job["job_id"], job["job_id"]))
    print_status(ctx, build_status(ctx))
    return 0


def cmd_verify(ctx, args):
    session = load_session(ctx)
    scan = scan_log(ctx, session)
    result = {"intact": scan.intact, "entries": len(scan.entries), "first_bad": scan.first_bad,
              "reason": scan.reason}
    if ctx.as_json:
        ctx.out.emit(result)
    elif scan.intact:
        ctx.out.line("Score log intact: %d entries, every hash checks." % len(scan.entries))
    else:
        ctx.out.line("Score log NOT intact: %s" % scan.reason)
    return EXIT_CODES["ok"] if scan.intact else EXIT_CODES["integrity"]

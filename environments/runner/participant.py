"""What the participant keeps, says and agrees to beside the score log: the solution kept at every scoring run
(snapshots.py), and notes, the rules confirmed, giving up and the end questions (records.py), with the
commands that read and write them: note, records, confirm-rules, give-up, answer, snapshot."""

import json
import os

from . import records
from .common import EXIT_CODES, LazyModule, RunnerError, format_duration, iso, round3
from .files import write_json_atomic
from .session import load_session
from .status import measured_start, record_chain  # noqa: F401  (measured_start: for the status and tests)

snapshots = LazyModule(__package__ + ".snapshots")  # status and most commands never touch the store

SUMMARY_LISTED = 20  # left-out paths named in a score log entry (the snapshot's tree lists more)


# ---------------------------------------------------------------------------------------------
# Snapshots of the solution


def snapshot_store(ctx):
    return snapshots.Store(ctx.state_path("snapshots"))


def solution_reader(ctx):
    """The uid whose read access bounds a snapshot: the solution folder's owner when the runner runs as root
    (protected mode), so nothing the participant could not read is copied into the store; else None."""
    if os.geteuid() != 0:
        return None
    try:
        return os.stat(ctx.config["solution_dir"]).st_uid
    except OSError:
        return None


def solution_owner(ctx):
    """(uid, gid) that restored files are given when the runner runs as root; None otherwise."""
    if os.geteuid() != 0:
        return None
    st = os.stat(ctx.config["solution_dir"])
    return st.st_uid, st.st_gid


def keep_solution(ctx, job_dir):
    """Keeps the solution folder as a scoring job is about to score it; the entry's snapshot field.

    A snapshot that cannot be taken never stops the scoring: the entry says why instead.
    """
    try:
        taken = snapshot_store(ctx).take(ctx.config["solution_dir"], ctx.manifest["snapshot"], solution_reader(ctx))
        summary = dict((k, taken[k]) for k in ("id", "files", "bytes", "left_out_total"))
        summary["left_out"] = taken["left_out"][:SUMMARY_LISTED]
    except snapshots.SnapshotError as e:
        summary = {"error": e.message}
    except OSError as e:
        summary = {"error": "the solution could not be kept (%s: %s)" % (getattr(e, "filename", None) or "state",
                                                                          e.strerror or e)}
    try:
        # Only for the entry of a job whose process died (scoring.recover_result), which also needs the
        # scorer's record: that one is not synced (it only matters while this boot lasts), so neither is this.
        write_json_atomic(os.path.join(job_dir, "snapshot.json"), summary, sync=False)
    except OSError:
        pass
    return summary


def _snapshot_error(e):
    code = {"not-found": "usage", "usage": "usage", "not-a-file": "usage", "conflict": "refused",
            "integrity": "integrity", "solution": "environment"}.get(e.code, "internal")
    return RunnerError(code, e.message)


def _known_snapshot(ctx, snapshot_id):
    """snapshot_id, checked to be a snapshot id (the store says whether it holds it)."""
    try:
        snapshots.check_id(snapshot_id)
    except snapshots.SnapshotError as e:
        raise _snapshot_error(e)
    return snapshot_id


def cmd_snapshot(ctx, args):
    """snapshot changes|show|plan|restore|export: compare, read, restore and export kept solutions."""
    store = snapshot_store(ctx)
    sid = _known_snapshot(ctx, args.snapshot_id)
    config = ctx.manifest["snapshot"]
    reader = solution_reader(ctx)
    try:
        if args.action == "changes":
            against = _known_snapshot(ctx, args.against) if args.against else None
            result = store.changes(sid, against, ctx.config["solution_dir"], config, reader)
            if ctx.as_json:
                ctx.out.emit(result)
            else:
                for c in result["changes"]:
                    ctx.out.line("%-8s %s%s" % (c["change"], c["path"], " (binary)" if c["binary"] else ""))
                if not result["changes"]:
                    ctx.out.line("No changes.")
            return EXIT_CODES["ok"]
        if args.action == "show":
            if not args.path:
                raise RunnerError("usage", "Name the file to show: runner snapshot show ID --path PATH")
            data = store.read(sid, args.path)
            if ctx.as_json:
                import base64
                ctx.out.emit({"path": args.path, "size": len(data), "base64": base64.b64encode(data).decode("ascii")})
            else:
                ctx.out.data(data)
            return EXIT_CODES["ok"]
        if args.action == "plan":
            plan = store.plan_restore(sid, ctx.config["solution_dir"], config, reader)
            _print_plan(ctx, sid, plan)
            return EXIT_CODES["ok"]
        if args.action == "restore":
            return _restore(ctx, store, sid, config, reader, args.yes)
        if args.action == "export":
            import io
            buf = io.BytesIO()
            store.export_tar(sid, buf)
            if ctx.as_json:  # a .tar.gz in base64 (for clients that read JSON), else the bytes on stdout
                import base64
                ctx.out.emit({"snapshot": sid, "size": len(buf.getvalue()),
                              "base64": base64.b64encode(buf.getvalue()).decode("ascii")})
            else:
                ctx.out.data(buf.getvalue())
            return EXIT_CODES["ok"]
    except snapshots.SnapshotError as e:
        raise _snapshot_error(e)
    raise RunnerError("usage", "Unknown snapshot action %r (changes, show, plan, restore, export)." % args.action)


def _print_plan(ctx, sid, plan):
    if ctx.as_json:
        ctx.out.emit({"snapshot": sid, "plan": plan})
        return
    ctx.out.line("Restoring %s would write %d file(s), delete %d, leave %d unchanged; %d left as they are."
                 % (sid[:12], len(plan["write"]), len(plan["delete"]), plan["unchanged"], len(plan["untouched"])))
    for rel in plan["write"]:
        ctx.out.line("  write   %s" % rel)
    for rel in plan["delete"]:
        ctx.out.line("  delete  %s" % rel)
    for item in plan["untouched"]:
        ctx.out.line("  keep    %s (%s)" % (item["path"], item["why"]))


def _restore(ctx, store, sid, config, reader, yes):
    """Restores a kept solution under the score lock (no scorer reads the folder meanwhile), keeping the
    current state first and recording the restore."""
    from .commands import take_score_lock_or_busy

    if not yes:
        raise RunnerError("usage", "Restoring overwrites files in the solution folder (the current state is kept "
                                   "first, so it can be undone). See what it does with `runner snapshot plan %s`, "
                                   "then run again with --yes." % sid)
    session = load_session(ctx)
    lock_fd = take_score_lock_or_busy(ctx, "restore")
    try:
        result = store.restore(sid, ctx.config["solution_dir"], config, reader, solution_owner(ctx))
    finally:
        os.close(lock_fd)
    kept = result["kept_as"]["id"]
    _append(ctx, session, "restore", {"snapshot": sid, "kept_as": kept})
    ctx.record_event("restore", snapshot=sid, kept_as=kept, written=len(result["write"]),
                     deleted=len(result["delete"]))
    reply = {"snapshot": sid, "kept_as": dict((k, result["kept_as"][k]) for k in ("id", "files", "bytes")),
             "write": result["write"], "delete": result["delete"], "unchanged": result["unchanged"],
             "untouched": result["untouched"]}
    if ctx.as_json:
        ctx.out.emit(reply)
    else:
        ctx.out.line("Restored %s: %d file(s) written, %d deleted. The state before is kept as %s; restore that to "
                     "undo." % (sid[:12], len(result["write"]), len(result["delete"]), kept))
    return EXIT_CODES["ok"]


# ---------------------------------------------------------------------------------------------
# The session record


def settings(manifest):
    return {"rules": manifest.get("rules"), "end_questions": manifest.get("end_questions"),
            "give_up_reasons": manifest.get("give_up_reasons")}


def _times(ctx, session):
    from .status import session_clock

    clock, back = session_clock(ctx, session)
    return clock, back


def _append(ctx, session, kind, fields):
    clock, back = _times(ctx, session)
    elapsed = None if clock.started is None else round3(clock.elapsed())
    ctx.ensure_state_dir()
    return record_chain(ctx).append(kind, fields, iso(back.effective_now), elapsed)


def _request(args):
    """The request object: --request JSON on the command line, --stdin for JSON on stdin, or serve's args."""
    raw = getattr(args, "request", None)
    if raw is None and getattr(args, "stdin", False):
        import sys
        raw = sys.stdin.read()
    if raw is None:
        return dict((k, v) for k, v in vars(args).items() if k in ("text", "reason", "choice", "reasons", "answers",
                                                                   "questions", "skipped", "rules"))
    if isinstance(raw, dict):
        return raw
    try:
        obj = json.loads(raw)
    except ValueError as e:
        raise RunnerError("usage", "The request is not valid JSON (%s)." % e)
    if not isinstance(obj, dict):
        raise RunnerError("usage", "The request must be a JSON object.")
    return obj


def _fields(kind, request, manifest):
    try:
        return records.fields_for(kind, request, settings(manifest))
    except records.RecordError as e:
        raise RunnerError(e.code if e.code in EXIT_CODES else "usage", e.message)


def _emit_record(ctx, record, text):
    if ctx.as_json:
        ctx.out.emit({"record": record})
    else:
        ctx.out.line(text)


def cmd_note(ctx, args):
    """Adds a note (Markdown) with the session time; allowed whenever the session is set up."""
    session = load_session(ctx)
    fields = _fields("note", _request(args), ctx.manifest)
    record = _append(ctx, session, "note", fields)
    _emit_record(ctx, record, "Note %d recorded at %s." % (
        record["index"], format_duration(record["elapsed_s"]) if record["elapsed_s"] is not None else record["time"]))
    return EXIT_CODES["ok"]


def cmd_confirm_rules(ctx, args):
    """Records that the participant confirmed the study's rules (as the VM has them), with the time."""
    request = _request(args)
    if not ctx.manifest.get("rules") and not request.get("rules"):
        raise RunnerError("usage", "There are no rules to confirm: the environment states none and the request "
                                   "names none (give the rules as shown: {\"rules\": [...]}).")
    session = load_session(ctx)
    fields = _fields("rules_confirmed", request, ctx.manifest)
    record = _append(ctx, session, "rules_confirmed", fields)
    _emit_record(ctx, record, "Rules confirmed at %s." % record["time"])
    return EXIT_CODES["ok"]


def cmd_answer(ctx, args):
    """Records the answers to the end questions (or that they were skipped); only once the session ended."""
    from .status import session_clock

    session = load_session(ctx)
    clock, _ = session_clock(ctx, session)
    if clock.state != "ended":
        raise RunnerError("refused", "The end questions are answered after the session has ended.")
    request = _request(args)
    if not ctx.manifest.get("end_questions") and not request.get("questions"):
        raise RunnerError("usage", "This environment has no end questions; give the questions answered with the "
                                   "answers ({\"questions\": [...], \"answers\": {...}}).")
    fields = _fields("answers", request, ctx.manifest)
    record = _append(ctx, session, "answers", fields)
    _emit_record(ctx, record, "Answers recorded%s." % (" (skipped)" if record["skipped"] else ""))
    return EXIT_CODES["ok"]


def cmd_give_up(ctx, args):
    """Records why the participant gives up, then ends the session as `end --yes` does."""
    from .commands import cmd_end
    from .status import session_clock

    session = load_session(ctx)
    clock, _ = session_clock(ctx, session)
    if clock.state == "not_started":
        raise RunnerError("refused", "The session has not started, so there is nothing to give up.")
    if clock.state == "ended":
        raise RunnerError("refused", "The session has already ended.")
    fields = _fields("give_up", _request(args), ctx.manifest)
    _append(ctx, session, "give_up", fields)
    ctx.record_event("give_up", choice=fields["choice"])

    class EndArgs(object):
        yes = True
        follow = getattr(args, "follow", False)
    return cmd_end(ctx, EndArgs())


def read_records(ctx):
    scan = record_chain(ctx).scan()
    return {"records": scan.records, "intact": scan.intact, "first_bad": scan.first_bad, "reason": scan.reason}


def cmd_records(ctx, args):
    """The session record: notes, rules confirmed, restores, giving up and answers, checked."""
    result = read_records(ctx)
    if ctx.as_json:
        ctx.out.emit(result)
    else:
        for r in result["records"]:
            when = format_duration(r["elapsed_s"]) if r["elapsed_s"] is not None else "before start"
            body = {"note": lambda: r["text"], "give_up": lambda: r["choice"] or r["reason"],
                    "answers": lambda: "skipped" if r["skipped"] else json.dumps(r["answers"]),
                    "rules_confirmed": lambda: "%d rule(s)" % len(r["rules"]),
                    "restore": lambda: "restored %s, kept %s" % (r["snapshot"][:12], r["kept_as"][:12])}[r["kind"]]()
            ctx.out.line("%3d  %-9s  %-15s  %s" % (r["index"], when, r["kind"], body.replace("\n", " ")[:100]))
        if not result["intact"]:
            ctx.out.line("The record is NOT intact: %s" % result["reason"])
    return EXIT_CODES["ok"] if result["intact"] else EXIT_CODES["integrity"]


# ---------------------------------------------------------------------------------------------
# The starting score measured on this machine (unprotected mode: the demo, practice sessions)


def cmd_measure_start(ctx, args):
    """Scores the untouched starting solution once, in a runner home of its own, and records the score as this
    machine's starting score: a loaded or slower machine then normalises an untouched solution to about 0."""
    import shutil

    from .cli import run_command
    from .home import Context
    from .status import build_status, print_status, session_clock

    if ctx.config["mode"] == "protected":
        raise RunnerError("refused", "In protected mode the organiser measures the starting score when preparing "
                                     "the VM; measure-start is for unprotected sessions.")
    if ctx.manifest["scoring"].get("visible", "all") == "none":
        raise RunnerError("refused", "This environment's scores are hidden from the participant (scoring.visible "
                                     "\"none\"), so a starting score measured here could not be shown; the "
                                     "manifest's starting score is used.")
    session = load_session(ctx)
    clock, _ = session_clock(ctx, session)
    if clock.state != "not_started":
        raise RunnerError("refused", "The session has started: the starting score is measured before the start, "
                                     "so that it never competes with a scoring run.")
    scratch = ctx.state_path("measure-start")
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch, 0o755)
    try:
        inner = Context(os.path.join(scratch, "home"), ctx.as_json, ctx.out)
        # The measurement is followed here to its end, whoever asked (a channel too follows it in place).
        inner.follow_handler = _follow_to_end

        class SetupArgs(object):
            environment = ctx.config["environment"]
            solution_dir = os.path.join(scratch, "solution")
            environments_dir = ctx.config["environments_dir"]
        quiet = _Quiet()
        inner.out = quiet
        for name, a in (("setup", SetupArgs()), ("start", None)):
            code = run_command(inner, name, a)
            if code:
                raise RunnerError("environment", "Measuring the starting score failed at %s: %s" % (
                    name, quiet.error_message() or "exit code %d" % code))
        inner.out = ctx.out

        class ScoreArgs(object):
            follow = True
        entries = []
        inner.out = _Tee(ctx.out, entries)
        code = run_command(inner, "score", ScoreArgs())
        entry = entries[-1] if entries else None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if entry is None or entry.get("score") is None:
        raise RunnerError("environment", "The starting solution got no score on this machine: %s. The manifest's "
                                         "starting score is used." % ((entry or {}).get("message") or "no result"))
    record = {"environment": ctx.config["environment"], "score": entry["score"],
              "manifest_starting_score": ctx.manifest["scoring"]["starting_score"],
              "measured_at": entry["ended_at"], "duration_s": entry["duration_s"]}
    write_json_atomic(ctx.state_path("starting-score.json"), record)
    ctx.record_event("measure_start", score=entry["score"], manifest=record["manifest_starting_score"])
    print_status(ctx, build_status(ctx))
    return EXIT_CODES["ok"]


def _follow_to_end(ctx, job, offset, then=None):
    from .follow import follow_job

    code = follow_job(ctx, job, offset)
    return then(code) if then is not None else code


class _Quiet(object):
    """Keeps a command's output to itself (the set-up steps of a measurement), remembering its error."""

    def __init__(self):
        self.objects = []

    def emit(self, obj):
        self.objects.append(obj)

    def line(self, text):
        pass

    def text(self, text):
        pass

    def data(self, data):
        pass

    def error_text(self, text):
        self.objects.append({"error": {"message": text.strip()}})

    def error_message(self):
        for o in reversed(self.objects):
            if isinstance(o, dict) and "error" in o:
                return o["error"].get("message")
        return None


class _Tee(object):
    """Passes a scoring job's stream on, and keeps its entry."""

    def __init__(self, out, entries):
        self.out = out
        self.entries = entries

    def emit(self, obj):
        if isinstance(obj, dict) and obj.get("type") == "entry":
            self.entries.append(obj["entry"])
            obj = {"type": "measured", "entry": obj["entry"]}
        self.out.emit(obj)

    def line(self, text):
        self.out.line(text)

    def text(self, text):
        self.out.text(text)

    def data(self, data):
        self.out.data(data)

    def error_text(self, text):
        self.out.error_text(text)

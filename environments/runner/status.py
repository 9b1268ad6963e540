"""The session's status (what `status` answers) and the texts people read on a terminal. `status` is the
command run most often, each time by a new Python in one-shot use: it imports only what it needs."""

import os

from . import records
from .common import format_duration, format_score, iso, now_s, round3
from .files import read_state_file
from .grants import granted_until, grants_summary
from .jobs import job_summary, probe_and_recover
from .logstate import log_summary
from .session import Clock, ClockSetBack, load_session, note_time_seen, recorded_floor

from . import RUNNER_VERSION


def record_chain(ctx):
    seed = "%s:%s" % (ctx.config["environment"], os.path.realpath(ctx.state_dir))
    return records.Chain(ctx.state_path("records.jsonl"), seed)


def status_fields(ctx):
    """What status adds for the participant's side: the organiser's settings and the record's state."""
    manifest = ctx.manifest
    scan = record_chain(ctx).scan()
    confirmed = [r for r in scan.records if r["kind"] == "rules_confirmed"]
    gave_up = [r for r in scan.records if r["kind"] == "give_up"]
    answered = [r for r in scan.records if r["kind"] == "answers"]
    return {
        "rules": manifest.get("rules"),
        "end_questions": manifest.get("end_questions"),
        "give_up_reasons": manifest.get("give_up_reasons"),
        "away_after_minutes": manifest.get("away_after_minutes"),
        "rules_confirmed_at": confirmed[-1]["time"] if confirmed else None,
        "gave_up": {"reason": gave_up[-1]["reason"], "choice": gave_up[-1]["choice"]} if gave_up else None,
        "answered": bool(answered),
        "notes": sum(1 for r in scan.records if r["kind"] == "note"),
        "records_intact": scan.intact,
    }


def measured_start(ctx):
    """The starting score measured on this machine by measure-start, or None."""
    def check(o):
        ok = isinstance(o, dict) and isinstance(o.get("score"), (int, float)) and not isinstance(o.get("score"), bool)
        return None if ok and o.get("environment") == ctx.config["environment"] else "not a starting-score record"
    return read_state_file(ctx.state_path("starting-score.json"), check=check)


def recorded_aggregate(ctx, manifest):
    """The aggregate recorded once the session ended, where the environment has an aggregate command."""
    if not manifest["scoring"].get("aggregate_command"):
        return None
    from .endscoring import read_aggregate

    return read_aggregate(ctx)


def cmd_status(ctx, args):
    print_status(ctx, build_status(ctx))


def calibration_pending(scoring):
    """How the starting and reference scores were estimated, when the manifest marks them not calibrated yet."""
    calibration = scoring.get("calibration") or {}
    return calibration.get("estimate") if calibration.get("status") == "not calibrated" else None


def environment_summary(manifest, session, measured=None):
    s = manifest["scoring"]
    summary = {
        "id": manifest["id"], "title": manifest["title"], "version": manifest["version"],
        "direction": s["direction"], "aggregation": s["aggregation"],
        "starting_score": s["starting_score"], "reference_score": s["reference_score"],
        "time_limit_s": session["time_limit_s"] if session else manifest["time_limit_s"],
        "pauses_allowed": manifest["pauses_allowed"],
        "instructions_before_start": manifest["instructions_before_start"],
        "gpus": manifest["hardware"]["gpus"], "gpu_model": manifest["hardware"]["gpu_model"],
        "min_free_disk_gb": manifest["hardware"]["min_free_disk_gb"], "scoring_timeout_s": s["timeout_s"],
        "manifest_starting_score": s["starting_score"], "starting_score_measured_at": None,
        "calibration_pending": calibration_pending(s),
        "submit": ({"format": s["submit"]["format"], "pattern": s["submit"].get("pattern")}
                   if s.get("submit") else None),
        "visible": s.get("visible", "all"),
    }
    if measured is not None:
        # Measured on this machine (measure-start): an untouched solution normalises to about 0 here.
        summary["starting_score"] = measured["score"]
        summary["starting_score_measured_at"] = measured.get("measured_at")
    return summary


def effective_scoring(ctx, measured):
    """The manifest's scoring, with the starting score measured on this machine when there is one."""
    scoring = ctx.manifest["scoring"]
    if measured is None:
        return scoring
    return dict(scoring, starting_score=measured["score"])


def counted_entry(entries, scoring):
    """The entry that counts: the best (by direction) or the last, among counting entries with a score."""
    candidates = [e for e in entries if e["counts"] and e["score"] is not None]
    if not candidates:
        return None
    if scoring["aggregation"] == "last":
        chosen = candidates[-1]
    else:
        chosen = candidates[0]
        for e in candidates[1:]:
            better = e["score"] < chosen["score"] if scoring["direction"] == "lower" else e["score"] > chosen["score"]
            if better:
                chosen = e
    ys, yr = scoring["starting_score"], scoring["reference_score"]
    return {"index": chosen["index"], "score": chosen["score"], "normalized": (chosen["score"] - ys) / (yr - ys)}


def recover_result(ctx, job):
    """scoring.recover_result, imported only when a job died (status seldom needs the scoring module)."""
    from .scoring import recover_result as recover

    return recover(ctx, job)


def session_clock(ctx, session, summary=None):
    """(Clock at the effective now, ClockSetBack) for the session: the machine's clock, checked against the
    latest time the session's records show (a clock set back cannot give time back)."""
    if summary is None:
        summary = log_summary(ctx, session, ctx.manifest["scoring"])
    now = now_s()
    back = ClockSetBack(now, recorded_floor(ctx, session, summary.last_times))
    note_time_seen(ctx, now, back.floor)
    return Clock(session, back.effective_now), back


def build_status(ctx):
    manifest = ctx.manifest
    job = probe_and_recover(ctx, recover_result)
    session = load_session(ctx)
    summary = log_summary(ctx, session, manifest["scoring"])
    clock, back = session_clock(ctx, session, summary)
    ended = clock.ended_at
    measured = measured_start(ctx) if ctx.config["mode"] != "protected" else None
    status = {
        "runner_version": RUNNER_VERSION,
        "mode": ctx.config["mode"],
        "environment": environment_summary(manifest, session, measured),
        "state": clock.state,
        "started_at": session["started_at"] if session else None,
        "deadline": iso(clock.deadline) if session else None,
        "ended_at": iso(ended) if ended is not None else None,
        "now": iso(back.now),
        "seconds_left": round3(clock.seconds_left()) if session else None,
        "elapsed_s": round3(clock.elapsed()),
        "paused_s": round3(clock.paused_total()),
        "job": job_summary(job) if job else None,
        "entries": summary.entries,
        "counted": summary.counted(effective_scoring(ctx, measured)),
        "log_intact": summary.intact,
        "solution_dir": ctx.config["solution_dir"],
        "participant": status_fields(ctx),
        "granted_s": round3(granted_until(session, max(clock.ended_at or clock.now, clock.started))) if session else 0.0,
        "grants": grants_summary(session),
        "aggregate": recorded_aggregate(ctx, manifest),
    }
    if back.set_back:
        status["clock_set_back"] = True
    return status


def describe_entry(entry):
    hidden = entry.get("hidden") or {}
    if "scored" in hidden:
        shown = "scored (the score is hidden)" if hidden["scored"] else "no score"
    else:
        shown = format_score(entry["score"])
    text = "Entry %d: %s" % (entry["index"], shown)
    if not entry["counts"]:
        text += " (does not count: started after the deadline)"
    if entry["message"]:
        text += " - " + entry["message"]
    return text


def status_text(status):
    env = status["environment"]
    lines = ["Environment: %s (%s %s)" % (env["title"], env["id"], env["version"])]
    state = status["state"]
    if state == "not_started":
        lines.append("Session: not started (time limit %s)" % format_duration(env["time_limit_s"]))
    elif state == "ended":
        lines.append("Session: ended at %s" % status["ended_at"])
    else:
        lines.append("Session: %s, %s left (deadline %s)" % (state, format_duration(status["seconds_left"]),
                                                            status["deadline"]))
    if status.get("clock_set_back"):
        lines.append("Clock: this machine's clock is behind the session's records (set back?); tell the organiser")
    if status["job"]:
        lines.append("Scoring job running: %s (since %s)" % (status["job"]["job_id"], status["job"]["started_at"]))
    counted = status["counted"]
    direction = "lower is better" if env["direction"] == "lower" else "higher is better"
    if counted:
        lines.append("Score that counts: %s (normalised %.3f, entry %d; %s)"
                     % (format_score(counted["score"]), counted["normalized"], counted["index"], direction))
    else:
        lines.append("Score that counts: none yet (%s)" % direction)
    lines.append("Score log: %d entries, %s" % (status["entries"], "intact" if status["log_intact"]
                                                else "NOT intact (run: runner verify)"))
    lines.append("Solution folder: %s" % status["solution_dir"])
    lines.append("Mode: %s" % status["mode"])
    return "\n".join(lines)


def print_status(ctx, status):
    if ctx.as_json:
        ctx.out.emit(status)
    else:
        ctx.out.line(status_text(status))

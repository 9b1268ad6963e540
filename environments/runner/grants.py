"""Time given back to a participant, on the record: `extend` (the deadline moves by N minutes) and
`infrastructure-pause` (a stretch of clock time when the infrastructure failed counts as paused).

Only an administrator may grant time. In protected mode the state belongs to root, and the participant's one
sudo rule runs this very runner as root, so the runner tells them apart by who came through sudo: a user
whose sudo rule is the participant's rule (/etc/sudoers.d/rebench) is refused, and the attempt is recorded
in the session's events. The administrator logs in as root, or runs the runner through their own sudo.
In unprotected mode the participant owns the runner home and could edit session.json themselves, so a
grant there is recorded with who ran it, and says that it proves nothing about who that was.
"""

import os
import re

from .common import INSTALLED_RUNNER, RunnerError, clean_text, iso, parse_iso, round3

GRANT_COMMANDS = ("extend", "infrastructure-pause")
KINDS = ("extend", "infrastructure_pause")
MAX_EXTEND_MINUTES = 24 * 60
REASON_LIMIT = 500
PARTICIPANT_SUDOERS = "/etc/sudoers.d/rebench"
UNPROTECTED_NOTE = ("Unprotected mode: the participant owns this runner home and could grant time the same way; "
                    "the record names the login that ran the command, not that it was an administrator.")


# ---------------------------------------------------------------------------------------------
# The clock's side: every pause (the participant's and the infrastructure's) as one union of stretches


def pause_intervals(session):
    """(start, end or None) of every pause: the participant's and the infrastructure's."""
    out = [(parse_iso(p["start"]), parse_iso(p["end"]) if p.get("end") else None) for p in session["pauses"]]
    for g in session.get("grants") or []:
        if g["kind"] == "infrastructure_pause":
            out.append((parse_iso(g["from"]), parse_iso(g["to"])))
    return out


def union_until(intervals, t):
    """How much of the time before t the union of the stretches covers (an open stretch runs up to t)."""
    clipped = sorted((start, min(end if end is not None else t, t)) for start, end in intervals if start < t)
    total = 0.0
    cur_start = cur_end = None
    for start, end in clipped:
        if end <= start:
            continue
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        total += cur_end - cur_start
    return total


def extended_s(session):
    """Seconds added to the time limit by extensions."""
    return float(sum(g["seconds"] for g in session.get("grants") or [] if g["kind"] == "extend"))


def granted_until(session, t):
    """Seconds given back by time t: extensions, and infrastructure pauses where the participant had not paused."""
    if session is None:
        return 0.0
    own = [(parse_iso(p["start"]), parse_iso(p["end"]) if p.get("end") else None) for p in session["pauses"]]
    return extended_s(session) + union_until(pause_intervals(session), t) - union_until(own, t)


def grants_problem(session):
    """Why session.json's grants cannot be used, or None."""
    grants = session.get("grants")
    if grants is None:
        return None
    if not isinstance(grants, list):
        return "grants is not a list"
    for g in grants:
        if not isinstance(g, dict) or g.get("kind") not in KINDS:
            return "a grant has no valid kind"
        if not isinstance(g.get("seconds"), (int, float)) or isinstance(g.get("seconds"), bool) or g["seconds"] < 0:
            return "a grant has no valid seconds"
        if not isinstance(g.get("reason"), str) or not isinstance(g.get("by"), str) or parse_iso(g.get("at")) is None:
            return "a grant has no reason, author or time"
        if g["kind"] == "infrastructure_pause":
            start, end = parse_iso(g.get("from")), parse_iso(g.get("to"))
            if start is None or end is None or end <= start:
                return "an infrastructure pause has no valid stretch"
    return None


def grants_summary(session):
    """The grants as status reports them."""
    out = []
    for g in (session or {}).get("grants") or []:
        out.append({"kind": g["kind"], "seconds": round3(g["seconds"]), "from": g.get("from"), "to": g.get("to"),
                    "reason": g["reason"], "by": g["by"], "at": g["at"]})
    return out


# ---------------------------------------------------------------------------------------------
# Who may grant time


def participants_of_rule(text, runner_path):
    """The users that a sudoers file gives the participant's rule: running the runner as root, nothing else."""
    users = set()
    pattern = re.compile(r"^\s*([A-Za-z0-9_.][A-Za-z0-9_.-]*)\s+ALL\s*=\s*\(root\)\s+NOPASSWD:\s*(\S+)\s*$")
    for line in text.splitlines():
        m = pattern.match(line)
        if m and os.path.realpath(m.group(2)) == os.path.realpath(runner_path):
            users.add(m.group(1))
    return users


def refusal_for_caller(caller, sudoers_path=PARTICIPANT_SUDOERS, runner_path=None):
    """Why a sudo caller may not grant time (a message), or None. `caller` is the user who came through sudo
    (None for root itself). A caller whose sudo rule cannot be read is refused too: only root can tell."""
    if caller is None:
        return None
    try:
        with open(sudoers_path, "r", encoding="utf-8") as f:
            participants = participants_of_rule(f.read(), runner_path or INSTALLED_RUNNER)
    except OSError as e:
        return ("Time can only be granted by an administrator, and %s could not be read to tell who the "
                "participant is (%s). Log in as root and run the runner there." % (sudoers_path, e.strerror or e))
    if caller in participants:
        return ("Only an administrator can give time back; %s runs the runner through the participant's sudo "
                "rule, which cannot. Ask the organiser: they grant time over their own login, on the record."
                % caller)
    return None


def participants_refusal(caller, what, sudoers_path=PARTICIPANT_SUDOERS, runner_path=None):
    """Why a sudo caller may not run an administrator's command (`what` says whose it is), or None: the same
    test as refusal_for_caller, for the other commands only an administrator may run (`hidden`)."""
    if caller is None:
        return None
    try:
        with open(sudoers_path, "r", encoding="utf-8") as f:
            participants = participants_of_rule(f.read(), runner_path or INSTALLED_RUNNER)
    except OSError as e:
        return ("%s, and %s could not be read to tell who the participant is (%s). Log in as root and run the "
                "runner there." % (what, sudoers_path, e.strerror or e))
    if caller in participants:
        return ("%s; %s runs the runner through the participant's sudo rule, which cannot read them."
                % (what, caller))
    return None


def granted_by(caller):
    """The login named in the record: the sudo caller, or the user running the runner."""
    if caller:
        return caller
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return "uid %d" % os.geteuid()


# ---------------------------------------------------------------------------------------------
# Reading the organiser's input


def parse_reason(text):
    reason = " ".join(clean_text(text or "").split())
    if not reason:
        raise RunnerError("usage", "--reason needs a text: say why the time is given back (it is recorded and "
                                   "shown to the participant).")
    if len(reason) > REASON_LIMIT:
        raise RunnerError("usage", "--reason is %d characters long; keep it within %d." % (len(reason), REASON_LIMIT))
    return reason


def parse_minutes(value):
    try:
        minutes = float(value)
    except (TypeError, ValueError):
        raise RunnerError("usage", "--minutes must be a number of minutes, not %r." % (value,))
    if not (0 < minutes <= MAX_EXTEND_MINUTES):
        raise RunnerError("usage", "--minutes must be more than 0 and at most %d (a day), not %r."
                          % (MAX_EXTEND_MINUTES, value))
    return minutes


def parse_time(value, flag):
    t = parse_iso(value)
    if t is None:
        raise RunnerError("usage", "%s must be an ISO 8601 time with its zone, e.g. 2026-03-01T10:15:00Z, not %r."
                          % (flag, value))
    return t


def check_grantable(clock, action):
    """Time can be given back to a session that has started and was not ended by the participant."""
    if clock.state == "not_started":
        raise RunnerError("refused", "The session has not started; there is no time to give back. (To change the "
                                     "time limit, change the environment before the session starts.)")
    if clock.ended_explicitly is not None:
        raise RunnerError("refused", "The participant ended the session at %s; %s cannot give time back to a "
                                     "session that was ended on purpose." % (iso(clock.ended_explicitly), action))


def stretch_problem(clock, start, end, own_and_granted):
    """Why [start, end] cannot be recorded as an infrastructure pause, or None."""
    if end <= start:
        return "--to (%s) must be after --from (%s)." % (iso(end), iso(start))
    if start < clock.started:
        return "--from (%s) is before the session started (%s)." % (iso(start), iso(clock.started))
    if end > clock.now:
        return ("--to (%s) is in the future (the VM's clock reads %s): record an outage once it is over."
                % (iso(end), iso(clock.now)))
    if start >= clock.deadline:
        return "--from (%s) is after the session's deadline (%s)." % (iso(start), iso(clock.deadline))
    if union_until(own_and_granted + [(start, end)], end) - union_until(own_and_granted, end) <= 0:
        return "the session was already paused for the whole of %s to %s." % (iso(start), iso(end))
    return None


# ---------------------------------------------------------------------------------------------
# The commands


def _grant(ctx, args, action, make):
    """Checks the caller, then under the session lock reads the session, lets `make(clock, session)` build the
    grant (or refuse), records it in session.json and in the events, and answers with the status."""
    from .commands import refuse, refuse_if_clock_set_back
    from .session import load_session, save_session
    from .status import build_status, print_status, session_clock

    from .protect import sudo_caller

    caller = sudo_caller()
    protected = ctx.config["mode"] == "protected"
    if protected:
        if os.geteuid() != 0:
            # Not recorded: without root the session's events cannot be written either.
            raise RunnerError("refused", "In protected mode only root can give time back: log in as root, or run "
                                         "the runner through your own sudo (sudo -n %s %s ...)." % (INSTALLED_RUNNER, action))
        why = refusal_for_caller(caller)
        if why:
            ctx.record_event("refused", action=action, reason=why, caller=caller,
                             minutes=getattr(args, "minutes", None), requested_reason=getattr(args, "reason", None))
            raise RunnerError("refused", why)
    reason = parse_reason(args.reason)
    by = granted_by(caller)
    with ctx.session_lock():
        session = load_session(ctx)
        clock, back = session_clock(ctx, session)
        refuse_if_clock_set_back(ctx, back, action)
        try:
            check_grantable(clock, action)
            grant = make(clock, session)
        except RunnerError as e:
            if e.code == "refused":
                refuse(ctx, action, e.message)
            raise
        before = clock.deadline
        grant.update({"reason": reason, "by": by, "at": iso(clock.now)})
        session.setdefault("grants", []).append(grant)
        save_session(ctx, session)
        after = type(clock)(session, clock.now).deadline
        ctx.record_event("time_granted", kind=grant["kind"], seconds=grant["seconds"], **{
            "from": grant.get("from"), "to": grant.get("to"), "reason": reason, "by": by, "mode": ctx.config["mode"],
            "deadline_before": iso(before), "deadline_after": iso(after)})
    status = build_status(ctx)
    if not protected:
        status["note"] = UNPROTECTED_NOTE
    if ctx.as_json:
        print_status(ctx, status)
    else:
        ctx.out.line("Granted %s to the session (%s): the deadline moved from %s to %s. Recorded by %s: %s"
                     % (_minutes(grant["seconds"]), grant["kind"].replace("_", " "), iso(before), iso(after), by, reason))
        if not protected:
            ctx.out.line(UNPROTECTED_NOTE)
    return 0


def _minutes(seconds):
    return "%g min" % round(seconds / 60.0, 2)


def cmd_extend(ctx, args):
    minutes = parse_minutes(args.minutes)

    def make(clock, session):
        return {"kind": "extend", "seconds": round3(minutes * 60.0), "from": None, "to": None}

    return _grant(ctx, args, "extend", make)


def cmd_infrastructure_pause(ctx, args):
    start = parse_time(args.from_time, "--from")
    end = parse_time(args.to_time, "--to")

    def make(clock, session):
        existing = pause_intervals(session)
        problem = stretch_problem(clock, start, end, existing)
        if problem:
            raise RunnerError("refused", "This infrastructure pause cannot be recorded: " + problem)
        seconds = union_until(existing + [(start, end)], end) - union_until(existing, end)
        return {"kind": "infrastructure_pause", "seconds": round3(seconds), "from": iso(start), "to": iso(end)}

    return _grant(ctx, args, "infrastructure-pause", make)

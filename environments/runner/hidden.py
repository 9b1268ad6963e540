"""Hidden scores (the manifest's scoring.visible): what of a scoring run the participant must not see is kept
out of the score log and everything derived from it, in a record of its own that only the organiser reads.

- "all": nothing is hidden.
- "none" (METR's visible_to_agent: false): the score and the scorer's message are hidden. The entry keeps
  `score: null`, a message that says only whether the run scored (or the runner's own reason for no score:
  a time-out, a crash), and `hidden: {"sha256", "scored"}`.
- "validation" (RE-Bench's proposal): the scorer's `score` is the participant's (a validation score); its
  `hidden_score` and `hidden_message` (e.g. the same measurement on held-out inputs) are hidden, and the
  entry keeps `hidden: {"sha256"}`.

The record, state/hidden/<job id>.json, is {"job_id", "salt", "score", "message"}; the entry holds the
SHA-256 of its canonical JSON, so the hash chain covers the hidden value without holding it (the random salt
keeps a guessed score from being checked against the hash). The folder is 0700 and the records 0600: in
protected mode they are root's, and the participant's sudo rule cannot read them (`hidden` refuses it); in
unprotected mode they are the participant's own files, like everything else there.
"""

import json
import math
import os

from .common import MESSAGE_LIMIT, RESULT_LIMIT, RunnerError, clean_text, describe, sha256
from .files import make_dirs, read_state_file, write_atomic
from .scorelog import canonical_json

HIDDEN_DIR = "hidden"
SCORED_TEXT = "Scored. The score is hidden from you; the organiser sees it."
NO_SCORE_TEXT = "No score. The scorer's message is hidden from you; the organiser sees it."


def visibility(manifest):
    return manifest["scoring"].get("visible", "all")


def record_path(ctx, job_id):
    return ctx.state_path(HIDDEN_DIR, job_id + ".json")


def record_hash(record):
    return sha256(canonical_json(record).encode("utf-8")).hexdigest()


def read_hidden_result(path):
    """(hidden score or None, hidden message, why there is no hidden score or None) from the result file."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            data = json.loads(f.read(RESULT_LIMIT + 1))
    except (OSError, ValueError, RecursionError):
        return None, "", "the result file could not be read"
    if not isinstance(data, dict):
        return None, "", "the result file does not hold a JSON object"
    message = data.get("hidden_message", "")
    if not isinstance(message, str):
        message = "" if message is None else json.dumps(message, ensure_ascii=False)
    if "hidden_score" not in data:
        return None, message, "the result has no \"hidden_score\""
    raw = data["hidden_score"]
    if raw is None:
        return None, message, None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None, message, "the hidden score %s is not a number" % describe(raw)
    try:
        score = float(raw)
    except OverflowError:
        return None, message, "the hidden score is too large"
    if not math.isfinite(score):
        return None, message, "the hidden score %s is not a finite number" % score
    return score, message, None


def _write_record(ctx, job_id, score, message):
    record = {"job_id": job_id, "salt": os.urandom(16).hex(), "score": score,
              "message": clean_text(message, MESSAGE_LIMIT)}
    folder = ctx.state_path(HIDDEN_DIR)
    make_dirs(folder, 0o700)
    os.chmod(folder, 0o700)  # whatever the umask made of it
    # Synced before the outcome and the entry that hold its hash: an entry never points at a lost record.
    write_atomic(record_path(ctx, job_id), (json.dumps(record, sort_keys=True) + "\n").encode("utf-8"), mode=0o600)
    return record_hash(record)


def hide(ctx, fields, result_file, runner_reason):
    """Moves what the participant must not see from a finished run's fields into its hidden record.

    fields: the entry's fields as the run produced them (score and message as the scorer gave them, with the
    runner's reasons). result_file: the scorer's result file (for hidden_score). runner_reason: why the run
    failed at the runner's level (start, time-out, signal, exit code), or None; it holds no scorer value."""
    mode = visibility(ctx.manifest)
    if mode == "none":
        scored = fields["score"] is not None
        digest = _write_record(ctx, fields["job_id"], fields["score"], fields["message"])
        fields["score"] = None
        if scored:
            fields["message"] = SCORED_TEXT
        elif runner_reason:
            fields["message"] = "No score: %s." % runner_reason
        else:
            fields["message"] = NO_SCORE_TEXT
        fields["hidden"] = {"sha256": digest, "scored": scored}
    elif mode == "validation":
        if runner_reason:
            score, message = None, "No hidden score: %s." % runner_reason
        else:
            score, message, reason = read_hidden_result(result_file)
            message = message.strip()
            if reason:
                note = "No hidden score: %s." % reason
                message = message + " | " + note if message else note
        fields["hidden"] = {"sha256": _write_record(ctx, fields["job_id"], score, message)}
    return fields


def read_record(ctx, entry):
    """The hidden record of an entry as the organiser reads it: score, message, whether it is intact."""
    out = {"index": entry["index"], "job_id": entry["job_id"], "score": None, "message": "", "intact": False,
           "problem": None}
    record = read_state_file(record_path(ctx, entry["job_id"]))
    if not isinstance(record, dict):
        out["problem"] = "the hidden record %s is missing or damaged" % record_path(ctx, entry["job_id"])
        return out
    if record_hash(record) != entry["hidden"]["sha256"] or record.get("job_id") != entry["job_id"]:
        out["problem"] = "the hidden record does not match the hash in the score log (changed?)"
        return out
    score = record.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))
                              or not math.isfinite(score)):
        out["problem"] = "the hidden record's score is not a number"
        return out
    out.update(score=score, message=record.get("message") if isinstance(record.get("message"), str) else "",
               intact=True)
    return out


UNPROTECTED_NOTE = ("Unprotected mode: the participant owns this runner home, so these hidden records are their own "
                    "files and could have been read (or rewritten with the whole log) by them.")


def cmd_hidden(ctx, args):
    """The organiser's view of the hidden scores. In protected mode the participant's sudo rule is refused."""
    from .grants import participants_refusal
    from .protect import privileged_call, sudo_caller
    from .scorelog import scan_log
    from .session import load_session

    caller = sudo_caller() if privileged_call() else None
    if ctx.config["mode"] == "protected":
        why = participants_refusal(caller, "Hidden scores are for the organiser")
        if why:
            ctx.record_event("refused", action="hidden", reason=why, caller=caller)
            raise RunnerError("refused", why)
    scan = scan_log(ctx, load_session(ctx))
    records = [read_record(ctx, e) for e in scan.entries if isinstance(e.get("hidden"), dict)]
    reply = {"visible": visibility(ctx.manifest), "hidden": records,
             "note": UNPROTECTED_NOTE if ctx.config["mode"] != "protected" else None}
    if ctx.as_json:
        ctx.out.emit(reply)
        return
    if not records:
        ctx.out.line("No hidden scores (scoring.visible is %r)." % reply["visible"])
    for r in records:
        shown = "no score" if r["score"] is None else repr(r["score"])
        ctx.out.line("Entry %d: hidden %s%s %s" % (r["index"], shown, "" if r["intact"] else " (%s)" % r["problem"],
                                                   r["message"]))
    if reply["note"]:
        ctx.out.line(reply["note"])

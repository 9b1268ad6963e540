"""The session record: what the participant says and agrees to, beside the score log.

records.jsonl in the runner's state folder holds one record per line, hash-chained like the score log
(each record names the hash of the one before it; the first names the chain's genesis hash), so an edit,
a deletion or a reordering is found by `scan`. In protected mode the file belongs to root and only the
runner writes it.

Record kinds and their own fields (every record also has index, kind, time, elapsed_s, prev_hash, hash):

    note             text: Markdown, 1 to 20000 characters (what was tried and why)
    give_up          reason: free text (0 to 4000 characters); choice: one of the organiser's reasons or null
    answers          questions: the questions as shown; answers: [{id, value}] (value null when skipped);
                     skipped: true when the participant skipped the whole form
    rules_confirmed  rules: the rules as shown (a list of strings); rules_sha256: their hash
    restore          snapshot: the snapshot restored; kept_as: the snapshot of the state before it
    submission       answer: the answer submitted (end scoring); answer_sha256: its hash; job_id: the job
                     that scores it (the session's final entry)

`time` is the runner's clock (UTC ISO 8601) and `elapsed_s` the session time (pauses excluded) when it
was written, or null before the session started (the rules are confirmed before the clock starts).

This module also checks the organiser's settings that these records answer: `end_questions`,
`rules` and `give_up_reasons` (validate_questions, validate_rules, validate_reasons).

Python 3.8+ standard library only; of the runner it uses the score log's hash, canonical JSON and appender.
"""

import json
import math
import re

from .common import HASH_RE, sha256
from .files import append_locked
from .scorelog import canonical_json, entry_hash as record_hash

GENESIS_PREFIX = "rebench-records-genesis:"
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
NOTE_LIMIT = 20000
REASON_LIMIT = 4000
ANSWER_LIMIT = 4000
QUESTION_LIMIT = 30
RULE_LIMIT = 1000
RULES_LIMIT = 30
KINDS = ("note", "give_up", "answers", "rules_confirmed", "restore", "submission")
SUBMISSION_LIMIT = 65536
COMMON = ("index", "kind", "time", "elapsed_s", "prev_hash", "hash")


class RecordError(Exception):
    """A bad request or a damaged record file; the message says what is wrong and what to do."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code
        self.message = message


def genesis_hash(seed):
    """The hash the first record links to; the runner seeds it with what identifies the session's state."""
    return sha256((GENESIS_PREFIX + seed).encode("utf-8")).hexdigest()


def _clean(text):
    """Text as kept: no NUL or other control characters except newline and tab, \\r\\n made \\n."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if c in "\n\t" or not (ord(c) < 32 or 0x7F <= ord(c) < 0xA0))


def _text(value, field, lo, hi):
    if not isinstance(value, str):
        raise RecordError("usage", "%s must be text, got %s" % (field, json.dumps(value)))
    value = _clean(value)
    if len(value.strip()) < lo:
        raise RecordError("usage", "%s is empty; write at least %d character%s" % (field, lo, "" if lo == 1 else "s"))
    if len(value) > hi:
        raise RecordError("usage", "%s is %d characters long; at most %d are kept. Shorten it and try again."
                          % (field, len(value), hi))
    return value


# ---------------------------------------------------------------------------------------------
# The organiser's settings


def validate_questions(raw, where="end_questions"):
    """The end questions: a list of at most 30 of {id, text, type, choices?, optional?}; raises ValueError.

    type is "text" (free text), "choice" (one of `choices`, 2 to 20 strings) or "scale" (1 to 5, with
    optional `labels`: [low, high] words for its ends).
    """
    if not isinstance(raw, list) or not 1 <= len(raw) <= QUESTION_LIMIT:
        raise ValueError("%s: expected a list of 1 to %d questions" % (where, QUESTION_LIMIT))
    seen = set()
    out = []
    for i, q in enumerate(raw):
        at = "%s[%d]" % (where, i)
        if not isinstance(q, dict):
            raise ValueError("%s: expected an object with id, text and type" % at)
        unknown = sorted(k for k in q if k not in ("id", "text", "type", "choices", "labels"))
        if unknown:
            raise ValueError("%s: unknown field %s (allowed: id, text, type, choices, labels)"
                             % (at, ", ".join(repr(k) for k in unknown)))
        qid = q.get("id")
        if not isinstance(qid, str) or not ID_RE.match(qid):
            raise ValueError("%s.id: expected a short id of lowercase letters, digits, \"-\" and \"_\", e.g. "
                             "\"difficulty\"" % at)
        if qid in seen:
            raise ValueError("%s.id: %r is used twice; each question needs its own id" % (at, qid))
        seen.add(qid)
        text = q.get("text")
        if not isinstance(text, str) or not 1 <= len(text.strip()) <= 500:
            raise ValueError("%s.text: expected the question, 1 to 500 characters" % at)
        kind = q.get("type")
        if kind not in ("text", "choice", "scale"):
            raise ValueError("%s.type: expected \"text\", \"choice\" or \"scale\", got %s" % (at, json.dumps(kind)))
        item = {"id": qid, "text": text, "type": kind}
        if kind == "choice":
            choices = q.get("choices")
            if (not isinstance(choices, list) or not 2 <= len(choices) <= 20
                    or not all(isinstance(c, str) and 1 <= len(c) <= 200 for c in choices)
                    or len(set(choices)) != len(choices)):
                raise ValueError("%s.choices: a choice question needs 2 to 20 different choices of 1 to 200 "
                                 "characters" % at)
            item["choices"] = list(choices)
        elif "choices" in q:
            raise ValueError("%s.choices: only a \"choice\" question has choices" % at)
        if kind == "scale" and "labels" in q:
            labels = q["labels"]
            if not (isinstance(labels, list) and len(labels) == 2
                    and all(isinstance(x, str) and 1 <= len(x) <= 60 for x in labels)):
                raise ValueError("%s.labels: expected two words for the ends of the scale, e.g. "
                                 "[\"very easy\", \"very hard\"]" % at)
            item["labels"] = list(labels)
        elif "labels" in q:
            raise ValueError("%s.labels: only a \"scale\" question has labels" % at)
        out.append(item)
    return out


def validate_rules(raw, where="rules"):
    """The study's rules: a list of 1 to 30 statements of 1 to 1000 characters; raises ValueError."""
    if (not isinstance(raw, list) or not 1 <= len(raw) <= RULES_LIMIT
            or not all(isinstance(r, str) and 1 <= len(r.strip()) <= RULE_LIMIT for r in raw)):
        raise ValueError("%s: expected a list of 1 to %d rules, each 1 to %d characters, e.g. [\"AI assistants "
                         "may not be used.\", \"Internet use is allowed.\"]" % (where, RULES_LIMIT, RULE_LIMIT))
    return list(raw)


def validate_reasons(raw, where="give_up_reasons"):
    """The organiser's reasons to give up, offered as choices: 1 to 20 strings of 1 to 200 characters."""
    if (not isinstance(raw, list) or not 1 <= len(raw) <= 20
            or not all(isinstance(r, str) and 1 <= len(r.strip()) <= 200 for r in raw)
            or len(set(raw)) != len(raw)):
        raise ValueError("%s: expected a list of 1 to 20 different reasons, each 1 to 200 characters, e.g. "
                         "[\"Out of ideas\", \"Technical problems\"]" % where)
    return list(raw)


def rules_sha256(rules):
    return sha256(canonical_json(list(rules)).encode("utf-8")).hexdigest()


def check_answers(questions, answers):
    """The answers as kept: one {id, value} per question, in the questions' order; raises RecordError.

    answers maps question ids to values: text for "text", one of the choices for "choice", a whole number
    1-5 for "scale"; a question left out or answered null is skipped (answering is never required).
    """
    if not isinstance(answers, dict):
        raise RecordError("usage", "answers must be an object of question ids to answers")
    ids = [q["id"] for q in questions]
    unknown = sorted(k for k in answers if k not in ids)
    if unknown:
        raise RecordError("usage", "there is no question %s (the questions are %s)"
                          % (", ".join(repr(k) for k in unknown), ", ".join(ids)))
    out = []
    for q in questions:
        value = answers.get(q["id"])
        where = "the answer to %r" % q["id"]
        if value is None or (isinstance(value, str) and not value.strip()):
            value = None
        elif q["type"] == "text":
            value = _text(value, where, 1, ANSWER_LIMIT)
        elif q["type"] == "choice":
            if value not in q["choices"]:
                raise RecordError("usage", "%s must be one of %s, got %s" % (
                    where, ", ".join(json.dumps(c) for c in q["choices"]), json.dumps(value)))
        else:
            if not (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5):
                raise RecordError("usage", "%s must be a whole number from 1 to 5, got %s" % (where, json.dumps(value)))
        out.append({"id": q["id"], "value": value})
    return out


# ---------------------------------------------------------------------------------------------
# Records: checking the fields of each kind


def fields_for(kind, request, settings=None):
    """The kind's own fields from a participant's request, checked; raises RecordError saying what to fix.

    settings holds the organiser's validated end_questions, rules and give_up_reasons, where set.
    """
    settings = settings or {}
    if kind == "note":
        return {"text": _text(request.get("text"), "The note", 1, NOTE_LIMIT)}
    if kind == "give_up":
        choice = request.get("choice")
        reasons = settings.get("give_up_reasons")
        if reasons is None and request.get("reasons") is not None:
            # The organiser's reasons from the participant's profile (the VM has none): checked like the VM's.
            try:
                reasons = validate_reasons(request.get("reasons"), "reasons")
            except ValueError as e:
                raise RecordError("usage", str(e))
        if choice is not None:
            if not reasons or choice not in reasons:
                raise RecordError("usage", "%s is not one of the organiser's reasons%s" % (
                    json.dumps(choice), " (%s)" % ", ".join(json.dumps(r) for r in reasons) if reasons else ""))
        reason = request.get("reason", "")
        reason = "" if reason is None else _text(reason, "The reason", 0, REASON_LIMIT)
        if choice is None and not reason.strip():
            raise RecordError("usage", "Say why you give up: write a reason%s." % (
                " or pick one of the organiser's" if reasons else ""))
        return {"reason": reason, "choice": choice}
    if kind == "answers":
        questions = settings.get("end_questions")
        if questions is None:
            try:
                questions = validate_questions(request.get("questions"), "questions")
            except ValueError as e:
                raise RecordError("usage", str(e))
        if request.get("skipped") is True:
            return {"questions": questions, "answers": [{"id": q["id"], "value": None} for q in questions],
                    "skipped": True}
        return {"questions": questions, "answers": check_answers(questions, request.get("answers")), "skipped": False}
    if kind == "rules_confirmed":
        rules = settings.get("rules")
        shown = request.get("rules")
        if rules is None:
            try:
                rules = validate_rules(shown, "rules")
            except ValueError as e:
                raise RecordError("usage", str(e))
        elif shown is not None and list(shown) != list(rules):
            raise RecordError("refused", "The rules confirmed are not the study's rules as the VM has them. Reload "
                                         "the pre-flight to see the current rules and confirm those.")
        return {"rules": list(rules), "rules_sha256": rules_sha256(rules)}
    if kind == "restore":
        snap, kept = request.get("snapshot"), request.get("kept_as")
        if not (isinstance(snap, str) and HASH_RE.match(snap) and isinstance(kept, str) and HASH_RE.match(kept)):
            raise RecordError("usage", "a restore record needs the snapshot restored and the one kept before it")
        return {"snapshot": snap, "kept_as": kept}
    if kind == "submission":
        answer = request.get("answer")
        if not isinstance(answer, str):
            raise RecordError("usage", "The answer must be text, got %s" % json.dumps(answer)[:100])
        if not answer.strip():
            raise RecordError("usage", "The answer is empty; write an answer first.")
        if len(answer) > SUBMISSION_LIMIT:
            raise RecordError("usage", "The answer is %d characters long; at most %d are taken. Shorten it and try "
                                       "again." % (len(answer), SUBMISSION_LIMIT))
        job_id = request.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise RecordError("usage", "a submission record needs the job that scores it")
        return {"answer": answer, "answer_sha256": sha256(answer.encode("utf-8")).hexdigest(), "job_id": job_id}
    raise RecordError("usage", "%r is not a record kind (%s)" % (kind, ", ".join(KINDS)))


def _finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def record_problem(obj):
    """Why obj is not a well-formed record, or None."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    for key in COMMON:
        if key not in obj:
            return "field %r is missing" % key
    if not (isinstance(obj["index"], int) and not isinstance(obj["index"], bool) and obj["index"] >= 0):
        return "field 'index' is not a whole number"
    if obj["kind"] not in KINDS:
        return "field 'kind' is %s, not a record kind" % json.dumps(obj["kind"])
    if not (isinstance(obj["time"], str) and ISO_RE.match(obj["time"])):
        return "field 'time' is not a UTC time"
    if obj["elapsed_s"] is not None and not (_finite(obj["elapsed_s"]) and obj["elapsed_s"] >= 0):
        return "field 'elapsed_s' is not a session time"
    for key in ("prev_hash", "hash"):
        if not (isinstance(obj[key], str) and HASH_RE.match(obj[key])):
            return "field %r is not a hash" % key
    own = dict((k, v) for k, v in obj.items() if k not in COMMON)
    expected = {
        "note": ("text",), "give_up": ("choice", "reason"), "answers": ("answers", "questions", "skipped"),
        "rules_confirmed": ("rules", "rules_sha256"), "restore": ("kept_as", "snapshot"),
        "submission": ("answer", "answer_sha256", "job_id"),
    }[obj["kind"]]
    if tuple(sorted(own)) != expected:
        return "a %s record has the fields %s, not %s" % (obj["kind"], ", ".join(expected), ", ".join(sorted(own)))
    return None


# ---------------------------------------------------------------------------------------------
# The file


class Scan(object):
    """Every line of records.jsonl, checked in order (the same rules as the score log's)."""

    def __init__(self, data, genesis):
        self.records = []
        self.first_bad = None
        self.reason = None
        self.torn = None
        lines = data.split(b"\n")
        tail = lines.pop()
        self.last_hash = genesis
        for number, raw in enumerate(lines):
            self._check(number, raw, genesis)
        self.next_index = len(lines)
        if tail:
            self.torn = tail
            self._bad(len(lines), "line %d: the last line is incomplete (the runner was interrupted while writing "
                                  "it); it is not a record" % len(lines))

    def _bad(self, number, reason):
        if self.first_bad is None:
            self.first_bad = number
            self.reason = reason

    def _check(self, number, raw, genesis):
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            self._bad(number, "line %d: not valid JSON (edited or damaged?)" % number)
            return
        problem = record_problem(obj)
        if problem:
            self._bad(number, "line %d: %s (edited?)" % (number, problem))
            if isinstance(obj, dict) and isinstance(obj.get("hash"), str):
                self.last_hash = obj["hash"]
            return
        if obj["hash"] != record_hash(obj):
            self._bad(number, "line %d: hash does not match its contents (edited?)" % number)
        elif obj["index"] != number:
            self._bad(number, "line %d: index %d where %d was expected (deleted, inserted or reordered?)"
                      % (number, obj["index"], number))
        elif obj["prev_hash"] != self.last_hash:
            self._bad(number, "line %d: prev_hash does not match the %s (deleted, inserted or reordered?)"
                      % (number, "chain's start" if number == 0 else "hash of the record before it"))
        self.records.append(obj)
        self.last_hash = obj["hash"]

    @property
    def intact(self):
        return self.first_bad is None


class Chain(object):
    """records.jsonl at path, whose first record links to genesis_hash(seed)."""

    def __init__(self, path, seed):
        self.path = path
        self.genesis = genesis_hash(seed)

    def scan(self):
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        return Scan(data, self.genesis)

    def append(self, kind, fields, time_iso, elapsed_s):
        """Appends one record (fields checked by fields_for) and returns it; synced before it returns.

        Written by files.append_locked, as the score log is: the file is locked for the read-check-write, so
        two writers never take the same index. A torn last line is first ended with a newline and stays as
        evidence (scan reports it).
        """
        def decide(data):
            scan = Scan(data, self.genesis)
            index = scan.next_index + (1 if scan.torn is not None else 0)
            record = dict(fields)
            record.update({"index": index, "kind": kind, "time": time_iso,
                           "elapsed_s": None if elapsed_s is None else round(float(elapsed_s), 3),
                           "prev_hash": scan.last_hash})
            record["hash"] = record_hash(record)
            problem = record_problem(record)
            if problem:
                raise RecordError("internal", "refusing to write a malformed record: %s" % problem)
            return canonical_json(record).encode("utf-8"), record, None

        return append_locked(self.path, decide)

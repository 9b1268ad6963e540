"""`runner serve`: one channel for a whole connection. Requests arrive on stdin as JSON lines,
{"id": N, "command": "status", "args": {...}} (the one-shot commands' names and arguments); every reply
is one line {"id": N, "exit_code": C, "result": ...} or {"id": N, "exit_code": C, "error": {...}} with the
same JSON the one-shot command prints with --json; a stream (score/attach/end with follow) sends its job
and output lines first as {"id": N, "event": ...}. Lines without an id are events of the session:
{"event": {"type": "entry", "entry": ...}} for each new score log entry and {"event": {"type": "session",
"status": ...}} when the session changes.

The channel changes nothing about safety: each request runs exactly as its one-shot command (same locks,
same refusals, in protected mode the same root checks), scoring jobs run detached and survive the
channel, and a channel that closes loses nothing. One thread: jobs are forks of this process.
"""

import errno
import json
import os
import time

from .cli import run_command
from .common import EXIT_CODES, POLL_S, LazyModule, RunnerError, error_object
from .files import read_from
from .home import Context
from .output import json_line
from .protect import check_privileged_command

select = LazyModule("select")

WATCH_EVERY_S = 1.0
MAX_LINE = 1024 * 1024
PENDING = object()

# The arguments each command takes through the channel: name -> (attribute, check, default, required).
_STR = (lambda v: isinstance(v, str) and v != "", "a non-empty string")
_BOOL = (lambda v: isinstance(v, bool), "true or false")
_INT = (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number")
_TEXT = (lambda v: isinstance(v, str), "a string")
_LIST = (lambda v: isinstance(v, list), "a list")
_OBJECT = (lambda v: isinstance(v, dict), "an object")
ARGUMENTS = {
    "setup": {"environment": ("environment", _STR, None, True), "solution_dir": ("solution_dir", _STR, None, False),
              "environments_dir": ("environments_dir", _STR, None, False)},
    "status": {}, "hidden": {}, "start": {}, "instructions": {}, "pause": {}, "resume": {}, "verify": {},
    "score": {"follow": ("follow", _BOOL, False, False)},
    "attach": {"job_id": ("job_id", _STR, None, True), "offset": ("offset", _INT, 0, False)},
    "log": {"from": ("from_index", _INT, 0, False)},
    "end": {"yes": ("yes", _BOOL, False, False), "follow": ("follow", _BOOL, False, False)},
    "export": {"format": ("format", (lambda v: v in ("metr-csv", "jsonl"), '"metr-csv" or "jsonl"'), None, True),
               "out": ("out", _STR, None, False)},
    "import-metr-csv": {"file": ("file", _STR, None, True)},
    "note": {"text": ("text", _TEXT, None, True)},
    "records": {},
    "submit": {"answer": ("answer", _TEXT, None, True), "yes": ("yes", _BOOL, False, False),
               "follow": ("follow", _BOOL, False, False)},
    "aggregate": {},
    "measure-start": {},
    "confirm-rules": {"rules": ("rules", _LIST, None, False)},
    "give-up": {"reason": ("reason", _TEXT, "", False), "choice": ("choice", _STR, None, False),
                "reasons": ("reasons", _LIST, None, False),
                "follow": ("follow", _BOOL, False, False)},
    "answer": {"answers": ("answers", _OBJECT, None, False), "skipped": ("skipped", _BOOL, False, False),
               "questions": ("questions", _LIST, None, False)},
    "snapshot": {"action": ("action", (lambda v: v in ("changes", "show", "plan", "restore", "export"),
                                       '"changes", "show", "plan", "restore" or "export"'), None, True),
                 "snapshot_id": ("snapshot_id", _STR, None, True), "against": ("against", _STR, None, False),
                 "path": ("path", _STR, None, False), "yes": ("yes", _BOOL, False, False)},
}


class Args(object):
    def __init__(self, command, values):
        self.command = command
        self.__dict__.update(values)


def parse_request(line):
    """(id, command, Args) from one request line; raises RunnerError("usage") naming what is wrong (with the
    id when there is one, so the reply still reaches the caller)."""
    try:
        raw = json.loads(line)
    except (ValueError, RecursionError) as e:
        raise RequestError(None, RunnerError("usage", "A request is not JSON (%s); send one JSON object a line, "
                                                      "e.g. {\"id\": 1, \"command\": \"status\"}." % (str(e)[:100] or "nested too deeply")))
    if not isinstance(raw, dict):
        raise RequestError(None, RunnerError("usage", "A request must be a JSON object with id and command."))
    rid = raw.get("id")
    if not (isinstance(rid, int) and not isinstance(rid, bool) and rid >= 0):
        raise RequestError(None, RunnerError("usage", "A request needs an \"id\": a whole number of at least 0."))
    unknown = sorted(k for k in raw if k not in ("id", "command", "args"))
    if unknown:
        raise RequestError(rid, RunnerError("usage", "Unknown request field %s (allowed: id, command, args)."
                                            % ", ".join(repr(k) for k in unknown)))
    command = raw.get("command")
    if command not in ARGUMENTS:
        raise RequestError(rid, RunnerError("usage", "Unknown command %s; the channel takes: %s."
                                            % (json.dumps(command)[:80], ", ".join(sorted(ARGUMENTS)))))
    given = raw.get("args", {})
    if not isinstance(given, dict):
        raise RequestError(rid, RunnerError("usage", "\"args\" must be a JSON object."))
    spec = ARGUMENTS[command]
    extra = sorted(k for k in given if k not in spec)
    if extra:
        raise RequestError(rid, RunnerError("usage", "%s takes no argument %s (it takes: %s)."
                                            % (command, ", ".join(repr(k) for k in extra),
                                               ", ".join(sorted(spec)) or "none")))
    values = {}
    for name, (attr, (check, expected), default, required) in spec.items():
        if name not in given:
            if required:
                raise RequestError(rid, RunnerError("usage", "%s needs the argument %r (%s)." % (command, name, expected)))
            values[attr] = default
            continue
        if not check(given[name]):
            raise RequestError(rid, RunnerError("usage", "%s: %r must be %s." % (command, name, expected)))
        values[attr] = given[name]
    if command == "attach" and values["offset"] < 0:
        raise RequestError(rid, RunnerError("usage", "attach: 'offset' must be 0 or more."))
    return rid, command, Args(command, values)


class RequestError(Exception):
    def __init__(self, rid, error):
        Exception.__init__(self, error.message)
        self.rid = rid
        self.error = error


class RequestOutput(object):
    """A command's answer on the channel: stream lines go out at once as events; the last other object is
    held and becomes the reply's result (or its error)."""

    STREAM_TYPES = ("job", "output")

    def __init__(self, channel, rid):
        self.channel = channel
        self.rid = rid
        self.held = None
        self.parts = []

    def emit(self, obj):
        if isinstance(obj, dict) and obj.get("type") in self.STREAM_TYPES:
            self.channel.send({"id": self.rid, "event": obj})
            return
        if self.held is not None:
            self.channel.send({"id": self.rid, "event": self.held})
        self.held = obj

    def line(self, text):
        self.parts.append(text + "\n")

    def text(self, text):
        self.parts.append(text)

    def data(self, data):
        self.parts.append(data.decode("utf-8", "replace"))

    def error_text(self, text):
        pass

    def finish(self, code):
        held = self.held
        if isinstance(held, dict) and set(held) == {"error"}:
            self.channel.send({"id": self.rid, "exit_code": code, "error": held["error"]})
        elif isinstance(held, dict) and held.get("type") == "error" and code != 0:
            self.channel.send({"id": self.rid, "exit_code": code, "error": held["error"]})
        elif held is None and self.parts:
            self.channel.send({"id": self.rid, "exit_code": code, "result": {"text": "".join(self.parts)}})
        else:
            self.channel.send({"id": self.rid, "exit_code": code, "result": held})


class Channel(object):
    def __init__(self, home, privileged, caller, stdin_fd=0, stdout_fd=1):
        self.home = home
        self.privileged = privileged
        self.caller = caller
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.followers = []  # (Follower, RequestOutput, then)
        self.buffer = b""
        self.closed = False
        self.last_watch = 0.0
        self.watched = None
        self.log_offset = None

    def send(self, obj):
        data = json_line(obj).encode("ascii")
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.stdout_fd, view):]
            except InterruptedError:
                continue

    # ----------------------------------------------------------------------------------------
    # Requests

    def handle_line(self, line):
        try:
            rid, command, args = parse_request(line)
        except RequestError as e:
            self.send({"id": e.rid, "exit_code": EXIT_CODES["usage"], "error": error_object(e.error)}
                      if e.rid is not None else {"event": {"type": "error", "error": error_object(e.error)}})
            return
        out = RequestOutput(self, rid)
        if self.privileged:
            try:
                check_privileged_command(command, args, self.caller)
            except RunnerError as e:
                try:
                    Context(self.home, True).record_event("refused", action=command, reason=e.message,
                                                          caller=self.caller)
                except Exception:
                    pass
                out.emit({"error": error_object(e)})
                out.finish(EXIT_CODES[e.code])
                return
        ctx = Context(self.home, True, out)

        def follow_later(ctx_, job, offset, then=None):
            from .follow import Follower, JsonEvents

            follower = Follower(ctx_, job, offset, JsonEvents(ctx_))
            self.followers.append((follower, out, then))
            return PENDING

        ctx.follow_handler = follow_later
        code = run_command(ctx, command, args)
        if code is not PENDING:
            out.finish(code)

    # ----------------------------------------------------------------------------------------
    # Streams and session events

    def step_followers(self):
        for item in list(self.followers):
            follower, out, then = item
            for _ in range(64):
                if not follower.step():
                    break
            if follower.finished:
                self.followers.remove(item)
                code = follower.code
                if then is not None:
                    code = run_then(then, code, out)
                out.finish(code)

    def watch(self):
        """Sends an event for each new score log entry and for each change of session.json."""
        ctx = Context(self.home, True)
        try:
            state_dir = ctx.state_dir
        except RunnerError:
            return
        log_path = os.path.join(state_dir, "score.log.jsonl")
        try:
            size = os.path.getsize(log_path)
        except OSError:
            size = 0
        if self.log_offset is None or size < self.log_offset:
            self.log_offset = size
        elif size > self.log_offset:
            data = read_from(log_path, self.log_offset, size - self.log_offset)
            end = data.rfind(b"\n") + 1
            for raw in data[:end].split(b"\n")[:-1]:
                try:
                    entry = json.loads(raw.decode("utf-8"))
                except (ValueError, RecursionError):
                    continue
                if isinstance(entry, dict) and isinstance(entry.get("index"), int):
                    self.send({"event": {"type": "entry", "entry": entry}})
            self.log_offset += end
        try:
            st = os.stat(os.path.join(state_dir, "session.json"))
            seen = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            seen = None
        if self.watched is None:
            self.watched = ("first", seen)
        elif self.watched[1] != seen:
            self.watched = ("seen", seen)
            out = RequestOutput(self, None)
            ctx = Context(self.home, True, out)
            ctx.follow_handler = lambda *a, **k: None
            if run_command(ctx, "status", Args("status", {})) == 0 and isinstance(out.held, dict):
                self.send({"event": {"type": "session", "status": out.held}})

    def reap(self):
        """Collects the exit status of jobs this process forked, so that none stays a zombie."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                return
            if pid == 0:
                return

    # ----------------------------------------------------------------------------------------

    def run(self):
        from . import RUNNER_VERSION

        self.send({"event": {"type": "hello", "runner_version": RUNNER_VERSION}})
        preloaded = False
        while not self.closed:
            fds = [self.stdin_fd] + [f.done_fd for f, _, _ in self.followers if f.done_fd is not None]
            timeout = POLL_S if self.followers or not preloaded else WATCH_EVERY_S
            try:
                ready, _, _ = select.select(fds, [], [], timeout)
            except InterruptedError:
                continue
            if not ready and not preloaded:
                # Once the client's first requests are answered (connecting sends several at once): what every
                # scoring job needs, so that each fork has it at once.
                preloaded = True
                preload()
            if self.stdin_fd in ready:
                data = os.read(self.stdin_fd, 65536)
                if not data:
                    self.closed = True  # the client has gone; running jobs go on without it
                    break
                self.buffer += data
                while b"\n" in self.buffer:
                    raw, self.buffer = self.buffer.split(b"\n", 1)
                    if raw.strip():
                        self.handle_line(raw.decode("utf-8", "replace"))
                if len(self.buffer) > MAX_LINE:
                    self.buffer = b""
                    self.send({"event": {"type": "error", "error": {
                        "code": "usage", "message": "A request line is longer than %d bytes and was dropped." % MAX_LINE}}})
            for follower, _, _ in self.followers:
                if follower.done_fd is not None and follower.done_fd in ready:
                    follower.job_ended()
            self.step_followers()
            now = time.monotonic()
            if now - self.last_watch >= WATCH_EVERY_S:
                self.last_watch = now
                self.watch()
                self.reap()
        return 0


def preload():
    from . import commands, follow, scoring  # noqa: F401
    import select as _select, shutil as _shutil, subprocess as _subprocess, traceback as _traceback  # noqa: F401,E401


def run_then(then, code, out):
    try:
        return then(code)
    except RunnerError as e:
        out.emit({"error": error_object(e)})
        return EXIT_CODES[e.code]


def serve(home, privileged, caller):
    """Runs the channel on stdin/stdout until stdin closes."""
    try:
        return Channel(home, privileged, caller).run()
    except BrokenPipeError:
        return 0  # the client has gone: nothing is half-done, jobs run on
    except OSError as e:
        if e.errno == errno.EPIPE:
            return 0
        raise

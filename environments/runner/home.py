"""The runner home: where it is, its configuration (runner.json), and the Context every command works in."""

import json
import os

from .common import PROTECTED_HOME, RunnerError, iso, now_s
from .files import FileLock, append_line_synced, make_dirs
from .manifest import load_environment


def resolve_home(flag, environ=None):
    environ = os.environ if environ is None else environ
    if flag:
        return os.path.abspath(os.path.expanduser(flag))
    if environ.get("REBENCH_HOME"):
        return os.path.abspath(os.path.expanduser(environ["REBENCH_HOME"]))
    if os.path.isfile(os.path.join(PROTECTED_HOME, "runner.json")):
        return PROTECTED_HOME
    return os.path.join(os.path.expanduser("~"), ".rebench")


CONFIG_KEYS = ("mode", "environment", "environments_dir", "state_dir", "solution_dir", "scoring_user")


def load_config(home):
    path = os.path.join(home, "runner.json")
    try:
        with open(path, "r", encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise RunnerError("environment", "The runner is not set up in %s (no runner.json). Run: runner "
                                         "setup --environment <id>" % home)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise RunnerError("environment", "%s is not valid JSON (%s). Fix it, or remove it and run setup again."
                          % (path, str(e) or "nested too deeply"))
    except IsADirectoryError:
        raise RunnerError("environment", "%s is a folder, not the runner's configuration. Remove it and run "
                                         "setup again." % path)
    problem = config_problem(raw)
    if problem:
        raise RunnerError("environment", "%s: %s. Fix it, or remove it and run setup again." % (path, problem))
    return {
        "mode": raw["mode"],
        "environment": raw["environment"],
        "environments_dir": raw.get("environments_dir") or os.path.join(home, "environments"),
        "state_dir": raw.get("state_dir") or os.path.join(home, "state"),
        "solution_dir": raw["solution_dir"],
        "scoring_user": raw.get("scoring_user"),
    }


def config_problem(raw):
    if not isinstance(raw, dict):
        return "expected a JSON object"
    unknown = [k for k in raw if k not in CONFIG_KEYS]
    if unknown:
        return "unknown field %s" % ", ".join(repr(k) for k in sorted(unknown))
    if raw.get("mode") not in ("protected", "unprotected"):
        return "mode must be \"protected\" or \"unprotected\""
    if not isinstance(raw.get("environment"), str):
        return "environment must name the environment id"
    for key in ("environments_dir", "state_dir", "solution_dir"):
        value = raw.get(key)
        if value is None and key != "solution_dir":
            continue
        if not isinstance(value, str) or not os.path.isabs(value):
            return "%s must be an absolute path" % key
    user = raw.get("scoring_user")
    if user is not None and not (isinstance(user, str) and user):
        return "scoring_user must be null or a user name"
    if user is not None and raw.get("mode") != "protected":
        return "scoring_user is only used in protected mode"
    return None


class Context(object):
    """What every command needs: the home, its configuration and the environment, loaded on demand.

    `out` receives what the command answers (see output.py): the terminal, or a `serve` channel.
    """

    def __init__(self, home, as_json, out=None):
        self.home = home
        self.as_json = as_json
        self.out = out
        self.follow_handler = None
        self._config = None
        self._environment = None

    def follow(self, job, offset, then=None):
        """Follows a job to its entry: at once on a terminal, from the channel's loop under `serve`."""
        return self.follow_handler(self, job, offset, then)

    @property
    def config(self):
        if self._config is None:
            self._config = load_config(self.home)
        return self._config

    @property
    def environment(self):
        if self._environment is None:
            c = self.config
            self._environment = load_environment(c["environments_dir"], c["environment"], c["state_dir"])
        return self._environment

    @property
    def manifest(self):
        return self.environment["manifest"]

    @property
    def state_dir(self):
        return self.config["state_dir"]

    def state_path(self, *parts):
        return os.path.join(self.state_dir, *parts)

    def ensure_state_dir(self):
        try:
            make_dirs(self.state_dir, 0o755)
            make_dirs(self.state_path("jobs"), 0o755)
        except OSError as e:
            raise unwritable_state(self, e)

    def job_dir(self, job_id):
        return self.state_path("jobs", job_id)

    def session_lock(self):
        self.ensure_state_dir()
        return FileLock(self.state_path("session.lock"), self.damaged)

    def score_lock_path(self):
        return self.state_path("score.lock")

    def record_event(self, event, sync=True, **fields):
        """Appends to the organiser's trail (events.jsonl); sync=False for what the score log itself records."""
        record = {"time": iso(now_s()), "event": event}
        record.update(fields)
        self.ensure_state_dir()
        append_line_synced(self.state_path("events.jsonl"), json.dumps(record, ensure_ascii=False) + "\n", sync)

    def damaged(self, found):
        """Called for every damaged file that was set aside: the organiser's trail keeps it."""
        try:
            self.record_event("damaged_file", path=found.path, moved_to=found.moved_to, reason=found.reason)
        except OSError:
            pass


def unwritable_state(ctx, err):
    """A clear error for a state folder the runner cannot write (instead of a traceback)."""
    where = getattr(err, "filename", None) or ctx.config.get("state_dir")
    return RunnerError("environment", "The runner cannot write its state in %s (%s: %s). Nothing was recorded. "
                                      "Check that the folder exists, is a folder and can be written by the user "
                                      "the runner runs as (uid %d), or ask the organiser."
                       % (ctx.state_dir, where, err.strerror or err, os.geteuid()))

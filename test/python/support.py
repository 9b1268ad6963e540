"""Helpers of the runner's Python tests: a runner home in a temporary folder with a test environment, commands
run in this process against it, and a clock the test moves."""

import json
import os
import shutil
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "environments"))

from runner import common  # noqa: E402
from runner.cli import run_command  # noqa: E402
from runner.follow import follow_job  # noqa: E402
from runner.home import Context  # noqa: E402
from runner.output import CollectingOutput  # noqa: E402

FIXTURES = os.path.join(REPO, "test", "fixtures", "environments")
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


class FakeClock(object):
    """The runner's clock in tests: it stands still until the test moves it."""

    def __init__(self, t=T0):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


class Args(object):
    def __init__(self, **kw):
        self.__dict__.update(kw)


DEFAULTS = {
    "setup": {"environment": None, "solution_dir": None, "environments_dir": None},
    "score": {"follow": False}, "attach": {"job_id": None, "offset": 0}, "log": {"from_index": 0},
    "end": {"yes": False, "follow": False}, "export": {"format": "jsonl", "out": None},
    "import-metr-csv": {"file": None},
}


class RunnerHome(object):
    """A runner home set up for one environment (a copy of a test fixture, changeable by the test)."""

    def __init__(self, env_id="slow-scorer", manifest_changes=None):
        self.root = tempfile.mkdtemp(prefix="rebench-py-")
        self.home = os.path.join(self.root, "home")
        self.environments = os.path.join(self.root, "environments")
        self.solution = os.path.join(self.root, "solution")
        shutil.copytree(os.path.join(FIXTURES, env_id), os.path.join(self.environments, env_id))
        if manifest_changes:
            path = os.path.join(self.environments, env_id, "manifest.json")
            with open(path) as f:
                manifest = json.load(f)
            for key, value in manifest_changes.items():
                target = manifest
                parts = key.split(".")
                for part in parts[:-1]:
                    target = target[part]
                target[parts[-1]] = value
            with open(path, "w") as f:
                json.dump(manifest, f)
        self.env_id = env_id
        code, out = self.call("setup", environment=env_id, solution_dir=self.solution,
                              environments_dir=self.environments)
        assert code == 0, out

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def context(self, out=None):
        ctx = Context(self.home, True, out or CollectingOutput())
        ctx.follow_handler = lambda c, job, offset, then=None: (
            then(follow_job(c, job, offset)) if then else follow_job(c, job, offset))
        return ctx

    def call(self, command, **kw):
        """Runs a command as `runner --json COMMAND` would, here; (exit code, the JSON objects it printed)."""
        values = dict(DEFAULTS.get(command, {}))
        values.update(kw)
        out = CollectingOutput()
        code = run_command(self.context(out), command, Args(command=command, **values))
        return code, out.objects

    def last(self, command, **kw):
        code, objects = self.call(command, **kw)
        return code, (objects[-1] if objects else None)

    def state(self, *parts):
        return os.path.join(self.home, "state", *parts)

    def write_solution(self, name, text):
        with open(os.path.join(self.solution, name), "w") as f:
            f.write(text)

    def events(self):
        try:
            with open(self.state("events.jsonl")) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def log_lines(self):
        try:
            with open(self.state("score.log.jsonl"), "rb") as f:
                return f.read().split(b"\n")[:-1]
        except FileNotFoundError:
            return []


class RunnerTest(unittest.TestCase):
    """A test with its own runner homes and the runner's clock under its control."""

    def setUp(self):
        self.clock = FakeClock()
        common.set_clock(self.clock)
        self.homes = []
        from runner import logstate, manifest

        logstate._memory.clear()
        manifest._checked.clear()  # each test starts as a new process would
        manifest._recorded.clear()

    def tearDown(self):
        common.set_clock(None)
        for h in self.homes:
            h.cleanup()

    def home(self, env_id="slow-scorer", **kw):
        h = RunnerHome(env_id, **kw)
        self.homes.append(h)
        return h

"""`runner serve`: requests and replies with ids, streams as events, session events, and refusals on the
channel as on the command line. The channel runs as a real process on pipes."""

import json
import os
import select
import signal
import subprocess
import sys
import time

from support import REPO, RunnerTest
from runner.serve import RequestError, parse_request


class Requests(RunnerTest):
    def test_a_request_names_its_id_command_and_arguments(self):
        rid, command, args = parse_request('{"id": 7, "command": "attach", "args": {"job_id": "j1", "offset": 3}}')
        self.assertEqual((rid, command, args.job_id, args.offset), (7, "attach", "j1", 3))
        rid, command, args = parse_request('{"id": 0, "command": "log"}')
        self.assertEqual(args.from_index, 0)

    def test_bad_requests_are_usage_errors_that_say_what_is_wrong(self):
        cases = [
            ("not json", None, "not JSON"),
            ("[1]", None, "JSON object"),
            ('{"command": "status"}', None, "needs an \\\"id\\\""),
            ('{"id": -1, "command": "status"}', None, "needs an \\\"id\\\""),
            ('{"id": 1, "command": "serve"}', 1, "Unknown command"),
            ('{"id": 2, "command": "_run-job"}', 2, "Unknown command"),
            ('{"id": 3, "command": "status", "args": {"x": 1}}', 3, "takes no argument 'x'"),
            ('{"id": 4, "command": "attach"}', 4, "needs the argument 'job_id'"),
            ('{"id": 5, "command": "attach", "args": {"job_id": "j", "offset": -1}}', 5, "0 or more"),
            ('{"id": 6, "command": "score", "args": {"follow": "yes"}}', 6, "true or false"),
            ('{"id": 7, "command": "status", "extra": 1}', 7, "Unknown request field"),
            ('{"id": 8, "command": "log", "args": ' + "[" * 50000 + "]" * 50000 + "}", None, "not JSON"),
        ]
        for line, rid, pattern in cases:
            with self.subTest(line=line[:60]):
                with self.assertRaises(RequestError) as c:
                    parse_request(line)
                self.assertEqual(c.exception.rid, rid)
                self.assertEqual(c.exception.error.code, "usage")
                self.assertRegex(c.exception.error.message, pattern)


class Channel(object):
    """`python3 environments/runner --home HOME serve` on pipes."""

    def __init__(self, home):
        self.proc = subprocess.Popen([sys.executable, "-I", "-S", os.path.join(REPO, "environments", "runner"),
                                      "--home", home, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.buffer = b""
        self.seen = []

    def send(self, obj):
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def read_until(self, predicate, timeout=30.0):
        until = time.monotonic() + timeout
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                obj = json.loads(line)
                self.seen.append(obj)
                if predicate(obj):
                    return obj
            left = until - time.monotonic()
            if left <= 0:
                raise AssertionError("no matching line within %s s; saw %r" % (timeout, self.seen[-5:]))
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                data = os.read(self.proc.stdout.fileno(), 65536)
                if not data:
                    raise AssertionError("the channel closed; stderr: %s" % self.proc.stderr.read().decode())
                self.buffer += data

    def reply(self, rid, timeout=30.0):
        return self.read_until(lambda o: o.get("id") == rid and "event" not in o, timeout)

    def close(self):
        self.proc.stdin.close()
        code = self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code


class Serve(RunnerTest):
    def setUp(self):
        RunnerTest.setUp(self)
        from runner import common
        common.set_clock(None)  # another process: real time
        self.h = self.home()
        self.h.write_solution("delay_s", "0.6")
        self.h.write_solution("score.txt", "5")
        self.channel = Channel(self.h.home)

    def tearDown(self):
        if self.channel.proc.poll() is None:
            self.channel.close()
        RunnerTest.tearDown(self)

    def test_replies_carry_the_request_id_and_the_one_shot_json(self):
        c = self.channel
        c.send({"id": 1, "command": "status"})
        c.send({"id": 2, "command": "start"})
        one = c.reply(1)
        self.assertEqual(one["exit_code"], 0)
        self.assertEqual(one["result"]["state"], "not_started")
        self.assertEqual(c.reply(2)["result"]["state"], "running")
        c.send({"id": 3, "command": "pause", "args": {}})
        c.send({"id": 4, "command": "verify"})
        self.assertEqual(c.reply(3)["result"]["state"], "paused")
        self.assertEqual(c.reply(4)["result"], {"intact": True, "entries": 0, "first_bad": None, "reason": None})
        c.send({"id": 5, "command": "score"})
        refused = c.reply(5)
        self.assertEqual(refused["exit_code"], 4)
        self.assertEqual(refused["error"]["code"], "refused")
        self.assertEqual(c.close(), 0)

    def test_a_stream_sends_its_output_as_events_then_the_entry_as_the_reply_while_other_requests_go_on(self):
        c = self.channel
        c.send({"id": 1, "command": "start"})
        c.reply(1)
        c.send({"id": 2, "command": "score", "args": {"follow": True}})
        job = c.read_until(lambda o: o.get("id") == 2 and o.get("event", {}).get("type") == "job")
        c.send({"id": 3, "command": "status"})
        status = c.reply(3)
        self.assertEqual(status["result"]["job"]["job_id"], job["event"]["job_id"])
        c.send({"id": 4, "command": "score"})
        self.assertEqual(c.reply(4)["error"]["code"], "busy")
        done = c.reply(2)
        self.assertEqual(done["exit_code"], 0)
        self.assertEqual(done["result"]["type"], "entry")
        self.assertEqual(done["result"]["entry"]["score"], 5.0)
        outputs = [o["event"] for o in c.seen if o.get("id") == 2 and o.get("event", {}).get("type") == "output"]
        self.assertTrue(outputs)
        self.assertEqual(outputs[-1]["offset"], done["result"]["entry"]["output_bytes"])
        c.read_until(lambda o: o.get("event", {}).get("type") == "entry" and "id" not in o)  # session event

    def test_a_job_survives_the_channel_closing_and_a_new_channel_attaches_to_it(self):
        c = self.channel
        c.send({"id": 1, "command": "start"})
        c.reply(1)
        self.h.write_solution("delay_s", "1.5")
        c.send({"id": 2, "command": "score", "args": {"follow": True}})
        job = c.read_until(lambda o: o.get("id") == 2 and o.get("event", {}).get("type") == "job")["event"]
        c.proc.kill()  # the channel dies mid-stream
        c.proc.wait()
        c.proc.stdin.close(), c.proc.stdout.close(), c.proc.stderr.close()
        self.channel = Channel(self.h.home)
        self.channel.send({"id": 1, "command": "attach", "args": {"job_id": job["job_id"]}})
        done = self.channel.reply(1)
        self.assertEqual(done["result"]["entry"]["score"], 5.0)
        self.assertEqual(len(self.h.log_lines()), 1)

    def test_another_process_changing_the_session_sends_a_session_event(self):
        c = self.channel
        c.send({"id": 1, "command": "status"})
        c.reply(1)
        code, _ = self.h.last("start")
        self.assertEqual(code, 0)
        event = c.read_until(lambda o: o.get("event", {}).get("type") == "session", timeout=10)
        self.assertEqual(event["event"]["status"]["state"], "running")

    def test_bad_lines_get_error_replies_and_the_channel_goes_on(self):
        c = self.channel
        c.proc.stdin.write(b"garbage\n")
        c.send({"id": 9, "command": "nope"})
        c.send({"id": 10, "command": "status"})
        self.assertEqual(c.reply(9)["error"]["code"], "usage")
        self.assertEqual(c.reply(10)["exit_code"], 0)
        self.assertTrue(any(o.get("event", {}).get("type") == "error" for o in c.seen))


def children_of(pid):
    """The living (not zombie) child processes of pid."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(name))
    return found


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def until(predicate, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting for %s" % what)


class Standby(RunnerTest):
    """serve keeps a job process ready (forked while idle) and hands it the next Score now."""

    def setUp(self):
        RunnerTest.setUp(self)
        from runner import common
        common.set_clock(None)
        self.h = self.home()
        self.h.write_solution("score.txt", "5")
        self.channel = Channel(self.h.home)
        self.channel.send({"id": 1, "command": "start"})
        self.channel.reply(1)

    def tearDown(self):
        if self.channel.proc.poll() is None:
            self.channel.close()
        RunnerTest.tearDown(self)

    def waiting(self):
        return until(lambda: children_of(self.channel.proc.pid), "the standby job process")

    def score(self, rid):
        c = self.channel
        c.send({"id": rid, "command": "score", "args": {"follow": True}})
        job = c.read_until(lambda o: o.get("id") == rid and o.get("event", {}).get("type") == "job")["event"]
        done = c.reply(rid)
        self.assertEqual(done["exit_code"], 0, done)
        with open(os.path.join(self.h.state("jobs"), job["job_id"], "job.json")) as f:
            job["pid"] = json.load(f)["pid"]
        return job, done["result"]["entry"]

    def test_the_next_score_runs_in_the_process_made_ahead_and_another_is_made_for_the_one_after(self):
        first = self.waiting()
        self.assertEqual(len(first), 1, "one standby")
        job, entry = self.score(2)
        self.assertEqual(job["pid"], first[0], "the job ran in the standby")
        self.assertEqual(entry["score"], 5.0)
        second = until(lambda: [p for p in children_of(self.channel.proc.pid) if p != first[0]], "the next standby")
        job, entry = self.score(3)
        self.assertEqual(job["pid"], second[0])
        self.assertEqual(entry["index"], 1)
        self.assertEqual(len(self.h.log_lines()), 2)

    def test_a_standby_that_was_killed_is_skipped_and_the_job_is_forked_at_once(self):
        standby = self.waiting()[0]
        os.kill(standby, signal.SIGKILL)
        until(lambda: not alive(standby), "the standby to die")
        job, entry = self.score(2)
        self.assertNotEqual(job["pid"], standby)
        self.assertEqual(entry["score"], 5.0)
        self.assertEqual(len(self.h.log_lines()), 1)

    def test_the_standby_ends_with_the_channel_and_never_keeps_it_open(self):
        standby = self.waiting()[0]

        def session_id():
            with open("/proc/%d/stat" % standby) as f:
                return int(f.read().rsplit(")", 1)[1].split()[3])
        # Read once it has set itself up (it calls setsid just after the fork).
        until(lambda: session_id() == standby, "the standby to be in a session of its own")
        self.assertEqual(session_id(), standby, "in a session of its own")
        channel = set(os.readlink("/proc/%d/fd/%d" % (self.channel.proc.pid, fd)) for fd in (0, 1, 2))

        def lets_go_of_the_channel():
            theirs = set(os.readlink("/proc/%d/fd/%s" % (standby, fd)) for fd in os.listdir("/proc/%d/fd" % standby))
            return not (channel & theirs)
        until(lets_go_of_the_channel, "the standby to close the channel's pipes")
        self.assertEqual(self.channel.close(), 0)
        until(lambda: not alive(standby), "the standby to end with its channel")

    def test_the_standby_ends_when_serve_is_killed_and_the_session_is_untouched(self):
        standby = self.waiting()[0]
        self.channel.proc.kill()
        self.channel.proc.wait()
        until(lambda: not alive(standby), "the standby to end")
        self.assertEqual(self.h.log_lines(), [])
        self.assertEqual(os.listdir(self.h.state("jobs")) if os.path.isdir(self.h.state("jobs")) else [], [])

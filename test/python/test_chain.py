"""The score log's hash chain and the locks that serialise writers; the status checkpoint against a full scan."""

import json
import os

from support import RunnerTest
from runner.files import FileLock, try_lock
from runner.scorelog import LogScan, append_entry, canonical_json, entry_hash, scan_log
from runner.session import genesis_hash, load_session


def fields(job_id, score=1.0, started="2027-01-15T08:00:01.000Z"):
    return {"job_id": job_id, "kind": "score", "started_at": started, "ended_at": started, "elapsed_s": 1.0,
            "score": score, "message": "m", "exit_code": 0, "signal": None, "timed_out": False, "killed": False,
            "duration_s": 0.0, "solution_hash": "sha256:x", "counts": True, "output_bytes": 0,
            "output_truncated": False}


class Chain(RunnerTest):
    def setUp(self):
        RunnerTest.setUp(self)
        self.h = self.home()
        self.h.last("start")
        self.ctx = self.h.context()
        self.session = load_session(self.ctx)

    def append(self, job_id, **kw):
        return append_entry(self.ctx, self.session, fields(job_id, **kw))

    def test_entries_link_to_the_session_start_and_to_each_other(self):
        a, b = self.append("j-a"), self.append("j-b", score=2.0)
        self.assertEqual(a["prev_hash"], genesis_hash(self.session))
        self.assertEqual(b["prev_hash"], a["hash"])
        self.assertEqual(a["hash"], entry_hash(a))
        self.assertEqual([a["index"], b["index"]], [0, 1])
        self.assertTrue(scan_log(self.ctx, self.session).intact)

    def test_appending_a_job_twice_keeps_one_entry(self):
        first = self.append("j-a")
        again = self.append("j-a", score=5.0)
        self.assertEqual(first, again)
        self.assertEqual(len(self.h.log_lines()), 1)

    def test_a_torn_last_line_is_evidence_and_the_next_append_goes_on_after_it(self):
        self.append("j-a")
        with open(self.h.state("score.log.jsonl"), "ab") as f:
            f.write(b'{"index": 1, "job')
        scan = scan_log(self.ctx, self.session)
        self.assertFalse(scan.intact)
        self.assertRegex(scan.reason, "incomplete")
        c = self.append("j-c")
        self.assertEqual(c["index"], 2)
        self.assertEqual(len(self.h.log_lines()), 3)

    def test_a_complete_entry_without_its_newline_becomes_an_entry(self):
        a = self.append("j-a")
        e = dict(fields("j-b"), index=1, prev_hash=a["hash"])
        e["hash"] = entry_hash(e)
        with open(self.h.state("score.log.jsonl"), "ab") as f:
            f.write(canonical_json(e).encode())
        self.assertEqual(self.append("j-b"), e)
        self.assertTrue(scan_log(self.ctx, self.session).intact)

    def test_every_kind_of_edit_is_named(self):
        for i in range(4):
            self.append("j-%d" % i, score=float(i))
        lines = self.h.log_lines()
        genesis = genesis_hash(self.session)

        def verdict(new_lines):
            return LogScan(b"".join(line + b"\n" for line in new_lines), genesis).run()

        edited = list(lines)
        edited[2] = edited[2].replace(b'"score":2.0', b'"score":9.0')
        self.assertRegex(verdict(edited).reason, "^line 2: hash does not match")
        self.assertRegex(verdict([lines[0], lines[2], lines[3]]).reason, "^line 1: index 2 where 1")
        self.assertRegex(verdict([lines[0], lines[2], lines[1], lines[3]]).reason, "^line 1: index 2")
        self.assertRegex(verdict(lines[:2] + [b"not json"] + lines[2:]).reason, "^line 2: not valid JSON")
        self.assertRegex(verdict(lines[:2] + [lines[1]] + lines[2:]).reason, "^line 2: index 1 where 2")
        self.assertTrue(verdict(lines).intact)


class Locks(RunnerTest):
    def test_the_score_lock_makes_a_second_request_busy(self):
        h = self.home()
        h.last("start")
        fd = try_lock(h.state("score.lock"))
        try:
            code, reply = h.last("score")
            self.assertEqual(code, 3)
            self.assertEqual(reply["error"]["code"], "busy")
        finally:
            os.close(fd)
        self.assertIsNotNone(try_lock(h.state("score.lock")))

    def test_try_lock_is_exclusive_and_file_lock_waits_for_it(self):
        h = self.home()
        a = try_lock(h.state("x.lock"))
        self.assertIsNotNone(a)
        self.assertIsNone(try_lock(h.state("x.lock")))
        os.close(a)
        with FileLock(h.state("x.lock")) as lock:
            self.assertIsNone(try_lock(h.state("x.lock")))
            self.assertIsNotNone(lock.fd)

    def test_a_folder_in_place_of_the_score_lock_is_set_aside_and_scoring_goes_on(self):
        h = self.home()
        h.last("start")
        h.write_solution("delay_s", "0")
        os.remove(h.state("score.lock"))
        os.mkdir(h.state("score.lock"))
        code, objects = h.call("score", follow=True)
        self.assertEqual(code, 0, objects)
        self.assertEqual(objects[-1]["type"], "entry")
        self.assertTrue(os.path.isfile(h.state("score.lock")))
        aside = [n for n in os.listdir(h.state()) if n.startswith("score.lock.damaged-")]
        self.assertEqual(len(aside), 1)
        self.assertTrue(any(e["event"] == "damaged_file" for e in h.events()))

    def test_a_folder_in_place_of_the_session_lock_is_set_aside(self):
        h = self.home()
        os.remove(h.state("session.lock"))
        os.mkdir(h.state("session.lock"))
        code, reply = h.last("start")
        self.assertEqual(code, 0, reply)
        self.assertEqual(reply["state"], "running")


class StatusCheckpoint(RunnerTest):
    """status reads only what was appended since its checkpoint; it must agree with a full scan."""

    def test_status_agrees_with_a_full_scan_across_appends_edits_and_a_new_session(self):
        from runner.logstate import _memory
        from runner.status import counted_entry
        h = self.home()
        h.last("start")
        ctx = h.context()
        session = load_session(ctx)
        scoring = ctx.manifest["scoring"]

        def check():
            status = h.last("status")[1]
            scan = scan_log(ctx, session)
            self.assertEqual(status["entries"], len(scan.entries))
            self.assertEqual(status["log_intact"], scan.intact)
            self.assertEqual(status["counted"], counted_entry(scan.entries, scoring))

        for i, score in enumerate([3.0, None, 7.0, 5.0]):
            append_entry(ctx, session, fields("j-%d" % i, score=score))
            check()
        # appended by someone else (not through append_entry): read from the checkpoint on
        path = h.state("score.log.jsonl")
        last = json.loads(h.log_lines()[-1])
        e = dict(fields("j-x", score=9.0), index=last["index"] + 1, prev_hash=last["hash"])
        e["hash"] = entry_hash(e)
        with open(path, "ab") as f:
            f.write((canonical_json(e) + "\n").encode())
        check()
        # rewritten in place, same length
        data = open(path, "rb").read().replace(b'"score":7.0', b'"score":8.0')
        with open(path, "wb") as f:
            f.write(data)
        _memory.clear()
        check()
        self.assertFalse(h.last("status")[1]["log_intact"])

    def test_the_checkpoint_is_what_status_reads(self):
        h = self.home()
        h.last("start")
        ctx = h.context()
        session = load_session(ctx)
        for i in range(3):
            append_entry(ctx, session, fields("j-%d" % i, score=float(i)))
        h.last("status")
        with open(h.state("log-checkpoint.json")) as f:
            cp = json.load(f)
        self.assertEqual(cp["size"], os.path.getsize(h.state("score.log.jsonl")))
        self.assertEqual(cp["count"], 3)
        self.assertEqual(cp["last_hash"], json.loads(h.log_lines()[-1])["hash"])

    def test_a_damaged_checkpoint_is_rebuilt(self):
        h = self.home()
        h.last("start")
        ctx = h.context()
        append_entry(ctx, load_session(ctx), fields("j-0", score=4.0))
        from runner.logstate import _memory
        _memory.clear()
        with open(h.state("log-checkpoint.json"), "wb") as f:
            f.write(b"\xff\xfe{")
        status = h.last("status")[1]
        self.assertEqual(status["entries"], 1)
        self.assertEqual(status["counted"]["score"], 4.0)


class CheckpointedAppend(RunnerTest):
    """An append checks only the lines after the status checkpoint, and gives what a full scan would."""

    def setUp(self):
        RunnerTest.setUp(self)
        from runner.logstate import _memory, checkpoint_after_append
        self.memory = _memory
        self.checkpoint = checkpoint_after_append
        self.h = self.home()
        self.h.last("start")
        self.ctx = self.h.context()
        self.session = load_session(self.ctx)

    def append(self, job_id, **kw):
        return append_entry(self.ctx, self.session, fields(job_id, **kw), self.checkpoint(self.ctx, self.session))

    def checked_lines(self, job_id):
        """The number of log lines the append of job_id checks against the contract, and its entry."""
        import runner.scorelog as scorelog
        real = scorelog.entry_problem
        calls = []

        def counting(obj):
            calls.append(obj)
            return real(obj)

        scorelog.entry_problem = counting
        try:
            entry = self.append(job_id)
        finally:
            scorelog.entry_problem = real
        return len(calls), entry

    def test_an_append_after_many_entries_checks_only_the_new_lines(self):
        for i in range(60):
            self.append("j-%d" % i, score=float(i))
        checked, entry = self.checked_lines("j-new")
        self.assertEqual(entry["index"], 60)
        self.assertLessEqual(checked, 2)  # the new entry itself; never the 60 before it
        self.memory.clear()
        os.remove(self.h.state("log-checkpoint.json"))
        checked, entry = self.checked_lines("j-after-loss")
        self.assertGreaterEqual(checked, 61)  # no checkpoint: every line is checked again
        self.assertEqual(entry["index"], 61)
        scan = scan_log(self.ctx, self.session)
        self.assertTrue(scan.intact, scan.reason)
        self.assertEqual(len(scan.entries), 62)

    def test_a_job_with_an_entry_before_the_checkpoint_gets_no_second_one(self):
        first = self.append("j-a")
        for i in range(5):
            self.append("j-%d" % i)
        again = self.append("j-a", score=5.0)
        self.assertEqual(again, first)
        self.assertEqual(len(self.h.log_lines()), 6)
        # an id found inside another id or in a message is not that job's entry
        self.append("k-10", score=2.0)
        f = fields("k-20")
        f["message"] = "compare with k-2"
        append_entry(self.ctx, self.session, f, self.checkpoint(self.ctx, self.session))
        self.append("j-c")
        one = self.append("k-1", score=9.0)
        two = self.append("k-2", score=8.0)
        self.assertEqual([one["index"], two["index"], one["score"], two["score"]], [9, 10, 9.0, 8.0])

    def test_the_checkpoint_moves_past_each_entry_as_a_full_scan_would_count(self):
        for i, score in enumerate([3.0, None, 7.0]):
            self.append("j-%d" % i, score=score)
        with open(self.h.state("log-checkpoint.json")) as f:
            cp = json.load(f)
        scan = scan_log(self.ctx, self.session)
        self.assertEqual(cp["count"], len(scan.entries))
        self.assertEqual(cp["size"], os.path.getsize(self.h.state("score.log.jsonl")))
        self.assertEqual(cp["best"]["score"], 7.0)
        self.assertEqual(cp["last_hash"], scan.last_hash)

    def test_a_log_rewritten_in_place_is_checked_again_from_its_first_line(self):
        for i, score in enumerate([3.0, 7.0, 5.0]):
            self.append("j-%d" % i, score=score)
        path = self.h.state("score.log.jsonl")
        data = open(path, "rb").read().replace(b'"score":7.0', b'"score":8.0')
        with open(path, "wb") as f:
            f.write(data)
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
        self.append("j-3")
        with open(self.h.state("log-checkpoint.json")) as f:
            cp = json.load(f)
        self.assertEqual(cp["first_bad"], 1)
        self.assertFalse(self.h.last("status")[1]["log_intact"])

    def test_a_checkpoint_of_another_log_is_not_used(self):
        for i in range(3):
            self.append("j-%d" % i)
        path = self.h.state("score.log.jsonl")
        lines = open(path, "rb").read().split(b"\n")
        with open(path, "wb") as f:
            f.write(b"\n".join(lines[:1] + lines[2:]))  # the middle entry deleted: the log is shorter
        entry = self.append("j-3")
        self.assertEqual(entry["index"], 2)  # counted from the lines there are, not from the checkpoint
        self.assertFalse(scan_log(self.ctx, self.session).intact)

    def test_a_torn_copy_of_an_entry_already_before_the_checkpoint_is_not_taken_as_an_entry(self):
        first = self.append("j-a")
        self.append("j-b")
        path = self.h.state("score.log.jsonl")
        last = json.loads(self.h.log_lines()[-1])
        dup = dict(first, index=last["index"] + 1, prev_hash=last["hash"])
        dup["hash"] = entry_hash(dup)
        with open(path, "ab") as f:
            f.write(canonical_json(dup).encode())  # no newline: torn
        entry = self.append("j-c")
        self.assertEqual(entry["index"], 3)
        self.assertEqual(entry["prev_hash"], last["hash"])

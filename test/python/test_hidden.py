"""Hidden scores (scoring.visible): the hidden value is kept in a record of its own that only the organiser
reads, never in the score log, the job's files, the events, the status or the exports; a failed run shows only
the runner's reason; the entry's hash covers the record; the participant's sudo rule cannot read it."""

import json
import os
import stat
import tempfile

from support import RunnerTest
from runner.files import write_json_atomic
from runner.grants import participants_refusal
from runner.hidden import NO_SCORE_TEXT, SCORED_TEXT, record_hash
from runner.jobs import create_job
from runner.session import Clock, load_session

HIDDEN_VALUE = "4.123456"  # score.txt 4 plus the held-out offset of the fixture


def readable_by_others(root):
    """Every file under root that a user other than its owner could open: the file is o+r and every folder on
    its way from root is o+x (root itself included)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        parts = os.path.relpath(dirpath, root).split(os.sep)
        way = [root] + [os.path.join(root, *parts[:i + 1]) for i in range(len(parts)) if parts[0] != "."]
        if not all(os.stat(d).st_mode & stat.S_IXOTH for d in way):
            continue
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.stat(path).st_mode & stat.S_IROTH:
                found.append(path)
    return found


class HiddenScores(RunnerTest):
    def scored(self, h, **files):
        for name, text in files.items():
            h.write_solution(name, text)
        self.clock.advance(10)
        code, objects = h.call("score", follow=True)
        self.assertEqual(code, 0, objects)
        return [o for o in objects if o.get("type") == "entry"][-1]["entry"]

    def public_texts(self, h):
        """Everything the participant reads of the session: the runner's replies, and every state file others can
        read (in protected mode the state belongs to root and the participant is such an other)."""
        texts = [json.dumps(h.call(c)[1]) for c in ("status", "log", "verify")]
        texts.append(json.dumps(h.call("export", format="jsonl")[1]))
        texts.append(json.dumps(h.call("export", format="metr-csv")[1]))
        readable = readable_by_others(h.state())
        self.assertIn(h.state("score.log.jsonl"), readable)  # the walk finds what others can read
        for path in readable:
            with open(path, "rb") as f:
                texts.append("%s: %s" % (path, f.read().decode("utf-8", "replace")))
        return texts

    def assert_nowhere(self, texts, value):
        for text in texts:
            self.assertNotIn(value, text)

    def test_validation_shows_the_score_and_keeps_the_hidden_one_for_the_organiser(self):
        h = self.home("hidden-scorer")
        h.last("start")
        entry = self.scored(h, **{"score.txt": "4"})
        self.assertEqual(entry["score"], 4.0)
        self.assertEqual(entry["message"], "validation score 4")
        self.assertEqual(set(entry["hidden"]), {"sha256"})
        status = h.last("status")[1]
        self.assertEqual(status["environment"]["visible"], "validation")
        self.assertEqual(status["counted"]["score"], 4.0)
        record = h.state("hidden", entry["job_id"] + ".json")
        self.assertEqual(stat.S_IMODE(os.stat(record).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(h.state("hidden")).st_mode), 0o700)
        with open(record) as f:
            self.assertEqual(record_hash(json.load(f)), entry["hidden"]["sha256"])
        self.assert_nowhere(self.public_texts(h), HIDDEN_VALUE)
        code, reply = h.last("hidden")
        self.assertEqual(code, 0)
        self.assertEqual(reply["visible"], "validation")
        self.assertIn("Unprotected mode", reply["note"])
        (r,) = reply["hidden"]
        self.assertEqual((r["index"], r["score"], r["intact"], r["problem"]), (0, 4.123456, True, None))
        self.assertEqual(r["message"], "held-out score 4.123456")

    def test_validation_without_a_hidden_score_says_why_to_the_organiser_only(self):
        h = self.home("hidden-scorer")
        h.last("start")
        entry = self.scored(h, **{"score.txt": "5", "no_hidden": ""})
        self.assertEqual(entry["score"], 5.0)
        self.assertNotIn("hidden", entry["message"])
        (r,) = h.last("hidden")[1]["hidden"]
        self.assertIsNone(r["score"])
        self.assertIn("no \"hidden_score\"", r["message"])

    def test_none_shows_whether_a_run_scored_and_never_the_value(self):
        h = self.home("hidden-scorer", manifest_changes={"scoring.visible": "none"})
        h.last("start")
        entry = self.scored(h, **{"score.txt": "4"})
        self.assertIsNone(entry["score"])
        self.assertEqual(entry["message"], SCORED_TEXT)
        self.assertTrue(entry["hidden"]["scored"])
        failed = self.scored(h, fail="")
        self.assertIsNone(failed["score"])
        self.assertFalse(failed["hidden"]["scored"])
        self.assertEqual(failed["message"], "No score: the scorer exited with code 3.")
        os.unlink(os.path.join(h.solution, "fail"))
        nan = self.scored(h, **{"score.txt": "nan"})
        self.assertEqual(nan["message"], NO_SCORE_TEXT)
        self.assertFalse(nan["hidden"]["scored"])
        status = h.last("status")[1]
        self.assertIsNone(status["counted"])
        texts = self.public_texts(h)
        self.assert_nowhere(texts, "validation score")  # the scorer's message is hidden too
        self.assert_nowhere(texts, "4.0")
        records = h.last("hidden")[1]["hidden"]
        self.assertEqual([r["score"] for r in records], [4.0, None, None])
        self.assertEqual(records[0]["message"], "validation score 4")
        self.assertIn("exited with code 3", records[1]["message"])
        self.assertTrue(all(r["intact"] for r in records))

    def test_a_changed_or_missing_hidden_record_is_reported(self):
        h = self.home("hidden-scorer")
        h.last("start")
        first = self.scored(h, **{"score.txt": "4"})
        second = self.scored(h, **{"score.txt": "6"})
        path = h.state("hidden", first["job_id"] + ".json")
        with open(path) as f:
            record = json.load(f)
        record["score"] = 99.0
        write_json_atomic(path, record, mode=0o600)
        os.unlink(h.state("hidden", second["job_id"] + ".json"))
        records = h.last("hidden")[1]["hidden"]
        self.assertEqual([(r["intact"], r["score"]) for r in records], [(False, None), (False, None)])
        self.assertIn("does not match", records[0]["problem"])
        self.assertIn("missing", records[1]["problem"])
        self.assertTrue(h.last("verify")[1]["intact"])  # the public log is untouched

    def test_a_recovered_run_keeps_its_hidden_score(self):
        h = self.home("hidden-scorer", manifest_changes={"scoring.visible": "none"})
        h.last("start")
        self.clock.advance(30)
        ctx = h.context()
        job = create_job(ctx, "score", Clock(load_session(ctx), self.clock()))
        jdir = ctx.job_dir(job["job_id"])
        write_json_atomic(os.path.join(jdir, "scorer.json"), {"pgid": 999999999, "boot_id": None})
        os.makedirs(os.path.join(jdir, "result"))
        with open(os.path.join(jdir, "result", "result.json"), "w") as f:
            json.dump({"score": 7.25, "message": "seven and a quarter"}, f)
        h.last("status")
        (line,) = h.log_lines()
        entry = json.loads(line)
        self.assertIsNone(entry["score"])
        self.assertTrue(entry["hidden"]["scored"])
        self.assertNotIn("7.25", line.decode())
        (r,) = h.last("hidden")[1]["hidden"]
        self.assertEqual(r["score"], 7.25)

    def test_measure_start_is_refused_where_every_score_is_hidden(self):
        h = self.home("hidden-scorer", manifest_changes={"scoring.visible": "none"})
        code, reply = h.last("measure-start")
        self.assertEqual(code, 4)
        self.assertIn("hidden", reply["error"]["message"])

    def test_an_unknown_visibility_is_refused_by_the_manifest_check(self):
        h = self.home("hidden-scorer")
        path = os.path.join(h.environments, "hidden-scorer", "manifest.json")
        with open(path) as f:
            manifest = json.load(f)
        manifest["scoring"]["visible"] = "some"
        with open(path, "w") as f:
            json.dump(manifest, f)
        code, reply = h.last("status")
        self.assertEqual(code, 5)
        self.assertIn("scoring.visible", reply["error"]["message"])


class WhoMayReadHiddenScores(RunnerTest):
    RULE = ("Defaults!/usr/local/bin/rebench-runner !requiretty\n"
            "ann ALL=(root) NOPASSWD: /usr/local/bin/rebench-runner\n")

    def test_the_participants_sudo_rule_is_refused_and_root_or_an_administrator_is_not(self):
        with tempfile.TemporaryDirectory() as d:
            rule = os.path.join(d, "rebench")
            with open(rule, "w") as f:
                f.write(self.RULE)
            self.assertIn("participant's sudo rule", participants_refusal("ann", "Hidden scores", rule))
            self.assertIsNone(participants_refusal("ops", "Hidden scores", rule))
            self.assertIsNone(participants_refusal(None, "Hidden scores", rule))
            self.assertIn("could not be read", participants_refusal("ops", "Hidden scores", os.path.join(d, "x")))

"""End scoring (submit: one answer, checked, recorded, scored once as the final entry) and the aggregate of the
whole log recorded once the session ended, through the commands as `runner --json` runs them."""

import json
import os
import time

from support import RunnerTest

SUBMIT = {"answer": None, "request": None, "stdin": False, "yes": True, "follow": True}
AGGREGATE = """import json, math, os
with open(os.environ["REBENCH_SCORE_LOG_FILE"]) as f:
    log = json.load(f)
scores = [e["score"] for e in log if e["score"] is not None]
print("aggregating %d entries" % len(log))
result = {"score": min(scores) if scores else 0.0, "message": "the lowest of %d scores" % len(scores)}
with open(os.environ["REBENCH_RESULT_FILE"], "w") as f:
    json.dump(result, f)
"""


class Submit(RunnerTest):
    def submit(self, h, answer, **kw):
        values = dict(SUBMIT, answer=answer)
        values.update(kw)
        return h.call("submit", **values)

    def records(self, h):
        code, reply = h.last("records")
        self.assertEqual(code, 0, reply)
        return reply["records"]

    def test_an_answer_is_scored_once_as_the_final_entry_and_the_session_ends(self):
        h = self.home("answer-check")
        h.last("start")
        code, objects = self.submit(h, "49")
        self.assertEqual(code, 0, objects)
        entry = [o for o in objects if o.get("type") == "entry"][0]["entry"]
        self.assertEqual((entry["kind"], entry["score"], entry["counts"]), ("submit", 1.0, True))
        self.assertNotIn("manual", entry)
        status = objects[-1]
        self.assertEqual(status["state"], "ended")
        self.assertEqual(status["counted"]["score"], 1.0)
        self.assertEqual(status["environment"]["submit"]["pattern"], "[0-9]+|essay: [\\s\\S]+")
        submitted = [r for r in self.records(h) if r["kind"] == "submission"]
        self.assertEqual(len(submitted), 1)
        self.assertEqual((submitted[0]["answer"], submitted[0]["job_id"]), ("49", entry["job_id"]))
        with open(h.state("jobs", entry["job_id"], "submission.txt")) as f:
            self.assertEqual(f.read(), "49")
        with open(h.state("session.json")) as f:
            self.assertEqual(json.load(f)["end_reason"], "answer submitted")
        code, again = self.submit(h, "49")
        self.assertEqual((code, again[-1]["error"]["code"]), (4, "refused"), again)

    def test_an_answer_of_another_form_is_refused_and_nothing_changes(self):
        h = self.home("answer-check")
        h.last("start")
        code, objects = self.submit(h, "forty-nine")
        self.assertEqual(objects[-1]["error"]["code"], "usage", objects)
        self.assertIn("the sum as a whole number", objects[-1]["error"]["message"])
        self.assertNotEqual(code, 0)
        self.assertEqual(h.last("status")[1]["state"], "running")
        self.assertEqual(self.records(h), [])
        self.assertEqual(h.log_lines(), [])
        code, objects = self.submit(h, "49", yes=False)
        self.assertEqual(objects[-1]["error"]["code"], "usage")
        self.assertIn("--yes", objects[-1]["error"]["message"])
        self.assertEqual(h.last("status")[1]["state"], "running")

    def test_none_from_the_scorer_is_scored_by_a_person_later_never_0(self):
        h = self.home("answer-check")
        h.last("start")
        code, objects = self.submit(h, "essay: scores must never default to 0")
        self.assertEqual(code, 0, objects)
        entry = [o for o in objects if o.get("type") == "entry"][0]["entry"]
        self.assertIsNone(entry["score"])
        self.assertIs(entry["manual"], True)
        self.assertIn("scored by a person later", entry["message"])
        self.assertIsNone(objects[-1]["counted"])

    def test_score_now_and_a_final_run_are_not_offered_where_the_answer_is_scored(self):
        h = self.home("answer-check")
        h.last("start")
        code, reply = h.last("score", follow=True)
        self.assertEqual(reply["error"]["code"], "refused")
        self.assertIn("submit", reply["error"]["message"])
        code, reply = h.last("end", yes=True, follow=True)
        self.assertEqual((code, reply["state"], reply["entries"]), (0, "ended", 0), reply)

    def test_submit_is_refused_where_the_work_is_scored_as_it_goes(self):
        h = self.home()
        h.last("start")
        code, objects = self.submit(h, "49")
        self.assertEqual(objects[-1]["error"]["code"], "refused")
        self.assertEqual(h.last("status")[1]["environment"]["submit"], None)

    def test_the_channel_takes_submit_with_the_answer(self):
        from runner.serve import parse_request

        rid, command, args = parse_request(json.dumps({"id": 3, "command": "submit", "args": {"answer": "49", "yes": True}}))
        self.assertEqual((rid, command, args.answer, args.yes, args.follow), (3, "submit", "49", True, False))


class Aggregate(RunnerTest):
    def make(self):
        h = self.home(manifest_changes={"scoring.aggregate_command": ["{python}", "aggregate.py"]})
        with open(os.path.join(h.environments, "slow-scorer", "aggregate.py"), "w") as f:
            f.write(AGGREGATE)
        h.write_solution("delay_s", "0")
        return h

    def wait_for_record(self, h):
        for _ in range(600):
            if os.path.exists(h.state("aggregate.json")):
                break
            time.sleep(0.05)
        code, reply = h.last("aggregate")
        self.assertEqual(code, 0, reply)
        return reply["aggregate"]

    def test_ending_records_the_aggregate_over_the_counted_entries_beside_the_counted_score(self):
        h = self.make()
        h.last("start")
        code, reply = h.last("aggregate")
        self.assertEqual(reply["error"]["code"], "refused", "not before the session has ended")
        for text in ("3", "nan", "5"):
            h.write_solution("score.txt", text)
            self.assertEqual(h.call("score", follow=True)[0], 0)
        code, status = h.last("end", yes=True, follow=True)
        self.assertEqual(code, 0, status)
        record = self.wait_for_record(h)
        self.assertEqual((record["score"], record["entries"]), (3.0, 3))
        self.assertEqual(record["message"], "the lowest of 2 scores")
        status = h.last("status")[1]
        self.assertEqual(status["counted"]["score"], 5.0, "ours stays the one that counts")
        self.assertEqual(status["aggregate"]["score"], 3.0)
        with open(h.state("aggregate", "aggregate", "score-log.json")) as f:
            self.assertEqual([e["score"] for e in json.load(f)], [3.0, None, 5.0])
        self.assertEqual(sum(1 for e in h.events() if e["event"] == "aggregate"), 1, "recorded once")

    def test_an_aggregate_that_fails_is_no_score_never_0(self):
        h = self.make()
        with open(os.path.join(h.environments, "slow-scorer", "aggregate.py"), "w") as f:
            f.write("raise SystemExit(3)\n")
        h.last("start")
        h.last("end", yes=True, follow=True)
        record = self.wait_for_record(h)
        self.assertIsNone(record["score"])
        self.assertIn("exited with code 3", record["message"])

    def test_environments_without_an_aggregate_record_none(self):
        h = self.home()
        h.last("start")
        h.last("end", yes=True, follow=True)
        self.assertIsNone(h.last("status")[1]["aggregate"])
        self.assertEqual(h.last("aggregate")[1]["error"]["code"], "usage")

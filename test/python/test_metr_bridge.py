"""Tests of environments/metr (bridge.py, entries.py, parts of machine.py) against the test families in
test/fixtures/metr. They call the bridge as a separate process, as the runner and prepare do."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
METR = os.path.join(ROOT, "environments", "metr")
FAMILIES = os.path.join(ROOT, "test", "fixtures", "metr")
BRIDGE = os.path.join(METR, "bridge.py")
sys.path.insert(0, METR)
import bridge  # noqa: E402
import entries  # noqa: E402
import machine  # noqa: E402

SECRET_TOKEN = "-".join(["rbt", "secret", "7f3a9c"])  # written apart, so that no file holds it whole


def run_bridge(family, method, task=None, secrets=None, input_text=None, timeout=None, env=None, result_file=None):
    """(report, family output, seconds) of one bridge call."""
    argv = [sys.executable, "-I", BRIDGE, "--family-dir", os.path.join(FAMILIES, family), "--method", method]
    tmp = tempfile.mkdtemp(prefix="rbt-bridge-")
    try:
        if task is not None:
            argv += ["--task", task]
        if secrets is not None:
            path = os.path.join(tmp, "secrets.env")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, secrets.encode())
            os.close(fd)
            argv += ["--secrets", path]
        if input_text is not None:
            path = os.path.join(tmp, "input")
            with open(path, "w") as f:
                f.write(input_text)
            argv += ["--input", path]
        if timeout is not None:
            argv += ["--timeout", str(timeout)]
        if result_file is not None:
            argv += ["--result-file", result_file]
        began = time.monotonic()
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                              env=env if env is not None else dict(os.environ), start_new_session=True)
        seconds = time.monotonic() - began
        out = proc.stdout.decode()
        report = json.loads(out) if out.strip() else None
        return report, proc.stderr.decode(), seconds
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def intermediate(task, **kw):
    report, output, _ = run_bridge("broken_scorer", "intermediate_score", task, **kw)
    return entries.intermediate_entry(report), report, output


class IntermediateResults(unittest.TestCase):
    def test_a_finite_score_counts_with_its_message_as_text_and_details_kept_apart(self):
        entry, report, output = intermediate("prints")
        self.assertEqual(entry["score"], 0.75)
        self.assertEqual(entry["message"], "printed on stdout")
        self.assertEqual(entry["details"], {})

    def test_what_the_family_prints_goes_to_its_output_never_to_the_result(self):
        entry, report, output = intermediate("prints")
        # The family printed result-looking JSON (itself and through a subprocess): the result is still its own.
        self.assertEqual(report["value"]["score"], 0.75)
        self.assertIn('{"ok": true, "value": {"score": 99}}', output)
        self.assertIn('{"ok": true, "value": {"score": 98}}', output)
        self.assertIn("scoring (prints)", output)

    def test_nan_is_no_score_and_the_familys_message_is_kept(self):
        entry, report, _ = intermediate("nan")
        self.assertEqual(report["value"]["score"], {"non_finite": "nan"})
        self.assertIsNone(entry["score"])
        self.assertEqual(entry["message"], "error: loss diverged | No score: the scorer gave NaN")
        self.assertEqual(entry["details"], {"loss": {"non_finite": "nan"}})

    def test_null_infinity_text_and_a_bare_number_are_no_score(self):
        for task, why in (("null", "the scorer gave no score (null)"),
                          ("infinite", "the scorer gave Infinity, not a finite number"),
                          ("text", "the scorer gave text, not a number"),
                          ("not_a_dict", "intermediate_score returned float, not an object with a score")):
            with self.subTest(task=task):
                entry, _, _ = intermediate(task)
                self.assertIsNone(entry["score"])
                self.assertTrue(entry["message"].endswith("No score: " + why), entry["message"])

    def test_a_scorer_that_raises_or_exits_is_no_score_with_the_exception_named(self):
        entry, report, _ = intermediate("raises")
        self.assertIsNone(entry["score"])
        self.assertEqual(entry["message"],
                         "No score: TaskFamily.intermediate_score raised ValueError: the checkpoint could not be loaded")
        self.assertIn("Traceback", entry["details"]["bridge_error"]["traceback"])
        entry, _, _ = intermediate("exits")
        self.assertIsNone(entry["score"])
        self.assertIn("raised SystemExit: 3", entry["message"])

    def test_a_numpy_like_scalar_is_read_as_its_number(self):
        entry, report, _ = intermediate("scalar")
        self.assertEqual(entry["score"], 0.25)
        self.assertEqual(entry["details"], {"raw": 3})

    def test_a_scorer_that_never_returns_is_stopped_at_the_time_out_with_its_children(self):
        report, _, seconds = run_bridge("broken_scorer", "intermediate_score", "hangs", timeout=2)
        entry = entries.intermediate_entry(report)
        self.assertIsNone(entry["score"])
        self.assertEqual(report["error"]["kind"], "timeout")
        self.assertIn("did not finish in time", entry["message"])
        self.assertLess(seconds, 15)
        time.sleep(0.5)
        left = subprocess.run(["pgrep", "-f", "import time; time.sleep(3600)"], stdout=subprocess.PIPE)
        self.assertEqual(left.stdout.strip(), b"", "the family's child outlived the time-out")

    def test_the_family_sees_none_of_the_callers_environment(self):
        env = dict(os.environ, PARTICIPANT_TOKEN="from-the-participant", PYTHONPATH="/tmp/evil")
        report, _, _ = run_bridge("broken_scorer", "intermediate_score", "environ", env=env)
        details = report["value"]["details"]
        self.assertNotIn("PARTICIPANT_TOKEN", details["names"])
        self.assertNotIn("PYTHONPATH", details["names"])
        self.assertEqual(sorted(details["names"]), sorted(bridge.family_environment({})))
        self.assertEqual(details["cwd"], os.path.join(FAMILIES, "broken_scorer"))
        self.assertEqual(details["home"], "/root")

    def test_result_file(self):
        tmp = tempfile.mkdtemp()
        try:
            path = os.path.join(tmp, "result.json")
            report, output, _ = run_bridge("broken_scorer", "intermediate_score", "prints", result_file=path)
            self.assertIsNone(report)  # nothing on stdout
            with open(path) as f:
                self.assertEqual(json.load(f)["value"]["score"], 0.75)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        finally:
            shutil.rmtree(tmp)


class StaleRows(unittest.TestCase):
    """METR's helper returns the log's last row: a run that added none must not be taken for a new score."""

    def report(self, before, after, score=1.5):
        return {"ok": True, "method": "intermediate_score", "log_rows_before": before, "log_rows_after": after,
                "value": {"score": score, "message": {"message": "old"}, "details": {"x": 1}}}

    def test_no_new_row_is_no_score_and_the_old_rows_message_and_details_are_dropped(self):
        entry = entries.intermediate_entry(self.report(3, 3))
        self.assertIsNone(entry["score"])
        self.assertNotIn("old", entry["message"])
        self.assertIn("added no row to /protected/score.log", entry["message"])
        self.assertEqual(entry["details"], {"stale_row_dropped": True})

    def test_a_new_row_counts(self):
        self.assertEqual(entries.intermediate_entry(self.report(3, 4))["score"], 1.5)
        self.assertEqual(entries.intermediate_entry(self.report(0, 1))["score"], 1.5)

    def test_a_log_that_vanished_is_no_score(self):
        self.assertIsNone(entries.intermediate_entry(self.report(2, None))["score"])

    def test_families_without_the_protected_log_are_taken_as_they_return(self):
        self.assertEqual(entries.intermediate_entry(self.report(None, None))["score"], 1.5)

    def test_rows_are_counted_as_csv_records(self):
        tmp = tempfile.mkdtemp()
        try:
            path = os.path.join(tmp, "score.log")
            with open(path, "w") as f:
                f.write('timestamp,score,message,details\n2024-01-01T00:00:00,1.0,"{""a"": ""two\nlines""}",{}\n'
                        '2024-01-01T00:01:00,nan,{},{}\n')
            self.assertEqual(bridge.count_log_rows(path), 2)
            self.assertIsNone(bridge.count_log_rows(os.path.join(tmp, "missing")))
        finally:
            shutil.rmtree(tmp)


class Messages(unittest.TestCase):
    def test_readable_text(self):
        self.assertEqual(entries.message_text({"message": "all good"}), "all good")
        self.assertEqual(entries.message_text({"loss": 2.5, "note": "ok", "nan": {"non_finite": "nan"}}),
                         "loss: 2.5\nnote: ok\nnan: NaN")
        self.assertEqual(entries.message_text({"nested": {"a": [1, {"non_finite": "inf"}]}}),
                         'nested: {"a": [1, "Infinity"]}')
        self.assertEqual(entries.message_text(None), "")
        self.assertEqual(entries.message_text("plain"), "plain")
        self.assertEqual(len(entries.message_text({"message": "x" * 10000})), entries.MESSAGE_LIMIT)


class EndScoring(unittest.TestCase):
    def submit(self, task, answer):
        report, output, _ = run_bridge("end_answer", "score", task, input_text=answer)
        return entries.end_entry(report), output

    def test_a_right_and_a_wrong_answer(self):
        entry, output = self.submit("sum", "49\n")
        self.assertEqual(entry["score"], 1.0)
        self.assertIn("checking the submitted answer (3 characters)", output)
        entry, _ = self.submit("sum", "48")
        self.assertEqual(entry["score"], 0.0)
        self.assertFalse(entry["manual"])

    def test_none_means_a_person_scores_it_later_never_zero(self):
        entry, _ = self.submit("essay", "Three sentences.")
        self.assertIsNone(entry["score"])
        self.assertTrue(entry["manual"])
        self.assertIn("scored by a person later", entry["message"])

    def test_a_bridge_failure_is_no_score(self):
        entry = entries.end_entry({"ok": False, "error": {"kind": "timeout", "message": "the family's score did not return within 5 s"}})
        self.assertIsNone(entry["score"])
        self.assertFalse(entry["manual"])
        self.assertIn("No score: the scorer did not finish in time", entry["message"])
        self.assertIsNone(entries.end_entry(None)["score"])
        self.assertIsNone(entries.end_entry({"ok": True, "value": {"non_finite": "nan"}})["score"])


class FamilyProblems(unittest.TestCase):
    def test_import_error(self):
        report, _, _ = run_bridge("broken_import", "describe", "main")
        self.assertFalse(report["ok"])
        self.assertEqual(report["error"]["kind"], "import")
        self.assertIn("No module named 'a_module_that_is_not_installed_anywhere'", report["error"]["message"])

    def test_get_tasks_raising(self):
        report, _, _ = run_bridge("broken_tasks", "describe", "main")
        self.assertEqual(report["error"]["kind"], "get_tasks")
        self.assertIn("tasks.json is missing", report["error"]["message"])

    def test_unknown_task_lists_the_tasks(self):
        report, _, _ = run_bridge("end_answer", "describe", "nope")
        self.assertEqual(report["error"]["kind"], "task")
        self.assertEqual(report["error"]["message"], "the family has no task 'nope'; its tasks: essay, sum")

    def test_describe_gives_what_prepare_needs_and_never_the_task_data(self):
        report, _, _ = run_bridge("end_answer", "describe", "sum")
        value = report["value"]
        self.assertEqual(value["scoring"], "end")
        self.assertEqual(value["tasks"], ["essay", "sum"])
        self.assertIn("Answer format", value["instructions"])
        self.assertIsNone(value["aux_vm_spec"])
        self.assertNotIn('"49"', json.dumps(report))  # the answer is task data
        report, _, _ = run_bridge("aux_vm", "describe", "cluster")
        self.assertEqual(report["value"]["aux_vm_spec"]["cpu_count_range"], [4, 8])

    def test_missing_secrets_are_named(self):
        report, _, _ = run_bridge("needs_secrets", "describe", "main", secrets="RBT_API_TOKEN=x\n")
        self.assertEqual(report["error"]["kind"], "missing-secret")
        self.assertIn("RBT_API_ENDPOINT", report["error"]["message"])
        self.assertNotIn("RBT_API_TOKEN,", report["error"]["message"])

    def test_secrets_reach_the_family(self):
        secrets = "# study keys\nRBT_API_TOKEN='%s'\nexport RBT_API_ENDPOINT=https://api.example.org\nRBT_HOLD_S=0\n" % SECRET_TOKEN
        report, output, _ = run_bridge("needs_secrets", "intermediate_score", "main", secrets=secrets)
        entry = entries.intermediate_entry(report)
        self.assertEqual(entry["score"], 1.0)
        self.assertEqual(entry["message"], "token: accepted\nendpoint_set: true")
        self.assertNotIn(SECRET_TOKEN, json.dumps(report) + output)

    def test_secret_values_are_blanked_in_the_output_and_the_result(self):
        for extra in ("", "RBT_RAISE=1\n"):
            secrets = "RBT_API_TOKEN=%s\nRBT_API_ENDPOINT=https://api.example.org\n%s" % (SECRET_TOKEN, extra)
            report, output, _ = run_bridge("needs_secrets", "intermediate_score", "leaky", secrets=secrets)
            text = json.dumps(report) + output
            self.assertNotIn(SECRET_TOKEN, text)
            self.assertNotIn(SECRET_TOKEN[:12], text)
            self.assertIn("calling the API with [secret RBT_API_TOKEN] now", output)
            self.assertIn("child sees [secret RBT_API_TOKEN]", output)
            if extra:
                self.assertIn("the API refused [secret RBT_API_TOKEN]", report["error"]["message"])
            else:
                self.assertEqual(report["value"]["message"], {"message": "used [secret RBT_API_TOKEN]"})
                self.assertEqual(report["value"]["details"], {"[secret RBT_API_TOKEN]": "[secret RBT_API_TOKEN]"})

    def test_the_redactor_holds_back_only_what_may_start_a_secret(self):
        r = bridge.Redactor({"K": "abcdef", "SHORT": "xy"})
        self.assertEqual(r.split(b"hello abc"), (b"hello ", b"abc"))
        self.assertEqual(r.split(b"abcdef!"), (b"[secret K]!", b""))
        self.assertEqual(r.split(b"abx"), (b"abx", b""))
        self.assertEqual(r.text("xy abcdef"), "xy [secret K]")

    def test_a_secrets_file_others_can_read_is_refused(self):
        tmp = tempfile.mkdtemp()
        try:
            path = os.path.join(tmp, "secrets.env")
            with open(path, "w") as f:
                f.write("RBT_API_TOKEN=x\nRBT_API_ENDPOINT=y\n")
            os.chmod(path, 0o644)
            proc = subprocess.run([sys.executable, "-I", BRIDGE, "--family-dir", os.path.join(FAMILIES, "needs_secrets"),
                                   "--method", "describe", "--task", "main", "--secrets", path], stdout=subprocess.PIPE)
            report = json.loads(proc.stdout)
            self.assertEqual(report["error"]["kind"], "secrets")
            self.assertIn("mode 0644", report["error"]["message"])
        finally:
            shutil.rmtree(tmp)

    def test_a_malformed_secrets_line_is_refused_without_echoing_it(self):
        with self.assertRaises(bridge.BridgeError) as cm:
            bridge.parse_secrets("RBT_API_TOKEN=fine\nsk-live-12345\n", "secrets.env")
        self.assertIn("secrets.env line 2 is not NAME=VALUE", cm.exception.message)
        self.assertNotIn("sk-live", cm.exception.message)

    def test_aggregate_scores_gets_nan_back_as_nan(self):
        log = [{"score": 1.0, "message": {}, "details": {}}, {"score": {"non_finite": "nan"}, "message": {}, "details": {}},
               {"score": 3.0, "message": {}, "details": {}}]
        report, _, _ = run_bridge("broken_scorer", "aggregate_scores", "nan", input_text=json.dumps(log))
        self.assertEqual(report["value"], 3.0)
        report, _, _ = run_bridge("broken_scorer", "aggregate_scores", "nan",
                                  input_text=json.dumps([{"score": {"non_finite": "nan"}, "message": {}, "details": {}}]))
        self.assertEqual(report["value"], {"non_finite": "nan"})


class RunnerJobs(unittest.TestCase):
    """machine.py as the runner's scoring command for end scoring and the aggregate: its input comes from the
    runner's job folder, and its result is ours (a finite number, or no score with the reason)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rbt-machine-")
        self.saved = machine.STATE_DIR
        machine.set_state_dir(os.path.join(self.tmp, "state"))
        os.makedirs(os.path.join(machine.STATE_DIR, "details"))

    def tearDown(self):
        machine.set_state_dir(self.saved)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def job_dir(self, name, files):
        path = os.path.join(self.tmp, "jobs", name)
        os.makedirs(os.path.join(path, "result"))
        for rel, text in files.items():
            with open(os.path.join(path, rel), "w") as f:
                f.write(text)
        return path

    def test_the_submission_is_read_from_the_job_folder_and_scored_by_the_family(self):
        job = self.job_dir("j1", {"submission.txt": "49"})
        staged = machine.runner_input("score", job)
        try:
            with open(staged) as f:
                report, _, _ = run_bridge("end_answer", "score", "sum", input_text=f.read())
        finally:
            shutil.rmtree(os.path.dirname(staged))
        self.assertEqual(entries.end_entry(report)["score"], 1.0)
        os.symlink("/etc/hostname", os.path.join(self.job_dir("j2", {}), "submission.txt"))
        with self.assertRaises(machine.Refused):
            machine.runner_input("score", os.path.join(self.tmp, "jobs", "j2"))

    def test_metrs_log_is_what_intermediate_score_returned_for_each_counted_run(self):
        for job, value in (("ja", {"score": 4.0, "message": {"m": 1}, "details": {"secret": "x"}}),
                           ("jb", {"score": {"non_finite": "nan"}, "message": {}, "details": {}})):
            with open(os.path.join(machine.STATE_DIR, "details", job + ".json"), "w") as f:
                json.dump({"report": {"ok": True, "value": value}}, f)
        with open(os.path.join(machine.STATE_DIR, "details", "jc.json"), "w") as f:
            json.dump({"report": {"ok": False, "error": {"kind": "timeout"}}}, f)
        log = machine.metr_score_log([{"job_id": "ja", "score": 4.0, "message": ""},
                                      {"job_id": "jb", "score": None, "message": "No score"},
                                      {"job_id": "jc", "score": None, "message": "timed out"},
                                      {"job_id": "../../etc/x", "score": 2.0, "message": "kept as ours"}])
        self.assertEqual([e["score"] for e in log], [4.0, {"non_finite": "nan"}, {"non_finite": "nan"}, 2.0])
        self.assertEqual(log[0]["details"], {"secret": "x"})
        report, _, _ = run_bridge("protected_counter", "aggregate_scores", "main", input_text=json.dumps(log))
        self.assertEqual(machine.aggregate_entry(report)["score"], 2.0)

    def test_an_aggregate_that_is_nan_or_fails_is_no_score_never_0(self):
        nan = {"ok": True, "value": {"non_finite": "nan"}}
        self.assertIsNone(machine.aggregate_entry(nan)["score"])
        self.assertIn("nan", machine.aggregate_entry(nan)["message"])
        self.assertIsNone(machine.aggregate_entry({"ok": True, "value": None})["score"])
        self.assertIsNone(machine.aggregate_entry({"ok": False, "error": {"message": "boom"}})["score"])
        self.assertEqual(machine.aggregate_entry({"ok": True, "value": 0})["score"], 0.0)

    def test_the_result_file_must_be_where_the_runner_puts_a_jobs_result(self):
        class A(object):
            result_file = os.path.join(self.tmp, "jobs", "aggregate", "result", "result.json")
            job_id = "aggregate"
        self.assertEqual(machine.runner_target(A())[1], "aggregate")
        A.result_file = os.path.join(self.tmp, "elsewhere.json")
        with self.assertRaises(machine.Refused):
            machine.runner_target(A())


class MachineParts(unittest.TestCase):
    def test_the_family_python_must_be_3_11_or_later(self):
        python, version = machine.find_family_python(sys.executable)
        self.assertGreaterEqual(version, (3, 11))
        with self.assertRaises(machine.Refused) as cm:
            machine.find_family_python("/nonexistent/python3.99")
        self.assertIn("does not run", str(cm.exception))

    def test_copy_replaces_the_family_and_removes_only_its_own_old_files(self):
        tmp = tempfile.mkdtemp()
        try:
            src = os.path.join(tmp, "fam")
            dest = os.path.join(tmp, "root")
            os.makedirs(os.path.join(src, "assets"))
            os.makedirs(dest)
            with open(os.path.join(dest, ".bashrc"), "w") as f:
                f.write("root's own file\n")
            for name in ("fam.py", "assets/score.py", "assets/old.txt"):
                with open(os.path.join(src, name), "w") as f:
                    f.write(name)
            first = machine.copy_family(src, dest, None)
            self.assertIn("assets/old.txt", first)
            self.assertEqual(os.stat(os.path.join(dest, "fam.py")).st_mode & 0o777, 0o600)
            self.assertEqual(os.stat(os.path.join(dest, "assets")).st_mode & 0o777, 0o700)
            h1 = machine.tree_hash(src)
            os.remove(os.path.join(src, "assets/old.txt"))
            self.assertNotEqual(machine.tree_hash(src), h1)
            machine.copy_family(src, dest, first)
            self.assertFalse(os.path.exists(os.path.join(dest, "assets/old.txt")))
            self.assertTrue(os.path.exists(os.path.join(dest, ".bashrc")))
        finally:
            shutil.rmtree(tmp)

    def test_requirements_that_no_reachable_index_has_are_a_clear_error(self):
        old = os.environ.get("PIP_INDEX_URL")
        os.environ["PIP_INDEX_URL"] = "http://127.0.0.1:9/simple"
        try:
            with self.assertRaises(machine.Refused) as cm:
                machine.ensure_requirements(sys.executable, os.path.join(FAMILIES, "needs_requirements"), None)
        finally:
            if old is None:
                del os.environ["PIP_INDEX_URL"]
            else:
                os.environ["PIP_INDEX_URL"] = old
        text = str(cm.exception)
        if "pip is not installed" not in text:
            self.assertIn("the package index http://127.0.0.1:9/simple cannot be reached", text)
            self.assertIn("rebench-test-package-no-index-has", text)


if __name__ == "__main__":
    unittest.main()

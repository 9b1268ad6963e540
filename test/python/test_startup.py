"""What a one-shot command loads before it answers: the commands run most often (status, serve) read their
command line without argparse, import only their own modules, check the manifest once per change, and the
built runner.pyz reads each module once. The timings are the bench's (npm run bench); these tests check the
causes."""

import json
import os
import subprocess
import sys
import tempfile

from support import REPO, RunnerTest
from runner import manifest as manifest_module
from runner.arguments import build_parser
from runner.cli import QUICK_COMMANDS, quick_args

BOOT = "import sys;sys.path.insert(0,sys.argv.pop(1));from runner.cli import run_and_exit;run_and_exit(sys.argv[1:])"
# Imports the package from the given place, runs one command and prints what it imported (as JSON on stderr).
PROBE = ("import sys,json,io,contextlib;sys.path.insert(0,sys.argv.pop(1));before=set(sys.modules);"
         "from runner.cli import main;out=io.StringIO()\n"
         "with contextlib.redirect_stdout(out): code=main(sys.argv[1:])\n"
         "sys.stderr.write(json.dumps({'code':code,'out':out.getvalue(),'modules':sorted(set(sys.modules)-before),"
         "'loaders':sorted(set(type(m.__spec__.loader).__name__ for n,m in sys.modules.items() "
         "if n.startswith('runner.')))}))")


def build_pyz(folder):
    path = os.path.join(folder, "runner.pyz")
    subprocess.run([sys.executable, os.path.join(REPO, "scripts", "build-runner.py"), "--out", path], check=True,
                   stdout=subprocess.DEVNULL)
    return path


def probe(where, argv):
    r = subprocess.run([sys.executable, "-I", "-S", "-c", PROBE, where] + argv, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True)
    return json.loads(r.stderr.strip().splitlines()[-1])


class QuickCommandLine(RunnerTest):
    def test_the_quick_forms_read_as_argparse_reads_them(self):
        for argv in (["status"], ["--json", "status"], ["status", "--json"], ["--home", "/h", "status", "--json"],
                     ["--json", "--home", "/h", "serve"], ["--home", "/h", "records"], ["verify", "--json"]):
            quick = quick_args(argv)
            full = build_parser().parse_args(argv)
            self.assertIsNotNone(quick, argv)
            self.assertEqual((quick.command, quick.home, quick.json or quick.json_global),
                             (full.command, full.home, bool(full.json or full.json_global)), argv)

    def test_anything_else_is_left_to_argparse(self):
        for argv in ([], ["--version"], ["-h"], ["status", "-h"], ["status", "--help"], ["log", "--from", "3"],
                     ["status", "extra"], ["status", "--home", "/h"], ["--home=/h", "status"], ["--home"],
                     ["--home", "--json", "status"], ["--js", "status"], ["status", "--json", "--json"],
                     ["score", "--follow"], ["status", "status"]):
            self.assertIsNone(quick_args(argv), argv)

    def test_every_quick_command_takes_no_option_but_json(self):
        parser = build_parser()
        for command in QUICK_COMMANDS:
            args = vars(parser.parse_args([command]))
            self.assertEqual(sorted(k for k in args if k not in ("home", "json_global", "version", "command")),
                             ["json"], command)


class WhatStatusLoads(RunnerTest):
    def setUp(self):
        RunnerTest.setUp(self)
        self.h = self.home("noop-scorer") if os.path.isdir(os.path.join(REPO, "test", "fixtures", "environments",
                                                                         "noop-scorer")) else self.home()

    def check_status(self, where):
        self.assertEqual(self.h.call("status")[0], 0)  # the first status after setup checks the manifest
        got = probe(where, ["--home", self.h.home, "status", "--json"])
        self.assertEqual(got["code"], 0, got["out"])
        self.assertEqual(json.loads(got["out"])["state"], "not_started")
        for module in ("argparse", "runner.arguments", "runner.commands", "runner.participant", "runner.snapshots",
                       "runner.scoring", "runner.contract", "runner.envtree"):
            self.assertNotIn(module, got["modules"])
        return got

    def test_setup_again_uses_the_recorded_check_of_the_manifest(self):
        # The extension runs setup on every connect: the manifest, unchanged, is not checked again.
        self.assertEqual(self.h.call("status")[0], 0)
        got = probe(os.path.join(REPO, "environments"),
                    ["--home", self.h.home, "setup", "--environment", self.h.env_id, "--solution-dir", self.h.solution,
                     "--environments-dir", self.h.environments, "--json"])
        self.assertEqual(got["code"], 0, got["out"])
        self.assertNotIn("runner.contract", got["modules"])

    def test_status_from_the_package_folder(self):
        self.check_status(os.path.join(REPO, "environments"))

    def test_status_from_the_built_runner_reads_each_module_once(self):
        folder = tempfile.mkdtemp(prefix="rebench-pyz-")
        try:
            got = self.check_status(build_pyz(folder))
            # The package's own loader (runner/__init__.py), not zipimport's, which reads every module twice.
            self.assertEqual(got["loaders"], ["type"])
            # Commands that take options still go through argparse, from the archive too.
            log = probe(os.path.join(folder, "runner.pyz"), ["--home", self.h.home, "log", "--from", "0", "--json"])
            self.assertEqual((log["code"], json.loads(log["out"])), (0, {"entries": []}))
            self.assertIn("argparse", log["modules"])
        finally:
            subprocess.run(["rm", "-rf", folder])


class ManifestCheckedOnce(RunnerTest):
    def test_a_changed_manifest_is_checked_again(self):
        h = self.home()
        self.assertEqual(h.call("status")[0], 0)
        record = h.state(manifest_module.CHECKED_FILE)
        self.assertTrue(os.path.isfile(record))
        path = os.path.join(h.environments, h.env_id, "manifest.json")
        with open(path) as f:
            m = json.load(f)
        m["scoring"]["direction"] = "sideways"
        with open(path, "w") as f:
            json.dump(m, f)
        manifest_module._checked.clear()  # as a new process
        manifest_module._recorded.clear()
        code, objects = h.call("status")
        self.assertEqual(code, 5)
        self.assertIn("scoring.direction", objects[-1]["error"]["message"])

    def test_a_damaged_or_foreign_record_is_ignored(self):
        h = self.home()
        self.assertEqual(h.call("status")[0], 0)
        record = h.state(manifest_module.CHECKED_FILE)
        path = os.path.join(h.environments, h.env_id, "manifest.json")
        with open(path, "rb") as f:
            data = f.read()
        key = manifest_module._check_key(data)
        for text in (b"{not json", json.dumps({"key": key, "manifest": 3}).encode(),
                     json.dumps({"key": "another runner", "manifest": json.dumps({"id": "forged"})}).encode()):
            with open(record, "wb") as f:
                f.write(text)
            manifest_module._checked.clear()
            manifest_module._recorded.clear()
            code, objects = h.call("status")
            self.assertEqual(code, 0, objects)
            self.assertEqual(objects[-1]["environment"]["id"], h.env_id)

    def test_the_recorded_manifest_is_the_checked_one(self):
        h = self.home()
        path = os.path.join(h.environments, h.env_id, "manifest.json")
        with open(path, "rb") as f:
            data = f.read()
        fresh = manifest_module.validate_manifest(json.loads(data.decode("utf-8")))
        manifest_module._checked.clear()
        manifest_module._recorded.clear()
        self.assertEqual(manifest_module.checked_manifest(path, data, h.state(manifest_module.CHECKED_FILE)), fresh)
        manifest_module._checked.clear()
        manifest_module._recorded.clear()
        self.assertEqual(manifest_module.checked_manifest(path, data, h.state(manifest_module.CHECKED_FILE)), fresh)

// The GPU environments (reservoir-scan, compute-forecast, training-speed) on a machine without a GPU: their
// manifests and calibration records, the reservoir checker and starting solution on CPU tensors, the answer
// parsing and the training recipe of compute-forecast on the CPU, training-speed's data, checks, clean copy,
// fresh seeds and adversarial suite at its tiny CPU size, each scorer through the real runner (which must say
// "no score" with the reason when there is no GPU or the answer breaks a rule), and that the reference
// solutions stay out of the environment folders and the VSIX. Needs a python3 with PyTorch (Debian's
// python3-torch is installed by scripts/install-test-deps.sh).
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalTarget } from '../../src/core/localTarget';
import { parseManifest } from '../../src/core/manifest';
import { runPreflight } from '../../src/core/preflight';
import { statusSchema } from '../../src/core/runnerProtocol';
import { REPO_ROOT, RUNNER_PATH } from '../support/runner';
import { loginUser } from '../support/sshd';

const isRootUser = () => typeof process.getuid === 'function' && process.getuid() === 0;

const ENVIRONMENTS = path.join(REPO_ROOT, 'environments');
const REFERENCE = path.join(REPO_ROOT, 'reference');
const GPU_ENVIRONMENTS = ['reservoir-scan', 'compute-forecast', 'training-speed'];
/** The GPU environments whose scores were measured on an H100 (the others say they are not calibrated yet). */
const CALIBRATED = ['reservoir-scan', 'compute-forecast'];

/** A python3 that can import torch: REBENCH_TEST_TORCH_PYTHON, python3, or Debian's /usr/bin/python3. */
function torchPython(): string {
  const candidates = [process.env.REBENCH_TEST_TORCH_PYTHON, 'python3', '/usr/bin/python3'].filter((c): c is string => !!c);
  for (const candidate of candidates) {
    const r = spawnSync(candidate, ['-c', 'import sys, torch; print(sys.executable)'], { encoding: 'utf8' });
    if (r.status === 0) return r.stdout.trim();
  }
  throw new Error(
    `No python3 with PyTorch found (tried ${candidates.join(', ')}). Install Debian's python3-torch ` +
      '(npm run test:deps does) or set REBENCH_TEST_TORCH_PYTHON to an interpreter that has torch.',
  );
}

const python = torchPython();

/** Runs a Python snippet in a folder (importable modules from there) and returns its stdout. */
function py(cwd: string, code: string, timeoutMs = 120_000): string {
  const r = spawnSync(python, ['-c', code], {
    cwd,
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, PYTHONPATH: cwd, PYTHONDONTWRITEBYTECODE: '1' },
  });
  assert.equal(r.status, 0, `python failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Runs the runner with the torch python in a scratch home; returns the parsed JSON of one command. */
function runner(home: string, args: string[], timeoutMs = 180_000): { code: number | null; json: any; stdout: string } {
  const r = spawnSync(python, [RUNNER_PATH, '--home', home, '--json', ...args], {
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let json: unknown;
  try {
    json = JSON.parse(last);
  } catch {
    json = undefined;
  }
  return { code: r.status, json, stdout: r.stdout + r.stderr };
}

/** Sets up and starts a session of an environment in a scratch runner home, with the solution given. */
function startSession(environment: string, solutionFiles: Record<string, string> = {}): { home: string; solution: string } {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), `rebench-${environment}-`));
  const solution = path.join(home, 'solution');
  const setup = runner(home, ['setup', '--environment', environment, '--environments-dir', ENVIRONMENTS, '--solution-dir', solution]);
  assert.equal(setup.code, 0, setup.stdout);
  for (const [name, text] of Object.entries(solutionFiles)) fs.writeFileSync(path.join(solution, name), text);
  assert.equal(runner(home, ['start']).code, 0);
  return { home, solution };
}

function scoreOnce(home: string): { score: number | null; message: string } {
  const r = spawnSync(python, [RUNNER_PATH, '--home', home, '--json', 'score', '--follow'], {
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  const entry = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .find((e) => e.type === 'entry');
  assert.ok(entry, `no entry in the score stream:\n${r.stdout}\n${r.stderr}`);
  return entry.entry;
}

function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.join(d.parentPath, d.name));
}

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('GPU environments, checked without a GPU', function () {
  this.timeout(300_000);

  describe('manifests and calibration records', () => {
    for (const id of CALIBRATED) {
      it(`${id}: the manifest is valid for the extension and the runner, and records its H100 calibration`, () => {
        const text = fs.readFileSync(path.join(ENVIRONMENTS, id, 'manifest.json'), 'utf8');
        const parsed = parseManifest(text, `${id}/manifest.json`);
        assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
        const m = parsed.value;
        assert.equal(m.id, id);
        assert.equal(m.hardware.gpus, 1);
        const c = m.scoring.calibration;
        assert.ok(c && !('status' in c), 'calibration record');
        assert.match(c.gpu, /H100/);
        assert.ok(c.software.torch, 'torch version recorded');
        // The manifest's scores are the calibrated medians, and the reference is better than the start.
        assert.equal(m.scoring.starting_score, c.starting.median);
        assert.equal(m.scoring.reference_score, c.reference.median);
        const better = m.scoring.direction === 'lower' ? c.reference.median < c.starting.median : c.reference.median > c.starting.median;
        assert.ok(better, 'the reference scores better than the starting solution');
        // The runner accepts it as well (same rules, in Python).
        const out = py(
          ENVIRONMENTS,
          `import json; from runner.manifest import validate_manifest; m = validate_manifest(json.load(open("${id}/manifest.json"))); print(json.dumps(m["scoring"]["calibration"]))`,
        );
        assert.deepEqual(JSON.parse(out), JSON.parse(text).scoring.calibration);
      });
    }

    it('training-speed: the manifest says its scores are estimates, names the command that measures them, and the runner passes that on', () => {
      const text = fs.readFileSync(path.join(ENVIRONMENTS, 'training-speed', 'manifest.json'), 'utf8');
      const parsed = parseManifest(text, 'training-speed/manifest.json');
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
      const m = parsed.value;
      assert.equal(m.hardware.gpus, 1);
      assert.equal(m.scoring.direction, 'lower');
      assert.equal(m.scoring.aggregation, 'best');
      const c = m.scoring.calibration;
      assert.ok(c && 'status' in c, 'a "not calibrated" record');
      assert.equal(c.status, 'not calibrated');
      // Single H100 runs, not a calibration: the estimate says where the figures come from and why it is not one.
      assert.match(c.estimate, /measured once each on an NVIDIA H100/);
      assert.match(c.estimate, /not calibrated/);
      assert.ok(m.scoring.reference_score < m.scoring.starting_score, 'the reference is ahead');
      // Every file the command names exists, and each call of the command runs the calibration script.
      for (const part of c.command.split(/;|&&/))
        assert.match(part.trim(), /^python3 reference\/training-speed\/calibrate\.py (time (start|reference) --runs \d|summary)/);
      assert.ok(fs.existsSync(path.join(REFERENCE, 'training-speed', 'calibrate.py')));
      const out = py(
        ENVIRONMENTS,
        [
          'import json',
          'from runner.manifest import validate_manifest',
          'from runner.status import environment_summary',
          'for name in ("training-speed", "reservoir-scan"):',
          '    m = validate_manifest(json.load(open(name + "/manifest.json")))',
          '    print(json.dumps(environment_summary(m, None)["calibration_pending"]))',
        ].join('\n'),
      );
      const [pending, calibrated] = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(pending, c.estimate);
      assert.equal(calibrated, null);
    });

    it("the pre-flight warns that training-speed's scores are estimates, and says nothing of calibration for reservoir-scan", async () => {
      for (const [id, pending] of [
        ['training-speed', true],
        ['reservoir-scan', false],
      ] as const) {
        const home = fs.mkdtempSync(path.join(os.tmpdir(), `rebench-${id}-`));
        const setup = runner(home, ['setup', '--environment', id, '--environments-dir', ENVIRONMENTS, '--solution-dir', path.join(home, 'solution')]);
        assert.equal(setup.code, 0, setup.stdout);
        const status = statusSchema.parse(runner(home, ['status']).json);
        const checks = await runPreflight(new LocalTarget(), status, 0, 'local');
        const calibration = checks.find((c) => c.name === 'Calibration');
        if (pending) {
          assert.equal(calibration?.result, 'warn');
          assert.match(
            calibration?.detail ?? '',
            /not yet calibrated on its GPU: the starting and reference scores are estimates \(measured once each on an NVIDIA H100/,
          );
        } else {
          assert.equal(calibration, undefined);
        }
        fs.rmSync(home, { recursive: true, force: true });
      }
    });

    it('reservoir-scan: the timing noise over 10 runs on the H100 is recorded under 1%', () => {
      const m = JSON.parse(fs.readFileSync(path.join(ENVIRONMENTS, 'reservoir-scan', 'manifest.json'), 'utf8'));
      for (const side of ['starting', 'reference']) {
        const r = m.scoring.calibration[side];
        assert.ok(r.runs >= 10, `${side}: ${r.runs} runs`);
        assert.ok(r.time_cv_percent <= 1, `${side}: CV ${r.time_cv_percent}%`);
      }
      assert.equal(m.scoring.aggregation, 'best');
    });

    it('the runner rejects a calibration record with a bad field, naming it', () => {
      const out = py(
        ENVIRONMENTS,
        [
          'import json',
          'from runner.manifest import ManifestProblem, validate_manifest',
          'm = json.load(open("reservoir-scan/manifest.json"))',
          'm["scoring"]["calibration"]["reference"]["runs"] = 0',
          'try:',
          '    validate_manifest(m)',
          'except ManifestProblem as e:',
          '    print(e)',
        ].join('\n'),
      );
      assert.match(out, /scoring\.calibration\.reference\.runs: expected a whole number from 1 to 10000, got 0/);
    });
  });

  describe('reservoir-scan on CPU tensors', () => {
    const env = path.join(ENVIRONMENTS, 'reservoir-scan');

    it('the trusted implementation and the starting solution equal the definition, edge cases included', () => {
      const out = py(
        env,
        `
import random, sys, torch
import checker
sys.path.insert(0, "solution")
import solution
rng = random.Random(20261124)
K = checker.MAX_MAGNITUDE
checked = 0
for n in [0, 1, 2, 3, 4, 5, 17, 64, 127, 128, 129, 1000, 4097]:
    for capacity in [1, 2, 7, 1000, K]:
        for spread in [3, 2000, K]:
            xs = [rng.randint(-spread, spread) for _ in range(n)]
            want = checker.levels_by_definition(xs, capacity)
            x = torch.tensor(xs, dtype=torch.int32)
            assert checker.levels_trusted(x, capacity).tolist() == want, (n, capacity, spread)
            got = solution.reservoir_levels(x, capacity)
            assert got.dtype == torch.int32 and got.tolist() == want, (n, capacity, spread)
            checked += 1
g = torch.Generator().manual_seed(1)
for label, length, kind, capacity in checker.correctness_cases():
    x = checker.make_inflow(kind, min(length, 3000), g, "cpu")
    assert x.dtype == torch.int32 and x.abs().max().item() <= K if len(x) else True
    assert checker.levels_trusted(x, capacity).tolist() == checker.levels_by_definition(x.tolist(), capacity), label
print(checked)
`,
      );
      assert.equal(Number(out.trim()), 13 * 5 * 3);
    });

    it('composing steps is associative, and composing all steps gives the levels', () => {
      py(
        env,
        `
import random, checker
rng = random.Random(7)
for _ in range(3000):
    cap = rng.choice([1, 5, 100])
    steps = [(rng.randint(-150, 150), 0, cap) for _ in range(3)]
    a, b, c = steps
    assert checker.compose(checker.compose(a, b), c) == checker.compose(a, checker.compose(b, c))
    total = checker.compose(checker.compose(a, b), c)
    level = min(total[2], max(total[1], 0 + total[0]))
    assert level == checker.levels_by_definition([s[0] for s in steps], cap)[-1]
`,
      );
    });

    it('names what is wrong in a result: type, dtype, shape, and the first wrong level with its inflows', () => {
      const out = py(
        env,
        `
import torch, checker
x = torch.tensor([5, -2, 9, 3], dtype=torch.int32)
want = checker.levels_trusted(x, 10)
print(checker.describe_mismatch([5, 3, 10, 10], want, x, 10))
print(checker.describe_mismatch(want.long(), want, x, 10))
print(checker.describe_mismatch(want[:3], want, x, 10))
bad = want.clone(); bad[2] = 11
print(checker.describe_mismatch(bad, want, x, 10))
print(checker.describe_mismatch(want.clone(), want, x, 10))
`,
      ).split('\n');
      assert.equal(out[0], 'reservoir_levels returned list, not a torch.Tensor.');
      assert.equal(out[1], 'the result has dtype torch.int64; it must be torch.int32.');
      assert.equal(out[2], 'the result has shape (3,); it must be (4,), like the input.');
      assert.equal(out[3], '1 of 4 levels are wrong; the first is at index 2: expected 10, got 11 (capacity 10, inflows x[0:3] = [5, -2, 9]).');
      assert.equal(out[4], 'None');
    });

    it('through the runner on a machine without a GPU: no score, and the message says why', () => {
      const { home } = startSession('reservoir-scan');
      const entry = scoreOnce(home);
      assert.equal(entry.score, null);
      assert.match(entry.message, /No CUDA GPU is visible to PyTorch/);
      // Its hidden test score (scoring.visible "validation") is kept apart, and is no score either.
      assert.deepEqual(Object.keys((entry as { hidden?: object }).hidden ?? {}), ['sha256']);
      const hidden = runner(home, ['hidden']);
      assert.equal(hidden.code, 0, hidden.stdout);
      assert.equal(hidden.json.hidden[0].score, null);
      assert.match(hidden.json.hidden[0].message, /No hidden score: the visible run gave none/);
      fs.rmSync(home, { recursive: true, force: true });
    });

    it('its hidden score times the held-out inputs of protected/held_out.json with the same timing (the GPU run itself is not exercised here)', () => {
      const out = py(
        path.join(ENVIRONMENTS, 'reservoir-scan'),
        [
          'import inspect, json, score',
          'p = inspect.signature(score.time_solution).parameters',
          'print(json.dumps({"held_out": score.held_out(), "spread": p["spread"].default, "capacity": p["capacity"].default}))',
        ].join('\n'),
      );
      const r = JSON.parse(out.trim().split('\n').pop()!);
      assert.deepEqual(r.held_out, [1048576, 50000000]);
      assert.deepEqual([r.spread, r.capacity], [65536, 1000000], 'the visible timing keeps its inputs');
    });
  });

  describe("reservoir-scan's process split on CPU tensors", () => {
    const env = path.join(ENVIRONMENTS, 'reservoir-scan');
    // As root the parent's protections (non-dumpable, other users' processes) mean little: run as the login user.
    const asUser = isRootUser() ? loginUser().user : undefined;
    let scratch = '';
    before(() => {
      scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-split-'));
      fs.cpSync(env, path.join(scratch, 'env'), { recursive: true });
      if (asUser) execFileSync('chown', ['-R', asUser, scratch]);
    });
    after(() => fs.rmSync(scratch, { recursive: true, force: true }));

    /** Runs score.py --cpu-check on a solution.py (as the login user when root); returns the result and the output. */
    function cpuCheck(name: string, code: string): { score: number | null; message: string; output: string } {
      const dir = path.join(scratch, name);
      fs.mkdirSync(path.join(dir, 'solution'), { recursive: true });
      fs.mkdirSync(path.join(dir, 'result'));
      fs.writeFileSync(path.join(dir, 'solution', 'solution.py'), code);
      if (asUser) execFileSync('chown', ['-R', asUser, dir]);
      const env = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        REBENCH_SOLUTION_DIR: path.join(dir, 'solution'),
        REBENCH_RESULT_FILE: path.join(dir, 'result', 'result.json'),
        PYTHONDONTWRITEBYTECODE: '1',
        REBENCH_SANDBOX_CONFIG: path.join(scratch, 'no-sandbox.json'),
      };
      const argv = [python, 'score.py', '--cpu-check'];
      const r = asUser
        ? spawnSync('runuser', ['-u', asUser, '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv], {
            cwd: path.join(scratch, 'env'),
            encoding: 'utf8',
            timeout: 120_000,
          })
        : spawnSync(argv[0]!, argv.slice(1), { cwd: path.join(scratch, 'env'), env, encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
      const result = JSON.parse(fs.readFileSync(path.join(dir, 'result', 'result.json'), 'utf8')) as { score: number | null; message: string };
      return { ...result, output: r.stdout + r.stderr };
    }

    const starting = () => fs.readFileSync(path.join(env, 'solution', 'solution.py'), 'utf8');

    it('the recurrence check is exact: it passes the right levels and catches any one level changed', () => {
      const out = py(
        env,
        `
import random, torch, checker
rng = random.Random(3)
g = torch.Generator().manual_seed(4)
caught = 0
for kind, n, cap in [("uniform", 5000, 3000), ("extreme", 3000, checker.MAX_MAGNITUDE), ("small", 4000, 1), ("positive", 2000, 700)]:
    x = checker.make_inflow(kind, n, g, "cpu")
    want = checker.levels_trusted(x, cap)
    assert checker.recurrence_errors(want, x, cap) == 0, kind
    assert want.tolist() == checker.levels_by_definition(x.tolist(), cap), kind
    for _ in range(200):
        bad = want.clone()
        i = rng.randrange(n)
        bad[i] = rng.choice([bad[i].item() + 1, bad[i].item() - 1, -1, cap + 1, 2**31 - 1, -2**31, rng.randrange(-2**31, 2**31)])
        if not torch.equal(bad, want):
            assert checker.recurrence_errors(bad, x, cap) >= 1, (kind, i)
            caught += 1
assert checker.recurrence_errors(torch.zeros(0, dtype=torch.int32), torch.zeros(0, dtype=torch.int32), 5) == 0
print(caught)
`,
      );
      assert.ok(Number(out.trim()) >= 790, out);
    });

    it('the starting solution passes the 13 checks in a process of its own', () => {
      const r = cpuCheck('starting', starting());
      assert.equal(r.score, null, 'a CPU check never scores');
      assert.equal(r.message, 'CPU check: correct on 13 inputs of up to 5000 elements (nothing timed, so no score).');
      assert.match(r.output, new RegExp(`Your solution runs in a process of its own, as the user ${asUser ?? os.userInfo().username}\\.`));
    });

    const cheats: [string, string, RegExp][] = [
      [
        'replaces torch.equal, tensor comparison, the clock and the checker in its own process, and returns zeros',
        `import sys, time, torch
torch.equal = lambda a, b: True
torch.Tensor.__ne__ = lambda self, other: torch.zeros_like(self, dtype=torch.bool)
time.perf_counter = lambda: 0.0
for m in list(sys.modules.values()):
    if hasattr(m, "describe_mismatch"):
        m.describe_mismatch = lambda *a: None
def reservoir_levels(inflow, capacity):
    return torch.zeros_like(inflow)
`,
        /^Wrong result on [^:]+: \d+ of \d+ levels are wrong; the first is at index \d+: expected [1-9]\d*, got 0 /,
      ],
      [
        'writes the result file it finds',
        `import glob, json, os
SOLUTION = ${JSON.stringify(starting())}
exec(SOLUTION)
here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(here, "result", "result.json"), "w") as f:
    json.dump({"score": -9.0, "message": "mine"}, f)
`,
        /^No score: something other than the scorer wrote the result file during the run/,
      ],
      [
        'leaves a daemon in a session of its own that rewrites the result file after the scorer',
        `import json, os, time
SOLUTION = ${JSON.stringify(starting())}
exec(SOLUTION)
here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open(os.path.join(here, "daemon.pid"), "w").write(str(os.getpid()))
        end = time.time() + 60
        while time.time() < end:
            time.sleep(0.05)
            if os.path.exists(os.path.join(here, "result", "result.json")):
                with open(os.path.join(here, "result", "result.json"), "w") as f:
                    json.dump({"score": -9.0, "message": "the daemon's"}, f)
        os._exit(0)
    os._exit(0)
`,
        /^CPU check: correct on 13 inputs/,
      ],
      [
        'returns int64 levels',
        `import torch\nSOLUTION = ${JSON.stringify(starting())}\nexec(SOLUTION)\n_f = reservoir_levels\ndef reservoir_levels(x, c):\n    return _f(x, c).long()\n`,
        /the result has dtype torch\.int64; it must be torch\.int32\./,
      ],
      [
        'ends its own process in the middle of a call',
        `import os\ndef reservoir_levels(inflow, capacity):\n    os._exit(3)\n`,
        /The solution's process ended while running it on empty input \(exit status 3\)/,
      ],
      [
        "writes into the scorer's protocol pipe",
        `import os\nSOLUTION = ${JSON.stringify(starting())}\nexec(SOLUTION)\n_f = reservoir_levels\ndef reservoir_levels(x, c):\n    out = _f(x, c)\n    for fd in range(3, 12):\n        try:\n            os.write(fd, b"\\xff\\xff\\xff\\xff garbage")\n        except OSError:\n            pass\n    return out\n`,
        /The solution's process broke the scorer's protocol while running it on empty input/,
      ],
      [
        "reads the scorer's environment and memory map through /proc",
        `import os\nSOLUTION = ${JSON.stringify(starting())}\nexec(SOLUTION)\nfor what in ("environ", "maps"):\n    try:\n        open("/proc/%d/%s" % (os.getppid(), what), "rb").read()\n        print("PROBE %s: read" % what)\n    except OSError as e:\n        print("PROBE %s: %s" % (what, type(e).__name__))\n`,
        /^CPU check: correct on 13 inputs/,
      ],
    ];
    for (const [what, code, expected] of cheats) {
      it(`a solution that ${what}: ${expected.source.startsWith('^CPU') ? 'gains nothing' : 'no score, and the message says why'}`, () => {
        const name = what.replace(/[^a-z]+/g, '-').slice(0, 40);
        const r = cpuCheck(name, code);
        assert.equal(r.score, null);
        assert.match(r.message, expected, r.output.slice(-3000));
        if (what.startsWith('leaves a daemon')) {
          const pid = Number(fs.readFileSync(path.join(scratch, name, 'daemon.pid'), 'utf8'));
          assert.ok(pid > 0);
          assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the daemon outlived the scorer');
          const again = JSON.parse(fs.readFileSync(path.join(scratch, name, 'result', 'result.json'), 'utf8')) as { message: string };
          assert.match(again.message, /^CPU check/, "the result file is the scorer's");
        }
        if (what.startsWith('reads the scorer')) {
          // Non-dumpable: a process of the same user cannot read the scorer's /proc entries.
          assert.match(r.output, /PROBE environ: PermissionError/);
          assert.match(r.output, /PROBE maps: PermissionError/);
        }
      });
    }
  });

  describe('compute-forecast without a GPU', () => {
    const env = path.join(ENVIRONMENTS, 'compute-forecast');

    it("the solution folder's lm.py is the scorer's recipe, byte for byte", () => {
      assert.equal(sha(path.join(env, 'solution', 'lm.py')), sha(path.join(env, 'lm.py')));
    });

    it('accepts the starting and the reference answers, each within the final budget', () => {
      const out = py(
        env,
        `
import json, answer, lm
for path in ["solution/answer.json", "${path.join(REFERENCE, 'compute-forecast', 'answer.json')}"]:
    a = answer.parse_answer(open(path).read())
    print(json.dumps([a["d_model"], a["n_layers"], lm.flops(a["d_model"], a["n_layers"], a["tokens"]) <= lm.BUDGET_FLOPS]))
`,
      )
        .trim()
        .split('\n');
      assert.deepEqual(
        out.map((l) => JSON.parse(l)),
        [
          [512, 8, true],
          [192, 2, true],
        ],
      );
    });

    it('rejects each kind of bad answer with a sentence that says what to change', () => {
      const cases: [string, RegExp][] = [
        ['not json', /answer\.json is not valid JSON/],
        ['[1, 2]', /must hold one JSON object/],
        ['{"d_model": 256, "n_layers": 4, "tokens": 10000000}', /lacks predicted_loss/],
        ['{"d_model": 256, "n_layers": 4, "tokens": 10000000, "predicted_loss": 2, "lr": 1}', /unknown fields lr/],
        ['{"d_model": 200, "n_layers": 4, "tokens": 10000000, "predicted_loss": 2}', /d_model must be .* a multiple of 32; it is 200/],
        ['{"d_model": 256, "n_layers": 1, "tokens": 10000000, "predicted_loss": 2}', /n_layers must be a whole number from 2 to 16; it is 1/],
        ['{"d_model": 256, "n_layers": 4, "tokens": 1e7, "predicted_loss": 2}', /tokens must be a whole number/],
        ['{"d_model": 256, "n_layers": 4, "tokens": 1000, "predicted_loss": 2}', /at least 1638400 \(100 steps/],
        ['{"d_model": 1024, "n_layers": 16, "tokens": 100000000, "predicted_loss": 2}', /over the budget of 3e\+14\. At this size at most \d+ tokens fit/],
        ['{"d_model": 256, "n_layers": 4, "tokens": 10000000, "predicted_loss": NaN}', /predicted_loss must be a number between 0 and 10/],
        ['{"d_model": 256, "n_layers": 4, "tokens": 10000000, "predicted_loss": true}', /predicted_loss must be a number/],
      ];
      const script = `
import json, sys, answer
for text in json.loads(sys.stdin.read()):
    try:
        answer.parse_answer(text)
        print("accepted")
    except answer.BadAnswer as e:
        print(e)
`;
      const r = spawnSync(python, ['-c', script], {
        cwd: env,
        input: JSON.stringify(cases.map((c) => c[0])),
        encoding: 'utf8',
        env: { ...process.env, PYTHONPATH: env },
      });
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      cases.forEach(([, pattern], i) => assert.match(lines[i] ?? '', pattern, cases[i]![0]));
      assert.equal(py(env, 'import answer; print(answer.score(1.5, 1.7), answer.score(1.5, 1.5))').trim(), '1.7 1.5');
    });

    it('the training recipe runs on the CPU and counts what it spent', () => {
      const out = py(
        env,
        `
import json, math, lm
r = lm.train(32, 1, 3 * lm.BATCH_TOKENS, "cpu", log=lambda line: None)
print(json.dumps(r))
`,
      );
      const r = JSON.parse(out.trim().split('\n').pop()!);
      assert.equal(r.steps, 3);
      assert.equal(r.tokens, 3 * 256 * 64);
      assert.equal(r.flops, 6 * 12 * 32 * 32 * 3 * 256 * 64);
      assert.ok(r.loss > 1 && r.loss < 4, `loss ${r.loss}`);
    });

    it('the source is fixed: the same seed gives the same tokens, and its entropy rate is below uniform', () => {
      const out = py(
        env,
        `
import math, torch, lm
a = lm.Source("cpu").sample(8, torch.Generator().manual_seed(3))
b = lm.Source("cpu").sample(8, torch.Generator().manual_seed(3))
assert torch.equal(a, b) and a.min() >= 0 and a.max() < lm.VOCAB
print(lm.Source("cpu").entropy_rate() < math.log(lm.VOCAB) - 1)
`,
      );
      assert.equal(out.trim(), 'True');
    });

    it('experiment.py refuses a run over the experiment cap and tells how many tokens fit', () => {
      const sol = path.join(env, 'solution');
      const over = spawnSync(python, ['experiment.py', '--d-model', '256', '--n-layers', '4', '--tokens', '1e9'], { cwd: sol, encoding: 'utf8' });
      assert.equal(over.status, 2);
      assert.match(over.stderr, /one experiment may spend at most 3e\+13 \(at this size: [\d,]+ tokens\)/);
      const fit = spawnSync(python, ['experiment.py', '--d-model', '192', '--n-layers', '2', '--fit'], { cwd: sol, encoding: 'utf8' });
      assert.equal(fit.status, 0, fit.stderr);
      assert.match(fit.stdout, /allows 56,508,416 tokens/);
    });

    it('its seeds come from the scorer secret when the machine has one: stable, unlike the public ones, never printed', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-secret-'));
      const secret = (name: string, text: string) => {
        fs.writeFileSync(path.join(dir, name), text);
        return path.join(dir, name);
      };
      const a = secret('a', 'a'.repeat(64));
      const b = secret('b', 'b'.repeat(64));
      const short = secret('short', 'abc');
      const out = py(
        env,
        `
import json, os, score
def seeds(path):
    os.environ["REBENCH_SCORER_SECRET"] = path
    try:
        return list(score.seeds())
    except OSError as e:
        return str(e)
print(json.dumps([seeds("${a}"), seeds("${a}"), seeds("${b}"), seeds("${path.join(dir, 'missing')}"), seeds("${short}")]))
`,
      );
      const [first, again, other, none, tooShort] = JSON.parse(out) as [unknown[], unknown[], unknown[], unknown[], string];
      assert.deepEqual(first, again, 'the same secret gives the same seeds');
      assert.notDeepEqual(first.slice(0, 2), other.slice(0, 2));
      assert.notDeepEqual(first.slice(0, 2), [7, 424242]);
      assert.equal(first[2], "seeds derived from this machine's scorer secret");
      assert.deepEqual(none, [7, 424242, 'the public default seeds (this machine has no scorer secret)']);
      assert.match(tooShort, /too short \(3 bytes\)/);
      // Through the scorer: the training line names where the seeds come from, and no seed is printed.
      const { home, solution } = startSession('compute-forecast');
      fs.copyFileSync(path.join(REFERENCE, 'compute-forecast', 'answer.json'), path.join(solution, 'answer.json'));
      const result = path.join(dir, 'result.json');
      const run = spawnSync(python, ['score.py'], {
        cwd: env,
        encoding: 'utf8',
        env: { ...process.env, REBENCH_SOLUTION_DIR: solution, REBENCH_RESULT_FILE: result, REBENCH_SCORER_SECRET: a },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.match(JSON.parse(fs.readFileSync(result, 'utf8')).message, /No CUDA GPU is visible/);
      for (const seed of first.slice(0, 2)) assert.ok(!run.stdout.includes(String(seed)), 'a seed was printed');
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(home, { recursive: true, force: true });
    });

    it('reads answer.json only as a plain file, and a result file written by anything else gives no score', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-answer-'));
      const cases: [string, (p: string) => void, RegExp][] = [
        ['a link to a file it may not read', (p) => fs.symlinkSync('/etc/shadow', p), /answer\.json is a symbolic link; it must be a regular file/],
        ['a named pipe', (p) => execFileSync('mkfifo', [p]), /answer\.json is not a regular file/],
        ['a folder', (p) => fs.mkdirSync(p), /answer\.json is not a regular file/],
        ['a huge file', (p) => fs.writeFileSync(p, ' '.repeat(200_000)), /answer\.json has 200000 bytes; an answer has at most 65536/],
        ['missing', () => undefined, /Could not read .*answer\.json: No such file or directory/],
      ];
      for (const [what, make, expected] of cases) {
        const solution = path.join(dir, what.replace(/ /g, '-'));
        fs.mkdirSync(solution);
        make(path.join(solution, 'answer.json'));
        const result = path.join(solution, 'result.json');
        const started = Date.now();
        const r = spawnSync(python, ['score.py'], {
          cwd: env,
          encoding: 'utf8',
          timeout: 60_000,
          env: { ...process.env, REBENCH_SOLUTION_DIR: solution, REBENCH_RESULT_FILE: result },
        });
        assert.equal(r.status, 0, `${what}: ${r.stderr}`);
        assert.match(JSON.parse(fs.readFileSync(result, 'utf8')).message, expected, what);
        assert.ok(Date.now() - started < 30_000, `${what} took ${Date.now() - started} ms`);
      }
      const solution = path.join(dir, 'tampered');
      fs.mkdirSync(solution);
      fs.writeFileSync(path.join(solution, 'answer.json'), 'not json');
      fs.writeFileSync(path.join(solution, 'result.json'), '{"score": 1.0, "message": "mine"}');
      const r = spawnSync(python, ['score.py'], {
        cwd: env,
        encoding: 'utf8',
        env: { ...process.env, REBENCH_SOLUTION_DIR: solution, REBENCH_RESULT_FILE: path.join(solution, 'result.json') },
      });
      assert.equal(r.status, 0, r.stderr);
      const tampered = JSON.parse(fs.readFileSync(path.join(solution, 'result.json'), 'utf8')) as { score: number | null; message: string };
      assert.equal(tampered.score, null);
      assert.match(tampered.message, /^No score: something other than the scorer wrote the result file/);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('through the runner: a bad answer and a missing GPU each give no score with the reason', () => {
      const { home, solution } = startSession('compute-forecast');
      fs.writeFileSync(path.join(solution, 'answer.json'), '{"d_model": 1024, "n_layers": 16, "tokens": 100000000, "predicted_loss": 2}');
      const bad = scoreOnce(home);
      assert.equal(bad.score, null);
      assert.match(bad.message, /over the budget/);
      fs.copyFileSync(path.join(REFERENCE, 'compute-forecast', 'answer.json'), path.join(solution, 'answer.json'));
      const noGpu = scoreOnce(home);
      assert.equal(noGpu.score, null);
      assert.match(noGpu.message, /No CUDA GPU is visible to PyTorch/);
      fs.rmSync(home, { recursive: true, force: true });
    });
  });

  describe('training-speed without a GPU (the tiny size on the CPU)', () => {
    const env = path.join(ENVIRONMENTS, 'training-speed');
    // The scorer on a CPU: the tiny size, and the child as this user (never a solution user another test set up).
    const cpuEnv = { ...process.env, PYTHONDONTWRITEBYTECODE: '1', REBENCH_TRAINING_CPU_TEST: '1', REBENCH_SANDBOX_CONFIG: '/nonexistent/sandbox.json' };

    /** Runs score.py on a solution folder as the runner would; returns the result file's score and message. */
    function scoreDirect(solution: string): { score: number | null; message: string; output: string } {
      const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-ts-result-'));
      const resultFile = path.join(scratch, 'result.json');
      const r = spawnSync(python, ['score.py'], {
        cwd: env,
        encoding: 'utf8',
        timeout: 600_000,
        env: { ...cpuEnv, REBENCH_SOLUTION_DIR: solution, REBENCH_RESULT_FILE: resultFile },
      });
      assert.equal(r.status, 0, `score.py failed:\n${r.stdout}\n${r.stderr}`);
      const result = JSON.parse(fs.readFileSync(resultFile, 'utf8'));
      fs.rmSync(scratch, { recursive: true, force: true });
      return { ...result, output: r.stdout + r.stderr };
    }

    it("the solution folder's recipe.py is the scorer's, byte for byte", () => {
      assert.equal(sha(path.join(env, 'solution', 'recipe.py')), sha(path.join(env, 'recipe.py')));
    });

    it('the data: the same tokens for a seed however rows and steps are grouped, other seeds and steps differ, the table is fixed', () => {
      const out = py(
        env,
        `
import hashlib, sys, torch
import recipe
sys.path.insert(0, ${JSON.stringify(path.join(REFERENCE, 'training-speed'))})
import train as fast
size = recipe.SIZES["tiny"]
table = recipe.source_table()
print(hashlib.sha256(table.numpy().tobytes()).hexdigest())
whole = recipe.batch(5, 7, range(8), size, table)
assert whole.shape == (8, size["seq_len"] + 1) and int(whole.min()) >= 0 and int(whole.max()) < recipe.VOCAB
assert torch.equal(whole, torch.cat([recipe.batch(5, 7, range(0, 3), size, table), recipe.batch(5, 7, range(3, 8), size, table)]))
chunk = fast.chunk_batches(5, 6, 3, range(8), size, table)
assert torch.equal(chunk[1], whole)
assert not torch.equal(whole, recipe.batch(6, 7, range(8), size, table))
assert not torch.equal(whole, recipe.batch(5, 8, range(8), size, table))
assert not torch.equal(whole, recipe.batch(5, 7 + (1 << 32), range(8), size, table))
print(whole[0, :12].tolist())
# Learnable: the next-token rows are far from uniform.
p = torch.diff(torch.cat([torch.zeros(table.shape[0], 1, dtype=torch.int64), table.long()], 1), dim=1).double() / (1 << 24)
h = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(1).mean()
print(float(h))
`,
      );
      const [tableHash, firstRow = 'null', entropy] = out.trim().split('\n');
      assert.equal(tableHash, '1755c1d82a62c197d9d1effd72754d90704ac1e2a3249ffc1c39a44a19944180');
      assert.deepEqual(JSON.parse(firstRow), [52, 99, 53, 114, 82, 11, 92, 118, 21, 93, 50, 113]);
      assert.ok(Number(entropy) < Math.log(128) - 2, `mean next-token entropy ${entropy} nats`);
    });

    it('the checks: the weight ratio is exact, the figures are in the message, and a too-far run, a lost loss or NaN weights give no score', () => {
      const out = py(
        env,
        `
import torch
import recipe, score
size = recipe.SIZES["tiny"]
initial, reference = recipe.train(11, size, "cpu")
half = reference + 0.5 * (reference - initial)
d = recipe.distance(half, reference, initial)
assert abs(d["of_update"] - 0.5) < 1e-6, d
assert recipe.distance(reference, reference, initial)["of_update"] == 0
s, m = score.judge(reference.clone(), 11, 12, size, "cpu", 3.0)
assert s is not None and abs(s - __import__("math").log(3.0)) < 1e-12, m
print("honest:", m)
just_inside = reference + (recipe.WEIGHT_TOLERANCE * 0.9) * (reference - initial)
s, m = score.judge(just_inside, 11, 12, size, "cpu", 3.0)
assert s is not None, m
just_outside = reference + (recipe.WEIGHT_TOLERANCE * 1.1) * (reference - initial)
s, m = score.judge(just_outside, 11, 12, size, "cpu", 3.0)
assert s is None and "0.0330 of its update" in m, m
print("outside:", m)
score.LOSS_TOLERANCE = -1.0
s, m = score.judge(reference.clone(), 11, 12, size, "cpu", 3.0)
assert s is None and m.startswith("No score: the held-out loss is off"), m
score.LOSS_TOLERANCE = recipe.LOSS_TOLERANCE
bad = reference.clone()
bad[5] = float("nan")
s, m = score.judge(bad, 11, 12, size, "cpu", 3.0)
assert s is None and "1 of the 34,112 weights are not finite" in m, m
print("ok")
`,
        300_000,
      );
      assert.match(out, /^ok$/m);
    });

    it('reads the weights only as a plain file of the exact size in the output folder it made', () => {
      const out = py(
        env,
        `
import os, tempfile
import recipe, score
count = recipe.weight_count(recipe.SIZES["tiny"])
root = tempfile.mkdtemp()
out = os.path.join(root, "output")
os.mkdir(out)
def verdict():
    try:
        w = score.read_weights(out, count)
        return "read %d" % w.numel()
    except score.NoScore as e:
        return str(e)
print(verdict())
with open(os.path.join(out, "other.txt"), "w") as f:
    f.write("x")
print(verdict())
with open(os.path.join(out, "weights.bin"), "wb") as f:
    f.write(b"\\0" * (4 * count - 4))
print(verdict())
os.unlink(os.path.join(out, "weights.bin"))
with open(os.path.join(root, "elsewhere.bin"), "wb") as f:
    f.write(b"\\0" * (4 * count))
os.symlink(os.path.join(root, "elsewhere.bin"), os.path.join(out, "weights.bin"))
print(verdict())
os.unlink(os.path.join(out, "weights.bin"))
os.mkfifo(os.path.join(out, "weights.bin"))
print(verdict())
os.unlink(os.path.join(out, "weights.bin"))
os.rename(os.path.join(root, "elsewhere.bin"), os.path.join(out, "weights.bin"))
print(verdict())
os.rename(out, out + ".real")
os.symlink(out + ".real", out)
print(verdict())
`,
      );
      const lines = out.trim().split('\n');
      assert.match(lines[0] ?? '', /ended without writing \$TRAIN_OUTPUT\/weights\.bin \(files there: none\)/);
      assert.match(lines[1] ?? '', /\(files there: other\.txt\)/);
      assert.match(lines[2] ?? '', /has 136444 bytes; the model's 34,112 weights as float32 take 136448/);
      assert.match(lines[3] ?? '', /could not be read \(Too many levels of symbolic links\)/);
      assert.match(lines[4] ?? '', /is not a regular file/);
      assert.equal(lines[5], 'read 34112');
      assert.match(lines[6] ?? '', /output folder could not be opened/);
    });

    it('scores the starting solution from a clean copy, with an empty output folder and a fresh seed each run, and leaves the solution folder as it was', () => {
      const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-ts-fresh-'));
      const solution = path.join(scratch, 'solution');
      fs.cpSync(path.join(env, 'solution'), solution, { recursive: true });
      const record = path.join(scratch, 'record.jsonl');
      // What each run saw, then the starting training; it also leaves a file in its folder and in the output.
      fs.writeFileSync(
        path.join(solution, 'train.sh'),
        [
          '#!/bin/bash',
          'set -euo pipefail',
          'cd "$(dirname "$0")"',
          `printf '{"seed": "%s", "pwd": "%s", "output": "%s", "left": "%s", "leftover_in_output": "%s"}\\n' "$TRAIN_SEED" "$PWD" "$(ls -A "$TRAIN_OUTPUT" | tr '\\n' ' ')" "$(ls stash 2>/dev/null || true)" "$(ls -A "$TRAIN_OUTPUT" | wc -l)" >> ${JSON.stringify(record)}`,
          'mkdir -p stash && echo "$TRAIN_SEED" > stash/seed && echo old > "$TRAIN_OUTPUT/old.txt"',
          'exec "${PYTHON:-python3}" train.py',
          '',
        ].join('\n'),
      );
      const before = filesUnder(solution)
        .map((f) => `${path.relative(solution, f)} ${sha(f)}`)
        .sort();
      const first = scoreDirect(solution);
      const second = scoreDirect(solution);
      for (const r of [first, second]) {
        assert.ok(r.score !== null, r.message + r.output);
        assert.match(r.message, /weights differ from the reference run's by 0\.0000 of its update/);
      }
      const seen = fs
        .readFileSync(record, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(seen.length, 2);
      assert.notEqual(seen[0].seed, seen[1].seed, 'a fresh seed every run');
      for (const s of seen) {
        assert.ok(BigInt(s.seed) > 2n ** 20n, `a seed from the operating system, not a small default: ${s.seed}`);
        assert.notEqual(s.pwd, solution, 'the script runs in a copy');
        assert.ok(!s.pwd.startsWith(solution), s.pwd);
        assert.equal(s.output.trim(), '', 'the output folder is empty at the start');
        assert.equal(s.left, '', "nothing of the last run's folder is there");
      }
      assert.notEqual(seen[0].pwd, seen[1].pwd, 'each run gets a folder of its own');
      assert.ok(!fs.existsSync(seen[0].pwd), 'the run folder is removed afterwards');
      const after = filesUnder(solution)
        .map((f) => `${path.relative(solution, f)} ${sha(f)}`)
        .sort();
      assert.deepEqual(after, before, 'the solution folder is as it was');
      fs.rmSync(scratch, { recursive: true, force: true });
    });

    it('a process using the GPU counts as outside the script unless the scorer started it', () => {
      const out = py(
        env,
        `
import os, subprocess
import sandbox
child = subprocess.Popen(["sleep", "30"])
grandchild = subprocess.Popen(["bash", "-c", "sleep 30 & wait"])
me = os.getpid()
print(sandbox.foreign_gpu_processes([me, child.pid, grandchild.pid], me))
print(sandbox.foreign_gpu_processes([os.getppid(), 1], me) == [os.getppid(), 1])
print(sandbox.foreign_gpu_processes([2 ** 22 + 12345], me))
parents = {30: 20, 20: 10, 10: 1, 40: 1}
print(sandbox.foreign_gpu_processes([30, 40, 10], 10, parents.get))
child.kill(); grandchild.kill()
`,
      );
      assert.deepEqual(out.trim().split('\n'), ['[]', 'True', '[]', '[40]']);
    });

    it('the adversarial suite on the CPU: every cheat gets no score, every honest solution its score, and nothing is left running', function () {
      this.timeout(1_800_000);
      const r = spawnSync(python, [path.join(REFERENCE, 'adversarial', 'run.py'), 'training-speed', '--cpu'], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        timeout: 1_700_000,
        env: cpuEnv,
      });
      const rows = r.stdout.split('\n').filter((l) => l.startsWith('| `'));
      assert.ok(rows.length >= 13, `the suite's table:\n${r.stdout}\n${r.stderr}`);
      const notAsExpected = rows.filter((l) => !l.endsWith('| as expected |'));
      assert.deepEqual(notAsExpected, [], r.stdout.slice(-6000));
      assert.equal(r.status, 0, r.stdout.slice(-3000) + r.stderr.slice(-3000));
      const cheats = rows.filter((l) => /\| no score: .*\| no score \| as expected \|$/.test(l));
      assert.ok(cheats.length >= 9, `cheats refused: ${cheats.length}`);
      for (const name of [
        'copy_weights',
        'reuse_checkpoint',
        'fewer_steps',
        'subset_data',
        'bf16_weights',
        'background_trainer',
        'early_weights',
        'link_weights',
        'nan_weights',
      ]) {
        assert.ok(
          cheats.some((l) => l.startsWith(`| \`${name}\``)),
          `${name} got no score`,
        );
      }
      assert.ok(rows.some((l) => l.startsWith('| `honest_reference` |') && /\| \d+\.\d{4}: train\.sh ran for/.test(l)));
    });

    it('through the runner on a machine without a GPU: no score, and the message says why', () => {
      const { home } = startSession('training-speed');
      const entry = scoreOnce(home);
      assert.equal(entry.score, null);
      assert.match(entry.message, /No CUDA GPU is visible to PyTorch/);
      fs.rmSync(home, { recursive: true, force: true });
    });
  });

  describe('reference solutions stay out of what goes to a VM and into the VSIX', () => {
    it('no file of an environment folder equals a reference file, and none is named like one', () => {
      const referenceHashes = new Set(filesUnder(REFERENCE).map(sha));
      for (const id of GPU_ENVIRONMENTS) {
        for (const file of filesUnder(path.join(ENVIRONMENTS, id))) {
          assert.ok(!referenceHashes.has(sha(file)), `${file} is a copy of a reference file`);
          assert.doesNotMatch(path.relative(ENVIRONMENTS, file), /reference/i);
        }
      }
    });

    it('the VSIX file list has no reference solution and no GPU environment folder', () => {
      const list = execFileSync(process.execPath, [path.join(REPO_ROOT, 'node_modules/@vscode/vsce/vsce'), 'ls', '--no-dependencies'], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
      })
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
      assert.ok(list.includes('environments/runner.pyz'), `the listing looks wrong: ${list.slice(0, 5).join(', ')}`);
      for (const file of list) {
        assert.ok(!file.startsWith('reference/'), `${file} would be packaged`);
        assert.ok(!GPU_ENVIRONMENTS.some((id) => file.startsWith(`environments/${id}/`)), `${file} would be packaged`);
      }
    });
  });
});

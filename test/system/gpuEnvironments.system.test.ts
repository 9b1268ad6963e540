// The GPU environments (reservoir-scan, compute-forecast) on a machine without a GPU: their manifests and
// calibration records, the reservoir checker and starting solution on CPU tensors, the answer parsing and
// the training recipe of compute-forecast on the CPU, each scorer through the real runner (which must say
// "no score" with the reason when there is no GPU or the answer breaks a rule), and that the reference
// solutions stay out of the environment folders and the VSIX. Needs a python3 with PyTorch (Debian's
// python3-torch is installed by scripts/install-test-deps.sh).
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseManifest } from '../../src/core/manifest';
import { REPO_ROOT, RUNNER_PATH } from '../support/runner';
import { loginUser } from '../support/sshd';

const isRootUser = () => typeof process.getuid === 'function' && process.getuid() === 0;

const ENVIRONMENTS = path.join(REPO_ROOT, 'environments');
const REFERENCE = path.join(REPO_ROOT, 'reference');
const GPU_ENVIRONMENTS = ['reservoir-scan', 'compute-forecast'];

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
    for (const id of GPU_ENVIRONMENTS) {
      it(`${id}: the manifest is valid for the extension and the runner, and records its H100 calibration`, () => {
        const text = fs.readFileSync(path.join(ENVIRONMENTS, id, 'manifest.json'), 'utf8');
        const parsed = parseManifest(text, `${id}/manifest.json`);
        assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
        const m = parsed.value;
        assert.equal(m.id, id);
        assert.equal(m.hardware.gpus, 1);
        const c = m.scoring.calibration;
        assert.ok(c, 'calibration record');
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
      fs.rmSync(home, { recursive: true, force: true });
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

    it("a timed call ends at the scorer's first look when that found the result complete, else at the done event, else no score", () => {
      const out = py(
        env,
        `
import json, score
first, second, check = 1.0625, 1.0790, 0.2900
print(json.dumps([score.end_of_call(0, 0, first, second, check), score.end_of_call(17, 0, first, second, check),
                  score.end_of_call(17, 3, first, second, check), score.end_of_call(0, 5, first, second, check)]))
`,
      );
      const [complete, unfinished, wrong, secondIgnored] = JSON.parse(out) as [number | null, boolean][];
      // Complete at the first look: its time, whatever the done event says.
      assert.deepEqual(complete, [1.0625, false]);
      assert.deepEqual(secondIgnored, [1.0625, false]);
      // Unfinished at the first look: the second look's time, less the first look's usual duration.
      assert.equal(unfinished![1], true);
      assert.ok(Math.abs(unfinished![0]! - (1.079 - 0.29)) < 1e-12, String(unfinished));
      // Wrong at both looks: no time at all.
      assert.deepEqual(wrong, [null, true]);
    });

    it('the timed figure is the mean of the middle half of the calls: a few slow calls do not move it, two close groups do not make it jump', () => {
      const out = py(
        env,
        `
import json, random, score
rng = random.Random(5)
base = [1.0 + rng.gauss(0, 0.002) for _ in range(800)]
spoiled = base[:760] + [5.0] * 40  # 5% of the calls slowed by something else on the machine
# Two groups 10 us apart in nearly equal parts: one call more in either moves the median by half the gap.
a = [1.060] * 400 + [1.070] * 401
b = [1.060] * 401 + [1.070] * 400
print(json.dumps({"base": score.interquartile_mean(base), "spoiled": score.interquartile_mean(spoiled),
                  "a": score.interquartile_mean(a), "b": score.interquartile_mean(b),
                  "median_a": sorted(a)[400], "median_b": sorted(b)[400],
                  "small": [score.interquartile_mean([2.0]), score.interquartile_mean([1.0, 3.0]),
                            score.interquartile_mean([1.0, 2.0, 9.0, 3.0])]}))
`,
      );
      const r = JSON.parse(out) as Record<string, number> & { small: number[] };
      assert.ok(Math.abs(r.spoiled! - r.base!) < 0.001, JSON.stringify(r));
      assert.ok(Math.abs(r.a! - r.b!) < 0.0001, JSON.stringify(r));
      assert.ok(Math.abs(r.median_a! - r.median_b!) > 0.009, 'the example must make the median jump');
      assert.deepEqual(r.small, [2.0, 2.0, 2.5]);
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

    it("its scorer_files.py (the result file, written once; the private caches) is reservoir-scan's, byte for byte", () => {
      assert.equal(sha(path.join(env, 'scorer_files.py')), sha(path.join(ENVIRONMENTS, 'reservoir-scan', 'scorer_files.py')));
    });

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

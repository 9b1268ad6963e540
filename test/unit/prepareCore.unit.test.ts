// The pure middle of "prepare a VM": the environment's hash (the same on both sides of the wire), what counts
// as in place, host-key decisions, the profile and the messages.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseProfile } from '../../src/core/profile';
import { fingerprintSha256 } from '../../src/core/ssh/hostKey';
import { parseKnownHosts } from '../../src/core/ssh/knownHosts';
import { readEnvironmentBundle, runnerBodySha256 } from '../../src/organiser/environmentBundle';
import {
  assess,
  buildProfile,
  currentStartingScore,
  decideHostKey,
  type Expected,
  expectedSolutionSudoRules,
  expectedSudoRules,
  explainSudoFailure,
  type HostKeyPolicy,
  type Inspection,
  PrepareError,
  startingScoreOf,
  startingScoreWarning,
  type StartingScoreRecord,
} from '../../src/organiser/prepareCore';
import { PYTHON, REPO_ROOT } from '../support/runner';

const VM_SCRIPT = path.join(REPO_ROOT, 'environments', 'prepare-vm.py');

/** Calls a function of prepare-vm.py (loaded as a module, not run) with one argument. */
function python(fn: string, arg: string): string {
  const code = `import importlib.util, sys\nspec = importlib.util.spec_from_file_location("pvm", ${JSON.stringify(VM_SCRIPT)})\nm = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(m)\nprint(repr(m.${fn}(sys.argv[1])))`;
  return execFileSync(PYTHON, ['-c', code, arg], { encoding: 'utf8' }).trim();
}

/** The runner's hash of an environment folder (environments/runner/envtree.py), which prepare-vm.py uses on the VM. */
function runnerTreeHash(dir: string): string {
  const code = 'import sys; sys.path.insert(0, sys.argv[1]); from runner.envtree import tree_hash; print(tree_hash(sys.argv[2])[0])';
  return execFileSync(PYTHON, ['-c', code, path.join(REPO_ROOT, 'environments'), dir], { encoding: 'utf8' }).trim();
}

function writeEnv(dir: string, manifest: Record<string, unknown> = {}): void {
  fs.mkdirSync(path.join(dir, 'solution'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify({
      id: 'demo-env',
      title: 'Demo',
      version: '1',
      instructions: 'instructions.md',
      solution: 'solution',
      scoring: { command: ['{python}', 'score.py'], direction: 'lower', aggregation: 'best', starting_score: 6.3, reference_score: 2, timeout_s: 60 },
      ...manifest,
    }),
  );
  fs.writeFileSync(path.join(dir, 'instructions.md'), '# Do it\n');
  fs.writeFileSync(path.join(dir, 'score.py'), 'print(1)\n');
  fs.writeFileSync(path.join(dir, 'solution', 'solution.py'), 'x = 1\n');
}

describe('prepare: the environment bundle', () => {
  let dir = '';
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prepare-bundle-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('hashes exactly as the runner (and so prepare-vm.py) hashes the installed copy: paths in byte order, execute bits, empty folders; .git and __pycache__ left out', () => {
    const env = path.join(dir, 'env');
    writeEnv(env);
    fs.mkdirSync(path.join(env, 'protected', 'empty'), { recursive: true });
    fs.writeFileSync(path.join(env, 'protected', 'target.json'), '{"target": 42}');
    fs.writeFileSync(path.join(env, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    // U+FF21 sorts before U+1F600 by bytes (and code points) but after it in UTF-16: the order must be by bytes.
    for (const name of ['Zeta.txt', 'alpha.txt', 'é.txt', 'z\u{1F600}.txt', 'z\uFF21.txt', 'a b.txt']) fs.writeFileSync(path.join(env, name), name);
    fs.mkdirSync(path.join(env, '__pycache__'));
    fs.writeFileSync(path.join(env, '__pycache__', 'score.cpython-311.pyc'), 'x');
    fs.mkdirSync(path.join(env, 'solution', '.git'));
    fs.writeFileSync(path.join(env, 'solution', '.git', 'HEAD'), 'ref');
    const bundle = readEnvironmentBundle(env);
    assert.equal(bundle.sha256, runnerTreeHash(env));
    assert.ok(bundle.entries.some((e) => e.rel === 'protected/empty' && e.kind === 'dir'));
    assert.ok(!bundle.entries.some((e) => /__pycache__|\.git/.test(e.rel)), 'skipped folders are not in the bundle');
    assert.equal(bundle.entries.find((e) => e.rel === 'run.sh')?.executable, true);

    // Each kind of change changes the hash: contents, an execute bit, a new empty folder, a rename.
    const before = bundle.sha256;
    fs.chmodSync(path.join(env, 'score.py'), 0o755);
    const chmodded = readEnvironmentBundle(env).sha256;
    assert.notEqual(chmodded, before);
    assert.equal(chmodded, runnerTreeHash(env));
    fs.mkdirSync(path.join(env, 'data'));
    assert.notEqual(readEnvironmentBundle(env).sha256, chmodded);
    const changed = readEnvironmentBundle(env).sha256;
    fs.appendFileSync(path.join(env, 'instructions.md'), '!');
    assert.notEqual(readEnvironmentBundle(env).sha256, changed);
  });

  it("the runner's body hash is what prepare-vm.py reads after the first line provisioning rewrites", () => {
    const runner = fs.readFileSync(path.join(REPO_ROOT, 'environments', 'runner.pyz'));
    const installed = path.join(dir, 'rebench-runner');
    fs.writeFileSync(installed, Buffer.concat([Buffer.from('#!/usr/bin/python3 -I\n'), runner.subarray(runner.indexOf(0x0a) + 1)]));
    const [, body] = JSON.parse(python('first_line_and_body_hash', installed).replace(/^\('/, '["').replace(/', '/, '", "').replace(/'\)$/, '"]')) as [
      string,
      string,
    ];
    assert.equal(runnerBodySha256(runner), body);
    assert.notEqual(runnerBodySha256(Buffer.from('print(1)\n')), body);
  });

  it('refuses what must not travel: a reference solution, links, a missing or invalid manifest, missing parts', () => {
    const env = path.join(dir, 'env');
    writeEnv(env);
    const refuse = (re: RegExp) =>
      assert.throws(
        () => readEnvironmentBundle(env),
        (e: unknown) => e instanceof PrepareError && e.code === 'environment' && re.test(e.message),
      );
    fs.mkdirSync(path.join(env, 'reference_solution'));
    refuse(
      /reference_solution looks like a reference solution\. Environment folders must not hold one: everything outside protected\/ is readable by the participant\. Move it out/,
    );
    fs.rmSync(path.join(env, 'reference_solution'), { recursive: true });
    fs.writeFileSync(path.join(env, 'solution', 'reference-solution.py'), '');
    refuse(/reference-solution\.py looks like a reference solution/);
    fs.rmSync(path.join(env, 'solution', 'reference-solution.py'));
    fs.mkdirSync(path.join(env, 'protected', 'reference'), { recursive: true }); // hidden scorer data may be called that
    readEnvironmentBundle(env);
    fs.symlinkSync('/etc/passwd', path.join(env, 'link'));
    refuse(/link is a symbolic link\. Environments are copied file by file/);
    fs.rmSync(path.join(env, 'link'));
    fs.rmSync(path.join(env, 'instructions.md'));
    refuse(/instructions names instructions\.md, which is not a file/);
    writeEnv(env, { scoring: { direction: 'sideways' } });
    refuse(/is not a valid environment manifest: scoring\.\w+/);
    fs.rmSync(path.join(env, 'manifest.json'));
    refuse(/has no manifest\.json, so it is not an environment folder/);
    assert.throws(() => readEnvironmentBundle(path.join(dir, 'nope')), /The environment folder .*nope does not exist/);
  });
});

// ---------------------------------------------------------------------------------------------------------

const EXPECTED: Expected = {
  environmentId: 'demo-env',
  environmentSha256: 'e'.repeat(64),
  runnerBodySha256: 'r'.repeat(64),
  participant: 'agent',
  scoringUser: 'rebench-scorer',
  createParticipant: false,
  force: false,
};

/** What prepare-vm.py reports for a VM that provisioning has set up for EXPECTED. */
function prepared(): Inspection {
  return {
    type: 'inspection',
    python: { path: '/usr/bin/python3', version: [3, 11, 2] },
    tools: { visudo: true, runuser: true, useradd: true, sudo: true, bash: true, tar: true },
    sudoers_includes_dir: true,
    participant: { uid: 1000, gid: 1000, group: 'agent', groups: ['agent'], home: '/home/agent', shell: '/bin/bash' },
    scoring_user: { uid: 999, gid: 999, group: 'rebench-scorer', groups: ['rebench-scorer'], home: '/nonexistent', shell: '/usr/sbin/nologin' },
    home: { owner: 'root:root', mode: '0755', kind: 'dir' },
    environments_dir: { owner: 'root:root', mode: '0755', kind: 'dir' },
    runner: { owner: 'root:root', mode: '0755', kind: 'file', first_line: '#!/usr/bin/python3 -I', body_sha256: 'r'.repeat(64) },
    environment: { sha256: 'e'.repeat(64), problems: [] },
    config: {
      mode: 'protected',
      environment: 'demo-env',
      environments_dir: '/etc/rebench/environments',
      state_dir: '/etc/rebench/state',
      solution_dir: '/home/agent/solution',
      scoring_user: 'rebench-scorer',
    },
    config_file: { owner: 'root:root', mode: '0644', kind: 'file' },
    state: { owner: 'root:root', mode: '0711', kind: 'dir' },
    session: null,
    solution: { path: '/home/agent/solution', info: { owner: 'agent:agent', mode: '0755', kind: 'dir' }, scorer_can_read: true },
    sudoers: { owner: 'root:root', mode: '0440', kind: 'file', rules: expectedSudoRules('agent') },
    participant_check: { code: 0, mode: 'protected', environment: 'demo-env', error: null },
    starting_score: null,
    scratch: false,
    solution_user: { uid: 998, gid: 998, group: 'rebench-solution', groups: ['rebench-solution'], home: '/nonexistent', shell: '/usr/sbin/nologin' },
    sandbox: {
      owner: 'root:root',
      mode: '0644',
      kind: 'file',
      config: { scoring_user: 'rebench-scorer', solution_user: 'rebench-solution', python: '/usr/bin/python3', sudo: '/usr/bin/sudo' },
    },
    scorer_secret: { owner: 'root:rebench-scorer', mode: '0640', kind: 'file', bytes: 65 },
    solution_sudoers: { owner: 'root:root', mode: '0440', kind: 'file', rules: expectedSolutionSudoRules('rebench-scorer', '/usr/bin/python3') },
  };
}

describe('prepare: what is in place', () => {
  it('a prepared VM has all twelve items in place and nothing missing', () => {
    const a = assess(prepared(), EXPECTED);
    assert.deepEqual(a.blockers, []);
    assert.deepEqual(a.missing, []);
    assert.equal(a.inPlace.length, 12);
    assert.ok(
      a.inPlace.includes('/etc/rebench/sandbox.json (root:root 0644) names rebench-scorer as the scoring user and rebench-solution as the solution user'),
    );
  });

  it('a fresh VM misses every item, and each fix names what it was before', () => {
    const fresh: Inspection = {
      ...prepared(),
      scoring_user: null,
      runner: null,
      environment: null,
      config: null,
      config_file: null,
      state: null,
      solution: { path: '/home/agent/solution', info: null, scorer_can_read: null },
      sudoers: null,
      participant_check: null,
      solution_user: null,
      sandbox: null,
      scorer_secret: null,
      solution_sudoers: null,
    };
    const a = assess(fresh, EXPECTED);
    assert.deepEqual(a.blockers, []);
    assert.equal(a.missing.length, 12);
    assert.match(
      a.fixes[0] ?? '',
      /^the runner \/usr\/local\/bin\/rebench-runner \(root:root 0755\) is this runner \(before: the runner \/usr\/local\/bin\/rebench-runner is not installed\)$/,
    );
  });

  it('each deviation is missing by name', () => {
    const cases: Array<[(i: Inspection) => void, RegExp, Partial<Expected>?]> = [
      [
        (i) => {
          i.runner = { ...i.runner!, body_sha256: 'x' };
        },
        /the runner .* differs from this runner/,
      ],
      [
        (i) => {
          i.runner = { ...i.runner!, first_line: '#!/usr/bin/python3' };
        },
        /is root:root 0755, not root:root 0755 with "python3 -I"/,
      ],
      [
        (i) => {
          i.runner = { ...i.runner!, mode: '0777' };
        },
        /the runner .* is root:root 0777/,
      ],
      [
        (i) => {
          i.environment = { sha256: 'f'.repeat(64), problems: [] };
        },
        /the environment \/etc\/rebench\/environments\/demo-env differs from your environment folder/,
      ],
      [
        (i) => {
          i.environment = { sha256: 'e'.repeat(64), problems: ['score.py is agent:agent 0666, not root:root 0644'] };
        },
        /has wrong owners or modes: score\.py is agent:agent 0666/,
      ],
      [
        (i) => {
          (i.config as Record<string, unknown>).scoring_user = 'other';
        },
        /runner\.json is not the expected protected-mode configuration/,
      ],
      [
        (i) => {
          i.config_file = { owner: 'agent:agent', mode: '0644', kind: 'file' };
        },
        /runner\.json is not the expected/,
      ],
      [
        (i) => {
          i.state = { owner: 'root:root', mode: '0777', kind: 'dir' };
        },
        /the state folder \/etc\/rebench\/state is root:root 0777, not root:root 0711/,
      ],
      [
        (i) => {
          i.solution = { ...i.solution!, scorer_can_read: false };
        },
        /the scoring user cannot read the solution folder/,
      ],
      [
        (i) => {
          i.sudoers = { ...i.sudoers!, rules: expectedSudoRules('someone-else') };
        },
        /the sudo rule \/etc\/sudoers\.d\/rebench is not the one for agent/,
      ],
      [
        (i) => {
          i.sudoers = { ...i.sudoers!, mode: '0644' };
        },
        /is not the one for agent/,
      ],
      [
        (i) => {
          i.participant_check = { code: 4, mode: null, environment: null, error: 'The runner is not set up' };
        },
        /agent running the runner through sudo got: The runner is not set up/,
      ],
      [() => {}, /runner\.json is not the expected/, { solutionDir: '/srv/solution' }],
      [
        (i) => {
          i.solution_user = null;
        },
        /^the solution user rebench-solution does not exist yet$/,
      ],
      [
        (i) => {
          i.sandbox = null;
        },
        /^\/etc\/rebench\/sandbox\.json does not exist$/,
      ],
      [
        (i) => {
          i.sandbox = { ...i.sandbox!, mode: '0666' };
        },
        /sandbox\.json is root:root 0666 \(file\), not a file root:root 0644/,
      ],
      [
        (i) => {
          (i.sandbox!.config as Record<string, unknown>).solution_user = 'agent';
        },
        /sandbox\.json does not name rebench-scorer, rebench-solution and the runner's python/,
      ],
      [
        (i) => {
          (i.sandbox!.config as Record<string, unknown>).python = '/home/agent/python3';
        },
        /sandbox\.json does not name/,
      ],
      [
        (i) => {
          i.sandbox = { ...i.sandbox!, config: { unreadable: 'JSONDecodeError: Expecting value' } };
        },
        /sandbox\.json does not name/,
      ],
      [
        (i) => {
          i.scorer_secret = null;
        },
        /^the scorer secret \/etc\/rebench\/scorer-secret does not exist$/,
      ],
      [
        (i) => {
          i.scorer_secret = { ...i.scorer_secret!, mode: '0644' };
        },
        /the scorer secret \/etc\/rebench\/scorer-secret is root:rebench-scorer 0644, not root:rebench-scorer 0640/,
      ],
      [
        (i) => {
          i.scorer_secret = { ...i.scorer_secret!, owner: 'agent:rebench-scorer' };
        },
        /is agent:rebench-scorer 0640, not root:rebench-scorer 0640/,
      ],
      [
        (i) => {
          i.solution_sudoers = null;
        },
        /^the sudo rule \/etc\/sudoers\.d\/rebench-solution does not exist$/,
      ],
      [
        (i) => {
          i.solution_sudoers = { ...i.solution_sudoers!, rules: [...i.solution_sudoers!.rules, 'rebench-scorer ALL=(root) NOPASSWD: ALL'] };
        },
        /the sudo rule \/etc\/sudoers\.d\/rebench-solution is not the one for rebench-scorer and rebench-solution/,
      ],
    ];
    for (const [change, missing, expected] of cases) {
      const i = structuredClone(prepared());
      change(i);
      const a = assess(i, { ...EXPECTED, ...expected });
      assert.deepEqual(a.blockers, []);
      assert.equal(a.missing.length, 1, `${missing}: ${a.missing.join('; ')}`);
      assert.match(a.missing[0] ?? '', missing);
    }
  });

  it('blocks, before anything is changed, what a person must fix, saying how', () => {
    const cases: Array<[(i: Inspection) => void, RegExp, Partial<Expected>?]> = [
      [
        (i) => {
          i.participant = null;
        },
        /The participant user "agent" does not exist on the VM\. Create their login first .* or run prepare with --create-participant --participant-key FILE/,
      ],
      [
        (i) => {
          i.participant = { ...i.participant!, uid: 0 };
        },
        /is root \(uid 0\); a participant must be an ordinary user/,
      ],
      [() => {}, /The scoring user must differ from the participant/, { scoringUser: 'agent' }],
      [
        (i) => {
          i.scoring_user = { ...i.scoring_user!, uid: 0 };
        },
        /The scoring user "rebench-scorer" is root/,
      ],
      [
        (i) => {
          i.participant = { ...i.participant!, groups: ['agent', 'rebench-scorer'] };
        },
        /is in the group "rebench-scorer" of the scoring user .* could read the hidden scorer data/,
      ],
      [
        (i) => {
          i.python = { path: '/usr/bin/python3', version: [3, 6, 9] };
        },
        /python3 \(\/usr\/bin\/python3\) is version 3\.6\.9; the runner needs 3\.8 or newer/,
      ],
      [
        (i) => {
          i.tools = { ...i.tools, visudo: false };
        },
        /visudo is not installed on the VM; install it \(apt-get install sudo\)/,
      ],
      [
        (i) => {
          i.sudoers_includes_dir = false;
        },
        /no "@includedir \/etc\/sudoers\.d" line/,
      ],
      [
        (i) => {
          i.session = { environment: 'other-env', started_at: '2026-01-01T00:00:00Z' };
        },
        /A session for "other-env" has started on this VM .* cannot switch to "demo-env"\. Archive and remove \/etc\/rebench\/state/,
      ],
      [
        (i) => {
          i.session = { environment: 'demo-env', started_at: 'x' };
          i.environment = { sha256: 'f'.repeat(64), problems: [] };
        },
        /your environment folder differs from it\. .* pass --force/,
      ],
      [
        (i) => {
          i.solution = { ...i.solution!, info: { owner: 'agent:agent', mode: '0644', kind: 'file' } };
        },
        /\/home\/agent\/solution on the VM exists but is not a folder \(it is a file\)/,
      ],
      [
        (i) => {
          i.solution_user = { ...i.solution_user!, uid: 0 };
        },
        /The solution user "rebench-solution" on the VM is root \(uid 0\).* Remove it \(userdel rebench-solution\)/,
      ],
      [
        (i) => {
          i.solution_user = { ...i.solution_user!, groups: ['rebench-solution', 'rebench-scorer'] };
        },
        /The solution user "rebench-solution" is in the group "rebench-scorer" of the scoring user, so the participant's code could read the hidden scorer data/,
      ],
      [
        () => {},
        /"rebench-solution" runs the participant's code for scorers; it cannot also be the participant or the scoring user/,
        { scoringUser: 'rebench-solution' },
      ],
      [
        (i) => {
          i.scorer_secret = { ...i.scorer_secret!, bytes: 5 };
        },
        /The scorer secret \/etc\/rebench\/scorer-secret on the VM is 5 bytes long; scorers need at least 16\. Remove it/,
      ],
      [
        (i) => {
          i.scorer_secret = { ...i.scorer_secret!, kind: 'link' };
        },
        /The scorer secret \/etc\/rebench\/scorer-secret on the VM is a link, not a file/,
      ],
    ];
    for (const [change, blocker, expected] of cases) {
      const i = structuredClone(prepared());
      change(i);
      const a = assess(i, { ...EXPECTED, ...expected });
      assert.equal(a.blockers.length, 1, `${blocker}: ${a.blockers.join('; ')}`);
      assert.match(a.blockers[0] ?? '', blocker);
    }
    const forced = structuredClone(prepared());
    forced.session = { environment: 'demo-env', started_at: 'x' };
    forced.environment = { sha256: 'f'.repeat(64), problems: [] };
    assert.deepEqual(assess(forced, { ...EXPECTED, force: true }).blockers, [], '--force lets a changed environment replace a started one');
    const missing = structuredClone(prepared());
    missing.participant = null;
    const a = assess(missing, { ...EXPECTED, createParticipant: true });
    assert.deepEqual([a.blockers, a.createParticipant], [[], true]);
  });

  it('the starting score on the VM counts only for this very environment and only with a score', () => {
    const record: StartingScoreRecord = {
      environment: 'demo-env',
      environment_version: '1',
      environment_sha256: 'e'.repeat(64),
      scoring_command: ['{python}', 'score.py'],
      direction: 'lower',
      manifest_starting_score: 6.3,
      reference_score: 2,
      score: 6.41,
      message: 'ok',
      measured_at: '2026-01-01T00:00:00Z',
      duration_s: 2.1,
      exit_code: 0,
      timed_out: false,
      solution_hash: 'sha256:x',
      scoring_user: 'rebench-scorer',
      runner_version: '1.0.0',
    };
    assert.equal(currentStartingScore({ ...prepared(), starting_score: record }, 'e'.repeat(64))?.score, 6.41);
    assert.equal(currentStartingScore({ ...prepared(), starting_score: record }, 'f'.repeat(64)), undefined);
    assert.equal(currentStartingScore({ ...prepared(), starting_score: { ...record, score: null } }, 'e'.repeat(64)), undefined);
    assert.equal(currentStartingScore({ ...prepared(), starting_score: { unreadable: 'ValueError' } }, 'e'.repeat(64)), undefined);
    const s = startingScoreOf(record, true);
    assert.ok(Math.abs(s.normalized - (6.41 - 6.3) / (2 - 6.3)) < 1e-12);
    assert.equal(startingScoreWarning(s), undefined, 'a few percent is timing noise');
    const far = startingScoreOf({ ...record, score: 5 }, true);
    assert.match(
      startingScoreWarning(far) ?? '',
      /scored 5 on this VM, but the manifest's starting_score is 6\.3: 30% of the way towards the reference score 2/,
    );
  });
});

describe("prepare: host keys, the profile, sudo's answers", () => {
  const blob = (seed: number) => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    raw[0] = seed;
    const type = Buffer.from('ssh-ed25519');
    const len = (b: Buffer) => Buffer.from([0, 0, 0, b.length]);
    return Buffer.concat([len(type), type, len(raw), raw]);
  };
  const key = blob(1);
  const other = blob(2);
  const presented = { host: 'vm7', port: 22, keyType: 'ssh-ed25519', fingerprint: fingerprintSha256(key) };
  const policy = (p: Partial<HostKeyPolicy> = {}): HostKeyPolicy => ({ pins: new Map(), knownHosts: [], knownHostsFiles: ['/k'], acceptNew: false, ...p });
  const known = (lines: string) => parseKnownHosts(lines, '/k').entries;

  it('a pin decides alone; then known_hosts; then --accept-new-host-key; otherwise a person may still accept it', () => {
    const pinned = (fp: string) => policy({ pins: new Map([['vm7:22', { fingerprint: fp, source: '--host-key-fingerprint' }]]) });
    assert.deepEqual(decideHostKey(presented, pinned(fingerprintSha256(key))), {
      ok: true,
      how: 'pinned',
      note: `host key of vm7:22 ${fingerprintSha256(key)} matches --host-key-fingerprint`,
    });
    const wrong = decideHostKey(presented, pinned(fingerprintSha256(other)));
    assert.ok(!wrong.ok && !wrong.ask);
    assert.match(
      wrong.message,
      /is SHA256:\S+, but --host-key-fingerprint pins SHA256:\S+\. .*nothing was sent\. Check the key on the VM's console \(ssh-keygen -lf \/etc\/ssh\/ssh_host_ed25519_key\.pub\)/,
    );

    const line = (b: Buffer, prefix = '') => `${prefix}vm7 ssh-ed25519 ${b.toString('base64')}\n`;
    const match = decideHostKey(presented, policy({ knownHosts: known(line(key)) }));
    assert.ok(match.ok && match.how === 'known-hosts' && /found on line 1 of \/k/.test(match.note));
    const changed = decideHostKey(presented, policy({ knownHosts: known(line(other)) }));
    assert.ok(!changed.ok && !changed.ask && /has changed: it is now .* line 1 of \/k records another key.*ssh-keygen -R 'vm7'/.test(changed.message));
    const revoked = decideHostKey(presented, policy({ knownHosts: known(line(key, '@revoked ')), acceptNew: true }));
    assert.ok(!revoked.ok && /marked @revoked on line 1 of \/k/.test(revoked.message));
    const elsewhere = decideHostKey({ ...presented, port: 2222 }, policy({ knownHosts: known(line(other)) }));
    assert.ok(!elsewhere.ok && elsewhere.ask, 'a key recorded for port 22 says nothing about port 2222');

    const unknown = decideHostKey(presented, policy());
    assert.ok(!unknown.ok && unknown.ask);
    assert.match(unknown.message, /is not pinned and not in \/k, so the VM's identity cannot be checked; nothing was sent\. .* or pass --accept-new-host-key/);
    const accepted = decideHostKey(presented, policy({ acceptNew: true }));
    assert.ok(accepted.ok && accepted.how === 'accepted-new');
  });

  it("builds a profile the extension's own parser accepts, protected, with the jump host when there is one", () => {
    const fp = fingerprintSha256(key);
    const { profile, text } = buildProfile({
      host: 'vm7.example.org',
      port: 22,
      participant: 'agent',
      hostKeyFingerprint: fp,
      environmentId: 'demo-env',
      environmentTitle: 'Demo',
      jump: { host: 'bastion', port: 2200, user: 'agent-b', hostKeyFingerprint: fp },
      identityFile: '~/.ssh/study',
    });
    const parsed = parseProfile(text, 'p');
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value, profile);
    assert.deepEqual(profile, {
      name: 'Demo (agent@vm7.example.org)',
      host: 'vm7.example.org',
      port: 22,
      user: 'agent',
      host_key_fingerprint: fp,
      environment: 'demo-env',
      protected: true,
      jump: { host: 'bastion', port: 2200, user: 'agent-b', host_key_fingerprint: fp },
      identity_file: '~/.ssh/study',
    });
    assert.equal(
      buildProfile({ host: 'h', port: 2222, participant: 'a', hostKeyFingerprint: fp, environmentId: 'e', environmentTitle: 'T'.repeat(200) }).profile.name
        .length,
      120,
    );
    assert.throws(
      () => buildProfile({ host: 'h', port: 22, participant: 'a', hostKeyFingerprint: 'SHA256:x', environmentId: 'e', environmentTitle: 'T' }),
      (e: unknown) => e instanceof PrepareError && e.code === 'profile' && /host_key_fingerprint/.test(e.message),
    );
  });

  it('explains why sudo did not work, with the fix', () => {
    assert.match(
      explainSudoFailure('ops', 1, 'sudo: a password is required\n'),
      /ops cannot use sudo on the VM without a password \(sudo said: "sudo: a password is required"\): .* Log in as root \(--admin root\), or give ops passwordless sudo on the VM: echo 'ops ALL=\(ALL\) NOPASSWD: ALL' \| sudo tee \/etc\/sudoers\.d\/ops/,
    );
    assert.match(
      explainSudoFailure('ops', 1, 'Sorry, user ops may not run sudo on vm7.\n'),
      /ops may not use sudo on the VM \(sudo said: "Sorry, user ops may not run sudo on vm7\."\)/,
    );
    assert.match(explainSudoFailure('ops', 127, 'sh: 1: sudo: not found\n'), /sudo is not installed on the VM, and the administrator login ops is not root/);
    assert.match(explainSudoFailure('ops', 1, ''), /sudo -n true failed for ops on the VM \(exit 1: "no message"\)/);
  });
});

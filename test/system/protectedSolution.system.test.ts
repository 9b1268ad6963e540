// Protected mode when a scorer runs the participant's code: provision-protected.sh makes a solution user,
// and the scorer starts the participant's code as that user, in a child process, through the process split
// of reservoir-scan (environments/reservoir-scan/sandbox.py and solution_child.py, copied into a test
// environment whose "solution" tries everything it must not do); then training-speed's scorer (its own
// sandbox.py and script_child.py) with a train.sh that probes the same limits before it trains. The
// participant works over SSH on loopback through the one sudo rule, as in protected.system.test.ts.
//
// It changes the machine (/etc/rebench, /usr/local/bin/rebench-runner, /etc/sudoers.d/rebench, two system
// users), so it runs only as root and only when none of those exist, unless its own marker file shows that
// an earlier run of this test left them; it removes all of them afterwards.

import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SshTarget } from '../../src/core/ssh/sshTarget';
import { INSTALLED_RUNNER, PROTECTED_HOME, PROTECTED_SUDOERS } from '../support/prepareMachine';
import { participantConnection, protectedSetup } from '../support/protectedSetup';
import { FIXTURE_ENVIRONMENTS, REPO_ROOT } from '../support/runner';
import { loginUser, type Sshd, startSshd } from '../support/sshd';

const SCRIPT = path.join(REPO_ROOT, 'environments', 'provision-protected.sh');
const SPLIT_FILES = ['sandbox.py', 'solution_child.py'].map((f) => path.join(REPO_ROOT, 'environments', 'reservoir-scan', f));
const ENV_ID = 'sandbox-probe';
const HOME = PROTECTED_HOME;
const RUNNER = INSTALLED_RUNNER;
const SUDOERS = PROTECTED_SUDOERS;
const SCORER = 'rebench-scorer-p';
const SOLUTION_USER = 'rebench-solution-p';
const OTHER_DIR = '/var/tmp/rebench-probe-other';
/** Claimed by a marker in /etc/rebench before provisioning; the probes may leave the solution user's processes running. */
const machine = protectedSetup({
  testFile: 'test/system/protectedSolution.system.test.ts',
  marker: '.protected-solution-system-test',
  users: [SCORER, SOLUTION_USER],
  tools: ['pgrep', 'setfacl', 'getfacl'],
  kill: [SOLUTION_USER],
  alsoRemove: [OTHER_DIR],
});

/** Why this machine cannot host the test, or undefined. */
function unsuitable(): string | undefined {
  const why = machine.unsuitable();
  if (why) return why;
  const torch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
  return torch.status === 0 ? undefined : "the system's python3 has no PyTorch (the child process imports it)";
}

const mode = (p: string) => (fs.statSync(p).mode & 0o7777).toString(8).padStart(4, '0');
const sha = (p: string) => crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
function owner(p: string): string {
  const st = fs.statSync(p);
  const name = (id: number, db: 'passwd' | 'group') => execFileSync('getent', [db, String(id)], { encoding: 'utf8' }).split(':')[0];
  return `${name(st.uid, 'passwd')}:${name(st.gid, 'group')}`;
}

describe("Protected mode: the participant's code that a scorer runs reaches nothing it must not", function () {
  this.timeout(240_000);
  let user = '';
  let solutionDir = '';
  let envCopy = '';
  let sshd: Sshd;
  let target: SshTarget;

  before(async function () {
    const why = unsuitable();
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    let home: string;
    ({ user, home } = loginUser());
    solutionDir = path.join(home, 'probe-solution');
    machine.claim(solutionDir);
    // The test environment: the fixture plus the split's two files, exactly as reservoir-scan ships them.
    envCopy = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-probe-env-'));
    fs.cpSync(path.join(FIXTURE_ENVIRONMENTS, ENV_ID), path.join(envCopy, ENV_ID), { recursive: true });
    for (const f of SPLIT_FILES) fs.copyFileSync(f, path.join(envCopy, ENV_ID, path.basename(f)));
    // Another user's private data.
    fs.mkdirSync(OTHER_DIR, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(OTHER_DIR, 'private.txt'), "another participant's notes\n", { mode: 0o600 });
    execFileSync('chown', ['-R', 'nobody', OTHER_DIR]);
    const r = spawnSync(
      'bash',
      [
        SCRIPT,
        '--environment',
        path.join(envCopy, ENV_ID),
        '--participant',
        user,
        '--scoring-user',
        SCORER,
        '--solution-user',
        SOLUTION_USER,
        '--solution-dir',
        solutionDir,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    console.log(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => `        ${l}`)
        .join('\n'),
    );
    sshd = await startSshd();
    target = await participantConnection(sshd, { info: () => undefined, warn: () => undefined, error: () => undefined });
  });

  after(async () => {
    target?.dispose();
    await sshd?.stop();
    if (solutionDir) machine.cleanUp(solutionDir);
    if (envCopy) fs.rmSync(envCopy, { recursive: true, force: true });
  });

  it('provisioning makes the solution user, names it for the scorer, keeps a secret and closes the state folder', () => {
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(HOME, 'sandbox.json'), 'utf8')), {
      python: '/usr/bin/python3',
      scoring_user: SCORER,
      solution_user: SOLUTION_USER,
      sudo: execFileSync('sh', ['-c', 'command -v sudo'], { encoding: 'utf8' }).trim(),
    });
    assert.equal(owner(path.join(HOME, 'sandbox.json')), 'root:root');
    assert.equal(mode(path.join(HOME, 'sandbox.json')), '0644');
    assert.equal(owner(path.join(HOME, 'scorer-secret')), `root:${SCORER}`);
    assert.equal(mode(path.join(HOME, 'scorer-secret')), '0640');
    assert.ok(fs.readFileSync(path.join(HOME, 'scorer-secret'), 'utf8').trim().length >= 32);
    assert.equal(owner(path.join(HOME, 'state')), 'root:root');
    assert.equal(mode(path.join(HOME, 'state')), '0711');
    assert.match(execFileSync('getfacl', ['-p', path.join(HOME, 'state')], { encoding: 'utf8' }), new RegExp(`^user:${SOLUTION_USER}:---$`, 'm'));
    const rules = fs
      .readFileSync(`${SUDOERS}-solution`, 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'));
    assert.deepEqual(rules, [`Defaults:${SCORER} !requiretty, !use_pty`, `${SCORER} ALL=(${SOLUTION_USER}) NOPASSWD: /usr/bin/python3`]);
    assert.equal(mode(`${SUDOERS}-solution`), '0440');
    // The participant's own rule file is unchanged: the runner as root, nothing else.
    assert.equal(
      fs
        .readFileSync(SUDOERS, 'utf8')
        .split('\n')
        .filter((l) => l.trim() && !l.startsWith('#')).length,
      2,
    );
    const entry = execFileSync('getent', ['passwd', SOLUTION_USER], { encoding: 'utf8' }).trim().split(':');
    assert.match(entry[6] ?? '', /nologin|false/, 'the solution user has no login shell');
    assert.doesNotMatch(execFileSync('id', ['-Gn', SOLUTION_USER], { encoding: 'utf8' }), new RegExp(`\\b${SCORER}\\b`));
  });

  it('a score runs the probe as the solution user: every read, write and signal it tries is denied', async () => {
    const scorerCode = sha(path.join(HOME, 'environments', ENV_ID, 'score.py'));
    const start = await target.exec(`sudo -n ${RUNNER} start --json`);
    assert.equal(start.code, 0, start.stdout + start.stderr);
    const scored = await target.exec(`sudo -n ${RUNNER} score --follow --json`);
    assert.equal(scored.code, 0, scored.stdout + scored.stderr);
    const lines = scored.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; entry?: { score: number | null; message: string } });
    const entry = lines.find((l) => l.type === 'entry')?.entry;
    assert.ok(entry, scored.stdout);
    console.log(`      ${entry.message.split(' | ')[0]}`);
    assert.match(entry.message, new RegExp(`^child ran as ${SOLUTION_USER} \\(scorer ${SCORER}\\); 0 of 16 attempts got through`));
    const attempts = entry.message.split(' | ')[1]!.split('; ');
    assert.equal(attempts.length, 15, entry.message);
    const expected = [
      "read the protected folder's expected output",
      "read the scorer's private expected output",
      'read the scorer secret',
      'read the score log',
      'read the session',
      "read the runner's events",
      "read another user's private file",
      "read the scorer's environment",
      "read the scorer's memory map",
      'write the result file',
      'write a file beside the result file',
      "write the scorer's code",
      'write the protected folder',
      'signal the scorer',
    ];
    for (const what of expected) assert.ok(attempts.includes(`${what}: denied (PermissionError)`), `${what}: ${attempts.find((a) => a.startsWith(what))}`);
    assert.ok(attempts.includes('REBENCH_ variables in its environment: denied (none)'));
    assert.equal(entry.score, 0);
    // What the scorer and the test can see for themselves.
    assert.equal(sha(path.join(HOME, 'environments', ENV_ID, 'score.py')), scorerCode);
    assert.ok(!fs.existsSync(path.join(HOME, 'environments', ENV_ID, 'protected', 'extra.json')));
    assert.equal(spawnSync('pgrep', ['-u', SOLUTION_USER]).status, 1, 'a process of the solution user outlived the scoring run');
    const verify = await target.exec(`sudo -n ${RUNNER} verify --json`);
    assert.equal(JSON.parse(verify.stdout).intact, true);
  });

  it('the participant cannot act as the solution user or the scoring user, nor read the scorer secret', async () => {
    for (const command of [`sudo -n -u ${SOLUTION_USER} /usr/bin/python3 -c pass`, `sudo -n -u ${SCORER} /usr/bin/python3 -c pass`]) {
      const r = await target.exec(command);
      assert.notEqual(r.code, 0, command);
      assert.match(r.stderr, /a password is required|not allowed to|may not run/);
    }
    const secret = await target.exec(`cat ${path.join(HOME, 'scorer-secret')}`);
    assert.notEqual(secret.code, 0);
    assert.match(secret.stderr, /Permission denied/);
  });
});

describe("Protected mode: training-speed runs the participant's train.sh as the solution user, from a clean copy", function () {
  this.timeout(600_000);
  const TRAINING = path.join(REPO_ROOT, 'environments', 'training-speed');
  const TS_ID = 'training-speed-cpu';
  // Where the script reports what it reached: a folder anyone may write (not /tmp, whose sticky bit keeps the
  // solution user from appending to a file the test made there).
  const RECORD_DIR = '/var/tmp/rebench-training-probe';
  const RECORD = path.join(RECORD_DIR, 'record.txt');
  let user = '';
  let solutionDir = '';
  let envCopy = '';
  let sshd: Sshd;
  let target: SshTarget;

  before(async function () {
    const why = unsuitable();
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    let home: string;
    ({ user, home } = loginUser());
    solutionDir = path.join(home, 'training-solution');
    machine.claim(solutionDir);
    // The environment as it ships, scored at its tiny CPU size (the scorer's own switch, set by a wrapper
    // the runner starts: through sudo no variable reaches it), with a secret in protected/ to probe for.
    envCopy = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-training-env-'));
    const env = path.join(envCopy, TS_ID);
    fs.cpSync(TRAINING, env, { recursive: true, filter: (f) => !f.includes('__pycache__') });
    fs.writeFileSync(path.join(env, 'cpu_score.py'), 'import os\nos.environ["REBENCH_TRAINING_CPU_TEST"] = "1"\nimport score\nscore.main()\n');
    const manifest = JSON.parse(fs.readFileSync(path.join(env, 'manifest.json'), 'utf8'));
    Object.assign(manifest, { id: TS_ID, hardware: { gpus: 0, min_free_disk_gb: 0.01 } });
    manifest.scoring.command = ['{python}', 'cpu_score.py'];
    fs.writeFileSync(path.join(env, 'manifest.json'), JSON.stringify(manifest, null, 2));
    fs.mkdirSync(path.join(env, 'protected'));
    fs.writeFileSync(path.join(env, 'protected', 'secret.txt'), 'the scorer only\n');
    const r = spawnSync(
      'bash',
      [SCRIPT, '--environment', env, '--participant', user, '--scoring-user', SCORER, '--solution-user', SOLUTION_USER, '--solution-dir', solutionDir],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    // The participant's train.sh: what it can reach, a process left behind, then the starting training.
    const probe = [
      '#!/bin/bash',
      'cd "$(dirname "$0")"',
      `r=${RECORD}`,
      'echo "user=$(id -un)" >> $r',
      `for f in ${HOME}/scorer-secret ${HOME}/environments/${TS_ID}/protected/secret.txt ${HOME}/state/session.json; do`,
      '  if cat "$f" >/dev/null 2>&1; then echo "read $f: yes" >> $r; else echo "read $f: no" >> $r; fi',
      'done',
      `if touch ${solutionDir}/written-by-the-script 2>/dev/null; then echo "write the solution folder: yes" >> $r; else echo "write the solution folder: no" >> $r; fi`,
      'echo "REBENCH variables: $(env | grep -c ^REBENCH_)" >> $r',
      'echo "cwd=$PWD" >> $r',
      'setsid sleep 600 </dev/null >/dev/null 2>&1 &',
      'exec "${PYTHON:-python3}" train.py',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(solutionDir, 'train.sh'), probe);
    execFileSync('chown', [`${user}:`, path.join(solutionDir, 'train.sh')]);
    fs.rmSync(RECORD_DIR, { recursive: true, force: true });
    fs.mkdirSync(RECORD_DIR);
    fs.chmodSync(RECORD_DIR, 0o777);
    sshd = await startSshd();
    target = await participantConnection(sshd, { info: () => undefined, warn: () => undefined, error: () => undefined });
  });

  after(async () => {
    target?.dispose();
    await sshd?.stop();
    if (solutionDir) machine.cleanUp(solutionDir);
    if (envCopy) fs.rmSync(envCopy, { recursive: true, force: true });
    fs.rmSync(RECORD_DIR, { recursive: true, force: true });
  });

  it('scores the run: the script ran as the solution user in a copy, reached nothing protected, and left nothing running', async () => {
    const start = await target.exec(`sudo -n ${RUNNER} start --json`);
    assert.equal(start.code, 0, start.stdout + start.stderr);
    const scored = await target.exec(`sudo -n ${RUNNER} score --follow --json`);
    assert.equal(scored.code, 0, scored.stdout + scored.stderr);
    const entry = scored.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; entry?: { score: number | null; message: string } })
      .find((l) => l.type === 'entry')?.entry;
    assert.ok(entry, scored.stdout);
    console.log(`      ${entry.message}`);
    // The scorer, as the scoring user, read the weights the solution user wrote, and they are the recipe's.
    assert.ok(entry.score !== null, entry.message);
    assert.match(entry.message, /weights differ from the reference run's by 0\.0000 of its update/);
    const record = fs.readFileSync(RECORD, 'utf8');
    assert.match(record, new RegExp(`^user=${SOLUTION_USER}$`, 'm'));
    assert.doesNotMatch(record, /: yes$/m, record);
    assert.match(record, /^read .*scorer-secret: no$/m);
    assert.match(record, /^read .*protected\/secret\.txt: no$/m);
    assert.match(record, /^write the solution folder: no$/m);
    assert.match(record, /^REBENCH variables: 0$/m);
    const cwd = /^cwd=(.*)$/m.exec(record)?.[1] ?? '';
    assert.match(cwd, /^\/tmp\/rebench-solution-[^/]+\/solution$/);
    assert.ok(!fs.existsSync(cwd), 'the copy is removed after the run');
    assert.equal(spawnSync('pgrep', ['-u', SOLUTION_USER]).status, 1, 'a process of the solution user outlived the scoring run');
    assert.ok(!fs.existsSync(path.join(solutionDir, 'written-by-the-script')));
  });
});

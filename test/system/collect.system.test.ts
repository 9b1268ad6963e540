// Collecting score logs from several VMs: private sshd instances on loopback (each its own port, host
// key, client key and login user), each user's runner home holding a session and a score log made by
// the runner itself on a shifted clock (libfaketime), so runs spread over hours. One log is edited
// after it was written, one host has no server, one is pinned to the wrong host key and one never
// answers. Checked: the rows, the integrity statuses, per-host errors that do not stop the others, the
// plot, and the command-line tool end to end.

import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { streamEventSchema } from '../../src/core/runnerProtocol';
import { main } from '../../src/organiser/cli';
import { collect, type CollectProgress, type HostResult } from '../../src/organiser/collect';
import { loadHostSpecs, type HostSpec } from '../../src/organiser/hosts';
import { OUTPUT_FILES, runCollection, type CollectionSummary } from '../../src/organiser/output';
import { parseCollection, resultRow, RESULT_COLUMNS } from '../../src/organiser/results';
import { launchChromium } from '../../scripts/codeServer.mjs';
import { faketimeShmNames, libfaketimePath, removeFaketimeShm } from '../support/faketime';
import { FIXTURE_ENVIRONMENTS, REPO_ROOT, RUNNER_PATH, deepMerge, parseLines, runRunner } from '../support/runner';
import { freePort, sshLoginUser, startSshd, TEST_USER, writeKnownHosts, type Sshd } from '../support/sshd';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
/** Users of the VMs: names start with the test login user when it is ours, else with "rebench-coll". */
const USER_PREFIX = TEST_USER.startsWith('rebench-coll') ? TEST_USER : 'rebench-coll';
const HOUR = 3600;
const OUTPUT_DIR = path.join(REPO_ROOT, '.test-output', 'organiser');
const DIST_CLI = path.join(REPO_ROOT, 'dist', 'organiser.js');
const END_QUESTIONS = [{ id: 'effort', type: 'scale', text: 'How hard did you work?' }];

interface Step {
  /** Session seconds after the start (pauses count here: this is clock time since the start). */
  at: number;
  /** Written to score.txt before a scoring run ("nan" gives no score). */
  score?: string;
  action?: 'pause' | 'resume';
  /** A runner command of the participant's own (a note, the rules, giving up, the end answers). */
  command?: string[];
}

interface Participant {
  name: string;
  user: string;
  home: string;
  environment: string;
  /** The runner home on the VM; relative to the user's home. */
  runnerHome: string;
  /** How long before now (real time) the session started. */
  startedAgoS: number;
  steps: Step[];
  sshd?: Sshd;
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function makeUser(name: string): string {
  const { home } = sshLoginUser(name);
  for (const rel of ['.rebench', 'rebench', 'study']) fs.rmSync(path.join(home, rel), { recursive: true, force: true });
  return home;
}

/** Test environments: the slow scorer with an 8-hour limit and no delay, and two variants of it. */
function writeEnvironments(root: string): void {
  const base = path.join(FIXTURE_ENVIRONMENTS, 'slow-scorer');
  const variants: Record<string, Record<string, unknown>> = {
    'slow-scorer': { time_limit_s: 8 * HOUR },
    'last-demo': { id: 'last-demo', title: 'The last score counts (test)', time_limit_s: 8 * HOUR, scoring: { aggregation: 'last' } },
    'lower-demo': {
      id: 'lower-demo',
      title: 'Lower is better (test)',
      time_limit_s: 8 * HOUR,
      scoring: { direction: 'lower', starting_score: 10, reference_score: 2 },
    },
  };
  for (const [id, patch] of Object.entries(variants)) {
    const dir = path.join(root, id);
    fs.cpSync(base, dir, { recursive: true });
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(deepMerge(manifest, patch), null, 2));
    fs.writeFileSync(path.join(dir, 'solution', 'delay_s'), '0\n');
  }
}

/**
 * Makes a participant's session with the runner itself: set up, started `startedAgoS` ago and scored at
 * each step's time, each call on a clock shifted into the past by libfaketime. Then the runner home is
 * handed to the participant's user, as on their VM.
 */
async function makeSession(p: Participant, environments: string): Promise<void> {
  const home = path.join(p.home, p.runnerHome);
  const solution = path.join(p.home, 'rebench', p.environment);
  fs.mkdirSync(path.join(home, 'environments'), { recursive: true });
  fs.cpSync(path.join(environments, p.environment), path.join(home, 'environments', p.environment), { recursive: true });
  fs.copyFileSync(RUNNER_PATH, path.join(home, 'runner.pyz'));
  const lib = libfaketimePath();
  const run = async (args: string[], agoS?: number) => {
    const env = agoS === undefined ? {} : { LD_PRELOAD: lib, FAKETIME: `-${Math.round(agoS)}s` };
    const r = await runRunner(home, [...args, '--json'], { env });
    if (r.code !== 0) throw new Error(`runner ${args.join(' ')} for ${p.name} exited ${r.code}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  // Set up just before the session started, as it would have been (a later setup would be a clock set back).
  await run(['setup', '--environment', p.environment, '--solution-dir', solution], p.startedAgoS + 60);
  await run(['start'], p.startedAgoS);
  for (const step of p.steps) {
    const ago = p.startedAgoS - step.at;
    if (step.action || step.command) {
      await run(step.command ?? [step.action!], ago);
      continue;
    }
    fs.writeFileSync(path.join(solution, 'score.txt'), `${step.score}\n`);
    const events = parseLines(streamEventSchema, await run(['score', '--follow'], ago), `score for ${p.name}`);
    assert.ok(
      events.some((e) => e.type === 'entry'),
      `no entry for ${p.name} at ${step.at}`,
    );
  }
  sh('chown', ['-R', `${p.user}:${p.user}`, home, path.join(p.home, 'rebench')]);
}

/** Edits one entry of a score log after it was written: the score, nothing else. */
function tamper(logFile: string, line: number, score: number): void {
  const lines = fs.readFileSync(logFile, 'utf8').split('\n');
  const entry = JSON.parse(lines[line]!) as { score: number };
  entry.score = score;
  lines[line] = JSON.stringify(entry);
  fs.writeFileSync(logFile, lines.join('\n'));
}

/** A TCP server that accepts connections and never says a word: an SSH server that hangs. */
function silentServer(): Promise<{ port: number; close(): void }> {
  return new Promise((resolve) => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    });
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        port,
        close() {
          for (const s of sockets) s.destroy();
          server.close();
        },
      });
    });
  });
}

/** Builds dist/organiser.js when it is missing or older than its sources. */
function ensureBuilt(): void {
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => {
        const st = fs.statSync(path.join(dir, f));
        return st.isFile() ? st.mtimeMs : 0;
      }),
    );
  const sources = Math.max(newest(path.join(REPO_ROOT, 'src', 'organiser')), newest(path.join(REPO_ROOT, 'src', 'core')));
  const built = fs.existsSync(DIST_CLI) ? fs.statSync(DIST_CLI).mtimeMs : 0;
  if (built < sources || !fs.existsSync(path.join(REPO_ROOT, 'dist', 'ssh.js'))) {
    execFileSync(process.execPath, ['esbuild.js'], { cwd: REPO_ROOT, stdio: 'pipe' });
  }
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DIST_CLI, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, SSH_AUTH_SOCK: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A minimal RFC 4180 reader, to check the CSV as a spreadsheet would read it. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  if (field !== '' || row.length) rows.push([...row, field]);
  return rows;
}

describe('Collecting score logs from several VMs over SSH', function () {
  this.timeout(180_000);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-collect-'));
  const environments = path.join(scratch, 'environments');
  const profilesDir = path.join(scratch, 'profiles');
  const hostsFile = path.join(scratch, 'hosts.txt');
  const knownHosts = path.join(scratch, 'known_hosts');
  const shmBefore = faketimeShmNames();
  let closedPort = 0;
  let silent: { port: number; close(): void } | undefined;
  let specs: HostSpec[] = [];
  let results: HostResult[] = [];
  const progress: CollectProgress[] = [];
  const participants: Participant[] = [];
  const byName = (name: string) => {
    const r = results.find((x) => x.spec.participant === name);
    assert.ok(r, `no result for ${name}`);
    return r;
  };

  before(async function () {
    if (!isRoot) {
      console.log('      skipped: it creates a login user per VM and must run as root');
      this.skip();
    }
    ensureBuilt();
    writeEnvironments(environments);
    fs.mkdirSync(profilesDir);
    const user = (n: number) => `${USER_PREFIX}-p${n}`;
    const add = (p: Omit<Participant, 'home'>) => participants.push({ ...p, home: makeUser(p.user) });
    // alice: best counts; a pause of 2000 s; a run with no score; the best at 6.5 h.
    add({
      name: 'alice',
      user: user(1),
      environment: 'slow-scorer',
      runnerHome: '.rebench',
      startedAgoS: 8 * HOUR + 2000 + 600,
      steps: [
        { at: 0.4 * HOUR, score: '2.0' },
        { at: 1.5 * HOUR, score: '4.5' },
        { at: 2.5 * HOUR, score: '3.9' },
        { at: 3 * HOUR, action: 'pause' },
        { at: 3 * HOUR + 2000, action: 'resume' },
        { at: 4 * HOUR + 2000, score: '7.2' },
        { at: 5 * HOUR + 2000, score: 'nan' },
        { at: 6.5 * HOUR + 2000, score: '8.8' },
      ],
    });
    // bob: he gives up half an hour before the end; his log is edited afterwards (line 1's 3.0 becomes 12).
    add({
      name: 'bob',
      user: user(2),
      environment: 'slow-scorer',
      runnerHome: '.rebench',
      startedAgoS: 8 * HOUR + 900,
      steps: [
        { at: 0.5 * HOUR, score: '1.0' },
        { at: 2 * HOUR, score: '3.0' },
        { at: 3 * HOUR, score: '6.0' },
        { at: 7 * HOUR, score: '9.5' },
        { at: 7.5 * HOUR, command: ['give-up', '--reason', 'out of ideas'] },
      ],
    });
    // carol: the last score counts, and it is lower than her best.
    add({
      name: 'carol',
      user: user(3),
      environment: 'last-demo',
      runnerHome: '.rebench',
      startedAgoS: 8 * HOUR + 300,
      // She confirms the rules, writes a note and answers the end questions after the end.
      steps: [
        { at: 60, command: ['confirm-rules', '--request', JSON.stringify({ rules: ['Work alone'] })] },
        { at: 1 * HOUR, score: '5' },
        { at: 2 * HOUR, command: ['note', '--text', 'tried a larger batch, "slower"'] },
        { at: 3 * HOUR, score: '8' },
        { at: 6 * HOUR, score: '6' },
        { at: 8 * HOUR + 120, command: ['answer', '--request', JSON.stringify({ questions: END_QUESTIONS, answers: { effort: 4 } })] },
      ],
    });
    // dave: lower is better, the session still running, the runner in a home of his own (runner_command).
    add({
      name: 'dave',
      user: user(4),
      environment: 'lower-demo',
      runnerHome: 'study/home',
      startedAgoS: 3 * HOUR,
      steps: [
        { at: 0.2 * HOUR, score: '9' },
        { at: 1 * HOUR, score: '6' },
        { at: 2.5 * HOUR, score: '4' },
      ],
    });
    for (const p of participants) {
      await makeSession(p, environments);
      p.sshd = await startSshd();
      // Each VM has its own client key: authorised for whoever logs in to that server.
      fs.chmodSync(p.sshd.clientKeyPath, 0o600);
    }
    const [alice, bob, carol, dave] = participants as [Participant, Participant, Participant, Participant];
    tamper(path.join(bob.home, '.rebench', 'state', 'score.log.jsonl'), 1, 12);

    // Profiles: alice (pinned), dave (pinned, own runner command), frank (alice's VM pinned to bob's key).
    const profile = (p: Participant, extra: Record<string, unknown> = {}) => ({
      name: p.name,
      host: '127.0.0.1',
      port: p.sshd!.port,
      user: p.user,
      host_key_fingerprint: p.sshd!.hostFingerprint,
      environment: p.environment,
      identity_file: p.sshd!.clientKeyPath,
      ...extra,
    });
    fs.writeFileSync(path.join(profilesDir, 'alice.json'), JSON.stringify(profile(alice)));
    fs.writeFileSync(
      path.join(profilesDir, 'dave.json'),
      JSON.stringify(profile(dave, { runner_command: 'python3 ~/study/home/runner.pyz --home ~/study/home' })),
    );
    fs.writeFileSync(path.join(profilesDir, 'frank.json'), JSON.stringify(profile(alice, { name: 'frank', host_key_fingerprint: bob.sshd!.hostFingerprint })));
    // The hosts file: bob pinned; carol checked against a known_hosts file; eve on a port with no server.
    closedPort = await freePort();
    writeKnownHosts(knownHosts, '127.0.0.1', carol.sshd!.port, carol.sshd!.hostPublicKey, carol.sshd!.hostKeyType);
    fs.writeFileSync(
      hostsFile,
      [
        '# participants on the hosts file',
        `bob   ${bob.user}@127.0.0.1:${bob.sshd!.port}  ${bob.sshd!.hostFingerprint}  identity=${bob.sshd!.clientKeyPath}  environment=slow-scorer`,
        `carol ${carol.user}@127.0.0.1:${carol.sshd!.port}  identity=${carol.sshd!.clientKeyPath}`,
        '',
        `eve   ${user(5)}@127.0.0.1:${closedPort}  ${alice.sshd!.hostFingerprint}  # nothing listens here`,
      ].join('\n'),
    );
  });

  after(async () => {
    silent?.close();
    for (const p of participants) await p.sshd?.stop();
    removeFaketimeShm(shmBefore);
    for (const p of participants) {
      try {
        execFileSync('userdel', ['-r', p.user], { stdio: 'ignore' });
      } catch {
        // already gone, or a process of it lives on: the next run reuses the user
      }
    }
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('reads every host at most two at a time; a closed port and a wrong host key fail on their own', async () => {
    const loaded = loadHostSpecs([profilesDir, hostsFile]);
    assert.deepEqual(loaded.errors, []);
    specs = loaded.specs;
    assert.deepEqual(
      specs.map((s) => s.participant),
      ['alice', 'dave', 'frank', 'bob', 'carol', 'eve'],
    );
    let active = 0;
    let maxActive = 0;
    results = await collect(specs, {
      concurrency: 2,
      knownHostsFiles: [knownHosts],
      agent: false,
      onProgress: (p) => {
        progress.push(p);
        if (p.phase === 'connecting') maxActive = Math.max(maxActive, ++active);
        if (p.phase === 'done' || p.phase === 'failed') active--;
      },
    });
    assert.equal(maxActive, 2, 'two hosts at a time');
    assert.deepEqual(
      results.map((r) => r.spec.participant),
      specs.map((s) => s.participant),
    );
    const ends = progress.filter((p) => p.phase === 'done' || p.phase === 'failed');
    assert.deepEqual(
      ends.map((p) => p.finished).sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6],
    );
    assert.deepEqual(new Set(ends.map((p) => p.index)).size, 6);

    assert.deepEqual(
      results.map((r) => [r.spec.participant, r.ok, r.integrity]),
      [
        ['alice', true, 'intact'],
        ['dave', true, 'intact'],
        ['frank', false, 'unknown'],
        ['bob', true, 'broken'],
        ['carol', true, 'intact'],
        ['eve', false, 'unknown'],
      ],
    );
    const frank = byName('frank');
    assert.equal(frank.errorCode, 'host-key-mismatch');
    assert.match(frank.error ?? '', /pins SHA256:.*Nothing was sent/);
    const eve = byName('eve');
    assert.equal(eve.errorCode, 'network');
    assert.match(eve.error ?? '', new RegExp(`127\\.0\\.0\\.1:${closedPort}|ECONNREFUSED|refused`));
    assert.match(eve.integrityDetail ?? '', /^not checked: /);

    const bob = byName('bob');
    assert.equal(bob.verify?.intact, false);
    assert.equal(bob.verify?.first_bad, 1);
    assert.match(bob.integrityDetail ?? '', /line 1: hash does not match its contents/);
    assert.equal(bob.status?.log_intact, false);

    const dave = byName('dave');
    assert.equal(dave.status?.state, 'running');
    assert.equal(dave.status?.solution_dir, path.join(participants[3]!.home, 'rebench', 'lower-demo'));
    for (const name of ['alice', 'bob', 'carol']) assert.equal(byName(name).status?.state, 'ended', name);
    // The archived copy is the VM's log byte for byte.
    for (const p of participants) {
      assert.equal(byName(p.name).rawLog, fs.readFileSync(path.join(p.home, p.runnerHome, 'state', 'score.log.jsonl'), 'utf8'), p.name);
    }
  });

  it('makes one row per participant with best, last and counted scores, raw and normalised', () => {
    const rows = Object.fromEntries(results.map((r) => [r.spec.participant, resultRow(r)]));
    const near = (actual: number | null, expected: number, tolerance: number, what: string) => {
      assert.ok(actual !== null && Math.abs(actual - expected) <= tolerance, `${what}: ${actual} is not within ${tolerance} of ${expected}`);
    };
    const alice = rows.alice!;
    assert.equal(alice.environment, 'slow-scorer');
    assert.equal(alice.best_score, 8.8);
    near(alice.best_normalised, 0.88, 1e-9, 'alice best normalised');
    assert.equal(alice.counted_score, 8.8);
    assert.equal(alice.last_score, 8.8);
    near(alice.best_elapsed_s, 6.5 * HOUR, 120, 'alice best at (pauses excluded)');
    assert.equal(alice.scoring_runs, 6);
    assert.equal(alice.runs_with_score, 5);
    assert.equal(alice.runs_not_counting, 0);
    near(alice.paused_s, 2000, 30, 'alice paused');
    assert.equal(alice.session_state, 'ended');
    assert.equal(alice.time_limit_s, 8 * HOUR);
    near(alice.elapsed_s, 8 * HOUR, 1, 'alice elapsed');
    assert.equal(alice.integrity, 'intact');
    assert.ok(alice.started_at && alice.ended_at && Date.parse(alice.ended_at) - Date.parse(alice.started_at) >= (8 * HOUR + 2000) * 1000 - 1000);

    // bob's edited entry is still listed (the runner lists well-formed lines); the row says the log is broken.
    const bob = rows.bob!;
    assert.equal(bob.best_score, 12);
    assert.equal(bob.integrity, 'broken');
    assert.match(bob.integrity_detail ?? '', /line 1/);

    const carol = rows.carol!;
    assert.equal(carol.aggregation, 'last');
    assert.equal(carol.counted_score, 6);
    assert.equal(carol.best_score, 8);
    near(carol.best_elapsed_s, 3 * HOUR, 120, 'carol best at');
    near(carol.last_elapsed_s, 6 * HOUR, 120, 'carol last at');
    near(carol.counted_normalised, 0.6, 1e-9, 'carol counted normalised');

    // The session record's columns: what each participant recorded, empty for hosts not read.
    assert.deepEqual(
      ['alice', 'bob', 'carol', 'dave', 'eve'].map((n) => [n, rows[n]!.notes, rows[n]!.rules_confirmed_at !== null, rows[n]!.gave_up, rows[n]!.end_answers]),
      [
        ['alice', 0, false, null, null],
        ['bob', 0, false, 'out of ideas', null],
        ['carol', 1, true, null, '{"effort":4}'],
        ['dave', 0, false, null, null],
        ['eve', null, false, null, null],
      ],
    );
    near((Date.parse(carol.rules_confirmed_at!) - Date.parse(carol.started_at!)) / 1000, 60, 30, 'carol confirmed the rules');

    const dave = rows.dave!;
    assert.equal(dave.direction, 'lower');
    assert.equal(dave.best_score, 4);
    near(dave.best_normalised, 0.75, 1e-9, 'dave normalised (lower is better)');
    assert.equal(dave.session_state, 'running');
    assert.equal(dave.ended_at, null);

    const eve = rows.eve!;
    assert.equal(eve.environment, null);
    assert.equal(eve.scoring_runs, 0);
    assert.equal(eve.integrity, 'unknown');
    assert.ok(eve.error);
  });

  it('gives up on a host that never answers after its time limit, without waiting for the others', async () => {
    silent = await silentServer();
    const [alice] = specs;
    const hung: HostSpec = { ...alice!, participant: 'gina', port: silent.port, source: 'test' };
    const started = Date.now();
    // The limit leaves the host that answers time to be read on a busy machine.
    const [gina, again] = await collect([hung, alice!], { hostTimeoutMs: 6000, agent: false, concurrency: 2 });
    assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
    assert.equal(gina!.ok, false);
    assert.equal(gina!.errorCode, 'timeout');
    assert.match(gina!.error ?? '', /did not finish within 6 s/);
    assert.equal(again!.ok, true, `the other host was read: ${again!.error ?? ''}`);
    assert.equal(again!.integrity, 'intact');
  });

  it('stops when cancelled: the host under way and those still waiting fail as cancelled', async () => {
    const [alice] = specs;
    const hung: HostSpec = { ...alice!, participant: 'gina', port: silent!.port, source: 'test' };
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 500);
    const started = Date.now();
    const got = await collect([hung, alice!], { agent: false, concurrency: 1, signal: abort.signal });
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    assert.deepEqual(
      got.map((r) => [r.spec.participant, r.ok, r.errorCode]),
      [
        ['gina', false, 'cancelled'],
        ['alice', false, 'cancelled'],
      ],
    );
    assert.match(got[0]!.error ?? '', /cancelled before .* was read/);
  });

  it('writes the table, the plot, the logs and the collection; the plot shows each environment and flags the edited log', async function () {
    const out = path.join(scratch, 'api-out');
    const summary: CollectionSummary = await runCollection(specs, out, { knownHostsFiles: [knownHosts], agent: false, concurrency: 6 });
    assert.equal(summary.read, 4);
    assert.equal(summary.failed, 2);
    assert.equal(summary.notIntact, 1);
    assert.equal(summary.files.logs.length, 4);
    for (const f of summary.files.logs) assert.ok(fs.statSync(f).size > 0, f);

    const csv = parseCsv(fs.readFileSync(summary.files.csv, 'utf8'));
    assert.deepEqual(csv[0], [...RESULT_COLUMNS]);
    assert.equal(csv.length, 7);
    const col = (name: string) => RESULT_COLUMNS.indexOf(name as (typeof RESULT_COLUMNS)[number]);
    // Grouped by environment, best first; hosts not read last.
    assert.deepEqual(
      csv.slice(1).map((r) => r[col('participant')]),
      ['carol', 'dave', 'bob', 'alice', 'frank', 'eve'],
    );
    assert.deepEqual(
      csv.slice(1).map((r) => r[col('integrity')]),
      ['intact', 'intact', 'broken', 'intact', 'unknown', 'unknown'],
    );
    assert.equal(csv[4]![col('best_normalised')], '0.88');
    assert.match(csv[5]![col('error')]!, /pins SHA256/);
    assert.equal(csv[1]![col('end_answers')], '{"effort":4}');
    assert.equal(csv[1]![col('notes')], '1');
    assert.equal(csv[3]![col('gave_up')], 'out of ideas');
    assert.equal(csv[6]![col('notes')], '', 'a host not read has no record');

    const json = JSON.parse(fs.readFileSync(summary.files.json, 'utf8')) as {
      rows: Array<Record<string, unknown>>;
      environments: Array<Record<string, unknown>>;
    };
    assert.equal(json.rows.length, 6);
    assert.deepEqual(
      json.environments.map((e) => [e.environment, e.participants, e.logs_not_intact]),
      [
        ['last-demo', 1, 0],
        ['lower-demo', 1, 0],
        ['slow-scorer', 2, 1],
      ],
    );
    const collection = parseCollection(fs.readFileSync(summary.files.collection, 'utf8'), 'collection.json');
    assert.ok(collection.ok, collection.ok ? '' : collection.error);

    // The session record of every host read, and the kept solution of each counting run.
    const records = fs.readdirSync(path.join(out, OUTPUT_FILES.records)).sort();
    assert.equal(records.length, 4, records.join(', '));
    for (const f of records) {
      const r = JSON.parse(fs.readFileSync(path.join(out, OUTPUT_FILES.records, f), 'utf8')) as { intact: boolean; records: unknown[] };
      assert.equal(r.intact, true, f);
    }
    const solutions = fs.readdirSync(path.join(out, OUTPUT_FILES.solutions)).sort();
    for (const r of summary.results.filter((h) => h.ok)) {
      const counted = r.status?.counted?.index;
      if (counted === undefined || counted === null) continue;
      const name = solutions.find((f) => f.startsWith(String(r.index + 1).padStart(2, '0')) && f.endsWith(`-run${counted + 1}.tar.gz`));
      assert.ok(name, `the counting run ${counted + 1} of ${r.spec.participant} is kept (${solutions.join(', ')})`);
      assert.equal(
        fs
          .readFileSync(path.join(out, OUTPUT_FILES.solutions, name))
          .subarray(0, 2)
          .toString('hex'),
        '1f8b',
        `${name} is a gzip'd tar`,
      );
    }
    assert.equal(solutions.length, summary.results.filter((h) => h.ok && h.status?.counted).length, 'only the counting runs without --all-solutions');

    const svg = fs.readFileSync(summary.files.plot, 'utf8');
    assert.equal((svg.match(/<g class="panel"/g) ?? []).length, 3);
    for (const [env, names] of [
      ['slow-scorer', ['alice', 'bob']],
      ['last-demo', ['carol']],
      ['lower-demo', ['dave']],
    ] as const) {
      const panel = svg.slice(svg.indexOf(`data-environment="${env}"`));
      const end = panel.indexOf('<g class="panel"', 10);
      const body = end > 0 ? panel.slice(0, end) : panel;
      for (const n of names) {
        assert.match(body, new RegExp(`<g class="series" data-participant="${n}"`), `${n}'s line in ${env}`);
        assert.match(body, new RegExp(`<g class="legend-item" data-participant="${n}"`), `${n} in the legend of ${env}`);
      }
    }
    assert.equal((svg.match(/gave up at 7\.5 h/g) ?? []).length, 1, 'bob gave up: his legend entry says when');
    assert.match(svg, /<g class="legend-item" data-participant="bob" data-integrity="broken">.*score log NOT intact/);
    assert.match(svg, /Not collected \(2\)/);
    assert.match(svg, /frank \(/);

    // Rendered for a person to look at: .test-output/organiser/plot.png.
    fs.mkdirSync(OUTPUT_DIR, { recursive: true });
    fs.copyFileSync(summary.files.plot, path.join(OUTPUT_DIR, 'plot.svg'));
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ deviceScaleFactor: 2 });
      await page.goto(`file://${summary.files.plot}`);
      const box = await page.locator('svg').boundingBox();
      assert.ok(box && box.width > 600 && box.height > 400, `the SVG renders (${JSON.stringify(box)})`);
      await page.locator('svg').screenshot({ path: path.join(OUTPUT_DIR, 'plot.png') });
    } finally {
      await browser.close();
    }
    assert.ok(fs.statSync(path.join(OUTPUT_DIR, 'plot.png')).size > 20_000);
  });

  it('the command-line tool collects end to end, reports progress and problems, and exits 4 for a log that is not intact', async () => {
    const out = path.join(scratch, 'cli-out');
    const r = await runCli(['collect', '--out', out, '--known-hosts', knownHosts, '--no-agent', '-j', '3', profilesDir, hostsFile]);
    assert.equal(r.code, 4, `${r.stdout}\n${r.stderr}`);
    // Not a terminal: one plain line per host, no bar.
    assert.match(r.stderr, /^Collecting from 6 hosts…$/m);
    assert.equal((r.stderr.match(/^\[\d\/6\] /gm) ?? []).length, 6, r.stderr);
    assert.match(r.stderr, /^\[\d\/6\] eve: FAILED: /m);
    assert.doesNotMatch(r.stderr, /\r/);
    assert.match(r.stdout, /^Read 4 of 6 hosts; wrote /m);
    assert.match(r.stdout, /^bob +slow-scorer +12 +1\.2 +4 +- +NOT INTACT$/m);
    assert.match(r.stdout, /^Score log NOT intact: bob \(.*\): line 1: hash does not match/m);
    assert.match(r.stdout, /^Not read: eve /m);
    assert.match(r.stdout, /^Not read: frank .*pins/m);
    for (const f of ['results.csv', 'results.json', 'plot.svg', 'collection.json']) assert.ok(fs.existsSync(path.join(out, f)), f);
    assert.deepEqual(fs.readdirSync(path.join(out, 'logs')).sort(), [
      '01-alice.score.log.jsonl',
      '02-dave.score.log.jsonl',
      '04-bob.score.log.jsonl',
      '05-carol.score.log.jsonl',
    ]);

    // report: the same table again from the saved collection, with nothing fetched.
    const again = path.join(scratch, 'report-out');
    const rep = await runCli(['report', path.join(out, 'collection.json'), '--out', again]);
    assert.equal(rep.code, 0, rep.stderr);
    const strip = (csv: string) => csv.split('\r\n').map((l) => l.replace(/,logs\/[^,]*,/, ',,'));
    assert.deepEqual(strip(fs.readFileSync(path.join(again, 'results.csv'), 'utf8')), strip(fs.readFileSync(path.join(out, 'results.csv'), 'utf8')));

    // Only the hosts that work: exit 0.
    const ok = await runCli(['collect', '-o', path.join(scratch, 'cli-ok'), '--no-agent', '-q', path.join(profilesDir, 'alice.json')]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal(ok.stderr, '');
    // A host that cannot be read, and nothing broken: exit 3.
    const some = await runCli([
      'collect',
      '-o',
      path.join(scratch, 'cli-some'),
      '--no-agent',
      '-q',
      path.join(profilesDir, 'alice.json'),
      path.join(profilesDir, 'frank.json'),
    ]);
    assert.equal(some.code, 3, some.stdout + some.stderr);
  });

  it('draws one progress bar on a terminal, redrawn in place, with failures on lines of their own', async () => {
    const out: string[] = [];
    const err: string[] = [];
    let screen = '';
    const code = await main(['collect', '-o', path.join(scratch, 'tty-out'), '--no-agent', '--known-hosts', knownHosts, profilesDir, hostsFile], {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      tty: { write: (t) => (screen += t), columns: 100 },
    });
    assert.equal(code, 4);
    assert.deepEqual(err, ['Collecting from 6 hosts…']);
    const frames = screen.split('\r\x1b[2K').filter(Boolean);
    assert.ok(frames.length >= 6, `${frames.length} frames`);
    for (const f of frames.filter((f) => f.startsWith('['))) {
      assert.match(f, /^\[[#.]{24}\] \d\/6 hosts/);
      assert.ok(f.length < 100, f);
      assert.doesNotMatch(f, /\n/);
    }
    assert.ok(
      frames.some((f) => /^\[#{24}\] 6\/6 hosts, 2 failed/.test(f)),
      frames.join('\n'),
    );
    assert.ok(frames.some((f) => /^eve: FAILED: .*\n$/.test(f)));
    assert.ok(screen.endsWith('\r\x1b[2K'), 'the bar is cleared at the end');
    assert.match(out.join('\n'), /^Read 4 of 6 hosts/m);
  });

  it('the command-line tool explains its usage and refuses bad input before connecting anywhere', async () => {
    const help = await runCli(['collect', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--known-hosts FILE/);
    const none = await runCli([]);
    assert.equal(none.code, 2);
    assert.match(none.stdout, /rebench-organiser collect --out DIR/);
    const noOut = await runCli(['collect', hostsFile]);
    assert.equal(noOut.code, 2);
    assert.match(noOut.stderr, /collect needs --out DIR/);
    const bad = path.join(scratch, 'bad-hosts.txt');
    fs.writeFileSync(bad, 'zed someone@host:99999\n');
    const badRun = await runCli(['collect', '-o', path.join(scratch, 'never'), bad, path.join(scratch, 'missing.json')]);
    assert.equal(badRun.code, 2);
    assert.match(badRun.stderr, /bad-hosts\.txt:1: the port in "someone@host:99999" must be 1 to 65535/);
    assert.match(badRun.stderr, /missing\.json does not exist/);
    assert.ok(!fs.existsSync(path.join(scratch, 'never')), 'nothing written');
    const unknown = await runCli(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown command "frobnicate"/);
  });
});

// The runner as a real process in temporary homes; every --json reply is checked with the protocol's schemas.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  RUNNER_EXIT,
  RUNNER_VERSION,
  errorReplySchema,
  logReplySchema,
  statusSchema,
  streamEventSchema,
  verifySchema,
  type ScoreLogEntry,
  type StreamEvent,
} from '../../src/core/runnerProtocol';
import {
  REPO_ROOT,
  RUNNER_PATH,
  SHIPPED_ENVIRONMENTS,
  makeHome,
  parseLines,
  parseWith,
  processAlive,
  runRunner,
  waitFor,
  type TestHome,
} from '../support/runner';
import { z } from 'zod';

const jobLineSchema = streamEventSchema;
const exportReplySchema = z.object({ path: z.string(), format: z.string(), entries: z.number() });
const importReplySchema = z.object({
  source: z.string(),
  notes: z.array(z.string()),
  entries: z.array(
    z.object({
      index: z.number(),
      timestamp: z.string().nullable(),
      timestamp_raw: z.string(),
      timestamp_assumed_utc: z.boolean(),
      score: z.number().nullable(),
      message: z.string(),
      details: z.unknown(),
    }),
  ),
});
const instructionsSchema = z.object({ markdown: z.string(), title: z.string() });

interface Followed {
  events: StreamEvent[];
  entry: ScoreLogEntry;
  text: string;
}

/** Splits a stream into its events and checks their order: job, output..., entry. */
function followed(stdout: string, what: string): Followed {
  const events = parseLines(streamEventSchema, stdout, what);
  assert.equal(events[0]?.type, 'job', `${what}: the first event is the job`);
  const last = events[events.length - 1];
  assert.ok(last && last.type === 'entry', `${what}: the last event is the entry:\n${stdout}`);
  let text = '';
  const start = events[0]?.type === 'job' ? events[0].output_offset : 0;
  for (const e of events.slice(1, -1)) {
    assert.equal(e.type, 'output', `${what}: only output between job and entry`);
    if (e.type === 'output') {
      text += e.text;
      // Whole characters only: each offset is exactly where the text sent so far ends, in bytes.
      assert.equal(e.offset, start + Buffer.byteLength(text), `${what}: offset after ${JSON.stringify(text)}`);
    }
  }
  return { events, entry: last.entry, text };
}

async function scoreFollow(h: TestHome, what = 'score --follow'): Promise<Followed> {
  const r = await h.run(['score', '--follow', '--json']);
  assert.equal(r.code, 0, `${what}: ${r.stdout}${r.stderr}`);
  return followed(r.stdout, what);
}

function logLines(h: TestHome): string[] {
  return fs.readFileSync(h.statePath('score.log.jsonl'), 'utf8').split('\n').slice(0, -1);
}

function writeLog(h: TestHome, lines: string[]): void {
  fs.writeFileSync(h.statePath('score.log.jsonl'), lines.map((l) => `${l}\n`).join(''));
}

function setStartedAt(h: TestHome, epochMs: number): void {
  const file = h.statePath('session.json');
  const session = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  session.started_at = new Date(epochMs).toISOString();
  fs.writeFileSync(file, JSON.stringify(session));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('runner (real process, temporary home)', function () {
  this.timeout(60_000);
  const homes: TestHome[] = [];
  async function home(envId: string, options: Parameters<typeof makeHome>[1] = {}): Promise<TestHome> {
    const h = await makeHome(envId, options);
    homes.push(h);
    return h;
  }
  after(() => homes.forEach((h) => h.cleanup()));

  it('is an executable Python archive whose version equals the protocol version', async () => {
    const mode = fs.statSync(RUNNER_PATH).mode;
    assert.ok(mode & 0o111, 'runner.pyz is executable');
    assert.match(fs.readFileSync(RUNNER_PATH, 'latin1'), /^#!\/usr\/bin\/env python3\nPK/);
    const r = await runRunner(os.tmpdir(), ['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), RUNNER_VERSION);
  });

  it('says how to set up when the home has no runner.json', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-empty-'));
    try {
      const r = await runRunner(empty, ['status', '--json']);
      assert.equal(r.code, RUNNER_EXIT.environment);
      const reply = parseWith(errorReplySchema, r.stdout, 'status');
      assert.equal(reply.error.code, 'environment');
      assert.match(reply.error.message, /setup --environment/);
      const human = await runRunner(empty, ['status']);
      assert.equal(human.code, RUNNER_EXIT.environment);
      assert.match(human.stderr, /not set up/);
      const bad = await runRunner(empty, ['score', '--bogus', '--json']);
      assert.equal(bad.code, RUNNER_EXIT.usage);
      assert.equal(parseWith(errorReplySchema, bad.stdout, 'usage').error.code, 'usage');
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  it('rejects a broken manifest with the file, the field and what is wrong', async () => {
    const h = await home('slow-scorer', { setup: false });
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ scoring: { direction: 'up' } }, /scoring\.direction: expected 'higher' or 'lower'/],
      [{ colour: 'red' }, /unknown field 'colour'/],
      [{ scoring: { starting_score: 10 } }, /starting_score and reference_score must differ/],
      [{ instructions: '../secret.md' }, /instructions: expected a path inside the environment folder/],
      [{ time_limit_s: 59 }, /time_limit_s: expected a whole number of seconds from 60/],
      [{ hardware: { gpus: 1, tpus: 2 } }, /hardware: unknown field 'tpus'/],
      [{ id: 'other-id' }, /id is 'other-id' but the folder is named 'slow-scorer'/],
    ];
    for (const [patch, pattern] of cases) {
      h.patchManifest(patch);
      const err = await h.error(['setup', '--environment', 'slow-scorer', '--solution-dir', h.solutionDir], 'environment', 5);
      assert.match(err.message, pattern);
      assert.ok(err.message.includes(path.join(h.envDir, 'manifest.json')), err.message);
    }
    const missing = await h.error(['setup', '--environment', 'no-such-env'], 'environment', 5);
    assert.match(missing.message, /not installed/);
    h.patchManifest({});
    const status = await h.json(statusSchema, ['setup', '--environment', 'slow-scorer', '--solution-dir', h.solutionDir]);
    assert.equal(status.environment.id, 'slow-scorer');
  });

  it('sets up, reports the status before the start, and never overwrites the solution', async () => {
    const h = await home('slow-scorer');
    const s = await h.json(statusSchema, ['status']);
    assert.equal(s.runner_version, RUNNER_VERSION);
    assert.equal(s.mode, 'unprotected');
    assert.equal(s.state, 'not_started');
    assert.equal(s.started_at, null);
    assert.equal(s.deadline, null);
    assert.equal(s.seconds_left, null);
    assert.equal(s.elapsed_s, 0);
    assert.equal(s.job, null);
    assert.equal(s.entries, 0);
    assert.equal(s.counted, null);
    assert.equal(s.log_intact, true);
    assert.equal(s.solution_dir, h.solutionDir);
    assert.deepEqual(s.environment, {
      id: 'slow-scorer',
      title: 'Slow scorer (test environment)',
      version: '1.0.0',
      direction: 'higher',
      aggregation: 'best',
      starting_score: 0,
      manifest_starting_score: 0,
      starting_score_measured_at: null,
      calibration_pending: null,
      visible: 'all',
      reference_score: 10,
      time_limit_s: 3600,
      pauses_allowed: true,
      instructions_before_start: false,
      gpus: 0,
      gpu_model: null,
      min_free_disk_gb: 1,
      scoring_timeout_s: 60,
      submit: null,
    });
    assert.equal(s.aggregate, null, 'the environment records no aggregate');
    assert.ok(Math.abs(Date.parse(s.now) - Date.now()) < 5000);
    assert.equal(fs.readFileSync(path.join(h.solutionDir, 'delay_s'), 'utf8'), '5\n');
    h.writeSolution('delay_s', '0.1\n');
    await h.json(statusSchema, ['setup', '--environment', 'slow-scorer', '--solution-dir', h.solutionDir]);
    assert.equal(fs.readFileSync(path.join(h.solutionDir, 'delay_s'), 'utf8'), '0.1\n', 'participant work kept');
    const config = JSON.parse(fs.readFileSync(path.join(h.home, 'runner.json'), 'utf8'));
    assert.deepEqual(config, {
      mode: 'unprotected',
      environment: 'slow-scorer',
      environments_dir: h.environmentsDir,
      state_dir: h.stateDir,
      solution_dir: h.solutionDir,
      scoring_user: null,
    });
  });

  it('switches environment before the start but refuses to once the session has started', async () => {
    const h = await home('slow-scorer', { alsoInstall: ['tricky-scorer'] });
    const other = path.join(h.home, 'other-solution');
    let s = await h.json(statusSchema, ['setup', '--environment', 'tricky-scorer', '--solution-dir', other]);
    assert.equal(s.environment.id, 'tricky-scorer');
    assert.ok(fs.existsSync(path.join(other, 'behaviour')));
    s = await h.json(statusSchema, ['setup', '--environment', 'slow-scorer', '--solution-dir', h.solutionDir]);
    assert.equal(s.environment.id, 'slow-scorer');
    await h.json(statusSchema, ['start']);
    const err = await h.error(['setup', '--environment', 'tricky-scorer'], 'refused', RUNNER_EXIT.refused);
    assert.match(err.message, /already started/);
    const moved = await h.error(['setup', '--environment', 'slow-scorer', '--solution-dir', other], 'refused', 4);
    assert.match(moved.message, /cannot move/);
    s = await h.json(statusSchema, ['setup', '--environment', 'slow-scorer']);
    assert.equal(s.state, 'running');
  });

  it('starts once: a second start changes nothing', async () => {
    const h = await home('slow-scorer');
    const first = await h.json(statusSchema, ['start']);
    assert.equal(first.state, 'running');
    assert.ok(first.started_at && first.deadline);
    assert.equal(Date.parse(first.deadline) - Date.parse(first.started_at), 3600_000);
    assert.ok(first.seconds_left !== null && first.seconds_left > 3590 && first.seconds_left <= 3600);
    await sleep(300);
    const second = await h.json(statusSchema, ['start']);
    assert.equal(second.started_at, first.started_at);
    assert.equal(second.deadline, first.deadline);
    assert.ok(second.elapsed_s >= 0.25, `elapsed ${second.elapsed_s}`);
    assert.equal(h.events().filter((e) => e.event === 'start').length, 1);
  });

  it('refuses the instructions before the start and shows them after', async () => {
    const h = await home('slow-scorer');
    const err = await h.error(['instructions'], 'refused', RUNNER_EXIT.refused);
    assert.match(err.message, /once the session starts/);
    assert.ok(h.events().some((e) => e.event === 'refused' && e.action === 'instructions'));
    await h.json(statusSchema, ['start']);
    const doc = await h.json(instructionsSchema, ['instructions']);
    assert.equal(doc.title, 'Slow scorer (test environment)');
    assert.match(doc.markdown, /^# Slow scorer/);
    const human = await h.run(['instructions']);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /\$\$ y_n = /);
    const early = await home('tricky-scorer');
    const before = await early.json(instructionsSchema, ['instructions']);
    assert.match(before.markdown, /Misbehaving scorer/, 'instructions_before_start: true');
  });

  it('refuses to score before the start and records the refusal', async () => {
    const h = await home('slow-scorer');
    const err = await h.error(['score'], 'refused', RUNNER_EXIT.refused);
    assert.match(err.message, /has not started/);
    const refusal = h.events().find((e) => e.event === 'refused' && e.action === 'score');
    assert.ok(refusal && typeof refusal.time === 'string' && /not started/.test(String(refusal.reason)));
  });

  it('score --follow streams the output, then the entry that the log holds', async () => {
    const h = await home('slow-scorer');
    h.writeSolution('delay_s', '1.2\n');
    h.writeSolution('score.txt', '4\n');
    const started = await h.json(statusSchema, ['start']);
    const { events, entry, text } = await scoreFollow(h);
    assert.ok(events.length >= 4, 'several output chunks arrive while the job runs');
    assert.match(text, /waiting 1\.2 s\nworking 1\nworking 2\n(working 3\n)?done\n$/);
    const job = events[0];
    assert.ok(job?.type === 'job' && job.output_offset === 0 && job.job_id === entry.job_id);
    const logFile = path.join(h.stateDir, 'jobs', entry.job_id, 'output.log');
    assert.equal(fs.readFileSync(logFile, 'utf8'), text);
    const lastOutput = events[events.length - 2];
    assert.ok(lastOutput?.type === 'output' && lastOutput.offset === fs.statSync(logFile).size);
    assert.equal(entry.index, 0);
    assert.equal(entry.kind, 'score');
    assert.equal(entry.score, 4);
    assert.equal(entry.exit_code, 0);
    assert.equal(entry.signal, null);
    assert.equal(entry.timed_out, false);
    assert.equal(entry.killed, false);
    assert.equal(entry.counts, true);
    assert.equal(entry.message, 'score read from score.txt');
    assert.equal(entry.output_bytes, Buffer.byteLength(text));
    assert.match(entry.solution_hash, /^sha256:[0-9a-f]{64}$/);
    assert.ok(entry.duration_s >= 1.2 && entry.duration_s < 10);
    assert.ok(Date.parse(entry.started_at) >= Date.parse(started.started_at ?? ''));
    assert.ok(Date.parse(entry.ended_at) >= Date.parse(entry.started_at) + 1200);
    const log = await h.json(logReplySchema, ['log']);
    assert.deepEqual(log.entries, [entry]);
    const status = await h.json(statusSchema, ['status']);
    assert.deepEqual(status.counted, { index: 0, score: 4, normalized: 0.4 });
    assert.equal(status.entries, 1);
    assert.equal(status.job, null);
    assert.deepEqual(await h.json(verifySchema, ['verify']), { intact: true, entries: 1, first_bad: null, reason: null });
    // The same solution hashes the same; a change changes the hash.
    h.writeSolution('delay_s', '0\n');
    const again = (await scoreFollow(h)).entry;
    h.writeSolution('delay_s', '0.0\n');
    const changed = (await scoreFollow(h)).entry;
    assert.notEqual(again.solution_hash, entry.solution_hash);
    assert.notEqual(changed.solution_hash, again.solution_hash);
    assert.equal(changed.prev_hash, again.hash);
    assert.equal(again.prev_hash, entry.hash);
    const from1 = await h.json(logReplySchema, ['log', '--from', '1']);
    assert.deepEqual(
      from1.entries.map((e) => e.index),
      [1, 2],
    );
  });

  it('runs one job at a time: a second request is busy and names the job, which attach follows', async () => {
    const h = await home('slow-scorer');
    h.writeSolution('delay_s', '2\n');
    await h.json(statusSchema, ['start']);
    // Three requests at once: exactly one starts a job, the others are told which job runs.
    const replies = await Promise.all([1, 2, 3].map(() => h.run(['score', '--json'])));
    const started = replies.filter((r) => r.code === 0);
    assert.equal(started.length, 1, replies.map((r) => r.stdout).join(''));
    const lines = parseLines(jobLineSchema, started[0]?.stdout ?? '', 'score');
    assert.equal(lines.length, 1);
    const job = lines[0];
    assert.ok(job?.type === 'job' && job.output_offset === 0);
    for (const r of replies.filter((x) => x.code !== 0)) {
      assert.equal(r.code, RUNNER_EXIT.busy);
      assert.equal(parseWith(errorReplySchema, r.stdout, 'busy').error.job?.job_id, job.job_id);
    }
    const busy = await h.error(['score'], 'busy', RUNNER_EXIT.busy);
    assert.equal(busy.job?.job_id, job.job_id);
    assert.equal(busy.job?.kind, 'score');
    assert.match(busy.message, new RegExp(job.job_id));
    const status = await h.json(statusSchema, ['status']);
    assert.equal(status.job?.job_id, job.job_id);
    assert.ok(status.job?.pid && status.job.pid > 1);
    assert.ok(h.events().some((e) => e.event === 'refused' && e.reason === 'busy'));
    const attached = await h.run(['attach', job.job_id, '--json']);
    assert.equal(attached.code, 0);
    const whole = followed(attached.stdout, 'attach');
    assert.equal(whole.entry.job_id, job.job_id);
    assert.match(whole.text, /working 4\n/);
    // Re-attaching from an offset gives exactly the rest.
    const middle = Buffer.byteLength(whole.text.slice(0, whole.text.indexOf('working 2')));
    const rest = followed((await h.run(['attach', job.job_id, '--offset', String(middle), '--json'])).stdout, 'attach --offset');
    assert.equal(rest.events[0]?.type === 'job' && rest.events[0].output_offset, middle);
    assert.equal(rest.text, whole.text.slice(whole.text.indexOf('working 2')));
    assert.deepEqual(rest.entry, whole.entry);
    const unknown = await h.error(['attach', 'j20990101T000000000Z-abcdef'], 'usage', RUNNER_EXIT.usage);
    assert.match(unknown.message, /no scoring job/);
    await h.error(['attach', '../../etc'], 'usage', RUNNER_EXIT.usage);
  });

  it('a timeout stops the whole process group, grandchildren included', async () => {
    const h = await home('tricky-scorer');
    h.writeSolution('behaviour', 'grandchild\n');
    await h.json(statusSchema, ['start']);
    const { entry, text } = await scoreFollow(h);
    assert.match(text, /grandchild \d+/);
    assert.equal(entry.score, null);
    assert.equal(entry.timed_out, true);
    assert.equal(entry.killed, true);
    assert.equal(entry.signal, 'SIGTERM', 'SIGTERM was enough');
    assert.equal(entry.exit_code, null);
    assert.match(entry.message, /did not finish within its time limit of 2 s/);
    const grandchild = Number(fs.readFileSync(path.join(h.solutionDir, 'grandchild.pid'), 'utf8'));
    await waitFor(() => !processAlive(grandchild), 2000, 'the grandchild to be gone');
  });

  it('a scorer that ignores SIGTERM is killed after the grace period', async () => {
    const h = await home('tricky-scorer');
    h.writeSolution('behaviour', 'ignore-term\n');
    await h.json(statusSchema, ['start']);
    const { entry } = await scoreFollow(h);
    assert.equal(entry.signal, 'SIGKILL');
    assert.equal(entry.timed_out, true);
    assert.equal(entry.score, null);
    assert.ok(entry.duration_s >= 6.5 && entry.duration_s < 15, `duration ${entry.duration_s}`);
  });

  it('caps the output at output_limit_bytes and says so', async () => {
    const h = await home('tricky-scorer');
    h.writeSolution('behaviour', 'flood\n');
    await h.json(statusSchema, ['start']);
    const { entry, text } = await scoreFollow(h);
    assert.equal(entry.score, 3);
    assert.equal(entry.output_truncated, true);
    assert.ok(entry.output_bytes > 4000, `output_bytes ${entry.output_bytes}`);
    const kept = text.slice(0, text.indexOf('\n[output truncated'));
    assert.equal(Buffer.byteLength(kept), 1024);
    assert.ok(text.endsWith(`[output truncated after 1024 bytes; the scorer wrote ${entry.output_bytes} bytes in all]\n`));
  });

  it('records NaN, Infinity, non-numbers, crashes and failed exits as no score, never 0', async () => {
    const h = await home('tricky-scorer');
    await h.json(statusSchema, ['start']);
    const results: Array<[string, RegExp]> = [
      ['{"score": NaN, "message": "diverged"}', /^diverged \| No score: the reported score nan is not a finite number/],
      ['{"score": Infinity}', /not a finite number/],
      ['{"score": -Infinity}', /not a finite number/],
      ['{"score": 1e999}', /not a finite number/],
      ['{"score": "5"}', /the reported score "5" is not a number/],
      ['{"score": true}', /the reported score true is not a number/],
      ['{"message": "forgot the score"}', /forgot the score \| No score: the result has no "score"/],
      ['{"score": null, "message": "invalid solution"}', /^invalid solution$/],
      ['[1, 2]', /does not hold a JSON object/],
      ['not json at all', /not valid JSON/],
      ['{"score": 1' + '0'.repeat(400) + '}', /too large|not a finite number/],
    ];
    for (const [result, pattern] of results) {
      h.writeSolution('behaviour', 'result\n');
      h.writeSolution('result.txt', result);
      const { entry } = await scoreFollow(h, result);
      assert.equal(entry.score, null, result);
      assert.match(entry.message, pattern, result);
      assert.equal(entry.killed, false);
    }
    const failures: Array<[string, Partial<ScoreLogEntry>, RegExp]> = [
      ['exit3', { exit_code: 3, signal: null, killed: false }, /wrote a score, then failed \| No score: the scorer exited with code 3/],
      ['no-result', { exit_code: 0 }, /did not write a result file/],
      ['kill-self', { exit_code: null, signal: 'SIGKILL', killed: true }, /killed by SIGKILL/],
    ];
    for (const [behaviour, fields, pattern] of failures) {
      h.writeSolution('behaviour', `${behaviour}\n`);
      const { entry } = await scoreFollow(h, behaviour);
      assert.equal(entry.score, null, behaviour);
      for (const [k, v] of Object.entries(fields)) assert.equal(entry[k as keyof ScoreLogEntry], v, `${behaviour} ${k}`);
      assert.match(entry.message, pattern);
    }
    h.writeSolution('behaviour', 'ok\n');
    assert.equal((await scoreFollow(h)).entry.score, 2.5);
    const status = await h.json(statusSchema, ['status']);
    assert.equal(status.entries, results.length + failures.length + 1);
    assert.equal(status.counted?.score, 2.5);
    assert.equal(status.counted?.normalized, (2.5 - 5) / (1 - 5));
    assert.equal((await h.json(verifySchema, ['verify'])).intact, true);
  });

  it('streams multi-byte characters whole, even when the scorer writes them byte by byte', async () => {
    const h = await home('tricky-scorer');
    h.writeSolution('behaviour', 'utf8\n');
    await h.json(statusSchema, ['start']);
    const { entry, text, events } = await scoreFollow(h);
    assert.equal(text, 'behaviour: utf8\nh\u00e9llo w\u00f6rld \u2603 \u{1F600} done\n');
    assert.ok(!text.includes('\uFFFD'));
    // The scorer pauses inside each multi-byte character, so the runner reads them in pieces.
    const chunks = events.filter((e) => e.type === 'output').map((e) => (e.type === 'output' ? e.text : ''));
    assert.ok(chunks.length >= 4, `chunks ${JSON.stringify(chunks)}`);
    assert.equal(entry.message, 'caf\u00e9 \u2603');
    assert.equal((await h.json(logReplySchema, ['log'])).entries[0]?.message, 'caf\u00e9 \u2603');
  });

  describe('score log integrity', () => {
    let h: TestHome;
    let original: string[];
    before(async () => {
      h = await home('slow-scorer');
      h.writeSolution('delay_s', '0\n');
      await h.json(statusSchema, ['start']);
      for (const score of ['1', '2', '3', '4']) {
        h.writeSolution('score.txt', score);
        await scoreFollow(h);
      }
      original = logLines(h);
      assert.equal(original.length, 4);
    });
    afterEach(() => writeLog(h, original));

    async function verifyBad(firstBad: number, reason: RegExp): Promise<void> {
      const v = await h.json(verifySchema, ['verify'], RUNNER_EXIT.integrity);
      assert.equal(v.intact, false);
      assert.equal(v.first_bad, firstBad, v.reason ?? '');
      assert.match(v.reason ?? '', reason);
      const human = await h.run(['verify']);
      assert.equal(human.code, RUNNER_EXIT.integrity);
      assert.match(human.stdout, /NOT intact/);
      assert.equal((await h.json(statusSchema, ['status'])).log_intact, false);
    }

    it('verifies an untouched log', async () => {
      assert.deepEqual(await h.json(verifySchema, ['verify']), { intact: true, entries: 4, first_bad: null, reason: null });
    });
    it('names an edited score', async () => {
      const lines = [...original];
      lines[2] = (lines[2] ?? '').replace('"score":3.0', '"score":9.0');
      assert.notEqual(lines[2], original[2]);
      writeLog(h, lines);
      await verifyBad(2, /^line 2: hash does not match its contents/);
    });
    it('names a deleted line', async () => {
      writeLog(
        h,
        original.filter((_, i) => i !== 1),
      );
      await verifyBad(1, /^line 1: index 2 where 1 was expected/);
    });
    it('names reordered lines', async () => {
      const lines = [...original];
      [lines[1], lines[2]] = [lines[2] ?? '', lines[1] ?? ''];
      writeLog(h, lines);
      await verifyBad(1, /^line 1: index 2 where 1 was expected/);
    });
    it('names an inserted line', async () => {
      const lines = [...original];
      lines.splice(2, 0, original[0] ?? '');
      writeLog(h, lines);
      await verifyBad(2, /^line 2: index 0 where 2 was expected/);
    });
    it('names a line that is not JSON', async () => {
      const lines = [...original];
      lines.splice(3, 0, 'hello');
      writeLog(h, lines);
      await verifyBad(3, /^line 3: not valid JSON/);
      assert.equal((await h.json(logReplySchema, ['log'])).entries.length, 4, 'the log still lists the entries');
    });
    it('notices a changed session start', async () => {
      const file = h.statePath('session.json');
      const saved = fs.readFileSync(file, 'utf8');
      try {
        const session = JSON.parse(saved) as { started_at: string };
        setStartedAt(h, Date.parse(session.started_at) - 3600_000);
        await verifyBad(0, /^line 0: prev_hash does not match the session's start time/);
      } finally {
        fs.writeFileSync(file, saved);
      }
    });
  });

  describe('an interrupted write', () => {
    it('a torn last line is reported, kept as evidence, and scoring goes on after it', async () => {
      const h = await home('slow-scorer');
      h.writeSolution('delay_s', '0\n');
      await h.json(statusSchema, ['start']);
      await scoreFollow(h);
      await scoreFollow(h);
      const half = (logLines(h)[0] ?? '').slice(0, 60);
      fs.appendFileSync(h.statePath('score.log.jsonl'), half);
      const v = await h.json(verifySchema, ['verify'], RUNNER_EXIT.integrity);
      assert.equal(v.first_bad, 2);
      assert.match(v.reason ?? '', /^line 2: the last line is incomplete/);
      assert.equal(v.entries, 2);
      assert.equal((await h.json(logReplySchema, ['log'])).entries.length, 2);
      h.writeSolution('score.txt', '7');
      const { entry } = await scoreFollow(h);
      assert.equal(entry.index, 3, 'the torn line keeps its line number');
      assert.equal(entry.score, 7);
      const log = await h.json(logReplySchema, ['log']);
      assert.deepEqual(
        log.entries.map((e) => e.index),
        [0, 1, 3],
      );
      assert.equal(log.entries[2]?.prev_hash, log.entries[1]?.hash, 'the chain skips the torn line');
      const after = await h.json(verifySchema, ['verify'], RUNNER_EXIT.integrity);
      assert.equal(after.first_bad, 2);
      assert.equal(after.entries, 3);
      assert.equal(logLines(h)[2], half);
      const status = await h.json(statusSchema, ['status']);
      assert.equal(status.counted?.index, 3);
    });

    it('an entry written without its newline is completed by the next append', async () => {
      const h = await home('slow-scorer');
      h.writeSolution('delay_s', '0\n');
      await h.json(statusSchema, ['start']);
      const first = (await scoreFollow(h)).entry;
      const file = h.statePath('score.log.jsonl');
      fs.truncateSync(file, fs.statSync(file).size - 1);
      const v = await h.json(verifySchema, ['verify'], RUNNER_EXIT.integrity);
      assert.equal(v.first_bad, 0);
      const second = (await scoreFollow(h)).entry;
      assert.equal(second.index, 1);
      assert.equal(second.prev_hash, first.hash);
      assert.deepEqual(await h.json(verifySchema, ['verify']), { intact: true, entries: 2, first_bad: null, reason: null });
    });

    it('a job whose process is killed still gets an entry, and its scorer is stopped', async () => {
      const h = await home('slow-scorer');
      h.writeSolution('delay_s', '20\n');
      await h.json(statusSchema, ['start']);
      const job = parseLines(jobLineSchema, (await h.run(['score', '--json'])).stdout, 'score')[0];
      assert.ok(job?.type === 'job');
      const status = await h.json(statusSchema, ['status']);
      const pid = status.job?.pid;
      assert.ok(pid);
      const scorerFile = path.join(h.stateDir, 'jobs', job.job_id, 'scorer.json');
      await waitFor(() => fs.existsSync(scorerFile), 5000, 'the scorer to start');
      const scorer = JSON.parse(fs.readFileSync(scorerFile, 'utf8')) as { pgid: number };
      process.kill(pid, 'SIGKILL');
      await waitFor(() => !processAlive(pid), 5000, 'the job process to die');
      // The scorer may already be gone (its next write meets a closed pipe) or still running: either way it
      // must not outlive the recovery below.
      const attached = await h.run(['attach', job.job_id, '--json'], { timeoutMs: 10_000 });
      assert.equal(attached.code, 0);
      const { entry } = followed(attached.stdout, 'attach after kill');
      assert.equal(entry.job_id, job.job_id);
      assert.equal(entry.score, null);
      assert.equal(entry.killed, true);
      assert.match(entry.message, /stopped before it finished/);
      await waitFor(() => !processAlive(scorer.pgid), 3000, 'the orphaned scorer to be stopped');
      const after = await h.json(statusSchema, ['status']);
      assert.equal(after.job, null);
      assert.equal(after.entries, 1);
      h.writeSolution('delay_s', '0\n');
      assert.equal((await scoreFollow(h)).entry.index, 1, 'scoring goes on');
    });

    it('attach reports a failure after the stream began as an error event, and the job is finished later', async () => {
      const h = await home('slow-scorer');
      h.writeSolution('delay_s', '20\n');
      await h.json(statusSchema, ['start']);
      const job = parseLines(jobLineSchema, (await h.run(['score', '--json'])).stdout, 'score')[0];
      assert.ok(job?.type === 'job');
      const pid = (await h.json(statusSchema, ['status'])).job?.pid;
      assert.ok(pid);
      process.kill(pid, 'SIGKILL');
      await waitFor(() => !processAlive(pid), 5000, 'the job process to die');
      const sessionFile = h.statePath('session.json');
      const saved = fs.readFileSync(sessionFile, 'utf8');
      fs.writeFileSync(sessionFile, '{');
      const r = await h.run(['attach', job.job_id, '--json'], { timeoutMs: 10_000 });
      assert.equal(r.code, RUNNER_EXIT.integrity);
      const events = parseLines(streamEventSchema, r.stdout, 'attach');
      assert.equal(events[0]?.type, 'job');
      const last = events[events.length - 1];
      assert.ok(last?.type === 'error' && last.error.code === 'integrity', r.stdout);
      assert.match(last.error.message, /session\.json is damaged/);
      fs.writeFileSync(sessionFile, saved);
      const s = await h.json(statusSchema, ['status']);
      assert.equal(s.entries, 1, 'the next status gives the job its entry');
      assert.equal((await h.json(logReplySchema, ['log'])).entries[0]?.killed, true);
    });

    it('a job killed between saving its outcome and writing the log keeps its score, once', async () => {
      const h = await home('slow-scorer');
      h.writeSolution('delay_s', '0\n');
      h.writeSolution('score.txt', '6');
      await h.json(statusSchema, ['start']);
      const entry = (await scoreFollow(h)).entry;
      const entryFile = path.join(h.stateDir, 'jobs', entry.job_id, 'entry.json');
      // As if the process died after writing the log line but before entry.json: no duplicate.
      fs.rmSync(entryFile);
      fs.rmSync(path.join(h.stateDir, 'jobs-recovered.json'), { force: true });
      let status = await h.json(statusSchema, ['status']);
      assert.equal(status.entries, 1);
      assert.deepEqual(JSON.parse(fs.readFileSync(entryFile, 'utf8')), entry);
      // As if it died after saving the outcome but before the log line: the score is recovered. (Recovery
      // never moved its mark, state/jobs-recovered.json, past a job without an entry: take it away, as it
      // would be for this job.)
      fs.rmSync(entryFile);
      fs.rmSync(path.join(h.stateDir, 'jobs-recovered.json'), { force: true });
      writeLog(h, []);
      status = await h.json(statusSchema, ['status']);
      assert.equal(status.entries, 1);
      assert.equal(status.counted?.score, 6);
      const recovered = (await h.json(logReplySchema, ['log'])).entries[0];
      assert.deepEqual({ ...recovered, hash: '', prev_hash: '' }, { ...entry, hash: '', prev_hash: '' });
      assert.equal((await h.json(verifySchema, ['verify'])).intact, true);
    });
  });

  it('pauses where allowed: the clock stops, scoring is refused, the deadline moves', async () => {
    const h = await home('slow-scorer');
    h.writeSolution('delay_s', '1\n');
    const started = await h.json(statusSchema, ['start']);
    const job = parseLines(jobLineSchema, (await h.run(['score', '--json'])).stdout, 'score')[0];
    assert.ok(job?.type === 'job');
    const busyPause = await h.error(['pause'], 'refused', RUNNER_EXIT.refused);
    assert.match(busyPause.message, /scoring job is running/);
    assert.equal((await h.run(['attach', job.job_id])).code, 0);
    const paused = await h.json(statusSchema, ['pause']);
    assert.equal(paused.state, 'paused');
    assert.equal((await h.json(statusSchema, ['pause'])).state, 'paused', 'pause is idempotent');
    await sleep(1200);
    const still = await h.json(statusSchema, ['status']);
    assert.equal(still.state, 'paused');
    assert.ok(Math.abs((still.seconds_left ?? 0) - (paused.seconds_left ?? 0)) < 0.05, 'time left is frozen');
    assert.ok(Math.abs(still.elapsed_s - paused.elapsed_s) < 0.05, 'elapsed is frozen');
    const refused = await h.error(['score'], 'refused', RUNNER_EXIT.refused);
    assert.match(refused.message, /paused/);
    const resumed = await h.json(statusSchema, ['resume']);
    assert.equal(resumed.state, 'running');
    assert.ok(resumed.paused_s >= 1.2, `paused ${resumed.paused_s}`);
    const moved = Date.parse(resumed.deadline ?? '') - Date.parse(started.deadline ?? '');
    assert.ok(moved >= 1200 && moved < 20_000, `deadline moved by ${moved} ms`);
    assert.ok(Math.abs(moved / 1000 - resumed.paused_s) < 0.01);
    assert.deepEqual(
      h
        .events()
        .filter((e) => e.event === 'pause' || e.event === 'resume')
        .map((e) => e.event),
      ['pause', 'resume'],
    );
    assert.equal((await h.json(statusSchema, ['resume'])).state, 'running', 'resume is idempotent');
  });

  it('refuses pauses where the environment does not allow them', async () => {
    const h = await home('slow-scorer', { manifest: { pauses_allowed: false } });
    await h.json(statusSchema, ['start']);
    const err = await h.error(['pause'], 'refused', RUNNER_EXIT.refused);
    assert.match(err.message, /does not allow pauses/);
    assert.equal((await h.json(statusSchema, ['status'])).state, 'running');
  });

  it('refuses a score request after the deadline and records it', async () => {
    const h = await home('slow-scorer', { manifest: { time_limit_s: 60 } });
    await h.json(statusSchema, ['start']);
    setStartedAt(h, Date.now() - 61_000);
    const s = await h.json(statusSchema, ['status']);
    assert.equal(s.state, 'ended');
    assert.equal(s.seconds_left, 0);
    assert.equal(s.elapsed_s, 60);
    assert.equal(s.ended_at, s.deadline);
    const err = await h.error(['score'], 'refused', RUNNER_EXIT.refused);
    assert.match(err.message, /deadline passed/);
    const refusal = h
      .events()
      .filter((e) => e.event === 'refused')
      .pop();
    assert.equal(refusal?.action, 'score');
    assert.match(String(refusal?.reason), /deadline passed/);
    assert.equal((await h.json(statusSchema, ['status'])).entries, 0);
  });

  it('a job started before the deadline counts even when it ends after it', async () => {
    const h = await home('slow-scorer', { manifest: { time_limit_s: 60 } });
    h.writeSolution('delay_s', '4\n');
    h.writeSolution('score.txt', '3');
    await h.json(statusSchema, ['start']);
    // The request comes about 3 s before the deadline; the job runs 4 s, so it ends after it.
    setStartedAt(h, Date.now() - 57_000);
    const { entry } = await scoreFollow(h);
    const s = await h.json(statusSchema, ['status']);
    assert.equal(s.state, 'ended');
    assert.ok(Date.parse(entry.ended_at) > Date.parse(s.deadline ?? ''), 'ended after the deadline');
    assert.ok(entry.elapsed_s > 57 && entry.elapsed_s < 60, `elapsed ${entry.elapsed_s}`);
    assert.equal(entry.counts, true);
    assert.deepEqual(s.counted, { index: 0, score: 3, normalized: 0.3 });
    await h.error(['score'], 'refused', RUNNER_EXIT.refused);
  });

  it('end with aggregation "last" runs a final scoring job, then the session is over', async () => {
    const h = await home('slow-scorer', { manifest: { scoring: { aggregation: 'last' } } });
    h.writeSolution('delay_s', '0.3\n');
    h.writeSolution('score.txt', '5');
    await h.json(statusSchema, ['start']);
    await scoreFollow(h);
    h.writeSolution('score.txt', '3');
    const unconfirmed = await h.error(['end'], 'usage', RUNNER_EXIT.usage);
    assert.match(unconfirmed.message, /--yes/);
    const r = await h.run(['end', '--yes', '--follow', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    const status = parseWith(statusSchema, lines.pop() ?? '', 'end status');
    const { entry } = followed(lines.join('\n'), 'end --follow');
    assert.equal(entry.kind, 'final');
    assert.equal(entry.score, 3);
    assert.equal(entry.counts, true);
    assert.equal(status.state, 'ended');
    assert.equal(status.job, null);
    assert.deepEqual(status.counted, { index: 1, score: 3, normalized: 0.3 }, 'the last score counts, not the best');
    assert.ok(Date.parse(entry.started_at) <= Date.parse(status.ended_at ?? ''));
    const again = await h.json(statusSchema, ['end', '--yes']);
    assert.equal(again.ended_at, status.ended_at, 'end is idempotent');
    assert.equal(again.entries, 2);
    assert.match((await h.error(['score'], 'refused', RUNNER_EXIT.refused)).message, /session ended/);
  });

  it('end with aggregation "best" ends at once, without a final job', async () => {
    const h = await home('slow-scorer');
    await h.json(statusSchema, ['start']);
    const s = await h.json(statusSchema, ['end', '--yes']);
    assert.equal(s.state, 'ended');
    assert.equal(s.job, null);
    assert.equal(s.entries, 0);
    assert.equal(s.seconds_left, 0);
    assert.ok(h.events().some((e) => e.event === 'end'));
  });

  it('exports METR CSV and the JSONL log, and reads METR CSV back', async () => {
    const h = await home('slow-scorer');
    h.writeSolution('delay_s', '0\n');
    await h.json(statusSchema, ['start']);
    const entries: ScoreLogEntry[] = [];
    for (const score of ['2.25', 'nan', '-1e-7']) {
      h.writeSolution('score.txt', score);
      entries.push((await scoreFollow(h)).entry);
    }
    const csv = await h.run(['export', '--format', 'metr-csv']);
    assert.equal(csv.code, 0);
    const rows = csv.stdout.split('\n');
    assert.equal(rows[0], 'timestamp,score,message,details');
    assert.match(rows[2] ?? '', /^[^,]+,nan,"{""message"": ""score.txt says 'nan'""}",/);
    const out = path.join(h.home, 'score.csv');
    const written = await h.json(exportReplySchema, ['export', '--format', 'metr-csv', '--out', out]);
    assert.deepEqual(written, { path: out, format: 'metr-csv', entries: 3 });
    assert.equal(fs.readFileSync(out, 'utf8'), csv.stdout);
    const back = await h.json(importReplySchema, ['import-metr-csv', out]);
    assert.deepEqual(back.notes, []);
    assert.deepEqual(
      back.entries.map((e) => [e.timestamp, e.score, e.message, (e.details as { job_id: string }).job_id]),
      entries.map((e) => [e.started_at, e.score, e.message, e.job_id]),
    );
    const jsonl = await h.run(['export', '--format', 'jsonl']);
    assert.equal(jsonl.stdout, fs.readFileSync(h.statePath('score.log.jsonl'), 'utf8'));
    // A log written by METR's logger: local time without a zone, nan scores, JSON columns.
    const metr = path.join(h.home, 'metr.csv');
    fs.writeFileSync(
      metr,
      [
        'timestamp,score,message,details',
        '2024-11-20T10:11:12,0.5,"{""loss"": 2.1}","{""raw"": 1}"',
        '2024-11-20T10:30:00,nan,"{""message"": ""invalid""}",{}',
        '2024-11-20T10:40:00+02:00,,,',
        '',
      ].join('\r\n'),
    );
    const imported = await h.json(importReplySchema, ['import-metr-csv', metr]);
    assert.equal(imported.notes.length, 1);
    assert.match(imported.notes[0] ?? '', /read as UTC/);
    assert.deepEqual(
      imported.entries.map((e) => [e.index, e.timestamp, e.timestamp_assumed_utc, e.score, e.message]),
      [
        [0, '2024-11-20T10:11:12.000Z', true, 0.5, '{"loss": 2.1}'],
        [1, '2024-11-20T10:30:00.000Z', true, null, 'invalid'],
        [2, '2024-11-20T08:40:00.000Z', false, null, ''],
      ],
    );
    assert.deepEqual(imported.entries[0]?.details, { raw: 1 });
    const notCsv = path.join(h.home, 'not.csv');
    fs.writeFileSync(notCsv, 'a,b\n1,2\n');
    assert.match((await h.error(['import-metr-csv', notCsv], 'usage', 2)).message, /not a METR score log/);
  });

  describe('the demo environment (demo-fast-function)', () => {
    let h: TestHome;
    let manifest: { scoring: { starting_score: number; reference_score: number } };
    let startingScore = Number.NaN;
    before(async () => {
      h = await home('demo-fast-function', { sources: [SHIPPED_ENVIRONMENTS] });
      manifest = JSON.parse(fs.readFileSync(path.join(h.envDir, 'manifest.json'), 'utf8'));
      await h.json(statusSchema, ['start']);
    });

    it('shows instructions with the score formula', async () => {
      const doc = await h.json(instructionsSchema, ['instructions']);
      assert.equal(doc.title, 'Make a slow function fast');
      assert.ok(doc.markdown.includes('$$ y = \\ln(t_{\\mathrm{ms}}) $$'));
      assert.match(doc.markdown, /lower is better/);
    });

    it('scores the starting solution: a finite, clearly slow score', async () => {
      const { entry, text } = await scoreFollow(h);
      assert.match(text, /Checking correctness/);
      assert.match(text, /Timed run 3 of 3/);
      assert.ok(entry.score !== null && Number.isFinite(entry.score), entry.message);
      // Timings depend on the machine and its load: only require "clearly slow" (> 7x the reference time).
      assert.ok(entry.score > manifest.scoring.reference_score + 2, `score ${entry.score}`);
      assert.match(entry.message, /^Correct\. Median time/);
      startingScore = entry.score;
    });

    it('gives no score to a wrong solution, and says why', async () => {
      h.writeSolution('solution.py', 'def count_inversions(values):\n    return len(values)\n');
      const { entry } = await scoreFollow(h);
      assert.equal(entry.score, null);
      assert.match(entry.message, /^Incorrect solution, so no score: Wrong answer for input/);
      h.writeSolution('solution.py', 'def count_inversions(values):\n    values.sort()\n    return 0\n');
      assert.match((await scoreFollow(h)).entry.message, /modified its argument/);
      h.writeSolution('solution.py', 'this is not python\n');
      assert.match((await scoreFollow(h)).entry.message, /^Could not load your solution/);
    });

    it('scores a good solution far lower (better) than the starting one', async () => {
      const reference = path.join(REPO_ROOT, 'test', 'fixtures', 'demo-fast-function-reference', 'solution.py');
      fs.copyFileSync(reference, path.join(h.solutionDir, 'solution.py'));
      const { entry } = await scoreFollow(h);
      assert.ok(entry.score !== null, entry.message);
      // The merge sort is about 75x faster here (ln 75 = 4.3); ask for 7x (ln 7 = 1.9) to allow for load.
      assert.ok(entry.score < startingScore - 2, `score ${entry.score}, starting ${startingScore}`);
      const s = await h.json(statusSchema, ['status']);
      assert.equal(s.counted?.index, entry.index, 'lower is better: the good solution counts');
      assert.ok((s.counted?.normalized ?? 0) > 0, 'better than the starting score means normalised > 0');
    });

    it('does not allow pauses', async () => {
      assert.match((await h.error(['pause'], 'refused', RUNNER_EXIT.refused)).message, /does not allow pauses/);
    });
  });

  it('protected mode: setup is refused and the scorer runs as the scoring user', async function () {
    // Needs root, and an interpreter the scoring user may run (not one under /root).
    const systemPython = '/usr/bin/python3';
    if (typeof process.getuid !== 'function' || process.getuid() !== 0 || !fs.existsSync(systemPython)) this.skip();
    const h = await home('tricky-scorer', { setup: false, python: systemPython });
    fs.chmodSync(h.home, 0o755);
    fs.cpSync(path.join(h.envDir, 'solution'), h.solutionDir, { recursive: true });
    fs.writeFileSync(path.join(h.solutionDir, 'behaviour'), 'whoami\n');
    fs.writeFileSync(
      path.join(h.home, 'runner.json'),
      JSON.stringify({
        mode: 'protected',
        environment: 'tricky-scorer',
        environments_dir: h.environmentsDir,
        state_dir: h.stateDir,
        solution_dir: h.solutionDir,
        scoring_user: 'nobody',
      }),
    );
    const err = await h.error(['setup', '--environment', 'tricky-scorer'], 'refused', RUNNER_EXIT.refused);
    assert.match(err.message, /protected mode/);
    const s = await h.json(statusSchema, ['start']);
    assert.equal(s.mode, 'protected');
    const { entry } = await scoreFollow(h);
    assert.equal(entry.score, 65534, entry.message);
    assert.match(entry.message, /uid 65534/);
    const logMode = fs.statSync(h.statePath('score.log.jsonl')).mode & 0o777;
    assert.equal(logMode & 0o022, 0, 'the score log is not writable by others');
  });
});

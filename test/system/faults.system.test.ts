// Faults injected against the real SshTarget, RunnerClient, Session and runner over a private sshd on
// loopback: sshd stopped at random points of scoring jobs, a stalled link, job processes killed while
// they write their entry and torn log lines, bursts of "Score now", a VM clock hours off, and a laptop
// that sleeps. Each test records its figures for the README's Reliability table.
//
// The "VM" is this machine (sshd on loopback), so where a fault must land within milliseconds the test
// reads the runner's files and signals its processes directly instead of going through SSH.

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isCodedError } from '../../src/core/errors';
import { scoreLogEntrySchema, type ScoreLogEntry } from '../../src/core/runnerProtocol';
import type { Session } from '../../src/core/session';
import { JobInterruptedError } from '../../src/core/runnerClient';
import { shellQuote } from '../../src/core/target';
import { faketimeShmNames, removeFaketimeShm, shiftMs, startSshdWithClockShift } from '../support/faketime';
import { recordFigure } from '../support/figures';
import { processAlive } from '../support/runner';
import { SessionWorld, dropSsh, jobFolders, recordStates, setSlowScorer, sleep, waitUntil, type Rig } from '../support/sessionFixture';
import { startSshd, type Sshd } from '../support/sshd';

// ---------------------------------------------------------------------------------------------
// Helpers

/** A small seeded generator, so that a failing run can be repeated with REBENCH_FAULT_SEED. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = process.env.REBENCH_FAULT_SEED ? Number(process.env.REBENCH_FAULT_SEED) : Math.floor(Math.random() * 1e9);

function note(text: string): void {
  console.log(`      [faults] ${text}`);
}

/** Resolves with the promise's value, or fails saying what did not happen in time. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * sshd goes away: every connection is killed at once (the link really drops) and the listener is
 * frozen, so new connections get no answer. What the participant started (a detached scoring job) is
 * not touched, as in a real outage. It comes back either restarted (a new sshd on the same port with
 * the same host key; attempts waiting meanwhile are reset) or resumed (the frozen sshd goes on and
 * answers the attempts that waited).
 */
function stopSshd(sshd: Sshd, comeBack: 'restart' | 'resume'): { restore(): Promise<void> } {
  const outage = dropSsh(sshd);
  // restart() kills the frozen listener as it is (SIGKILL, no wake-up first), so it accepts nothing more.
  return { restore: () => (comeBack === 'resume' ? Promise.resolve(sshd.resume()) : outage.restore()) };
}

/** The job's folder on the VM, read directly (the VM is this machine). */
function jobDir(rig: Rig, jobId: string): string {
  return rig.statePath('jobs', jobId);
}

function readJsonFile(file: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/**
 * The pid of this rig's `runner serve` process: among the processes running its runner with `serve`, the one
 * whose parent is not one of them (a scoring job is a fork of the channel, with the same command line).
 */
function servePid(rig: Rig): number {
  const mine = new Map<number, number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (argv.at(-1) !== 'serve' || !argv.includes(`${rig.runnerHome}/runner.pyz`)) continue;
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z') mine.set(Number(name), Number(fields[1]));
    } catch {
      // gone meanwhile
    }
  }
  const channels = [...mine].filter(([, ppid]) => !mine.has(ppid)).map(([pid]) => pid);
  assert.equal(channels.length, 1, `one serve process for this rig: ${JSON.stringify([...mine])}`);
  return channels[0]!;
}

/** Processes whose process group is `pgid` (read from /proc). */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Blocks this thread for `ms` (the event loop included), like a laptop that sleeps. */
function blockFor(ms: number): void {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const until = Date.now() + ms;
  for (let left = ms; left > 0; left = until - Date.now()) Atomics.wait(cell, 0, 0, left);
}

/** Busy-waits `ms` without yielding (sub-millisecond placement of a fault). */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // waiting
  }
}

/** Every line of the score log file parses as an entry (nothing half-written or corrupt). */
function assertEveryLineParses(rig: Rig): number {
  const text = fs.readFileSync(rig.statePath('score.log.jsonl'), 'utf8');
  assert.ok(text === '' || text.endsWith('\n'), 'the score log ends with a newline');
  const lines = text.split('\n').filter((l) => l !== '');
  lines.forEach((line, i) => {
    const parsed = scoreLogEntrySchema.safeParse(JSON.parse(line));
    assert.ok(parsed.success, `score log line ${i} is an entry: ${line}`);
    assert.equal(parsed.data.index, i);
  });
  return lines.length;
}

/** No two entries' [started_at, ended_at] overlap: one job at a time. */
function assertNoOverlap(entries: ScoreLogEntry[]): void {
  const byStart = [...entries].sort((a, b) => Date.parse(a.started_at) - Date.parse(b.started_at));
  for (let i = 1; i < byStart.length; i++) {
    const prev = byStart[i - 1]!;
    const next = byStart[i]!;
    assert.ok(
      Date.parse(prev.ended_at) <= Date.parse(next.started_at),
      `job ${next.job_id} started at ${next.started_at} while ${prev.job_id} ran (until ${prev.ended_at})`,
    );
  }
}

const INTACT = (entries: number) => ({ intact: true, entries, first_bad: null, reason: null });

/**
 * Waits for the connection to be up and the Session to have no job, also after re-reading status and
 * log (which finds a job the Session did not know of, e.g. one whose start it never heard of).
 */
async function settle(rig: Rig, session: Session, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const left = Math.max(1, until - Date.now());
    await waitUntil('the connection to be up', () => rig.target.state.kind === 'connected', left);
    await waitUntil('the Session to finish its job', () => session.job === undefined, left);
    await session.refresh();
    if (session.job === undefined && rig.target.state.kind === 'connected') return;
  }
}

// ---------------------------------------------------------------------------------------------

describe('Faults over SSH (private sshd)', function () {
  this.timeout(120_000);
  const world = new SessionWorld('ssh');
  /** An outage a failed test left in place: the next test needs the server back. */
  let outageLeft: { restore(): Promise<void> } | undefined;
  before(() => world.before());
  after(() => world.after());
  beforeEach(() => world.beforeEach());
  afterEach(async () => {
    if (outageLeft) await outageLeft.restore();
    else world.sshd?.resume();
    outageLeft = undefined;
  });
  afterEach(() => world.afterEach());
  afterEach(function () {
    // Every random choice in this file comes from SEED: a failed run can be repeated exactly.
    if (this.currentTest?.state === 'failed') console.log(`      seed ${SEED}: REBENCH_FAULT_SEED=${SEED} repeats this run`);
  });

  it('sshd stopped at 24 random points of scoring jobs: reconnects by itself; one entry per job that ran, each reported once', async function () {
    this.timeout(240_000);
    const ROUNDS = 24;
    const random = seededRandom(SEED);
    note(`seed ${SEED} (REBENCH_FAULT_SEED=${SEED} repeats this run)`);
    const rig = await world.rig('slow-scorer', { ssh: { readyTimeoutMs: 5_000 } });
    const session = rig.session();
    const reported = new Map<string, number>();
    session.on('onEntry', (e) => reported.set(e.job_id, (reported.get(e.job_id) ?? 0) + 1));
    const jobsSeen = new Set<string>();
    // Jobs whose entry was reported and that the Session then stopped showing: they are over, and
    // showing one as running again would be wrong. (While the stream that follows a job has not yet
    // brought the entry, a refresh may read it from the log first; the job shows until the stream ends.)
    const over = new Set<string>();
    const shownAgain = new Set<string>();
    session.on('onChange', () => {
      const current = session.job?.jobId;
      if (current !== undefined) {
        jobsSeen.add(current);
        if (over.has(current)) shownAgain.add(current);
      }
      for (const id of reported.keys()) if (id !== current) over.add(id);
    });
    await session.open();
    await session.start();
    await setSlowScorer(rig, 1.5, '4');

    const points = ['before the request reaches the VM', 'before the job line', 'mid-output', 'around the end'] as const;
    const tally = { stops: 0, survived: 0, resolved: 0, failedNoJob: 0, failedJobRan: 0 };
    const recoveryMs: number[] = [];
    let accounting: { lost: number; detail: string } | undefined;
    const started = Date.now();
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const point = points[round % points.length]!;
        const kind = random() < 0.7 ? 'restart' : 'resume';
        const downMs = Math.round(200 + random() * 1800);
        const what = `round ${round} (${point}, down ${downMs} ms, then ${kind}, seed ${SEED})`;
        const roundStart = Date.now();
        let outcomeText = '';
        await settle(rig, session);
        const foldersBefore = new Set(await jobFolders(rig));

        let settled = false;
        let outage: { restore(): Promise<void> } | undefined;
        if (point === 'before the request reaches the VM') {
          // The link is already dead, but the client has not noticed yet (same tick): the request is lost.
          outage = stopSshd(world.sshd!, kind);
          outageLeft = outage;
        }
        const scoring = session.scoreNow().then(
          (entry) => ({ entry }),
          (error: unknown) => ({ error }),
        );
        void scoring.then(() => (settled = true));
        const output = () => session.job?.output ?? '';
        if (point === 'before the request reaches the VM') {
          // already down
        } else if (point === 'before the job line') {
          // The runner needs ~100 ms to start and print the job line; drop somewhere in that window.
          await sleep(random() * 80);
        } else if (point === 'mid-output') {
          await waitUntil(`first progress line, ${what}`, () => settled || output().includes('working 1'));
          await sleep(random() * 500);
        } else {
          // The scorer ends ~0.5 s after "working 2": drop from just before it ends to just after.
          await waitUntil(`second progress line, ${what}`, () => settled || output().includes('working 2'));
          await sleep(250 + random() * 600);
        }

        outage ??= stopSshd(world.sshd!, kind);
        outageLeft = outage;
        tally.stops++;
        await sleep(downMs);
        await outage.restore();
        outageLeft = undefined;
        const restoredAt = Date.now();
        const outcome = await within(scoring, 30_000, `Score now to end after ${what}`);

        if ('entry' in outcome) {
          // The request survived: its entry is the job's real result.
          assert.equal(outcome.entry.score, 4, `${what}: ${JSON.stringify(outcome.entry)}`);
          assert.equal(outcome.entry.killed, false, what);
          assert.ok(!foldersBefore.has(outcome.entry.job_id), `${what}: the entry is of this round's job`);
          tally.resolved++;
          recoveryMs.push(Date.now() - restoredAt);
          outcomeText = `resolved with its entry ${Date.now() - restoredAt} ms after sshd was back`;
        } else {
          // Only a request whose job line never arrived may fail, and then with a retryable error.
          const e = outcome.error;
          assert.ok(!(e instanceof JobInterruptedError), `${what}: the Session follows an interrupted job itself`);
          assert.ok(isCodedError(e) && e.retryable, `${what}: a retryable error with a code, got ${String(e)}`);
          assert.match(e.message, /dropped|Not connected/, what);
          await settle(rig, session);
          const fresh = (await jobFolders(rig)).filter((f) => !foldersBefore.has(f));
          assert.ok(fresh.length <= 1, `${what}: at most one job from one request: ${fresh.join(', ')}`);
          const orphan = fresh[0];
          if (orphan === undefined) {
            tally.failedNoJob++; // the runner never got the command: no job, nothing to lose
          } else {
            // The runner started the job but its job line was lost with the link: the Session found
            // the job on reconnecting and reported its entry.
            tally.failedJobRan++;
            await waitUntil(`${what}: the entry of job ${orphan} to be reported`, () => reported.has(orphan));
            await settle(rig, session);
          }
          const retry = await within(session.scoreNow(), 20_000, `the retry after ${what}`);
          assert.equal(retry.score, 4, `${what}: the retry works`);
          assert.ok(!foldersBefore.has(retry.job_id) && retry.job_id !== orphan, `${what}: the retry ran a new job`);
          outcomeText = `failed (${e.message.slice(0, 50)}…); ${orphan ? `job ${orphan} had started; its entry was reported` : 'no job had started'}; the retry worked`;
        }
        tally.survived++;
        note(`${what}: ${outcomeText} [${((Date.now() - roundStart) / 1000).toFixed(1)} s]`);
      }
    } finally {
      // Count what happened even when a round failed, so the figure is honest either way.
      try {
        await settle(rig, session, 30_000);
        const log = await rig.client.log();
        const folders = await jobFolders(rig);
        const logIds = log.map((e) => e.job_id);
        const duplicatedInLog = logIds.length - new Set(logIds).size;
        const missingFromLog = folders.filter((f) => !logIds.includes(f));
        const notReported = logIds.filter((id) => !reported.has(id));
        const reportedTwice = [...reported.values()].reduce((n, c) => n + Math.max(0, c - 1), 0);
        const reportedUnknown = [...reported.keys()].filter((id) => !logIds.includes(id));
        accounting = {
          lost: duplicatedInLog + missingFromLog.length + notReported.length + reportedTwice + reportedUnknown.length,
          detail:
            `jobs ${folders.length}, log entries ${log.length}, duplicated in log ${duplicatedInLog}, ` +
            `jobs without entry [${missingFromLog.join(' ')}], entries never reported [${notReported.join(' ')}], ` +
            `reported twice ${reportedTwice}, reported but not in the log [${reportedUnknown.join(' ')}]`,
        };
      } catch (e) {
        note(`could not count entries after the failure: ${String(e)}`);
      }
      recordFigure({
        test: 'sshd stopped at random points of scoring jobs',
        proves: 'The client reconnects by itself and every scoring job that ran has exactly one log entry, reported to the participant once.',
        faultsInjected: tally.stops,
        faultsSurvived: tally.survived,
        entriesLost: accounting?.lost,
      });
      note(
        `${tally.stops} stops in ${((Date.now() - started) / 1000).toFixed(1)} s: ${tally.resolved} requests resolved with their entry, ` +
          `${tally.failedNoJob} failed before the runner got them (retried), ${tally.failedJobRan} failed after the runner started the job ` +
          `(entry reported on reconnecting, retried); entry after restore: max ${Math.max(0, ...recoveryMs)} ms`,
      );
      if (accounting) note(accounting.detail);
    }

    assert.ok(accounting, 'the entries were counted');
    assert.equal(accounting.lost, 0, accounting.detail);
    assert.equal(tally.survived, ROUNDS);
    const log = await rig.client.log();
    assert.deepEqual(await rig.client.verify(), INTACT(log.length));
    assert.equal(assertEveryLineParses(rig), log.length);
    assert.deepEqual(session.entries, log, 'the Session shows exactly the log');
    assert.deepEqual([...reported.keys()].sort(), log.map((e) => e.job_id).sort());
    for (const id of jobsSeen)
      assert.ok(
        log.some((e) => e.job_id === id),
        `job ${id} the client saw has its entry`,
      );
    assert.deepEqual([...shownAgain], [], 'no finished job was shown as running again');
    for (const e of log) assert.ok(e.score === 4 && !e.killed, `no job was harmed by the outages: ${JSON.stringify(e)}`);
    // A resolved request ran one job; a failed one ran its retry, plus its own job if the runner had started it.
    assert.equal(log.length, tally.resolved + tally.failedNoJob + 2 * tally.failedJobRan);
  });

  it('a stalled link (sshd and its connections frozen): leaves "connected" within the keepalive bound, says so, and comes back by itself', async function () {
    const INTERVAL = 500;
    const COUNT_MAX = 2;
    const BOUND = INTERVAL * (COUNT_MAX + 1);
    const SLACK = 500;
    const STALLS = 3;
    const phase = seededRandom(SEED + 2);
    const rig = await world.rig('slow-scorer', {
      ssh: { keepaliveIntervalMs: INTERVAL, keepaliveCountMax: COUNT_MAX, readyTimeoutMs: 4_000, reconnect: { initialDelayMs: 1_500, maxDelayMs: 1_500 } },
    });
    const session = rig.session();
    await session.open();
    await session.start();
    await setSlowScorer(rig, 1, '8');
    const states = recordStates(rig.target);
    // What the participant sees at the very moment the link is found dead.
    const seen: { firstView?: ReturnType<Session['snapshot']> } = {};
    session.on('onChange', () => {
      if (!seen.firstView && session.connection.kind !== 'connected') seen.firstView = session.snapshot();
    });

    const detections: number[] = [];
    const recoveries: number[] = [];
    let survived = 0;
    let entriesLost: number | undefined;
    try {
      for (let stall = 0; stall < STALLS; stall++) {
        await settle(rig, session);
        seen.firstView = undefined;
        await sleep(phase() * INTERVAL); // at any phase of the keepalive cycle
        const mark = states.length;
        const pausedAt = Date.now();
        world.sshd!.pause();
        await waitUntil('the target to leave "connected"', () => rig.target.state.kind !== 'connected', BOUND + SLACK + 2_000);
        const left = states.slice(mark).find((s) => s.kind !== 'connected')!;
        const detection = left.at - pausedAt;
        detections.push(detection);
        assert.ok(detection <= BOUND + SLACK, `the stall was noticed after ${detection} ms; the keepalive bound is ${BOUND} ms (+${SLACK} ms slack)`);
        assert.ok(detection >= INTERVAL * COUNT_MAX - 100, `noticed after ${detection} ms: sooner than the keepalive can tell`);
        assert.equal(left.kind, 'reconnecting');

        const firstView = seen.firstView as ReturnType<Session['snapshot']> | undefined;
        assert.ok(firstView, 'the Session reported the change');
        assert.equal(firstView.connection.kind, 'reconnecting');
        assert.match(
          firstView.connection.detail,
          /^Connection lost \(the VM stopped answering \(keepalive timeout\)\)\. Reconnecting in \d+ s \(attempt 1\)…$/,
        );
        assert.equal(firstView.scoreDisabledReason, 'Disconnected: reconnecting to the VM…');
        assert.equal(session.scoreDisabledReason(), 'Disconnected: reconnecting to the VM…');
        await assert.rejects(rig.client.status(), (e: unknown) => {
          assert.ok(isCodedError(e) && e.retryable, `a retryable error while the link is down, got ${String(e)}`);
          assert.match(e.message, /Not connected to .*: the connection is being restored\. Try again once it is connected\./);
          return true;
        });

        await sleep(pausedAt + 3_000 - Date.now()); // the link stays dead a while
        assert.notEqual(rig.target.state.kind, 'connected', 'no connection while sshd is frozen');
        const resumedAt = Date.now();
        world.sshd!.resume();
        await waitUntil('the target to reconnect by itself', () => rig.target.state.kind === 'connected', 15_000);
        recoveries.push(Date.now() - resumedAt);
        assert.equal(session.snapshot().connection.kind, 'connected');
        await settle(rig, session);
        assert.equal(session.scoreDisabledReason(), null);
        survived++;
      }
      const entry = await within(session.scoreNow(), 20_000, 'a scoring run after the stalls');
      assert.equal(entry.score, 8);
      assert.equal(entry.killed, false);
      assert.deepEqual(await rig.client.verify(), INTACT(1));
      entriesLost = 0;
    } finally {
      note(`stall detected after ${detections.join(', ')} ms (bound ${BOUND} ms); connected again ${recoveries.join(', ')} ms after sshd resumed`);
      recordFigure({
        test: 'Stalled link (sshd frozen with SIGSTOP)',
        proves:
          `A link that goes silent is noticed within the keepalive bound (${INTERVAL} ms x ${COUNT_MAX + 1}; measured ` +
          `${detections.length ? `${Math.min(...detections)}–${Math.max(...detections)} ms` : 'n/a'}), shown as reconnecting, and restored by itself.`,
        faultsInjected: detections.length,
        faultsSurvived: survived,
        entriesLost,
      });
    }
  });

  it('job processes killed at random moments, up to while writing the entry: every job gets one entry, a computed score is never lost', async function () {
    this.timeout(120_000);
    const RUNS = 12;
    const random = seededRandom(SEED + 1);
    const rig = await world.rig('slow-scorer');
    const session = rig.session();
    await session.open();
    await session.start();
    await setSlowScorer(rig, 1.5, '6');
    const windows: Record<string, number> = {};
    let kills = 0;
    let survived = 0;
    let scoresLost = 0;
    let accounting: { lost: number; detail: string } | undefined;
    try {
      const moments = ['while the scorer runs', 'just after the scorer ends', 'as the outcome is saved', 'as the log line is written'] as const;
      for (let run = 0; run < RUNS; run++) {
        const moment = moments[run % moments.length]!;
        const what = `run ${run} (${moment}, seed ${SEED + 1})`;
        await settle(rig, session);
        const logFile = rig.statePath('score.log.jsonl');
        const logSize = () => (fs.existsSync(logFile) ? fs.statSync(logFile).size : 0);
        const sizeBefore = logSize();
        const scoring = session.scoreNow();
        scoring.catch(() => undefined);
        await waitUntil(`${what}: the job line`, () => session.job !== undefined);
        const jobId = session.job!.jobId;
        const dir = jobDir(rig, jobId);
        await waitUntil(`${what}: the job's pid`, () => typeof readJsonFile(path.join(dir, 'job.json'))?.pid === 'number');
        const pid = readJsonFile(path.join(dir, 'job.json'))!.pid as number;

        if (moment === 'while the scorer runs') {
          await sleep(random() * 1_400);
        } else {
          // The end of a job takes milliseconds: watch the job's files directly (without yielding, from
          // the second progress line on) and strike as the step named is reached.
          await waitUntil(`${what}: the second progress line`, () => (session.job?.output ?? '').includes('working 2'), 10_000);
          const out = path.join(dir, 'output.log');
          const reached =
            moment === 'just after the scorer ends'
              ? () => fs.readFileSync(out, 'utf8').includes('done\n')
              : moment === 'as the outcome is saved'
                ? () => fs.existsSync(path.join(dir, 'outcome.json'))
                : () => logSize() > sizeBefore;
          const until = Date.now() + 5_000;
          while (!reached() && Date.now() < until) spin(0.05);
          if (moment === 'just after the scorer ends') spin(random() * 20);
        }
        process.kill(pid, 'SIGKILL');
        kills++;
        const killedAt = Date.now();
        while (processAlive(pid) && Date.now() - killedAt < 2_000) spin(0.2);
        assert.ok(!processAlive(pid), `${what}: the job process is gone`);
        // What had been saved when it died (nothing has recovered it yet: that takes a second).
        const outcomeAtDeath = readJsonFile(path.join(dir, 'outcome.json'));
        const resultAtDeath = readJsonFile(path.join(dir, 'result', 'result.json'));
        const logAtDeath = fs.existsSync(rig.statePath('score.log.jsonl')) ? fs.readFileSync(rig.statePath('score.log.jsonl'), 'utf8') : '';
        const window = fs.existsSync(path.join(dir, 'entry.json'))
          ? 'after entry.json'
          : logAtDeath.includes(jobId)
            ? 'between the log line and entry.json'
            : outcomeAtDeath
              ? 'between outcome.json and the log line'
              : 'before the outcome was saved';
        windows[window] = (windows[window] ?? 0) + 1;

        const entry = await within(scoring, 15_000, `${what}: the entry after the kill`);
        assert.equal(entry.job_id, jobId, what);
        if (outcomeAtDeath && outcomeAtDeath.killed === false) {
          // The score was computed before the kill: it must be the entry, exactly.
          if (entry.score !== outcomeAtDeath.score || entry.killed) scoresLost++;
          assert.equal(entry.score, 6, `${what} (${window}): ${JSON.stringify(entry)}`);
          assert.equal(entry.killed, false, what);
          assert.equal(entry.ended_at, outcomeAtDeath.ended_at, `${what}: the saved outcome, not a new one`);
        } else if (resultAtDeath?.score === 6) {
          // The scorer had written its result: the score is kept, saying it was recovered.
          if (entry.score !== 6) scoresLost++;
          assert.equal(entry.score, 6, `${what} (${window}): ${JSON.stringify(entry)}`);
          assert.match(entry.message, /Recovered: the scoring job was interrupted after the scorer had written this result/, what);
        } else {
          assert.equal(entry.score, null, `${what} (${window}): ${JSON.stringify(entry)}`);
          assert.equal(entry.killed, true, what);
          assert.match(entry.message, /stopped before it finished/, what);
        }
        // A scorer left behind by its dead job process was stopped.
        const scorer = readJsonFile(path.join(dir, 'scorer.json'));
        if (typeof scorer?.pgid === 'number') {
          await waitUntil(`${what}: the scorer's process group to be gone`, () => groupMembers(scorer.pgid as number).length === 0, 5_000);
        }
        const log = await rig.client.log();
        assert.equal(log.filter((e) => e.job_id === jobId).length, 1, `${what}: one entry for the job`);
        assert.deepEqual(await rig.client.verify(), INTACT(run + 1), what);
        survived++;
      }
      await settle(rig, session);
      const log = await rig.client.log();
      assert.deepEqual((await jobFolders(rig)).sort(), log.map((e) => e.job_id).sort(), 'one entry per job, none missing');
      assert.equal(assertEveryLineParses(rig), RUNS);
      assert.deepEqual(session.entries, log);
      // And the next scoring run works as usual.
      const next = await within(session.scoreNow(), 15_000, 'a scoring run after the kills');
      assert.equal(next.score, 6);
      assert.deepEqual(await rig.client.verify(), INTACT(RUNS + 1));
    } finally {
      try {
        await settle(rig, session);
        const log = await rig.client.log();
        const ids = log.map((e) => e.job_id);
        const missing = (await jobFolders(rig)).filter((j) => !ids.includes(j)).length;
        const duplicated = ids.length - new Set(ids).size;
        accounting = {
          lost: missing + duplicated + scoresLost,
          detail: `jobs without entry ${missing}, duplicated ${duplicated}, computed scores lost ${scoresLost}`,
        };
      } catch (e) {
        note(`could not count entries after the failure: ${String(e)}`);
      }
      note(`job process killed ${kills} times; where it died: ${JSON.stringify(windows)}; ${accounting?.detail ?? 'not counted'}`);
      recordFigure({
        test: 'Job process killed (kill -9) while scoring and writing',
        proves: 'A job whose process dies gets exactly one entry: its computed score if it was saved, else "no score" saying why; the log stays intact.',
        faultsInjected: kills,
        faultsSurvived: survived,
        entriesLost: accounting?.lost,
      });
    }
    assert.equal(accounting?.lost, 0, accounting?.detail);
  });

  it("the runner's channel killed during a scoring job and while idle: the job goes on, a new channel re-attaches; nothing lost, nothing twice", async function () {
    this.timeout(90_000);
    const rig = await world.rig('slow-scorer');
    const session = rig.session();
    await session.open();
    assert.ok(rig.client.usesChannel, 'commands go through the channel');
    await session.start();
    await setSlowScorer(rig, 3, '7');
    const scoring = session.scoreNow();
    await waitUntil(
      'the job to start',
      () => fs.existsSync(rig.statePath('jobs')) && fs.readdirSync(rig.statePath('jobs')).some((j) => fs.existsSync(path.join(jobDir(rig, j), 'scorer.json'))),
    );
    const first = servePid(rig);
    process.kill(first, 'SIGKILL');
    const entry = await within(scoring, 30_000, 'the entry after the channel was killed');
    assert.equal(entry.score, 7);
    assert.ok(rig.log.matching(/The runner's channel closed during score/).length >= 1, rig.log.lines.join('\n'));
    const second = servePid(rig);
    assert.notEqual(second, first, 'a new channel was opened');
    // Killed while idle: the next command opens another channel and is answered.
    process.kill(second, 'SIGKILL');
    await waitUntil('the channel to notice', () => !rig.client.usesChannel, 10_000);
    const { status } = await rig.client.status();
    assert.equal(status.entries, 1);
    assert.ok(rig.client.usesChannel);
    assert.deepEqual(await rig.client.verify(), INTACT(1));
    assert.equal((await rig.client.log()).length, 1);
  });

  it('a torn last line (half a JSON line): log still reads, verify names it, the next run works and leaves the fragment as evidence', async () => {
    const rig = await world.rig('slow-scorer');
    const session = rig.session();
    await session.open();
    await session.start();
    await setSlowScorer(rig, 0.2, '3');
    const first = await session.scoreNow();
    const second = await session.scoreNow();
    const logFile = rig.statePath('score.log.jsonl');
    const whole = fs.readFileSync(logFile, 'utf8');
    // Half of a plausible third line, as left by a machine that stopped in the middle of an append.
    const fragment = whole.split('\n')[1]!.slice(0, 97).replace('"index":1', '"index":2');
    fs.appendFileSync(logFile, fragment);

    assert.deepEqual(await rig.client.log(), [first, second], 'the torn line is not an entry');
    const torn = 'line 2: the last line is incomplete (the runner was interrupted while writing it); it is not an entry';
    assert.deepEqual(await rig.client.verify(), { intact: false, entries: 2, first_bad: 2, reason: torn });
    await session.refresh();
    assert.equal(session.snapshot().logIntact, false);
    assert.equal(session.snapshot().logProblem, torn);
    assert.deepEqual(session.entries, [first, second]);

    const third = await session.scoreNow();
    assert.equal(third.score, 3);
    assert.equal(third.index, 3, 'the fragment keeps its line; the new entry takes the next one');
    assert.equal(third.prev_hash, second.hash, 'and links to the last good entry');
    assert.deepEqual(await rig.client.log(), [first, second, third]);
    const verdict = await rig.client.verify();
    assert.equal(verdict.intact, false, 'the fragment stays as evidence of the interrupted write');
    assert.equal(verdict.first_bad, 2);
    assert.match(verdict.reason ?? '', /^line 2: not valid JSON/);
    const after = fs.readFileSync(logFile, 'utf8');
    assert.ok(after.startsWith(`${whole}${fragment}\n`), 'the log before the fragment is unchanged and the fragment was ended with a newline');
    assert.deepEqual(scoreLogEntrySchema.parse(JSON.parse(after.slice(whole.length + fragment.length + 1))), third);
    recordFigure({
      test: 'Torn last line in the score log',
      proves: 'Half a line at the end of the log is reported by verify, left out of the history, and does not stop the next scoring run.',
      faultsInjected: 1,
      faultsSurvived: 1,
      entriesLost: 0,
    });
  });

  it('a torn last line that is a whole entry (only its newline lost) is an entry again after the next run: nothing lost', async () => {
    const rig = await world.rig('slow-scorer');
    const session = rig.session();
    await session.open();
    await session.start();
    await setSlowScorer(rig, 0.2, '5');
    const first = await session.scoreNow();
    const second = await session.scoreNow();
    const logFile = rig.statePath('score.log.jsonl');
    fs.truncateSync(logFile, fs.statSync(logFile).size - 1);

    assert.deepEqual(await rig.client.log(), [first], 'a line without its newline is not an entry yet');
    assert.deepEqual(await rig.client.verify(), {
      intact: false,
      entries: 1,
      first_bad: 1,
      reason: 'line 1: the last line is incomplete (the runner was interrupted while writing it); it is not an entry',
    });
    const third = await session.scoreNow();
    assert.equal(third.index, 2);
    assert.equal(third.prev_hash, second.hash);
    assert.deepEqual(await rig.client.log(), [first, second, third], 'the torn entry is back, unchanged');
    assert.deepEqual(await rig.client.verify(), INTACT(3));
    assert.equal(assertEveryLineParses(rig), 3);
    recordFigure({
      test: 'Score log entry that lost its newline',
      proves: 'An entry written whole but without its newline is restored by the next append; the log verifies again and no score is lost.',
      faultsInjected: 1,
      faultsSurvived: 1,
      entriesLost: 0,
    });
  });

  it('refreshes racing the end of scoring jobs never show a finished job as running again, nor close Score now', async function () {
    const JOBS = 8;
    const pace = seededRandom(SEED + 3);
    const rig = await world.rig('slow-scorer');
    const session = rig.session();
    await session.open();
    await session.start();
    await setSlowScorer(rig, 0.6, '1');
    const reported = new Set<string>();
    session.on('onEntry', (e) => reported.add(e.job_id));
    // A job is over once its entry was reported and the Session stopped showing it.
    const over = new Set<string>();
    const shownAgain: string[] = [];
    session.on('onChange', () => {
      const current = session.job?.jobId;
      if (current !== undefined && over.has(current)) shownAgain.push(current);
      for (const id of reported) if (id !== current) over.add(id);
    });
    let refreshes = 0;
    for (let n = 0; n < JOBS; n++) {
      await settle(rig, session);
      const scoring = session.scoreNow();
      // Status and log reads keep starting while the job ends, as on reconnecting or from a timer.
      let done = false;
      const spam = (async () => {
        while (!done) {
          await session.refresh().catch(() => undefined);
          refreshes++;
          await sleep(pace() * 30);
        }
      })();
      const entry = await within(scoring, 15_000, `job ${n}`);
      // Score now is open as soon as the entry is there, and stays open while the refreshes go on.
      assert.equal(session.scoreDisabledReason(), null, `job ${n}: Score now open right after the entry`);
      for (let i = 0; i < 10; i++) {
        await session.refresh();
        assert.equal(session.job, undefined, `job ${n} (${entry.job_id}) shows as running again after its entry`);
        assert.equal(session.scoreDisabledReason(), null, `job ${n}: Score now stays open`);
      }
      done = true;
      await spam;
    }
    assert.deepEqual(shownAgain, [], 'no finished job was shown as running again');
    assert.equal((await rig.client.log()).length, JOBS);
    note(`${JOBS} jobs with ${refreshes} refreshes racing their ends`);
    recordFigure({
      test: 'Refreshes racing the end of scoring jobs',
      proves: 'A status read while a job ends never brings the finished job back as running or closes Score now again.',
      faultsInjected: refreshes,
      faultsSurvived: shownAgain.length === 0 ? refreshes : 0,
      entriesLost: 0,
    });
  });

  it('twenty "Score now" requests within a second: one job at a time, the others follow it or are told it is busy; no corrupt line', async function () {
    this.timeout(120_000);
    const rig = await world.rig('slow-scorer');
    await rig.client.ensureRunnerSetUp();
    await rig.client.start();
    let requests = 0;
    let answered = 0;
    let entriesLost: number | undefined;
    try {
      // 1. Twenty client.score() at once over one connection: one job; every caller gets its entry.
      await setSlowScorer(rig, 4, '2');
      requests += 20;
      const results = await within(Promise.allSettled(Array.from({ length: 20 }, () => rig.client.score())), 30_000, 'twenty Score now');
      const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason));
      assert.deepEqual(failures, [], 'every request became the job or followed it');
      const entries = results.map((r) => (r as PromiseFulfilledResult<ScoreLogEntry>).value);
      const jobIds = new Set(entries.map((e) => e.job_id));
      assert.equal(jobIds.size, 1, `one job for twenty requests: ${[...jobIds].join(', ')}`);
      answered += entries.length;
      assert.deepEqual(await jobFolders(rig), [...jobIds]);
      const busy = rig.log.matching(/A scoring job is already running \(.*\); following it\./);
      assert.equal(busy.length, 19, 'nineteen requests were told "busy" and followed the running job');

      // 2. Twenty raw `runner score --json` on the VM at once, and twenty spread over a second with
      //    short jobs, so that several jobs start and end inside the burst.
      const prefix = `python3 ${shellQuote(`${rig.runnerHome}/runner.pyz`)} --home ${shellQuote(rig.runnerHome)}`;
      const burst = async (spreadS: number) => {
        const script = [
          'out=$(mktemp -d)',
          'for i in $(seq 0 19); do',
          `  ( sleep "$(awk -v i="$i" 'BEGIN { printf "%.3f", i * ${spreadS} / 20 }')"; ${prefix} score --json > "$out/$i.out" 2>"$out/$i.err"; echo $? > "$out/$i.rc" ) &`,
          'done',
          'wait',
          'for i in $(seq 0 19); do printf "%s\\t%s\\n" "$(cat "$out/$i.rc")" "$(cat "$out/$i.out")"; done',
          'rm -rf "$out"',
        ].join('\n');
        const before = new Set(await jobFolders(rig));
        const r = await rig.target.exec(script);
        assert.equal(r.code, 0, r.stderr);
        const replies = r.stdout
          .trim()
          .split('\n')
          .map((line) => {
            const [rc, json] = line.split('\t') as [string, string];
            return { rc: Number(rc), reply: JSON.parse(json) as Record<string, unknown> };
          });
        assert.equal(replies.length, 20);
        // Let the last job finish, then look at what happened.
        await waitUntil(
          "the burst's jobs to finish",
          () => fs.readdirSync(rig.statePath('jobs')).every((j) => fs.existsSync(path.join(jobDir(rig, j), 'entry.json'))),
          20_000,
        );
        const created = (await jobFolders(rig)).filter((f) => !before.has(f));
        const started = replies.filter((x) => x.rc === 0).map((x) => x.reply);
        const refused = replies.filter((x) => x.rc === 3).map((x) => x.reply.error as { code: string; message: string; job?: { job_id: string } });
        assert.equal(started.length + refused.length, 20, `every request started a job or was told busy: ${JSON.stringify(replies)}`);
        for (const s of started) assert.equal(s.type, 'job');
        assert.deepEqual(started.map((s) => s.job_id).sort(), created.sort(), 'each started reply names a job that ran');
        for (const b of refused) {
          assert.equal(b.code, 'busy');
          assert.ok(b.job && created.includes(b.job.job_id), `busy names a job of the burst: ${JSON.stringify(b)}`);
          assert.ok(b.message.includes(b.job.job_id), `the message names the job: ${b.message}`);
        }
        requests += 20;
        answered += started.length + refused.length;
        return { jobs: created.length, busy: refused.length };
      };
      const together = await burst(0);
      assert.equal(together.jobs, 1, 'twenty requests at the same moment: one job');
      await setSlowScorer(rig, 0.1, '2');
      const spread = await burst(1);
      assert.ok(spread.jobs >= 2, `short jobs within a second of requests: several ran one after another (${spread.jobs})`);
      note(`raw bursts: at once -> ${together.jobs} job, ${together.busy} busy; over 1 s -> ${spread.jobs} jobs, ${spread.busy} busy`);

      const log = await rig.client.log();
      assert.equal(log.length, 1 + together.jobs + spread.jobs);
      assertNoOverlap(log);
      assert.deepEqual(await rig.client.verify(), INTACT(log.length));
      assert.equal(assertEveryLineParses(rig), log.length);
      const refusedEvents = fs
        .readFileSync(rig.statePath('events.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { event: string; reason?: string })
        .filter((e) => e.event === 'refused' && e.reason === 'busy');
      assert.equal(refusedEvents.length, 19 + together.busy + spread.busy, 'every busy answer is recorded');
      const ids = log.map((e) => e.job_id);
      entriesLost = (await jobFolders(rig)).filter((j) => !ids.includes(j)).length + (ids.length - new Set(ids).size);
      assert.equal(entriesLost, 0, 'every job has one entry');
    } finally {
      recordFigure({
        test: 'Twenty Score now requests within a second',
        proves: 'Concurrent scoring requests (client and raw runner) run one job at a time; every request gets the job or a clear busy answer naming it.',
        faultsInjected: requests,
        faultsSurvived: answered,
        entriesLost,
      });
    }
  });
});

for (const shift of ['+2h', '-2h']) {
  describe(`Faults: the VM's clock is ${shift.slice(1)} ${shift.startsWith('+') ? 'ahead of' : 'behind'} this machine (libfaketime)`, function () {
    this.timeout(60_000);
    const world = new SessionWorld('ssh');
    let shmBefore = new Set<string>();
    before(async () => {
      shmBefore = faketimeShmNames();
      world.sshd = await startSshdWithClockShift(shift);
    });
    after(async () => {
      await world.after();
      removeFaketimeShm(shmBefore);
    });
    beforeEach(() => world.beforeEach());
    afterEach(() => world.afterEach());

    it('the offset is measured, the countdown and deadline are right on this machine, and scoring works', async () => {
      const expectedOffset = shiftMs(shift);
      const rig = await world.rig('slow-scorer', { manifest: { time_limit_s: 3600 } });
      // The shift is real on the VM: its clock, as a program there reads it.
      const vmNow = Number((await rig.sh('date +%s%3N')).trim());
      assert.ok(Math.abs(vmNow - Date.now() - expectedOffset) < 2_000, `date over SSH is ${vmNow - Date.now()} ms off, expected ${expectedOffset}`);

      const session = rig.session();
      await session.open();
      const beforeStart = Date.now();
      await session.start();
      const afterStart = Date.now();
      const offset = rig.client.clock.offsetMs;
      assert.ok(Math.abs(offset - expectedOffset) < 1_000, `measured offset ${offset} ms, expected ${expectedOffset} ms`);
      // Started at the VM's now: on this machine that is between the two readings around start().
      const startedLocal = Date.parse(session.status!.started_at!) - expectedOffset;
      assert.ok(startedLocal >= beforeStart - 1_000 && startedLocal <= afterStart + 1_000, 'the session started now, by the VM clock');

      await sleep(1_500);
      let worst = 0;
      const check = (when: string) => {
        const now = Date.now();
        const left = session.secondsLeft(now);
        const expected = 3600 - (now - beforeStart) / 1000;
        if (left !== null) worst = Math.max(worst, Math.abs(left - expected));
        assert.ok(left !== null && Math.abs(left - expected) <= 2, `${when}: ${left} s left, expected ${expected.toFixed(1)} s`);
        const view = session.snapshot(now).session!;
        assert.ok(view.deadlineLocalMs !== null && Math.abs(view.deadlineLocalMs - (now + left * 1000)) <= 2_000, `${when}: deadline on this machine`);
        assert.ok(Math.abs(view.deadlineLocalMs - (beforeStart + 3_600_000)) <= 2_000, `${when}: deadline one hour after the start, on this machine`);
        assert.ok(Math.abs(view.clockOffsetMs - expectedOffset) < 1_000, `${when}: the view's clock offset ${view.clockOffsetMs} ms`);
        return left;
      };
      check('after the start');
      assert.equal(session.scoreDisabledReason(), null, 'scoring is open: the hours of offset are not taken for elapsed time');

      await setSlowScorer(rig, 0.5, '9');
      const entry = await session.scoreNow();
      assert.equal(entry.score, 9);
      assert.equal(entry.counts, true);
      const startedOnVm = Date.parse(entry.started_at) - expectedOffset;
      assert.ok(Math.abs(startedOnVm - Date.now()) < 5_000, `the job's times are the VM's: ${entry.started_at}`);
      await session.refresh();
      check('after a scoring run and a refresh');
      note(`VM clock ${shift}: measured offset ${(offset / 1000).toFixed(3)} s; countdown off the real elapsed time by ${worst.toFixed(2)} s at most`);
      recordFigure({
        test: `VM clock ${shift.slice(1)} ${shift.startsWith('+') ? 'ahead of' : 'behind'} this machine`,
        proves: `With the VM clock ${shift} off, the client measures the offset (${(offset / 1000).toFixed(1)} s), counts down to the VM's deadline correctly and scoring stays open.`,
        faultsInjected: 1,
        faultsSurvived: 1,
        entriesLost: 0,
      });
    });
  });
}

describe('Faults: this machine sleeps (the event loop stalls for 20 s)', function () {
  this.timeout(90_000);
  const world = new SessionWorld('ssh');
  before(async () => {
    // The VM gives up on a client that does not answer for ~3 s, as a real server or NAT does with a
    // laptop that sleeps: the connection is dead when this machine wakes up.
    world.sshd = await startSshd({ extraConfig: ['ClientAliveInterval 1', 'ClientAliveCountMax 2'] });
  });
  after(() => world.after());
  beforeEach(() => world.beforeEach());
  afterEach(() => world.afterEach());

  it('after the stall the countdown is right, the connection comes back by itself, and scoring works', async function () {
    const STALL_MS = 20_000;
    const INTERVAL = 1_000;
    const COUNT_MAX = 2;
    assert.ok(STALL_MS > INTERVAL * (COUNT_MAX + 1), 'the stall is longer than the keepalive bound');
    const rig = await world.rig('slow-scorer', {
      ssh: { keepaliveIntervalMs: INTERVAL, keepaliveCountMax: COUNT_MAX, readyTimeoutMs: 5_000, reconnect: { initialDelayMs: 300, maxDelayMs: 2_000 } },
    });
    const session = rig.session();
    await session.open();
    await session.start();
    await setSlowScorer(rig, 0.5, '7');
    const states = recordStates(rig.target);
    let survived = 0;
    let entriesLost: number | undefined;
    try {
      const leftBefore = session.secondsLeft()!;
      const stallStart = Date.now();
      blockFor(STALL_MS);
      const leftAfter = session.secondsLeft()!; // before anything else runs: the countdown alone
      const stalledS = (Date.now() - stallStart) / 1000;
      assert.ok(Math.abs(leftBefore - leftAfter - stalledS) <= 1.5, `the countdown dropped ${leftBefore - leftAfter} s over a ${stalledS} s stall`);

      const wokeAt = Date.now();
      await waitUntil("the VM's disconnect to be noticed", () => states.some((s) => s.kind !== 'connected'), 10_000);
      await waitUntil('the connection to come back by itself', () => rig.target.state.kind === 'connected', 20_000);
      const recovered = Date.now() - wokeAt;
      const kinds = states.map((s) => s.kind);
      assert.equal(kinds[0], 'reconnecting', `states after waking: ${kinds.join(' ')}`);
      assert.equal(kinds[kinds.length - 1], 'connected');
      assert.ok(!kinds.includes('failed'), kinds.join(' '));
      note(`woke after ${stalledS.toFixed(1)} s; connection back ${recovered} ms later (${kinds.join(' -> ')})`);

      await settle(rig, session);
      const fresh = (await rig.client.status()).status;
      const left = session.secondsLeft()!;
      assert.ok(fresh.seconds_left !== null && Math.abs(left - fresh.seconds_left) <= 2, `countdown ${left} s, the VM says ${fresh.seconds_left} s`);
      assert.equal(session.scoreDisabledReason(), null);
      const entry = await within(session.scoreNow(), 20_000, 'a scoring run after the sleep');
      assert.equal(entry.score, 7);
      assert.deepEqual(await rig.client.verify(), INTACT(1));
      survived = 1;
      entriesLost = 0;
    } finally {
      recordFigure({
        test: 'This machine sleeps for 20 s (event loop blocked)',
        proves: 'After a sleep longer than the keepalive bound the countdown is right, the dropped connection returns without a click, and scoring works.',
        faultsInjected: 1,
        faultsSurvived: survived,
        entriesLost,
      });
    }
  });
});

// RunnerClient and Session against the real runner, over both targets: this machine (a temporary
// home) and a VM over SSH (a private sshd on loopback). The client uploads the runner and the
// environment itself, as the extension does in unprotected mode.

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUNNER_VERSION, scoreLogEntrySchema } from '../../src/core/runnerProtocol';
import { SessionError } from '../../src/core/errors';
import { countedEntry } from '../../src/core/scores';
import { hashEnvironment } from '../../src/core/environmentTree';
import { RunnerCommandError, type JobHandlers } from '../../src/core/runnerClient';
import { RUNNER_SOURCE, SessionWorld, TARGET_KINDS, jobFolders, setSlowScorer, waitUntil } from '../support/sessionFixture';

const isRefused = (pattern: RegExp) => (e: unknown) => {
  assert.ok(e instanceof RunnerCommandError, `expected a RunnerCommandError, got ${String(e)}`);
  assert.equal(e.runnerError.code, 'refused');
  assert.equal(e.code, 'runner-refused');
  assert.match(e.message, pattern);
  return true;
};

const isScoreDisabled = (pattern: RegExp) => (e: unknown) => {
  assert.ok(e instanceof SessionError && e.code === 'score-disabled', `expected score-disabled, got ${String(e)}`);
  assert.match(e.message, pattern);
  return true;
};

/** Output and job events one follower saw, with the time each arrived. */
function collector(): JobHandlers & { jobs: string[]; chunks: Array<{ text: string; at: number }>; text(): string } {
  const jobs: string[] = [];
  const chunks: Array<{ text: string; at: number }> = [];
  return {
    jobs,
    chunks,
    text: () => chunks.map((c) => c.text).join(''),
    onJob: (job) => jobs.push(job.job_id),
    onOutput: (text) => chunks.push({ text, at: Date.now() }),
  };
}

for (const kind of TARGET_KINDS) {
  describe(`Session over ${kind === 'local' ? 'this machine' : 'SSH'}`, function () {
    this.timeout(60_000);
    const world = new SessionWorld(kind);
    before(() => world.before());
    after(() => world.after());
    beforeEach(() => world.beforeEach());
    afterEach(() => world.afterEach());

    it('prepare() uploads the runner and the environment and sets up; a second prepare re-uploads nothing and keeps the session', async () => {
      const rig = await world.rig('slow-scorer');
      const status = await rig.client.ensureRunnerSetUp();
      assert.equal(status.state, 'not_started');
      assert.equal(status.mode, 'unprotected');
      assert.equal(status.runner_version, RUNNER_VERSION);
      assert.equal(status.environment.id, 'slow-scorer');
      assert.equal(status.solution_dir, rig.solutionDir);
      assert.equal(status.started_at, null);

      assert.equal(rig.log.matching(/Uploading the runner 1\.1\.0 to .*\/\.rebench\/runner\.pyz \(found none\)/).length, 1, rig.log.lines.join('\n'));
      assert.equal(rig.log.matching(/Uploading environment slow-scorer/).length, 1);
      assert.ok((await rig.target.readFile(`${rig.runnerHome}/runner.pyz`)).equals(fs.readFileSync(RUNNER_SOURCE)));
      assert.equal((await rig.sh(`stat -c %a ${rig.runnerHome}/runner.pyz`)).trim(), '755');
      const envDir = `${rig.runnerHome}/environments/slow-scorer`;
      assert.equal((await rig.readText(`${envDir}/.bundle-hash`)).trim(), hashEnvironment(rig.environmentSource).sha256);
      assert.equal(await rig.readText(`${envDir}/score.py`), fs.readFileSync(path.join(rig.environmentSource, 'score.py'), 'utf8'));
      // setup copied the starting solution into the participant's folder
      assert.equal((await rig.readText(`${rig.solutionDir}/delay_s`)).trim(), '5');

      // Unchanged: nothing is uploaded again.
      let mark = rig.log.lines.length;
      assert.equal((await rig.client.ensureRunnerSetUp()).state, 'not_started');
      assert.deepEqual(rig.log.matching(/Uploading/, mark), []);

      // Changed locally before the start: the environment (only) is uploaded again.
      fs.appendFileSync(path.join(rig.environmentSource, 'instructions.md'), '\nRevised before the start.\n');
      mark = rig.log.lines.length;
      await rig.client.ensureRunnerSetUp();
      assert.deepEqual(
        rig.log.matching(/Uploading/, mark).map((l) => l.replace(/ to .*/, '')),
        ['info Uploading environment slow-scorer'],
      );
      assert.match(await rig.readText(`${envDir}/instructions.md`), /Revised before the start/);

      const started = await rig.client.start();
      await rig.writeText(`${rig.solutionDir}/score.txt`, 'my work\n');

      // After the start: a fresh client (a new window) re-uploads nothing and resets nothing.
      const again = await world.rig('slow-scorer');
      const kept = await again.client.ensureRunnerSetUp();
      assert.deepEqual(again.log.matching(/Uploading/), []);
      assert.equal(kept.state, 'running');
      assert.equal(kept.started_at, started.started_at);
      assert.equal(kept.deadline, started.deadline);
      assert.equal(await again.readText(`${again.solutionDir}/score.txt`), 'my work\n', 'setup never overwrites the solution');

      // Changed locally after the start: the VM's copy is kept, with a warning.
      fs.appendFileSync(path.join(rig.environmentSource, 'instructions.md'), '\nRevised after the start.\n');
      mark = rig.log.lines.length;
      assert.equal((await rig.client.ensureRunnerSetUp()).started_at, started.started_at);
      assert.deepEqual(rig.log.matching(/Uploading/, mark), []);
      assert.equal(rig.log.matching(/warn The environment on .* differs .* the VM's copy is kept/, mark).length, 1);
      assert.doesNotMatch(await rig.readText(`${envDir}/instructions.md`), /after the start/);
    });

    it('measures the clock offset: near zero on one machine, with the round trip recorded', async () => {
      const rig = await world.rig('slow-scorer');
      await rig.client.ensureRunnerSetUp();
      const before = Date.now();
      const { status, offset } = await rig.client.status();
      const after = Date.now();
      assert.ok(offset.rttMs > 0 && offset.rttMs <= after - before, `rtt ${offset.rttMs} within the call's ${after - before} ms`);
      assert.ok(offset.takenAtMs >= before && offset.takenAtMs <= after);
      // One clock: the runner read it during the round trip, so the estimate is off by at most half of it
      // (plus the millisecond the runner rounds to).
      assert.ok(Math.abs(offset.offsetMs) <= offset.rttMs / 2 + 1, `offset ${offset.offsetMs} ms, rtt ${offset.rttMs} ms`);
      const best = rig.client.clock.best();
      assert.ok(best, 'the client keeps the samples');
      assert.ok(best.rttMs <= offset.rttMs, 'the best sample has the smallest round trip');
      assert.equal(rig.client.clock.offsetMs, best.offsetMs);
      assert.ok(Math.abs(rig.client.clock.offsetMs) <= best.rttMs / 2 + 1);
      assert.ok(Math.abs(Date.parse(status.now) - (before + after) / 2) <= (after - before) / 2 + 1);

      const session = rig.session();
      await session.open();
      assert.equal(session.snapshot().session?.clockOffsetMs, rig.client.clock.offsetMs);
    });

    it('start() sets the deadline to start + time limit, and starting again changes nothing', async () => {
      const rig = await world.rig('slow-scorer');
      const session = rig.session();
      await session.open();
      assert.equal(session.status?.state, 'not_started');
      assert.equal(session.secondsLeft(), null);
      const asked = Date.now();
      await session.start();
      const s = session.status!;
      assert.equal(s.state, 'running');
      assert.ok(s.started_at && s.deadline);
      assert.equal(Date.parse(s.deadline) - Date.parse(s.started_at), 3600_000, 'deadline = start + time_limit_s');
      assert.equal(s.environment.time_limit_s, 3600);
      assert.ok(Math.abs(Date.parse(s.started_at) - asked) < 5_000, `started_at ${s.started_at} is now`);
      const left = session.secondsLeft()!;
      assert.ok(left <= 3600 && left > 3590, `seconds left ${left}`);

      const again = await rig.client.start();
      assert.equal(again.started_at, s.started_at);
      assert.equal(again.deadline, s.deadline);
      await session.start();
      assert.equal(session.status?.started_at, s.started_at);
    });

    it('instructions() is refused before the start and returned after it', async () => {
      const rig = await world.rig('slow-scorer');
      await rig.client.ensureRunnerSetUp();
      await assert.rejects(rig.client.instructions(), isRefused(/shown once the session starts/));
      await rig.client.start();
      const shown = await rig.client.instructions();
      assert.equal(shown.title, 'Slow scorer (test environment)');
      assert.equal(shown.markdown, fs.readFileSync(path.join(rig.environmentSource, 'instructions.md'), 'utf8'));
    });

    it('Score now on the demo streams the output as it comes, then the validated entry and the counted score', async () => {
      const rig = await world.rig('demo-fast-function');
      const session = rig.session();
      await session.open();
      await session.start();
      assert.equal(session.scoreDisabledReason(), null);

      const seen: Array<{ what: 'output' | 'entry'; text?: string; at: number }> = [];
      let jobIdSeen: string | undefined;
      session.on('onJobOutput', (jobId, text) => {
        jobIdSeen = jobId;
        seen.push({ what: 'output', text, at: Date.now() });
      });
      session.on('onEntry', () => seen.push({ what: 'entry', at: Date.now() }));
      let runningSeen = false;
      session.on('onChange', () => {
        if (session.job) runningSeen = true;
      });

      const entry = await session.scoreNow();
      const resolvedAt = Date.now();
      assert.ok(runningSeen, 'the Session showed the running job');
      assert.equal(jobIdSeen, entry.job_id);
      assert.deepEqual(scoreLogEntrySchema.parse(entry), entry);
      assert.equal(entry.kind, 'score');
      assert.equal(entry.index, 0);
      assert.equal(entry.counts, true);
      assert.equal(entry.exit_code, 0);
      assert.equal(typeof entry.score, 'number', `the starting solution scores: ${entry.message}`);
      assert.match(entry.message, /^Correct\. Median time/);

      const outputs = seen.filter((s) => s.what === 'output');
      const entryAt = seen.findIndex((s) => s.what === 'entry');
      assert.ok(outputs.length >= 3, `several output events (${outputs.length})`);
      assert.equal(entryAt, seen.length - 1, 'the entry comes after all output');
      // Streamed, not delivered at the end: the first line ("Loading ...") came long before the entry.
      assert.ok(resolvedAt - outputs[0]!.at >= 500, `first output ${resolvedAt - outputs[0]!.at} ms before the entry`);
      assert.match(outputs[0]!.text!, /^Loading /);

      // Exactly what the job wrote, no more, no less.
      const streamed = outputs.map((o) => o.text).join('');
      assert.equal(streamed, await rig.readText(rig.statePath('jobs', entry.job_id, 'output.log')));
      assert.equal(Buffer.byteLength(streamed), entry.output_bytes);

      assert.deepEqual(session.entries, [entry]);
      assert.equal(session.job, undefined);
      const counted = countedEntry(session.entries, 'lower', 'best');
      assert.equal(counted?.index, 0);
      assert.equal(session.snapshot().countedIndex, 0);
      await session.refresh();
      assert.equal(session.status?.counted?.index, 0);
      assert.equal(session.status?.counted?.score, entry.score);
      // normalised: (y - y_s) / (y_r - y_s) with y_s = 6.3, y_r = 2.0
      assert.ok(Math.abs(session.status!.counted!.normalized - (entry.score! - 6.3) / (2.0 - 6.3)) < 1e-9);
    });

    it('a second score request while a job runs follows that job and gets the same entry; no second job', async () => {
      const rig = await world.rig('slow-scorer');
      const session = rig.session();
      await session.open();
      await session.start();
      await setSlowScorer(rig, 3, '4.5');

      const first = session.scoreNow();
      await waitUntil('the scoring job to start', () => session.job !== undefined);
      const jobId = session.job!.jobId;
      assert.equal(session.scoreDisabledReason(), 'A scoring job is running.');
      await assert.rejects(session.scoreNow(), isScoreDisabled(/A scoring job is running/));
      await assert.rejects(rig.client.pause(), isRefused(/scoring job/));

      const mark = rig.log.lines.length;
      const second = collector();
      const [a, b] = await Promise.all([first, rig.client.score(second)]);
      assert.equal(rig.log.matching(new RegExp(`already running \\(${jobId}\\); following it`), mark).length, 1, rig.log.lines.join('\n'));
      assert.deepEqual(second.jobs, [jobId]);
      assert.equal(a.job_id, jobId);
      assert.deepEqual(b, a);
      assert.equal(a.score, 4.5);
      // The follower attached from the start, so it saw all of the job's output.
      assert.equal(second.text(), await rig.readText(rig.statePath('jobs', jobId, 'output.log')));
      assert.deepEqual(await jobFolders(rig), [jobId]);
      assert.equal((await rig.client.log()).length, 1);
      assert.deepEqual(session.entries, [a]);
    });

    it('log(from) lists entries from an index and verify() checks the chain (and catches an edit)', async () => {
      const rig = await world.rig('slow-scorer');
      const session = rig.session();
      await session.open();
      await session.start();
      assert.deepEqual(await rig.client.log(), []);
      assert.deepEqual(await rig.client.verify(), { intact: true, entries: 0, first_bad: null, reason: null });

      await setSlowScorer(rig, 0.1, '2');
      const e0 = await session.scoreNow();
      await setSlowScorer(rig, 0.1, 'nan');
      const e1 = await session.scoreNow();
      assert.deepEqual([e0.index, e1.index], [0, 1]);
      assert.equal(e1.score, null, 'no score is null, never 0');
      assert.equal(e1.prev_hash, e0.hash);

      assert.deepEqual(await rig.client.log(0), [e0, e1]);
      assert.deepEqual(await rig.client.log(1), [e1]);
      assert.deepEqual(await rig.client.log(2), []);
      assert.deepEqual(await rig.client.verify(), { intact: true, entries: 2, first_bad: null, reason: null });

      // Someone edits the first score by hand.
      const logFile = rig.statePath('score.log.jsonl');
      const lines = (await rig.readText(logFile)).split('\n');
      assert.match(lines[0]!, /"score":2\.0,/);
      lines[0] = lines[0]!.replace('"score":2.0,', '"score":9.0,');
      await rig.writeText(logFile, lines.join('\n'));
      const verdict = await rig.client.verify();
      assert.equal(verdict.intact, false);
      assert.equal(verdict.first_bad, 0);
      assert.match(verdict.reason ?? '', /hash does not match/);
      await session.refresh();
      assert.equal(session.status?.log_intact, false);
      assert.match(session.logProblem ?? '', /line 0: hash does not match/);
    });

    it('refuses what the session state does not allow, with clear errors; end() closes scoring', async () => {
      const rig = await world.rig('demo-fast-function'); // pauses are not allowed in the demo
      const session = rig.session();
      await session.open();

      assert.equal(session.scoreDisabledReason(), 'Start the session first.');
      await assert.rejects(session.scoreNow(), isScoreDisabled(/Start the session first/));
      await assert.rejects(rig.client.score(), isRefused(/has not started\. Start it first/));
      assert.deepEqual(await jobFolders(rig), [], 'a refused request starts no job');

      await session.start();
      await assert.rejects(session.pause(), isRefused(/pause/i));
      assert.equal(session.status?.state, 'running');

      await session.end();
      assert.equal(session.status?.state, 'ended');
      assert.ok(session.status?.ended_at);
      assert.equal(session.secondsLeft(), 0);
      assert.equal(session.scoreDisabledReason(), 'The session has ended: scoring is closed.');
      await assert.rejects(session.scoreNow(), isScoreDisabled(/ended/));
      await assert.rejects(rig.client.score(), isRefused(/session ended at .* Nothing more can be scored/));
      await assert.rejects(rig.client.resume(), isRefused(/./));
      assert.equal((await rig.client.end()).ended_at, session.status?.ended_at, 'ending again changes nothing');
      assert.deepEqual(await jobFolders(rig), []);

      const refusals = (await rig.readText(rig.statePath('events.jsonl')))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { event: string; action?: string })
        .filter((e) => e.event === 'refused')
        .map((e) => e.action);
      assert.deepEqual(refusals, ['score', 'pause', 'score', 'resume'], 'every refusal is recorded');
    });
  });
}

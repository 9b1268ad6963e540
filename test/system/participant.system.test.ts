// What the participant keeps, says and agrees to, through RunnerClient against the real runner over both
// targets (this machine and a private sshd on loopback), through the runner's channel and one-shot commands:
// kept solutions and their restore, notes, the rules confirmed, giving up, the end questions, and the
// starting score measured on the participant's machine.

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RunnerCommandError } from '../../src/core/runnerClient';
import { loadHostSpecs } from '../../src/organiser/hosts';
import { OUTPUT_FILES, runCollection } from '../../src/organiser/output';
import { SessionWorld, TARGET_KINDS, setSlowScorer } from '../support/sessionFixture';

const RULES = ['AI assistants may not be used.', 'Internet use is allowed.'];
const QUESTIONS = [
  { id: 'difficulty', text: 'How hard was it?', type: 'scale' },
  { id: 'used_ai', text: 'Did you use an AI assistant?', type: 'choice', choices: ['yes', 'no'] },
];

const isRunnerError = (code: string, pattern: RegExp) => (e: unknown) => {
  assert.ok(e instanceof RunnerCommandError, `expected a RunnerCommandError, got ${String(e)}`);
  assert.equal(e.runnerError.code, code);
  assert.match(e.message, pattern);
  return true;
};

for (const kind of TARGET_KINDS) {
  for (const channel of [true, false]) {
    describe(`Participant records and kept solutions over ${kind === 'local' ? 'this machine' : 'SSH'}${channel ? '' : ', one-shot commands'}`, function () {
      this.timeout(60_000);
      const world = new SessionWorld(kind);
      before(() => world.before());
      after(() => world.after());
      beforeEach(() => world.beforeEach());
      afterEach(() => world.afterEach());

      it('keeps each scored solution, shows its changes and a kept file, restores it and undoes the restore', async () => {
        const rig = await world.rig('slow-scorer', { channel });
        await rig.client.ensureRunnerSetUp();
        await setSlowScorer(rig, 0, '3');
        await rig.client.start();
        const first = await rig.client.score();
        assert.ok(first.snapshot && 'id' in first.snapshot, JSON.stringify(first.snapshot));
        const kept = first.snapshot.id;
        await rig.writeText(path.posix.join(rig.solutionDir, 'score.txt'), 'broken');
        await rig.writeText(path.posix.join(rig.solutionDir, 'scratch.py'), 'x = 1\n');
        const changes = await rig.client.snapshotChanges(kept);
        assert.deepEqual(
          changes.changes.map((c) => [c.path, c.change]),
          [
            ['score.txt', 'modified'],
            ['scratch.py', 'added'],
          ],
        );
        assert.equal((await rig.client.snapshotFile(kept, 'score.txt')).toString(), '3\n');
        const plan = await rig.client.restorePlan(kept);
        assert.deepEqual([plan.write, plan.delete], [['score.txt'], ['scratch.py']]);
        assert.equal(await rig.readText(path.posix.join(rig.solutionDir, 'score.txt')), 'broken', 'a plan changes nothing');
        const restored = await rig.client.restore(kept);
        assert.equal(await rig.readText(path.posix.join(rig.solutionDir, 'score.txt')), '3\n');
        await assert.rejects(rig.readText(path.posix.join(rig.solutionDir, 'scratch.py')));
        const records = await rig.client.records();
        assert.deepEqual(
          records.records.map((r) => r.kind),
          ['restore'],
        );
        await rig.client.restore(restored.kept_as.id);
        assert.equal(await rig.readText(path.posix.join(rig.solutionDir, 'scratch.py')), 'x = 1\n', 'the restore was undone');
        const tar = await rig.client.exportSnapshot(kept);
        assert.equal(tar.subarray(0, 2).toString('hex'), '1f8b', 'a gzip stream');
        assert.equal(rig.client.usesChannel, channel);
      });

      it('records notes with the session time, the rules confirmed before the start, giving up with a reason and the answers', async () => {
        const rig = await world.rig('slow-scorer', { channel, manifest: { rules: RULES, end_questions: QUESTIONS, give_up_reasons: ['Out of ideas'] } });
        const before = await rig.client.ensureRunnerSetUp();
        assert.deepEqual(before.participant?.rules, RULES);
        await assert.rejects(rig.client.confirmRules(['Anything goes.']), isRunnerError('refused', /not the study's rules/));
        const confirmed = await rig.client.confirmRules(RULES);
        assert.equal(confirmed.elapsed_s, null);
        await setSlowScorer(rig, 0, '3');
        await rig.client.start();
        const note = await rig.client.note('Tried **fused** kernels.\n\n- 2x faster\n- "quoted" & \'single\' $HOME `ticks`');
        assert.equal(note.kind === 'note' && note.text, 'Tried **fused** kernels.\n\n- 2x faster\n- "quoted" & \'single\' $HOME `ticks`');
        assert.ok(note.elapsed_s !== null && note.elapsed_s >= 0);
        await assert.rejects(rig.client.note('  '), isRunnerError('usage', /The note is empty/));
        await assert.rejects(rig.client.answer({ difficulty: 3 }), isRunnerError('refused', /after the session has ended/));
        await assert.rejects(rig.client.giveUp('', 'Bored'), isRunnerError('usage', /not one of the organiser's reasons/));
        const ended = await rig.client.giveUp('the GPU fell off the bus', 'Out of ideas');
        assert.equal(ended.state, 'ended');
        assert.deepEqual(ended.participant?.gave_up, { reason: 'the GPU fell off the bus', choice: 'Out of ideas' });
        await assert.rejects(rig.client.answer({ difficulty: 7 }), isRunnerError('usage', /from 1 to 5/));
        const answers = await rig.client.answer({ difficulty: 4, used_ai: 'no' });
        assert.deepEqual(answers.kind === 'answers' && answers.answers, [
          { id: 'difficulty', value: 4 },
          { id: 'used_ai', value: 'no' },
        ]);
        const all = await rig.client.records();
        assert.equal(all.intact, true);
        assert.deepEqual(
          all.records.map((r) => r.kind),
          ['rules_confirmed', 'note', 'give_up', 'answers'],
        );
        const status = (await rig.client.status()).status;
        assert.equal(status.participant?.answered, true);
        assert.equal(status.participant?.notes, 1);
      });

      if (kind === 'ssh' && channel) {
        it("the organiser's collect keeps the session record and the counting run's solution", async () => {
          const rig = await world.rig('slow-scorer', { channel });
          await rig.client.ensureRunnerSetUp();
          await setSlowScorer(rig, 0, '3');
          await rig.client.start();
          await rig.client.note('first idea');
          const best = await rig.client.score();
          await setSlowScorer(rig, 0, '1');
          await rig.client.score();
          const sshd = world.sshd!;
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-collect-'));
          try {
            const profile = path.join(dir, 'p.json');
            fs.writeFileSync(
              profile,
              JSON.stringify({
                name: 'pat',
                host: sshd.host,
                port: sshd.port,
                user: sshd.user,
                host_key_fingerprint: sshd.hostFingerprint,
                environment: 'slow-scorer',
                identity_file: sshd.clientKeyPath,
                runner_command: `python3 ${rig.runnerHome}/runner.pyz --home ${rig.runnerHome}`,
              }),
            );
            const { specs, errors } = loadHostSpecs([profile]);
            assert.deepEqual(errors, []);
            const out = path.join(dir, 'out');
            const summary = await runCollection(specs, out, { agent: false });
            assert.equal(summary.read, 1, JSON.stringify(summary.results[0]?.error));
            const records = JSON.parse(fs.readFileSync(path.join(out, OUTPUT_FILES.records, '01-pat.records.json'), 'utf8')) as {
              intact: boolean;
              records: Array<{ kind: string; text?: string }>;
            };
            assert.equal(records.intact, true);
            assert.deepEqual(
              records.records.map((r) => [r.kind, r.text]),
              [['note', 'first idea']],
            );
            assert.deepEqual(fs.readdirSync(path.join(out, OUTPUT_FILES.solutions)), [`01-pat-run${best.index + 1}.tar.gz`]);
            const all = await runCollection(specs, path.join(dir, 'all'), { agent: false, allSolutions: true });
            assert.equal(all.read, 1);
            assert.deepEqual(fs.readdirSync(path.join(dir, 'all', OUTPUT_FILES.solutions)).sort(), ['01-pat-run1.tar.gz', '01-pat-run2.tar.gz']);
          } finally {
            fs.rmSync(dir, { recursive: true, force: true });
          }
        });
      }

      it('measures the starting score on this machine before the start and normalises with it', async () => {
        const rig = await world.rig('slow-scorer', { channel });
        fs.writeFileSync(path.join(rig.environmentSource, 'solution', 'delay_s'), '0\n'); // the starting solution, as uploaded
        await rig.client.ensureRunnerSetUp();
        const outputs: string[] = [];
        const status = await rig.client.measureStart({ onOutput: (t) => outputs.push(t) });
        assert.equal(status.environment.manifest_starting_score, 0);
        assert.equal(status.environment.starting_score, 1, "the fixture's starting solution scores 1");
        assert.ok(status.environment.starting_score_measured_at);
        assert.match(outputs.join(''), /scoring job/, 'the measurement streams its output');
        assert.equal(status.entries, 0, 'the measurement is not in the score log');
        await rig.client.start();
        await assert.rejects(rig.client.measureStart(), isRunnerError('refused', /before the start/));
      });
    });
  }
}

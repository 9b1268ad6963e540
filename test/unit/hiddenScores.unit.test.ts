// Hidden scores (scoring.visible) on the client: the participant's words for a run whose score is hidden, and the
// organiser's side, where the hidden scores are what counts (results, collection, plot, watch).
import * as assert from 'node:assert/strict';
import type { HostResult } from '../../src/organiser/collect';
import { hiddenReplySchema, type ScoreLogEntry } from '../../src/core/runnerProtocol';
import { entryScoreText, isNoScore, organiserEntries, scoredButHidden, visibilityNote } from '../../src/core/scores';
import { buildViewModel } from '../../src/core/viewModel';
import { hostFromRecord, hostRecord, resultRow, toCsv, RESULT_COLUMNS } from '../../src/organiser/results';
import { plotModel } from '../../src/organiser/plot';
import { emptyRow, updateRow } from '../../src/organiser/watchModel';
import { plainLines, rowCells } from '../../src/organiser/watchRender';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseManifest } from '../../src/core/manifest';
import { writeMetrEnvironment, type MetrPrepareResult } from '../../src/organiser/metrPrepare';
import { host, type RunSpec } from '../support/organiserFixtures';

const HASH = 'a'.repeat(64);

/**
 * A collected host whose environment hides scores: `shown` are the scores in the log (the participant's), `hidden`
 * what the organiser's `hidden` command gave for each run (undefined: not read).
 */
function hiddenHost(visible: 'none' | 'validation', runs: Array<RunSpec & { hidden: number | null }>, hiddenRead = true): HostResult {
  const base = host(0, 'ann', { id: 'env-h' }, runs);
  const entries: ScoreLogEntry[] = base.entries.map((e, i) =>
    visible === 'none'
      ? { ...e, score: null, message: runs[i]!.hidden === null ? 'No score.' : 'Scored.', hidden: { sha256: HASH, scored: runs[i]!.hidden !== null } }
      : { ...e, hidden: { sha256: HASH } },
  );
  const status = { ...base.status!, environment: { ...base.status!.environment, visible } };
  const hidden = hiddenReplySchema.parse({
    visible,
    note: null,
    hidden: entries.map((e, i) => ({ index: e.index, job_id: e.job_id, score: runs[i]!.hidden, message: 'held out', intact: true, problem: null })),
  });
  return { ...base, status, entries, hidden: hiddenRead ? hidden : undefined };
}

describe('hidden scores', () => {
  describe("the participant's words", () => {
    it('a run that scored unseen reads "hidden", is not a run without a score, and the note says what is hidden', () => {
      const scored = { score: null, hidden: { sha256: HASH, scored: true } };
      const failed = { score: null, hidden: { sha256: HASH, scored: false } };
      assert.equal(entryScoreText(scored), 'hidden');
      assert.equal(scoredButHidden(scored), true);
      assert.equal(isNoScore(scored), false);
      assert.equal(entryScoreText(failed), 'no score');
      assert.equal(isNoScore(failed), true);
      assert.equal(entryScoreText({ score: 4.5, hidden: { sha256: HASH } }), '4.5');
      assert.equal(visibilityNote('all'), null);
      assert.match(visibilityNote('none')!, /never the value/);
      assert.match(visibilityNote('validation')!, /hidden test score/);
    });

    it('the view model tells the views the visibility, and counts nothing where every score is hidden', () => {
      const h = hiddenHost('none', [
        { h: 1, score: 3, hidden: 3 },
        { h: 2, score: 9, hidden: 9 },
      ]);
      const snap = buildViewModel({
        session: {
          status: h.status,
          entries: h.entries,
          job: undefined,
          connection: { kind: 'connected' },
          logProblem: null,
          client: { target: { label: 'vm' }, clock: { offsetMs: 0 } },
          secondsLeft: () => 100,
          scoreDisabledReason: () => null,
        },
        countdown: { warningS: 1800, criticalS: 300 },
        nowMs: Date.parse('2025-03-01T12:00:00Z'),
      });
      assert.equal(snap.environment?.visible, 'none');
      assert.equal(snap.countedIndex, null);
      assert.ok(
        snap.entries.every((e) => e.score === null),
        'a hidden value reached the view',
      );
    });
  });

  describe("the organiser's side", () => {
    it('organiserEntries puts each hidden score in its entry, and no score where the record was not read or does not match', () => {
      const h = hiddenHost('validation', [
        { h: 1, score: 3, hidden: 2.5 },
        { h: 2, score: 9, hidden: 1 },
      ]);
      assert.deepEqual(
        organiserEntries(h.entries, h.hidden).map((e) => e.score),
        [2.5, 1],
      );
      assert.deepEqual(
        organiserEntries(h.entries, undefined).map((e) => e.score),
        [null, null],
      );
      const changed = { ...h.hidden!, hidden: h.hidden!.hidden.map((r, i) => (i === 0 ? { ...r, intact: false, score: null } : r)) };
      assert.deepEqual(
        organiserEntries(h.entries, changed).map((e) => e.score),
        [null, 1],
      );
      const plain = host(0, 'bea', { id: 'env-a' }, [{ h: 1, score: 4 }]);
      assert.equal(organiserEntries(plain.entries, undefined), plain.entries, 'a log without hidden scores is taken as it is');
    });

    it('results count the hidden scores and keep the score the participant saw beside them (validation)', () => {
      const row = resultRow(
        hiddenHost('validation', [
          { h: 1, score: 3, hidden: 2.5 },
          { h: 2, score: 9, hidden: 1 },
          { h: 3, score: 5, hidden: null },
        ]),
      );
      assert.equal(row.score_visibility, 'validation');
      assert.equal(row.counted_score, 2.5, 'the best hidden score counts');
      assert.equal(row.counted_normalised, 0.25);
      assert.equal(row.visible_counted_score, 9, 'the participant saw 9 as their best');
      assert.equal(row.visible_counted_normalised, 0.9);
      assert.equal(row.best_score, 2.5);
      assert.equal(row.last_score, 1);
      assert.equal(row.runs_with_score, 2);
      const csv = toCsv([row]).split('\r\n');
      const cells = csv[1]!.split(',');
      const at = (c: (typeof RESULT_COLUMNS)[number]) => cells[RESULT_COLUMNS.indexOf(c)];
      assert.deepEqual([at('counted_score'), at('score_visibility'), at('visible_counted_score')], ['2.5', 'validation', '9']);
    });

    it('results of an environment that hides every score count the hidden ones; the participant saw none', () => {
      const row = resultRow(
        hiddenHost('none', [
          { h: 1, score: null, hidden: 4 },
          { h: 2, score: null, hidden: null },
        ]),
      );
      assert.equal(row.score_visibility, 'none');
      assert.equal(row.counted_score, 4);
      assert.equal(row.visible_counted_score, null);
      assert.equal(row.runs_with_score, 1);
      const unread = resultRow(hiddenHost('none', [{ h: 1, score: null, hidden: 4 }], false));
      assert.equal(unread.counted_score, null, 'hidden scores that were not read are never guessed');
    });

    it('the collection keeps the hidden scores, so the report counts them again', () => {
      const h = hiddenHost('none', [{ h: 1, score: null, hidden: 7 }]);
      const again = hostFromRecord(JSON.parse(JSON.stringify(hostRecord(h, null))), 0);
      assert.equal(resultRow(again).counted_score, 7);
    });

    it('the plot draws the hidden scores and says so in the panel title', () => {
      const model = plotModel([hiddenHost('none', [{ h: 1, score: null, hidden: 6 }])], '2025-03-01T18:00:00Z');
      assert.match(model.panels[0]!.title, /\(hidden scores\)/);
      assert.deepEqual(
        model.panels[0]!.series[0]!.points.map((p) => p.score),
        [6],
      );
    });

    it('watch shows the hidden scores marked as hidden, and a run that scored unseen is not a failed run', () => {
      const h = hiddenHost('none', [
        { h: 1, score: null, hidden: 4 },
        { h: 2, score: null, hidden: 8 },
      ]);
      const row = updateRow(emptyRow(0, h.spec, h.label), h, Date.parse('2025-03-01T18:00:00Z'));
      assert.equal(row.best?.score, 8);
      assert.equal(row.hiddenScores, true);
      assert.equal(row.failedInARow, 0);
      const cells = rowCells(row, [], Date.parse('2025-03-01T18:00:00Z'));
      assert.equal(cells.best, '8 (0.8) hidden');
      const lines = plainLines({
        at: '2025-03-01T18:00:00.000Z',
        refresh: 1,
        durationMs: 10,
        rows: [row],
        flags: [],
        counts: { hosts: 1, reached: 1, running: 0, paused: 0, notStarted: 0, ended: 1, unknown: 0, flagged: 0 },
      });
      assert.match(lines[1]!, /best=8 .*scores=hidden/);
    });
  });

  describe('METR task families', () => {
    it('a task with visible_to_agent: false is installed with scoring.visible "none", one with true with "all"', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-metr-hidden-'));
      try {
        for (const visible of [false, true]) {
          const r = {
            family: 'hidden_forecast',
            task: visible ? 'shown' : 'main',
            describe: { scoring: 'intermediate', instructions: 'Forecast the loss.' },
            settings: { visible, gpus: 0, gpuModel: null, minFreeDiskGb: 1, scoringInstructions: null },
            steps: [],
            startingScore: { score: 0.22, message: '', measuredAt: '2026-12-06T10:00:00Z', status: 'changed' },
            scoring: { direction: 'higher', aggregation: 'last' },
            scoringCommand: ['/usr/bin/python3', 'machine.py'],
          } as unknown as MetrPrepareResult;
          const envDir = writeMetrEnvironment(dir, r, { referenceScore: 1, timeoutS: 60 });
          const parsed = parseManifest(fs.readFileSync(path.join(envDir, 'manifest.json'), 'utf8'));
          assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
          assert.equal(parsed.value.scoring.visible, visible ? 'all' : 'none');
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

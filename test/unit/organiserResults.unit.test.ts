import * as assert from 'node:assert/strict';
import {
  RESULT_COLUMNS,
  csvField,
  hostFromRecord,
  hostRecord,
  parseCollection,
  resultRow,
  runsPerHour,
  sortRows,
  summarise,
  toCsv,
  toResultsJson,
} from '../../src/organiser/results';
import { host } from '../support/organiserFixtures';
import type { RecordsReply } from '../../src/core/participantProtocol';

describe('organiser results table', () => {
  describe('resultRow', () => {
    it('takes the best by direction, the last scored run, and the counted one by aggregation', () => {
      const runs = [
        { h: 0.5, score: 2 },
        { h: 2, score: 7 },
        { h: 3, score: null },
        { h: 5, score: 4 },
      ];
      const best = resultRow(host(0, 'ann', { id: 'env-a' }, runs));
      assert.equal(best.best_score, 7);
      assert.equal(best.best_normalised, 0.7);
      assert.equal(best.best_elapsed_s, 7200);
      assert.equal(best.best_at, '2025-03-01T11:00:00.000Z');
      assert.equal(best.last_score, 4);
      assert.equal(best.last_normalised, 0.4);
      assert.equal(best.last_elapsed_s, 5 * 3600);
      assert.equal(best.counted_score, 7);
      assert.equal(best.scoring_runs, 4);
      assert.equal(best.runs_with_score, 3);

      const last = resultRow(host(0, 'ann', { id: 'env-a', aggregation: 'last' }, runs));
      assert.equal(last.counted_score, 4);
      assert.equal(last.counted_normalised, 0.4);
      assert.equal(last.best_score, 7);
    });

    it('normalises lower-is-better scores so that the reference is 1, and never counts a no-score run as 0', () => {
      const row = resultRow(
        host(0, 'ann', { id: 'env-l', direction: 'lower', starting: 5.6, reference: 4.5 }, [
          { h: 1, score: 5.2 },
          { h: 2, score: null },
          { h: 3, score: 4.6 },
          { h: 4, score: 5.0 },
        ]),
      );
      assert.equal(row.best_score, 4.6);
      // (4.6 - 5.6) / (4.5 - 5.6) = 0.909090...; trimmed to 12 significant digits
      assert.equal(row.best_normalised, 0.909090909091);
      assert.equal(row.last_score, 5.0);
      const none = resultRow(host(0, 'bea', { id: 'env-l', direction: 'lower', starting: 5.6, reference: 4.5 }, [{ h: 1, score: null }]));
      assert.equal(none.best_score, null);
      assert.equal(none.best_normalised, null);
      assert.equal(none.counted_score, null);
      assert.equal(none.runs_with_score, 0);
      assert.equal(none.scoring_runs, 1);
    });

    it('leaves runs started after the deadline out of best, last and counted', () => {
      const row = resultRow(
        host(0, 'ann', { id: 'env-a' }, [
          { h: 1, score: 3 },
          { h: 8.1, score: 9, counts: false },
        ]),
      );
      assert.equal(row.best_score, 3);
      assert.equal(row.last_score, 3);
      assert.equal(row.runs_not_counting, 1);
      assert.equal(row.scoring_runs, 2);
    });

    it('ties go to the earlier run, as the runner counts them', () => {
      const row = resultRow(
        host(0, 'ann', { id: 'env-a' }, [
          { h: 1, score: 5 },
          { h: 2, score: 5 },
        ]),
      );
      assert.equal(row.best_elapsed_s, 3600);
    });

    it('carries the session times, pauses, integrity and errors', () => {
      const row = resultRow(
        host(0, 'ann', { id: 'env-a' }, [{ h: 1, score: 5 }], {
          integrity: 'broken',
          detail: 'line 0: hash does not match its contents (edited?)',
          pausedS: 900,
        }),
        'logs/01-ann.score.log.jsonl',
      );
      assert.equal(row.session_state, 'ended');
      assert.equal(row.started_at, '2025-03-01T09:00:00.000Z');
      assert.equal(row.ended_at, '2025-03-01T17:15:00.000Z');
      assert.equal(row.paused_s, 900);
      assert.equal(row.integrity, 'broken');
      assert.match(row.integrity_detail ?? '', /line 0/);
      assert.equal(row.log_file, 'logs/01-ann.score.log.jsonl');
      assert.equal(row.error, null);

      const failed = resultRow(host(1, 'bea', null, [], { error: 'bea@10.0.0.1:23 refused the connection' }));
      assert.equal(failed.integrity, 'unknown');
      assert.equal(failed.error, 'bea@10.0.0.1:23 refused the connection');
      assert.equal(failed.environment, null);
      assert.equal(failed.best_score, null);
      assert.equal(failed.scoring_runs, 0);
    });
  });

  describe('time granted and runs per hour', () => {
    it("counts the participant's runs per hour of session time, pauses excluded, leaving out the final run and runs after the deadline", () => {
      const runs = [
        { h: 0.5, score: 1 },
        { h: 1, score: null },
        { h: 2, score: 3 },
        { h: 3, score: 4 },
        { h: 8.2, score: 5, counts: false },
      ];
      // 4 runs that count in 8 hours of session time (a pause of 15 min does not count as session time).
      assert.equal(resultRow(host(0, 'ann', { id: 'env-a' }, runs, { pausedS: 900 })).runs_per_hour, 0.5);
      assert.equal(resultRow(host(0, 'ann', { id: 'env-a' }, runs.slice(0, 4), { state: 'running', elapsedH: 2 })).runs_per_hour, 2);
      const h = host(0, 'ann', { id: 'env-a' }, [
        { h: 1, score: 2 },
        { h: 7.9, score: 3 },
      ]);
      h.entries[1] = { ...h.entries[1]!, kind: 'final' };
      assert.equal(resultRow(h).runs_per_hour, 0.125, 'the final run made by "end" is not a run the participant asked for');
      assert.equal(runsPerHour(h.entries, 0.2 * 3600), null, 'too little session time for a rate');
      assert.equal(runsPerHour(h.entries, null), null);
      assert.equal(resultRow(host(0, 'ann', { id: 'env-a' }, [], { state: 'not_started' })).runs_per_hour, null);
      assert.equal(resultRow(host(1, 'bea', null, [], { error: 'refused' })).runs_per_hour, null);
    });

    it("takes the time granted from the runner's status, null where the runner does not report it", () => {
      const plain = host(0, 'ann', { id: 'env-a' }, [{ h: 1, score: 5 }]);
      assert.equal(resultRow(plain).time_granted_s, null);
      const granted = { ...plain, status: { ...plain.status!, granted_s: 1800 } };
      assert.equal(resultRow(granted).time_granted_s, 1800);
      const rows = [
        resultRow(granted),
        resultRow({ ...plain, index: 1 }),
        resultRow(
          host(2, 'cy', { id: 'env-a' }, [
            { h: 1, score: 1 },
            { h: 2, score: 2 },
          ]),
        ),
      ];
      const [env] = summarise(rows);
      assert.equal(env!.participants_granted_time, 1);
      assert.equal(env!.time_granted_s, 1800);
      assert.equal(env!.mean_runs_per_hour, Number(((0.125 + 0.125 + 0.25) / 3).toFixed(3)));
      const csv = toCsv(rows).split('\r\n');
      const col = RESULT_COLUMNS.indexOf('time_granted_s');
      assert.equal(csv[1]!.split(',')[col], '1800');
      assert.equal(csv[2]!.split(',')[col], '');
    });
  });

  describe('the session record', () => {
    const rec = (index: number, kind: string, extra: object) => ({
      index,
      kind,
      time: `2026-12-06T1${index}:00:00Z`,
      elapsed_s: index * 60,
      prev_hash: '0'.repeat(64),
      hash: '1'.repeat(64),
      ...extra,
    });

    it('counts notes and takes the rules confirmed, giving up and the last answers; empty where the record was not read', () => {
      const records = {
        intact: true,
        first_bad: null,
        reason: null,
        records: [
          rec(0, 'rules_confirmed', { rules: ['No AI assistants'], rules_sha256: 'a'.repeat(64) }),
          rec(1, 'note', { text: 'tried a fused kernel' }),
          rec(2, 'note', { text: 'reverted: slower' }),
          rec(3, 'give_up', { reason: 'the GPU kept failing', choice: 'Technical problems' }),
          rec(4, 'answers', {
            questions: [],
            answers: [
              { id: 'difficulty', value: 4 },
              { id: 'comment', value: 'too long, "really"' },
            ],
            skipped: false,
          }),
        ],
      } as RecordsReply;
      const plain = host(0, 'ann', { id: 'env-a' }, [{ h: 1, score: 5 }]);
      const row = resultRow({ ...plain, records });
      assert.equal(row.notes, 2);
      assert.equal(row.rules_confirmed_at, '2026-12-06T10:00:00Z');
      assert.equal(row.gave_up, 'Technical problems: the GPU kept failing');
      assert.deepEqual(JSON.parse(row.end_answers!), { difficulty: 4, comment: 'too long, "really"' });
      const csv = toCsv([row]).split('\r\n');
      assert.equal(csv[0]!.split(',').indexOf('end_answers'), RESULT_COLUMNS.indexOf('end_answers'));
      assert.ok(csv[1]!.includes('"{""difficulty"":4,""comment"":""too long, \\""really\\""""}"'), csv[1]);
      const skipped = { ...records, records: [rec(0, 'answers', { questions: [], answers: [], skipped: true })] } as RecordsReply;
      assert.equal(resultRow({ ...plain, records: skipped }).end_answers, 'skipped');
      assert.equal(resultRow({ ...plain, records: skipped }).gave_up, null);
      assert.equal(resultRow({ ...plain, records: skipped }).notes, 0);
      assert.deepEqual(
        [resultRow(plain).notes, resultRow(plain).rules_confirmed_at, resultRow(plain).gave_up, resultRow(plain).end_answers],
        [null, null, null, null],
      );

      // report rebuilds the table from collection.json: the record travels in it, and a collection
      // saved before it did still reads, with the record's columns empty.
      const saved = JSON.stringify({ format: 'rebench-collection-1', generated_at: 'now', hosts: [hostRecord({ ...plain, records }, null)] });
      const back = parseCollection(saved, 'c.json');
      assert.ok(back.ok, back.ok ? '' : back.error);
      assert.deepEqual(resultRow(hostFromRecord(back.value.hosts[0]!, 0)), resultRow({ ...plain, records }));
      const older = JSON.parse(saved) as { hosts: Array<Record<string, unknown>> };
      delete older.hosts[0]!.records;
      const old = parseCollection(JSON.stringify(older), 'c.json');
      assert.ok(old.ok, old.ok ? '' : old.error);
      assert.equal(resultRow(hostFromRecord(old.value.hosts[0]!, 0)).notes, null);
    });
  });

  describe("METR's aggregate and answers scored by a person", () => {
    it("puts METR's aggregate beside the counted score, never in its place, and null where there is none", () => {
      const plain = host(0, 'ann', { id: 'env-l', direction: 'lower', starting: 5.6, reference: 4.5 }, [{ h: 1, score: null }]);
      assert.equal(resultRow(plain).metr_aggregate, null);
      const aggregated = {
        ...plain,
        status: { ...plain.status!, aggregate: { score: 0, message: 'METR', computed_at: '2025-03-01T17:00:00.000Z', entries: 1 } },
      };
      const row = resultRow(aggregated);
      assert.equal(row.metr_aggregate, 0, "METR's aggregate turned no score into 0; it is reported as it is");
      assert.equal(row.counted_score, null, 'ours stays no score');
      const csv = toCsv([row]).split('\r\n');
      assert.equal(csv[1]!.split(',')[RESULT_COLUMNS.indexOf('metr_aggregate')], '0');
      assert.equal(csv[1]!.split(',')[RESULT_COLUMNS.indexOf('counted_score')], '');
    });

    it('counts a submitted answer that a person scores later, with no score rather than 0', () => {
      const h = host(0, 'ann', { id: 'env-a', aggregation: 'last' }, [{ h: 1, score: null }]);
      h.entries[0] = { ...h.entries[0]!, kind: 'submit', manual: true };
      const row = resultRow(h);
      assert.equal(row.answers_scored_by_person, 1);
      assert.equal(row.counted_score, null);
      assert.equal(row.runs_per_hour, 0, 'a submitted answer is not a scoring run the participant asked for');
    });
  });

  describe('CSV', () => {
    it('quotes fields with commas, quotes, line breaks and outer spaces, as RFC 4180 asks', () => {
      assert.equal(csvField('plain'), 'plain');
      assert.equal(csvField('a,b'), '"a,b"');
      assert.equal(csvField('say "hi"'), '"say ""hi"""');
      assert.equal(csvField('two\nlines'), '"two\nlines"');
      assert.equal(csvField('cr\rhere'), '"cr\rhere"');
      assert.equal(csvField(' padded'), '" padded"');
      assert.equal(csvField(null), '');
      assert.equal(csvField(undefined), '');
      assert.equal(csvField(''), '');
    });

    it('keeps numbers as numbers (negative ones too) and defuses text a spreadsheet would run as a formula', () => {
      assert.equal(csvField(-1.25), '-1.25');
      assert.equal(csvField(0), '0');
      assert.equal(csvField(1e-7), '1e-7');
      assert.equal(csvField(Number.NaN), '');
      assert.equal(csvField('=HYPERLINK("http://x")'), `"'=HYPERLINK(""http://x"")"`);
      assert.equal(csvField('+1'), "'+1");
      assert.equal(csvField('-rm'), "'-rm");
      assert.equal(csvField('@SUM(A1)'), "'@SUM(A1)");
    });

    it('writes a header of every column and one CRLF line per row', () => {
      const rows = [
        resultRow(host(0, 'Smith, Ann', { id: 'env-a' }, [{ h: 1, score: 5 }])),
        resultRow(host(1, 'bea', null, [], { error: 'refused, "closed"' })),
      ];
      const csv = toCsv(rows);
      const lines = csv.split('\r\n');
      assert.equal(lines.length, 4);
      assert.equal(lines[3], '');
      assert.equal(lines[0], RESULT_COLUMNS.join(','));
      assert.ok(lines[1]!.startsWith('"Smith, Ann",agent@10.0.0.1:22,env-a,Environment env-a,1.0.0,higher,best,0,10,5,0.5,all,5,0.5,5,0.5,3600,'));
      assert.ok(lines[2]!.includes(',"refused, ""closed""",'));
      assert.equal(lines[1]!.split(',').length, RESULT_COLUMNS.length + 1); // the quoted comma in the name
    });
  });

  describe('sorting and the JSON', () => {
    const hosts = [
      host(0, 'ann', { id: 'env-b' }, [{ h: 1, score: 3 }]),
      host(1, 'bea', null, [], { error: 'refused' }),
      host(2, 'cat', { id: 'env-b' }, [{ h: 1, score: 8 }]),
      host(3, 'dan', { id: 'env-a' }, []),
      host(4, 'eve', { id: 'env-b' }, [{ h: 1, score: 6 }], { integrity: 'broken', detail: 'line 0: edited' }),
    ];
    const rows = hosts.map((h) => resultRow(h));

    it('groups rows by environment, best counted score first, and puts hosts not read last', () => {
      assert.deepEqual(
        sortRows(rows).map((r) => r.participant),
        ['dan', 'cat', 'eve', 'ann', 'bea'],
      );
    });

    it('summarises each environment: participants, mean and best counted normalised score, logs not intact', () => {
      const summary = summarise(rows);
      assert.deepEqual(
        summary.map((s) => s.environment),
        ['env-a', 'env-b'],
      );
      const b = summary[1]!;
      assert.equal(b.participants, 3);
      assert.equal(b.scored, 3);
      assert.ok(Math.abs((b.mean_counted_normalised ?? 0) - (0.3 + 0.8 + 0.6) / 3) < 1e-12);
      assert.equal(b.best_counted_normalised, 0.8);
      assert.equal(b.logs_not_intact, 1);
      assert.equal(summary[0]!.scored, 0);
      assert.equal(summary[0]!.mean_counted_normalised, null);
      const json = JSON.parse(toResultsJson(sortRows(rows), '2025-03-01T18:00:00.000Z')) as { generated_at: string; rows: unknown[]; environments: unknown[] };
      assert.equal(json.generated_at, '2025-03-01T18:00:00.000Z');
      assert.equal(json.rows.length, 5);
      assert.equal(json.environments.length, 2);
    });

    it('saves the collection and reads it back to the same rows', () => {
      const text = JSON.stringify({ format: 'rebench-collection-1', generated_at: 'now', hosts: hosts.map((h) => hostRecord(h, null)) });
      const parsed = parseCollection(text, 'c.json');
      assert.ok(parsed.ok);
      const again = parsed.value.hosts.map(hostFromRecord).map((h) => resultRow(h));
      assert.deepEqual(again, rows);
    });

    it('refuses a file that is not a collection, saying what is wrong', () => {
      const notJson = parseCollection('{', 'c.json');
      assert.ok(!notJson.ok && /c\.json is not JSON/.test(notJson.error));
      const wrong = parseCollection(JSON.stringify({ format: 'other', hosts: [] }), 'c.json');
      assert.ok(!wrong.ok && /not a collection written by "collect": format/.test(wrong.error));
    });
  });
});
